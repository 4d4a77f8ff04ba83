#!/usr/bin/env bash
# slowstart-pool: new backend connections per 1,000 requests while a target is in slow start (bar < 1).
#
# Sluice alone (http listener, access_log off), group `web`: round_robin, slow_start SS_WINDOW_S (30) s,
# two static targets of weight 100, HTTP health checks every 1 s against a separate port (a Python
# file server, so checks are not counted). Backends: one nginx (1 worker) with three server blocks;
# its stub_status "accepts" counts every TCP connection the proxy opens to any of them.
#   1. steady (candidate `sluice-steady`, SS_STEADY=1): the second static target also starts in
#      slow start (it turned healthy after the first), so first wait SS_WINDOW_S + 2 s; 1 s warm-up, then wrk -t1 -cCONNS -dSS_DUR(10)s /small;
#      new backend connections (accepts delta, minus the status request itself) per 1,000 requests.
#   2. slow start (candidate `sluice`): `sluicectl targets register web C --weight 100`; once C is
#      healthy (its slow start begins), the same wrk run. Every slow-start step republishes the
#      weights; if that closes the pools, each step costs a new connection per pooled one.
# Bar: SS_BUDGET (1) per 1,000 requests; ENFORCE=1 makes the scenario exit 1 above it.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
bench_init slowstart-pool
SS_DUR=${SS_DUR:-${DUR:-10}}
SS_WINDOW_S=${SS_WINDOW_S:-30}   # slow_start of the group, seconds (Sluice accepts 30 s .. 15 min)
SS_WINDOW=${SS_WINDOW_S}s
SS_STEADY=${SS_STEADY:-1}         # 1: measure the steady phase (waits SS_WINDOW_S + 2 s first)
SS_BUDGET=${SS_BUDGET:-1}
ENFORCE=${ENFORCE:-0}
need wrk nginx curl
ensure_sluiced
[[ -x $SLUICECTL ]] || die "sluicectl not found at $SLUICECTL"

start_web_backends 3
free_ports 2
HC=${PORTS[0]} PORT=${PORTS[1]}
start_bg health-server "$SERVER_CPUS" "$T/health.log" "$PY" -m http.server --bind 127.0.0.1 --directory "$T/www" "$HC"
wait_port "$HC" 10 "$LAST_PID" || die "health server did not start"

d=$T/sluice
mkdir -p "$d"
SOCK=$d/sluice.sock
cat >"$d/sluice.yaml" <<EOF
node: { workers: $WORKERS, max_connections: $MAXCONN }
control:
  socket: $SOCK
  state: $d/state.json
listeners:
  - name: web
    protocol: http
    bind: 127.0.0.1:$PORT
    access_log: off
    default: { forward: web }
target_groups:
  - name: web
    protocol: http
    algorithm: round_robin
    slow_start: $SS_WINDOW
    health_check: { protocol: http, path: /small.txt, port: $HC, interval: 1s, timeout: 500ms, healthy_threshold: 2 }
    targets:
      - { address: "127.0.0.1:${BE[0]}", weight: 100 }
      - { address: "127.0.0.1:${BE[1]}", weight: 100 }
EOF
start_sluiced_config sluice "$d/sluice.yaml" "$d" "$PORT" || die "sluiced did not start"
PG=${PROXY_PID[sluice]}

healthy() {  # ADDRESS... -> 0 when all are healthy
  local js
  js=$(curl -sf --unix-socket "$SOCK" http://sluice/v1/target-groups/web) || return 1
  "$PY" - "$js" "$@" <<'PY'
import json, sys
doc, want = json.loads(sys.argv[1]), set(sys.argv[2:])
seen = {}
def walk(x):
    if isinstance(x, dict):
        if "address" in x and "state" in x:
            seen[x["address"]] = x["state"]
        for v in x.values(): walk(v)
    elif isinstance(x, list):
        for v in x: walk(v)
walk(doc)
sys.exit(0 if all(seen.get(a) == "healthy" for a in want) else 1)
PY
}
wait_healthy() {  # TIMEOUT_S ADDRESS...
  local t=$1 i
  shift
  for ((i = 0; i < t * 10; i++)); do healthy "$@" && return 0; sleep 0.1; done
  return 1
}
wait_healthy 30 "127.0.0.1:${BE[0]}" "127.0.0.1:${BE[1]}" || die "static targets not healthy after 30 s"

phase() {  # CANDIDATE NOTE
  local c=$1 a0 a1 req new per st
  a0=$(backend_accepts)
  measure "$c" 1 wrk "$PG" -- wrk -t1 -c"$CONNS" -d"${SS_DUR}s" --latency --timeout 5s "http://127.0.0.1:$PORT/small"
  a1=$(backend_accepts)
  req=$(kv requests "$M")
  new=$((a1 - a0 - 1))   # the second status request is itself one accept
  per=$(calc "if ($req > 0) printf \"%.3f\", $new * 1000 / $req; else print \"nan\"")
  st=$(kv status "$M")
  [[ $st == ok || $st == disturbed ]] && calc "exit !($per >= $SS_BUDGET)" && [[ $c == sluice ]] && OVER=1
  record candidate="$c" rep=1 attempt=1 status="$st" unit="new_backend_conns/1000_req" value="$per" better=lower \
    ops="$req" op_unit=req cpu_s="$(kv cpu_s "$M")" p50_ms="$(kv p50_ms "$M")" p99_ms="$(kv p99_ms "$M")" \
    rss_before_kib="$(kv rss_before_kib "$M")" rss_after_kib="$(kv rss_after_kib "$M")" errors="$(kv errors "$M")" \
    foreign_cpu="$(kv foreign_cpu "$M")" client_cpu="$(kv client_cpu "$M")" note="$2:_${new}_new_backend_conns_in_${req}_requests"
  log "$c: $new new backend connections in $req requests = $per per 1000 (bar < $SS_BUDGET) [$st]"
}

OVER=0
t_h=$SECONDS
if ((SS_STEADY)); then
  # the second static target turned healthy while the first already was: it is in slow start too
  log "waiting $((SS_WINDOW_S + 2)) s for the static targets' own slow start to end"
  sleep $((SS_WINDOW_S + 2 - (SECONDS - t_h)))
  timeout 3 wrk -t1 -c"$CONNS" -d1s "http://127.0.0.1:$PORT/small" >/dev/null 2>&1   # fill the pools
  phase sluice-steady "2_targets,_no_slow_start"
else
  timeout 3 wrk -t1 -c"$CONNS" -d1s "http://127.0.0.1:$PORT/small" >/dev/null 2>&1
fi
"$SLUICECTL" targets register web "127.0.0.1:${BE[2]}" --weight 100 --socket "$SOCK" >&2 || die "sluicectl targets register failed"
t_reg=$SECONDS
wait_healthy 30 "127.0.0.1:${BE[2]}" || die "registered target not healthy after 30 s"
log "target 127.0.0.1:${BE[2]} healthy $((SECONDS - t_reg)) s after registration: slow start ($SS_WINDOW) begins"
phase sluice "slow_start_$SS_WINDOW,_3rd_target_registered"
stop_proxy sluice
((OVER && ENFORCE)) && exit 1
exit 0
