#!/usr/bin/env bash
# `make demo` / `make demo-down`: NetTune's main job on one machine, on loopback.
#
# A local control plane (etcd, kube-apiserver, kube-controller-manager), the Helm chart installed into it, the operator
# as a local process with the chart's ServiceAccount and RBAC, simulated Nodes whose real agents work on two-socket
# fixture host roots, one Node for this host whose agent only plans (--plan-only: it never writes), the samples, the
# data plane for this host's socket (and the same binary as a reverse proxy in front of it), and Prometheus with the
# chart's alert rules.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DEMO="$ROOT/.demo"
ADMIN="$DEMO/kubeconfig"
NS=nettune-system
CONFIGURATION=${CONFIGURATION:-Debug}
BIN="bin/$CONFIGURATION/net10.0"
FIXTURE_NODES=${FIXTURE_NODES:-3}
THIS_HOST=${THIS_HOST:-local-$(hostname -s | tr '[:upper:]_' '[:lower:]-')}
OPERATOR_METRICS=19100
AGENT_METRICS=19101
DATAPLANE_PORT=18080
DATAPLANE_ADMIN=19180
PROXY_PORT=18082
PROXY_ADMIN=19182
PROMETHEUS_PORT=19090

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
running() { [[ -f "$DEMO/$1.pid" ]] && kill -0 "$(cat "$DEMO/$1.pid")" 2>/dev/null; }
kctl() { kubectl --kubeconfig "$ADMIN" "$@"; }
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Starts a background process with its pid in $DEMO/NAME.pid and its output in $DEMO/NAME.log.
start() {
  local name=$1; shift
  nohup "$@" >"$DEMO/$name.log" 2>&1 </dev/null &
  echo $! >"$DEMO/$name.pid"
}

stop_process() {
  local name=$1
  running "$name" || return 0
  kill -TERM "$(cat "$DEMO/$name.pid")" 2>/dev/null || true
  for _ in $(seq 1 40); do running "$name" || return 0; sleep 0.25; done
  kill -KILL "$(cat "$DEMO/$name.pid")" 2>/dev/null || true
}

wait_for() {
  local what=$1 seconds=$2; shift 2
  for _ in $(seq 1 $((seconds * 2))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; done
  echo "timed out after ${seconds}s waiting for $what"; return 1
}

up() {
  mkdir -p "$DEMO"
  for p in $OPERATOR_METRICS $DATAPLANE_PORT $DATAPLANE_ADMIN $PROXY_PORT $PROXY_ADMIN $PROMETHEUS_PORT $(seq $AGENT_METRICS $((AGENT_METRICS + FIXTURE_NODES))); do
    running cluster || port_free "$p" || { echo "port $p on 127.0.0.1 is taken; stop what uses it (or make demo-down) first"; exit 1; }
  done

  if running cluster; then
    step "the local cluster is already running (make demo-down stops it)"
  else
    step "1/7 starting etcd, kube-apiserver and kube-controller-manager on loopback"
    rm -f "$ADMIN"
    start cluster env NETTUNE_REPO_ROOT="$ROOT" dotnet "tools/NetTune.LocalCluster/$BIN/nettune-local-cluster.dll" "$ADMIN"
    wait_for "the local cluster (see $DEMO/cluster.log)" 120 test -f "$ADMIN"
  fi
  kctl version 2>/dev/null | sed 's/^/    /' || true

  step "2/7 helm install nettune charts/nettune (CRDs, RBAC, ServiceAccounts; the operator runs as a local process)"
  bash hack/demo-chart.sh install "$ADMIN" "$NS" "$DEMO" >/dev/null

  step "3/7 starting the operator with the chart's ServiceAccount token (metrics :$OPERATOR_METRICS)"
  stop_process operator
  start operator dotnet "operator/NetTune.Operator/$BIN/nettune-operator.dll" --kubeconfig "$DEMO/operator.kubeconfig" \
    --namespace "$NS" --metrics-port "$OPERATOR_METRICS" --log-format text --pod-delete-grace-seconds 0
  wait_for "the operator's /readyz (see $DEMO/operator.log)" 60 curl -fsS "http://127.0.0.1:$OPERATOR_METRICS/readyz"

  step "4/7 kubectl apply -f samples/"
  kctl apply -f samples/
  # The operator creates the agents' ServiceAccount with their DaemonSet; hand its token to the local agents.
  bash hack/demo-chart.sh agent-kubeconfig "$ADMIN" "$NS" "$DEMO" >/dev/null

  step "5/7 $FIXTURE_NODES simulated two-socket Nodes with real agents on fixture roots, and $THIS_HOST (plan only)"
  stop_process nodes
  start nodes dotnet "operator/NetTune.Operator.Demo/$BIN/nettune-demo-nodes.dll" "$ADMIN" "$DEMO/nodes" "$FIXTURE_NODES" "$NS" \
    --no-operator --agent-kubeconfig "$DEMO/agent.kubeconfig" --agent-metrics-port "$AGENT_METRICS" --this-host "$THIS_HOST"
  # Rolled out (Progressing=False); Ready also waits for the data-plane pods, which only a real node's kubelet runs.
  wait_for "the web-tier rollout (see $DEMO/nodes.log and $DEMO/operator.log)" 240 \
    kctl wait --for=condition=Progressing=False --timeout=5s networktuning/web-tier
  wait_for "the plan of $THIS_HOST" 120 bash -c "kubectl --kubeconfig '$ADMIN' get networktuningnodestate '$THIS_HOST' -o jsonpath='{.status.plannedChanges}' | grep -q knob"

  step "6/7 the data plane for this host's socket on 127.0.0.1:$DATAPLANE_PORT (admin :$DATAPLANE_ADMIN)"
  mkdir -p "$DEMO/www"
  [[ -f "$DEMO/www/index.html" ]] || printf '<!doctype html><title>NetTune</title><h1>Served by the NetTune data plane</h1>\n' >"$DEMO/www/index.html"
  [[ -f "$DEMO/www/1k.bin" ]] || head -c 1024 /dev/urandom >"$DEMO/www/1k.bin"
  [[ -f "$DEMO/www/64k.bin" ]] || head -c 65536 /dev/urandom >"$DEMO/www/64k.bin"
  stop_process dataplane
  start dataplane "dataplane/NetTune.DataPlane/$BIN/dataplane" --root "$DEMO/www" --address 127.0.0.1 --port "$DATAPLANE_PORT" \
    --admin-address 127.0.0.1 --admin-port "$DATAPLANE_ADMIN" --cpus "$(cat /sys/devices/system/node/node0/cpulist 2>/dev/null || echo 0)" --numa-node 0
  wait_for "the data plane's /readyz (see $DEMO/dataplane.log)" 30 curl -fsS "http://127.0.0.1:$DATAPLANE_ADMIN/readyz"
  # Proxy mode (the edge-proxy sample's dataPlane.mode), here in front of the static server just started.
  stop_process proxy
  start proxy "dataplane/NetTune.DataPlane/$BIN/dataplane" --upstream "127.0.0.1:$DATAPLANE_PORT" --address 127.0.0.1 \
    --port "$PROXY_PORT" --admin-address 127.0.0.1 --admin-port "$PROXY_ADMIN" --cpus "$(cat /sys/devices/system/node/node0/cpulist 2>/dev/null || echo 0)"
  wait_for "the proxy's /readyz (see $DEMO/proxy.log)" 30 curl -fsS "http://127.0.0.1:$PROXY_ADMIN/readyz"
  curl -fsS -o /dev/null "http://127.0.0.1:$PROXY_PORT/64k.bin"

  step "7/7 Prometheus with the chart's alert rules on 127.0.0.1:$PROMETHEUS_PORT"
  local agents="" i
  for i in $(seq 1 "$FIXTURE_NODES"); do agents+="demo-node-$i=127.0.0.1:$((AGENT_METRICS + i - 1)),"; done
  agents+="$THIS_HOST=127.0.0.1:$((AGENT_METRICS + FIXTURE_NODES))"
  bash hack/demo-chart.sh prometheus "$DEMO" "$PROMETHEUS_PORT" "127.0.0.1:$OPERATOR_METRICS" "$agents" "127.0.0.1:$DATAPLANE_ADMIN,127.0.0.1:$PROXY_ADMIN" >/dev/null

  step "kubectl get networktunings,networktuningnodestates"
  kctl get networktunings,networktuningnodestates -o wide
  step "what the agent would change on this host ($THIS_HOST, plan only)"
  kctl get networktuningnodestate "$THIS_HOST" \
    -o jsonpath='{range .status.plannedChanges[*]}{.knob}{"\t"}{.current}{"  ->  "}{.target}{"\n"}{end}' | column -t -s $'\t' | head -n 40
  step "per-socket data-plane pods the operator made for the tuned nodes"
  kctl -n "$NS" get pods -o wide 2>/dev/null | head -n 12

  cat <<MSG

The demo keeps running. Look at:
  export KUBECONFIG=$ADMIN
  kubectl get networktunings,networktuningnodestates -o wide
  kubectl get networktuningnodestate $THIS_HOST -o yaml      # this host: topology and plannedChanges
  kubectl get events -A --field-selector involvedObject.kind=NetworkTuning
  curl -i http://127.0.0.1:$DATAPLANE_PORT/                   # the data plane (also /1k.bin, /64k.bin)
  curl -i http://127.0.0.1:$PROXY_PORT/                   # the data plane as a reverse proxy in front of it
  curl http://127.0.0.1:$OPERATOR_METRICS/metrics                   # operator metrics
  curl http://127.0.0.1:$AGENT_METRICS/metrics                   # an agent's metrics (demo-node-1; ports up to $((AGENT_METRICS + FIXTURE_NODES)))
  curl http://127.0.0.1:$DATAPLANE_ADMIN/metrics                   # data-plane metrics (the proxy's: :$PROXY_ADMIN)
  http://127.0.0.1:$PROMETHEUS_PORT/targets and /alerts              # Prometheus
Logs are in $DEMO/*.log. Stop everything with: make demo-down
MSG
}

down() {
  [[ -d "$DEMO" ]] || { echo "nothing is running"; return 0; }
  step "stopping the demo"
  bash hack/demo-chart.sh stop "$DEMO" >/dev/null 2>&1 || true
  for p in proxy dataplane nodes operator cluster; do stop_process "$p"; done
  rm -rf "$DEMO"
  echo "stopped"
}

case "${1:-up}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down"; exit 2 ;;
esac
