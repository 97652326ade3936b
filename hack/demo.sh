#!/usr/bin/env bash
# `make demo` / `make demo-down`: NetTune's main job on one machine, on a real node.
#
# A local cluster (etcd, kube-apiserver, kube-controller-manager, kube-scheduler) with one real node: this machine,
# through a kubelet on containerd/runc with a bridge CNI, and an image registry on loopback 127.0.0.2 (TLS, basic auth)
# (localcluster/). NetTune's images are built here and pushed to the registry, the chart is pushed there as an OCI
# artifact and installed from oci:// with helm (the operator Deployment on; every pod pulls its image, by digest, with
# the chart's pull secret), and a NetworkTuning tunes what the demo owns: a veth pair it creates, a reversible sysctl,
# and the data plane the operator launches as a pod pinned by the kubelet. The machine's real NIC is left alone.
# Beside it, unless GUEST_NODE=0, the guest node (simulated hardware: a QEMU guest with 2 NUMA nodes and a 4-queue
# virtio_net data NIC on NUMA node 1, running a real kernel and a real kubelet; localcluster's GuestNode) and a second
# NetworkTuning for it: one data-plane pod per NUMA node, the data NIC's queue interrupts, hugepages per NUMA node.
# `make demo-down` reverts and stops everything, the guest and all it made on the host included.
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
# The guest node: on unless GUEST_NODE=0 (as for `make test`), for machines without /dev/net/tun or QEMU.
GUEST=${GUEST_NODE:-1}
GUEST_NAME=nettune-guest
GUEST_TUNING=demo-guest
GUEST_DATA_NIC=eth1                      # GuestNode.DataNic: the 4-queue NIC on NUMA node 1
GUEST_MGMT_IP=10.250.0.2                 # GuestNode.ManagementAddress: the node IP (the pods' admin ports)
GUEST_DATA_IP=10.250.1.2                 # GuestNode.DataAddress: the data NIC's
GUEST_STATE=/var/lib/nettune-guest       # GuestNode.StateDir: the control agent's token
SIMULATED="simulated hardware: a QEMU guest"

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

pod_ip() { kctl -n "$1" get pods -l "$2" --field-selector "spec.nodeName=$NODE" -o jsonpath='{.items[0].status.podIP}'; }
guest_on() { [[ $GUEST != 0 ]]; }

# Runs a bash script as root in the guest through its control agent (GuestNode.ExecAsync's protocol); prints its
# output and returns its exit code.
guest_sh() {
  local headers code
  headers=$(mktemp)
  curl -fsS --max-time 300 -D "$headers" -H "X-Token: $(cat "$GUEST_STATE/token")" --data-binary "$1" \
    "http://$GUEST_MGMT_IP:7777/sh" || { rm -f "$headers"; return 1; }
  code=$(tr -d '\r' <"$headers" | sed -n 's/^X-Exit-Code: //Ip')
  rm -f "$headers"
  return "${code:-1}"
}

# The guest reaches none of the host's loopback addresses, so not the registry on 127.0.0.2: the node's two images go
# into the guest's containerd from their archives (the guest reads the host's files over 9p) under the registry's
# names, by tag and by digest (the CRI finds an image by the names it has; the archive's manifest is the one pushed),
# so the kubelet pulls nothing. Arguments: the tag, then IMAGE=DIGEST for agent and dataplane.
guest_images() {
  local tag=$1 image digest script="" ctr="ctr -a /run/containerd/containerd.sock -n k8s.io images"
  shift
  for pair in "$@"; do
    image=${pair%%=*} digest=${pair#*=}
    script+="$ctr import '$ROOT/.artifacts/images/$image.oci.tar' >/dev/null && "
    script+="$ctr tag --force docker.io/nettune/$image:$tag $REGISTRY_HOST/nettune/$image:$tag >/dev/null && "
    script+="$ctr tag --force docker.io/nettune/$image:$tag $REGISTRY_HOST/nettune/$image@$digest >/dev/null && "
  done
  guest_sh "${script}true"
}

# The data plane of both tunings: the same image, ports and files.
data_plane_yaml() {
  cat <<YAML
    image: $REGISTRY_HOST/nettune/dataplane:$1
    mode: StaticFiles
    port: $DATAPLANE_PORT
    adminPort: $DATAPLANE_ADMIN
    staticFiles: {hostPath: $DEMO/www}
YAML
}

# Step 5: the guest's NetworkTuning, once its images are in the guest's containerd (applied before the host's tuning
# is waited for: the guest's agent and pods start under emulation, the slow part of the demo).
guest_apply() {
  local tag=$1
  step "5/7 a NetworkTuning for the guest node '$GUEST_NAME' ($SIMULATED): a data-plane pod per NUMA node, the data NIC's queue interrupts, RPS/XPS, hugepages per NUMA node"
  if [[ -f "$DEMO/guest-images.pid" ]]; then
    wait "$(cat "$DEMO/guest-images.pid")" || { echo "importing the images into the guest failed:"; cat "$DEMO/guest-images.log"; exit 1; }
    rm -f "$DEMO/guest-images.pid"
    echo "    the agent and data-plane images are in the guest's containerd ($((SECONDS - STARTED))s into the demo)"
  fi
  kctl apply -f - <<YAML
apiVersion: nettune.io/v1alpha1
kind: NetworkTuning
metadata:
  name: $GUEST_TUNING
spec:
  nodeSelector:
    matchLabels: {nettune.io/simulated: qemu-2socket}
  nic:
    interfaces: {names: ["$GUEST_DATA_NIC"]}
    irqAffinity: {policy: NumaLocalSpread}
    rps: {enabled: true}
    xps: {enabled: true}
  hugepages:
    - size: 2Mi
      pagesPerNumaNode: 8
      perNumaNode: [{numaNode: 1, pages: 16}]
  dataPlane:
    enabled: true
    # All, not the default NicLocal: NicLocal would start one pod only, on NUMA node 1 where the data NIC is (a pod
    # on node 0 sends and receives every packet across the socket link). The demo shows a pod on each socket.
    numaNodes: All
$(data_plane_yaml "$tag")
YAML
}

guest_wait() {
  wait_for "NetworkTuning $GUEST_TUNING to be Ready (kubectl describe networktuning $GUEST_TUNING)" 300 \
    kctl wait --for=condition=Ready --timeout=5s "networktuning/$GUEST_TUNING"
  echo "    $GUEST_TUNING Ready ($((SECONDS - STARTED))s into the demo)"
  if ! wait_for "two data-plane pods on the guest" 240 guest_pods_ready; then
    echo "the guest's data-plane pods are not both Running; the kubelet says:"
    kctl -n "$NODE_NS" get events --field-selector involvedObject.kind=Pod | tail -n 5
  fi
}

guest_pods_ready() {
  [[ $(kctl -n "$NODE_NS" get pods -l "nettune.io/tuning=$GUEST_TUNING" \
        -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' | grep -c True) -eq 2 ]]
}

# Step 6 on the guest: every value read back from the guest's kernel and kubelet.
guest_show() {
  printf '\n    the guest node %s (%s: 2 sockets x 2 cores in 2 NUMA nodes, a 4-queue virtio_net NIC; a real kernel and kubelet):\n' "$GUEST_NAME" "$SIMULATED"
  kctl -n "$NODE_NS" get pods -l "nettune.io/tuning=$GUEST_TUNING" -o wide -L nettune.io/numa-node | sed 's/^/    /'
  local state name uid numa container admin cpus allowed served
  state=$(guest_sh 'cat /var/lib/kubelet/cpu_manager_state' || true)
  local -a pods=()
  mapfile -t pods < <(kctl -n "$NODE_NS" get pods -l "nettune.io/tuning=$GUEST_TUNING" -o jsonpath='{range .items[*]}{.metadata.name} {.metadata.uid} {.metadata.labels.nettune\.io/numa-node} {.spec.containers[0].name} {.spec.containers[0].ports[0].containerPort}{"\n"}{end}')
  declare -A before
  for line in "${pods[@]}"; do
    read -r name uid numa container admin <<<"$line"
    cpus=$(python3 -c 'import json, sys; print(json.load(sys.stdin)["entries"][sys.argv[1]][sys.argv[2]])' "$uid" "$container" <<<"$state" 2>/dev/null || echo "?")
    allowed=$(guest_sh "for p in \$(pgrep -f '^/app/dataplane'); do tr '\\0' ' ' </proc/\$p/cmdline | grep -qE -- '--admin-port $admin( |\$)' && awk '/^Cpus_allowed_list/ {print \$2}' /proc/\$p/status; done; true" || echo "?")
    echo "    $name (made for NUMA node $numa, whose CPUs are $(guest_sh "cat /sys/devices/system/node/node$numa/cpulist")): the guest's kubelet pinned it to CPUs $cpus (cpu_manager_state); its process runs on Cpus_allowed_list $allowed"
    before[$admin]=$(pod_requests "$admin")
  done

  echo "    curl http://$GUEST_DATA_IP:$DATAPLANE_PORT/index.html (the guest's data NIC; both pods listen on the port, SO_REUSEPORT):"
  curl -fsS "http://$GUEST_DATA_IP:$DATAPLANE_PORT/index.html" | sed 's/^/      /' || echo "      (no answer)"
  # New connections until each pod has served some: the kernel spreads them over the listeners by their addresses.
  local tries=0 all
  while :; do
    curl -fsS -o /dev/null "http://$GUEST_DATA_IP:$DATAPLANE_PORT/index.html" || true
    tries=$((tries + 1)); all=1
    for line in "${pods[@]}"; do
      read -r name uid numa container admin <<<"$line"
      (($(pod_requests "$admin") > ${before[$admin]:-0})) || all=0
    done
    ((all == 1 || tries >= 40)) && break
  done
  for line in "${pods[@]}"; do
    read -r name uid numa container admin <<<"$line"
    served=$(($(pod_requests "$admin") - ${before[$admin]:-0}))
    echo "      $name served $served of those $((tries + 1)) requests (nettune_dataplane_requests_total at http://$GUEST_MGMT_IP:$admin/metrics)"
  done

  echo "    the data NIC's queue interrupts, read from the guest's kernel after that traffic:"
  guest_sh "
    dev=\$(readlink -f /sys/class/net/$GUEST_DATA_NIC/device); pci=\${dev%/*}; virtio=\${dev##*/}
    echo \"$GUEST_DATA_NIC: PCI \${pci##*/} on NUMA node \$(cat \$pci/numa_node) (local CPUs \$(cat \$pci/local_cpulist)), \$(ethtool -l $GUEST_DATA_NIC | awk '/^Combined/ {c=\$2} END {print c}') combined channels, interrupts \$virtio-input.N/output.N\"
    grep -E \" \$virtio-(input|output)\\.\" /proc/interrupts | while read -r irq c0 c1 c2 c3 rest; do
      irq=\${irq%:}
      printf '  %-16s irq %-3s smp_affinity_list %-4s effective_affinity_list %-4s interrupts on CPU 0/1/2/3: %s/%s/%s/%s\n' \
        \"\${rest##* }\" \$irq \"\$(cat /proc/irq/\$irq/smp_affinity_list)\" \"\$(cat /proc/irq/\$irq/effective_affinity_list)\" \$c0 \$c1 \$c2 \$c3
    done
    for q in /sys/class/net/$GUEST_DATA_NIC/queues/rx-*; do printf '  %s rps_cpus %s' \${q##*/} \$(cat \$q/rps_cpus); done; echo
    for q in /sys/class/net/$GUEST_DATA_NIC/queues/tx-*; do printf '  %s xps_cpus %s' \${q##*/} \$(cat \$q/xps_cpus); done; echo
  " | sed 's/^/      /' || echo "      (the guest did not answer)"

  echo "    hugepages per NUMA node in the guest's kernel, the Node's allocatable and each pod's limit:"
  guest_sh 'for n in /sys/devices/system/node/node[0-9]*; do echo "NUMA node ${n##*node}: $(cat $n/hugepages/hugepages-2048kB/nr_hugepages) pages of 2Mi"; done' | sed 's/^/      /' || true
  echo "      Node $GUEST_NAME allocatable hugepages-2Mi: $(kctl get node "$GUEST_NAME" -o jsonpath='{.status.allocatable.hugepages-2Mi}')"
  kctl -n "$NODE_NS" get pods -l "nettune.io/tuning=$GUEST_TUNING" \
    -o jsonpath='{range .items[*]}      {.metadata.name}: hugepages-2Mi limit {.spec.containers[0].resources.limits.hugepages-2Mi}{"\n"}{end}'
}

# Requests one guest data-plane pod has answered, from its metrics on its admin port.
pod_requests() {
  { curl -fsS --max-time 5 "http://$GUEST_MGMT_IP:$1/metrics" 2>/dev/null || true; } | awk '/^nettune_dataplane_requests_total/ {s += $2} END {printf "%d\n", s}'
}

up() {
  [[ $(id -u) -eq 0 ]] || { echo "the demo runs a kubelet and containerd: run it as root"; exit 1; }
  mkdir -p "$DEMO"
  # The agent's journal folder (a hostPath the kubelet creates): removed again on the way down if it is new.
  [[ -d /var/lib/nettune || -f "$DEMO/journal-dir-was-absent" ]] || touch "$DEMO/journal-dir-was-absent"
  for p in $DATAPLANE_PORT $DATAPLANE_ADMIN $PROMETHEUS_PORT; do
    running cluster || port_free "$p" || { echo "port $p on 127.0.0.1 is taken; stop what uses it (or make demo-down) first"; exit 1; }
  done

  if guest_on; then
    [[ -e /dev/net/tun && -x /usr/bin/qemu-system-x86_64 ]] \
      || { echo "the guest node needs /dev/net/tun and qemu-system-x86_64 (make deps installs it); GUEST_NODE=0 leaves the guest out"; exit 1; }
  fi
  # Before the guest boots: it reads the host's files over 9p and caches what it has looked up.
  mkdir -p "$DEMO/www"
  [[ -f "$DEMO/www/index.html" ]] || printf '<!doctype html><title>NetTune</title><h1>Served by the NetTune data-plane pod</h1>\n' >"$DEMO/www/index.html"
  [[ -f "$DEMO/www/1k.bin" ]] || head -c 1024 /dev/urandom >"$DEMO/www/1k.bin"
  [[ -f "$DEMO/www/64k.bin" ]] || head -c 65536 /dev/urandom >"$DEMO/www/64k.bin"

  step "1/7 building NetTune's images here (OCI archives; skipped when the sources are unchanged)"
  NETTUNE_PUBLISH_CACHE=1 bash hack/images.sh archives "$ROOT/.artifacts/images" 2>&1 | grep -E '^\[images\]' | sed 's/^/    /'

  if running cluster; then
    step "2/7 the local cluster is already running (make demo-down stops it)"
  else
    local guest_args=()
    guest_on && guest_args=(--guest-node "$GUEST_NAME")
    step "2/7 starting the control plane, the real node '$NODE' (kubelet, containerd, runc, bridge CNI)$(guest_on && echo " and the guest node '$GUEST_NAME' ($SIMULATED)")"
    rm -f "$ADMIN"
    start cluster env NETTUNE_REPO_ROOT="$ROOT" "${CLI[@]}" \
      up "$ADMIN" --node "$NODE" --label nettune.io/demo=real-node --registry "${guest_args[@]}"
    wait_for "the local cluster (see $DEMO/cluster.log)" 420 test -f "$ADMIN" \
      || { tail -n 30 "$DEMO/cluster.log"; exit 1; }
    grep -E '^  (guest )?node|image registry|cluster ready' "$DEMO/cluster.log" | sed 's/^/    /'
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
  if guest_on; then
    # In the background, while the chart installs: under emulation an import takes tens of seconds.
    guest_images "$tag" "agent=${digests[agent]}" "dataplane=${digests[dataplane]}" >"$DEMO/guest-images.log" 2>&1 &
    echo $! >"$DEMO/guest-images.pid"
  fi
  kctl get nodes -o wide -L nettune.io/simulated | sed 's/^/    /'

  step "3/7 helm install nettune ${chart[0]} (CRDs, RBAC, the operator Deployment; images pulled with the chart's secret)"
  kctl apply --validate=false -f crds/ >/dev/null
  local guest_chart_args=()
  if guest_on; then
    guest_chart_args=(
      # The operator (and the chart's hook Jobs) on this machine's node: the guest has no operator image, and under
      # emulation the JIT-compiled operator misses its probes.
      --set "operator.nodeSelector.nettune\.io/demo=real-node"
      # No CPU limit for the agents: on the emulated node a 500m limit throttled the agent for minutes at start.
      --set agent.resources.limits.cpu=null
      # The guest's kubelet counts the hugepages its agent reserves once restarted: its init starts it again when it
      # exits. The command is the operator's, for every node; only the guest's tuning asks for hugepages.
      --set agent.kubeletRestart.mode=command
      --set "agent.kubeletRestart.command=nsenter --target 1 --mount --pid -- /bin/busybox killall kubelet"
    )
  fi
  kctl create namespace "$NS" --dry-run=client -o yaml | kctl apply -f - >/dev/null
  kctl -n "$NS" create secret generic "$PULL_SECRET" --type=kubernetes.io/dockerconfigjson \
    --from-file=.dockerconfigjson="$DEMO/registry-dockerconfig.json" --dry-run=client -o yaml | kctl apply -f - >/dev/null
  HELM_MAJOR=4 bash hack/demo-chart.sh install-operator "$ADMIN" "$NS" "$DEMO/www" "${chart[0]}" --version "${chart[1]}" --server-side=false \
    --ca-file "$REGISTRY_CA" --username "$REGISTRY_USERNAME" --password "$REGISTRY_PASSWORD" \
    --set "imagePullSecrets[0].name=$PULL_SECRET" \
    --set "operator.image.repository=$REGISTRY_HOST/nettune/operator" --set "operator.image.digest=${digests[operator]}" \
    --set "agent.image.repository=$REGISTRY_HOST/nettune/agent" --set "agent.image.digest=${digests[agent]}" \
    --set "dataPlane.allowedImages[0]=$REGISTRY_HOST/nettune/dataplane:*" "${guest_chart_args[@]}" >/dev/null
  # The agents and the data planes run in the node namespace the chart made: pull secrets are namespaced, so the
  # secret goes there too, before the first NetworkTuning makes the agent DaemonSet.
  kctl -n "$NODE_NS" create secret generic "$PULL_SECRET" --type=kubernetes.io/dockerconfigjson \
    --from-file=.dockerconfigjson="$DEMO/registry-dockerconfig.json" --dry-run=client -o yaml | kctl apply -f - >/dev/null
  # NetworkTunings go through the operator's admission webhook: wait until a Ready operator pod serves it.
  kctl -n "$NS" rollout status deploy/nettune-operator --timeout=180s >/dev/null
  wait_for "the operator's webhook endpoint" 60 bash -c \
    "kubectl --kubeconfig '$ADMIN' -n '$NS' get endpoints nettune-operator-webhook -o jsonpath='{.subsets[0].addresses[0].ip}' | grep -q ."
  kctl -n "$NS" get pods -o wide | sed 's/^/    /'

  step "4/7 a NetworkTuning for what the demo owns: veth $VETH (2 queues), a sysctl, the data plane serving $DEMO/www"
  ip link show "$VETH" >/dev/null 2>&1 || {
    ip link add "$VETH" numrxqueues 2 numtxqueues 2 type veth peer name "${VETH%0}1" numrxqueues 2 numtxqueues 2
    ip link set "$VETH" up
  }
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
$(data_plane_yaml "$tag")
YAML
  if guest_on; then guest_apply "$tag"; fi
  wait_for "NetworkTuning $TUNING to be Ready (kubectl describe networktuning $TUNING)" 180 \
    kctl wait --for=condition=Ready --timeout=5s "networktuning/$TUNING"
  if ! wait_for "the data-plane pod to run" 120 kctl -n "$NODE_NS" wait --for=condition=Ready --timeout=5s pod -l "nettune.io/tuning=$TUNING"; then
    echo "the data-plane pod is not Running; the kubelet says:"
    kctl -n "$NODE_NS" get events --field-selector involvedObject.kind=Pod | tail -n 5
  fi

  echo "    done waiting for $TUNING and its data-plane pod ($((SECONDS - STARTED))s into the demo)"
  if guest_on; then guest_wait; fi

  step "6/7 what runs where"
  kctl get networktunings,networktuningnodestates -o wide | sed 's/^/    /'
  kctl get pods -n "$NS" -o wide | sed 's/^/    /'
  kctl get pods -n "$NODE_NS" -o wide -L nettune.io/numa-node | sed 's/^/    /'
  local pid
  pid=$(pgrep -f '^/app/dataplane' | head -n 1 || true)
  [[ -n $pid ]] && echo "    the data-plane process (host pid $pid) runs on CPUs $(awk '/Cpus_allowed_list/ {print $2}' "/proc/$pid/status"), as the kubelet's CPU manager assigned"
  echo "    on the host: net.core.somaxconn=$(cat /proc/sys/net/core/somaxconn), $VETH rx-0 rps_cpus=$(cat /sys/class/net/$VETH/queues/rx-0/rps_cpus)"
  echo "    curl http://127.0.0.1:$DATAPLANE_PORT/index.html:"
  curl -fsS "http://127.0.0.1:$DATAPLANE_PORT/index.html" | sed 's/^/      /' || echo "      (no answer)"
  if guest_on; then guest_show; fi

  step "7/7 Prometheus with the chart's alert rules on 127.0.0.1:$PROMETHEUS_PORT, scraping the pods' endpoints"
  local operator agent
  operator=$(pod_ip "$NS" app.kubernetes.io/name=nettune-operator)
  agent=$(pod_ip "$NODE_NS" app.kubernetes.io/name=nettune-agent)
  local agents="$NODE=$agent:9101" dataplanes="$agent:$DATAPLANE_ADMIN"
  if guest_on; then
    agents+=",$GUEST_NAME=$GUEST_MGMT_IP:9101"
    dataplanes+=",$GUEST_MGMT_IP:$DATAPLANE_ADMIN,$GUEST_MGMT_IP:$((DATAPLANE_ADMIN + 1))"
  fi
  bash hack/demo-chart.sh prometheus "$DEMO" "$PROMETHEUS_PORT" "$operator:8080" "$agents" "$dataplanes" >/dev/null

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
MSG
  guest_on && cat <<MSG
The guest node $GUEST_NAME ($SIMULATED; its console, containerd and kubelet logs: $(sed -n 's/^  guest node console log: //p' "$DEMO/cluster.log" | xargs -r dirname)):
  kubectl get networktuning $GUEST_TUNING -o yaml                # status.dataPlane: each pod's NUMA node and CPUs
  kubectl get networktuningnodestate $GUEST_NAME -o yaml         # the guest's NUMA nodes, its NIC's queues and interrupts
  curl http://$GUEST_DATA_IP:$DATAPLANE_PORT/                          # the two data-plane pods, over the guest's data NIC
  curl http://$GUEST_MGMT_IP:$DATAPLANE_ADMIN/readyz  (NUMA node 0), :$((DATAPLANE_ADMIN + 1))/readyz (NUMA node 1)
MSG
  cat <<MSG
Logs: $DEMO/*.log, the node's in /var/lib/nettune-node/{kubelet,containerd}.log. Stop and revert everything: make demo-down
MSG
}

down() {
  [[ -d "$DEMO" ]] || { echo "nothing is running"; return 0; }
  step "stopping the demo"
  bash hack/demo-chart.sh stop "$DEMO" >/dev/null 2>&1 || true
  if running cluster && [[ -f $ADMIN ]]; then
    # Revert first, while the operator and the agent still run, then uninstall.
    kctl delete networktuning "$TUNING" "$GUEST_TUNING" --ignore-not-found --timeout=180s >/dev/null || echo "    the revert of $TUNING or $GUEST_TUNING did not finish"
    HELM_MAJOR=4 bash hack/demo-chart.sh uninstall "$ADMIN" "$NS" >/dev/null 2>&1 || true
  fi
  # The cluster drains the nodes and puts the host back (kubelet's sysctls, mounts, cgroups, the bridge; the guest's
  # QEMU, bridge, taps, addresses, routing rule and state folder).
  stop_process cluster 180
  ip link del "$VETH" 2>/dev/null || true
  [[ -f "$DEMO/journal-dir-was-absent" ]] && rmdir /var/lib/nettune 2>/dev/null || true
  rm -rf "$DEMO"
  local left=()
  for link in nettune-g0 ntg-mgmt ntg-data; do ip link show "$link" >/dev/null 2>&1 && left+=("link $link"); done
  local qemu
  qemu=$(pgrep -f "^/usr/bin/qemu-system-x86_64 -name nettune-guest-$GUEST_NAME " | tr '\n' ' ' || true)
  [[ -n $qemu ]] && left+=("qemu (pid $qemu)")
  ip -o addr | grep -q ' 10\.250\.' && left+=("addresses: $(ip -o addr | grep ' 10\.250\.' | awk '{print $2, $4}' | tr '\n' ' ')")
  ip rule | grep -q 'lookup 7250' && left+=("ip rule lookup 7250")
  [[ -d $GUEST_STATE ]] && left+=("$GUEST_STATE")
  if ((${#left[@]})); then
    echo "left over from the guest node: ${left[*]}"; exit 1
  fi
  echo "stopped in $((SECONDS - STARTED))s; the host is as before (no nettune-g0 or ntg-* link, no guest QEMU, no 10.250.* address, no rule)"
}

case "${1:-up}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down"; exit 2 ;;
esac
