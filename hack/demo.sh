#!/usr/bin/env bash
# `make demo` / `make demo-down`: NetTune's main job on one machine, on a real node.
#
# A local cluster (etcd, kube-apiserver, kube-controller-manager, kube-scheduler) with one real node: this machine,
# through a kubelet on containerd/runc with a bridge CNI, and an image registry on loopback 127.0.0.2 (TLS, basic auth)
# (localcluster/). NetTune's images are built here and pushed to the registry, the chart is pushed there as an OCI
# artifact and installed from oci:// with helm (the operator Deployment on; every pod pulls its image, by digest, with
# the chart's pull secret), and a NetworkTuning tunes what the demo owns: a veth pair it creates, a reversible sysctl,
# and the data plane the operator launches as a pod pinned by the kubelet. The machine's real NIC is left alone.
# `make demo-down` reverts and stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DEMO="$ROOT/.demo"
ADMIN="$DEMO/kubeconfig"
NS=nettune-system
NODE_NS=$NS-node # the chart's nodeNamespace: the agent and the data-plane pods (Pod Security level privileged)
CONFIGURATION=${CONFIGURATION:-Debug}
BIN="bin/$CONFIGURATION/net10.0"
NODE=${THIS_HOST:-$(hostname -s | tr '[:upper:]_' '[:lower:]-')}
TUNING=demo
VETH=nettune-demo0
DATAPLANE_PORT=18080
DATAPLANE_ADMIN=9180
PROMETHEUS_PORT=19090
CLI=(dotnet "localcluster/NetTune.LocalCluster.Cli/$BIN/nettune-local-cluster.dll")
PULL_SECRET=registry-credentials

STARTED=$SECONDS
LAST=$SECONDS
step() {
  local now=$SECONDS
  printf '\n\033[1m==> %s\033[0m  (%ss since the last step, %ss in all)\n' "$*" $((now - LAST)) $((now - STARTED))
  LAST=$now
}
running() { [[ -f "$DEMO/$1.pid" ]] && kill -0 "$(cat "$DEMO/$1.pid")" 2>/dev/null; }
kctl() { kubectl --kubeconfig "$ADMIN" "$@"; }
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start() {
  local name=$1; shift
  nohup "$@" >"$DEMO/$name.log" 2>&1 </dev/null &
  echo $! >"$DEMO/$name.pid"
}

stop_process() {
  local name=$1 seconds=${2:-10}
  running "$name" || return 0
  kill -TERM "$(cat "$DEMO/$name.pid")" 2>/dev/null || true
  for _ in $(seq 1 $((seconds * 4))); do running "$name" || return 0; sleep 0.25; done
  kill -KILL "$(cat "$DEMO/$name.pid")" 2>/dev/null || true
}

wait_for() {
  local what=$1 seconds=$2; shift 2
  local deadline=$((SECONDS + seconds))
  while ((SECONDS < deadline)); do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; done
  echo "timed out after ${seconds}s waiting for $what"; return 1
}

pod_ip() { kctl -n "$1" get pods -l "$2" -o jsonpath='{.items[0].status.podIP}'; }

up() {
  [[ $(id -u) -eq 0 ]] || { echo "the demo runs a kubelet and containerd: run it as root"; exit 1; }
  mkdir -p "$DEMO"
  # The agent's journal folder (a hostPath the kubelet creates): removed again on the way down if it is new.
  [[ -d /var/lib/nettune || -f "$DEMO/journal-dir-was-absent" ]] || touch "$DEMO/journal-dir-was-absent"
  for p in $DATAPLANE_PORT $DATAPLANE_ADMIN $PROMETHEUS_PORT; do
    running cluster || port_free "$p" || { echo "port $p on 127.0.0.1 is taken; stop what uses it (or make demo-down) first"; exit 1; }
  done

  step "1/6 building NetTune's images here (OCI archives; skipped when the sources are unchanged)"
  NETTUNE_PUBLISH_CACHE=1 bash hack/images.sh archives "$ROOT/.artifacts/images" 2>&1 | grep -E '^\[images\]' | sed 's/^/    /'

  if running cluster; then
    step "2/6 the local cluster is already running (make demo-down stops it)"
  else
    step "2/6 starting the control plane and the real node '$NODE' (kubelet, containerd, runc, bridge CNI)"
    rm -f "$ADMIN"
    start cluster env NETTUNE_REPO_ROOT="$ROOT" "${CLI[@]}" \
      up "$ADMIN" --node "$NODE" --label nettune.io/demo=real-node --registry
    wait_for "the local cluster (see $DEMO/cluster.log)" 180 test -f "$ADMIN" \
      || { tail -n 30 "$DEMO/cluster.log"; exit 1; }
    grep -E '^  node:|image registry|cluster ready' "$DEMO/cluster.log" | sed 's/^/    /'
  fi
  # shellcheck source=/dev/null
  . "$DEMO/registry.env"
  local tag image ref
  tag=$(sed -n 's/^appVersion:[[:space:]]*"\{0,1\}\([^"]*\)"\{0,1\}[[:space:]]*$/\1/p' charts/nettune/Chart.yaml)
  declare -A digests
  for image in operator agent dataplane; do
    ref=$("${CLI[@]}" push-image "$DEMO/registry.json" "$ROOT/.artifacts/images/$image.oci.tar" "nettune/$image:$tag")
    digests[$image]=${ref##*@}
    echo "    pushed $ref"
  done
  local chart
  # helm 4 for the registry's chart: helm 3 talks plain HTTP to any loopback registry, and this one serves TLS.
  read -r -a chart < <("${CLI[@]}" push-chart "$DEMO/registry.json" "$(bash hack/helm.sh 4 | tail -n 1)" charts/nettune)
  echo "    pushed the chart: ${chart[0]} ${chart[1]}"
  kctl get nodes -o wide | sed 's/^/    /'

  step "3/6 helm install nettune ${chart[0]} (CRDs, RBAC, the operator Deployment; images pulled with the chart's secret)"
  kctl apply --validate=false -f crds/ >/dev/null
  kctl create namespace "$NS" --dry-run=client -o yaml | kctl apply -f - >/dev/null
  kctl -n "$NS" create secret generic "$PULL_SECRET" --type=kubernetes.io/dockerconfigjson \
    --from-file=.dockerconfigjson="$DEMO/registry-dockerconfig.json" --dry-run=client -o yaml | kctl apply -f - >/dev/null
  HELM_MAJOR=4 bash hack/demo-chart.sh install-operator "$ADMIN" "$NS" "$DEMO/www" "${chart[0]}" --version "${chart[1]}" --server-side=false \
    --ca-file "$REGISTRY_CA" --username "$REGISTRY_USERNAME" --password "$REGISTRY_PASSWORD" \
    --set "imagePullSecrets[0].name=$PULL_SECRET" \
    --set "operator.image.repository=$REGISTRY_HOST/nettune/operator" --set "operator.image.digest=${digests[operator]}" \
    --set "agent.image.repository=$REGISTRY_HOST/nettune/agent" --set "agent.image.digest=${digests[agent]}" \
    --set "dataPlane.allowedImages[0]=$REGISTRY_HOST/nettune/dataplane:*" >/dev/null
  # The agents and the data planes run in the node namespace the chart made: pull secrets are namespaced, so the
  # secret goes there too, before the first NetworkTuning makes the agent DaemonSet.
  kctl -n "$NODE_NS" create secret generic "$PULL_SECRET" --type=kubernetes.io/dockerconfigjson \
    --from-file=.dockerconfigjson="$DEMO/registry-dockerconfig.json" --dry-run=client -o yaml | kctl apply -f - >/dev/null
  # NetworkTunings go through the operator's admission webhook: wait until a Ready operator pod serves it.
  kctl -n "$NS" rollout status deploy/nettune-operator --timeout=180s >/dev/null
  wait_for "the operator's webhook endpoint" 60 bash -c \
    "kubectl --kubeconfig '$ADMIN' -n '$NS' get endpoints nettune-operator-webhook -o jsonpath='{.subsets[0].addresses[0].ip}' | grep -q ."
  kctl -n "$NS" get pods -o wide | sed 's/^/    /'

  step "4/6 a NetworkTuning for what the demo owns: veth $VETH (2 queues), a sysctl, the data plane serving $DEMO/www"
  ip link show "$VETH" >/dev/null 2>&1 || {
    ip link add "$VETH" numrxqueues 2 numtxqueues 2 type veth peer name "${VETH%0}1" numrxqueues 2 numtxqueues 2
    ip link set "$VETH" up
  }
  mkdir -p "$DEMO/www"
  [[ -f "$DEMO/www/index.html" ]] || printf '<!doctype html><title>NetTune</title><h1>Served by the NetTune data-plane pod</h1>\n' >"$DEMO/www/index.html"
  [[ -f "$DEMO/www/1k.bin" ]] || head -c 1024 /dev/urandom >"$DEMO/www/1k.bin"
  [[ -f "$DEMO/www/64k.bin" ]] || head -c 65536 /dev/urandom >"$DEMO/www/64k.bin"
  kctl apply -f - <<YAML
apiVersion: nettune.io/v1alpha1
kind: NetworkTuning
metadata:
  name: $TUNING
spec:
  nodeSelector:
    matchLabels: {nettune.io/demo: real-node}
  nic:
    interfaces: {names: ["$VETH"]}
    rps: {enabled: true, flowEntries: 4096}
    xps: {enabled: true}
  sysctls:
    net.core.somaxconn: "8192"
  dataPlane:
    enabled: true
    image: $REGISTRY_HOST/nettune/dataplane:$tag
    mode: StaticFiles
    port: $DATAPLANE_PORT
    adminPort: $DATAPLANE_ADMIN
    staticFiles: {hostPath: $DEMO/www}
YAML
  wait_for "NetworkTuning $TUNING to be Ready (kubectl describe networktuning $TUNING)" 180 \
    kctl wait --for=condition=Ready --timeout=5s "networktuning/$TUNING"
  if ! wait_for "the data-plane pod to run" 120 kctl -n "$NODE_NS" wait --for=condition=Ready --timeout=5s pod -l "nettune.io/tuning=$TUNING"; then
    echo "the data-plane pod is not Running; the kubelet says:"
    kctl -n "$NODE_NS" get events --field-selector involvedObject.kind=Pod | tail -n 5
  fi

  step "5/6 what runs where"
  kctl get networktunings,networktuningnodestates -o wide | sed 's/^/    /'
  kctl get pods -n "$NS" -o wide | sed 's/^/    /'
  kctl get pods -n "$NODE_NS" -o wide | sed 's/^/    /'
  local pid
  pid=$(pgrep -f '^/app/dataplane' | head -n 1 || true)
  [[ -n $pid ]] && echo "    the data-plane process (host pid $pid) runs on CPUs $(awk '/Cpus_allowed_list/ {print $2}' "/proc/$pid/status"), as the kubelet's CPU manager assigned"
  echo "    on the host: net.core.somaxconn=$(cat /proc/sys/net/core/somaxconn), $VETH rx-0 rps_cpus=$(cat /sys/class/net/$VETH/queues/rx-0/rps_cpus)"
  echo "    curl http://127.0.0.1:$DATAPLANE_PORT/index.html:"
  curl -fsS "http://127.0.0.1:$DATAPLANE_PORT/index.html" | sed 's/^/      /' || echo "      (no answer)"

  step "6/6 Prometheus with the chart's alert rules on 127.0.0.1:$PROMETHEUS_PORT, scraping the pods' endpoints"
  local operator agent
  operator=$(pod_ip "$NS" app.kubernetes.io/name=nettune-operator)
  agent=$(pod_ip "$NODE_NS" app.kubernetes.io/name=nettune-agent)
  bash hack/demo-chart.sh prometheus "$DEMO" "$PROMETHEUS_PORT" "$operator:8080" "$NODE=$agent:9101" "$agent:$DATAPLANE_ADMIN" >/dev/null

  cat <<MSG

Ready in $((SECONDS - STARTED))s. The demo keeps running. Look at:
  export KUBECONFIG=$ADMIN
  kubectl get nodes,networktunings,networktuningnodestates -o wide
  kubectl -n $NS get pods -o wide                      # the operator, on $NODE
  kubectl -n $NODE_NS get pods -o wide                 # the agent and the data plane
  kubectl get networktuningnodestate $NODE -o yaml     # topology and every knob's result
  kubectl get events -A
  curl -i http://127.0.0.1:$DATAPLANE_PORT/            # the data-plane pod (also /1k.bin, /64k.bin)
  curl http://$agent:$DATAPLANE_ADMIN/metrics    # its metrics (admin port on the node IP only); the agent's: http://$agent:9101/metrics
  http://127.0.0.1:$PROMETHEUS_PORT/targets and /alerts
Logs: $DEMO/*.log, the node's in /var/lib/nettune-node/{kubelet,containerd}.log. Stop and revert everything: make demo-down
MSG
}

down() {
  [[ -d "$DEMO" ]] || { echo "nothing is running"; return 0; }
  step "stopping the demo"
  bash hack/demo-chart.sh stop "$DEMO" >/dev/null 2>&1 || true
  if running cluster && [[ -f $ADMIN ]]; then
    # Revert first, while the operator and the agent still run, then uninstall.
    kctl delete networktuning "$TUNING" --ignore-not-found --timeout=120s >/dev/null || echo "    the revert of $TUNING did not finish"
    HELM_MAJOR=4 bash hack/demo-chart.sh uninstall "$ADMIN" "$NS" >/dev/null 2>&1 || true
  fi
  # The cluster drains the node and puts the host back (kubelet's sysctls, mounts, cgroups, the bridge).
  stop_process cluster 90
  ip link del "$VETH" 2>/dev/null || true
  [[ -f "$DEMO/journal-dir-was-absent" ]] && rmdir /var/lib/nettune 2>/dev/null || true
  rm -rf "$DEMO"
  echo "stopped in $((SECONDS - STARTED))s; the host is as before"
}

case "${1:-up}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down"; exit 2 ;;
esac
