#!/usr/bin/env bash
# Reverse-proxy benchmark: the NetTune data plane in proxy mode (io_uring and epoll) vs nginx's
# proxy_pass at its best (kept-alive upstream connections, in-memory buffering), both with one worker
# on SERVER_CPU, in front of the same upstream: nginx serving files from one worker on UPSTREAM_CPU.
# wrk runs on CLIENT_CPU. Interleaved round by round, ratios taken within a round. Loopback only.
#
#   bench/dataplane/proxy.sh               # 3 rounds, 10 s runs, -c50, 1 KiB and 64 KiB
#
# Environment: ROUNDS (3), DURATION (10), WARMUP (2), CONNS ("50"), FILES ("1k.bin 64k.bin"),
# SERVER_CPU (0), CLIENT_CPU (1), UPSTREAM_CPU (1), OUT (bench/dataplane/results-proxy), DATAPLANE,
# DATAPLANE_BEFORE (another build, e.g. of the previous commit: measured in the same rounds as rows
# "iouring-before" and "epoll-before", for an A/B of a change).
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CONNS=${CONNS:-"50"}
FILES=${FILES:-"1k.bin 64k.bin"}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
UPSTREAM_CPU=${UPSTREAM_CPU:-1}
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
OUT=${OUT:-$HERE/results-proxy}
WORK=$(mktemp -d /tmp/nettune-proxy-bench.XXXXXX)
chmod 755 "$WORK"
UP_PORT=${UP_PORT:-18090}
NGINX_PORT=${NGINX_PORT:-18080}
OURS_PORT=${OURS_PORT:-18081}
FLOOR_PORT=${FLOOR_PORT:-18082}
mkdir -p "$OUT"
# shellcheck source=common.sh
. "$HERE/common.sh"
require_free_ports $UP_PORT $NGINX_PORT $OURS_PORT $FLOOR_PORT
prepare

write_proxy_fixtures "$NGINX_PORT"

start_nginx() { # $1 = config dir, $2 = CPU, $3 = port
  taskset -c "$2" "$NGINX" -p "$WORK/$1" -c "$WORK/$1/nginx.conf" -g 'daemon off;' >"$WORK/$1.out" 2>&1 &
  PIDS+=("$!")
  wait_port "$3"
}

start_ours() { # $1 = engine, $2 = binary (default DATAPLANE)
  "${2:-$DATAPLANE}" --upstream "127.0.0.1:$UP_PORT" --address 127.0.0.1 --port $OURS_PORT --cpus "$SERVER_CPU" \
    --io-engine "$1" >"$WORK/ours-$1.out" 2>&1 &
  OURS_PID=$!
  PIDS+=("$OURS_PID")
  wait_port $OURS_PORT
}

RAW="$OUT/raw.csv"
echo "round,server,file,conns,req_per_s,mib_per_s,p50_ms,p99_ms,requests,cpu_us_per_req,client_cpu_pct,errors" >"$RAW"

echo "dataplane build: $BUILD" | tee "$OUT/build.txt"
start_nginx upstream "$UPSTREAM_CPU" $UP_PORT
start_nginx proxy "$SERVER_CPU" $NGINX_PORT
NGINX_PROXY_PID=${PIDS[-1]}
for round in $(seq 1 "$ROUNDS"); do
  for conns in $CONNS; do
    for file in $FILES; do
      measure "$round" nginx $NGINX_PORT "$file" "$conns" "$NGINX_PROXY_PID"
      taskset -c "$SERVER_CPU" "$FLOOR_PROXY" $FLOOR_PORT $UP_PORT >"$WORK/floor-proxy.out" 2>&1 &
      FLOOR_PID=$!
      PIDS+=("$FLOOR_PID")
      wait_port $FLOOR_PORT
      measure "$round" floor $FLOOR_PORT "$file" "$conns" "$FLOOR_PID"
      stop_floor
      for engine in iouring epoll; do
        start_ours $engine
        measure "$round" $engine $OURS_PORT "$file" "$conns" "$OURS_PID"
        stop_ours
        if [ -n "${DATAPLANE_BEFORE:-}" ]; then
          start_ours $engine "$DATAPLANE_BEFORE"
          measure "$round" $engine-before $OURS_PORT "$file" "$conns" "$OURS_PID"
          stop_ours
        fi
      done
    done
  done
done

python3 "$HERE/summarize.py" "$RAW" | tee "$OUT/summary.md"
