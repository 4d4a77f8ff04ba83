#!/usr/bin/env bash
# fleet: two nodes sharing registrations through etcd (SPEC §10, issue 10), release sluiced, loopback, no pinning:
#   propagation  N_PROP (100) times: register a fresh target (one nginx, N_PROP listen ports) on node A
#                through its control socket, poll node B's listener (python keep-alive loop) until it
#                answers 200 from that target; deregister on A, wait until B answers 503 again
#                                                                     — goal: p99 < 200 ms
#   bulk         N_BULK (1000) registrations on A one after another over one keep-alive control
#                connection: total time, and the time until B's GET /v1/target-groups/app lists all
#   etcd restart wrk -t1 -cWRK_CONNS (32) -dWRK_DUR (12) s against B (N_PROP registered targets that
#                answer); etcd gets SIGTERM after 3 s and is started again (same ports, same data dir)
#                4 s later                                            — goal: 0 failed requests, and
#                B reports sluice_registry_connected 1 again
# One etcd (ETCD, default /usr/bin/etcd, Debian's etcd-server) on free loopback ports with its data dir
# in the scenario's temp dir; nodes A (zone-a) and B (zone-b): workers 1, lease_ttl 2s, one http
# listener each, group app (no static targets, health_check off, cross_zone true), a fresh prefix per
# part. Rows: fleet:propagation-p50/-p99 (ms), fleet:register (s), fleet:register-seen-by-b (s),
# fleet:etcd-restart-load (failed requests); the table goes to out/last-fleet.extra.md. Exit 1 when a
# goal is missed.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
bench_init fleet
N_PROP=${N_PROP:-100}
N_BULK=${N_BULK:-1000}
WRK_DUR=${WRK_DUR:-12}
WRK_CONNS=${WRK_CONNS:-32}
ETCD=${ETCD:-/usr/bin/etcd}
need curl nginx wrk
[[ -x $ETCD ]] || die "etcd not found at $ETCD (Debian: etcd-server; or ETCD=...)"
ensure_sluiced
free_ports $((4 + N_PROP))
ETCD_CLIENT=${PORTS[0]} ETCD_PEER=${PORTS[1]} PORT_A=${PORTS[2]} PORT_B=${PORTS[3]}
BE_PORTS=("${PORTS[@]:4}")
BE_PORTS_CSV=$(IFS=,; echo "${BE_PORTS[*]}")
H=$BENCH_DIR/lib/fleet.py
ENDPOINT=http://127.0.0.1:$ETCD_CLIENT
RUN_ID=$$-$(date +%s)
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

pf() { if [[ $1 == 1 ]]; then echo "**pass**"; else echo "**FAIL**"; fi; }
st() { if [[ $1 == 1 ]]; then echo ok; else echo over_bar; fi; }
lt() { awk -v a="$1" -v b="$2" 'BEGIN {exit !(a != "" && a != "-" && a != "nan" && a+0 < b+0)}' && echo 1 || echo 0; }
ROWS=()     # "goal|measured|verdict"
DETAILS=()

# ------------------------------------------------------------------ etcd, nodes, backend
ETCD_PID=
start_etcd() {  # one member on ETCD_CLIENT/ETCD_PEER, data in $T/etcd/data (kept across restarts)
  local peer=http://127.0.0.1:$ETCD_PEER i
  mkdir -p "$T/etcd"
  start_bg etcd "" "$T/etcd/etcd-$(date +%s%N).log" "$ETCD" --name bench0 --data-dir "$T/etcd/data" \
    --listen-client-urls "$ENDPOINT" --advertise-client-urls "$ENDPOINT" \
    --listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" \
    --initial-cluster "bench0=$peer" --initial-cluster-state new --initial-cluster-token "sluice-bench-$ETCD_CLIENT"
  ETCD_PID=$LAST_PID
  for ((i = 0; i < 600; i++)); do
    [[ $(curl -s --max-time 1 "$ENDPOINT/health" 2>/dev/null) == *'"health":"true"'* ]] && return 0
    kill -0 "$ETCD_PID" 2>/dev/null || break
    sleep 0.05
  done
  tail -20 "$T"/etcd/etcd-*.log >&2
  die "etcd did not become healthy on $ENDPOINT"
}

declare -A NODE_PID NODE_SOCK
start_node() {  # NAME ZONE PORT PREFIX: sluiced with a registry block; waits for the socket, the
  local name=$1 zone=$2 port=$3 prefix=$4 d=$T/$1-${4//\//_} i w   # listener and registry_connected 1
  mkdir -p "$d"
  "$PY" "$H" conf "$d/node.yaml" "$name" "$zone" "$d/c.sock" "$d/control.state" "$port" "$ENDPOINT" "$prefix"
  start_bg "node $name" "" "$d/sluiced.log" "$SLUICED" --config "$d/node.yaml"
  NODE_PID[$name]=$LAST_PID NODE_SOCK[$name]=$d/c.sock
  for ((i = 0; i < 300; i++)); do
    curl -sf --unix-socket "$d/c.sock" -o /dev/null http://sluice/v1/target-groups 2>/dev/null && break
    kill -0 "$LAST_PID" 2>/dev/null || { tail -20 "$d/sluiced.log" >&2; die "node $name exited"; }
    sleep 0.05
  done
  wait_port "$port" 10 "$LAST_PID" || { tail -20 "$d/sluiced.log" >&2; die "node $name: no listener on $port"; }
  w=$("$PY" "$H" wait-metric "$d/c.sock" sluice_registry_connected 1 15)
  [[ $w == timeout ]] && { tail -20 "$d/sluiced.log" >&2; die "node $name never reported sluice_registry_connected 1"; }
}
stop_nodes() { local n; for n in A B; do stop_pid "${NODE_PID[$n]:-}" 35; unset "NODE_PID[$n]"; done; }

mkdir -p "$T/ng/tmp"
"$PY" "$H" nginx "$T/ng/nginx.conf" "$T/ng" "$BE_PORTS_CSV"
nginx -t -p "$T/ng" -c "$T/ng/nginx.conf" -e "$T/ng/error.log" >"$T/ng/test.log" 2>&1 || { cat "$T/ng/test.log" >&2; die "nginx config"; }
start_bg backend-nginx "" "$T/ng/nginx.out" nginx -p "$T/ng" -c "$T/ng/nginx.conf" -e "$T/ng/error.log"
NG_PID=$LAST_PID
for p in "${BE_PORTS[@]}"; do wait_port "$p" 10 "$NG_PID" || { cat "$T/ng/error.log" >&2; die "backend nginx did not start"; }; done
start_etcd
log "etcd $("$ETCD" --version 2>/dev/null | head -1 | awk '{print $3}') on $ENDPOINT, backend nginx on ${#BE_PORTS[@]} ports"

# ================================================================== 1. propagation A -> B
PREFIX1=/sluice/bench-$RUN_ID-1
log "1. propagation: $N_PROP registrations on A, each until B routes to it (prefix $PREFIX1)"
start_node A zone-a "$PORT_A" "$PREFIX1"
start_node B zone-b "$PORT_B" "$PREFIX1"
read -r P50 P99 PMAX PMIN POK PTO PBEFORE G50 GMAX POLLS R50 R99 FIRST < <("$PY" "$H" propagate "${NODE_SOCK[A]}" "$PORT_B" "$BE_PORTS_CSV" 2>"$T/propagate-err.txt")
[[ -s $T/propagate-err.txt ]] && log "   $(tail -4 "$T/propagate-err.txt" | tr "\n" " ")"
log "   register on A -> B answers from it: p50 $P50 ms, p99 $P99 ms, min $PMIN, max $PMAX ms ($POK/$N_PROP seen, $PTO failed; B answered 503 before $PBEFORE/$N_PROP times; $POLLS polls); deregister -> B 503 again: p50 $G50 ms, max $GMAX ms"
ok1=$(( $(lt "$P99" 200) && POK == N_PROP && PTO == 0 ))
ROWS+=("Registration on A until B routes to it (p99 of $N_PROP): < 200 ms|p50 $P50 ms, p99 $P99 ms (min $PMIN, max $PMAX ms; $POK/$N_PROP seen, $PTO failed)|$(pf $ok1)")
DETAILS+=("Test 1: before each registration B answered 503 (no target) $PBEFORE of $N_PROP times; B was polled $POLLS times in all over one keep-alive connection. A answered the registration (after etcd accepted the write) after p50 $R50 ms, p99 $R99 ms; B already routed to the new target at the first poll after that answer $FIRST of $N_PROP times. After the deregistration on A (no wait) B answered 503 again after p50 $G50 ms, max $GMAX ms.")

# ================================================================== 2. 1,000 registrations through etcd
log "2. $N_BULK registrations on A over one keep-alive control connection"
read -r B_TOTAL B_SEEN B_CREATED B_201 B_OTHER B_CONNS B_COUNT B_P50 B_P99 B_FIRST B_LAST B_K < <("$PY" "$H" bulk "${NODE_SOCK[A]}" "${NODE_SOCK[B]}" "$N_BULK" 10.77 2>"$T/bulk-err.txt")
[[ -s $T/bulk-err.txt ]] && log "   $(tail -3 "$T/bulk-err.txt" | tr "\n" " ")"
read -r A_ALL A_LIVE < <("$PY" "$H" count "${NODE_SOCK[A]}" app)
log "   A: ${B_TOTAL}s for $N_BULK (2xx=$B_CREATED of which 201=$B_201, other=$B_OTHER, connections=$B_CONNS); B lists all after ${B_SEEN}s ($B_COUNT listed); A lists $A_LIVE; per request p50 $B_P50 ms, p99 $B_P99 ms, first/last $B_K: $B_FIRST/$B_LAST ms"
ok2=$(( B_CREATED == N_BULK && B_COUNT >= N_BULK && A_LIVE >= N_BULK ))
[[ $B_SEEN == timeout ]] && ok2=0
ROWS+=("$N_BULK registrations on A, one after another (python, keep-alive UDS), each answered after etcd accepted it|$B_TOTAL s ($B_CREATED×2xx of which $B_201×201, $B_CONNS connection(s))|$(pf $ok2)")
DETAILS+=("Test 2: per registration on A p50 $B_P50 ms, p99 $B_P99 ms; mean of the first $B_K $B_FIRST ms, of the last $B_K $B_LAST ms.")
((B_201 < B_CREATED)) && DETAILS+=("Test 2: $B_CREATED registrations answered 2xx, only $B_201 of them 201 Created, the others 200 although every address was new (Fleet.register decides \`created\` after the etcd write, when A's own watch may already have applied the put).")
ROWS+=("… until B's \`GET /v1/target-groups/app\` lists all $N_BULK (from the first request)|$B_SEEN s ($B_COUNT listed)|$(pf $ok2)")
stop_nodes

# ================================================================== 3. etcd stopped and restarted under load
PREFIX3=/sluice/bench-$RUN_ID-3
log "3. wrk -t1 -c$WRK_CONNS -d${WRK_DUR}s against B; etcd SIGTERM after 3 s, started again 4 s later (prefix $PREFIX3)"
start_node A zone-a "$PORT_A" "$PREFIX3"
start_node B zone-b "$PORT_B" "$PREFIX3"
REG3=$("$PY" "$H" register-all "${NODE_SOCK[A]}" "$BE_PORTS_CSV")
W3=$("$PY" "$H" wait-count "${NODE_SOCK[B]}" app "$N_PROP" 15)
[[ $W3 == timeout ]] && die "B did not list the $N_PROP targets registered on A"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT_B/")
[[ $code == 200 ]] || die "GET :$PORT_B/ through B answered $code"
wrk -t1 -c"$WRK_CONNS" -d"${WRK_DUR}s" "http://127.0.0.1:$PORT_B/" >"$T/wrk.txt" 2>&1 &
WRK_PID=$!; PIDS+=("$WRK_PID")
sleep 3
t_stop=$(date +%s%N)
stop_pid "$ETCD_PID"
log "   etcd stopped (status $LAST_RC)"
LOST_B=$("$PY" "$H" wait-metric "${NODE_SOCK[B]}" sluice_registry_connected 0 3.5)
REFUSED=$(curl -s --max-time 10 --unix-socket "${NODE_SOCK[A]}" -X POST -H 'Content-Type: application/json' \
  -d '{"address": "127.0.0.1:9"}' -o "$T/refused.body" -w '%{http_code}' http://sluice/v1/target-groups/app/targets)
REFUSED+=" $(grep -o 'RegistryUnavailable' "$T/refused.body" | head -1)"
while (($(date +%s%N) - t_stop < 4000000000)); do sleep 0.05; done
start_etcd
log "   etcd started again; B noticed the loss after ${LOST_B}s; a registration on A meanwhile: $REFUSED"
wait "$WRK_PID"
keep=(); for j in "${PIDS[@]}"; do [[ $j == "$WRK_PID" ]] || keep+=("$j"); done; PIDS=("${keep[@]}")
BACK_B=$("$PY" "$H" wait-metric "${NODE_SOCK[B]}" sluice_registry_connected 1 15)
BACK_A=$("$PY" "$H" wait-metric "${NODE_SOCK[A]}" sluice_registry_connected 1 15)
CONN_B=$("$PY" "$H" metric "${NODE_SOCK[B]}" sluice_registry_connected)
read -r B3_ALL B3_LIVE < <("$PY" "$H" count "${NODE_SOCK[B]}" app)
req=$(awk '/requests in/ {print $1}' "$T/wrk.txt")
rps=$(awk '/Requests\/sec/ {print $2}' "$T/wrk.txt")
non2xx=$(awk -F: '/Non-2xx or 3xx responses/ {gsub(/ /, "", $2); print $2}' "$T/wrk.txt"); non2xx=${non2xx:-0}
se=$(grep 'Socket errors' "$T/wrk.txt")
c=$(sed -n 's/.*connect \([0-9]*\).*/\1/p' <<<"$se"); r=$(sed -n 's/.*read \([0-9]*\).*/\1/p' <<<"$se")
w=$(sed -n 's/.*write \([0-9]*\).*/\1/p' <<<"$se"); to=$(sed -n 's/.*timeout \([0-9]*\).*/\1/p' <<<"$se")
c=${c:-0} r=${r:-0} w=${w:-0} to=${to:-0}
failed=$((non2xx + c + r + w + to))
log "   requests=$req rps=$rps non2xx=$non2xx socket errors connect=$c read=$r write=$w timeout=$to; B connected again after ${BACK_B}s (metric now $CONN_B), A after ${BACK_A}s; B lists $B3_LIVE registered"
ok3=$(( ${req:-0} > 0 && failed == 0 ))
ok3c=0; [[ $CONN_B == 1 && $BACK_B != timeout ]] && ok3c=1
ROWS+=("etcd stopped (SIGTERM) 3 s into \`wrk -t1 -c$WRK_CONNS -d${WRK_DUR}s\` against B, started again 4 s later: 0 failed requests|$failed failed of ${req:-?} requests (non-2xx $non2xx; socket errors connect $c, read $r, write $w, timeout $to; $rps req/s)|$(pf $ok3)")
ROWS+=("… B reports \`sluice_registry_connected 1\` again at the end|$CONN_B (within $BACK_B s after wrk ended; A: $BACK_A s)|$(pf $ok3c)")
DETAILS+=("Test 3: $REG3 targets registered on A before the load (B listed them after $W3 s; after the run B lists $B3_LIVE). B reported \`sluice_registry_connected 0\` ${LOST_B} s after etcd was stopped; a registration on A while etcd was down answered: $REFUSED.")
stop_nodes
stop_pid "$ETCD_PID"
stop_pid "$NG_PID"

# ================================================================== results
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
record scenario=fleet:propagation-p50 candidate=sluice rep=1 attempt=1 status="$(st "$ok1")" unit=ms value="$P50" better=lower \
  ops="$N_PROP" p50_ms="$P50" p99_ms="$P99" errors="$PTO" note="register_on_A_until_B_routes_to_it"
record scenario=fleet:propagation-p99 candidate=sluice rep=1 attempt=1 status="$(st "$ok1")" unit=ms value="$P99" better=lower \
  ops="$N_PROP" p50_ms="$P50" p99_ms="$P99" errors="$PTO" note="register_on_A_until_B_routes_to_it,_goal_p99_<_200_ms"
record scenario=fleet:register candidate=sluice rep=1 attempt=1 status="$(st "$ok2")" unit=s value="$B_TOTAL" better=lower \
  ops="$N_BULK" errors="$B_OTHER" note="${N_BULK}_registrations_on_A_through_etcd,_one_keep-alive_connection"
record scenario=fleet:register-seen-by-b candidate=sluice rep=1 attempt=1 status="$(st "$ok2")" unit=s value="$B_SEEN" better=lower \
  ops="$N_BULK" note="from_the_first_registration_until_B_lists_all_${N_BULK}"
record scenario=fleet:etcd-restart-load candidate=sluice rep=1 attempt=1 status="$(st $((ok3 && ok3c)))" unit=failed_requests \
  value="$failed" better=lower ops="${req:-0}" op_unit=req errors="$failed" \
  note="etcd_down_4_s_under_wrk_-c${WRK_CONNS},_goal_0;_registry_connected_at_the_end:_$CONN_B"
{
  echo "Fleet through etcd (\`scenarios/fleet.sh\`, sluiced $(sluiced_id); etcd $("$ETCD" --version 2>/dev/null | head -1 | awk '{print $3}'); no pinning; loadavg before $LOAD_BEFORE, after $LOAD_AFTER):"
  echo
  echo "| goal | measured | result |"
  echo "|---|---|---|"
  for row in "${ROWS[@]}"; do echo "| ${row//|/ | } |"; done
  echo
  for d in "${DETAILS[@]}"; do echo "- $d"; done
} >"$OUT_DIR/last-fleet.extra.md"
ALL_OK=$((ok1 && ok2 && ok3 && ok3c))
((ALL_OK)) || { log "a fleet goal was missed (see $OUT_DIR/last-fleet.extra.md)"; exit 1; }
exit 0
