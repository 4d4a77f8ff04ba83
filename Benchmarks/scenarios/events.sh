#!/usr/bin/env bash
# events: event rules with durable webhooks (SPEC §13, issue 11), release sluiced, loopback, no pinning:
#   latency  N_LAT (1000) registrations through the control socket, LAT_GAP_MS (5) apart; each matches
#            a webhook rule; from the event's `time` to the receiver's arrival  — goal: p99 < 50 ms
#   flaky    N_FLAKY (10000) events (register + deregister pairs of distinct addresses) to a receiver
#            failing FAIL_RATE (0.2) of its answers (500s; after its restart cut-short answers), SIGKILLed
#            after half the events and started again on the same port 1 s later; retry 1000 attempts,
#            back-off 10 ms..100 ms           — goal: 0 lost, 0 out of order (duplicates are allowed)
# Not in DEFAULT_SCENARIOS: RUN_NAME=events Benchmarks/run.sh events. The receiver is
# Tests/Fixtures/webhook_receiver.py (Python, one thread per connection). Rows: events:latency-p50/-p99
# (ms), events:flaky-lost, events:flaky-out-of-order; the table goes to out/last-events.extra.md.
# Exit 1 when a goal is missed.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
bench_init events
N_LAT=${N_LAT:-1000}
LAT_GAP_MS=${LAT_GAP_MS:-5}
N_FLAKY=${N_FLAKY:-10000}
FAIL_RATE=${FAIL_RATE:-0.2}
need curl
ensure_sluiced
free_ports 4
PORT_L=${PORTS[0]} PORT_F=${PORTS[1]} RECV_L=${PORTS[2]} RECV_F=${PORTS[3]}
H=$BENCH_DIR/lib/events.py
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
pf() { if [[ $1 == 1 ]]; then echo "**pass**"; else echo "**FAIL**"; fi; }
st() { if [[ $1 == 1 ]]; then echo ok; else echo over_bar; fi; }
lt() { awk -v a="$1" -v b="$2" 'BEGIN {exit !(a != "" && a != "-" && a != "nan" && a+0 < b+0)}' && echo 1 || echo 0; }
ROWS=()
DETAILS=()

start_node() {  # DIR PORT RULE...: sluiced with webhook rules; waits for the control socket
  local d=$1 port=$2 i
  shift 2
  mkdir -p "$d/state"
  "$PY" "$H" conf "$d/node.yaml" "$d/c.sock" "$d/state/state.json" "$port" "$@"
  start_bg sluiced "" "$d/sluiced.log" "$SLUICED" --config "$d/node.yaml"
  NODE_PID=$LAST_PID
  for ((i = 0; i < 300; i++)); do
    curl -sf --unix-socket "$d/c.sock" -o /dev/null http://sluice/v1/status 2>/dev/null && return 0
    kill -0 "$NODE_PID" 2>/dev/null || break
    sleep 0.05
  done
  tail -20 "$d/sluiced.log" >&2
  die "sluiced did not start"
}

# ================================================================== 1. latency
D1=$T/latency
mkdir -p "$D1"
start_bg receiver "" "$D1/receiver.out" "$PY" "$REPO/Tests/Fixtures/webhook_receiver.py" --port "$RECV_L" --log "$D1/received.log"
RECV_PID=$LAST_PID
wait_port "$RECV_L" 10 "$RECV_PID" || die "receiver did not start"
start_node "$D1" "$PORT_L" "lat=$RECV_L:registration"
log "1. latency: $N_LAT registrations ${LAT_GAP_MS} ms apart, each delivered to the receiver"
read -r L50 L99 LMAX LGOT LN < <("$PY" "$H" latency "$D1/c.sock" "$D1/received.log" "$N_LAT" "$LAT_GAP_MS" 2>"$T/latency-err.txt")
[[ -s $T/latency-err.txt ]] && log "   $(tail -3 "$T/latency-err.txt" | tr "\n" " ")"
log "   event time -> receiver: p50 $L50 ms, p99 $L99 ms, max $LMAX ms ($LGOT/$LN delivered)"
ok1=$(( $(lt "$L99" 50) && LGOT == LN ))
ROWS+=("Delivery latency, event \`time\` to the receiver's arrival (p99 of $N_LAT webhooks): < 50 ms|p50 $L50 ms, p99 $L99 ms, max $LMAX ms ($LGOT/$LN delivered)|$(pf $ok1)")
DETAILS+=("Test 1: the event's \`time\` has millisecond resolution; the latency includes the outbox append with \`fdatasync\` on the publishing (control) thread, a new loopback connection per delivery and the Python receiver.")
stop_pid "$NODE_PID" 35
stop_pid "$RECV_PID"

# ================================================================== 2. 10,000 events through a flaky receiver
D2=$T/flaky
mkdir -p "$D2"
start_node "$D2" "$PORT_F" "flaky=$RECV_F:registration+deregistration"
log "2. flaky: $N_FLAKY events, receiver failing $FAIL_RATE of its answers and restarted once"
read -r FN FSEEN FLOST FOOO FDUP FREQ FFAIL FPUB FDRAIN < <("$PY" "$H" flaky "$D2/c.sock" "$D2/received.log" "$RECV_F" "$N_FLAKY" $((N_FLAKY / 2)) "$FAIL_RATE" 2>"$T/flaky-err.txt")
[[ -s $T/flaky-err.txt ]] && log "   $(tail -3 "$T/flaky-err.txt" | tr "\n" " ")"
SUCC=$("$PY" "$H" metric "$D2/c.sock" 'sluice_event_deliveries_total{rule="flaky",result="success"}')
FAILS=$("$PY" "$H" metric "$D2/c.sock" 'sluice_event_deliveries_total{rule="flaky",result="failure"}')
LEN=$("$PY" "$H" metric "$D2/c.sock" 'sluice_event_outbox_length{rule="flaky"}')
DEAD=$("$PY" "$H" metric "$D2/c.sock" 'sluice_event_dead_letters{rule="flaky"}')
OUTBOX=$(stat -c %s "$D2/state/events/flaky.outbox" 2>/dev/null || echo -)
log "   $FN events: $FSEEN delivered, $FLOST lost, $FOOO out of order, $FDUP duplicates; $FREQ requests ($FFAIL failed answers); published in ${FPUB}s, drained ${FDRAIN}s later; metrics success $SUCC failure $FAILS outbox $LEN dead $DEAD; outbox file $OUTBOX bytes"
ok2=$(( FN == N_FLAKY && FSEEN == N_FLAKY && FLOST == 0 && FOOO == 0 ))
ROWS+=("$N_FLAKY events through a receiver failing $FAIL_RATE of its answers, SIGKILLed and restarted once: 0 lost|$FLOST lost ($FSEEN of $FN delivered)|$(pf $ok2)")
ROWS+=("… 0 out of order (per rule)|$FOOO out of order, $FDUP duplicates|$(pf $ok2)")
DETAILS+=("Test 2: $FREQ POSTs reached the receiver, $FFAIL of them answered with a failure (500 before the restart, cut-short answers after); sluiced counted $SUCC successful and $FAILS failed attempts (failures include connections refused while the receiver was down). The events were published in $FPUB s (one register or deregister call at a time over one control connection, each with the state file's and the outbox's fsync) and all delivered $FDRAIN s after the last. At the end: outbox length $LEN, dead letters $DEAD, outbox file $OUTBOX bytes (compacted as it went).")
stop_pid "$NODE_PID" 35

# ================================================================== results
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
record scenario=events:latency-p50 candidate=sluice rep=1 attempt=1 status="$(st "$ok1")" unit=ms value="$L50" better=lower \
  ops="$N_LAT" p50_ms="$L50" p99_ms="$L99" note="event_time_to_receiver_arrival"
record scenario=events:latency-p99 candidate=sluice rep=1 attempt=1 status="$(st "$ok1")" unit=ms value="$L99" better=lower \
  ops="$N_LAT" p50_ms="$L50" p99_ms="$L99" note="event_time_to_receiver_arrival,_goal_p99_<_50_ms"
record scenario=events:flaky-lost candidate=sluice rep=1 attempt=1 status="$(st "$ok2")" unit=events value="$FLOST" better=lower \
  ops="$FN" errors="$FLOST" note="receiver_failing_${FAIL_RATE}_and_restarted_once,_goal_0"
record scenario=events:flaky-out-of-order candidate=sluice rep=1 attempt=1 status="$(st "$ok2")" unit=events value="$FOOO" better=lower \
  ops="$FN" errors="$FOOO" note="duplicates_${FDUP},_goal_0"
{
  echo "Event rules (\`scenarios/events.sh\`, sluiced $(sluiced_id); no pinning; loadavg before $LOAD_BEFORE, after $LOAD_AFTER):"
  echo
  echo "| goal | measured | result |"
  echo "|---|---|---|"
  for row in "${ROWS[@]}"; do echo "| ${row//|/ | } |"; done
  echo
  for d in "${DETAILS[@]}"; do echo "- $d"; done
} >"$OUT_DIR/last-events.extra.md"
((ok1 && ok2)) || { log "an events goal was missed (see $OUT_DIR/last-events.extra.md)"; exit 1; }
exit 0
