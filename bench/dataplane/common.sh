# Shared by run.sh (static files) and proxy.sh: tools, the build under test, process CPU accounting
# and one wrk measurement per call. Expects WORK, REPO, OUT, DURATION, WARMUP and CLIENT_CPU set, and
# appends rows to $RAW.

# SO_REUSEPORT would let a stray server share a port silently and take half the connections.
require_free_ports() {
  local port
  for port in "$@"; do
    if ss -ltnH "sport = :$port" | grep -q .; then
      echo "port $port is already in use; stop what listens there or choose other ports (see the script's header)" >&2
      exit 1
    fi
  done
}

need() {
  if ! command -v "$1" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$1" ]; then
    echo "installing $2" >&2
    apt-get install -y "$2" >/dev/null || { apt-get update >/dev/null && apt-get install -y "$2" >/dev/null; }
  fi
}

# Installs wrk, nginx, cc and liburing-dev if missing, builds the floor peer and the server under test
# (unless DATAPLANE names one): NativeAOT if it builds, otherwise a framework-dependent Release build.
# Sets NGINX, FLOOR, FLOOR_PROXY, DATAPLANE and BUILD.
prepare() {
  need wrk wrk
  need nginx nginx-light
  need cc gcc
  NGINX=$(command -v nginx || echo /usr/sbin/nginx)
  # The floor peers (bench/floor/floor.c, floor-proxy.c) are built from Debian's liburing.
  if [ ! -e /usr/include/liburing.h ]; then
    echo "installing liburing-dev" >&2
    apt-get install -y liburing-dev >/dev/null || { apt-get update >/dev/null && apt-get install -y liburing-dev >/dev/null; }
  fi
  FLOOR="$WORK/floor"
  cc -O2 -Wall -o "$FLOOR" "$REPO/bench/floor/floor.c" -luring
  FLOOR_PROXY="$WORK/floor-proxy"
  cc -O2 -Wall -o "$FLOOR_PROXY" "$REPO/bench/floor/floor-proxy.c" -luring

  if [ -z "${DATAPLANE:-}" ]; then
    if dotnet publish "$REPO/dataplane/NetTune.DataPlane/NetTune.DataPlane.csproj" -c Release -r linux-x64 \
         -o "$WORK/aot" -p:CppCompilerAndLinker=gcc >"$WORK/publish.log" 2>&1 && [ -x "$WORK/aot/dataplane" ]; then
      DATAPLANE="$WORK/aot/dataplane"; BUILD="NativeAOT"
    else
      dotnet publish "$REPO/dataplane/NetTune.DataPlane/NetTune.DataPlane.csproj" -c Release -p:PublishAot=false \
        -o "$WORK/jit" >"$WORK/publish-jit.log" 2>&1
      DATAPLANE="$WORK/jit/dataplane"; BUILD="JIT (NativeAOT publish failed, see $WORK/publish.log)"
    fi
  else
    BUILD="given: $DATAPLANE"
  fi
}

PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  for f in "$WORK"/*/nginx.pid; do [ -f "$f" ] && kill "$(cat "$f" 2>/dev/null)" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

CLK_TCK=$(getconf CLK_TCK)
# utime+stime (all threads) of a process and its children processes (nginx master + worker), in ticks.
cpu_ticks() {
  local total=0 p
  for p in "$@"; do
    for q in $p $(pgrep -P "$p" || true); do
      if [ -r "/proc/$q/stat" ]; then
        total=$((total + $(awk '{sub(/^.*\) /, ""); print $12 + $13}' "/proc/$q/stat")))
      fi
    done
  done
  echo "$total"
}

wait_port() { # $1 port, $2 path that answers 200 once the server is up (default /1k.bin)
  for _ in $(seq 1 100); do
    curl -sf -o /dev/null "http://127.0.0.1:$1${2:-/1k.bin}" && return 0
    sleep 0.1
  done
  echo "server on port $1 did not come up" >&2
  return 1
}

start_floor() { # $1 port, $2 file to answer every request with; pinned to SERVER_CPU
  taskset -c "$SERVER_CPU" "$FLOOR" "$1" "$2" >"$WORK/floor.out" 2>&1 &
  FLOOR_PID=$!
  PIDS+=("$FLOOR_PID")
  wait_port "$1" /
}

stop_floor() {
  kill "$FLOOR_PID" 2>/dev/null || true
  wait "$FLOOR_PID" 2>/dev/null || true
}

stop_ours() {
  kill -TERM "$OURS_PID" 2>/dev/null || true
  wait "$OURS_PID" 2>/dev/null || true
}

to_ms() { # wrk latency like 812.00us / 1.23ms / 2.01s -> ms
  awk -v v="$1" 'BEGIN{ if (v ~ /us$/) {sub(/us$/,"",v); print v/1000} else if (v ~ /ms$/) {sub(/ms$/,"",v); print v+0} else if (v ~ /s$/) {sub(/s$/,"",v); print v*1000} else print v }'
}
to_mib() { # 12.3MB / 1.2GB / 800KB -> MiB/s (wrk's units are binary)
  awk -v v="$1" 'BEGIN{ if (v ~ /GB$/) {sub(/GB$/,"",v); print v*1024} else if (v ~ /MB$/) {sub(/MB$/,"",v); print v+0} else if (v ~ /KB$/) {sub(/KB$/,"",v); print v/1024} else {sub(/B$/,"",v); print v/1048576} }'
}

# $1 round, $2 label, $3 port, $4 file, $5 conns, $6.. pids for CPU accounting. With PIPELINE set (e.g. 16),
# every write carries that many requests (pipeline.lua); the row's file is then labelled "FILE×N".
measure() {
  local round=$1 label=$2 port=$3 file=$4 conns=$5; shift 5
  local url="http://127.0.0.1:$port/$file" script=() row=$file
  if [ -n "${PIPELINE:-}" ]; then
    script=(-s "$REPO/bench/dataplane/pipeline.lua")
    row="$file×$PIPELINE"
  fi
  taskset -c "$CLIENT_CPU" wrk -t1 -c"$conns" -d"${WARMUP}s" "${script[@]}" "$url" ${PIPELINE:+-- "$PIPELINE"} >/dev/null 2>&1 || true
  local before after out client
  before=$(cpu_ticks "$@")
  # bash's time keyword gives wrk's own CPU: near 100% means the client, not the server, sets req/s.
  out=$( { TIMEFORMAT='%3U %3S'; time taskset -c "$CLIENT_CPU" wrk -t1 -c"$conns" -d"${DURATION}s" --latency "${script[@]}" "$url" ${PIPELINE:+-- "$PIPELINE"}; } 2>"$WORK/wrk-time" )
  after=$(cpu_ticks "$@")
  client=$(awk -v d="$DURATION" '{ printf "%.0f", ($1 + $2) / d * 100 }' "$WORK/wrk-time")
  local rps mib p50 p99 reqs errors cpu_us
  rps=$(awk '/^Requests\/sec:/{print $2}' <<<"$out")
  mib=$(to_mib "$(awk '/^Transfer\/sec:/{print $2}' <<<"$out")")
  p50=$(to_ms "$(awk '$1=="50%"{print $2}' <<<"$out")")
  p99=$(to_ms "$(awk '$1=="99%"{print $2}' <<<"$out")")
  reqs=$(awk '/requests in/{print $1}' <<<"$out")
  errors=$(awk '/Non-2xx|Socket errors/{printf "%s ", $0}' <<<"$out" | tr ',' ';')
  cpu_us=$(awk -v d=$((after - before)) -v t="$CLK_TCK" -v n="$reqs" 'BEGIN{ printf "%.2f", d / t * 1e6 / n }')
  echo "$round,$label,$row,$conns,$rps,$mib,$p50,$p99,$reqs,$cpu_us,$client,$errors" | tee -a "$RAW"
}

# nginx_conf DIR PORT CPU "OUTPUT DIRECTIVES": a static-file nginx serving WWW, one worker on CPU, open_file_cache,
# no access log; its configuration in $WORK/DIR.
nginx_conf() {
  mkdir -p "$WORK/$1/logs"
  cat >"$WORK/$1/nginx.conf" <<CONF
worker_processes 1;
worker_cpu_affinity $(mask "$3");
pid $WORK/$1/nginx.pid;
error_log $WORK/$1/logs/error.log warn;
events { worker_connections 4096; }
http {
    $4
    tcp_nodelay on;
    keepalive_requests 1000000;
    access_log off;
    open_file_cache max=10000 inactive=60s;
    open_file_cache_valid 60s;
    open_file_cache_min_uses 1;
    default_type application/octet-stream;
    server {
        listen 127.0.0.1:$2 reuseport;
        root $WWW;
    }
}
CONF
}

# nginx's worker_cpu_affinity is a binary mask, lowest CPU last: CPU 1 is "10".
mask() { local m=1 i; for ((i = 0; i < $1; i++)); do m="${m}0"; done; echo "$m"; }

# The proxy benchmarks' files and nginx configurations: $WORK/www (1k.bin, 64k.bin); an nginx upstream serving it
# on UP_PORT, pinned to UPSTREAM_CPU ($WORK/upstream); and nginx as a proxy at its best on port $1, pinned to
# SERVER_CPU ($WORK/proxy): HTTP/1.1 and a keepalive pool to the upstream, buffers that hold a 64 KiB response in
# memory (no temp files), no access log. Sets WWW.
write_proxy_fixtures() { # $1 = the nginx proxy's port
  WWW="$WORK/www"
  mkdir -p "$WWW"
  head -c 1024 /dev/urandom >"$WWW/1k.bin"
  head -c 65536 /dev/urandom >"$WWW/64k.bin"
  chmod -R a+rX "$WWW"

  nginx_conf upstream "$UP_PORT" "$UPSTREAM_CPU" "sendfile on; tcp_nopush on;"
  mkdir -p "$WORK/proxy/logs"
  cat >"$WORK/proxy/nginx.conf" <<CONF
worker_processes 1;
worker_cpu_affinity $(mask "$SERVER_CPU");
pid $WORK/proxy/nginx.pid;
error_log $WORK/proxy/logs/error.log warn;
events { worker_connections 4096; }
http {
    tcp_nodelay on;
    keepalive_requests 1000000;
    access_log off;
    upstream up { server 127.0.0.1:$UP_PORT; keepalive 512; keepalive_requests 1000000; }
    server {
        listen 127.0.0.1:$1 reuseport;
        location / {
            proxy_pass http://up;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffer_size 16k;
            proxy_buffers 8 16k;
            proxy_max_temp_file_size 0;
        }
    }
}
CONF
}
