#!/usr/bin/env bash
# l4_iperf: L4 TCP throughput, 1 stream — iperf3 -c -t DUR_IPERF(10) through a TCP listener to
# `iperf3 -s`: Gbit/s, proxy CPU µs per MiB moved. Direct = the same client against iperf3 -s.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
bench_init l4_iperf
DUR_IPERF=${DUR_IPERF:-10}
need iperf3
[[ " $PROXIES " == *" haproxy "* ]] && need haproxy
[[ " $PROXIES " == *" sluice "* ]] && ensure_sluiced
start_iperf_backend
start_candidates "tcp=127.0.0.1:$BE_IPERF"
record_skipped Gbit/s MiB
LOAD_TIMEOUT=$((DUR_IPERF + 20))
for ((rep = 1; rep <= REPS; rep++)); do
  for c in $(rotated "$rep" direct "${CANDS[@]}"); do
    pg=""; port=$BE_IPERF
    [[ $c != direct ]] && { pg=${PROXY_PID[$c]}; port=${PROXY_PORTS[$c]}; }
    for ((att = 1; att <= MAX_RETRIES + 1; att++)); do
      measure "$c" "$rep" iperf "$pg" -- iperf3 -c 127.0.0.1 -p "$port" -t "$DUR_IPERF" -J --connect-timeout 3000
      mib=$(calc "printf \"%.1f\", $(kv bytes "$M") / 1048576")
      record candidate="$c" rep="$rep" attempt="$att" unit=Gbit/s value="$(kv gbps "$M")" ops="$mib" op_unit=MiB \
        $(for k in status cpu_s rss_before_kib rss_after_kib errors foreign_cpu client_cpu; do echo "$k=$(kv $k "$M")"; done)
      log "$c r$rep/a$att $(kv status "$M") Gbit/s=$(kv gbps "$M") cpu_s=$(kv cpu_s "$M") foreign=$(kv foreign_cpu "$M")%"
      [[ $(kv status "$M") == disturbed ]] || break
    done
    sleep 0.5
  done
done
for c in "${CANDS[@]}"; do stop_proxy "$c"; done
