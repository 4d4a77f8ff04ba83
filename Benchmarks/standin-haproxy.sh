#!/usr/bin/env bash
# A stand-in candidate for l4-bench.sh: HAProxy configured only from the L4B_*
# variables the script exports, to prove the script without sluiced:
#
#   CANDIDATE_NAME=haproxy-standin CANDIDATE_CMD="exec $PWD/Benchmarks/standin-haproxy.sh" Benchmarks/l4-bench.sh
#
# Contract for any CANDIDATE_CMD: stay in the foreground (use exec), listen on
# L4B_LISTEN_{IPERF,WEB,IDLE}, forward to L4B_BACKEND_IPERF, round robin over
# L4B_BACKENDS_WEB (comma-separated), and to L4B_BACKEND_IDLE; use L4B_WORKERS
# workers; allow L4B_MAXCONN connections; exit on SIGTERM. L4B_TMP is a scratch
# dir; L4B_SLUICE_CONFIG is the Sluice YAML the script wrote for these ports.
set -euo pipefail
cfg="$L4B_TMP/standin-haproxy.cfg"
web="" i=0
IFS=, read -ra addrs <<<"$L4B_BACKENDS_WEB"
for a in "${addrs[@]}"; do i=$((i + 1)); web+="    server s$i $a"$'\n'; done
cat >"$cfg" <<CFG
global
    nbthread $L4B_WORKERS
    maxconn $L4B_MAXCONN
defaults
    mode tcp
    timeout connect 5s
    timeout client 5m
    timeout server 5m
    maxconn $L4B_MAXCONN
listen iperf
    bind $L4B_LISTEN_IPERF
    server s1 $L4B_BACKEND_IPERF
listen web
    bind $L4B_LISTEN_WEB
    balance roundrobin
$web
listen idle
    bind $L4B_LISTEN_IDLE
    server s1 $L4B_BACKEND_IDLE
CFG
exec haproxy -db -f "$cfg"
