#!/usr/bin/env bash
# A stand-in candidate for l7-bench.sh: HAProxy `mode http` configured only from the
# L7B_* variables the script exports, to prove the script's candidate path without a
# working sluiced HTTP listener:
#
#   CANDIDATE_NAME=haproxy-standin CANDIDATE_CMD="exec $PWD/Benchmarks/standin-l7-haproxy.sh" Benchmarks/l7-bench.sh
#
# Contract for any CANDIDATE_CMD: stay in the foreground (use exec), serve HTTP/1.1 on
# L7B_LISTEN, round robin over L7B_BACKENDS (comma-separated, plain HTTP/1.1, keep-alive
# allowed), use L7B_WORKERS workers, allow L7B_MAXCONN connections, no access log, exit
# on SIGTERM. L7B_TMP is a scratch dir; L7B_SLUICE_CONFIG is the Sluice YAML the script
# wrote for these ports.
set -euo pipefail
cfg="$L7B_TMP/standin-haproxy.cfg"
servers="" i=0
IFS=, read -ra addrs <<<"$L7B_BACKENDS"
for a in "${addrs[@]}"; do i=$((i + 1)); servers+="    server s$i $a"$'\n'; done
cat >"$cfg" <<CFG
global
    nbthread $L7B_WORKERS
    maxconn $L7B_MAXCONN
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    timeout http-keep-alive 30s
    maxconn $L7B_MAXCONN
frontend web
    bind $L7B_LISTEN
    default_backend web
backend web
    balance roundrobin
    http-reuse always
$servers
CFG
exec haproxy -db -f "$cfg"
