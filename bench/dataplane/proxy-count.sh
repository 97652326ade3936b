#!/usr/bin/env bash
# What a proxied request costs in counts that do not depend on how loaded the machine is, for an A/B of two builds
# on a shared VM (which has no hardware counters, so perf cannot count instructions): the same setup as proxy.sh
# (upstream nginx and wrk on CLIENT_CPU, the proxy alone on SERVER_CPU), and for each build and engine
#  1. perf stat tracepoints on the proxy during a wrk run: syscalls, io_uring SQEs and context switches per request,
#     at -c1 (one request at a time: every request takes the whole path, no batching, so the counts are the code's)
#     and at -cCONNS (as the benchmark; batching, and so these counts, move a little with the load);
#  2. the proxy under valgrind's callgrind at -c1: user-space instructions per request (the kernel's are not
#     counted), with the functions that executed most, to diff two builds.
#
#   DATAPLANE=/path/new DATAPLANE_BEFORE=/path/old bench/dataplane/proxy-count.sh
#
# Environment: DATAPLANE (built with NativeAOT when not given), DATAPLANE_BEFORE (optional second build, rows
# "-before"), ENGINES ("iouring epoll"), FILES ("1k.bin"), DURATION (5), WARMUP (1), CONNS (50), CG_DURATION (5),
# CALLGRIND (1; 0 skips step 2), SERVER_CPU (0), CLIENT_CPU (1), OUT (bench/dataplane/results-count).
set -euo pipefail

ENGINES=${ENGINES:-"iouring epoll"}
FILES=${FILES:-"1k.bin"}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
CONNS=${CONNS:-50}
CG_DURATION=${CG_DURATION:-5}
CALLGRIND=${CALLGRIND:-1}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
UPSTREAM_CPU=${UPSTREAM_CPU:-$CLIENT_CPU}
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
OUT=${OUT:-$HERE/results-count}
WORK=$(mktemp -d /tmp/nettune-proxy-count.XXXXXX)
chmod 755 "$WORK"
UP_PORT=${UP_PORT:-18090}
PROXY_PORT=${PROXY_PORT:-18081}
mkdir -p "$OUT"
# shellcheck source=common.sh
. "$HERE/common.sh"
require_free_ports $UP_PORT $PROXY_PORT
prepare
command -v perf >/dev/null || { echo "installing linux-perf" >&2; apt-get install -y linux-perf >/dev/null; }
if [ "$CALLGRIND" = 1 ]; then need valgrind valgrind; fi

write_proxy_fixtures "$PROXY_PORT"
taskset -c "$UPSTREAM_CPU" "$NGINX" -p "$WORK/upstream" -c "$WORK/upstream/nginx.conf" -g 'daemon off;' >"$WORK/upstream.out" 2>&1 &
PIDS+=("$!")
wait_port $UP_PORT

EVENTS=raw_syscalls:sys_enter,context-switches,io_uring:io_uring_submit_req
BUILDS=("current=$DATAPLANE")
if [ -n "${DATAPLANE_BEFORE:-}" ]; then BUILDS+=("before=$DATAPLANE_BEFORE"); fi

# wrk's completed requests, from its report.
requests() { awk '/requests in/{print $1}' <<<"$1"; }

REPORT="$OUT/counts.md"
echo "dataplane build: $BUILD${DATAPLANE_BEFORE:+; before: $DATAPLANE_BEFORE}" | tee "$OUT/build.txt"
echo "| build | engine | file | conns | req/s | syscalls/req | SQEs/req | ctx switches/req | user instructions/req |" | tee "$REPORT"
echo "|---|---|---|---|---|---|---|---|---|" | tee -a "$REPORT"
for file in $FILES; do
  url="http://127.0.0.1:$PROXY_PORT/$file"
  for engine in $ENGINES; do
    for build in "${BUILDS[@]}"; do
      label=${build%%=*} bin=${build#*=}
      "$bin" --upstream "127.0.0.1:$UP_PORT" --address 127.0.0.1 --port $PROXY_PORT --cpus "$SERVER_CPU" \
        --io-engine "$engine" >"$WORK/ours-$label-$engine.out" 2>&1 &
      P=$!
      PIDS+=("$P")
      wait_port $PROXY_PORT "/$file"
      for conns in 1 "$CONNS"; do
        taskset -c "$CLIENT_CPU" wrk -t1 -c"$conns" -d"${WARMUP}s" "$url" >/dev/null
        perf stat -x, -e "$EVENTS" -p "$P" -o "$WORK/stat" -- sleep "$DURATION" &
        STAT=$!
        out=$(taskset -c "$CLIENT_CPU" wrk -t1 -c"$conns" -d"${DURATION}s" "$url")
        wait $STAT || true
        n=$(requests "$out")
        awk -F, -v n="$n" -v b="$label" -v e="$engine" -v f="$file" -v c="$conns" -v r="$(awk '/^Requests\/sec:/{print $2}' <<<"$out")" '
          $1 ~ /^[0-9]/ { v[$3] = $1 / n }
          END { printf "| %s | %s | %s | %s | %.0f | %.3f | %.3f | %.3f | |\n", b, e, f, c, r,
                v["raw_syscalls:sys_enter"], v["io_uring:io_uring_submit_req"], v["context-switches"] }' "$WORK/stat" | tee -a "$REPORT"
      done
      kill "$P" 2>/dev/null || true
      wait "$P" 2>/dev/null || true

      [ "$CALLGRIND" = 1 ] || continue
      cg="$WORK/callgrind-$label-$engine-$file"
      # valgrind 3.19 gives up on NativeAOT's dataplane.dbg (compressed DWARF 5): a copy whose debug link names the
      # symbol table alone still has function names.
      vgbin=$bin
      if [ -f "$bin.dbg" ]; then
        vgbin="$WORK/vg-$label/dataplane"
        mkdir -p "$WORK/vg-$label"
        objcopy --strip-debug "$bin.dbg" "$vgbin.sym"
        objcopy --remove-section=.gnu_debuglink "$bin" "$vgbin"
        (cd "$WORK/vg-$label" && objcopy --add-gnu-debuglink=dataplane.sym dataplane)
      fi
      taskset -c "$SERVER_CPU" valgrind -q --tool=callgrind --callgrind-out-file="$cg.%p" \
        "$vgbin" --upstream "127.0.0.1:$UP_PORT" --address 127.0.0.1 --port $PROXY_PORT --cpus "$SERVER_CPU" \
        --io-engine "$engine" >"$WORK/cg-$label-$engine.out" 2>&1 &
      P=$!
      PIDS+=("$P")
      for _ in $(seq 1 300); do curl -sf -o /dev/null "$url" && break; sleep 0.2; done
      taskset -c "$CLIENT_CPU" wrk -t1 -c1 -d"${WARMUP}s" "$url" >/dev/null
      callgrind_control -z "$P" >/dev/null
      out=$(taskset -c "$CLIENT_CPU" wrk -t1 -c1 -d"${CG_DURATION}s" "$url")
      callgrind_control -d "$P" >/dev/null
      n=$(requests "$out")
      dump=$(ls -t "$cg.$P".* | head -1)
      total=$(callgrind_annotate --inclusive=no "$dump" 2>/dev/null | awk '/PROGRAM TOTALS/{gsub(",", "", $1); print $1; exit}')
      awk -v t="$total" -v n="$n" -v b="$label" -v e="$engine" -v f="$file" 'BEGIN { printf "| %s | %s | %s | 1 (callgrind) | | | | | %.0f |\n", b, e, f, t / n }' | tee -a "$REPORT"
      # The functions that executed most, per request: diff two builds' files to see what a change added.
      callgrind_annotate --inclusive=no --threshold=99 "$dump" 2>/dev/null |
        awk -v n="$n" '/^ *[0-9,]+ .*:/ { c = $1; gsub(",", "", c); $1 = ""; printf "%10.1f %s\n", c / n, $0 }' |
        head -60 >"$OUT/functions-$label-$engine-$file.txt"
      # Under valgrind the io_uring engine's wait does not see SIGTERM; the dump is taken, nothing is left to drain.
      kill -KILL "$P" 2>/dev/null || true
      wait "$P" 2>/dev/null || true
    done
  done
done
echo "report: $REPORT; per-function instructions per request: $OUT/functions-*.txt"
