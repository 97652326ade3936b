#!/usr/bin/env bash
# Footprint benchmark (issue 24): what the agent costs every node, JIT build against NativeAOT build in the same run.
#
# Publishes the agent twice as its image archive does (hack/images.sh publish: self-contained JIT, and
# NETTUNE_AOT=agent), and the operator (self-contained JIT), writes their OCI image archives, and reports the sizes. Then, against a control-plane-only local
# cluster (nettune-local-cluster up: etcd, kube-apiserver, controller manager on loopback), runs each agent build as a
# host process for a Node object of its own, in plan-only mode on this machine's real /sys and /proc (it reads the
# host and writes nothing: a dry-run plan into its NodeState), ROUNDS times, alternating the builds, and measures:
#   ready_ms   process start to /healthz answering 200 (the DaemonSet's startup probe; the container runtime's own
#              start time is not in it)
#   status_ms  process start to the first status in its NodeState (observedGeneration set)
#   rest CPU   utime+stime over REST_SECONDS once the status is written, as % of one core
#   rest RSS   VmRSS at the end of the rest period, and VmHWM (peak)
# Environment: ROUNDS (3), REST_SECONDS (60), DRIFT (the agents' --drift-interval, 30s), OUT (.artifacts/bench-footprint).
# Results: a markdown table on stdout and $OUT/footprint.csv. Times depend on the machine's load; sizes and RSS much less.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
ROUNDS=${ROUNDS:-3}
REST_SECONDS=${REST_SECONDS:-60}
DRIFT=${DRIFT:-30s}
OUT=${OUT:-$ROOT/.artifacts/bench-footprint}
log() { printf '[footprint] %s\n' "$*" >&2; }
mkdir -p "$OUT"; OUT=$(cd "$OUT" && pwd)

cli="$ROOT/localcluster/NetTune.LocalCluster.Cli/bin/${CONFIGURATION:-Debug}/net10.0/nettune-local-cluster.dll"
[[ -f $cli ]] || dotnet build "$ROOT/localcluster/NetTune.LocalCluster.Cli" -c "${CONFIGURATION:-Debug}" -nologo -v quiet >&2
if [[ -z ${SKIP_PUBLISH:-} ]]; then
  log "publishing the agent (JIT, self-contained), the agent (NativeAOT) and the operator (JIT, self-contained)"
  bash "$ROOT/hack/images.sh" publish agent "$OUT/agent-jit" self-contained
  NETTUNE_AOT=agent bash "$ROOT/hack/images.sh" publish agent "$OUT/agent-aot"
  bash "$ROOT/hack/images.sh" publish operator "$OUT/operator-jit" self-contained
  # As the image archives do: the LTTng provider is left out (no image has liblttng-ust).
  rm -f "$OUT"/*/libcoreclrtraceptprovider.so
  # The image archives as hack/images.sh archives writes them (payload, the libraries ldd lists, OpenSSL, nsenter).
  ssl=(--lib /usr/lib/x86_64-linux-gnu/libssl.so.3 --lib /usr/lib/x86_64-linux-gnu/libcrypto.so.3)
  for build in jit aot; do
    dotnet "$cli" image "nettune/agent:footprint-$build" /app/NetTune.Agent "$OUT/agent-$build.oci.tar" "$OUT/agent-$build" "${ssl[@]}" \
      --file "$(command -v nsenter)" --user 0:0 >&2
  done
  dotnet "$cli" image nettune/operator:footprint-jit /app/nettune-operator "$OUT/operator-jit.oci.tar" "$OUT/operator-jit" "${ssl[@]}" --user 1654:1654 >&2
fi
size_mb() { if [[ -e $1 ]]; then du -sb "$1" | awk '{printf "%.1f", $1 / 1e6}'; else echo -; fi; }

kcfg="$OUT/kubeconfig"
rm -f "$kcfg"
dotnet "$cli" up "$kcfg" >"$OUT/cluster.log" 2>&1 &
cluster=$!
agent_pid=""
cleanup() {
  [[ -n $agent_pid ]] && kill "$agent_pid" 2>/dev/null || true
  kill -TERM "$cluster" 2>/dev/null || true
  wait "$cluster" 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 300); do [[ -f $kcfg ]] && break; kill -0 "$cluster" || { cat "$OUT/cluster.log" >&2; exit 1; }; sleep 1; done
[[ -f $kcfg ]] || { log "the cluster did not come up"; exit 1; }
k() { kubectl --kubeconfig "$kcfg" "$@"; }
k apply --validate=false -f "$ROOT/crds/" >/dev/null
for _ in $(seq 60); do k get networktuningnodestates >/dev/null 2>&1 && break; sleep 1; done

# One Node object and one NodeState per build and round: each run starts from a NodeState nobody answered yet.
state() {
  local node=$1
  k create -f - >/dev/null <<YAML
apiVersion: v1
kind: Node
metadata: {name: $node}
YAML
  k create -f - >/dev/null <<YAML
apiVersion: nettune.io/v1alpha1
kind: NetworkTuningNodeState
metadata: {name: $node}
spec:
  nodeName: $node
  sources: [{name: footprint, generation: 1}]
  sysctls: {net.core.somaxconn: "4096", net.core.netdev_max_backlog: "16384"}
YAML
}

now_ms() { date +%s%3N; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
status_kib() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
hz=$(getconf CLK_TCK)

echo "build,round,ready_ms,status_ms,rest_cpu_pct,rest_rss_mib,peak_rss_mib" >"$OUT/footprint.csv"
for round in $(seq "$ROUNDS"); do
  for build in jit aot; do
    node="footprint-$build-$round"
    state "$node"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    journal=$(mktemp -d "$OUT/journal.XXXXXX")
    started=$(now_ms)
    "$OUT/agent-$build/NetTune.Agent" --host-root / --node-name "$node" --journal-dir "$journal" --kubeconfig "$kcfg" \
      --metrics-port "$port" --drift-interval "$DRIFT" --plan-only >"$OUT/agent-$build-$round.log" 2>&1 &
    agent_pid=$!
    ready=""; status=""
    for _ in $(seq 12000); do
      if [[ -z $ready ]] && curl -fsS -o /dev/null "http://127.0.0.1:$port/healthz" 2>/dev/null; then ready=$(( $(now_ms) - started )); fi
      if [[ -n $ready && -z $status ]] && [[ -n $(k get networktuningnodestate "$node" -o jsonpath='{.status.observedGeneration}' 2>/dev/null) ]]; then
        status=$(( $(now_ms) - started ))
      fi
      [[ -n $ready && -n $status ]] && break
      kill -0 "$agent_pid" 2>/dev/null || { log "agent $build exited: $(tail -5 "$OUT/agent-$build-$round.log")"; exit 1; }
      sleep 0.01
    done
    [[ -n $ready && -n $status ]] || { log "agent $build: not ready or no status in 2 min"; exit 1; }
    before=$(cpu_ticks "$agent_pid")
    sleep "$REST_SECONDS"
    after=$(cpu_ticks "$agent_pid")
    cpu=$(awk -v a="$after" -v b="$before" -v hz="$hz" -v s="$REST_SECONDS" 'BEGIN {printf "%.2f", (a - b) / hz / s * 100}')
    rss=$(awk -v v="$(status_kib "$agent_pid" VmRSS)" 'BEGIN {printf "%.1f", v / 1024}')
    peak=$(awk -v v="$(status_kib "$agent_pid" VmHWM)" 'BEGIN {printf "%.1f", v / 1024}')
    kill -TERM "$agent_pid"; wait "$agent_pid" 2>/dev/null || true; agent_pid=""
    rm -rf "$journal"
    echo "$build,$round,$ready,$status,$cpu,$rss,$peak" >>"$OUT/footprint.csv"
    log "round $round $build: ready ${ready} ms, status ${status} ms, at rest ${cpu}% of a core, ${rss} MiB RSS (peak ${peak})"
  done
done

median() { sort -n | awk '{a[NR] = $1} END {if (NR % 2) print a[(NR + 1) / 2]; else printf "%.2f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
col() { awk -F, -v b="$1" -v c="$2" 'NR > 1 && $1 == b {print $c}' "$OUT/footprint.csv" | median; }
echo
echo "Agent, medians of $ROUNDS rounds (plan-only on this host, control-plane-only cluster, at rest ${REST_SECONDS} s, drift interval $DRIFT):"
echo
echo "| build | payload MB | image archive MB | start → /healthz ms | start → first status ms | CPU at rest, % of a core | RSS at rest MiB | peak RSS MiB |"
echo "|---|---|---|---|---|---|---|---|"
for build in jit aot; do
  echo "| agent $build | $(size_mb "$OUT/agent-$build") | $(size_mb "$OUT/agent-$build.oci.tar") | $(col "$build" 3) | $(col "$build" 4) | $(col "$build" 5) | $(col "$build" 6) | $(col "$build" 7) |"
done
echo
echo "Operator (JIT, self-contained): payload $(size_mb "$OUT/operator-jit") MB, image archive $(size_mb "$OUT/operator-jit.oci.tar") MB"
