#!/usr/bin/env bash
# l4_connrate: one TCP connection per request through a TCP (L4) listener, client side and backend
# side — wrk -H 'Connection: close' GET /small: conn/s, proxy CPU µs/connection. NGINX only with
# its stream module (Debian: libnginx-mod-stream).
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
bench_init l4_connrate
DUR=${DUR_CONN:-${DUR:-5}}
run_side_by_side tcp /small conn/s -H "Connection: close"
report_bars "L4 connection rate, Sluice vs HAProxy (bar, issue 9: ≥ 1.1× the conn/s at ≤ its CPU per connection)" \
  sluice/haproxy:value'>='1.1 sluice/haproxy:cpu'<='1.0 || { ((${ENFORCE:-0})) && exit 1; }
exit 0
