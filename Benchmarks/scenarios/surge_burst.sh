#!/usr/bin/env bash
# surge_burst: a burst of 10× the targets' capacity for BURST_S (2) s through a surge queue — requests answered, errors (goal 0). Not in the default set.
#
# Two Python HTTP targets (Tests/Fixtures/http_backend.py, a thread per connection) whose
# /slow?ms=SLOW_MS (100) stands for work of fixed length; Sluice caps each at `max_per_target:
# CAP` (4), so the group's capacity is 2 × CAP requests in flight. wrk -c(10 × 2 × CAP) -d BURST_S
# --timeout 10s sends the burst; `surge_queue: { size: QUEUE (1024), timeout: QUEUE_TIMEOUT (10s) }`
# holds the excess. Each rep records the requests answered (unit "answered"), errors (socket
# errors + non-2xx: the queue's 503s), p50/p99, and in the note the queue's overflows and timeouts
# from Sluice's metrics. With a queue big enough every request must be answered 200 (errors 0).
# A second row, surge_burst:every-answer, sends the same burst from lib/burst.py's clients, which
# wait for every answer (wrk drops the requests still queued at its deadline): sent, 2xx, errors.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
bench_init surge_burst
CAP=${CAP:-4}
SLOW_MS=${SLOW_MS:-100}
BURST_S=${BURST_S:-2}
QUEUE=${QUEUE:-1024}
QUEUE_TIMEOUT=${QUEUE_TIMEOUT:-10s}
need wrk curl
ensure_sluiced
HB=$REPO/Tests/Fixtures/http_backend.py
[[ -f $HB ]] || die "missing $HB"
free_ports 3
TP=("${PORTS[0]}" "${PORTS[1]}")
PL=${PORTS[2]}
for i in 0 1; do
  start_bg "target$i" "$SERVER_CPUS" "$T/target$i.log" "$PY" "$HB" "${TP[i]}" "t$i"
  wait_port "${TP[i]}" 10 "$LAST_PID" || { cat "$T/target$i.log" >&2; die "target $i did not start"; }
done
d=$T/sluice
mkdir -p "$d"
cat >"$d/sluice.yaml" <<YAML
node: { workers: $WORKERS, max_connections: $MAXCONN }
control:
  socket: $d/sluice.sock
  state: $d/state.json
listeners:
  - name: web
    protocol: http
    bind: 127.0.0.1:$PL
    access_log: off
    response_timeout: 30s
    default: { forward: app }
target_groups:
  - name: app
    protocol: http
    algorithm: round_robin
    health_check: off
    max_per_target: $CAP
    surge_queue: { size: $QUEUE, timeout: $QUEUE_TIMEOUT }
    targets:
      - { address: "127.0.0.1:${TP[0]}" }
      - { address: "127.0.0.1:${TP[1]}" }
YAML
start_sluiced_config sluice "$d/sluice.yaml" "$d" "$PL" || die "sluiced did not start"
BURST_CONNS=$((10 * 2 * CAP))
metric() {  # NAME{LABELS} -> its value summed over lines (0 when absent)
  curl -s --unix-socket "$d/sluice.sock" http://x/metrics | awk -v m="$1" 'index($0, m) == 1 { s += $NF } END { print s + 0 }'
}
log "capacity $((2 * CAP)) in flight (2 targets × max_per_target $CAP, ${SLOW_MS} ms each); burst: $BURST_CONNS connections for ${BURST_S} s"
for ((rep = 1; rep <= REPS; rep++)); do
  o0=$(metric 'sluice_surge_queue_overflow_total{group="app"}')
  t0=$(metric 'sluice_errors_total{listener="web",kind="surge_queue_timeout"}')
  measure sluice "$rep" wrk "${PROXY_PID[sluice]}" -- wrk -t1 -c"$BURST_CONNS" -d"${BURST_S}s" --latency --timeout 10s \
    "http://127.0.0.1:$PL/slow?ms=$SLOW_MS"
  overflow=$(($(metric 'sluice_surge_queue_overflow_total{group="app"}') - o0))
  timeouts=$(($(metric 'sluice_errors_total{listener="web",kind="surge_queue_timeout"}') - t0))
  st=$(kv status "$M")
  [[ $(kv errors "$M") != 0 && $st == ok ]] && st="errors($(kv errors "$M")/$(kv requests "$M"))"
  record candidate=sluice rep="$rep" attempt=1 status="$st" unit=answered value="$(kv requests "$M")" \
    ops="$(kv requests "$M")" op_unit=req cpu_s="$(kv cpu_s "$M")" p50_ms="$(kv p50_ms "$M")" p99_ms="$(kv p99_ms "$M")" \
    errors="$(kv errors "$M")" foreign_cpu="$(kv foreign_cpu "$M")" client_cpu="$(kv client_cpu "$M")" \
    note="capacity_$((2 * CAP))_burst_${BURST_CONNS}_conns_${BURST_S}s_overflow_${overflow}_timeouts_${timeouts}"
  log "$(printf 'r%s answered=%s errors=%s p50=%sms p99=%sms overflow=%s timeouts=%s' "$rep" "$(kv requests "$M")" \
    "$(kv errors "$M")" "$(kv p50_ms "$M")" "$(kv p99_ms "$M")" "$overflow" "$timeouts")"
  sleep 1.5   # the queue drains (requests still waiting when wrk stopped)
  # The same burst from clients that wait for every answer, the ones queued at the end included.
  o0=$(metric 'sluice_surge_queue_overflow_total{group="app"}')
  out=$("$PY" "$BENCH_DIR/lib/burst.py" "http://127.0.0.1:$PL/slow?ms=$SLOW_MS" "$BURST_CONNS" "$BURST_S" 30)
  overflow=$(($(metric 'sluice_surge_queue_overflow_total{group="app"}') - o0))
  st=ok
  [[ $(kv errors "$out") != 0 ]] && st="errors($(kv errors "$out")/$(kv sent "$out"))"
  record scenario=surge_burst:every-answer candidate=sluice rep="$rep" attempt=1 status="$st" unit=answered \
    value="$(kv ok "$out")" ops="$(kv sent "$out")" op_unit=req p50_ms="$(kv p50_ms "$out")" p99_ms="$(kv p99_ms "$out")" \
    errors="$(kv errors "$out")" note="sent_$(kv sent "$out")_errors_$(kv errors "$out")_last_answer_$(kv last_ms "$out")ms_after_the_burst_overflow_${overflow}"
  log "r$rep every-answer: $out overflow=$overflow"
done
stop_proxy sluice
exit 0
