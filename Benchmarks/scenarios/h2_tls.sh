#!/usr/bin/env bash
# h2_tls: HTTP/2 over TLS 1.3 (ALPN h2), H2_CONNS (8) connections x H2_STREAMS (8) streams, 100 B body — req/s, proxy CPU µs/request.
# h2load -t1 -c8 -m8 -D DUR(5) https://.../small; a run counts only when h2 was negotiated. The
# proxies (NGINX listen ... ssl http2, HAProxy alpn h2,http/1.1, Sluice ALPN h2) forward each
# stream as HTTP/1.1 over keep-alive connections to two nginx backends.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
bench_init h2_tls
DUR=${DUR:-5}
need h2load
H2LOAD_PROTO=h2
load_cmd() { CMD=(h2load -t1 -c"$H2_CONNS" -m"$H2_STREAMS" -D "$DUR" "https://127.0.0.1:$1/small"); }
run_tls_side_by_side h2load req/s req
