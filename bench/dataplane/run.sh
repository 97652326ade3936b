#!/usr/bin/env bash
# Side-by-side wrk benchmark: NetTune data plane (io_uring and epoll engines) vs nginx at its best,
# interleaved run by run because these VMs drift by ±30% over minutes. Traffic stays on 127.0.0.1.
#
#   bench/dataplane/run.sh                 # full suite: 3 rounds, 10 s runs, -c50 and -c400
#   ROUNDS=5 DURATION=10 bench/dataplane/run.sh
#
# Environment: ROUNDS (3), DURATION seconds (10), WARMUP seconds (2), CONNS ("50 400"),
# FILES ("1k.bin 64k.bin 10m.bin"), SENDZC (1: also run 64 KiB with --zero-copy-send on; 0: skip),
# SERVER_CPU (0), CLIENT_CPU (1), OUT (bench/dataplane/results), DATAPLANE (a built binary to use).
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CONNS=${CONNS:-"50 400"}
FILES=${FILES:-"1k.bin 64k.bin 10m.bin"}
SENDZC=${SENDZC:-1}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
OUT=${OUT:-$HERE/results}
WORK=$(mktemp -d /tmp/nettune-bench.XXXXXX)
chmod 755 "$WORK" # nginx's worker runs as www-data and must reach the document root
NGINX_PORT=${NGINX_PORT:-18080}
OURS_PORT=${OURS_PORT:-18081}
mkdir -p "$OUT"
# shellcheck source=common.sh
. "$HERE/common.sh"
require_free_ports $NGINX_PORT $OURS_PORT
prepare

WWW="$WORK/www"
mkdir -p "$WWW"
head -c 1024 /dev/urandom >"$WWW/1k.bin"
head -c 65536 /dev/urandom >"$WWW/64k.bin"
head -c 10485760 /dev/urandom >"$WWW/10m.bin"
chmod -R a+rX "$WWW"

# nginx exactly as the issue specifies: one worker on CPU0, sendfile + nopush, open_file_cache.
mkdir -p "$WORK/nginx/logs"
cat >"$WORK/nginx/nginx.conf" <<CONF
worker_processes 1;
worker_cpu_affinity 01;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
    sendfile on; tcp_nopush on; tcp_nodelay on;
    keepalive_requests 1000000;
    access_log off;
    open_file_cache max=10000 inactive=60s;
    open_file_cache_valid 60s;
    open_file_cache_min_uses 1;
    default_type application/octet-stream;
    server {
        listen 127.0.0.1:$NGINX_PORT reuseport;
        root $WWW;
    }
}
CONF

start_nginx() {
  taskset -c "$SERVER_CPU" "$NGINX" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -g 'daemon off;' >"$WORK/nginx.out" 2>&1 &
  NGINX_PID=$!
  PIDS+=("$NGINX_PID")
  wait_port $NGINX_PORT
}

start_ours() { # $1 = engine, $2 = zero-copy mode, $3 = zero-copy-send mode (default auto: off on loopback)
  "$DATAPLANE" --root "$WWW" --address 127.0.0.1 --port $OURS_PORT --cpus "$SERVER_CPU" \
    --io-engine "$1" --zero-copy "$2" --zero-copy-send "${3:-auto}" >"$WORK/ours-$1-$2-${3:-auto}.out" 2>&1 &
  OURS_PID=$!
  PIDS+=("$OURS_PID")
  wait_port $OURS_PORT
}

RAW="$OUT/raw.csv"
echo "round,server,file,conns,req_per_s,mib_per_s,p50_ms,p99_ms,requests,cpu_us_per_req,client_cpu_pct,errors" >"$RAW"

echo "dataplane build: $BUILD" | tee "$OUT/build.txt"
start_nginx
for round in $(seq 1 "$ROUNDS"); do
  for conns in $CONNS; do
    for file in $FILES; do
      # 10 MiB at -c400 only measures wrk's copy loop; skip it to keep the suite short.
      if [ "$file" = 10m.bin ] && [ "$conns" != 50 ]; then continue; fi
      measure "$round" nginx $NGINX_PORT "$file" "$conns" "$NGINX_PID"
      start_ours iouring auto
      measure "$round" iouring $OURS_PORT "$file" "$conns" "$OURS_PID"
      stop_ours
      start_ours epoll auto
      measure "$round" epoll $OURS_PORT "$file" "$conns" "$OURS_PID"
      stop_ours
      # The other side of the per-response zero-copy choice: auto splices/sendfiles 64 KiB on loopback
      # and copies 10 MiB, so force the opposite to show what each choice costs.
      if [ "$file" = 64k.bin ]; then other=off; suffix=copy; else other=on; suffix=zerocopy; fi
      if [ "$file" != 1k.bin ]; then
        start_ours iouring $other
        measure "$round" iouring-$suffix $OURS_PORT "$file" "$conns" "$OURS_PID"
        stop_ours
        start_ours epoll $other
        measure "$round" epoll-$suffix $OURS_PORT "$file" "$conns" "$OURS_PID"
        stop_ours
      fi
      # Zero-copy sends of the cached 64 KiB body (SENDMSG_ZC / MSG_ZEROCOPY), forced on: auto leaves
      # loopback peers alone. Compare with the -copy rows (same body, copied from the same cache).
      if [ "$file" = 64k.bin ] && [ "$SENDZC" = 1 ]; then
        start_ours iouring auto on
        measure "$round" iouring-sendzc $OURS_PORT "$file" "$conns" "$OURS_PID"
        stop_ours
        start_ours epoll auto on
        measure "$round" epoll-sendzc $OURS_PORT "$file" "$conns" "$OURS_PID"
        stop_ours
      fi
    done
  done
done

python3 "$HERE/summarize.py" "$RAW" | tee "$OUT/summary.md"
