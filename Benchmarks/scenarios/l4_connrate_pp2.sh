#!/usr/bin/env bash
# l4_connrate_pp2: l4_connrate with a PROXY v2 header sent to the backend on every connection — conn/s, proxy CPU µs/connection; Sluice also without PROXY (sluice-plain) in the same rotation.
#
# As l4_connrate (wrk -H 'Connection: close' GET /small through a tcp listener, round robin over
# two nginx backends), but the backends are their `listen ... proxy_protocol` ports (a connection
# without a header is closed, so every request that succeeds proves the header) and every proxy
# sends the header: HAProxy `send-proxy-v2`, Sluice `proxy_protocol: v2` on the tcp listener, NGINX
# stream `proxy_protocol on` — v1, NGINX has no v2 sender. sluice-plain is the same Sluice config
# without PROXY to the plain ports, measured in the same rotation: "cost of PROXY v2" = sluice ÷
# sluice-plain (bar, issue 9: < 5 % of the connection rate, i.e. ≥ 0.95×; ENFORCE=1: exit 1 when
# missed). No direct cell (l4_connrate has it).
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
bench_init l4_connrate_pp2
DUR=${DUR_CONN:-${DUR:-5}}
ENFORCE=${ENFORCE:-0}
need wrk nginx
[[ " $PROXIES " == *" haproxy "* ]] && need haproxy
[[ " $PROXIES " == *" sluice "* ]] && ensure_sluiced
BE_ACCEPT_PROXY=1 start_web_backends 2
CELL_NOTE=([haproxy]=sends_PROXY_v2 [nginx]="sends_PROXY_v1_(NGINX_has_no_v2_sender)" [sluice]=sends_PROXY_v2
  [sluice-plain]=no_PROXY_header)
SEND_PROXY=v2 start_candidates "tcp=$BE_PP_CSV"
record_skipped conn/s conn
pp=("${CANDS[@]}")
if [[ " $PROXIES " == *" sluice "* ]]; then
  PROXIES=sluice-plain start_candidates "tcp=$BE_CSV"
  CANDS=("${pp[@]}" "${CANDS[@]}")
fi
wrk_rotation /small conn/s "${CANDS[@]}" -- -H "Connection: close"
for c in "${CANDS[@]}"; do stop_proxy "$c"; done
report_bars "Cost of sending PROXY v2 (bar: < 5 % of the connection rate)" \
  sluice/sluice-plain:value'>='0.95 sluice/sluice-plain:cpu || { ((ENFORCE)) && exit 1; }
exit 0
