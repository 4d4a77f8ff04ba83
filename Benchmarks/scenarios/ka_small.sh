#!/usr/bin/env bash
# ka_small: L7 HTTP/1.1 keep-alive, 100 B body — req/s, p50/p99, proxy CPU µs/request.
# wrk -t1 -cCONNS -dDUR(10)s --latency; direct, HAProxy (mode http, http-reuse always), NGINX
# (upstream keepalive), Sluice (protocol: http), each round robin over two nginx backends.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
bench_init ka_small
DUR=${DUR_KA:-${DUR:-10}}
run_side_by_side http /small req/s
