#!/usr/bin/env bash
# Where a proxied request's CPU goes: the same setup as proxy.sh (upstream nginx and wrk on CLIENT_CPU,
# the proxy alone on SERVER_CPU), one proxy at a time, and for each: CPU per request, syscalls, context
# switches and io_uring requests / poll arms / task-work items per request (kernel tracepoints through
# perf stat: this VM has no hardware counters), bytes copied vs spliced per request (ours: /metrics), and
# a perf record (cpu-clock) folded into where the time goes: user code, io_uring, epoll, the socket and
# TCP/IP stack, copies between user and kernel, splice, scheduler and wakeups.
#
#   bench/dataplane/proxy-profile.sh                      # nginx, iouring, epoll at 1 KiB and 64 KiB
#   PROXIES="iouring" FILES=64k.bin bench/dataplane/proxy-profile.sh
#
# Environment: PROXIES ("nginx floor iouring epoll"; floor: bench/floor/floor-proxy.c), FILES ("1k.bin 64k.bin"), DURATION (8), CONNS (50),
# SERVER_CPU (0), CLIENT_CPU (1), DATAPLANE, OUT (bench/dataplane/results-profile), EXTRA (flags for ours).
set -euo pipefail

PROXIES=${PROXIES:-"nginx floor iouring epoll"}
FILES=${FILES:-"1k.bin 64k.bin"}
DURATION=${DURATION:-8}
WARMUP=${WARMUP:-2}
CONNS=${CONNS:-50}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
UPSTREAM_CPU=${UPSTREAM_CPU:-$CLIENT_CPU}
EXTRA=${EXTRA:-}
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
OUT=${OUT:-$HERE/results-profile}
WORK=$(mktemp -d /tmp/nettune-proxy-profile.XXXXXX)
chmod 755 "$WORK"
UP_PORT=${UP_PORT:-18090}
PROXY_PORT=${PROXY_PORT:-18081}
FLOOR_PORT=${FLOOR_PORT:-18082}
ADMIN_PORT=${ADMIN_PORT:-18089}
mkdir -p "$OUT"
# shellcheck source=common.sh
. "$HERE/common.sh"
require_free_ports $UP_PORT $PROXY_PORT $FLOOR_PORT $ADMIN_PORT
prepare
command -v perf >/dev/null || { echo "installing linux-perf" >&2; apt-get install -y linux-perf >/dev/null; }

write_proxy_fixtures "$PROXY_PORT"

taskset -c "$UPSTREAM_CPU" "$NGINX" -p "$WORK/upstream" -c "$WORK/upstream/nginx.conf" -g 'daemon off;' >"$WORK/upstream.out" 2>&1 &
PIDS+=("$!")
wait_port $UP_PORT

metric() { curl -s "http://127.0.0.1:$ADMIN_PORT/metrics" | awk -v k="$1" 'index($0, k) == 1 { s += $2 } END { printf "%.0f\n", s }'; }
EVENTS=raw_syscalls:sys_enter,context-switches,io_uring:io_uring_submit_req,io_uring:io_uring_poll_arm,io_uring:io_uring_task_add

# Folds perf samples into coarse buckets by the innermost symbol that names one.
fold() {
  perf report -i "$1" --no-children --sort sym --stdio -g none --percent-limit 0 2>/dev/null |
  python3 -c '
import re, sys
buckets = [("copy user<->kernel", r"copy_(to|from)_iter|copy_user|__check_object_size|__virt_addr_valid|memcpy_orig|rep_movs"),
           ("splice", r"splice|pipe_"),
           ("io_uring", r"(^|_)io_|io_uring|llist_reverse_order"),
           ("perf itself", r"perf_"),
           ("epoll", r"ep_|epoll"),
           ("sched / wakeups", r"schedule|wake|finish_task_switch|_raw_spin_unlock_irq|ttwu|enqueue_task|dequeue_task|pick_next"),
           ("TCP/IP + loopback", r"tcp|inet|ip_|__ip|skb|sk_|sock|sendmsg|recvmsg|msghdr|iovec|xfrm|rps|eth_type|raw_local|net_rx|netif|loopback|__dev|dev_|napi|kfree|kmem|slab|bbr|__mod_timer|lock_sock|release_sock|_raw_spin_lock_bh|__local_bh|handle_softirqs|do_softirq|process_backlog|read_tsc"),
           ("syscall entry/exit", r"syscall|entry_|fget|fdget|fput")]
totals = {}
for line in sys.stdin:
    m = re.match(r"\s+([0-9.]+)%\s+\[(.)\]\s+(\S+)", line)
    if not m: continue
    pct, ring, sym = float(m.group(1)), m.group(2), m.group(3)
    if ring == ".": key = "user (the proxy itself)"
    else: key = next((b for b, rx in buckets if re.search(rx, sym)), "other kernel")
    totals[key] = totals.get(key, 0) + pct
for k, v in sorted(totals.items(), key=lambda kv: -kv[1]): print(f"    {v:5.1f}%  {k}")
'
}

REPORT="$OUT/profile.md"
echo "dataplane build: $BUILD" | tee "$OUT/build.txt"
: >"$REPORT"
for file in $FILES; do
  for proxy in $PROXIES; do
    port=$PROXY_PORT
    if [ "$proxy" = nginx ]; then
      taskset -c "$SERVER_CPU" "$NGINX" -p "$WORK/proxy" -c "$WORK/proxy/nginx.conf" -g 'daemon off;' >"$WORK/proxy.out" 2>&1 &
      P=$!
    elif [ "$proxy" = floor ]; then
      taskset -c "$SERVER_CPU" "$FLOOR_PROXY" $FLOOR_PORT $UP_PORT >"$WORK/floor-proxy.out" 2>&1 &
      P=$! port=$FLOOR_PORT
    else
      # shellcheck disable=SC2086
      "$DATAPLANE" --upstream "127.0.0.1:$UP_PORT" --address 127.0.0.1 --port $PROXY_PORT --cpus "$SERVER_CPU" \
        --admin-address 127.0.0.1 --admin-port $ADMIN_PORT --io-engine "$proxy" $EXTRA >"$WORK/ours-$proxy.out" 2>&1 &
      P=$!
    fi
    PIDS+=("$P")
    wait_port $port
    url="http://127.0.0.1:$port/$file"
    taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNS" -d"${WARMUP}s" "$url" >/dev/null
    workers=$(if [ "$proxy" = nginx ]; then pgrep -P "$P"; else echo "$P"; fi | paste -sd,)
    copied0=0 zero0=0
    if [ "$proxy" != nginx ] && [ "$proxy" != floor ]; then
      copied0=$(metric 'nettune_dataplane_sent_bytes_total{path="copy"}'); zero0=$(metric 'nettune_dataplane_sent_bytes_total{path="zerocopy"}')
    fi
    before=$(cpu_ticks "$P")
    perf stat -x, -e "$EVENTS" -p "$workers" -o "$WORK/stat" -- sleep "$DURATION" &
    STAT=$!
    perf record -q -e cpu-clock -F 2999 -g -p "$workers" -o "$WORK/perf-$proxy-$file.data" -- sleep "$DURATION" >/dev/null 2>&1 &
    REC=$!
    out=$(taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "$url")
    wait $STAT $REC || true
    after=$(cpu_ticks "$P")
    reqs=$(awk '/requests in/{print $1}' <<<"$out")
    copied=0 zero=0
    if [ "$proxy" != nginx ] && [ "$proxy" != floor ]; then
      copied=$(( $(metric 'nettune_dataplane_sent_bytes_total{path="copy"}') - copied0 ))
      zero=$(( $(metric 'nettune_dataplane_sent_bytes_total{path="zerocopy"}') - zero0 ))
    fi
    {
      echo "### $proxy, $file, -c$CONNS ($(awk '/^Requests\/sec:/{print $2}' <<<"$out") req/s, p99 $(awk '$1=="99%"{print $2}' <<<"$out"), load $(cut -d' ' -f1-3 /proc/loadavg))"
      awk -v d=$((after - before)) -v t="$CLK_TCK" -v n="$reqs" 'BEGIN{ printf "- CPU per request: %.2f µs\n", d / t * 1e6 / n }'
      awk -F, -v n="$reqs" '$1 ~ /^[0-9]/ { printf "- %s per request: %.3f\n", $3, $1 / n }' "$WORK/stat"
      if [ "$proxy" != nginx ] && [ "$proxy" != floor ]; then
        awk -v c="$copied" -v z="$zero" -v n="$reqs" 'BEGIN{ printf "- bytes to the client per request: %.0f copied, %.0f spliced\n", c / n, z / n }'
      fi
      echo "- where the time goes (perf cpu-clock samples):"
      fold "$WORK/perf-$proxy-$file.data"
      echo "- top symbols:"
      { perf report -i "$WORK/perf-$proxy-$file.data" --no-children --sort dso,sym --stdio -g none 2>/dev/null || true; } |
        grep '%' | sed -n '1,12s/^/    /p'
      echo
    } | tee -a "$REPORT"
    kill "$P" 2>/dev/null || true
    wait "$P" 2>/dev/null || true
  done
done
echo "report: $REPORT"
