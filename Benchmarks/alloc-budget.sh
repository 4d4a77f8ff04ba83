#!/usr/bin/env bash
# alloc-budget.sh -- heap allocations per proxied request of the real daemon, checked against a
# budget (a benchmark threshold, not a unit test). sluiced runs under LD_PRELOAD=malloc-count.so
# (Benchmarks/malloc-count.c, compiled here into the temp dir), which appends
# "mallocs=N frees=M" to $MALLOC_COUNT_OUT on SIGUSR2.
#
#   ka      keep-alive HTTP:  wrk -t1 -cCONNS /small through a protocol: http listener
#   close   HTTP, Connection: close (a new client connection per request), same listener
#   l4      protocol: tcp listener, wrk -H 'Connection: close' (one proxied connection per request)
#
# Per scenario: warm-up wrk run (DUR_WARM / DUR_WARM_CONN s: pools and tables grow), SIGUSR2 (snapshot A),
# measured wrk run (DUR s), SIGUSR2 (snapshot B); allocations per request = (B-A)/requests wrk
# completed. Also: allocations per second while idle (timers etc.), for scale.
# Backend: one nginx, 1 worker, /small = 100 B (as in l7-bench.sh). sluiced: node.workers 1,
# access_log off. Exit 1 when a scenario is over its budget (or the run failed), 0 otherwise.
# Every process started here is stopped by PID (and its own process group) on exit.
#
#   Benchmarks/alloc-budget.sh                       # ~75 s; uses .build/release/sluiced
#   BUILD=1 Benchmarks/alloc-budget.sh               # swift build -c release first
#   SLUICED=/path/sluiced BUDGET_KA=2 Benchmarks/alloc-budget.sh
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"

PARAMS="SLUICED BUILD DUR_WARM DUR_WARM_CONN DUR CONNS SCENARIOS BUDGET_KA BUDGET_CLOSE BUDGET_L4 PIN CLIENT_CPUS SERVER_CPUS
BE_PORT PORT_HTTP PORT_TCP OUT_DIR KEEP_TMP CC"
CMDLINE=""
for v in $PARAMS; do [[ -n ${!v+x} ]] && CMDLINE+="$v=$(printf '%q' "${!v}") "; done
CMDLINE+="$(printf '%q ' "$0" "$@")"
CMDLINE=${CMDLINE% }

# ------------------------------------------------------------------ parameters
SLUICED=${SLUICED:-$REPO/.build/release/sluiced}
BUILD=${BUILD:-auto}          # 1: swift build -c release first; auto: only if $SLUICED is missing; 0: never
DUR_WARM=${DUR_WARM:-2}       # s, warm-up run of ka
# s, warm-up of close and l4: each worker's timer wheel (TimerWheel: 1024 slots x 10 ms = one
# turn in 10.24 s) keeps one array per slot that grows the first time that slot sees load and
# then keeps its capacity. New connections schedule entries (header timeout 10 s, connect 3 s),
# so until every slot has been filled once (one turn + the longest deadline in use) a
# connection-per-request load allocates ~900/s (time-proportional, not per request). With a
# 2 s warm-up that is 0.06-0.12 allocs/request (close) and 0.02-0.03 (l4), noisy.
DUR_WARM_CONN=${DUR_WARM_CONN:-22}
DUR=${DUR:-5}                 # s, measured run per scenario
CONNS=${CONNS:-16}            # wrk connections
SCENARIOS=${SCENARIOS:-"ka close l4"}
# Budgets in allocations (malloc-family calls) per request (ka, close) / per connection (l4).
# Measured 2026-11-29 (1 worker, 2 vCPU): ka 0.000 (~11 allocs in 5 s / 240k requests),
# close 0.005-0.009, l4 0.0005; budget = a small margin above, so ONE allocation added per
# request (or per 10) fails. See Benchmarks/README.md ("Allocation budget").
BUDGET_KA=${BUDGET_KA:-0.1}
BUDGET_CLOSE=${BUDGET_CLOSE:-0.1}
BUDGET_L4=${BUDGET_L4:-0.1}
PIN=${PIN:-1}                 # wrk on CLIENT_CPUS, nginx + sluiced on SERVER_CPUS (taskset)
CLIENT_CPUS=${CLIENT_CPUS:-0}
SERVER_CPUS=${SERVER_CPUS:-1}
# ports: ../shared/bench 18081/18082/18201/18301/18443, 19000-19399; l4-bench.sh 18181-18221,
# 19401-19503; l7-bench.sh 18381/18382, 19701-19703
BE_PORT=${BE_PORT:-18481}
PORT_HTTP=${PORT_HTTP:-19802}
PORT_TCP=${PORT_TCP:-19803}
OUT_DIR=${OUT_DIR:-$HERE/out}
KEEP_TMP=${KEEP_TMP:-0}
CC=${CC:-gcc}

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "FATAL: $*"; exit 2; }

# ------------------------------------------------------------------ processes
PIDS=()
LAST_PID=
start_bg() {  # NAME CPUS LOG CMD... : own session (process group), optionally pinned
  local name=$1 cpus=$2 logf=$3
  shift 3
  local pin=()
  ((PIN)) && [[ -n $cpus ]] && pin=(taskset -c "$cpus")
  setsid "${pin[@]}" "$@" >"$logf" 2>&1 </dev/null &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
  log "started $name pid=$LAST_PID cpus=${cpus:-any}"
}

stop_pid() {  # PID: TERM, wait up to 10 s, KILL; then leftovers of its process group
  local pid=$1 i m
  [[ -n $pid ]] || return 0
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  fi
  wait "$pid" 2>/dev/null
  for m in $(ps -eo pid=,pgid= | awk -v g="$pid" '$2 == g {print $1}'); do kill -KILL "$m" 2>/dev/null; done
}

T=
cleanup() {
  local rc=$?
  trap - EXIT INT TERM HUP
  local i
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do stop_pid "${PIDS[i]}"; done
  if [[ -n $T && -d $T ]]; then
    if ((KEEP_TMP)); then log "kept temp dir $T"; else rm -rf "$T"; fi
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM HUP

port_busy() { [[ -n $(ss -Hltn "sport = :$1" 2>/dev/null) ]]; }
wait_port() {  # PORT TIMEOUT_S PID
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    port_busy "$1" && return 0
    kill -0 "$3" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# ------------------------------------------------------------------ backend (as l7-bench.sh)
start_backend() {
  local d=$T/backend body
  mkdir -p "$d/tmp"
  body=$(printf '%099d' 0 | tr 0 a)   # + "\n" = 100 bytes
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
  keepalive_requests 100000000;
  keepalive_timeout 75s;
  server {
    listen 127.0.0.1:$BE_PORT backlog=4096;
    location = /small { default_type text/plain; return 200 "$body\n"; }
  }
}
EOF
  nginx -t -p "$d" -c "$d/nginx.conf" -e "$d/error.log" >"$d/test.log" 2>&1 || { cat "$d/test.log" >&2; die "backend nginx config"; }
  start_bg backend-nginx "$SERVER_CPUS" "$d/nginx.out" nginx -p "$d" -c "$d/nginx.conf" -e "$d/error.log"
  wait_port "$BE_PORT" 10 "$LAST_PID" || { cat "$d/error.log" >&2; die "backend nginx did not start"; }
}

# ------------------------------------------------------------------ sluiced under the shim
SL_PID=
start_sluiced() {
  local d=$T/sluiced
  mkdir -p "$d"
  cat >"$d/sluice.yaml" <<EOF
node: { workers: 1, max_connections: 20000 }
control:
  socket: $d/sluice.sock
  state: $d/state.json
listeners:
  - name: web
    protocol: http
    bind: 127.0.0.1:$PORT_HTTP
    access_log: off
    default: { forward: web }
  - name: l4
    protocol: tcp
    bind: 127.0.0.1:$PORT_TCP
    default: { forward: l4 }
target_groups:
  - name: web
    protocol: http
    targets: [ { address: "127.0.0.1:$BE_PORT" } ]
  - name: l4
    protocol: tcp
    algorithm: round_robin
    targets: [ { address: "127.0.0.1:$BE_PORT" } ]
EOF
  timeout 10 "$SLUICED" --check --config "$d/sluice.yaml" >"$d/check.log" 2>&1 ||
    { cat "$d/check.log" >&2; die "sluiced --check rejects $d/sluice.yaml"; }
  COUNTS=$d/counts.txt
  : >"$COUNTS"
  start_bg "sluiced(workers 1, LD_PRELOAD malloc-count)" "$SERVER_CPUS" "$d/sluiced.log" \
    env MALLOC_COUNT_OUT="$COUNTS" LD_PRELOAD="$T/malloc-count.so" "$SLUICED" --config "$d/sluice.yaml"
  SL_PID=$LAST_PID
  wait_port "$PORT_HTTP" 15 "$SL_PID" && wait_port "$PORT_TCP" 5 "$SL_PID" ||
    { tail -n 20 "$d/sluiced.log" >&2; die "sluiced did not open its ports"; }
  sleep 0.5   # startup allocations settle
}

SNAP=
snapshot() {  # -> SNAP="mallocs frees" (SIGUSR2, wait for the new line)
  local n i line
  n=$(wc -l <"$COUNTS")
  kill -USR2 "$SL_PID" 2>/dev/null || die "sluiced (pid $SL_PID) is not running"
  for ((i = 0; i < 50; i++)); do
    (($(wc -l <"$COUNTS") > n)) && break
    sleep 0.1
  done
  line=$(sed -n "$((n + 1))p" "$COUNTS")
  [[ $line =~ ^mallocs=([0-9]+)\ frees=([0-9]+)$ ]] || die "no counter line after SIGUSR2 (got '$line'); is the shim loaded?"
  SNAP="${BASH_REMATCH[1]} ${BASH_REMATCH[2]}"
}

wrk_run() {  # OUTFILE DUR PORT [wrk args...] -> WRK_REQ WRK_ERR
  local out=$1 d=$2 p=$3
  shift 3
  local pin=()
  ((PIN)) && pin=(taskset -c "$CLIENT_CPUS")
  timeout $((d + 20)) "${pin[@]}" wrk -t1 -c"$CONNS" -d"${d}s" --timeout 5s "$@" "http://127.0.0.1:$p/small" >"$out" 2>&1
  WRK_REQ=$(sed -n 's/^ *\([0-9]\+\) requests in.*/\1/p' "$out")
  WRK_REQ=${WRK_REQ:-0}
  local se nx
  se=$(sed -n 's/.*Socket errors: connect \([0-9]\+\), read \([0-9]\+\), write \([0-9]\+\), timeout \([0-9]\+\).*/\1+\2+\3+\4/p' "$out")
  nx=$(sed -n 's/.*Non-2xx or 3xx responses: \([0-9]\+\).*/\1/p' "$out")
  WRK_ERR=$((${se:-0} + ${nx:-0}))
}

calc() { awk "BEGIN{ $1 }"; }

ROWS=()
FAILED=0
OVER=0
OVER_MSG=
measure() {  # SCENARIO
  local s=$1 port what budget args=() warm=$DUR_WARM_CONN
  case $s in
    ka) port=$PORT_HTTP; what="keep-alive HTTP request"; budget=$BUDGET_KA; warm=$DUR_WARM ;;
    close) port=$PORT_HTTP; what="HTTP request, Connection: close"; budget=$BUDGET_CLOSE; args=(-H "Connection: close") ;;
    l4) port=$PORT_TCP; what="L4 (tcp listener) connection"; budget=$BUDGET_L4; args=(-H "Connection: close") ;;
    *) die "unknown scenario $s" ;;
  esac
  wrk_run "$T/runs/${s}_warm.txt" "$warm" "$port" "${args[@]}"
  log "$s: warm-up ${warm}s: $WRK_REQ requests, $WRK_ERR errors"
  sleep 0.3
  snapshot; local a=$SNAP
  wrk_run "$T/runs/${s}.txt" "$DUR" "$port" "${args[@]}"
  sleep 0.3   # let the last closes be processed (their frees belong to this run)
  snapshot; local b=$SNAP
  local ma fa mb fb dm df per fper status
  read -r ma fa <<<"$a"
  read -r mb fb <<<"$b"
  dm=$((mb - ma)); df=$((fb - fa))
  if ((WRK_REQ == 0)); then
    per=nan; fper=nan; status="FAIL (no requests)"; FAILED=1
  else
    per=$(calc "printf \"%.4f\", $dm / $WRK_REQ")
    fper=$(calc "printf \"%.4f\", $df / $WRK_REQ")
    if ((WRK_ERR * 100 > WRK_REQ)); then status="FAIL ($WRK_ERR errors)"; FAILED=1
    elif ! kill -0 "$SL_PID" 2>/dev/null; then status="FAIL (sluiced died)"; FAILED=1
    elif calc "exit !($per > $budget)"; then status="**OVER BUDGET**"; OVER=1; OVER_MSG+=" $s: $per > $budget;"
    else status=ok
    fi
  fi
  log "$s: $WRK_REQ requests in ${DUR}s, mallocs +$dm frees +$df => $per allocs / $fper frees per request; budget $budget: $status"
  ROWS+=("| $s | $what | $WRK_REQ | $WRK_ERR | $dm | $df | **$per** | $fper | $budget | $status |")
}

# ------------------------------------------------------------------ main
main() {
  local x p
  for x in nginx wrk ss setsid timeout awk "$CC"; do command -v "$x" >/dev/null || die "missing tool: $x"; done
  ((PIN)) && ! command -v taskset >/dev/null && PIN=0
  ((PIN)) && (($(nproc) < 2)) && PIN=0
  if [[ $BUILD == 1 || ($BUILD == auto && ! -x $SLUICED) ]]; then
    log "swift build -c release"
    (cd "$REPO" && swift build -c release) >&2 || die "swift build -c release failed"
  fi
  [[ -x $SLUICED ]] || die "sluiced not found at $SLUICED (swift build -c release, BUILD=1, or SLUICED=...)"
  ulimit -n "$(ulimit -Hn)" 2>/dev/null
  for p in $BE_PORT $PORT_HTTP $PORT_TCP; do port_busy "$p" && die "port $p already in use; free it first"; done

  T=$(mktemp -d /tmp/alloc-budget.XXXXXX) || die mktemp
  chmod 755 "$T"
  mkdir -p "$T/runs"
  "$CC" -O2 -shared -fPIC -o "$T/malloc-count.so" "$HERE/malloc-count.c" -ldl || die "compiling malloc-count.c"
  log "temp dir $T; $CMDLINE"

  start_backend
  start_sluiced

  # idle rate: what sluiced allocates with no traffic (timers, health checks), for scale
  local ia ib im s
  snapshot; ia=$SNAP
  sleep 2
  snapshot; ib=$SNAP
  im=$(( ${ib%% *} - ${ia%% *} ))
  log "idle: $im allocations in 2 s"

  for s in $SCENARIOS; do measure "$s"; done

  mkdir -p "$OUT_DIR"
  local sl_id
  sl_id="$(stat -c '%s bytes, built %y' "$SLUICED" 2>/dev/null | cut -d. -f1), sha256 $(sha256sum "$SLUICED" 2>/dev/null | cut -c1-12)"
  {
    echo "# Sluice allocation budget (heap allocations per proxied request)"
    echo
    echo "Generated by \`Benchmarks/alloc-budget.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'):"
    echo
    echo '```'
    echo "$CMDLINE"
    echo '```'
    echo
    echo "- sluiced \`$SLUICED\` ($sl_id); repo $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo 'no commit')$(git -C "$REPO" status --porcelain 2>/dev/null | grep -q . && echo ' + uncommitted changes')."
    echo "- Machine: $(nproc) vCPU ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), Linux $(uname -r), loopback; PIN=$PIN (wrk on CPU $CLIENT_CPUS, nginx + sluiced on CPU $SERVER_CPUS)."
    echo "- sluiced \`node.workers: 1\`, \`access_log: off\`, one target (nginx, 1 worker, \`/small\` = 100 B) under \`LD_PRELOAD=malloc-count.so\`: *allocs* counts malloc, calloc, realloc, posix_memalign, aligned_alloc, memalign calls; *frees* counts free of non-NULL pointers."
    echo "- Per scenario: \`wrk -t1 -c$CONNS\` warm-up (ka ${DUR_WARM}s; close and l4 ${DUR_WARM_CONN}s: a connection per request fills the timer wheel's 1024 slot arrays once per 10.24 s turn, until then ~900 allocs/s), counters (SIGUSR2), \`wrk -t1 -c$CONNS -d${DUR}s\`, counters; per request = difference ÷ requests wrk completed. ka: keep-alive; close: \`-H 'Connection: close'\` (a new client connection per request); l4: the same through a \`protocol: tcp\` listener (per connection)."
    echo "- Idle: $im allocations in 2 s without traffic (included in the differences above, negligible unless large)."
    echo
    echo "| scenario | per | requests | errors | allocs | frees | allocs/req | frees/req | budget | result |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---|"
    printf '%s\n' "${ROWS[@]}"
  } >"$T/report.md"
  cp "$T/report.md" "$OUT_DIR/last-alloc.md"
  cat "$T/report.md"
  log "wrote $OUT_DIR/last-alloc.md"
  ((FAILED)) && { log "run FAILED (see table)"; exit 2; }
  ((OVER)) && { log "allocation budget EXCEEDED (allocs per request measured > budget):$OVER_MSG see the table"; exit 1; }
  log "within budget"
  exit 0
}

main "$@"
