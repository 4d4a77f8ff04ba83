#!/usr/bin/env bash
# l4-bench.sh -- Sluice (L4 / TCP listeners) beside HAProxy 2.6 `mode tcp`, same run,
# same pinning, same worker count, loopback only.
#
#   iperf     TCP throughput, 1 stream (iperf3 -c ... -t DUR_IPERF): Gbit/s, x direct,
#             proxy CPU us per MiB moved
#   connrate  one TCP connection per request through the L4 listener to two nginx
#             backends (round robin): wrk -t1 -cCONNS -dDUR_CONN -H 'Connection: close':
#             conn/s, x direct, proxy CPU us per connection
#   idle      IDLE_CONNS idle connections held through a freshly started proxy to a
#             backend that accepts and holds them: VmRSS before/after, VmHWM, KiB/conn
#
# Each cell is run REPS times (median, min, max); targets are interleaved inside each
# repetition (order rotated per repetition). Only processes started here are stopped,
# by PID / their own process group, also on failure or Ctrl-C. See README.md.
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
PY=${PYTHON:-python3}
H="$HERE/l4bench.py"

# the exact command line: every parameter set in the environment, then the script
PARAMS="REPS DUR_IPERF DUR_CONN CONNS IDLE_CONNS IDLE_BATCH IDLE_TIMEOUT_S WORKERS SLUICED CANDIDATE_CMD
CANDIDATE_NAME CANDIDATE_READY_S SCENARIOS PIN CLIENT_CPUS SERVER_CPUS PROXY_CPUS PRIO FOREIGN_MAX MAX_RETRIES
RETRY_BUDGET_S MAX_TOTAL_S OUT_DIR KEEP_TMP PYTHON"
CMDLINE=""
for v in $PARAMS; do [[ -n ${!v+x} ]] && CMDLINE+="$v=$(printf '%q' "${!v}") "; done
CMDLINE+="$(printf '%q ' "$0" "$@")"
CMDLINE=${CMDLINE% }

# ------------------------------------------------------------------ parameters
REPS=${REPS:-3}
DUR_IPERF=${DUR_IPERF:-10}        # s per iperf3 run
DUR_CONN=${DUR_CONN:-5}           # s per wrk run
CONNS=${CONNS:-64}                # wrk concurrent connections
IDLE_CONNS=${IDLE_CONNS:-9000}    # idle connections held through each proxy
IDLE_BATCH=${IDLE_BATCH:-500}     # opened per batch; next batch once the backend holds them all
IDLE_TIMEOUT_S=${IDLE_TIMEOUT_S:-60}
WORKERS=${WORKERS:-1}             # HAProxy nbthread, Sluice node.workers
SLUICED=${SLUICED:-$REPO/.build/release/sluiced}
CANDIDATE_NAME=${CANDIDATE_NAME:-sluice}
CANDIDATE_READY_S=${CANDIDATE_READY_S:-15}
SCENARIOS=${SCENARIOS:-"iperf connrate idle"}
PIN=${PIN:-1}
CLIENT_CPUS=${CLIENT_CPUS:-0}     # load generators
SERVER_CPUS=${SERVER_CPUS:-1}     # backends (and 1-worker proxies)
if ((WORKERS > 1)); then PROXY_CPUS=${PROXY_CPUS:-0-1}; else PROXY_CPUS=${PROXY_CPUS:-$SERVER_CPUS}; fi
PRIO=${PRIO:--10}                 # nice of every process started here (own autogroup); 0 = off
FOREIGN_MAX=${FOREIGN_MAX:-25}    # % of one CPU used by other processes during a run => "disturbed"
MAX_RETRIES=${MAX_RETRIES:-1}     # extra attempts of a disturbed run ...
RETRY_BUDGET_S=${RETRY_BUDGET_S:-60}  # ... within this total time
MAX_TOTAL_S=${MAX_TOTAL_S:-540}   # watchdog for the whole script
OUT_DIR=${OUT_DIR:-$HERE/out}
KEEP_TMP=${KEEP_TMP:-0}
# default candidate: Sluice on the config written by write_sluice_yaml
DEFAULT_CANDIDATE_CMD='exec "$SLUICED" --config "$L4B_SLUICE_CONFIG"'
CANDIDATE_CMD=${CANDIDATE_CMD:-$DEFAULT_CANDIDATE_CMD}

# ------------------------------------------------------------------ ports
# (the shared side-by-side harness uses 18081/18082/18201/18301/18443 and 19000-19399)
BE_WEB_A=18181      # nginx server block a (X-Backend: a)
BE_WEB_B=18182      # nginx server block b
BE_IPERF=18211      # iperf3 -s
BE_IDLE=18221       # l4bench.py holder
declare -A BASE=([haproxy]=19400 [candidate]=19500)   # +1 iperf, +2 web, +3 idle
port_of() {  # TARGET iperf|web|idle
  if [[ $1 == direct ]]; then
    case $2 in iperf) echo $BE_IPERF ;; web) echo $BE_WEB_A ;; idle) echo $BE_IDLE ;; esac
  else
    case $2 in iperf) echo $((BASE[$1] + 1)) ;; web) echo $((BASE[$1] + 2)) ;; idle) echo $((BASE[$1] + 3)) ;; esac
  fi
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
  if ((REPORT_DONE == 0)) && [[ -n $T && -f $T/raw.tsv ]] && (($(wc -l <"$T/raw.tsv") + $(wc -l <"$T/idle.tsv") > 2)); then
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

# ------------------------------------------------------------------ backends
start_backends() {
  local d=$T/backend
  mkdir -p "$d/tmp"
  local body
  body=$(printf '%099d' 0 | tr 0 a)   # 100-byte body with the newline
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
  client_body_temp_path $d/tmp/body;
  proxy_temp_path $d/tmp/proxy;
  fastcgi_temp_path $d/tmp/fastcgi;
  uwsgi_temp_path $d/tmp/uwsgi;
  scgi_temp_path $d/tmp/scgi;
  tcp_nodelay on;
  keepalive_timeout 75s;
  server {
    listen 127.0.0.1:$BE_WEB_A backlog=4096;
    location / { add_header X-Backend a; default_type text/plain; return 200 "$body\n"; }
  }
  server {
    listen 127.0.0.1:$BE_WEB_B backlog=4096;
    location / { add_header X-Backend b; default_type text/plain; return 200 "$body\n"; }
  }
}
EOF
  nginx -t -p "$d" -c "$d/nginx.conf" -e "$d/error.log" >"$d/test.log" 2>&1 || { cat "$d/test.log"; die "backend nginx config"; }
  start_bg backend-nginx "$SERVER_CPUS" "$d/nginx.out" nginx -p "$d" -c "$d/nginx.conf" -e "$d/error.log"
  local ng=$LAST_PID
  start_bg iperf3-server "$SERVER_CPUS" "$d/iperf3.log" iperf3 -s -B 127.0.0.1 -p $BE_IPERF
  local ip=$LAST_PID
  start_bg idle-holder "$SERVER_CPUS" "$d/holder.log" "$PY" "$H" holder 127.0.0.1 $BE_IDLE "$T/holder.status"
  local ho=$LAST_PID
  wait_port $BE_WEB_A 10 $ng && wait_port $BE_WEB_B 5 || { cat "$d/error.log"; die "backend nginx did not start"; }
  wait_port $BE_IPERF 10 $ip || { cat "$d/iperf3.log"; die "iperf3 -s did not start"; }
  wait_port $BE_IDLE 10 $ho || { cat "$d/holder.log"; die "idle holder did not start"; }
  BACKEND_PGIDS="$ng,$ip,$ho"
}

# ------------------------------------------------------------------ proxies
MAXCONN=$((IDLE_CONNS + 200))
declare -A PROXY_PID=()

write_haproxy_cfg() {  # FILE BASEPORT
  cat >"$1" <<EOF
global
    nbthread $WORKERS
    maxconn $MAXCONN   # fd hard limit here 20000; 2 fds per proxied connection
    # no logging
defaults
    mode tcp
    timeout connect 5s
    timeout client 5m
    timeout server 5m
    maxconn $MAXCONN
listen iperf
    bind 127.0.0.1:$(($2 + 1))
    server s1 127.0.0.1:$BE_IPERF
listen web
    bind 127.0.0.1:$(($2 + 2))
    balance roundrobin
    server a 127.0.0.1:$BE_WEB_A
    server b 127.0.0.1:$BE_WEB_B
listen idle
    bind 127.0.0.1:$(($2 + 3))
    server s1 127.0.0.1:$BE_IDLE
EOF
}

write_sluice_yaml() {  # FILE BASEPORT DIR
  cat >"$1" <<EOF
node:
  workers: $WORKERS
  max_connections: 20000
control:
  socket: $3/sluice.sock
  state: $3/state.json
listeners:
  - name: iperf
    protocol: tcp
    bind: 127.0.0.1:$(($2 + 1))
    default: { forward: iperf }
  - name: web
    protocol: tcp
    bind: 127.0.0.1:$(($2 + 2))
    default: { forward: web }
  - name: idle
    protocol: tcp
    bind: 127.0.0.1:$(($2 + 3))
    default: { forward: idle }
target_groups:
  - name: iperf
    protocol: tcp
    health_check: off
    targets:
      - { address: 127.0.0.1:$BE_IPERF }
  - name: web
    protocol: tcp
    algorithm: round_robin
    health_check: off
    targets:
      - { address: 127.0.0.1:$BE_WEB_A }
      - { address: 127.0.0.1:$BE_WEB_B }
  - name: idle
    protocol: tcp
    health_check: off
    targets:
      - { address: 127.0.0.1:$BE_IDLE }
EOF
}

start_proxy() {  # TARGET
  local t=$1 d=$T/$1 b=${BASE[$1]}
  mkdir -p "$d"
  if [[ $t == haproxy ]]; then
    start_bg "haproxy(nbthread $WORKERS)" "$PROXY_CPUS" "$d/haproxy.log" haproxy -db -f "$d/haproxy.cfg"
  else
    start_bg "$CANDIDATE_NAME(workers $WORKERS)" "$PROXY_CPUS" "$d/candidate.log" env \
      SLUICED="$SLUICED" L4B_SLUICE_CONFIG="$d/sluice.yaml" L4B_NAME="$CANDIDATE_NAME" L4B_WORKERS="$WORKERS" \
      L4B_TMP="$d" L4B_MAXCONN="$MAXCONN" \
      L4B_LISTEN_IPERF="127.0.0.1:$((b + 1))" L4B_LISTEN_WEB="127.0.0.1:$((b + 2))" L4B_LISTEN_IDLE="127.0.0.1:$((b + 3))" \
      L4B_BACKEND_IPERF="127.0.0.1:$BE_IPERF" L4B_BACKENDS_WEB="127.0.0.1:$BE_WEB_A,127.0.0.1:$BE_WEB_B" \
      L4B_BACKEND_IDLE="127.0.0.1:$BE_IDLE" \
      bash -c "$CANDIDATE_CMD"
  fi
  PROXY_PID[$t]=$LAST_PID
  wait_port $((b + 1)) "$CANDIDATE_READY_S" "$LAST_PID" && wait_port $((b + 2)) 5 "$LAST_PID" &&
    wait_port $((b + 3)) 5 "$LAST_PID" && return 0
  log "$(label "$t") did not open its 3 listeners; log tail:"
  tail -20 "$d"/*.log >&2
  return 1
}

stop_proxy() {  # TARGET
  local t=$1
  [[ -n ${PROXY_PID[$t]:-} ]] || return 0
  stop_pid "${PROXY_PID[$t]}" 35   # Sluice: SIGTERM waits for in-flight work (none left by then)
  # sluiced must exit 0 on SIGTERM (HAProxy -db and stand-ins report 143)
  if [[ $t == candidate && $CANDIDATE_CMD == "$DEFAULT_CANDIDATE_CMD" && $LAST_RC != 0 ]]; then
    echo "$CANDIDATE_NAME exited with status $LAST_RC on SIGTERM (expected 0)" >>"$T/problems.txt"
  fi
  unset "PROXY_PID[$t]"
}

# ------------------------------------------------------------------ measurements
kv() {  # KEY "k=v ..."
  local x
  for x in $2; do [[ ${x%%=*} == "$1" ]] && { echo "${x#*=}"; return; }; done
  echo nan
}
calc() { awk "BEGIN{ $1 }"; }

RAW_COLS="scenario target rep attempt status value ops errors proxy_cpu_s us_per_op proxy_cpu client_cpu cpu0_busy cpu1_busy foreign_cpu steal_cpu wall"
LAST_STATUS=
run_load() {  # SCENARIO TARGET REP ATTEMPT
  local s=$1 t=$2 rep=$3 att=$4 p out cmd kind tmo
  out="$T/runs/${s}_${t}_r${rep}_a${att}"
  if [[ $s == iperf ]]; then
    p=$(port_of "$t" iperf); kind=iperf; tmo=$((DUR_IPERF + 20))
    cmd=(iperf3 -c 127.0.0.1 -p "$p" -t "$DUR_IPERF" -J --connect-timeout 3000)
  else
    p=$(port_of "$t" web); kind=wrk; tmo=$((DUR_CONN + 20))
    cmd=(wrk -t1 -c"$CONNS" -d"${DUR_CONN}s" --timeout 5s -H "Connection: close" "http://127.0.0.1:$p/small")
  fi
  local groups=(--group "backend=$BACKEND_PGIDS")
  [[ $t != direct ]] && groups+=(--group "proxy=${PROXY_PID[$t]}")
  local r parsed
  r=$("$PY" "$H" run --root $$ --timeout "$tmo" --nice "$PRIO" --cpus "$( ((PIN)) && echo "$CLIENT_CPUS")" \
    --out "$out.txt" "${groups[@]}" -- "${cmd[@]}")
  echo "${cmd[*]}" >"$out.cmd"
  parsed=$("$PY" "$H" parse "$kind" "$out.txt")
  local all="$r $parsed" value ops errs status=ok pcs us
  if [[ $s == iperf ]]; then
    value=$(kv gbps "$all")
    ops=$(calc "printf \"%.1f\", $(kv bytes "$all") / 1048576")     # MiB moved
  else
    value=$(kv rps "$all")
    ops=$(kv requests "$all")                                       # = connections
  fi
  errs=$(kv errors "$all")
  pcs=$(kv proxy_cpu_s "$all")
  us=$(calc "o = $ops + 0; c = \"$pcs\"; if (c == \"nan\" || o <= 0) print \"nan\"; else printf \"%.2f\", c * 1e6 / o")
  if [[ $(kv rc "$all") == 124 ]]; then status=timeout
  elif [[ $value == nan || $value == 0 ]]; then status="fail_rc$(kv rc "$all")"
  elif [[ $s == iperf && $errs != 0 ]]; then status=error
  elif [[ $s == connrate ]] && ((errs * 100 > ops + 1)); then status="errors($errs)"
  elif calc "exit !($(kv foreign_cpu "$all") > $FOREIGN_MAX)"; then status=disturbed
  fi
  LAST_STATUS=$status
  all="$all scenario=$s target=$(label "$t") rep=$rep attempt=$att status=$status value=$value ops=$ops us_per_op=$us"
  local row="" c
  for c in $RAW_COLS; do row+="$(kv "$c" "$all")"$'\t'; done
  printf '%s\n' "${row%$'\t'}" >>"$T/raw.tsv"
  log "$(printf '%-8s %-9s r%s/a%s %-9s value=%-9s proxy=%s%% %s=%s client=%s%% cpu0/1=%.0f/%.0f%% foreign=%.0f%%' \
    "$s" "$(label "$t")" "$rep" "$att" "$status" "$value" "$(kv proxy_cpu "$all" | cut -c1-5)" \
    "$([[ $s == iperf ]] && echo us/MiB || echo us/conn)" "$us" "$(kv client_cpu "$all" | cut -c1-5)" \
    "$(kv cpu0_busy "$all")" "$(kv cpu1_busy "$all")" "$(kv foreign_cpu "$all")")"
  sleep 0.2
}

RETRY_USED=0
run_cell() {  # SCENARIO TARGET REP: retry a disturbed run within the budget
  local att=1 t0
  if [[ $2 != direct ]] && ! kill -0 "${PROXY_PID[$2]:-0}" 2>/dev/null; then
    echo "$(label "$2") not running before $1 rep $3" >>"$T/problems.txt"
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

holder_open() { local a o; read -r a o <"$T/holder.status" 2>/dev/null || { echo -1; return; }; echo "$o"; }
wait_holder_drained() {  # until the idle backend holds no connection (max 30 s)
  local i
  for ((i = 0; i < 300; i++)); do (($(holder_open) == 0)) && return 0; sleep 0.1; done
  log "idle backend still holds $(holder_open) connections"
  return 1
}

IDLE_COLS="target rep status n backend_open base_rss_kib rss_kib hwm_kib fds connect_s kib_per_conn"
run_idle() {  # TARGET REP: fresh proxy -> baseline RSS -> N idle conns -> RSS/HWM
  local t=$1 rep=$2 status=ok base="" m="" cl secs=nan bo=nan i line
  wait_holder_drained
  stop_proxy "$t"
  if ! start_proxy "$t"; then
    printf '%s\t%s\tstart_failed\t%s\t\t\t\t\t\t\t\n' "$(label "$t")" "$rep" "$IDLE_CONNS" >>"$T/idle.tsv"
    return
  fi
  sleep 1   # let a freshly started daemon finish its start-up before the baseline
  base=$("$PY" "$H" mem "${PROXY_PID[$t]}")
  start_bg "idle-client($IDLE_CONNS)" "$CLIENT_CPUS" "$T/runs/idle_${t}_r$rep.log" \
    "$PY" "$H" idle-client 127.0.0.1 "$(port_of "$t" idle)" "$IDLE_CONNS" "$T/holder.status" "$IDLE_BATCH" "$IDLE_TIMEOUT_S"
  cl=$LAST_PID
  # poll: the client reports "ready" once the backend holds all N (it paces on the backend's count)
  for ((i = 0; i < (IDLE_TIMEOUT_S + 5) * 20; i++)); do
    line=$(grep -m1 -E '^(ready|fail)' "$T/runs/idle_${t}_r$rep.log" 2>/dev/null)
    [[ -n $line ]] && break
    kill -0 "$cl" 2>/dev/null || break
    kill -0 "${PROXY_PID[$t]}" 2>/dev/null || break
    sleep 0.05
  done
  [[ -n $line ]] || line=$(grep -m1 -E '^(ready|fail)' "$T/runs/idle_${t}_r$rep.log" 2>/dev/null)
  if [[ $line == ready* ]]; then
    m=$("$PY" "$H" mem "${PROXY_PID[$t]}")
    bo=$(holder_open)
    secs=$(kv secs "$line")
    ((bo < IDLE_CONNS)) && status="backend_lost_conns($bo)"
  else
    kill -0 "${PROXY_PID[$t]}" 2>/dev/null || status="proxy_died"
    [[ $status == ok ]] && status="not ready: ${line:-no output from the client}; backend holds $(holder_open)"
  fi
  stop_pid "$cl" 5
  local br r h f k
  br=$(kv rss_kib "$base"); r=$(kv rss_kib "$m"); h=$(kv hwm_kib "$m"); f=$(kv fds "$m")
  k=$(calc "if (\"$r\" == \"nan\") print \"nan\"; else printf \"%.2f\", ($r - $br) / $IDLE_CONNS")
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(label "$t")" "$rep" "$status" "$IDLE_CONNS" "$bo" \
    "$br" "$r" "$h" "$f" "$secs" "$k" >>"$T/idle.tsv"
  log "$(printf 'idle     %-9s r%s   %-9s base=%s KiB rss=%s KiB hwm=%s KiB fds=%s KiB/conn=%s connect=%ss' \
    "$(label "$t")" "$rep" "$status" "$br" "$r" "$h" "$f" "$k" "$secs")"
}

# ------------------------------------------------------------------ report
TARGETS=()
PROBES=()
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
  {
    echo "# Sluice L4 benchmark: $CANDIDATE_NAME vs HAProxy (mode tcp) vs direct"
    echo
    echo "Generated by \`Benchmarks/l4-bench.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC') in $((SECONDS / 60)) min $((SECONDS % 60)) s:"
    echo
    echo '```'
    echo "$CMDLINE"
    echo '```'
    echo
    echo "- Machine: $(nproc) vCPU ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM, Linux $(uname -r), loopback only."
    echo "- Versions: $(haproxy -v 2>&1 | head -1 | awk '{print "HAProxy "$3}'); nginx $(nginx -v 2>&1 | sed 's/.*nginx\///') (backends); $(iperf3 -v 2>&1 | head -1 | awk '{print "iperf3 "$2}'); $(wrk -v 2>&1 | head -1 | awk '{print "wrk "$2}'); $("$PY" --version 2>&1)."
    echo "- Candidate $cand."
    echo "- Workers: $WORKERS (HAProxy \`nbthread\`, Sluice \`node.workers\`). Pinning (PIN=$PIN): load generator on CPU $CLIENT_CPUS; backends (nginx 1 worker, \`iperf3 -s\`, idle holder) on CPU $SERVER_CPUS; proxies on CPU $PROXY_CPUS$( ((WORKERS == 1)) && echo " — proxy + backend share one core and the client has the other, so the ratio to direct is about backend cost / (backend + proxy cost)" || echo " — sharing both cores with client and backends"); compare proxies by µs per MiB / per connection."
    echo "- Priority: every process started here runs with nice $PRIO in its own autogroup (PRIO=0: off). A run during which processes not started here used more than ${FOREIGN_MAX}% of a CPU is *disturbed*: retried up to $MAX_RETRIES time(s) (budget ${RETRY_BUDGET_S}s; used ${RETRY_USED}s) and left out of the median when a clean run exists."
    echo "- Runs: $REPS repetitions, median with min–max; within each repetition every scenario runs all targets back to back, target order rotated per repetition. iperf3: 1 stream, ${DUR_IPERF}s. Connection rate: \`wrk -t1 -c$CONNS -d${DUR_CONN}s -H 'Connection: close'\` on a 100-byte response (direct = one nginx backend; through the proxies = round robin over two)."
    echo "- Proxy CPU = utime+stime of the proxy's process group (from /proc/PID/stat) over the run; µs/MiB divides it by the MiB iperf3 received, µs/conn by the connections (requests) wrk completed."
    echo "- Idle connections: each repetition starts the proxy afresh, reads VmRSS after 1 s (*base*), then opens $IDLE_CONNS client connections in batches of $IDLE_BATCH, each batch only after the backend reports the previous ones accepted (so the proxy has accepted *and* connected all of them), then reads VmRSS/VmHWM and the proxy's open fds. KiB/conn = (VmRSS with conns − base) / $IDLE_CONNS. The fd hard limit here is $(ulimit -Hn) and a proxy needs 2 fds per connection (client + backend side), hence at most ~$((($(ulimit -Hn) - 200) / 2)) connections (IDLE_CONNS=$IDLE_CONNS; HAProxy maxconn $MAXCONN, Sluice max_connections 20000)."
    echo "- Proxy settings: HAProxy \`mode tcp\`, no logging, no health checks, timeouts client/server 5m, no splicing. $CANDIDATE_NAME: $([[ $CANDIDATE_CMD == "$DEFAULT_CANDIDATE_CMD" ]] && echo "listeners/target groups as in \`Benchmarks/out/last-l4-logs/candidate/sluice.yaml\` (node.max_connections 20000, health_check: off like HAProxy here, default idle timeout, splice(2))" || echo "see CANDIDATE_CMD"). Configs and logs: \`Benchmarks/out/last-l4-logs/\`."
    echo "- Kernel (read, not changed): somaxconn=$(sysctl -n net.core.somaxconn 2>/dev/null), tcp_tw_reuse=$(sysctl -n net.ipv4.tcp_tw_reuse 2>/dev/null), ip_local_port_range=\"$(sysctl -n net.ipv4.ip_local_port_range 2>/dev/null | tr '\t' ' ')\"."
    echo "- Round-robin check through the web listeners (X-Backend of 4 connections): $(IFS=';'; echo "${PROBES[*]}" | sed 's/;/; /g')."
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
  local logs=$OUT_DIR/last-l4-logs
  [[ -f $logs/.l4bench ]] && rm -rf "${logs:?}"
  mkdir -p "$logs" && touch "$logs/.l4bench"
  cp -r "$T/runs" "$T/raw.tsv" "$T/idle.tsv" "$logs/" 2>/dev/null
  local x
  for x in backend haproxy candidate; do
    [[ -d $T/$x ]] && { mkdir -p "$logs/$x"; cp "$T/$x"/*.cfg "$T/$x"/*.conf "$T/$x"/*.yaml "$T/$x"/*.log "$logs/$x/" 2>/dev/null; }
  done
  local labels=() t
  for t in "${TARGETS[@]}"; do labels+=("$(label "$t")"); done
  "$PY" "$H" report "$T/raw.tsv" "$T/idle.tsv" "$T/meta.md" "${labels[*]}" "$REPS" >"$T/report.md"
  cp "$T/report.md" "$OUT_DIR/last-l4.md"
  cp "$T/raw.tsv" "$OUT_DIR/last-l4.tsv"
  cat "$T/report.md"
  log "wrote $OUT_DIR/last-l4.md (raw runs: last-l4.tsv; logs and configs: last-l4-logs/)"
}

# ------------------------------------------------------------------ main
main() {
  local x t p s rep
  for x in haproxy nginx wrk iperf3 ss taskset timeout awk "$PY"; do command -v "$x" >/dev/null || die "missing tool: $x"; done
  [[ $CANDIDATE_CMD != "$DEFAULT_CANDIDATE_CMD" || -x $SLUICED ]] ||
    die "sluiced not found at $SLUICED (swift build -c release, or set SLUICED=..., or CANDIDATE_CMD=... for a stand-in)"
  ulimit -n "$(ulimit -Hn)" 2>/dev/null
  local hard
  hard=$(ulimit -Hn)
  if [[ $hard != unlimited ]] && ((2 * IDLE_CONNS + 200 > hard)); then
    die "IDLE_CONNS=$IDLE_CONNS needs $((2 * IDLE_CONNS + 200)) fds in the proxy, the fd hard limit is $hard"
  fi
  for p in $BE_WEB_A $BE_WEB_B $BE_IPERF $BE_IDLE; do port_busy $p && die "port $p already in use; free it first"; done
  for t in haproxy candidate; do for s in iperf web idle; do
    p=$(port_of $t $s); port_busy "$p" && die "port $p already in use; free it first"
  done; done

  # watchdog bounding the whole run (its own process group, stopped by cleanup)
  PRIO=0 start_bg watchdog "" /dev/null bash -c "sleep $MAX_TOTAL_S; kill -TERM $$"

  T=$(mktemp -d /tmp/l4bench.XXXXXX) || die mktemp
  mkdir -p "$T/runs" "$T/haproxy" "$T/candidate"
  printf '%s\n' "$(echo $RAW_COLS | tr ' ' '\t')" >"$T/raw.tsv"
  printf '%s\n' "$(echo $IDLE_COLS | tr ' ' '\t')" >"$T/idle.tsv"
  : >"$T/problems.txt"
  log "temp dir $T; $CMDLINE"
  write_haproxy_cfg "$T/haproxy/haproxy.cfg" "${BASE[haproxy]}"
  haproxy -c -f "$T/haproxy/haproxy.cfg" >"$T/haproxy/check.log" 2>&1 || { cat "$T/haproxy/check.log"; die "haproxy config"; }
  write_sluice_yaml "$T/candidate/sluice.yaml" "${BASE[candidate]}" "$T/candidate"
  if [[ $CANDIDATE_CMD == "$DEFAULT_CANDIDATE_CMD" ]]; then
    "$SLUICED" --check --config "$T/candidate/sluice.yaml" >"$T/candidate/check.log" 2>&1 ||
      { log "WARNING: sluiced --check failed on $T/candidate/sluice.yaml:"; cat "$T/candidate/check.log" >&2; }
  fi

  start_backends
  TARGETS=(direct)
  for t in haproxy candidate; do
    if start_proxy "$t"; then
      TARGETS+=("$t")
      PROBES+=("$(label "$t") $("$PY" "$H" probe "$(port_of "$t" web)" 4)")
    else
      echo "$(label "$t") failed to start; its cells are missing" >>"$T/problems.txt"
      stop_pid "${PROXY_PID[$t]:-}" 5
      unset "PROXY_PID[$t]"
    fi
  done
  ((${#TARGETS[@]} > 1)) || die "no proxy started"

  local n=${#TARGETS[@]} i order
  for ((rep = 1; rep <= REPS; rep++)); do
    order=()
    for ((i = 0; i < n; i++)); do order+=("${TARGETS[(i + rep - 1) % n]}"); done
    for s in $SCENARIOS; do
      for t in "${order[@]}"; do
        case $s in
          iperf | connrate) run_cell "$s" "$t" "$rep" ;;
          idle) [[ $t == direct ]] || run_idle "$t" "$rep" ;;
          *) die "unknown scenario $s" ;;
        esac
      done
    done
  done
  for t in "${!PROXY_PID[@]}"; do stop_proxy "$t"; done
  finish_report
}

main "$@"
