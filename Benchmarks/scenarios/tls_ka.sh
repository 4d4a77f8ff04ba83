#!/usr/bin/env bash
# tls_ka: HTTP/1.1 keep-alive over TLS 1.3, 100 B body — req/s, p50/p99, proxy CPU µs/request.
# wrk -t1 -cCONNS(64) -dDUR(5)s --latency https://...: one handshake per connection, then
# keep-alive; the proxies terminate TLS and keep plain HTTP/1.1 connections to two nginx backends.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
bench_init tls_ka
DUR=${DUR:-5}
need wrk
load_cmd() { CMD=(wrk -t1 -c"$CONNS" -d"${DUR}s" --latency --timeout 5s "https://127.0.0.1:$1/small"); }
run_tls_side_by_side wrk req/s req
