#!/usr/bin/env bash
# Installs a small node tool of the repository (a package.json + package-lock.json and one script) into a cache
# outside the repo; hack/cel.sh and hack/k8s-schema.sh are the callers.
#
# Usage: hack/npm-tool.sh NAME SOURCE_FOLDER SCRIPT
# Installs SOURCE_FOLDER/package-lock.json with `npm ci` into
# ${NETTUNE_CACHE:-$HOME/.cache/nettune}/NAME/<hash of package.json and the lock file>/ together with SCRIPT, and
# prints that folder on the last line of stdout. Progress goes to stderr.
set -euo pipefail

name=$1
src=$2
script=$3
CACHE_ROOT="${NETTUNE_CACHE:-$HOME/.cache/nettune}"
log() { printf '[%s] %s\n' "$name" "$*" >&2; }

if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
  sudo=""; [[ $(id -u) -eq 0 ]] || sudo=sudo
  log "installing Debian packages: nodejs npm"
  $sudo apt-get update -qq -o DPkg::Lock::Timeout=300 >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq -o DPkg::Lock::Timeout=300 --no-install-recommends nodejs npm >&2
fi

key=$(cat "$src/package.json" "$src/package-lock.json" | sha256sum | cut -c1-16)
dir="$CACHE_ROOT/$name/$key"
mkdir -p "$CACHE_ROOT/$name"
exec 8>"$CACHE_ROOT/$name/$key.lock"
flock 8
if [[ ! -f "$dir/.installed" ]]; then
  log "npm ci into $dir"
  rm -rf "$dir"
  mkdir -p "$dir"
  cp "$src/package.json" "$src/package-lock.json" "$dir/"
  (cd "$dir" && npm ci --no-audit --no-fund --silent >&2)
  touch "$dir/.installed"
fi
# The script may change without the lock file changing.
cp "$src/$script" "$dir/$script"
echo "$dir"
