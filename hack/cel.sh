#!/usr/bin/env bash
# Provides @bufbuild/cel (a CEL implementation; the npm registry serves it) for the CEL conformance tests.
#
# Usage: hack/cel.sh
# Installs tests/NetTune.Api.Tests/cel/package-lock.json with `npm ci` into
# ${NETTUNE_CACHE:-$HOME/.cache/nettune}/cel/<hash of the lock file>/ together with evaluate.mjs, and prints that
# folder on the last line of stdout. Progress goes to stderr.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
src="$here/tests/NetTune.Api.Tests/cel"
CACHE_ROOT="${NETTUNE_CACHE:-$HOME/.cache/nettune}"
log() { printf '[cel] %s\n' "$*" >&2; }

if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
  sudo=""; [[ $(id -u) -eq 0 ]] || sudo=sudo
  log "installing Debian packages: nodejs npm"
  $sudo apt-get update -qq -o DPkg::Lock::Timeout=300 >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq -o DPkg::Lock::Timeout=300 --no-install-recommends nodejs npm >&2
fi

key=$(cat "$src/package.json" "$src/package-lock.json" | sha256sum | cut -c1-16)
dir="$CACHE_ROOT/cel/$key"
mkdir -p "$CACHE_ROOT/cel"
exec 8>"$CACHE_ROOT/cel/$key.lock"
flock 8
if [[ ! -d "$dir/node_modules/@bufbuild/cel" ]]; then
  log "npm ci @bufbuild/cel into $dir"
  rm -rf "$dir"
  mkdir -p "$dir"
  cp "$src/package.json" "$src/package-lock.json" "$dir/"
  (cd "$dir" && npm ci --no-audit --no-fund --silent >&2)
fi
# The script may change without the lock file changing.
cp "$src/evaluate.mjs" "$dir/evaluate.mjs"
echo "$dir"
