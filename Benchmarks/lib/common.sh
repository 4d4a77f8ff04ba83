# Benchmarks/lib/common.sh -- sourced by Benchmarks/run.sh and by every Benchmarks/scenarios/*.sh.
#
# What every scenario shares: parameters, free ports, processes started in their own process group
# (pinned with taskset-like affinity, nice'd in their own autogroup) and stopped by PID on exit,
# waiting for a port, CPU seconds and RSS of a process group from /proc, the release build of
# sluiced, the backends (nginx, iperf3, idle holder), the proxies (HAProxy, NGINX, Sluice) with
# generated configs, one measured load run, and the one results format (record).
#
# A scenario file: `source "$(dirname "$0")/../lib/common.sh"; bench_init NAME`, then start what it
# needs, run loads, call `record` once per measured run. See Benchmarks/README.md.
# shellcheck shell=bash disable=SC2034

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REPO="$(cd "$BENCH_DIR/.." && pwd)"
PY=${PYTHON:-python3}
BPY="$BENCH_DIR/lib/bench.py"

# ------------------------------------------------------------------ parameters (environment)
REPS=${REPS:-3}                    # repetitions of every measured cell
WORKERS=${WORKERS:-1}              # HAProxy nbthread, nginx worker_processes, Sluice node.workers
CONNS=${CONNS:-64}                 # wrk concurrent connections
PROXIES=${PROXIES:-"haproxy nginx sluice"}   # candidates of the side-by-side scenarios
PIN=${PIN:-1}
CLIENT_CPUS=${CLIENT_CPUS:-0}      # load generators
SERVER_CPUS=${SERVER_CPUS:-1}      # backends (and 1-worker proxies)
if ((WORKERS > 1)); then PROXY_CPUS=${PROXY_CPUS:-0-1}; else PROXY_CPUS=${PROXY_CPUS:-$SERVER_CPUS}; fi
PRIO=${PRIO:--10}                  # nice of every process started here (own autogroup); 0 = off
[[ $(id -u) == 0 ]] || PRIO=${PRIO_NONROOT:-0}
FOREIGN_MAX=${FOREIGN_MAX:-25}     # % of one CPU used by other processes during a run => "disturbed"
MAX_RETRIES=${MAX_RETRIES:-1}      # extra attempts of a disturbed run
SLUICED=${SLUICED:-$REPO/.build/release/sluiced}
SLUICECTL=${SLUICECTL:-$(dirname "$SLUICED")/sluicectl}
BUILD=${BUILD:-auto}               # auto: swift build -c release if sluiced is missing; 1: always; 0: never
OUT_DIR=${OUT_DIR:-$BENCH_DIR/out}
KEEP_TMP=${KEEP_TMP:-0}
BENCH_ROOT=${BENCH_ROOT:-$$}       # processes below this PID are "ours" for the foreign-load check
export BENCH_ROOT

log() { printf '[%(%H:%M:%S)T] %s%s\n' -1 "${BENCH_NAME:+$BENCH_NAME: }" "$*" >&2; }
die() { log "FATAL: $*"; exit 2; }
kv() {  # KEY "k=v ..." -> v (nan if absent)
  local x
  for x in $2; do [[ ${x%%=*} == "$1" ]] && { echo "${x#*=}"; return; }; done
  echo nan
}
calc() { awk "BEGIN{ $1 }"; }
need() { local x; for x in "$@"; do command -v "$x" >/dev/null || die "missing tool: $x (make bench-deps)"; done; }

# ------------------------------------------------------------------ processes
PIDS=()      # long-running processes started here; each leads its own process group
LAST_PID=
start_bg() {  # NAME CPUS LOG CMD...: own session/process group, nice PRIO, pinned to CPUS ("" = any)
  local name=$1 cpus=$2 logf=$3
  shift 3
  ((PIN)) || cpus=""
  "$PY" "$BPY" exec "$PRIO" "$cpus" "$@" >"$logf" 2>&1 </dev/null &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
  log "started $name pid=$LAST_PID cpus=${cpus:-any}"
}

LAST_RC=
stop_pid() {  # PID [WAIT_S]: TERM, wait, KILL; then leftovers of its own process group
  local pid=$1 w=${2:-10} i m
  [[ -n $pid ]] || return 0
  LAST_RC=
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < w * 10; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && { log "pid $pid ignored SIGTERM for ${w}s: SIGKILL"; kill -KILL "$pid" 2>/dev/null; }
  fi
  wait "$pid" 2>/dev/null
  LAST_RC=$?
  for m in $(ps -eo pid=,pgid= | awk -v g="$pid" '$2 == g {print $1}'); do kill -KILL "$m" 2>/dev/null; done
  local j keep=()
  for j in "${PIDS[@]}"; do [[ $j == "$pid" ]] || keep+=("$j"); done
  PIDS=("${keep[@]}")
}

T=
_bench_cleanup() {
  local rc=$? i
  trap - EXIT INT TERM HUP
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do stop_pid "${PIDS[i]}" 5; done
  if [[ -n $T && -d $T ]]; then
    if [[ -n ${LOGS_DIR:-} ]]; then   # keep configs and logs of the last run
      mkdir -p "$LOGS_DIR" && find "$T" -maxdepth 3 -type f \( -name '*.cfg' -o -name '*.conf' -o -name '*.yaml' \
        -o -name '*.log' -o -name '*.txt' -o -name '*.out' \) -size -2M -exec cp --parents -t "$LOGS_DIR" {} + 2>/dev/null
    fi
    if ((KEEP_TMP)); then log "kept temp dir $T"; else rm -rf "$T"; fi
  fi
  exit "$rc"
}

# bench_init NAME: temp dir, traps, results file (RESULTS from run.sh, else $OUT_DIR/last-NAME.tsv)
bench_init() {
  BENCH_NAME=$1
  trap _bench_cleanup EXIT
  trap 'log "interrupted"; exit 130' INT TERM HUP
  T=$(mktemp -d "/tmp/bench-$1.XXXXXX") || die mktemp
  chmod 755 "$T"
  mkdir -p "$T/runs" "$OUT_DIR"
  LOGS_DIR=${LOGS_ROOT:-$OUT_DIR/last-logs}/$1
  rm -rf "$LOGS_DIR"
  rm -f "$OUT_DIR/last-$1.extra.md"
  if [[ -z ${RESULTS:-} ]]; then
    RESULTS=$OUT_DIR/last-$1.tsv
    : >"$RESULTS"
  fi
  ulimit -n "$(ulimit -Hn)" 2>/dev/null
  ((PIN)) && (($(nproc) < 2)) && PIN=0
  need ss timeout awk "$PY"
}

# ------------------------------------------------------------------ ports
free_ports() {  # N -> PORTS=(p1 ... pN), distinct, free on 127.0.0.1 right now
  read -ra PORTS <<<"$("$PY" "$BPY" free-ports "$1")"
  ((${#PORTS[@]} == $1)) || die "free-ports"
}
port_busy() { [[ -n $(ss -Hltun "sport = :$1" 2>/dev/null) ]]; }   # a TCP listener or an unconnected UDP socket
wait_port() {  # PORT TIMEOUT_S [PID]: until something listens on PORT, TCP or UDP (0), PID died or timeout (1)
  local i
  for ((i = 0; i < $2 * 20; i++)); do
    port_busy "$1" && return 0
    [[ -n ${3:-} ]] && ! kill -0 "$3" 2>/dev/null && return 1
    sleep 0.05
  done
  return 1
}

# ------------------------------------------------------------------ /proc measurements
cpu_s() { "$PY" "$BPY" cpu "$1"; }                            # PGID -> utime+stime seconds (incl. reaped children)
rss_kib() { kv rss_kib "$("$PY" "$BPY" mem "$1")"; }           # PGID -> VmRSS KiB summed over the group
mem_kv() { "$PY" "$BPY" mem "$1"; }                            # PGID -> rss_kib= hwm_kib= fds= nproc=

# ------------------------------------------------------------------ sluiced
ensure_sluiced() {  # release build when missing (BUILD=auto) or always (BUILD=1)
  if [[ $BUILD == 1 || ($BUILD == auto && ! -x $SLUICED) ]]; then
    [[ $SLUICED == "$REPO/.build/release/sluiced" ]] || die "sluiced not found at $SLUICED"
    log "swift build -c release"
    (cd "$REPO" && swift build -c release) >&2 || die "swift build -c release failed"
  fi
  [[ -x $SLUICED ]] || die "sluiced not found at $SLUICED (swift build -c release, BUILD=1, or SLUICED=...)"
}
sluiced_id() {  # one line naming the binary
  [[ -x $SLUICED ]] || { echo "(not built: \`$SLUICED\`)"; return; }
  echo "\`$SLUICED\` ($(stat -c '%s bytes, built %y' "$SLUICED" 2>/dev/null | cut -d. -f1), sha256 $(sha256sum "$SLUICED" 2>/dev/null | cut -c1-12))"
}

# ------------------------------------------------------------------ backends
nginx_temp_paths() {  # DIR
  cat <<EOF
  client_body_temp_path $1/tmp/body;
  proxy_temp_path $1/tmp/proxy;
  fastcgi_temp_path $1/tmp/fastcgi;
  uwsgi_temp_path $1/tmp/uwsgi;
  scgi_temp_path $1/tmp/scgi;
EOF
}

# start_web_backends [N]: one nginx, 1 worker, on CPU SERVER_CPUS, N server blocks (default 2):
# /small = 100 B, /64k = 64 KiB (sendfile), header X-Backend: a/b/c...; plus /nginx_status
# (stub_status) on BE_STATUS. -> BE (array of ports), BE_CSV ("127.0.0.1:p,..."), BE_PGID, BE_STATUS
# With BE_ACCEPT_PROXY=1 each server block also listens on a second port that requires a PROXY
# protocol header (v1 or v2; nginx `listen ... proxy_protocol`, a connection without one is closed)
# -> BE_PP, BE_PP_CSV.
# The start of every nginx config here (backends and the NGINX anchor): DIR WORKERS. Leaves
# the http block open.
nginx_main_block() {
  cat <<EOF
worker_processes $2;
daemon off;
master_process on;
user root;
pid $1/nginx.pid;
error_log $1/error.log warn;
worker_rlimit_nofile 20000;
events { worker_connections 9000; }
http {
  access_log off;
$(nginx_temp_paths "$1")
EOF
}

start_web_backends() {
  local n=${1:-2} d=$T/backend body i letters=abcdefgh pp=${BE_ACCEPT_PROXY:-0}
  mkdir -p "$d/tmp" "$T/www"
  printf '%099d\n' 0 | tr 0 a >"$T/www/small.txt"          # 100 bytes with the newline
  head -c 65536 /dev/zero | tr '\0' 'b' >"$T/www/64k.bin"   # 64 KiB
  body=$(cat "$T/www/small.txt")
  free_ports $((n + 1 + (pp ? n : 0)))
  BE=("${PORTS[@]:0:n}")
  BE_STATUS=${PORTS[n]}
  BE_PP=("${PORTS[@]:n+1}")
  BE_CSV= BE_PP_CSV=
  {
    nginx_main_block "$d" 1
    cat <<EOF
  default_type application/octet-stream;
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  keepalive_requests 100000000;
  keepalive_timeout 75s;
  open_file_cache max=100 inactive=60s;
  server {
    listen 127.0.0.1:$BE_STATUS;
    location = /nginx_status { stub_status; }
  }
EOF
    for ((i = 0; i < n; i++)); do
      cat <<EOF
  server {
    listen 127.0.0.1:${BE[i]} backlog=4096;$( ((pp)) && printf '\n    listen 127.0.0.1:%s backlog=4096 proxy_protocol;' "${BE_PP[i]}")
    root $T/www;
    location = /small { add_header X-Backend ${letters:i:1}; default_type text/plain; return 200 "$body\n"; }
    location = /64k { add_header X-Backend ${letters:i:1}; try_files /64k.bin =404; }
    location / { add_header X-Backend ${letters:i:1}; default_type text/plain; return 200 "$body\n"; }
  }
EOF
    done
    echo "}"
  } >"$d/nginx.conf"
  for ((i = 0; i < n; i++)); do BE_CSV+="${BE_CSV:+,}127.0.0.1:${BE[i]}"; done
  for ((i = 0; i < ${#BE_PP[@]}; i++)); do BE_PP_CSV+="${BE_PP_CSV:+,}127.0.0.1:${BE_PP[i]}"; done
  nginx -t -p "$d" -c "$d/nginx.conf" -e "$d/error.log" >"$d/test.log" 2>&1 || { cat "$d/test.log" >&2; die "backend nginx config"; }
  start_bg backend-nginx "$SERVER_CPUS" "$d/nginx.out" nginx -p "$d" -c "$d/nginx.conf" -e "$d/error.log"
  BE_PGID=$LAST_PID
  for ((i = 0; i < n; i++)); do wait_port "${BE[i]}" 10 "$BE_PGID" || { cat "$d/error.log" >&2; die "backend nginx did not start"; }; done
}

# start_udp_echo_backend: lib/udpload.c in echo mode (one socket, recvmmsg/sendmmsg batches) on CPU
# SERVER_CPUS -> BE_UDP (port), BE_UDP_PGID. Needs build_udpload first.
start_udp_echo_backend() {
  free_ports 1; BE_UDP=${PORTS[0]}
  start_bg udp-echo "$SERVER_CPUS" "$T/udp-echo.log" "$UDPLOAD" echo 127.0.0.1 "$BE_UDP"
  BE_UDP_PGID=$LAST_PID
  wait_port "$BE_UDP" 10 "$LAST_PID" || { cat "$T/udp-echo.log" >&2; die "udp echo backend did not start"; }
}
backend_accepts() { "$PY" "$BPY" nginx-accepts "http://127.0.0.1:$BE_STATUS/nginx_status"; }

start_iperf_backend() {  # -> BE_IPERF, BE_IPERF_PGID
  free_ports 1; BE_IPERF=${PORTS[0]}
  start_bg iperf3-server "$SERVER_CPUS" "$T/iperf3-server.log" iperf3 -s -B 127.0.0.1 -p "$BE_IPERF"
  BE_IPERF_PGID=$LAST_PID
  wait_port "$BE_IPERF" 10 "$LAST_PID" || { cat "$T/iperf3-server.log" >&2; die "iperf3 -s did not start"; }
}

start_holder() {  # idle backend: accepts and holds; "accepted open" in $T/holder.status -> BE_IDLE, BE_IDLE_PGID
  free_ports 1; BE_IDLE=${PORTS[0]}
  start_bg idle-holder "$SERVER_CPUS" "$T/holder.log" "$PY" "$BPY" holder 127.0.0.1 "$BE_IDLE" "$T/holder.status"
  BE_IDLE_PGID=$LAST_PID
  wait_port "$BE_IDLE" 10 "$LAST_PID" || { cat "$T/holder.log" >&2; die "idle holder did not start"; }
}

# ------------------------------------------------------------------ proxies
# start_proxy NAME SPEC...: NAME = haproxy | nginx | sluice (or sluice-SOMETHING: a second Sluice
# with its own config, e.g. sluice-plain); SPEC = MODE=BACKEND[,BACKEND...] with MODE http, https,
# tcp or udp. One listener per SPEC on a free port, round robin over its backends, no
# logging, no health checks, keep-alive to the backends (HAProxy http-reuse always, nginx
# upstream keepalive), as in ../shared/bench/anchors.sh.
# SEND_PROXY=v1|v2 (environment of the call): tcp listeners send a PROXY protocol header to their
# backends (HAProxy send-proxy / send-proxy-v2 on the server lines, NGINX `proxy_protocol on` —
# which sends v1 only: NGINX has no v2 sender —, Sluice `proxy_protocol: v1|v2` on the listener).
# -> PROXY_PID[NAME], PROXY_PORTS[NAME] ("p1 p2 ..."), 0 when all listeners answer.
# Returns 3, with the reason in NA_REASON, when the proxy cannot do a SPEC at all: nginx tcp/udp
# without its stream module (libnginx-mod-stream); HAProxy udp (no UDP proxy in its free version).
declare -A PROXY_PID=() PROXY_PORTS=()
MAXCONN=${MAXCONN:-20000}
SLUICE_GROUP_EXTRA=${SLUICE_GROUP_EXTRA:-}   # extra lines for every generated Sluice target group
SEND_PROXY=${SEND_PROXY:-}                   # v1|v2: tcp listeners send PROXY headers (see start_proxy)
NA_REASON=
declare -A SKIPPED=()                        # candidate -> why start_proxy could not run it (start_candidates)
declare -A CELL_NOTE=()                      # candidate -> note of every row wrk_cell / load_cell record for it
NGINX_STREAM_MODULE=/usr/lib/nginx/modules/ngx_stream_module.so

# ------------------------------------------------------------------ TLS (tls_* and h2_tls scenarios)
# MODE https in the three config writers: TLS (ALPN h2, http/1.1; TLS $TLS_MIN and up) terminated
# by the proxy, plain HTTP/1.1 with keep-alive to the backends. Every proxy gets the same
# certificate from make_tls_cert; session tickets are each proxy's default (on in all three).
TLS_MIN=${TLS_MIN:-1.3}
_group_proto() { case $1 in https) echo http ;; *) echo "$1" ;; esac; }   # listener mode -> backend side

# make_tls_cert: a fresh ECDSA P-256 self-signed certificate (SAN localhost, 127.0.0.1) in $T/tls
# -> TLS_CERT, TLS_KEY, TLS_PEM (certificate + key in one file, HAProxy's crt)
make_tls_cert() {
  need openssl
  mkdir -p "$T/tls"
  TLS_CERT=$T/tls/cert.pem TLS_KEY=$T/tls/key.pem TLS_PEM=$T/tls/haproxy.pem
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 7 -subj /CN=localhost \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -keyout "$TLS_KEY" -out "$TLS_CERT" >"$T/tls/openssl.log" 2>&1 ||
    { cat "$T/tls/openssl.log" >&2; die "openssl req (ECDSA P-256 certificate)"; }
  cat "$TLS_CERT" "$TLS_KEY" >"$TLS_PEM"
}
sluice_tls_yaml() {  # the tls: block of a generated https listener
  echo "    tls:"
  echo "      certificates:"
  echo "        - { cert: $TLS_CERT, key: $TLS_KEY }"
  echo "      min_version: \"$TLS_MIN\""
  echo "      alpn: [h2, \"http/1.1\"]"
}
nginx_tls_lines() {  # inside an nginx https server block
  cat <<EOF
    ssl_certificate $TLS_CERT;
    ssl_certificate_key $TLS_KEY;
    ssl_protocols TLSv$TLS_MIN;
    ssl_session_tickets on;
EOF
}

_targets_yaml() { local a x; IFS=, read -ra a <<<"$1"; for x in "${a[@]}"; do echo "      - { address: $x }"; done; }

write_sluice_yaml() {  # FILE DIR SPEC... (ports from PORTS)
  local f=$1 d=$2 i=0 s
  shift 2
  {
    echo "node: { workers: $WORKERS, max_connections: $MAXCONN }"
    echo "control:"
    echo "  socket: $d/sluice.sock"
    echo "  state: $d/state.json"
    echo "listeners:"
    for s in "$@"; do
      echo "  - name: l$i"
      echo "    protocol: ${s%%=*}"
      echo "    bind: 127.0.0.1:${PORTS[i]}"
      [[ ${s%%=*} == http* ]] && echo "    access_log: off"
      [[ ${s%%=*} == https ]] && sluice_tls_yaml
      [[ ${s%%=*} == tcp && -n $SEND_PROXY ]] && echo "    proxy_protocol: $SEND_PROXY"
      echo "    default: { forward: g$i }"
      i=$((i + 1))
    done
    echo "target_groups:"
    i=0
    for s in "$@"; do
      echo "  - name: g$i"
      echo "    protocol: $(_group_proto "${s%%=*}")"
      [[ ${s%%=*} == udp ]] || echo "    algorithm: round_robin"   # udp groups: flow_hash, the default
      echo "    health_check: off"
      [[ -n $SLUICE_GROUP_EXTRA ]] && echo "$SLUICE_GROUP_EXTRA" | sed 's/^/    /'
      echo "    targets:"
      _targets_yaml "${s#*=}"
      i=$((i + 1))
    done
  } >"$f"
}

write_haproxy_cfg() {  # FILE SPEC...
  local f=$1 i=0 s a x
  shift
  {
    cat <<EOF
global
    nbthread $WORKERS
    maxconn 9000
defaults
    timeout connect 5s
    timeout client 5m
    timeout server 5m
    timeout http-keep-alive 30s
    maxconn 9000
EOF
    for s in "$@"; do
      echo "listen l$i"
      echo "    mode $(_group_proto "${s%%=*}")"
      if [[ ${s%%=*} == https ]]; then
        echo "    bind 127.0.0.1:${PORTS[i]} ssl crt $TLS_PEM alpn h2,http/1.1 ssl-min-ver TLSv$TLS_MIN"
      else
        echo "    bind 127.0.0.1:${PORTS[i]}"
      fi
      echo "    balance roundrobin"
      [[ ${s%%=*} == http* ]] && echo "    http-reuse always"
      IFS=, read -ra a <<<"${s#*=}"
      for x in "${a[@]}"; do
        echo "    server s${x##*:} $x$([[ ${s%%=*} == tcp ]] && case $SEND_PROXY in v1) echo " send-proxy" ;; v2) echo " send-proxy-v2" ;; esac)"
      done
      i=$((i + 1))
    done
  } >"$f"
}

write_nginx_conf() {  # FILE DIR SPEC...
  local f=$1 d=$2 i=0 s a x http="" stream=""
  shift 2
  for s in "$@"; do
    IFS=, read -ra a <<<"${s#*=}"
    local ups="  upstream u$i {"$'\n'
    for x in "${a[@]}"; do ups+="    server $x;"$'\n'; done
    if [[ ${s%%=*} == http ]]; then
      ups+="    keepalive 128;"$'\n'"    keepalive_requests 100000000;"$'\n'"    keepalive_timeout 60s;"$'\n'"  }"$'\n'
      http+="$ups  server { listen 127.0.0.1:${PORTS[i]} backlog=4096 reuseport; location / { proxy_pass http://u$i; } }"$'\n'
    elif [[ ${s%%=*} == https ]]; then
      ups+="    keepalive 128;"$'\n'"    keepalive_requests 100000000;"$'\n'"    keepalive_timeout 60s;"$'\n'"  }"$'\n'
      http+="$ups  server {"$'\n'"    listen 127.0.0.1:${PORTS[i]} ssl http2 backlog=4096 reuseport;"$'\n'"$(nginx_tls_lines)"$'\n'
      http+="    location / { proxy_pass http://u$i; }"$'\n'"  }"$'\n'
    elif [[ ${s%%=*} == udp ]]; then   # flows live as long as Sluice's default idle timeout; responses not limited
      stream+="$ups  }"$'\n'"  server { listen 127.0.0.1:${PORTS[i]} udp reuseport; proxy_pass u$i; proxy_timeout 120s; }"$'\n'
    else
      stream+="$ups  }"$'\n'"  server { listen 127.0.0.1:${PORTS[i]} backlog=4096 reuseport; proxy_pass u$i;$([[ -n $SEND_PROXY ]] && echo " proxy_protocol on;") }"$'\n'
    fi
    i=$((i + 1))
  done
  {
    [[ -n $stream ]] && echo "load_module $NGINX_STREAM_MODULE;"
    nginx_main_block "$d" "$WORKERS"
    cat <<EOF
  tcp_nodelay on;
  keepalive_requests 100000000;
  keepalive_timeout 75s;
  proxy_http_version 1.1;
  proxy_set_header Connection "";
  proxy_buffer_size 16k;
  proxy_buffers 8 16k;
  proxy_max_temp_file_size 0;
$http}
EOF
    [[ -n $stream ]] && printf 'stream {\n%s}\n' "$stream"
  } >"$f"
}

# start_sluiced_config NAME CONFIG DIR [PORT...]: sluiced --check, then sluiced in the foreground
start_sluiced_config() {
  local name=$1 cfg=$2 d=$3 p
  shift 3
  START_ERROR=
  timeout 10 "$SLUICED" --check --config "$cfg" >"$d/check.log" 2>&1 || {
    cat "$d/check.log" >&2
    log "sluiced --check rejects $cfg"
    START_ERROR="sluiced --check: $(head -1 "$d/check.log" | sed 's/^[^ ]*: //')"
    return 1
  }
  start_bg "$name(sluiced, workers $WORKERS)" "$PROXY_CPUS" "$d/sluiced.log" ${SLUICED_ENV:+env $SLUICED_ENV} \
    "$SLUICED" --config "$cfg"
  PROXY_PID[$name]=$LAST_PID
  for p in "$@"; do
    wait_port "$p" "${CANDIDATE_READY_S:-15}" "$LAST_PID" || { tail -20 "$d/sluiced.log" >&2; return 1; }
  done
}

start_proxy() {  # NAME SPEC...
  local name=$1 d=$T/$1 p
  shift
  NA_REASON= START_ERROR=
  if [[ $name == haproxy && " $* " == *" udp="* ]]; then
    NA_REASON="HAProxy has no UDP proxy in its free version"
    log "haproxy: $NA_REASON: no UDP cells"
    return 3
  fi
  mkdir -p "$d/tmp"
  free_ports $#
  PROXY_PORTS[$name]="${PORTS[*]}"
  case $name in
    haproxy)
      write_haproxy_cfg "$d/haproxy.cfg" "$@"
      haproxy -c -f "$d/haproxy.cfg" >"$d/check.log" 2>&1 || { cat "$d/check.log" >&2; return 1; }
      start_bg "haproxy(nbthread $WORKERS)" "$PROXY_CPUS" "$d/haproxy.log" haproxy -db -f "$d/haproxy.cfg" ;;
    nginx)
      if [[ " $* " =~ \ (tcp|udp)= && ! -f $NGINX_STREAM_MODULE ]]; then
        NA_REASON="no stream module ($NGINX_STREAM_MODULE; Debian: libnginx-mod-stream, make bench-deps)"
        log "nginx: $NA_REASON: no L4 cells"
        return 3
      fi
      write_nginx_conf "$d/nginx.conf" "$d" "$@"
      nginx -t -p "$d" -c "$d/nginx.conf" -e "$d/error.log" >"$d/check.log" 2>&1 || { cat "$d/check.log" >&2; return 1; }
      start_bg "nginx(workers $WORKERS)" "$PROXY_CPUS" "$d/nginx.out" nginx -p "$d" -c "$d/nginx.conf" -e "$d/error.log" ;;
    sluice | sluice-*)
      write_sluice_yaml "$d/sluice.yaml" "$d" "$@"
      start_sluiced_config "$name" "$d/sluice.yaml" "$d" "${PORTS[@]}"
      return ;;
    *) die "unknown proxy $name" ;;
  esac
  PROXY_PID[$name]=$LAST_PID
  for p in ${PROXY_PORTS[$name]}; do
    wait_port "$p" 15 "$LAST_PID" || { tail -20 "$d"/*.log >&2; return 1; }
  done
}

PROBLEMS=()
stop_proxy() {  # NAME: sluiced must exit 0 on SIGTERM (HAProxy -db reports 143)
  local name=$1
  [[ -n ${PROXY_PID[$name]:-} ]] || return 0
  stop_pid "${PROXY_PID[$name]}" 35
  if [[ $name == sluice* && $LAST_RC != 0 ]]; then
    echo "sluiced exited with status $LAST_RC on SIGTERM (expected 0) in $BENCH_NAME" >>"$OUT_DIR/.problems"
  fi
  unset "PROXY_PID[$name]"
}

# start the side-by-side candidates (PROXIES) for SPEC...; -> CANDS=(those that run),
# SKIPPED[NAME]=reason for those that cannot run these SPECs at all (record_skipped)
start_candidates() {  # SPEC...
  local p rc
  CANDS=()
  for p in $PROXIES; do
    start_proxy "$p" "$@"
    rc=$?
    if ((rc == 0)); then CANDS+=("$p")
    elif ((rc == 3)); then SKIPPED[$p]=$NA_REASON
    else
      echo "$p failed to start in $BENCH_NAME; its cells are missing${START_ERROR:+ ($START_ERROR)}" >>"$OUT_DIR/.problems"
      stop_proxy "$p"
    fi
  done
}
record_skipped() {  # UNIT [OP]: one "n/a" row (the reason as note) per SKIPPED candidate
  local p
  for p in "${!SKIPPED[@]}"; do
    record candidate="$p" rep=1 attempt=1 status=n/a unit="$1" op_unit="${2:-}" note="${SKIPPED[$p]// /_}"
  done
}
rotated() {  # REP ITEM... -> items rotated by REP-1 (drift hits all alike)
  local r=$1 n i
  shift
  n=$#
  local a=("$@")
  for ((i = 0; i < n; i++)); do echo "${a[(i + r - 1) % n]}"; done
}

# ------------------------------------------------------------------ one results format
# record key=value...: one row of the results TSV (columns in lib/bench.py COLS):
#   scenario candidate rep attempt status unit value ops op_unit cpu_s p50_ms p99_ms
#   rss_before_kib rss_after_kib errors foreign_cpu client_cpu better note
RESULT_COLS="scenario candidate rep attempt status unit value ops op_unit cpu_s p50_ms p99_ms rss_before_kib rss_after_kib errors foreign_cpu client_cpu better note"
record() {
  local all="$*" row c v
  row=$(kv scenario "$all"); [[ $row == nan ]] && row=$BENCH_NAME
  for c in ${RESULT_COLS#scenario }; do
    v=$(kv "$c" "$all")
    [[ $v == nan && $c =~ ^(note|better|op_unit|unit)$ ]] && v=""
    [[ $c == note || $c == unit ]] && v=${v//_/ }   # note=two_words: underscores stand for spaces
    row+=$'\t'"$v"
  done
  printf '%s\n' "$row" >>"$RESULTS"
}

# measure CAND REP KIND PGID -- CMD...: run a load generator on CLIENT_CPUS with CPU accounting,
# RSS of PGID before/after; KIND wrk|iperf|h2load|tlsload|udpload (the parser). -> M (key=value: rps mibps p50_ms p99_ms requests
# errors gbps bytes proxy_cpu_s rss_before_kib rss_after_kib foreign_cpu client_cpu rc status)
measure() {
  local cand=$1 rep=$2 kind=$3 pg=$4 out groups=() r parsed rb ra st=ok
  shift 5
  out="$T/runs/${BENCH_NAME}_${cand}_r${rep}_$RANDOM"
  [[ -n $pg ]] && groups=(--group "proxy=$pg") && rb=$(rss_kib "$pg")
  r=$("$PY" "$BPY" run --root "$BENCH_ROOT" --timeout "${LOAD_TIMEOUT:-60}" --nice "$PRIO" \
    --cpus "$( ((PIN)) && echo "$CLIENT_CPUS")" --out "$out.txt" "${groups[@]}" -- "$@")
  echo "$*" >"$out.cmd"
  parsed=$("$PY" "$BPY" parse "$kind" "$out.txt")
  [[ -n $pg ]] && ra=$(rss_kib "$pg")
  M="$r $parsed rss_before_kib=${rb:-nan} rss_after_kib=${ra:-nan}"
  if [[ $(kv rc "$M") == 124 ]]; then st=timeout
  elif [[ -n $pg ]] && ! kill -0 "$pg" 2>/dev/null; then st=proxy_died
  elif [[ $kind =~ ^(wrk|h2load|tlsload|udpload)$ ]] && { [[ $(kv requests "$M") == 0 ]] || (($(kv errors "$M") * 100 > $(kv requests "$M") + 1)); }; then
    st="errors($(kv errors "$M")/$(kv requests "$M"))"
  elif [[ $kind == iperf && ($(kv errors "$M") != 0 || $(kv gbps "$M") == nan) ]]; then st=fail
  elif calc "exit !($(kv foreign_cpu "$M") > $FOREIGN_MAX)"; then st=disturbed
  fi
  M+=" status=$st cpu_s=$(kv proxy_cpu_s "$M")"
}

# wrk_cell CAND REP PORT PATH UNIT(req/s|MiB/s|conn/s) [wrk args...]: measure + record, one retry if disturbed
wrk_cell() {
  local cand=$1 rep=$2 port=$3 path=$4 unit=$5 att=1 pg="" value op=req
  shift 5
  [[ $cand != direct ]] && pg=${PROXY_PID[$cand]:-}
  if [[ $cand != direct ]] && ! kill -0 "${pg:-0}" 2>/dev/null; then
    record candidate="$cand" rep="$rep" attempt=1 status=not_running unit="$unit"; return
  fi
  while :; do
    measure "$cand" "$rep" wrk "$pg" -- wrk -t1 -c"$CONNS" -d"${DUR}s" --latency --timeout 5s "$@" "http://127.0.0.1:$port$path"
    case $unit in MiB/s) value=$(kv mibps "$M") ;; *) value=$(kv rps "$M") ;; esac
    [[ $unit == conn/s ]] && op=conn
    record candidate="$cand" rep="$rep" attempt="$att" unit="$unit" value="$value" ops="$(kv requests "$M")" op_unit="$op" \
      note="${CELL_NOTE[$cand]:-}" $(for k in status cpu_s p50_ms p99_ms rss_before_kib rss_after_kib errors foreign_cpu client_cpu; do echo "$k=$(kv $k "$M")"; done)
    log "$(printf '%-9s r%s/a%s %-10s %s=%s cpu_s=%s p99=%sms foreign=%.0f%%' "$cand" "$rep" "$att" "$(kv status "$M")" \
      "$unit" "$value" "$(kv cpu_s "$M")" "$(kv p99_ms "$M")" "$(kv foreign_cpu "$M")")"
    [[ $(kv status "$M") == disturbed ]] && ((att <= MAX_RETRIES)) || break
    att=$((att + 1))
  done
}

# run_side_by_side MODE PATH UNIT [wrk args...]: backends (2 nginx server blocks), PROXIES on one
# MODE listener each (round robin over both), then REPS x (direct + candidates, order rotated) wrk
# runs of DUR seconds against PATH. The shape of ka_small, ka_64k, close_small and l4_connrate.
run_side_by_side() {
  local mode=$1 path=$2 unit=$3 c
  shift 3
  need wrk nginx
  [[ " $PROXIES " == *" haproxy "* ]] && need haproxy
  [[ " $PROXIES " == *" sluice "* ]] && ensure_sluiced
  start_web_backends 2
  start_candidates "$mode=$BE_CSV"
  record_skipped "$unit"
  wrk_rotation "$path" "$unit" direct "${CANDS[@]}" -- "$@"
  for c in "${CANDS[@]}"; do stop_proxy "$c"; done
}

# wrk_rotation PATH UNIT CAND... -- [wrk args...]: a round-robin check of each proxy (X-Backend of
# 4 connections), then REPS x (CANDs, order rotated) wrk_cell runs against PATH (direct = BE[0]).
wrk_rotation() {
  local path=$1 unit=$2 rep c port cands=()
  shift 2
  while (($#)) && [[ $1 != -- ]]; do cands+=("$1"); shift; done
  shift
  for c in "${cands[@]}"; do
    [[ $c == direct ]] || log "$c round robin check (X-Backend of 4 connections): $("$PY" "$BPY" probe "${PROXY_PORTS[$c]}" 4)"
  done
  for ((rep = 1; rep <= REPS; rep++)); do
    for c in $(rotated "$rep" "${cands[@]}"); do
      if [[ $c == direct ]]; then port=${BE[0]}; else port=${PROXY_PORTS[$c]}; fi
      wrk_cell "$c" "$rep" "$port" "$path" "$unit" "$@"
      sleep 0.2
    done
  done
}

# ------------------------------------------------------------------ TLS scenarios (tls_handshake,
# tls_resumed, tls_ka, h2_tls): one https listener per proxy (MODE https above) over the two nginx
# backends; the load generator's command comes from the scenario's load_cmd PORT (-> CMD array).
TLS_CONNS=${TLS_CONNS:-32}     # tlsload threads (connections in flight) of tls_handshake / tls_resumed
H2_CONNS=${H2_CONNS:-8}        # h2_tls: h2load connections ...
H2_STREAMS=${H2_STREAMS:-8}    # ... and concurrent streams on each

build_c_tool() {  # NAME [LIBS...]: lib/NAME.c -> $T/NAME (gcc -O2)
  local name=$1
  shift
  need gcc
  gcc -O2 -o "$T/$name" "$BENCH_DIR/lib/$name.c" "$@" >"$T/$name-build.log" 2>&1 ||
    { cat "$T/$name-build.log" >&2; die "cannot build lib/$name.c (needs gcc${*:+ and the headers of $*}: make bench-deps)"; }
}
build_tlsload() { build_c_tool tlsload -lssl -lcrypto -lpthread && TLSLOAD=$T/tlsload; }   # -> TLSLOAD
build_udpload() { build_c_tool udpload && UDPLOAD=$T/udpload; }                           # -> UDPLOAD

tls_probe() {  # PORT N: X-Backend of N requests, one TLS connection each, then the ALPN h2 check
  local i seen=()
  for ((i = 0; i < $2; i++)); do
    seen+=("$(curl -sk --http1.1 --max-time 5 -o /dev/null -D - "https://127.0.0.1:$1/small" | tr -d '\r' | awk -F': ' 'tolower($1)=="x-backend"{print $2}')")
  done
  local IFS=,
  echo "${seen[*]}; curl --http2: HTTP/$(curl -sk --http2 --max-time 5 -o /dev/null -w '%{http_version}' "https://127.0.0.1:$1/small")"
}

# load_cell CAND REP KIND UNIT OP CMD...: measure + record one run of CMD (KIND wrk|h2load|tlsload|
# udpload, the command complete with its URL/address), one retry if disturbed; CAND direct = no
# proxy. Checks beyond measure's: h2load must have negotiated $H2LOAD_PROTO (when set); tlsload's
# resumptions must match TLS_RESUMED (all: at least 95 % of the connections resumed; none: not
# one); udpload must not have received one bad reply (bad_replies(N)). ops = the parser's ops when
# it gives them (udpload: round trips of the whole run, warm-up included), else requests.
load_cell() {
  local cand=$1 rep=$2 kind=$3 unit=$4 op=$5 att=1 pg="" value st note res n ops
  shift 5
  [[ $cand != direct ]] && pg=${PROXY_PID[$cand]:-}
  if [[ $cand != direct ]] && ! kill -0 "${pg:-0}" 2>/dev/null; then
    record candidate="$cand" rep="$rep" attempt=1 status=not_running unit="$unit"; return
  fi
  while :; do
    measure "$cand" "$rep" "$kind" "$pg" -- "$@"
    value=$(kv rps "$M") st=$(kv status "$M") note=""
    if [[ $kind == h2load ]]; then
      note="ALPN_$(kv proto "$M")"
      [[ -n ${H2LOAD_PROTO:-} && $st =~ ^(ok|disturbed)$ && $(kv proto "$M") != "$H2LOAD_PROTO" ]] && st="alpn($(kv proto "$M"))"
    elif [[ $kind == tlsload ]]; then
      res=$(kv resumed "$M") n=$(kv requests "$M")
      note="resumed_$res/$n"
      if [[ $st =~ ^(ok|disturbed)$ ]]; then
        case ${TLS_RESUMED:-} in
          all) ((res * 100 < n * 95)) && st="not_resumed($res/$n)" ;;
          none) ((res > 0)) && st="resumed($res/$n)" ;;
        esac
      fi
    elif [[ $kind == udpload ]]; then
      note="lost_$(kv lost "$M"),_late_$(kv late "$M"),_bad_$(kv bad "$M")"
      [[ $st =~ ^(ok|disturbed)$ && $(kv bad "$M") != 0 ]] && st="bad_replies($(kv bad "$M"))"
    fi
    ops=$(kv ops "$M")
    [[ $ops == nan ]] && ops=$(kv requests "$M")
    [[ -n ${CELL_NOTE[$cand]:-} ]] && note+="${note:+,_}${CELL_NOTE[$cand]}"
    record candidate="$cand" rep="$rep" attempt="$att" unit="$unit" value="$value" ops="$ops" op_unit="$op" \
      status="$st" note="$note" \
      $(for k in cpu_s p50_ms p99_ms rss_before_kib rss_after_kib errors foreign_cpu client_cpu; do echo "$k=$(kv $k "$M")"; done)
    log "$(printf '%-9s r%s/a%s %-10s %s=%s cpu_s=%s p99=%sms foreign=%.0f%% %s' "$cand" "$rep" "$att" "$st" \
      "$unit" "$value" "$(kv cpu_s "$M")" "$(kv p99_ms "$M")" "$(kv foreign_cpu "$M")" "$note")"
    [[ $st == disturbed ]] && ((att <= MAX_RETRIES)) || break
    att=$((att + 1))
  done
}

# run_tls_side_by_side KIND UNIT OP: a certificate (make_tls_cert), the two nginx backends, PROXIES
# on one https listener each (no direct cell: the backends speak plain HTTP), a round-robin and
# ALPN check, then REPS x (candidates, order rotated) load_cell runs of the scenario's load_cmd.
run_tls_side_by_side() {
  local kind=$1 unit=$2 op=$3 rep c
  need nginx curl openssl
  [[ " $PROXIES " == *" haproxy "* ]] && need haproxy
  [[ " $PROXIES " == *" sluice "* ]] && ensure_sluiced
  make_tls_cert
  start_web_backends 2
  start_candidates "https=$BE_CSV"
  for c in "${CANDS[@]}"; do log "$c over TLS, X-Backend of 4 connections: $(tls_probe "${PROXY_PORTS[$c]}" 4)"; done
  for ((rep = 1; rep <= REPS; rep++)); do
    for c in $(rotated "$rep" "${CANDS[@]}"); do
      load_cmd "${PROXY_PORTS[$c]}"
      load_cell "$c" "$rep" "$kind" "$unit" "$op" "${CMD[@]}"
      sleep 0.2
    done
  done
  for c in "${CANDS[@]}"; do stop_proxy "$c"; done
}

# report_bars TITLE SPEC...: compare cells of this scenario in RESULTS (lib/bench.py bars: SPEC =
# CAND/REF:value|cpu[>=X|<=X]); the list goes to the log and to out/last-$BENCH_NAME.extra.md
# (appended to run.sh's report). Status 1 when a bar is missed.
report_bars() {
  local out rc
  out=$("$PY" "$BPY" bars "$RESULTS" "$BENCH_NAME" "$@")
  rc=$?
  printf '%s\n' "$out" >&2
  printf '%s\n' "$out" >>"$OUT_DIR/last-$BENCH_NAME.extra.md"
  return "$rc"
}
