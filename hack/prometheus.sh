#!/usr/bin/env bash
# Provides prometheus and promtool (Debian's `prometheus` package, 2.42), installing it when missing.
# Prints the folder that holds both executables on its last line of stdout; progress goes to stderr.
# $PROMETHEUS_BIN_DIR wins when set (bring your own binaries).
set -euo pipefail
log() { printf '[prometheus] %s\n' "$*" >&2; }

if [[ -n "${PROMETHEUS_BIN_DIR:-}" ]]; then
  for bin in prometheus promtool; do
    [[ -x "$PROMETHEUS_BIN_DIR/$bin" ]] || { log "PROMETHEUS_BIN_DIR=$PROMETHEUS_BIN_DIR lacks an executable $bin"; exit 1; }
  done
  echo "$PROMETHEUS_BIN_DIR"
  exit 0
fi

if ! command -v promtool >/dev/null || ! command -v prometheus >/dev/null; then
  SUDO=""
  [[ $(id -u) -eq 0 ]] || SUDO=sudo
  log "installing Debian's prometheus package"
  # The package's service is not wanted here: policy-rc.d 101 keeps invoke-rc.d from starting it.
  policy=$(mktemp -d)
  printf '#!/bin/sh\nexit 101\n' >"$policy/policy-rc.d"; chmod +x "$policy/policy-rc.d"
  $SUDO apt-get update -qq -o DPkg::Lock::Timeout=300 >&2
  if [[ -e /usr/sbin/policy-rc.d ]]; then
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq -o DPkg::Lock::Timeout=300 --no-install-recommends prometheus >&2
  else
    $SUDO cp "$policy/policy-rc.d" /usr/sbin/policy-rc.d
    trap '$SUDO rm -f /usr/sbin/policy-rc.d; rm -rf "$policy"' EXIT
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq -o DPkg::Lock::Timeout=300 --no-install-recommends prometheus >&2
  fi
fi
dirname "$(command -v promtool)"
