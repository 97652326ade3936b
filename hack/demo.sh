#!/usr/bin/env bash
# `make demo` / `make demo-down`: a local cluster on loopback with NetTune's CRDs and samples.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DEMO="$ROOT/.demo"
KUBECONFIG_FILE="$DEMO/kubeconfig"
CONFIGURATION=${CONFIGURATION:-Debug}

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
running() { [[ -f "$DEMO/$1.pid" ]] && kill -0 "$(cat "$DEMO/$1.pid")" 2>/dev/null; }

kctl() { kubectl --kubeconfig "$KUBECONFIG_FILE" "$@"; }

up() {
  mkdir -p "$DEMO"
  if running cluster; then
    step "the local cluster is already running"
  else
    step "starting etcd, kube-apiserver and kube-controller-manager on loopback"
    rm -f "$KUBECONFIG_FILE"
    NETTUNE_REPO_ROOT="$ROOT" nohup dotnet "tools/NetTune.LocalCluster/bin/$CONFIGURATION/net10.0/nettune-local-cluster.dll" \
      "$KUBECONFIG_FILE" >"$DEMO/cluster.log" 2>&1 &
    echo $! >"$DEMO/cluster.pid"
    for _ in $(seq 1 240); do
      [[ -f "$KUBECONFIG_FILE" ]] && break
      running cluster || { echo "the cluster exited; its log:"; tail -n 40 "$DEMO/cluster.log"; exit 1; }
      sleep 0.5
    done
    [[ -f "$KUBECONFIG_FILE" ]] || { echo "the cluster did not come up in 2 minutes; see $DEMO/cluster.log"; exit 1; }
  fi
  kctl version 2>/dev/null | sed 's/^/    /' || true

  step "installing the CRDs: kubectl apply -f crds/"
  minor=$(kctl get --raw /version | sed -n 's/.*"minor": *"\([0-9]*\).*/\1/p')
  if (( minor < 25 )); then
    # kubectl checks CRDs against the server's OpenAPI, which before 1.25 lacks the CEL rules' field.
    echo "    (server 1.$minor predates CEL validation rules: applying with --validate=false; the operator enforces the rules)"
    kctl apply --validate=false -f crds/
  else
    kctl apply -f crds/
  fi
  kctl wait --for=condition=Established --timeout=60s -f crds/ >/dev/null

  step "applying the samples: kubectl apply -f samples/"
  kctl apply -f samples/

  step "kubectl get networktunings,networktuningnodestates"
  kctl get networktunings,networktuningnodestates -o wide

  cat <<MSG

The local cluster keeps running. Try:
  export KUBECONFIG=$KUBECONFIG_FILE
  kubectl get networktunings -o wide
  kubectl explain networktuning.spec.nic
  kubectl get networktuning web-tier -o yaml
Stop it with: make demo-down
MSG
}

down() {
  if running cluster; then
    step "stopping the local cluster"
    kill -TERM "$(cat "$DEMO/cluster.pid")"
    for _ in $(seq 1 60); do running cluster || break; sleep 0.5; done
  fi
  rm -rf "$DEMO"
  echo "stopped"
}

case "${1:-up}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down"; exit 2 ;;
esac
