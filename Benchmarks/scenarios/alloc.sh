#!/usr/bin/env bash
# alloc: heap allocations per proxied request of sluiced; exit 1 over budget (CI: make alloc-budget).
#
# malloc-count.c is compiled into an LD_PRELOAD shim counting malloc, calloc, realloc,
# posix_memalign, aligned_alloc, memalign and free; on SIGUSR2 it appends "mallocs=N frees=M" to
# $MALLOC_COUNT_OUT. One nginx backend (1 worker, /small 100 B) and one sluiced (workers 1, http
# listener access_log off, tcp listener), the client on CPU 0, both servers on CPU 1. Per part, a
# FIXED number of requests (deterministic, unlike a timed wrk run) from `h2load --h1 -n N` (Debian
# nghttp2-client; ALLOC_CLIENT=python: lib/bench.py http-load):
#   ka     keep-alive, ALLOC_CONNS (16) connections: ALLOC_WARM_N (2000) warm-up, SIGUSR2,
#          ALLOC_N (10000) requests, SIGUSR2                                  budget BUDGET_KA 0.1/request
#   close  the same with a new client connection per request (ALLOC_N_CONN, 3000)  BUDGET_CLOSE 0.1/request
#   l4     the same through the tcp listener (per connection)                  BUDGET_L4 0.1/connection
#   udp    a udp listener (idle_timeout ALLOC_UDP_IDLE_S, 2 s) to `udpload echo`: `udpload count`
#          16 flows x 4 in flight x 64 B for ALLOC_N round trips, SIGUSR2, then ALLOC_UDP_NEW (300)
#          new flows (a fresh client port each, one round trip) and the wait until every flow of
#          the window expired, SIGUSR2                                    BUDGET_UDP 0.1/round trip
#          (all round trips, the new flows' and their expiry included); the table also gives the
#          steady round trips alone and allocations per new flow (open, round trip, expiry).
# ALLOC_SURGE=1: the web and l4 groups get `max_per_target: 100000` and `surge_queue: { size: 1024 }`
# (every pick reserves a slot, the queue stays empty): the budgets must hold with a queue configured.
# Sluice allocates in the background without traffic (~40/s here: timers, health checks), which a
# slow fixed-count client would charge to the requests; so before each part the background rate is
# measured over ALLOC_IDLE_S (2) s, and allocations per request = (difference of the counters −
# background rate × run time) ÷ requests completed (the raw figure is in the table too).
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
bench_init alloc
ALLOC_N=${ALLOC_N:-10000}
ALLOC_N_CONN=${ALLOC_N_CONN:-3000}
ALLOC_WARM_N=${ALLOC_WARM_N:-2000}
ALLOC_CONNS=${ALLOC_CONNS:-16}
ALLOC_IDLE_S=${ALLOC_IDLE_S:-2}
ALLOC_WARM_CONN_S=${ALLOC_WARM_CONN_S:-22}   # background rate measured over this long before each part
ALLOC_UDP_NEW=${ALLOC_UDP_NEW:-300}
ALLOC_UDP_IDLE_S=${ALLOC_UDP_IDLE_S:-2}
ALLOC_PARTS=${ALLOC_PARTS:-"ka close l4 udp"}
BUDGET_KA=${BUDGET_KA:-0.1}
BUDGET_CLOSE=${BUDGET_CLOSE:-0.1}
BUDGET_L4=${BUDGET_L4:-0.1}
BUDGET_UDP=${BUDGET_UDP:-0.1}
CC=${CC:-gcc}
need nginx wrk "$CC"
[[ ${ALLOC_CLIENT:-h2load} == h2load ]] && need h2load
ensure_sluiced
"$CC" -O2 -shared -fPIC -o "$T/malloc-count.so" "$BENCH_DIR/malloc-count.c" -ldl || die "compiling malloc-count.c"

start_web_backends 1
build_udpload
start_udp_echo_backend
free_ports 3
PH=${PORTS[0]} PT=${PORTS[1]} PU=${PORTS[2]}
d=$T/sluice
mkdir -p "$d"
SURGE_LINES=
((${ALLOC_SURGE:-0})) && SURGE_LINES=$'    max_per_target: 100000\n    surge_queue: { size: 1024 }\n'
cat >"$d/sluice.yaml" <<EOF
node: { workers: 1, max_connections: 20000 }
control:
  socket: $d/sluice.sock
  state: $d/state.json
listeners:
  - name: web
    protocol: http
    bind: 127.0.0.1:$PH
    access_log: off
    default: { forward: web }
  - name: l4
    protocol: tcp
    bind: 127.0.0.1:$PT
    default: { forward: l4 }
  - name: udp
    protocol: udp
    bind: 127.0.0.1:$PU
    idle_timeout: ${ALLOC_UDP_IDLE_S}s
    default: { forward: udp }
target_groups:
  - name: web
    protocol: http
$SURGE_LINES    targets: [ { address: "127.0.0.1:${BE[0]}" } ]
  - name: l4
    protocol: tcp
    algorithm: round_robin
$SURGE_LINES    targets: [ { address: "127.0.0.1:${BE[0]}" } ]
  - name: udp
    protocol: udp
    health_check: off
    targets: [ { address: "127.0.0.1:$BE_UDP" } ]
EOF
COUNTS=$d/counts.txt
: >"$COUNTS"
WORKERS=1 SLUICED_ENV="MALLOC_COUNT_OUT=$COUNTS LD_PRELOAD=$T/malloc-count.so" \
  start_sluiced_config sluice "$d/sluice.yaml" "$d" "$PH" "$PT" "$PU" || die "sluiced did not start"
PG=${PROXY_PID[sluice]}
sleep 0.5   # start-up allocations settle

snapshot() {  # -> SNAP="mallocs frees"
  local n i line
  n=$(wc -l <"$COUNTS")
  kill -USR2 "$PG" 2>/dev/null || die "sluiced (pid $PG) is not running"
  for ((i = 0; i < 50; i++)); do (($(wc -l <"$COUNTS") > n)) && break; sleep 0.1; done
  line=$(sed -n "$((n + 1))p" "$COUNTS")
  [[ $line =~ ^mallocs=([0-9]+)\ frees=([0-9]+)$ ]] || die "no counter line after SIGUSR2 (got '$line'); is the shim loaded?"
  SNAP="${BASH_REMATCH[1]} ${BASH_REMATCH[2]}"
}
pin=()
((PIN)) && pin=(taskset -c "$CLIENT_CPUS")
LOAD=
load() {  # PORT N [close|udp [NEW]] -> LOAD="requests=.. errors=.. secs=.."
  # h2load --h1 -n N: a fixed request count from a fast C client (with Connection: close it opens
  # a new connection per request); ALLOC_CLIENT=python: lib/bench.py http-load (slower).
  # udp: `udpload count`, N round trips on 16 flows x 4 in flight x 64 B (none with N 0) and NEW
  # one-round-trip flows; a lost datagram (resent after 200 ms) or send error counts as an error.
  local t0=$EPOCHREALTIME out=$T/runs/load-$RANDOM.txt hdr=() ok
  if [[ ${3:-} == udp ]]; then
    local flows=16
    (($2 == 0)) && flows=0
    timeout 150 "${pin[@]}" "$UDPLOAD" count 127.0.0.1 "$1" "$2" "$flows" 4 64 "${4:-0}" >"$out" 2>&1
    local line lost e
    line=$(tail -1 "$out"); ok=$(kv rtts "$line"); lost=$(kv lost "$line"); e=$(kv errors "$line")
    if [[ $ok == nan || $lost == nan || $e == nan || $(kv bad "$line") != 0 ]]; then   # no result line, or a bad reply
      log "udpload count failed: $(tail -3 "$out")"
      ok=0 lost=0 e=$(($2 + ${4:-0}))
    fi
    LOAD="requests=$ok errors=$((lost + e)) secs=$(calc "printf \"%.3f\", $EPOCHREALTIME - $t0")"
    return
  fi
  [[ ${3:-} == close ]] && hdr=(-H "Connection: close")
  if [[ ${ALLOC_CLIENT:-h2load} == python ]]; then
    LOAD=$(timeout 150 "${pin[@]}" "$PY" "$BPY" http-load 127.0.0.1 "$1" /small "$2" "$ALLOC_CONNS" ${3:-})
    return
  fi
  timeout 150 "${pin[@]}" h2load --h1 -t1 -c"$ALLOC_CONNS" -n "$2" "${hdr[@]}" "http://127.0.0.1:$1/small" >"$out" 2>&1
  ok=$(sed -n 's/^status codes: \([0-9]*\) 2xx, \([0-9]*\) 3xx.*/\1 \2/p' "$out")
  ok=$(( ${ok% *} + ${ok#* } ))
  LOAD="requests=$ok errors=$(($2 - ok)) secs=$(calc "printf \"%.3f\", $EPOCHREALTIME - $t0")"
}

snapshot; ia=$SNAP; sleep 1; snapshot; ib=$SNAP
IDLE=$(( ${ib%% *} - ${ia%% *} ))
log "idle: $IDLE allocations in 1 s"
# Connection-per-request loads grow each worker's timer-wheel slots (1024 × 10 ms) the first time
# each slot gets load: that takes a whole turn (10.24 s) plus the longest deadline (header timeout
# 10 s), so close and l4 are measured only after ALLOC_WARM_CONN_S (22) s of such load.
if [[ " $ALLOC_PARTS " == *" close "* || " $ALLOC_PARTS " == *" l4 "* ]] && ((ALLOC_WARM_CONN_S > 0)); then
  log "warm-up: ${ALLOC_WARM_CONN_S}s wrk Connection: close (fills the timer wheel), 2 s through the tcp listener"
  timeout $((ALLOC_WARM_CONN_S + 20)) "${pin[@]}" wrk -t1 -c"$ALLOC_CONNS" -d"${ALLOC_WARM_CONN_S}s" -H "Connection: close" \
    "http://127.0.0.1:$PH/small" >"$T/runs/warm-close.txt" 2>&1
  timeout 30 "${pin[@]}" wrk -t1 -c"$ALLOC_CONNS" -d2s -H "Connection: close" "http://127.0.0.1:$PT/small" >"$T/runs/warm-l4.txt" 2>&1
fi
FAILED=0 OVER=0 MSG=
ROWS=()
for part in $ALLOC_PARTS; do
  case $part in
    ka) port=$PH; n=$ALLOC_N; mode=""; budget=$BUDGET_KA; what="keep-alive HTTP request" ;;
    close) port=$PH; n=$ALLOC_N_CONN; mode=close; budget=$BUDGET_CLOSE; what="HTTP request, new client connection" ;;
    l4) port=$PT; n=$ALLOC_N_CONN; mode=close; budget=$BUDGET_L4; what="L4 (tcp listener) connection" ;;
    udp) port=$PU; n=$ALLOC_N; mode=udp; budget=$BUDGET_UDP; what="UDP round trip (udp listener), $ALLOC_UDP_NEW new flows and expiry included" ;;
    *) die "unknown part $part" ;;
  esac
  if [[ $mode == udp ]]; then
    # the flow slab, table and descriptor arrays grow to the window's flow count, then every flow
    # expires (its slot is free again, as in a steady state with clients coming and going)
    load "$port" "$ALLOC_WARM_N" udp "$ALLOC_UDP_NEW"
    log "$part: warm-up $LOAD; waiting $((ALLOC_UDP_IDLE_S + 1)) s for its flows to expire"
    sleep $((ALLOC_UDP_IDLE_S + 1))
  else
    load "$port" "$ALLOC_WARM_N" $mode
    log "$part: warm-up $LOAD"
  fi
  sleep 0.3
  # background: what sluiced allocates without traffic (timers, health checks), per second
  snapshot; ia=$SNAP; t_i=$EPOCHREALTIME; sleep "$ALLOC_IDLE_S"; snapshot; ib=$SNAP
  bg=$(calc "printf \"%.1f\", (${ib%% *} - ${ia%% *}) / ($EPOCHREALTIME - $t_i)")
  snapshot; a=$SNAP; t_a=$EPOCHREALTIME
  c0=$(cpu_s "$PG")
  load "$port" "$n" $mode
  if [[ $mode == udp ]]; then
    # steady round trips so far; then the new flows, and every flow of the window expires
    snapshot; m=$SNAP; t_m=$EPOCHREALTIME; steady=$LOAD
    load "$port" 0 udp "$ALLOC_UDP_NEW"
    newf=$LOAD
    sleep $((ALLOC_UDP_IDLE_S + 1))
    LOAD="requests=$(( $(kv requests "$steady") + $(kv requests "$newf") )) errors=$(( $(kv errors "$steady") + $(kv errors "$newf") ))"
    log "$part: steady $steady; new flows $newf"
  else
    sleep 0.3   # the last closes are processed (their frees belong to this run)
  fi
  snapshot; b=$SNAP
  el=$(calc "printf \"%.3f\", $EPOCHREALTIME - $t_a")
  req=$(kv requests "$LOAD"); err=$(kv errors "$LOAD")
  [[ $req == nan ]] && req=0 && err=0
  SUB=() FLOWREC=()
  if [[ $mode == udp ]]; then   # the two halves: steady round trips, and per new flow
    e1=$(calc "printf \"%.3f\", $t_m - $t_a"); e2=$(calc "printf \"%.3f\", $el - $e1")
    r1=$(kv requests "$steady"); r2=$(kv requests "$newf")
    d1=$(( ${m%% *} - ${a%% *} )); d2=$(( ${b%% *} - ${m%% *} ))
    if ((r1 > 0 && r2 > 0)); then
      p1=$(calc "x = ($d1 - $bg * $e1) / $r1; if (x < 0) x = 0; printf \"%.4f\", x")
      p2=$(calc "x = ($d2 - $bg * $e2) / $r2; if (x < 0) x = 0; printf \"%.4f\", x")
      SUB+=("| udp: steady | UDP round trip, 16 flows x 4 in flight | $r1 | | $d1 | $(( ${m##* } - ${a##* } )) | $e1 | $bg | $(calc "printf \"%.4f\", $d1 / $r1") | $p1 | | (part of udp) |")
      SUB+=("| udp: new flow | open, one round trip, expiry (with the steady flows' expiry) | $r2 | | $d2 | $(( ${b##* } - ${m##* } )) | $e2 | $bg | $(calc "printf \"%.4f\", $d2 / $r2") | $p2 | | (part of udp, per flow) |")
      log "$part: steady round trips $p1 allocations each ($d1 raw in $e1 s); new flows $p2 allocations each ($d2 raw in $e2 s)"
      FLOWREC=(scenario="alloc:udp_flow" candidate=sluice rep=1 attempt=1 status=ok unit=allocs/flow value="$p2" better=lower \
        ops="$r2" op_unit=flow note="${d2}_allocs_in_${e2}_s_(flow_open,_one_round_trip,_expiry_of_all_flows_of_the_window),_background_${bg}/s_subtracted;_steady_round_trips:_${p1}/rtt")
    fi
  fi
  dm=$(( ${b%% *} - ${a%% *} )); df=$(( ${b##* } - ${a##* } ))
  st=ok
  if ((req == 0)); then per=nan; st=fail_no_requests; FAILED=1
  else
    raw=$(calc "printf \"%.4f\", $dm / $req")
    per=$(calc "x = ($dm - $bg * $el) / $req; if (x < 0) x = 0; printf \"%.4f\", x")
    if ((err * 100 > req)); then st="errors($err)"; FAILED=1
    elif ! kill -0 "$PG" 2>/dev/null; then st=proxy_died; FAILED=1
    elif calc "exit !($per > $budget)"; then st=over_budget; OVER=1; MSG+=" $part: $per > $budget;"
    fi
  fi
  record scenario="alloc:$part" candidate=sluice rep=1 attempt=1 status="$st" unit=allocs/req value="$per" better=lower \
    ops="$req" op_unit=req cpu_s="$(calc "print $(cpu_s "$PG") - $c0")" errors="$err" note="${dm}_allocs_(raw_${raw:-nan}/req)_in_${el}_s,_background_${bg}/s_subtracted,_budget_$budget"
  ROWS+=("| $part | $what | $req | $err | $dm | $df | $el | $bg | ${raw:-nan} | **$per** | $budget | $st |")
  ((${#FLOWREC[@]})) && record "${FLOWREC[@]}"   # after its part's row
  ROWS+=("${SUB[@]}")
  log "$part: $req requests ($err errors) in $el s, mallocs +$dm frees +$df => raw ${raw:-nan}, net of background ($bg/s) $per per request; budget $budget: $st"
done
{
  echo "Allocations (\`LD_PRELOAD\` malloc counter, sluiced $(sluiced_id); fixed request counts; idle: $IDLE allocations in 1 s):"
  echo
  echo "| part | per | requests | errors | allocs | frees | seconds | background allocs/s | raw allocs/req | **net allocs/req** | budget | result |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
  printf '%s\n' "${ROWS[@]}"
} >"$OUT_DIR/last-alloc.extra.md"
stop_proxy sluice
((FAILED)) && { log "FAILED (see $OUT_DIR/last-alloc.extra.md)"; exit 2; }
((OVER)) && { log "allocation budget EXCEEDED:$MSG"; exit 1; }
log "within budget"
exit 0
