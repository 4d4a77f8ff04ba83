#!/usr/bin/env bash
# Benchmarks/run.sh [scenario...] -- the one entry point of Sluice's benchmarks.
#
#   Benchmarks/run.sh                         # every scenario in DEFAULT_SCENARIOS (see README.md)
#   Benchmarks/run.sh ka_small rss            # some of them
#   REPS=1 DUR=2 DUR_IPERF=2 IDLE_CONNS=1000 Benchmarks/run.sh   # smoke run
#   Benchmarks/run.sh --list                  # the scenarios and what they measure
#
# Each scenario is Benchmarks/scenarios/NAME.sh, run in its own process (it starts and stops
# its own backends and proxies; everything by PID, also on failure or Ctrl-C). All of them append
# to one results file; at the end lib/bench.py renders one markdown table (a row per
# scenario × candidate) to stdout and Benchmarks/out/last-run.md (RUN_NAME=run), headed by the exact command,
# ready to paste into RESULTS.md. Exit status: 0, 1 when a scenario reports a budget/bar
# failure (alloc, control; slowstart-pool, rss, udp_rtt, l4_connrate_pp2, l4_connrate with ENFORCE=1), 2 when a scenario could not run.
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# the exact command line: every parameter set in the environment, then the script and its arguments
PARAMS="REPS DUR DUR_KA DUR_CONN DUR_IPERF CONNS WORKERS PROXIES SCENARIOS IDLE_CONNS IDLE_BATCH PIN CLIENT_CPUS
SERVER_CPUS PROXY_CPUS PRIO FOREIGN_MAX MAX_RETRIES SLUICED BUILD MAX_TOTAL_S OUT_DIR KEEP_TMP PYTHON
SS_DUR SS_WINDOW_S SS_STEADY SS_BUDGET RSS_DUR RSS_IDLE_S RSS_BUDGET ENFORCE ALLOC_N ALLOC_WARM_N ALLOC_CONNS BUDGET_KA BUDGET_CLOSE
BUDGET_L4 BUDGET_UDP ALLOC_UDP_NEW ALLOC_UDP_IDLE_S N_TARGETS REG_REPS N_RULES ALLOC_N_CONN ALLOC_PARTS CTL_REPS RELOADS RELOAD_MS WRK_DUR WRK_CONNS IDLE_TIMEOUT_S MAXCONN ALLOC_WARM_CONN_S ALLOC_IDLE_S ALLOC_CLIENT RUN_NAME
TLS_CONNS H2_CONNS H2_STREAMS TLS_MIN DUR_UDP UDP_FLOWS UDP_INFLIGHT UDP_PAYLOAD UDP_WARMUP_MS"
CMDLINE=""
for v in $PARAMS; do [[ -n ${!v+x} ]] && CMDLINE+="$v=$(printf '%q' "${!v}") "; done
CMDLINE+="Benchmarks/run.sh${*:+ $(printf '%q ' "$@")}"
CMDLINE=${CMDLINE% }
source "$HERE/lib/common.sh"

# TLS and HTTP/2 (issue 8); also on their own: Benchmarks/run.sh tls_handshake tls_resumed tls_ka h2_tls
TLS_SCENARIOS="tls_handshake tls_resumed tls_ka h2_tls"
# NLB (issue 9): UDP round trips, the cost of sending PROXY v2
NLB_SCENARIOS="udp_rtt l4_connrate_pp2"
DEFAULT_SCENARIOS="ka_small ka_64k close_small $TLS_SCENARIOS l4_iperf l4_connrate $NLB_SCENARIOS l4_idle rss slowstart-pool control alloc"
MAX_TOTAL_S=${MAX_TOTAL_S:-1800}   # watchdog for the whole run
RUN_NAME=${RUN_NAME:-run}          # outputs: out/last-$RUN_NAME.md, .tsv, -logs/

if [[ ${1:-} == --list ]]; then
  for f in "$HERE"/scenarios/*.sh; do
    printf '%-15s %s\n' "$(basename "$f" .sh)" "$(sed -n '2s/^# [^:]*: //p' "$f")"
  done
  exit 0
fi
SCEN=("$@")
((${#SCEN[@]})) || read -ra SCEN <<<"${SCENARIOS:-$DEFAULT_SCENARIOS}"
for s in "${SCEN[@]}"; do [[ -f $HERE/scenarios/$s.sh ]] || die "unknown scenario '$s' (Benchmarks/run.sh --list)"; done


mkdir -p "$OUT_DIR"
export RESULTS=$OUT_DIR/last-$RUN_NAME.tsv LOGS_ROOT=$OUT_DIR/last-$RUN_NAME-logs BENCH_ROOT=$$ OUT_DIR
: >"$RESULTS"
: >"$OUT_DIR/.problems"
rm -rf "$LOGS_ROOT"
rm -f "$OUT_DIR"/last-*.extra.md
if [[ " $PROXIES " == *" sluice "* || " ${SCEN[*]} " =~ (rss|slowstart|control|alloc) ]]; then ensure_sluiced; fi

CHILD=
WATCHDOG=
finish() {
  local rc=$?
  trap - EXIT INT TERM HUP
  [[ -n $CHILD ]] && kill -TERM "$CHILD" 2>/dev/null && wait "$CHILD" 2>/dev/null
  [[ -n $WATCHDOG ]] && kill "$WATCHDOG" 2>/dev/null
  exit "$rc"
}
trap finish EXIT
trap 'log "interrupted"; exit 130' INT TERM HUP
# the watchdog's sleep is killed with it (an orphaned sleep would hold the output pipe open)
(
  trap 'kill "$sp" 2>/dev/null; exit 0' TERM
  sleep "$MAX_TOTAL_S" </dev/null >/dev/null 2>&1 &
  sp=$!
  wait "$sp" && { log "MAX_TOTAL_S=$MAX_TOTAL_S reached: stopping"; kill -TERM $$; }
) >/dev/null &
WATCHDOG=$!

t0=$SECONDS
worst=0
for s in "${SCEN[@]}"; do
  BENCH_NAME=run log "scenario $s"
  bash "$HERE/scenarios/$s.sh" &
  CHILD=$!
  wait "$CHILD"; rc=$?
  CHILD=
  if ((rc != 0)); then
    echo "scenario $s exited with status $rc$( ((rc == 1)) && echo ' (over its budget/bar)')" >>"$OUT_DIR/.problems"
    ((rc > worst)) && worst=$rc
  fi
done

# ------------------------------------------------------------------ report
ver() { "$@" 2>&1 | head -1; }
{
  echo "### Benchmarks/run.sh — $(date -u '+%Y-%m-%d %H:%M UTC'), repo $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$REPO" status --porcelain -- Sources Package.swift 2>/dev/null | grep -q . && echo ' + uncommitted changes in Sources')"
  echo
  echo "Command ($((SECONDS - t0)) s):"
  echo
  echo '```'
  echo "$CMDLINE"
  echo '```'
  echo
  echo "- Machine: $(nproc) vCPU ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM, Linux $(uname -r), loopback only."
  echo "- sluiced $(sluiced_id); $(ver haproxy -v | awk '{print "HAProxy "$3}'); nginx $(nginx -v 2>&1 | sed 's/.*nginx\///'); $(ver wrk -v | awk '{print "wrk "$2}'); $(ver iperf3 -v | awk '{print "iperf3 "$2}')."
  echo "- Workers $WORKERS (HAProxy nbthread, nginx worker_processes, Sluice node.workers). PIN=$PIN: load generator on CPU $CLIENT_CPUS, backends on CPU $SERVER_CPUS, proxies on CPU $PROXY_CPUS; nice $PRIO in own autogroups. REPS=$REPS, target order rotated per repetition. A run during which processes not started here used more than ${FOREIGN_MAX}% of a CPU is *disturbed* (retried up to $MAX_RETRIES×, used only when no clean run exists)."
  if [[ -s $OUT_DIR/.problems ]]; then
    echo
    echo "Problems:"
    echo
    sed 's/^/- /' "$OUT_DIR/.problems"
  fi
  echo
} >"$OUT_DIR/last-$RUN_NAME.meta.md"
"$PY" "$BPY" report "$RESULTS" "$OUT_DIR/last-$RUN_NAME.meta.md" >"$OUT_DIR/last-$RUN_NAME.md"
for s in "${SCEN[@]}"; do   # scenario-specific tables (alloc, control), if any
  [[ -s $OUT_DIR/last-$s.extra.md ]] && { echo; cat "$OUT_DIR/last-$s.extra.md"; } >>"$OUT_DIR/last-$RUN_NAME.md"
done
cat "$OUT_DIR/last-$RUN_NAME.md"
BENCH_NAME=run log "wrote $OUT_DIR/last-$RUN_NAME.md (paste into RESULTS.md), rows: $RESULTS, configs and logs: $LOGS_ROOT/"
exit "$worst"
