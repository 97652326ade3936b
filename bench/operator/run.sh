#!/usr/bin/env bash
# Operator benchmark: time from NetworkTuning create to every NodeState written (maxUnavailable 100%), API requests
# per node (by verb and resource) and operator peak RSS, at 1,000 and 5,000 Node objects (or the counts given as
# arguments); an argument rollout:N runs a full rollout at maxUnavailable 10% over N nodes with simulated agents
# (time to every node Applied, operator and apiserver peak RSS); rest:N measures the operator at rest with N nodes
# cached, once per runtime setting or build in OPERATOR_VARIANTS (see Program.cs). NODE_STATUS=0 leaves Nodes bare.
# Results print to stdout and land in bench/results/operator-*.json.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="$root/.artifacts/bench-operator"
dotnet build -c Release "$root/operator/NetTune.Operator/NetTune.Operator.csproj" -o "$out/operator" >&2
dotnet build -c Release "$here/NetTune.Operator.Bench/NetTune.Operator.Bench.csproj" -o "$out/bench" >&2
sizes=("$@")
[[ ${#sizes[@]} -gt 0 ]] || sizes=(1000 5000)
exec dotnet "$out/bench/NetTune.Operator.Bench.dll" "$out/operator/nettune-operator.dll" "${sizes[@]}"
