#!/usr/bin/env bash
# tls_resumed: resumed TLS 1.3 handshakes (session tickets, PSK with ECDHE) + one GET /small each — conn/s, proxy CPU µs/handshake.
# lib/tlsload.c in `resume` mode: like tls_handshake, but every connection offers the ticket of
# its thread's previous one; the run counts only if >= 95 % of connections were resumptions
# (note: resumed N/M). A C client with TLS_CONNS (32) in flight: stable, cheap per connection, and
# it says how many handshakes really resumed (openssl s_time -reuse is one connection at a time,
# a Python loop spends more CPU than the proxies on the one client core).
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
bench_init tls_resumed
DUR=${DUR:-5}
build_tlsload
TLS_RESUMED=all
load_cmd() { CMD=("$TLSLOAD" 127.0.0.1 "$1" /small "$TLS_CONNS" "$DUR" resume); }
run_tls_side_by_side tlsload conn/s conn
