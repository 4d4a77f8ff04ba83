#!/usr/bin/env bash
# rss: resident memory after load ÷ before it (goal for Sluice ≤ 1.3×; RSS_BUDGET, ENFORCE=1 to fail).
#
# Per candidate, a fresh proxy with an http listener (round robin over two nginx backends), a tcp
# listener (same backends) and a tcp listener to iperf3 -s. VmRSS of its process group 1 s after
# start (*before*); then the L7 phase (wrk -t1 -cCONNS, RSS_DUR (5) s each: keep-alive /small,
# keep-alive /64k, Connection: close /small) and the L4 phase (wrk Connection: close through the
# tcp listener, iperf3 RSS_DUR s); then RSS_IDLE_S (5) s without load and VmRSS again (*after*).
# Result: after ÷ before; VmHWM in the note. nginx runs L7 only without its stream module.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
bench_init rss
RSS_DUR=${RSS_DUR:-${DUR:-5}}
RSS_IDLE_S=${RSS_IDLE_S:-5}
RSS_BUDGET=${RSS_BUDGET:-1.3}
ENFORCE=${ENFORCE:-0}
need wrk nginx iperf3
[[ " $PROXIES " == *" haproxy "* ]] && need haproxy
[[ " $PROXIES " == *" sluice "* ]] && ensure_sluiced
start_web_backends 2
start_iperf_backend
pin=()
((PIN)) && pin=(taskset -c "$CLIENT_CPUS")
load() {  # PORT PATH [wrk args]
  local p=$1 path=$2
  shift 2
  timeout $((RSS_DUR + 15)) "${pin[@]}" wrk -t1 -c"$CONNS" -d"${RSS_DUR}s" --timeout 5s "$@" "http://127.0.0.1:$p$path" \
    >>"$T/runs/rss_load.txt" 2>&1
}
OVER=0
for c in $PROXIES; do
  specs=("http=$BE_CSV" "tcp=$BE_CSV" "tcp=127.0.0.1:$BE_IPERF")
  phases="L7+L4"
  [[ $c == nginx && ! -f $NGINX_STREAM_MODULE ]] && specs=("http=$BE_CSV") && phases="L7_only_(no_stream_module)"
  start_proxy "$c" "${specs[@]}" || { record candidate="$c" rep=1 attempt=1 status=start_failed unit=x_after/before; stop_proxy "$c"; continue; }
  read -ra P <<<"${PROXY_PORTS[$c]}"
  pg=${PROXY_PID[$c]}
  sleep 1
  before=$(rss_kib "$pg")
  c0=$(cpu_s "$pg")
  load "${P[0]}" /small
  load "${P[0]}" /64k
  load "${P[0]}" /small -H "Connection: close"
  if ((${#P[@]} > 1)); then
    load "${P[1]}" /small -H "Connection: close"
    timeout $((RSS_DUR + 15)) "${pin[@]}" iperf3 -c 127.0.0.1 -p "${P[2]}" -t "$RSS_DUR" >>"$T/runs/rss_load.txt" 2>&1
  fi
  loaded=$(rss_kib "$pg")
  sleep "$RSS_IDLE_S"
  m=$(mem_kv "$pg")
  after=$(kv rss_kib "$m")
  st=ok
  kill -0 "$pg" 2>/dev/null || st=proxy_died
  ratio=$(calc "printf \"%.2f\", $after / $before")
  [[ $c == sluice ]] && calc "exit !($ratio > $RSS_BUDGET)" && OVER=1
  record candidate="$c" rep=1 attempt=1 status="$st" unit="x_RSS_after/before" value="$ratio" better=lower \
    cpu_s="$(calc "print $(cpu_s "$pg") - $c0")" rss_before_kib="$before" rss_after_kib="$after" \
    note="$phases,_${RSS_DUR}s_per_load,_RSS_at_end_of_load_$((loaded / 1024))_MiB,_VmHWM_$(($(kv hwm_kib "$m") / 1024))_MiB,_after_${RSS_IDLE_S}s_idle"
  log "$c: RSS before $((before / 1024)) MiB, at end of load $((loaded / 1024)) MiB, after ${RSS_IDLE_S}s idle $((after / 1024)) MiB: ${ratio}x (goal <= $RSS_BUDGET for sluice)"
  stop_proxy "$c"
done
((OVER && ENFORCE)) && exit 1
exit 0
