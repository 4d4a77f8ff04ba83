#!/usr/bin/env bash
# Control-plane bars of Sluice (release binary), loopback only:
#   1. register N_TARGETS (1000) targets through the control API, one after another  — bar < 2 s (median of REG_REPS)
#   2. reload a config with N_RULES (1000) rules and N_TARGETS static targets          — bar < 200 ms (median of REPS)
#        (a) POST /v1/reload, curl -w %{time_total}   (b) SIGHUP -> log line "reloaded"
#   3. RELOADS (100) reloads every RELOAD_MS (100 ms) under wrk load                    — bar: 0 failed requests
#        (a) same config, SIGHUP  (b) two differing configs, POST /v1/reload  (c) two differing configs, SIGHUP
#
#   Benchmarks/control-bench.sh                      # ~1 min
#   SLUICED=/path/to/sluiced Benchmarks/control-bench.sh
#
# Report: stdout and Benchmarks/out/last-control.md; daemons' logs and configs in
# Benchmarks/out/last-control-logs/. Everything runs in a mktemp -d directory; every process started
# here is stopped by PID on exit (also on failure or Ctrl-C). Requires: curl nginx wrk python3 ss.
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SLUICED=${SLUICED:-$REPO/.build/release/sluiced}
SLUICECTL=${SLUICECTL:-$REPO/.build/release/sluicectl}
PY=${PY:-python3}
N_TARGETS=${N_TARGETS:-1000}
N_RULES=${N_RULES:-1000}
REPS=${REPS:-5}
REG_REPS=${REG_REPS:-3}
RELOADS=${RELOADS:-100}
RELOAD_MS=${RELOAD_MS:-100}
WRK_DUR=${WRK_DUR:-12}
WRK_CONNS=${WRK_CONNS:-32}
OUT=${OUT:-$REPO/Benchmarks/out}

# ports: l4-bench 18181-18221, 19401-19503; l7-bench 18381/18382, 19701-19703;
# ../shared/bench 18081/18082/18201/18301/18443, 19000-19399. Here: 18681, 19911, 19921, 19922.
BE_PORT=${BE_PORT:-18681}        # backend nginx (/small, 100 B)
PORT_SMALL=${PORT_SMALL:-19911}  # listener of the instances of tests 1 and 2 (no traffic)
PORT_WEB=${PORT_WEB:-19921}      # listener under wrk load (test 3)
PORT_EXTRA=${PORT_EXTRA:-19922}  # listener added/removed by the alternating configs (test 3b/3c)

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "FATAL: $*"; exit 1; }

PIDS=()
stop_pid() {  # PID: TERM, wait up to 5 s, KILL
  local pid=$1 i
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
  kill -TERM "$pid" 2>/dev/null
  for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && { log "pid $pid ignored SIGTERM: SIGKILL"; kill -KILL "$pid" 2>/dev/null; }
  wait "$pid" 2>/dev/null
  local keep=() j
  for j in "${PIDS[@]}"; do [[ $j == "$pid" ]] || keep+=("$j"); done
  PIDS=("${keep[@]}")
}
T=
cleanup() {
  local rc=$? i
  trap - EXIT INT TERM HUP
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do stop_pid "${PIDS[i]}"; done
  [[ -n $T && -d $T ]] && rm -rf "$T"
  exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM HUP

port_busy() { [[ -n $(ss -Hltn "sport = :$1" 2>/dev/null) ]]; }
wait_port() {  # PORT TIMEOUT_S PID
  local i
  for ((i = 0; i < $2 * 20; i++)); do
    port_busy "$1" && return 0
    kill -0 "$3" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}
wait_sock() {  # SOCK TIMEOUT_S PID
  local i
  for ((i = 0; i < $2 * 20; i++)); do
    curl -sf --unix-socket "$1" -o /dev/null http://sluice/v1/target-groups 2>/dev/null && return 0
    kill -0 "$3" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}

for x in curl nginx wrk ss "$PY"; do command -v "$x" >/dev/null || die "missing tool: $x"; done
[[ -x $SLUICED ]] || die "no sluiced at $SLUICED (swift build -c release, or SLUICED=...)"
for p in "$BE_PORT" "$PORT_SMALL" "$PORT_WEB" "$PORT_EXTRA"; do port_busy "$p" && die "port $p is in use"; done

T=$(mktemp -d /tmp/sluice-control-bench.XXXXXX)
mkdir -p "$OUT"
LOGDIR=$OUT/last-control-logs
rm -rf "$LOGDIR"; mkdir -p "$LOGDIR"
CMDLINE="$0 $*"
for v in SLUICED N_TARGETS N_RULES REPS REG_REPS RELOADS RELOAD_MS WRK_DUR WRK_CONNS; do
  [[ -n $(printenv "$v") ]] && CMDLINE="$v=${!v} $CMDLINE"
done
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

# ------------------------------------------------------------------ python helper
H=$T/cb.py
cat >"$H" <<'PYEOF'
import http.client, json, os, signal, socket, statistics, subprocess, sys, time

class UDSConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=30):
        super().__init__("sluice", timeout=timeout)
        self.path = path
    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.path)
        self.sock = s

def addr(prefix, i):
    return "%s.%d.%d:8080" % (prefix, i // 250, i % 250 + 1)

def conf(out, sock, state, port, rules, targets, tprefix, backend, extra_port, extra_rule):
    L = ["node: { workers: 1 }",
         "control: { socket: %s, state: %s }" % (sock, state),
         "listeners:",
         "  - name: web", "    protocol: http", "    bind: 127.0.0.1:%d" % port, "    access_log: off"]
    if rules or extra_rule:
        L.append("    rules:")
        for i in range(1, rules + 1):
            L.append('      - { priority: %d, when: { path: ["/p%d/*"] }, then: { forward: app } }' % (i, i))
        if extra_rule:
            L.append('      - { priority: %d, when: { path: ["/extra/*"] }, then: { forward: app } }' % (rules + 1))
    L.append("    default: { forward: app }")
    if extra_port:
        L += ["  - name: extra", "    protocol: http", "    bind: 127.0.0.1:%d" % extra_port,
              "    access_log: off", "    default: { forward: app }"]
    L += ["target_groups:", "  - name: app", "    protocol: http", "    health_check: off", "    targets:"]
    if backend:
        L.append('      - { address: "%s" }' % backend)
    for i in range(targets):
        L.append('      - { address: "%s" }' % addr(tprefix, i))
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(L) + "\n")
    os.replace(tmp, out)   # atomic: a SIGHUP never reads half a file

def count_reloaded(logf):
    with open(logf, errors="replace") as f:
        return sum(1 for l in f if " reloaded generation=" in l)

def refused(logf):
    with open(logf, errors="replace") as f:
        return sum(1 for l in f if "reload refused" in l)

def hup_and_wait(pid, logf, timeout=10.0):
    """SIGHUP, then poll the log until one more 'reloaded' line: seconds, or None."""
    n0 = count_reloaded(logf)
    t0 = time.perf_counter()
    os.kill(pid, signal.SIGHUP)
    while time.perf_counter() - t0 < timeout:
        if count_reloaded(logf) > n0:
            return time.perf_counter() - t0
        time.sleep(0.0002)
    return None

def post_reload(conn):
    conn.request("POST", "/v1/reload", body=b"", headers={"Content-Length": "0"})
    r = conn.getresponse()
    body = r.read()
    try:
        ok = r.status == 200 and json.loads(body).get("ok") is True
    except Exception:
        ok = False
    return ok, body

def main():
    cmd, a = sys.argv[1], sys.argv[2:]
    if cmd == "conf":
        # OUT SOCK STATE PORT RULES TARGETS TPREFIX BACKEND EXTRA_PORT EXTRA_RULE
        conf(a[0], a[1], a[2], int(a[3]), int(a[4]), int(a[5]), a[6], a[7] if a[7] != "-" else "",
             int(a[8]), a[9] == "1")
    elif cmd == "register":   # SOCK GROUP N PREFIX -> "elapsed_s created other_status conns p50_ms p99_ms"
        sock, group, n, prefix = a[0], a[1], int(a[2]), a[3]
        bodies = [json.dumps({"address": addr(prefix, i)}).encode() for i in range(n)]
        path = "/v1/target-groups/%s/targets" % group
        conn = UDSConnection(sock)
        codes, lat, connects = {}, [], 0
        orig = conn.connect
        def counting():
            nonlocal connects
            connects += 1
            orig()
        conn.connect = counting
        t0 = time.perf_counter()
        for b in bodies:
            s = time.perf_counter()
            conn.request("POST", path, body=b, headers={"Content-Type": "application/json"})
            r = conn.getresponse()
            r.read()
            lat.append(time.perf_counter() - s)
            codes[r.status] = codes.get(r.status, 0) + 1
            if r.will_close:
                conn.close()
        el = time.perf_counter() - t0
        k = max(1, min(100, n // 10))
        first, last = sum(lat[:k]) / k * 1e3, sum(lat[-k:]) / k * 1e3
        lat.sort()
        print("%.4f %d %d %d %.3f %.3f %.3f %.3f %d" % (el, codes.get(201, 0), n - codes.get(201, 0), connects,
              lat[len(lat) // 2] * 1e3, lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1e3, first, last, k))
        if set(codes) - {201}:
            print("status codes: %s" % codes, file=sys.stderr)
    elif cmd == "count":      # SOCK GROUP STATEFILE -> "api_total api_dynamic state_regs"
        conn = UDSConnection(a[0])
        conn.request("GET", "/v1/target-groups/" + a[1])
        r = conn.getresponse()
        g = json.loads(r.read())
        ts = g.get("targets", [])
        dyn = sum(1 for t in ts if not t.get("static"))
        regs = -1
        for _ in range(40):   # the state file may be written just after the answer
            try:
                with open(a[2]) as f:
                    st = json.load(f)
                regs = sum(1 for x in st.get("registrations", []) if x.get("group") == a[1])
                if regs >= dyn:
                    break
            except Exception:
                pass
            time.sleep(0.05)
        print(len(ts), dyn, regs)
    elif cmd == "hup":        # PID LOG -> ms
        d = hup_and_wait(int(a[0]), a[1])
        print("%.2f" % (d * 1e3) if d is not None else "timeout")
    elif cmd == "loop":
        # MODE(hup|post) PID LOG SOCK CONFIG CONF_A CONF_B(-) N INTERVAL_MS -> summary line
        mode, pid, logf, sock, cfg, ca, cb = a[0], int(a[1]), a[2], a[3], a[4], a[5], a[6]
        n, iv = int(a[7]), int(a[8]) / 1e3
        conn = UDSConnection(sock, timeout=60)
        lat, bad, n_logged0, ref0 = [], 0, count_reloaded(logf), refused(logf)
        start = time.perf_counter()
        for i in range(n):
            target = start + i * iv
            now = time.perf_counter()
            if target > now:
                time.sleep(target - now)
            if cb != "-":
                src = cb if i % 2 == 0 else ca
                with open(src, "rb") as f:
                    data = f.read()
                with open(cfg + ".tmp", "wb") as f:
                    f.write(data)
                os.replace(cfg + ".tmp", cfg)
            s = time.perf_counter()
            if mode == "post":
                ok, body = post_reload(conn)
                if not ok:
                    bad += 1
                    print("reload %d failed: %r" % (i, body[:300]), file=sys.stderr)
                lat.append(time.perf_counter() - s)
            else:
                os.kill(pid, signal.SIGHUP)
        total = time.perf_counter() - start
        # SIGHUPs are coalesced by a signalfd if two arrive during one reload: count the log lines
        deadline = time.perf_counter() + 10
        while count_reloaded(logf) - n_logged0 < n and time.perf_counter() < deadline:
            time.sleep(0.05)
        logged = count_reloaded(logf) - n_logged0
        lat.sort()
        p50 = "%.1f" % (lat[len(lat) // 2] * 1e3) if lat else "-"
        mx = "%.1f" % (lat[-1] * 1e3) if lat else "-"
        print("sent=%d logged=%d refused=%d bad_answers=%d span_s=%.2f post_p50_ms=%s post_max_ms=%s"
              % (n, logged, refused(logf) - ref0, bad, total, p50, mx))

main()
PYEOF

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
  cp "$D1/sluiced.log" "$LOGDIR/t1-sluiced-$r.log"; cp "$D1/control.state" "$LOGDIR/t1-control.state" 2>/dev/null
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
cp "$D2/sluiced.log" "$LOGDIR/t2-sluiced.log"; cp "$D2/big.yaml" "$LOGDIR/t2-big.yaml"
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
  cp "$D3/wrk-$name.txt" "$D3/loop-$name.txt" "$D3/loop-$name.err" "$LOGDIR/"
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
  ROWS+=("$RELOADS reloads every $RELOAD_MS ms under \`wrk -t1 -c$WRK_CONNS -d${WRK_DUR}s\`, $label: 0 failed requests|$failed failed of ${req:-?} requests (non-2xx $non2xx; socket errors connect $c, read $r, write $w, timeout $to; $rps req/s)|$(pf $ok)")
  DETAILS+=("Test 3 $name: reload loop: \`$loopl\`")
}
run_load same-hup hup 0 "same config, SIGHUP"
run_load alt-post post 1 "alternating A/B configs, POST /v1/reload"
run_load alt-hup hup 1 "alternating A/B configs, SIGHUP"
cp "$D3/sluiced.log" "$LOGDIR/t3-sluiced.log"; cp "$D3/a.yaml" "$D3/b.yaml" "$LOGDIR/"
stop_pid "$SL_PID"
stop_pid "$NG_PID"

# ================================================================== report
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
REPORT=$OUT/last-control.md
{
  echo "## Sluice control plane — $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "Command: \`$CMDLINE\`"
  echo
  echo "| bar | measured | result |"
  echo "|---|---|---|"
  for row in "${ROWS[@]}"; do echo "| ${row//|/ | } |"; done
  echo
  for d in "${DETAILS[@]}"; do echo "- $d"; done
  echo "- sluiced: \`$SLUICED\` ($("$SLUICED" --version 2>/dev/null | head -1); $(stat -c '%s bytes, built %y' "$SLUICED" | cut -d. -f1)); $(wrk -v 2>&1 | head -1 | awk '{print "wrk "$2}'); nginx $(nginx -v 2>&1 | sed 's/.*nginx\///'); curl $(curl --version | head -1 | awk '{print $2}'); $("$PY" --version 2>&1)."
  echo "- Machine: $(nproc) CPUs ($(awk -F: '/model name/ {print $2; exit}' /proc/cpuinfo | sed 's/^ *//')), $(uname -r); no pinning; loadavg before $LOAD_BEFORE, after $LOAD_AFTER (other processes on the host are not controlled)."
  echo "- Logs, configs, wrk output: \`$LOGDIR/\`."
} >"$REPORT"
cat "$REPORT"
