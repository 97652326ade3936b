#!/usr/bin/env bash
# Removes everything the guest node made on the host: its QEMU (and with it the guest), the taps, the bridge with
# its addresses, the routing rule and routes, and its folder. Run by the node's stop, and by its guard when the
# process that started the node died without stopping it. Idempotent.
set -u
STATE=/var/lib/nettune-guest
[[ -f $STATE/host.env ]] || exit 0
# shellcheck source=/dev/null
. "$STATE/host.env"
log() { echo "[guest-teardown] $*"; }

if [[ -f $STATE/qemu.pid ]]; then
  pid=$(cat "$STATE/qemu.pid")
  # Only the node's own QEMU: its command line names the node's folder.
  if [[ -n $pid ]] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$STATE/"; then
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -KILL "$pid" 2>/dev/null
  fi
fi
for tap in $TAPS; do ip link del "$tap" 2>/dev/null; done
ip link del "$BRIDGE" 2>/dev/null
while ip rule del iif "$BRIDGE" table "$BLACKHOLE_TABLE" 2>/dev/null; do :; done
ip route flush table "$BLACKHOLE_TABLE" 2>/dev/null
rm -rf "$STATE"
rm -f "$LOCK"
log "host restored"
