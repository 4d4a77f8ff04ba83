#!/usr/bin/env bash
# ka_small: L7 HTTP/1.1 keep-alive, 100 B body — req/s, p50/p99, proxy CPU µs/request.
# wrk -t1 -cCONNS -dDUR(10)s --latency; direct, HAProxy (mode http, http-reuse always), NGINX
# (upstream keepalive), Sluice (protocol: http), each round robin over two nginx backends.
# SURGE=1 adds sluice-surge to the same rotation: the Sluice config with a surge queue configured
# but empty (`max_per_target: 0`, `surge_queue: { size: 1024 }`), and reports sluice-surge ÷ sluice
# (issue 11 bar: within 3 % of the request rate, i.e. ≥ 0.97×; ENFORCE=1: exit 1 when missed).
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
bench_init ka_small
DUR=${DUR_KA:-${DUR:-10}}
if ((${SURGE:-0})) && [[ " $PROXIES " == *" sluice "* ]]; then
  need wrk nginx
  [[ " $PROXIES " == *" haproxy "* ]] && need haproxy
  ensure_sluiced
  start_web_backends 2
  CELL_NOTE[sluice-surge]=empty_surge_queue_configured
  start_candidates "http=$BE_CSV"
  record_skipped req/s
  plain=("${CANDS[@]}")
  SLUICE_GROUP_EXTRA=$'max_per_target: 0\nsurge_queue: { size: 1024, timeout: 5s }' PROXIES=sluice-surge \
    start_candidates "http=$BE_CSV"
  CANDS=("${plain[@]}" "${CANDS[@]}")
  wrk_rotation /small req/s direct "${CANDS[@]}" --
  for c in "${CANDS[@]}"; do stop_proxy "$c"; done
  report_bars "Cost of an empty surge queue (bar: within 3 % of the request rate)" \
    sluice-surge/sluice:value'>='0.97 sluice-surge/sluice:cpu || { ((${ENFORCE:-0})) && exit 1; }
  exit 0
fi
run_side_by_side http /small req/s
