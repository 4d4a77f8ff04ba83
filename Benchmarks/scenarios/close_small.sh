#!/usr/bin/env bash
# close_small: L7, a new client connection per request (-H 'Connection: close'), 100 B body;
# the proxies keep their backend connections alive — req/s (= client conn/s), proxy CPU µs/request.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
bench_init close_small
DUR=${DUR:-5}
run_side_by_side http /small req/s -H "Connection: close"
