#!/usr/bin/env bash
# Side-by-side wrk benchmark: NetTune data plane (io_uring and epoll engines) vs nginx at its best,
# interleaved run by run because these VMs drift by ±30% over minutes. Traffic stays on 127.0.0.1.
#
#   bench/dataplane/run.sh                 # full suite: 3 rounds, 10 s runs, -c50 and -c400
#   ROUNDS=5 DURATION=10 bench/dataplane/run.sh
#
# Environment: ROUNDS (3), DURATION seconds (10), WARMUP seconds (2), CONNS ("50 400"),
# FILES ("1k.bin 64k.bin 10m.bin"), SENDZC (1: also run 64 KiB with --zero-copy-send on; 0: skip),
# PIPELINE (16: the server-bound row, 1 KiB with that many requests per write at -c50; 0: skip),
# SERVER_CPU (0), CLIENT_CPU (1), OUT (bench/dataplane/results), DATAPLANE (a built binary to use).
#
# Every row also runs the floor peer (bench/floor/floor.c: a fixed-answer io_uring responder serving the
# same bytes from memory), so each server has a ratio to what this machine can do at all.
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CONNS=${CONNS:-"50 400"}
FILES=${FILES:-"1k.bin 64k.bin 10m.bin"}
SENDZC=${SENDZC:-1}
PIPELINE_DEPTH=${PIPELINE:-16}
unset PIPELINE # measure() pipelines only when asked to, row by row
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
OUT=${OUT:-$HERE/results}
WORK=$(mktemp -d /tmp/nettune-bench.XXXXXX)
chmod 755 "$WORK" # nginx's worker runs as www-data and must reach the document root
NGINX_PORT=${NGINX_PORT:-18080}
OURS_PORT=${OURS_PORT:-18081}
NGINX_PIPE_PORT=${NGINX_PIPE_PORT:-18082}
NGINX_SENDFILE_PORT=${NGINX_SENDFILE_PORT:-18084}
FLOOR_PORT=${FLOOR_PORT:-18083}
mkdir -p "$OUT"
# shellcheck source=common.sh
. "$HERE/common.sh"
require_free_ports $NGINX_PORT $OURS_PORT $NGINX_PIPE_PORT $NGINX_SENDFILE_PORT $FLOOR_PORT
prepare

WWW="$WORK/www"
mkdir -p "$WWW"
head -c 1024 /dev/urandom >"$WWW/1k.bin"
head -c 65536 /dev/urandom >"$WWW/64k.bin"
head -c 10485760 /dev/urandom >"$WWW/10m.bin"
chmod -R a+rX "$WWW"


# nginx at its best for one request per write (issue 5): sendfile + nopush.
nginx_conf nginx $NGINX_PORT "$SERVER_CPU" "sendfile on; tcp_nopush on;"
# nginx at its best for pipelined small files: with sendfile + nopush each response of a pipelined
# batch waits for the cork (measured: ~18k responses/s, p99 ~44 ms); copying, without nopush and
# without postponing output, it answers a batch at once. The sendfile configuration runs beside it
# in the server-bound row (nginx-sendfile), so the choice is re-measured every run.
nginx_conf nginx-pipe $NGINX_PIPE_PORT "$SERVER_CPU" "sendfile off; tcp_nopush off; postpone_output 0;"
nginx_conf nginx-sendfile $NGINX_SENDFILE_PORT "$SERVER_CPU" "sendfile on; tcp_nopush on;"

start_nginx() { # $1 config dir, $2 port; sets NGINX_PID
  taskset -c "$SERVER_CPU" "$NGINX" -p "$WORK/$1" -c "$WORK/$1/nginx.conf" -g 'daemon off;' >"$WORK/$1.out" 2>&1 &
  NGINX_PID=$!
  PIDS+=("$NGINX_PID")
  wait_port "$2"
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
start_nginx nginx-sendfile $NGINX_SENDFILE_PORT
NGINX_SENDFILE_PID=$NGINX_PID
start_nginx nginx-pipe $NGINX_PIPE_PORT
NGINX_PIPE_PID=$NGINX_PID
start_nginx nginx $NGINX_PORT
for round in $(seq 1 "$ROUNDS"); do
  for conns in $CONNS; do
    for file in $FILES; do
      # 10 MiB at -c400 only measures wrk's copy loop; skip it to keep the suite short.
      if [ "$file" = 10m.bin ] && [ "$conns" != 50 ]; then continue; fi
      measure "$round" nginx $NGINX_PORT "$file" "$conns" "$NGINX_PID"
      start_floor $FLOOR_PORT "$WWW/$file"
      measure "$round" floor $FLOOR_PORT "$file" "$conns" "$FLOOR_PID"
      stop_floor
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
  # The server-bound row: 1 KiB, PIPELINE_DEPTH requests per write, -c50. wrk's cost per response is
  # then small, so the servers' own cost per response sets the rate.
  if [ "$PIPELINE_DEPTH" != 0 ]; then
    export PIPELINE=$PIPELINE_DEPTH
    measure "$round" nginx $NGINX_PIPE_PORT 1k.bin 50 "$NGINX_PIPE_PID"
    measure "$round" nginx-sendfile $NGINX_SENDFILE_PORT 1k.bin 50 "$NGINX_SENDFILE_PID"
    start_floor $FLOOR_PORT "$WWW/1k.bin"
    measure "$round" floor $FLOOR_PORT 1k.bin 50 "$FLOOR_PID"
    stop_floor
    for engine in iouring epoll; do
      start_ours $engine auto
      measure "$round" $engine $OURS_PORT 1k.bin 50 "$OURS_PID"
      stop_ours
    done
    unset PIPELINE
  fi
done

python3 "$HERE/summarize.py" "$RAW" | tee "$OUT/summary.md"
