#!/usr/bin/env bash
# Puts the host back as it was before the local node started, from the baseline the node recorded first
# ($RUN/baseline.env). Run by the node's stop, and by its guard when the process that started the node died without
# stopping it. Idempotent: a second run finds nothing to do.
set -u
RUN=/run/nettune-node
STATE=/var/lib/nettune-node
[[ -f $RUN/baseline.env ]] || exit 0
# shellcheck source=/dev/null
. "$RUN/baseline.env"
log() { echo "[node-teardown] $*"; }

# Processes whose command line holds a string: the node's own kubelet, containerd and shims name its folders.
pids_matching() {
  local d cmd
  for d in /proc/[0-9]*; do
    cmd=$(tr '\0' ' ' <"$d/cmdline" 2>/dev/null) || continue
    case "$cmd" in *"$1"*"$2"*) echo "${d#/proc/}" ;; esac
  done
}
alive() { [[ -n ${1:-} ]] && kill -0 $1 2>/dev/null; }

# 1. The kubelet first, so nothing restarts containers; then every container process (all live in the kubepods
#    cgroups) and the shims of this node's containerd (they outlive containerd by design); then containerd.
stop_matching() {
  local pids
  pids=$(pids_matching "$1" "$2")
  [[ -z $pids ]] && return 0
  # shellcheck disable=SC2086
  kill -TERM $pids 2>/dev/null
  for _ in $(seq 1 20); do alive "$(pids_matching "$1" "$2")" || return 0; sleep 0.25; done
  # shellcheck disable=SC2086
  kill -KILL $(pids_matching "$1" "$2") 2>/dev/null
}
stop_matching kubelet "--root-dir=$STATE/kubelet"
shims() { pids_matching containerd-shim "$RUN/containerd/containerd.sock"; }
for _ in 1 2 3 4 5; do
  procs=$(cat /sys/fs/cgroup/pids/kubepods/cgroup.procs $(find /sys/fs/cgroup/pids/kubepods -mindepth 1 -name cgroup.procs 2>/dev/null) 2>/dev/null)
  procs="$procs $(shims)"
  [[ -z ${procs// /} ]] && break
  # shellcheck disable=SC2086
  kill -KILL $procs 2>/dev/null
  sleep 0.3
done

stop_matching containerd "$STATE/containerd/config.toml"

# 2. Mounts under the node's own folders (sandbox shm, container rootfs, pod volumes, pod network namespaces),
#    deepest first. Nothing outside them is touched: other users' `ip netns` mounts stay.
for _ in 1 2 3; do
  mounts=$(awk '{print $5}' /proc/self/mountinfo | grep -E "^($STATE|$RUN)(/|$)" | sort -r)
  [[ -z $mounts ]] && break
  while read -r m; do umount -l "$(printf '%b' "$m")" 2>/dev/null; done <<<"$mounts"
done

# 3. The kubelet's cgroups (kubepods under every v1 controller and the v2 mount), where the node created them.
for c in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/unified/kubepods; do
  [[ -d $c ]] || continue
  [[ " ${CGROUPS_BEFORE:-} " == *" $c "* ]] && continue
  for _ in 1 2 3 4 5; do
    find "$c" -depth -type d -exec rmdir {} \; 2>/dev/null
    [[ -d $c ]] || break
    sleep 0.3
  done
  [[ -d $c ]] && log "could not remove $c"
done

# 4. Network: pod veths left on the bridge, then the bridge (it also carries the ClusterIP address).
if [[ -d /sys/class/net/$BRIDGE ]]; then
  for port in /sys/class/net/"$BRIDGE"/brif/*; do [[ -e $port ]] && ip link del "$(basename "$port")" 2>/dev/null; done
  ip link del "$BRIDGE" 2>/dev/null
fi
[[ -n ${SERVICE_SUBNET:-} ]] && ip route del blackhole "$SERVICE_SUBNET" 2>/dev/null

# 5. Kernel settings the kubelet and the bridge plugin change and cannot be told not to.
for kv in ${SYSCTLS:-}; do
  path=${kv%%=*}; value=${kv#*=}
  [[ -w $path ]] || continue
  [[ "$(tr -s '\t ' ' ' <"$path")" == "${value//,/ }" ]] || echo "${value//,/ }" >"$path" 2>/dev/null || log "could not restore $path"
done
for kv in ${HUGEPAGES:-}; do
  path=${kv%%=*}; value=${kv#*=}
  [[ "$(cat "$path" 2>/dev/null)" == "$value" ]] || echo "$value" >"$path" 2>/dev/null || log "could not restore $path"
done

# 6. Host folders that ignore the kubelet's --root-dir or containerd's state dir, where they were absent before.
for d in ${ABSENT_BEFORE:-}; do
  [[ -e $d ]] || continue
  [[ -n $(awk '{print $5}' /proc/self/mountinfo | grep -E "^$d(/|$)") ]] && { log "$d still has mounts; left"; continue; }
  rm -rf "$d"
done
rm -rf "$STATE" "$RUN"
# The lock goes too: its holder is gone (dying released it), or is this very teardown's owner about to release it.
rm -f "$RUN.lock"
log "host restored"
