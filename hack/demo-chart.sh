#!/usr/bin/env bash
# The chart's part of `make demo`: install the chart into a cluster whose operator and agents run as local processes,
# hand them their ServiceAccounts' tokens, and run a Prometheus that scrapes them with the chart's alert rules.
#
#   hack/demo-chart.sh install KUBECONFIG NAMESPACE DIR     helm upgrade --install (operator.enabled=false: no Deployment);
#                                                          writes DIR/operator.kubeconfig (the operator's ServiceAccount)
#   hack/demo-chart.sh install-operator KUBECONFIG NAMESPACE ALLOWED_HOST_PATH CHART [HELM_ARGS...]
#                                                          helm upgrade --install of CHART (a folder or oci://...) with the
#                                                          operator Deployment on (one replica), waiting for it; for a
#                                                          cluster with a real node
#   hack/demo-chart.sh agent-kubeconfig KUBECONFIG NAMESPACE DIR
#                                                          waits for the agent ServiceAccount the operator creates with its
#                                                          DaemonSet; writes DIR/agent.kubeconfig
#   hack/demo-chart.sh prometheus DIR PORT OPERATOR AGENTS DATAPLANES
#                                                          starts Prometheus on 127.0.0.1:PORT scraping the comma-separated
#                                                          host:port lists (AGENTS as node=host:port); pid in DIR/prometheus.pid
#   hack/demo-chart.sh stop DIR                            stops that Prometheus
#   hack/demo-chart.sh uninstall KUBECONFIG NAMESPACE      helm uninstall (the CRDs stay, Helm's convention)
# Every command prints what it made on its last line of stdout (a path or a URL); progress goes to stderr.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CHART="$ROOT/charts/nettune"
RELEASE=nettune
# The local node's kubelet runs with --root-dir under its state folder (LocalNode.KubeletRootDir); the agents mount it
# read-only for the CPU manager checkpoint.
KUBELET_ROOT_DIR=${KUBELET_ROOT_DIR:-/var/lib/nettune-node/kubelet}
log() { printf '[demo-chart] %s\n' "$*" >&2; }
# HELM_MAJOR=4 for a chart in the local registry: helm 3 talks plain HTTP to any loopback registry.
helm_bin() { bash "$ROOT/hack/helm.sh" "${HELM_MAJOR:-3}" | tail -n 1; }

# A kubeconfig for a ServiceAccount: the admin kubeconfig's server and CA, the account's token.
write_kubeconfig() {
  local admin=$1 ns=$2 account=$3 out=$4 token=""
  # Servers from 1.24 on mint tokens on request; older ones (the local v1.20 cluster) keep one in a Secret.
  token=$(kubectl --kubeconfig "$admin" -n "$ns" create token "$account" --duration=24h 2>/dev/null || true)
  if [[ -z "$token" ]]; then
    for _ in $(seq 1 120); do
      token=$(kubectl --kubeconfig "$admin" -n "$ns" get secrets --field-selector type=kubernetes.io/service-account-token \
        -o jsonpath="{range .items[?(@.metadata.annotations.kubernetes\.io/service-account\.name==\"$account\")]}{.data.token}{end}" 2>/dev/null | head -c 4096 || true)
      [[ -n "$token" ]] && break
      sleep 0.5
    done
    [[ -n "$token" ]] || { log "no token for ServiceAccount $ns/$account"; exit 1; }
    token=$(printf '%s' "$token" | base64 -d)
  fi
  local server ca
  server=$(kubectl --kubeconfig "$admin" config view --raw --minify --flatten -o jsonpath='{.clusters[0].cluster.server}')
  ca=$(kubectl --kubeconfig "$admin" config view --raw --minify --flatten -o jsonpath='{.clusters[0].cluster.certificate-authority-data}')
  umask 077
  cat >"$out" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
  - name: nettune
    cluster:
      server: $server
      certificate-authority-data: $ca
users:
  - name: $account
    user:
      token: $token
contexts:
  - name: $account
    context: {cluster: nettune, user: $account, namespace: $ns}
current-context: $account
KUBECONFIG
  echo "$out"
}

install() {
  local admin=$1 ns=$2 dir=$3
  mkdir -p "$dir"
  local helm
  helm=$(helm_bin)
  log "helm upgrade --install $RELEASE charts/nettune -n $ns (operator.enabled=false: the operator runs as a local process)"
  "$helm" upgrade --install "$RELEASE" "$CHART" --kubeconfig "$admin" -n "$ns" --create-namespace \
    --set operator.enabled=false >&2
  kubectl --kubeconfig "$admin" wait --for=condition=Established --timeout=60s \
    crd/networktunings.nettune.io crd/networktuningnodestates.nettune.io >&2
  write_kubeconfig "$admin" "$ns" "$RELEASE-operator" "$dir/operator.kubeconfig"
}

install_operator() {
  local admin=$1 ns=$2 www=$3 chart=$4 helm
  shift 4
  helm=$(helm_bin)
  log "helm upgrade --install $RELEASE $chart -n $ns (the operator Deployment runs on the node)"
  "$helm" upgrade --install "$RELEASE" "$chart" --kubeconfig "$admin" -n "$ns" --create-namespace \
    --set operator.replicas=1 --set operator.logFormat=text --set "dataPlane.allowedHostPaths[0]=$www" \
    --set agent.kubeletRootDir="$KUBELET_ROOT_DIR" --wait --timeout 5m "$@" >&2
  echo "$RELEASE"
}

agent_kubeconfig() {
  local admin=$1 ns=$2 dir=$3
  mkdir -p "$dir"
  for _ in $(seq 1 120); do
    kubectl --kubeconfig "$admin" -n "$ns" get serviceaccount nettune-agent >/dev/null 2>&1 && break
    sleep 0.5
  done
  kubectl --kubeconfig "$admin" -n "$ns" get serviceaccount nettune-agent >/dev/null \
    || { log "the operator has not created ServiceAccount $ns/nettune-agent (does a NetworkTuning exist?)"; exit 1; }
  write_kubeconfig "$admin" "$ns" nettune-agent "$dir/agent.kubeconfig"
}

targets() { # "a,b" -> "'a', 'b'"
  local out="" t
  IFS=, read -ra items <<<"$1"
  for t in "${items[@]}"; do [[ -n "$t" ]] && out+="${out:+, }'$t'"; done
  echo "$out"
}

prometheus() {
  local dir=$1 port=$2 operator=$3 agents=$4 dataplanes=$5
  local bin helm
  bin=$(bash "$ROOT/hack/prometheus.sh" | tail -n 1)
  helm=$(helm_bin)
  local pdir="$dir/prometheus"
  mkdir -p "$pdir"
  # The PrometheusRule's spec is `groups: ...`: lift it out and dedent it into a rules file.
  "$helm" template "$RELEASE" "$CHART" --set prometheusRule.enabled=true --show-only templates/prometheusrule.yaml \
    | sed -n '/^spec:/,$p' | tail -n +2 | sed 's/^  //' >"$pdir/rules.yaml"
  {
    cat <<CONFIG
global:
  scrape_interval: 5s
  evaluation_interval: 5s
rule_files: [rules.yaml]
scrape_configs:
  - job_name: nettune-operator
    static_configs: [{targets: [$(targets "$operator")]}]
  - job_name: nettune-agent
    static_configs:
CONFIG
    local a
    IFS=, read -ra items <<<"$agents"
    for a in "${items[@]}"; do
      [[ -n "$a" ]] || continue
      printf "      - {targets: ['%s'], labels: {node: '%s'}}\n" "${a#*=}" "${a%%=*}"
    done
    cat <<CONFIG
  - job_name: nettune-dataplane
    static_configs: [{targets: [$(targets "$dataplanes")]}]
CONFIG
  } >"$pdir/prometheus.yml"
  "$bin/promtool" check config "$pdir/prometheus.yml" >&2
  stop "$dir" >/dev/null
  log "starting Prometheus on 127.0.0.1:$port"
  # rule_files are relative to the config file's folder. No inherited descriptors: callers read our stdout to EOF.
  nohup "$bin/prometheus" --config.file="$pdir/prometheus.yml" --storage.tsdb.path="$pdir/data" \
    --web.listen-address="127.0.0.1:$port" >"$pdir/prometheus.log" 2>&1 </dev/null &
  echo $! >"$dir/prometheus.pid"
  for _ in $(seq 1 60); do
    curl -fsS "http://127.0.0.1:$port/-/ready" >/dev/null 2>&1 && { echo "http://127.0.0.1:$port"; return 0; }
    kill -0 "$(cat "$dir/prometheus.pid")" 2>/dev/null || { log "Prometheus exited:"; tail -n 20 "$pdir/prometheus.log" >&2; exit 1; }
    sleep 0.5
  done
  log "Prometheus did not get ready; see $pdir/prometheus.log"; exit 1
}

stop() {
  local dir=$1
  if [[ -f "$dir/prometheus.pid" ]]; then
    local pid
    pid=$(cat "$dir/prometheus.pid")
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid"
      for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    fi
    rm -f "$dir/prometheus.pid"
  fi
  echo stopped
}

uninstall() {
  local admin=$1 ns=$2 helm
  helm=$(helm_bin)
  # --wait: until everything is gone, the node namespace the chart made included (a namespace terminates for a while).
  "$helm" uninstall "$RELEASE" --kubeconfig "$admin" -n "$ns" --wait >&2 || true
  echo uninstalled
}

cmd=${1:-}; shift || true
case "$cmd" in
  install) [[ $# -eq 3 ]] || { log "usage: $0 install KUBECONFIG NAMESPACE DIR"; exit 2; }; install "$@" ;;
  install-operator) [[ $# -ge 4 ]] || { log "usage: $0 install-operator KUBECONFIG NAMESPACE ALLOWED_HOST_PATH CHART [HELM_ARGS...]"; exit 2; }; install_operator "$@" ;;
  agent-kubeconfig) [[ $# -eq 3 ]] || { log "usage: $0 agent-kubeconfig KUBECONFIG NAMESPACE DIR"; exit 2; }; agent_kubeconfig "$@" ;;
  prometheus) [[ $# -eq 5 ]] || { log "usage: $0 prometheus DIR PORT OPERATOR AGENTS DATAPLANES"; exit 2; }; prometheus "$@" ;;
  stop) [[ $# -eq 1 ]] || { log "usage: $0 stop DIR"; exit 2; }; stop "$@" ;;
  uninstall) [[ $# -eq 2 ]] || { log "usage: $0 uninstall KUBECONFIG NAMESPACE"; exit 2; }; uninstall "$@" ;;
  *) log "usage: $0 install|install-operator|agent-kubeconfig|prometheus|stop|uninstall ..."; exit 2 ;;
esac
