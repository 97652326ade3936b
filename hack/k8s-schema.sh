#!/usr/bin/env bash
# Provides @kubernetes/client-node and kubernetes-models (npm) for the tests that check objects against a current Kubernetes API.
#
# Usage: hack/k8s-schema.sh
# Installs hack/k8s-schema/package-lock.json with `npm ci` into
# ${NETTUNE_CACHE:-$HOME/.cache/nettune}/k8s-schema/<hash of the lock file>/ together with check.mjs, and prints that
# folder on the last line of stdout. Progress goes to stderr.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
src="$here/hack/k8s-schema"
CACHE_ROOT="${NETTUNE_CACHE:-$HOME/.cache/nettune}"
log() { printf '[k8s-schema] %s\n' "$*" >&2; }

if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
  sudo=""; [[ $(id -u) -eq 0 ]] || sudo=sudo
  log "installing Debian packages: nodejs npm"
  $sudo apt-get update -qq -o DPkg::Lock::Timeout=300 >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq -o DPkg::Lock::Timeout=300 --no-install-recommends nodejs npm >&2
fi

key=$(cat "$src/package.json" "$src/package-lock.json" | sha256sum | cut -c1-16)
dir="$CACHE_ROOT/k8s-schema/$key"
mkdir -p "$CACHE_ROOT/k8s-schema"
exec 8>"$CACHE_ROOT/k8s-schema/$key.lock"
flock 8
if [[ ! -d "$dir/node_modules/@bufbuild/k8s-schema" ]]; then
  log "npm ci into $dir"
  rm -rf "$dir"
  mkdir -p "$dir"
  cp "$src/package.json" "$src/package-lock.json" "$dir/"
  (cd "$dir" && npm ci --no-audit --no-fund --silent >&2)
fi
# The script may change without the lock file changing.
cp "$src/check.mjs" "$dir/check.mjs"
echo "$dir"
