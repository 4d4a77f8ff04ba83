#!/usr/bin/env bash
# l7-bench.sh -- Sluice's HTTP/1.1 reverse proxy (protocol: http listener) beside
# HAProxy 2.6 `mode http` (http-reuse always) and NGINX (upstream keepalive,
# proxy_http_version 1.1), same run, same pinning, same worker count, loopback only.
#
#   ka_small     keep-alive, 100 B body:   wrk -t1 -cCONNS -dDUR_KA --latency /small
#                -> req/s, p50/p99, proxy CPU us per request
#   ka_64k       keep-alive, 64 KiB body:  wrk -t1 -cCONNS -dDUR /64k (backend sendfile)
#                -> MiB/s, req/s, proxy CPU us per request
#   close_small  new client connection per request: wrk ... -H 'Connection: close' /small
#                -> req/s, proxy CPU us per request (proxies keep backend connections alive)
#
# Backends: one nginx (1 worker), two server blocks (X-Backend: a / b), round robin through
# every proxy; "direct" = the same client against backend a. Each cell REPS times (median,
# min, max); targets interleaved inside each repetition (order rotated per repetition).
# Only processes started here are stopped, by PID / their own process group, also on
# failure or Ctrl-C. Helpers: l7bench.py (which reuses l4bench.py). See README.md.
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
PY=${PYTHON:-python3}
H="$HERE/l7bench.py"

# the exact command line: every parameter set in the environment, then the script
PARAMS="REPS DUR_KA DUR CONNS WORKERS PROXIES SCENARIOS SLUICED CANDIDATE_CMD CANDIDATE_NAME CANDIDATE_READY_S
RESTARTS ANCHOR_HEADERS PIN CLIENT_CPUS SERVER_CPUS PROXY_CPUS PRIO FOREIGN_MAX MAX_RETRIES RETRY_BUDGET_S
MAX_TOTAL_S PORT_HAPROXY PORT_NGINX PORT_CANDIDATE BE_PORT_A BE_PORT_B OUT_DIR KEEP_TMP PYTHON"
CMDLINE=""
for v in $PARAMS; do [[ -n ${!v+x} ]] && CMDLINE+="$v=$(printf '%q' "${!v}") "; done
CMDLINE+="$(printf '%q ' "$0" "$@")"
CMDLINE=${CMDLINE% }

# ------------------------------------------------------------------ parameters
REPS=${REPS:-3}
DUR_KA=${DUR_KA:-10}              # s, ka_small
DUR=${DUR:-5}                     # s, ka_64k and close_small
CONNS=${CONNS:-64}                # wrk connections
WORKERS=${WORKERS:-1}             # HAProxy nbthread, nginx worker_processes, Sluice node.workers
PROXIES=${PROXIES:-"haproxy nginx candidate"}
SCENARIOS=${SCENARIOS:-"ka_small ka_64k close_small"}
SLUICED=${SLUICED:-$REPO/.build/release/sluiced}
CANDIDATE_NAME=${CANDIDATE_NAME:-sluice}
CANDIDATE_READY_S=${CANDIDATE_READY_S:-15}
RESTARTS=${RESTARTS:-2}           # restarts (in all) of proxies that died during the run
ANCHOR_HEADERS=${ANCHOR_HEADERS:-0}  # 1: HAProxy/NGINX also add X-Forwarded-For/-Proto/-Port and pass Host, like Sluice
PIN=${PIN:-1}
CLIENT_CPUS=${CLIENT_CPUS:-0}     # wrk
SERVER_CPUS=${SERVER_CPUS:-1}     # backend nginx (and 1-worker proxies)
if ((WORKERS > 1)); then PROXY_CPUS=${PROXY_CPUS:-0-1}; else PROXY_CPUS=${PROXY_CPUS:-$SERVER_CPUS}; fi
PRIO=${PRIO:--10}                 # nice of every process started here (own autogroup); 0 = off
FOREIGN_MAX=${FOREIGN_MAX:-25}    # % of one CPU used by other processes during a run => "disturbed"
MAX_RETRIES=${MAX_RETRIES:-1}     # extra attempts of a disturbed run ...
RETRY_BUDGET_S=${RETRY_BUDGET_S:-45}  # ... within this total time
MAX_TOTAL_S=${MAX_TOTAL_S:-480}   # watchdog for the whole script
OUT_DIR=${OUT_DIR:-$HERE/out}
KEEP_TMP=${KEEP_TMP:-0}
# default candidate: Sluice on the config written by write_sluice_yaml
DEFAULT_CANDIDATE_CMD='exec "$SLUICED" --config "$L7B_SLUICE_CONFIG"'
CANDIDATE_CMD=${CANDIDATE_CMD:-$DEFAULT_CANDIDATE_CMD}

# ------------------------------------------------------------------ ports
# ../shared/bench: 18081/18082/18201/18301/18443, 19000-19399; l4-bench.sh: 18181-18221, 19401-19503
BE_PORT_A=${BE_PORT_A:-18381}     # backend nginx server block a (X-Backend: a)
BE_PORT_B=${BE_PORT_B:-18382}     # backend nginx server block b
PORT_HAPROXY=${PORT_HAPROXY:-19701}
PORT_CANDIDATE=${PORT_CANDIDATE:-19702}
PORT_NGINX=${PORT_NGINX:-19703}
port_of() {
  case $1 in direct) echo "$BE_PORT_A" ;; haproxy) echo "$PORT_HAPROXY" ;; nginx) echo "$PORT_NGINX" ;;
    candidate) echo "$PORT_CANDIDATE" ;; esac
}
label() { if [[ $1 == candidate ]]; then echo "$CANDIDATE_NAME"; else echo "$1"; fi; }

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "FATAL: $*"; exit 1; }

# ------------------------------------------------------------------ processes
PIDS=()   # long-running processes started here; each leads its own process group
LAST_PID=
start_bg() {  # NAME CPUS LOG CMD...
  local name=$1 cpus=$2 logf=$3
  shift 3
  ((PIN)) || cpus=""
  "$PY" "$H" exec "$PRIO" "$cpus" "$@" >"$logf" 2>&1 </dev/null &
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
REPORT_DONE=0
cleanup() {
  local rc=$?
  trap - EXIT INT TERM HUP
  local i
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do stop_pid "${PIDS[i]}" 5; done
  if ((REPORT_DONE == 0)) && [[ -n $T && -f $T/raw.tsv ]] && (($(wc -l <"$T/raw.tsv") > 1)); then
    echo "run aborted (exit code $rc): PARTIAL results" >>"$T/problems.txt"
    finish_report || true
  fi
  if [[ -n $T && -d $T ]]; then
    if ((KEEP_TMP)); then log "kept temp dir $T"; else rm -rf "$T"; fi
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM HUP

port_busy() { [[ -n $(ss -Hltn "sport = :$1" 2>/dev/null) ]]; }
wait_port() {  # PORT TIMEOUT_S [PID]
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    port_busy "$1" && return 0
    [[ -n ${3:-} ]] && ! kill -0 "$3" 2>/dev/null && return 1
    sleep 0.1
  done
  return 1
}

nginx_temp_paths() {  # DIR
  cat <<EOF
  client_body_temp_path $1/tmp/body;
  proxy_temp_path $1/tmp/proxy;
  fastcgi_temp_path $1/tmp/fastcgi;
  uwsgi_temp_path $1/tmp/uwsgi;
  scgi_temp_path $1/tmp/scgi;
EOF
}

# ------------------------------------------------------------------ backends
# as in ../shared/bench/anchors.sh: one nginx, 1 worker, two server blocks
start_backends() {
  local d=$T/backend body
  mkdir -p "$d/tmp" "$T/www"
  printf '%099d\n' 0 | tr 0 a >"$T/www/small.txt"          # 100 bytes with the newline
  head -c 65536 /dev/zero | tr '\0' 'b' >"$T/www/64k.bin"   # 64 KiB, served with sendfile
  body=$(cat "$T/www/small.txt")
  cat >"$d/nginx.conf" <<EOF
worker_processes 1;
daemon off;
master_process on;
user root;
pid $d/nginx.pid;
error_log $d/error.log warn;
worker_rlimit_nofile 20000;
events { worker_connections 9000; }
http {
  access_log off;
  default_type application/octet-stream;
$(nginx_temp_paths "$d")
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  keepalive_requests 100000000;
  keepalive_timeout 75s;
  open_file_cache max=100 inactive=60s;
  server {
    listen 127.0.0.1:$BE_PORT_A backlog=4096;
    root $T/www;
    location = /small { add_header X-Backend a; default_type text/plain; return 200 "$body\n"; }
    location = /64k { add_header X-Backend a; try_files /64k.bin =404; }
  }
  server {
    listen 127.0.0.1:$BE_PORT_B backlog=4096;
    root $T/www;
    location = /small { add_header X-Backend b; default_type text/plain; return 200 "$body\n"; }
    location = /64k { add_header X-Backend b; try_files /64k.bin =404; }
  }
}
EOF
  nginx -t -p "$d" -c "$d/nginx.conf" -e "$d/error.log" >"$d/test.log" 2>&1 || { cat "$d/test.log"; die "backend nginx config"; }
  start_bg backend-nginx "$SERVER_CPUS" "$d/nginx.out" nginx -p "$d" -c "$d/nginx.conf" -e "$d/error.log"
  local ng=$LAST_PID
  wait_port "$BE_PORT_A" 10 "$ng" && wait_port "$BE_PORT_B" 5 "$ng" || { cat "$d/error.log"; die "backend nginx did not start"; }
  BACKEND_PGIDS=$ng
}

# ------------------------------------------------------------------ proxies
declare -A PROXY_PID=() STARTED=()
MAXCONN=9000   # HAProxy maxconn, nginx worker_connections (fd hard limit here 20000)

write_haproxy_cfg() {  # FILE
  local hdrs=""
  ((ANCHOR_HEADERS)) && hdrs="    option forwardfor
    http-request set-header X-Forwarded-Proto http
    http-request set-header X-Forwarded-Port %[dst_port]"
  cat >"$1" <<EOF
# as in ../shared/bench/anchors.sh (fe_http/be_http), no logging
global
    nbthread $WORKERS
    maxconn $MAXCONN
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    timeout http-keep-alive 30s
    maxconn $MAXCONN
frontend fe_http
    bind 127.0.0.1:$PORT_HAPROXY
$hdrs
    default_backend be_http
backend be_http
    balance roundrobin
    http-reuse always
    server a 127.0.0.1:$BE_PORT_A
    server b 127.0.0.1:$BE_PORT_B
EOF
}

write_nginx_conf() {  # FILE DIR
  local hdrs=""
  ((ANCHOR_HEADERS)) && hdrs='  proxy_set_header Host $http_host;
  proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
  proxy_set_header X-Forwarded-Proto $scheme;
  proxy_set_header X-Forwarded-Port $server_port;'
  cat >"$1" <<EOF
# as in ../shared/bench/anchors.sh (HTTP part), no access log
worker_processes $WORKERS;
daemon off;
master_process on;
user root;
pid $2/nginx.pid;
error_log $2/error.log warn;
worker_rlimit_nofile 20000;
events { worker_connections $MAXCONN; }
http {
  access_log off;
$(nginx_temp_paths "$2")
  tcp_nodelay on;
  keepalive_requests 100000000;
  keepalive_timeout 75s;
  upstream be_http {
    server 127.0.0.1:$BE_PORT_A;
    server 127.0.0.1:$BE_PORT_B;
    keepalive 128;
    keepalive_requests 100000000;
    keepalive_timeout 60s;
  }
  proxy_http_version 1.1;
  proxy_set_header Connection "";
$hdrs
  proxy_buffer_size 16k;
  proxy_buffers 8 16k;
  proxy_max_temp_file_size 0;
  server {
    listen 127.0.0.1:$PORT_NGINX backlog=4096 reuseport;
    location / { proxy_pass http://be_http; }
  }
}
EOF
}

write_sluice_yaml() {  # FILE DIR: the config of the brief; control socket/state in the temp dir
  cat >"$1" <<EOF
node: { workers: $WORKERS, max_connections: 20000 }
control:
  socket: $2/sluice.sock
  state: $2/state.json
listeners:
  - name: web
    protocol: http
    bind: 127.0.0.1:$PORT_CANDIDATE
    access_log: off
    default: { forward: web }
target_groups:
  - name: web
    protocol: http
    algorithm: round_robin
    health_check: off
    targets:
      - { address: 127.0.0.1:$BE_PORT_A }
      - { address: 127.0.0.1:$BE_PORT_B }
EOF
}

start_proxy() {  # TARGET
  local t=$1 d=$T/$1
  mkdir -p "$d"
  STARTED[$t]=1
  case $t in
    haproxy) start_bg "haproxy(nbthread $WORKERS)" "$PROXY_CPUS" "$d/haproxy.log" haproxy -db -f "$d/haproxy.cfg" ;;
    nginx) start_bg "nginx(worker_processes $WORKERS)" "$PROXY_CPUS" "$d/nginx.log" nginx -p "$d" -c "$d/nginx.conf" -e "$d/error.log" ;;
    candidate)
      start_bg "$CANDIDATE_NAME(workers $WORKERS)" "$PROXY_CPUS" "$d/candidate.log" env \
        SLUICED="$SLUICED" L7B_SLUICE_CONFIG="$d/sluice.yaml" L7B_NAME="$CANDIDATE_NAME" L7B_WORKERS="$WORKERS" \
        L7B_TMP="$d" L7B_MAXCONN="$MAXCONN" L7B_LISTEN="127.0.0.1:$PORT_CANDIDATE" \
        L7B_BACKENDS="127.0.0.1:$BE_PORT_A,127.0.0.1:$BE_PORT_B" \
        bash -c "$CANDIDATE_CMD" ;;
  esac
  PROXY_PID[$t]=$LAST_PID
  wait_port "$(port_of "$t")" "$CANDIDATE_READY_S" "$LAST_PID" && return 0
  log "$(label "$t") did not open 127.0.0.1:$(port_of "$t"); log tail:"
  tail -n 20 "$d"/*.log >&2
  return 1
}

stop_proxy() {  # TARGET
  local t=$1
  [[ -n ${PROXY_PID[$t]:-} ]] || return 0
  stop_pid "${PROXY_PID[$t]}" 35   # Sluice: SIGTERM waits for in-flight work (none left by then)
  # sluiced must exit 0 on SIGTERM (HAProxy -db reports 143)
  if [[ $t == candidate && $CANDIDATE_CMD == "$DEFAULT_CANDIDATE_CMD" && $LAST_RC != 0 && ${PROXY_OK[$t]:-0} == 1 ]]; then
    echo "$CANDIDATE_NAME exited with status $LAST_RC on SIGTERM (expected 0)" >>"$T/problems.txt"
  fi
  unset "PROXY_PID[$t]"
}

alive() { [[ -n ${PROXY_PID[$1]:-} ]] && kill -0 "${PROXY_PID[$1]}" 2>/dev/null; }

# ------------------------------------------------------------------ measurements
kv() {  # KEY "k=v ..."
  local x
  for x in $2; do [[ ${x%%=*} == "$1" ]] && { echo "${x#*=}"; return; }; done
  echo nan
}
calc() { awk "BEGIN{ $1 }"; }

RAW_COLS="scenario target rep attempt status dur rps mibps p50_ms p99_ms requests errors proxy_cpu_s us_per_req proxy_cpu client_cpu cpu0_busy cpu1_busy foreign_cpu steal_cpu wall"
raw_row() {  # "k=v ..." -> one raw.tsv line
  local row="" c
  for c in $RAW_COLS; do row+="$(kv "$c" "$1")"$'\t'; done
  printf '%s\n' "${row%$'\t'}" >>"$T/raw.tsv"
}

LAST_STATUS=
run_load() {  # SCENARIO TARGET REP ATTEMPT
  local s=$1 t=$2 rep=$3 att=$4 p out d
  local -a cmd
  out="$T/runs/${s}_${t}_r${rep}_a${att}"
  p=$(port_of "$t")
  case $s in
    ka_small) d=$DUR_KA; cmd=(wrk -t1 -c"$CONNS" -d"${d}s" --latency --timeout 5s "http://127.0.0.1:$p/small") ;;
    ka_64k) d=$DUR; cmd=(wrk -t1 -c"$CONNS" -d"${d}s" --timeout 5s "http://127.0.0.1:$p/64k") ;;
    close_small) d=$DUR; cmd=(wrk -t1 -c"$CONNS" -d"${d}s" --timeout 5s -H "Connection: close" "http://127.0.0.1:$p/small") ;;
    *) die "unknown scenario $s" ;;
  esac
  local groups=(--group "backend=$BACKEND_PGIDS")
  [[ $t != direct ]] && groups+=(--group "proxy=${PROXY_PID[$t]}")
  local r parsed
  r=$("$PY" "$H" run --root $$ --timeout $((d + 20)) --nice "$PRIO" --cpus "$( ((PIN)) && echo "$CLIENT_CPUS")" \
    --out "$out.txt" "${groups[@]}" -- "${cmd[@]}")
  echo "${cmd[*]}" >"$out.cmd"
  parsed=$("$PY" "$H" parse "$out.txt")
  local all="$r $parsed" value req errs status=ok pcs us
  value=$(kv rps "$all")
  req=$(kv requests "$all")
  errs=$(kv errors "$all")
  pcs=$(kv proxy_cpu_s "$all")
  us=$(calc "o = $req + 0; c = \"$pcs\"; if (c == \"nan\" || o <= 0) print \"nan\"; else printf \"%.2f\", c * 1e6 / o")
  if [[ $(kv rc "$all") == 124 ]]; then status=timeout
  elif [[ $value == nan || $value == 0 ]]; then status="fail_rc$(kv rc "$all")"
  elif ((errs * 100 > req + 1)); then status="errors($errs/$req)"
  elif calc "exit !($(kv foreign_cpu "$all") > $FOREIGN_MAX)"; then status=disturbed
  fi
  [[ $t != direct ]] && ! alive "$t" && status=proxy_died
  LAST_STATUS=$status
  raw_row "$all scenario=$s target=$(label "$t") rep=$rep attempt=$att status=$status dur=$d us_per_req=$us"
  log "$(printf '%-11s %-8s r%s/a%s %-10s req/s=%-9s MiB/s=%-7s p99=%-6s proxy=%s%% us/req=%s client=%s%% cpu0/1=%.0f/%.0f%% foreign=%.0f%%' \
    "$s" "$(label "$t")" "$rep" "$att" "$status" "$value" "$(kv mibps "$all" | cut -c1-7)" "$(kv p99_ms "$all" | cut -c1-6)" \
    "$(kv proxy_cpu "$all" | cut -c1-5)" "$us" "$(kv client_cpu "$all" | cut -c1-5)" \
    "$(kv cpu0_busy "$all")" "$(kv cpu1_busy "$all")" "$(kv foreign_cpu "$all")")"
  sleep 0.2
}

declare -A PROXY_OK=()
RESTARTS_USED=0
ensure_running() {  # TARGET: 0 if it runs; restarts a proxy that died (at most RESTARTS times in all)
  local t=$1
  [[ $t == direct ]] && return 0
  alive "$t" && return 0
  [[ ${PROXY_OK[$t]:-0} == 1 ]] || return 1          # never started: nothing to restart
  stop_pid "${PROXY_PID[$t]}" 5
  unset "PROXY_PID[$t]"
  PROXY_OK[$t]=0
  echo "$(label "$t") stopped running during the run (exit status ${LAST_RC:-?}); see its log" >>"$T/problems.txt"
  ((RESTARTS_USED < RESTARTS)) || return 1
  RESTARTS_USED=$((RESTARTS_USED + 1))
  log "restarting $(label "$t")"
  if start_proxy "$t"; then
    PROXY_OK[$t]=1
    echo "$(label "$t") restarted ($RESTARTS_USED/$RESTARTS restarts used)" >>"$T/problems.txt"
    return 0
  fi
  stop_pid "${PROXY_PID[$t]:-}" 5
  unset "PROXY_PID[$t]"
  return 1
}

RETRY_USED=0
run_cell() {  # SCENARIO TARGET REP: a failed cell for a proxy that is not running; retry a disturbed run
  local att=1 t0 why
  if ! ensure_running "$2"; then
    why=not_running
    [[ ${START_FAILED[$2]:-0} == 1 ]] && why=start_failed
    raw_row "scenario=$1 target=$(label "$2") rep=$3 attempt=1 status=$why"
    log "$(printf '%-11s %-8s r%s     %s' "$1" "$(label "$2")" "$3" "$why")"
    return
  fi
  while :; do
    t0=$SECONDS
    run_load "$1" "$2" "$3" "$att"
    [[ $LAST_STATUS == disturbed ]] || break
    ((att > MAX_RETRIES || RETRY_USED >= RETRY_BUDGET_S)) && break
    RETRY_USED=$((RETRY_USED + SECONDS - t0))
    att=$((att + 1))
  done
}

record_mem() {  # REP
  local t m
  for t in "${!PROXY_PID[@]}"; do
    alive "$t" || continue
    m=$("$PY" "$H" mem "${PROXY_PID[$t]}")
    printf '%s\t%s\t%s\t%s\t%s\n' "$(label "$t")" "$1" "$(kv rss_kib "$m")" "$(kv hwm_kib "$m")" "$(kv nproc "$m")" >>"$T/mem.tsv"
  done
}

sanity() {  # TARGET
  local t=$1 r
  r=$("$PY" "$H" sanity "$(port_of "$t")")
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$(label "$t")" "$(kv new "$r")" "$(kv ka "$r")" "$(kv ka_closed "$r")" \
    "$(kv status64k "$r")" "$(kv size64k "$r")" >>"$T/sanity.tsv"
  log "sanity $(label "$t"): $r"
}

# ------------------------------------------------------------------ report
TARGETS=()
declare -A START_FAILED=()
write_meta() {
  local f=$T/meta.md sl_ver sl_id cand
  cand="\`$CANDIDATE_NAME\`"
  if [[ $CANDIDATE_CMD == "$DEFAULT_CANDIDATE_CMD" ]]; then
    sl_ver=$(timeout 3 "$SLUICED" --version 2>/dev/null | head -1)
    sl_id="$(stat -c '%s bytes, built %y' "$SLUICED" 2>/dev/null | cut -d. -f1), sha256 $(sha256sum "$SLUICED" 2>/dev/null | cut -c1-12)"
    cand+=": \`$SLUICED\` ${sl_ver:+($sl_ver) }($sl_id); repo $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo 'no commit')$(git -C "$REPO" status --porcelain 2>/dev/null | grep -q . && echo ' + uncommitted changes')"
  else
    cand+=": CANDIDATE_CMD=\`$CANDIDATE_CMD\`"
  fi
  local hdr_note="no headers added (as in ../shared/bench)"
  ((ANCHOR_HEADERS)) && hdr_note="X-Forwarded-For/-Proto/-Port added and Host passed (ANCHOR_HEADERS=1)"
  {
    echo "# Sluice L7 benchmark: $CANDIDATE_NAME vs HAProxy (mode http) vs NGINX vs direct"
    echo
    echo "Generated by \`Benchmarks/l7-bench.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC') in $((SECONDS / 60)) min $((SECONDS % 60)) s:"
    echo
    echo '```'
    echo "$CMDLINE"
    echo '```'
    echo
    echo "- Machine: $(nproc) vCPU ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM, Linux $(uname -r), loopback only."
    echo "- Versions: $(haproxy -v 2>&1 | head -1 | awk '{print "HAProxy "$3}'); nginx $(nginx -v 2>&1 | sed 's/.*nginx\///') (proxy and backends); $(wrk -v 2>&1 | head -1 | awk '{print "wrk "$2}'); $("$PY" --version 2>&1)."
    echo "- Candidate $cand."
    echo "- Workers: $WORKERS (HAProxy \`nbthread\`, nginx \`worker_processes\`, Sluice \`node.workers\`). Pinning (PIN=$PIN): wrk on CPU $CLIENT_CPUS; backend nginx (1 worker) on CPU $SERVER_CPUS; proxies on CPU $PROXY_CPUS$( ((WORKERS == 1)) && echo " — proxy + backend share one core and the client has the other, so the ratio to direct is about backend cost / (backend + proxy cost)" || echo " — sharing both cores with client and backend"); compare proxies by µs per request."
    echo "- Priority: every process started here runs with nice $PRIO in its own autogroup (PRIO=0: off). A run during which processes not started here used more than ${FOREIGN_MAX}% of a CPU is *disturbed*: retried up to $MAX_RETRIES time(s) (budget ${RETRY_BUDGET_S}s; used ${RETRY_USED}s) and left out of the median when a clean run exists."
    echo "- Runs: $REPS repetitions, median with min–max; within each repetition every scenario runs all targets back to back, target order rotated per repetition. ka_small ${DUR_KA}s, ka_64k and close_small ${DUR}s, $CONNS connections, \`--timeout 5s\`. A run is invalid if more than 1 % of its requests failed (socket errors or non-2xx/3xx). Direct = the same client against backend a (127.0.0.1:$BE_PORT_A); through the proxies = round robin over a and b."
    echo "- Proxy CPU = utime+stime of the proxy's process group (from /proc/PID/stat; nginx: master + workers) over the run; µs/req divides it by the requests wrk completed. MiB/s is wrk's Transfer/sec (body + response headers)."
    echo "- Proxy settings (no access logs anywhere; configs in \`Benchmarks/out/last-l7-logs/\`): HAProxy \`mode http\`, \`http-reuse always\`, maxconn $MAXCONN, timeouts 30s; NGINX upstream \`keepalive 128\`, \`proxy_http_version 1.1\`, \`Connection \"\"\`, 16 KiB proxy buffers, no temp files; anchors: $hdr_note. $CANDIDATE_NAME: $([[ $CANDIDATE_CMD == "$DEFAULT_CANDIDATE_CMD" ]] && echo "\`protocol: http\` listener, \`access_log: off\`, round_robin target group (\`sluice.yaml\`), other settings default (adds X-Forwarded-* and a trace header, SPEC §3)" || echo "see CANDIDATE_CMD")."
    echo "- Kernel (read, not changed): somaxconn=$(sysctl -n net.core.somaxconn 2>/dev/null), tcp_tw_reuse=$(sysctl -n net.ipv4.tcp_tw_reuse 2>/dev/null), ip_local_port_range=\"$(sysctl -n net.ipv4.ip_local_port_range 2>/dev/null | tr '\t' ' ')\"; fd hard limit $(ulimit -Hn)."
    if [[ -s $T/problems.txt ]]; then
      echo
      echo "Problems during the run:"
      echo
      sed 's/^/- /' "$T/problems.txt"
    fi
    echo
  } >"$f"
}

finish_report() {
  REPORT_DONE=1
  write_meta
  mkdir -p "$OUT_DIR"
  local logs=$OUT_DIR/last-l7-logs x
  [[ -f $logs/.l7bench ]] && rm -rf "${logs:?}"
  mkdir -p "$logs" && touch "$logs/.l7bench"
  cp -r "$T/runs" "$T/raw.tsv" "$T/mem.tsv" "$T/sanity.tsv" "$logs/" 2>/dev/null
  for x in backend haproxy nginx candidate; do
    [[ -d $T/$x ]] && { mkdir -p "$logs/$x"; cp "$T/$x"/*.cfg "$T/$x"/*.conf "$T/$x"/*.yaml "$T/$x"/*.log "$logs/$x/" 2>/dev/null; }
  done
  local labels=() t
  for t in "${TARGETS[@]}"; do labels+=("$(label "$t")"); done
  "$PY" "$H" report "$T/raw.tsv" "$T/mem.tsv" "$T/sanity.tsv" "$T/meta.md" "${labels[*]}" "$REPS" "$CANDIDATE_NAME" >"$T/report.md"
  cp "$T/report.md" "$OUT_DIR/last-l7.md"
  cp "$T/raw.tsv" "$OUT_DIR/last-l7.tsv"
  cat "$T/report.md"
  log "wrote $OUT_DIR/last-l7.md (raw runs: last-l7.tsv; logs and configs: last-l7-logs/)"
}

# ------------------------------------------------------------------ main
main() {
  local x t p s rep
  for x in haproxy nginx wrk ss taskset timeout awk "$PY"; do command -v "$x" >/dev/null || die "missing tool: $x"; done
  for t in $PROXIES; do [[ $t =~ ^(haproxy|nginx|candidate)$ ]] || die "unknown proxy '$t' in PROXIES"; done
  for s in $SCENARIOS; do [[ $s =~ ^(ka_small|ka_64k|close_small)$ ]] || die "unknown scenario '$s' in SCENARIOS"; done
  [[ " $PROXIES " != *" candidate "* || $CANDIDATE_CMD != "$DEFAULT_CANDIDATE_CMD" || -x $SLUICED ]] ||
    log "WARNING: sluiced not found at $SLUICED (swift build -c release, or SLUICED=..., or CANDIDATE_CMD=...): its cells will fail"
  ulimit -n "$(ulimit -Hn)" 2>/dev/null
  for p in $BE_PORT_A $BE_PORT_B; do port_busy "$p" && die "port $p already in use; free it first"; done
  for t in $PROXIES; do p=$(port_of "$t"); port_busy "$p" && die "port $p ($t) already in use; free it first"; done

  # watchdog bounding the whole run (its own process group, stopped by cleanup)
  PRIO=0 start_bg watchdog "" /dev/null bash -c "sleep $MAX_TOTAL_S; kill -TERM $$"

  T=$(mktemp -d /tmp/l7bench.XXXXXX) || die mktemp
  chmod 755 "$T"
  mkdir -p "$T/runs" "$T/haproxy" "$T/nginx/tmp" "$T/candidate"
  printf '%s\n' "$(echo $RAW_COLS | tr ' ' '\t')" >"$T/raw.tsv"
  printf 'target\trep\trss_kib\thwm_kib\tnproc\n' >"$T/mem.tsv"
  printf 'target\tnew\tka\tka_closed\tstatus64k\tsize64k\n' >"$T/sanity.tsv"
  : >"$T/problems.txt"
  log "temp dir $T; $CMDLINE"
  write_haproxy_cfg "$T/haproxy/haproxy.cfg"
  haproxy -c -f "$T/haproxy/haproxy.cfg" >"$T/haproxy/check.log" 2>&1 || { cat "$T/haproxy/check.log"; die "haproxy config"; }
  write_nginx_conf "$T/nginx/nginx.conf" "$T/nginx"
  nginx -t -p "$T/nginx" -c "$T/nginx/nginx.conf" -e "$T/nginx/error.log" >"$T/nginx/test.log" 2>&1 ||
    { cat "$T/nginx/test.log"; die "nginx proxy config"; }
  write_sluice_yaml "$T/candidate/sluice.yaml" "$T/candidate"
  if [[ " $PROXIES " == *" candidate "* && $CANDIDATE_CMD == "$DEFAULT_CANDIDATE_CMD" && -x $SLUICED ]]; then
    if ! timeout 10 "$SLUICED" --check --config "$T/candidate/sluice.yaml" >"$T/candidate/check.log" 2>&1; then
      log "WARNING: sluiced --check rejects $T/candidate/sluice.yaml:"
      cat "$T/candidate/check.log" >&2
      sed 's/^/`sluiced --check`: /' "$T/candidate/check.log" | head -5 >>"$T/problems.txt"
    fi
  fi

  start_backends
  TARGETS=(direct)
  sanity direct
  for t in $PROXIES; do
    TARGETS+=("$t")
    if start_proxy "$t"; then
      PROXY_OK[$t]=1
      sanity "$t"
    else
      START_FAILED[$t]=1
      printf '%s\tfailed to start\t-\t0\t-\t-\n' "$(label "$t")" >>"$T/sanity.tsv"
      echo "$(label "$t") failed to start: its cells are reported as failed (log: \`Benchmarks/out/last-l7-logs/$t/\`)" >>"$T/problems.txt"
      stop_pid "${PROXY_PID[$t]:-}" 5
      unset "PROXY_PID[$t]"
    fi
  done

  local n=${#TARGETS[@]} i order
  for ((rep = 1; rep <= REPS; rep++)); do
    order=()
    for ((i = 0; i < n; i++)); do order+=("${TARGETS[(i + rep - 1) % n]}"); done
    for s in $SCENARIOS; do
      for t in "${order[@]}"; do run_cell "$s" "$t" "$rep"; done
    done
    record_mem "$rep"
  done
  for t in "${!PROXY_PID[@]}"; do
    alive "$t" || echo "$(label "$t") was not running at the end of the run" >>"$T/problems.txt"
    stop_proxy "$t"
  done
  finish_report
}

main "$@"
