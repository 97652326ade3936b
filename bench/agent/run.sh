#!/usr/bin/env bash
# Agent benchmark (not a test): full apply on the two-socket fixture host root (time and number of writes) and the
# steady-state CPU cost of drift checking. Usage: bench/agent/run.sh [apply-runs] [drift-checks]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
out="$repo/bench/results"
mkdir -p "$out"
dotnet build -c Release -v q --nologo "$here/NetTune.Agent.Bench/NetTune.Agent.Bench.csproj" >/dev/null
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
dotnet "$here/NetTune.Agent.Bench/bin/Release/net10.0/NetTune.Agent.Bench.dll" "${1:-15}" "${2:-200}" | tee "$out/agent-$stamp.txt"
echo "results: $out/agent-$stamp.txt"
