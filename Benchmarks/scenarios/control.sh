#!/usr/bin/env bash
# control: control-plane bars of Sluice (release binary), loopback only, no pinning:
#   register  N_TARGETS (1000) registrations through the control API one after another (python
#             keep-alive over the UNIX socket; fresh daemon and state per repetition, REG_REPS 3),
#             also with one `curl -K` process chaining them with `next`          — bar < 2 s (median)
#   reload    a config with N_RULES (1000) rules and N_TARGETS static targets, CTL_REPS (5) times:
#             POST /v1/reload (curl time_total) and SIGHUP -> log line "reloaded"  — bar < 200 ms (median)
#   reloads under load: RELOADS (100) reloads every RELOAD_MS (100) ms under wrk -t1 -cWRK_CONNS (32)
#             -dWRK_DUR (12) s: same config + SIGHUP; alternating configs A/B (B adds a rule and a
#             listener) + POST; A/B + SIGHUP                                     — bar: 0 failed requests
# Rows in the results: control:register (s), control:register-curl (s), control:reload-post (ms),
# control:reload-hup (ms), control:reload-load-* (failed requests); the detailed table goes to
# out/last-control.extra.md. Exit 1 when a bar is missed.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
bench_init control
N_TARGETS=${N_TARGETS:-1000}
N_RULES=${N_RULES:-1000}
REPS=${CTL_REPS:-5}
REG_REPS=${REG_REPS:-3}
RELOADS=${RELOADS:-100}
RELOAD_MS=${RELOAD_MS:-100}
WRK_DUR=${WRK_DUR:-12}
WRK_CONNS=${WRK_CONNS:-32}
need curl nginx wrk
ensure_sluiced
free_ports 4
BE_PORT=${PORTS[0]} PORT_SMALL=${PORTS[1]} PORT_WEB=${PORTS[2]} PORT_EXTRA=${PORTS[3]}
H=$BENCH_DIR/lib/control.py
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
wait_sock() {  # SOCK TIMEOUT_S PID
  local i
  for ((i = 0; i < $2 * 20; i++)); do
    curl -sf --unix-socket "$1" -o /dev/null http://sluice/v1/target-groups 2>/dev/null && return 0
    kill -0 "$3" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}

# ------------------------------------------------------------------ helpers
SL_PID=
start_sluiced() {  # CONFIG LOG SOCK
  "$SLUICED" --config "$1" 2>"$2" >/dev/null </dev/null &
  SL_PID=$!
  PIDS+=("$SL_PID")
  wait_sock "$3" 15 "$SL_PID" || { cat "$2" >&2; die "sluiced did not come up ($1)"; }
}
median() { sort -g | awk '{a[NR]=$1} END {if (NR == 0) print "-"; else if (NR % 2) print a[(NR+1)/2]; else printf "%.2f\n", (a[NR/2]+a[NR/2+1])/2}'; }
pf() { if [[ $1 == 1 ]]; then echo "**pass**"; else echo "**FAIL**"; fi; }
lt() { awk -v a="$1" -v b="$2" 'BEGIN {exit !(a != "" && a != "-" && a+0 < b+0)}' && echo 1 || echo 0; }

ROWS=()     # "bar|measured|verdict"
LOADROWS=()
LOAD_OK=1
DETAILS=()

# ================================================================== 1. register 1000 targets
log "1. register $N_TARGETS targets over the control socket"
D1=$T/t1; mkdir -p "$D1"
"$PY" "$H" conf "$D1/c.yaml" "$D1/c.sock" "$D1/control.state" "$PORT_SMALL" 1 0 10.9 127.0.0.1:$BE_PORT 0 0
R1_ALL=(); ok1=1
for ((r = 1; r <= REG_REPS; r++)); do   # each repetition: fresh daemon, empty state
  rm -f "$D1/control.state"
  start_sluiced "$D1/c.yaml" "$D1/sluiced.log" "$D1/c.sock"
  read -r R1_S R1_CREATED R1_OTHER R1_CONNS R1_P50 R1_P99 R1_FIRST R1_LAST R1_K < <("$PY" "$H" register "$D1/c.sock" app "$N_TARGETS" 10.1)
  read -r C1_TOTAL C1_DYN C1_STATE < <("$PY" "$H" count "$D1/c.sock" app "$D1/control.state")
  log "   rep $r, python keep-alive client: ${R1_S}s (first/last $R1_K: $R1_FIRST/$R1_LAST ms per request), 201=$R1_CREATED other=$R1_OTHER, connections=$R1_CONNS; GET: $C1_TOTAL targets ($C1_DYN registered), control.state: $C1_STATE"
  R1_ALL+=("$R1_S")
  ((R1_CREATED == N_TARGETS && C1_DYN == N_TARGETS && C1_STATE == N_TARGETS)) || ok1=0
    stop_pid "$SL_PID"
done
R1_MED=$(printf '%s\n' "${R1_ALL[@]}" | median)

# same with one curl process and --next (fresh state)
rm -f "$D1/control.state"
start_sluiced "$D1/c.yaml" "$D1/sluiced-curl.log" "$D1/c.sock"
{
  for ((i = 0; i < N_TARGETS; i++)); do
    ((i)) && echo "next"
    printf 'unix-socket = "%s"\nrequest = "POST"\nheader = "Content-Type: application/json"\ndata = "{\\"address\\": \\"10.1.%d.%d:8080\\"}"\nurl = "http://sluice/v1/target-groups/app/targets"\noutput = "/dev/null"\nwrite-out = "%%{http_code}\\n"\n' \
      "$D1/c.sock" $((i / 250)) $((i % 250 + 1))
  done
} >"$D1/curl.cfg"
t0=$(date +%s%N)
curl -s -K "$D1/curl.cfg" >"$D1/curl.codes"
t1=$(date +%s%N)
R1C_S=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.4f", (b-a)/1e9}')
R1C_CREATED=$(grep -c '^201$' "$D1/curl.codes")
read -r C1C_TOTAL C1C_DYN C1C_STATE < <("$PY" "$H" count "$D1/c.sock" app "$D1/control.state")
log "   curl --next (one process, incl. its start): ${R1C_S}s, 201=$R1C_CREATED; GET: $C1C_DYN registered, control.state: $C1C_STATE"
stop_pid "$SL_PID"

ok1=$(( ok1 && $(lt "$R1_MED" 2) ))
ok1c=$(( $(lt "$R1C_S" 2) && R1C_CREATED == N_TARGETS && C1C_DYN == N_TARGETS && C1C_STATE == N_TARGETS ))
ROWS+=("Register $N_TARGETS targets via API, one after another (python, keep-alive UDS), median of $REG_REPS: < 2 s|$R1_MED s (all: ${R1_ALL[*]}; last rep: p50 ${R1_P50} ms, p99 ${R1_P99} ms per request, $R1_CREATED×201, GET app: $C1_DYN registered, control.state: $C1_STATE)|$(pf $ok1)")
ROWS+=("Same, one \`curl -K\` process with \`next\` (incl. curl start-up): < 2 s|$R1C_S s ($R1C_CREATED×201; GET app: $C1C_DYN registered; control.state: $C1C_STATE)|$(pf $ok1c)")
DETAILS+=("Test 1 (last rep): python client used $R1_CONNS connection(s) for $N_TARGETS requests (1 = keep-alive held throughout). Mean latency of the first $R1_K registrations $R1_FIRST ms, of the last $R1_K $R1_LAST ms (cost per registration grows with the number already registered).")

# ================================================================== 2. reload 1000 rules + 1000 targets
log "2. reload a config with $N_RULES rules and $N_TARGETS targets, $REPS times per method"
D2=$T/t2; mkdir -p "$D2"
"$PY" "$H" conf "$D2/small.yaml" "$D2/c.sock" "$D2/control.state" "$PORT_SMALL" 1 1 10.2 - 0 0
"$PY" "$H" conf "$D2/big.yaml" "$D2/c.sock" "$D2/control.state" "$PORT_SMALL" "$N_RULES" "$N_TARGETS" 10.2 - 0 0
cp "$D2/small.yaml" "$D2/c.yaml"
start_sluiced "$D2/c.yaml" "$D2/sluiced.log" "$D2/c.sock"
post() {  # -> "code time_total body"
  curl -s --unix-socket "$D2/c.sock" -X POST http://sluice/v1/reload -o "$D2/post.body" -w '%{http_code} %{time_total}'
}
POST_MS=(); HUP_MS=(); SAME_MS=(); BAD2=0
for ((r = 1; r <= REPS; r++)); do
  # small -> big through POST /v1/reload
  cp "$D2/small.yaml" "$D2/c.yaml.tmp" && mv "$D2/c.yaml.tmp" "$D2/c.yaml"; post >/dev/null
  cp "$D2/big.yaml" "$D2/c.yaml.tmp" && mv "$D2/c.yaml.tmp" "$D2/c.yaml"
  read -r code tt < <(post)
  grep -q '"ok":true' "$D2/post.body" && [[ $code == 200 ]] || { BAD2=$((BAD2 + 1)); log "   POST failed: $code $(cat "$D2/post.body")"; }
  POST_MS+=("$(awk -v t="$tt" 'BEGIN {printf "%.2f", t*1000}')")
  # big -> big (unchanged file) through POST
  read -r code tt < <(post)
  SAME_MS+=("$(awk -v t="$tt" 'BEGIN {printf "%.2f", t*1000}')")
  # small -> big through SIGHUP, until the log line
  cp "$D2/small.yaml" "$D2/c.yaml.tmp" && mv "$D2/c.yaml.tmp" "$D2/c.yaml"; post >/dev/null
  cp "$D2/big.yaml" "$D2/c.yaml.tmp" && mv "$D2/c.yaml.tmp" "$D2/c.yaml"
  HUP_MS+=("$("$PY" "$H" hup "$SL_PID" "$D2/sluiced.log")")
  log "   rep $r: POST ${POST_MS[-1]} ms, SIGHUP→reloaded ${HUP_MS[-1]} ms, POST unchanged big ${SAME_MS[-1]} ms"
done
G2=$(curl -s --unix-socket "$D2/c.sock" http://sluice/v1/target-groups/app | "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)["targets"]))')
REF2=$(grep -c 'reload refused' "$D2/sluiced.log")
RSS2=$(awk '/VmHWM/ {print $2/1024 " MiB"}' "/proc/$SL_PID/status")
stop_pid "$SL_PID"
MED_POST=$(printf '%s\n' "${POST_MS[@]}" | median)
MED_HUP=$(printf '%s\n' "${HUP_MS[@]}" | grep -v timeout | median)
MED_SAME=$(printf '%s\n' "${SAME_MS[@]}" | median)
ok2p=$(( $(lt "$MED_POST" 200) && BAD2 == 0 && REF2 == 0 && G2 == N_TARGETS ))
ok2h=$(( $(lt "$MED_HUP" 200) && REF2 == 0 && G2 == N_TARGETS ))
ROWS+=("Reload small → $N_RULES rules + $N_TARGETS targets, \`POST /v1/reload\` (curl time_total), median of $REPS: < 200 ms|$MED_POST ms (all: ${POST_MS[*]})|$(pf $ok2p)")
ROWS+=("Same, SIGHUP → log line \`reloaded\`, median of $REPS: < 200 ms|$MED_HUP ms (all: ${HUP_MS[*]})|$(pf $ok2h)")
DETAILS+=("Test 2: after the runs GET app lists $G2 targets; 'reload refused' lines: $REF2; failed POSTs: $BAD2; sluiced VmHWM $RSS2. Re-POST of the unchanged big config: median $MED_SAME ms (all: ${SAME_MS[*]}).")

# ================================================================== 3. reloads under wrk load
log "3. $RELOADS reloads every $RELOAD_MS ms under wrk -t1 -c$WRK_CONNS -d${WRK_DUR}s"
D3=$T/t3; mkdir -p "$D3/ng/tmp" "$D3/www"
body=$(printf '%099d' 0 | tr 0 a)
cat >"$D3/ng/nginx.conf" <<EOF
worker_processes 1;
daemon off;
master_process on;
user root;
pid $D3/ng/nginx.pid;
error_log $D3/ng/error.log warn;
worker_rlimit_nofile 20000;
events { worker_connections 9000; }
http {
  access_log off;
  client_body_temp_path $D3/ng/tmp/body;
  proxy_temp_path $D3/ng/tmp/proxy;
  fastcgi_temp_path $D3/ng/tmp/fastcgi;
  uwsgi_temp_path $D3/ng/tmp/uwsgi;
  scgi_temp_path $D3/ng/tmp/scgi;
  tcp_nodelay on;
  keepalive_requests 100000000;
  keepalive_timeout 75s;
  server {
    listen 127.0.0.1:$BE_PORT backlog=4096;
    location = /small { default_type text/plain; return 200 "$body\n"; }
  }
}
EOF
nginx -t -p "$D3/ng" -c "$D3/ng/nginx.conf" -e "$D3/ng/error.log" >"$D3/ng/test.log" 2>&1 || { cat "$D3/ng/test.log"; die "nginx config"; }
nginx -p "$D3/ng" -c "$D3/ng/nginx.conf" -e "$D3/ng/error.log" >"$D3/ng/out.log" 2>&1 </dev/null &
NG_PID=$!; PIDS+=("$NG_PID")
wait_port "$BE_PORT" 10 "$NG_PID" || { cat "$D3/ng/error.log" >&2; die "backend nginx did not start"; }

# A: 3 rules, one listener; B: + rule /extra/*, + listener "extra" on PORT_EXTRA
"$PY" "$H" conf "$D3/a.yaml" "$D3/c.sock" "$D3/control.state" "$PORT_WEB" 3 0 - 127.0.0.1:$BE_PORT 0 0
"$PY" "$H" conf "$D3/b.yaml" "$D3/c.sock" "$D3/control.state" "$PORT_WEB" 3 0 - 127.0.0.1:$BE_PORT "$PORT_EXTRA" 1
cp "$D3/a.yaml" "$D3/c.yaml"
start_sluiced "$D3/c.yaml" "$D3/sluiced.log" "$D3/c.sock"
wait_port "$PORT_WEB" 5 "$SL_PID" || die "sluiced listener $PORT_WEB not up"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT_WEB/small")
[[ $code == 200 ]] || die "GET :$PORT_WEB/small through sluiced answered $code"
# the two configs really differ: B opens PORT_EXTRA, A closes it again
cp "$D3/b.yaml" "$D3/c.yaml"; curl -s --unix-socket "$D3/c.sock" -X POST http://sluice/v1/reload -o /dev/null
CHK_B=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT_EXTRA/extra/x")
cp "$D3/a.yaml" "$D3/c.yaml"; curl -s --unix-socket "$D3/c.sock" -X POST http://sluice/v1/reload -o /dev/null
sleep 0.2
CHK_A=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT_EXTRA/extra/x")
log "   plan check: with B :$PORT_EXTRA answers $CHK_B (nginx 404 for /extra/x expected), with A: $CHK_A (000 = refused expected)"
DETAILS+=("Test 3 plan check: config B → \`GET :$PORT_EXTRA/extra/x\` answered $CHK_B (forwarded; nginx has no /extra → 404); back to A → $CHK_A (000 = connection refused, listener gone).")

run_load() {  # NAME MODE(hup|post) ALT(0|1) LABEL
  local name=$1 mode=$2 alt=$3 label=$4 cb=- wpid
  ((alt)) && cb=$D3/b.yaml
  cp "$D3/a.yaml" "$D3/c.yaml"
  wrk -t1 -c"$WRK_CONNS" -d"${WRK_DUR}s" "http://127.0.0.1:$PORT_WEB/small" >"$D3/wrk-$name.txt" 2>&1 &
  wpid=$!; PIDS+=("$wpid")
  sleep 1
  "$PY" "$H" loop "$mode" "$SL_PID" "$D3/sluiced.log" "$D3/c.sock" "$D3/c.yaml" "$D3/a.yaml" "$cb" "$RELOADS" "$RELOAD_MS" \
    >"$D3/loop-$name.txt" 2>"$D3/loop-$name.err"
  wait "$wpid"
  local keep=() j
  for j in "${PIDS[@]}"; do [[ $j == "$wpid" ]] || keep+=("$j"); done
  PIDS=("${keep[@]}")
  local req non2xx se c r w to failed loopl
  req=$(awk '/requests in/ {print $1}' "$D3/wrk-$name.txt")
  non2xx=$(awk -F: '/Non-2xx or 3xx responses/ {gsub(/ /, "", $2); print $2}' "$D3/wrk-$name.txt"); non2xx=${non2xx:-0}
  se=$(grep 'Socket errors' "$D3/wrk-$name.txt")
  c=$(sed -n 's/.*connect \([0-9]*\).*/\1/p' <<<"$se"); r=$(sed -n 's/.*read \([0-9]*\).*/\1/p' <<<"$se")
  w=$(sed -n 's/.*write \([0-9]*\).*/\1/p' <<<"$se"); to=$(sed -n 's/.*timeout \([0-9]*\).*/\1/p' <<<"$se")
  c=${c:-0} r=${r:-0} w=${w:-0} to=${to:-0}
  failed=$((non2xx + c + r + w + to))
  loopl=$(cat "$D3/loop-$name.txt")
  local rps; rps=$(awk '/Requests\/sec/ {print $2}' "$D3/wrk-$name.txt")
  log "   $name: requests=$req rps=$rps non2xx=$non2xx socket errors connect=$c read=$r write=$w timeout=$to; $loopl"
  local bad_loop; bad_loop=$(sed -n 's/.*refused=\([0-9]*\) bad_answers=\([0-9]*\).*/\1+\2/p' <<<"$loopl")
  local ok=$(( ${req:-0} > 0 && failed == 0 && $((bad_loop)) == 0 ))
  ((ok)) || LOAD_OK=0
  LOADROWS+=("scenario=control:reload-load-$name candidate=sluice rep=1 attempt=1 status=$( ((ok)) && echo ok || echo over_bar) unit=failed_requests value=$failed better=lower ops=${req:-0} op_unit=req errors=$failed note=${RELOADS}_reloads_every_${RELOAD_MS}_ms,_bar_0_failed")
  ROWS+=("$RELOADS reloads every $RELOAD_MS ms under \`wrk -t1 -c$WRK_CONNS -d${WRK_DUR}s\`, $label: 0 failed requests|$failed failed of ${req:-?} requests (non-2xx $non2xx; socket errors connect $c, read $r, write $w, timeout $to; $rps req/s)|$(pf $ok)")
  DETAILS+=("Test 3 $name: reload loop: \`$loopl\`")
}
run_load same-hup hup 0 "same config, SIGHUP"
run_load alt-post post 1 "alternating A/B configs, POST /v1/reload"
run_load alt-hup hup 1 "alternating A/B configs, SIGHUP"
stop_pid "$SL_PID"
stop_pid "$NG_PID"

# ================================================================== results
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
st() { if [[ $1 == 1 ]]; then echo ok; else echo over_bar; fi; }
record scenario=control:register candidate=sluice rep=1 attempt=1 status="$(st "$ok1")" unit=s value="$R1_MED" better=lower \
  ops="$N_TARGETS" note="${N_TARGETS}_registrations,_median_of_${REG_REPS},_bar_<_2_s"
record scenario=control:register-curl candidate=sluice rep=1 attempt=1 status="$(st "$ok1c")" unit=s value="$R1C_S" better=lower \
  ops="$N_TARGETS" note="one_curl_-K_process_with_next,_bar_<_2_s"
record scenario=control:reload-post candidate=sluice rep=1 attempt=1 status="$(st "$ok2p")" unit=ms value="$MED_POST" better=lower \
  note="${N_RULES}_rules_+_${N_TARGETS}_targets,_median_of_${REPS},_bar_<_200_ms"
record scenario=control:reload-hup candidate=sluice rep=1 attempt=1 status="$(st "$ok2h")" unit=ms value="$MED_HUP" better=lower \
  note="SIGHUP_->_reloaded,_median_of_${REPS},_bar_<_200_ms"
for x in "${LOADROWS[@]}"; do record $x; done
{
  echo "Control plane (\`scenarios/control.sh\`, sluiced $(sluiced_id); no pinning; loadavg before $LOAD_BEFORE, after $LOAD_AFTER):"
  echo
  echo "| bar | measured | result |"
  echo "|---|---|---|"
  for row in "${ROWS[@]}"; do echo "| ${row//|/ | } |"; done
  echo
  for d in "${DETAILS[@]}"; do echo "- $d"; done
} >"$OUT_DIR/last-control.extra.md"
ALL_OK=$((ok1 && ok1c && ok2p && ok2h && LOAD_OK))
((ALL_OK)) || { log "a control-plane bar was missed (see $OUT_DIR/last-control.extra.md)"; exit 1; }
exit 0
