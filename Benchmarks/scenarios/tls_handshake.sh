#!/usr/bin/env bash
# tls_handshake: full TLS 1.3 handshakes (ECDSA P-256, no resumption) + one GET /small each — conn/s, proxy CPU µs/handshake.
# lib/tlsload.c: TLS_CONNS (32) connections in flight for DUR (5) s, each a new connection, a full
# handshake (no session offered; h2load and wrk would resume), GET /small with Connection: close,
# read to EOF. HAProxy, NGINX, Sluice terminate TLS (https listener) over two plain nginx backends.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
bench_init tls_handshake
DUR=${DUR:-5}
build_tlsload
TLS_RESUMED=none
load_cmd() { CMD=("$TLSLOAD" 127.0.0.1 "$1" /small "$TLS_CONNS" "$DUR" new); }
run_tls_side_by_side tlsload conn/s conn
