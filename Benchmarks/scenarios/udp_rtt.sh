#!/usr/bin/env bash
# udp_rtt: UDP round trips through a udp listener to an echo backend, UDP_FLOWS (16) flows x UDP_INFLIGHT (4) in flight, 64 B — round trips/s, proxy CPU µs/round trip.
#
# lib/udpload.c: UDP_FLOWS sockets, each connect()ed to the proxy's UDP listener from its own port
# (one flow each), UDP_INFLIGHT datagrams of UDP_PAYLOAD (64) bytes in flight per flow, every reply
# sends the next one on its flow; UDP_WARMUP_MS (500) ms unmeasured, then DUR_UDP (= DUR, 5) s.
# Replies are checked (length, flow, sequence number, payload pattern): one bad reply fails the run
# (bad_replies(N)); lost datagrams (nothing on a flow for 200 ms) count as errors (> 1 %: errors).
# Backend: udpload in echo mode (recvmmsg/sendmmsg, one socket) on SERVER_CPUS. Candidates: direct
# (client -> echo), NGINX's stream UDP proxy (`listen ... udp reuseport`, proxy_timeout 120s,
# proxy_responses unset), Sluice (`protocol: udp` listener -> `udp` group, health_check: off);
# HAProxy: n/a (no UDP proxy in its free version). CPU µs per round trip divides the proxy's CPU
# over the load generator's whole run by the round trips of the whole run (warm-up included).
# Bar (issue 9): Sluice >= 1.5x NGINX's round trips/s at <= 0.7x its CPU per round trip
# (ENFORCE=1: exit 1 when missed).
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
bench_init udp_rtt
DUR=${DUR_UDP:-${DUR:-5}}
UDP_FLOWS=${UDP_FLOWS:-16}
UDP_INFLIGHT=${UDP_INFLIGHT:-4}
UDP_PAYLOAD=${UDP_PAYLOAD:-64}
UDP_WARMUP_MS=${UDP_WARMUP_MS:-500}
ENFORCE=${ENFORCE:-0}
[[ " $PROXIES " == *" sluice "* ]] && ensure_sluiced
build_udpload
start_udp_echo_backend
start_candidates "udp=127.0.0.1:$BE_UDP"
record_skipped round_trips/s rtt
for c in "${CANDS[@]}"; do   # one short run through each proxy: replies arrive and are the datagrams sent
  log "$c UDP check (1 flow, 1 in flight, 0.3 s): $("$UDPLOAD" load 127.0.0.1 "${PROXY_PORTS[$c]}" 0.3 1 1 "$UDP_PAYLOAD" 0 2>&1)"
done
LOAD_TIMEOUT=$((DUR + 20))
for ((rep = 1; rep <= REPS; rep++)); do
  for c in $(rotated "$rep" direct "${CANDS[@]}"); do
    if [[ $c == direct ]]; then port=$BE_UDP; else port=${PROXY_PORTS[$c]}; fi
    load_cell "$c" "$rep" udpload round_trips/s rtt \
      "$UDPLOAD" load 127.0.0.1 "$port" "$DUR" "$UDP_FLOWS" "$UDP_INFLIGHT" "$UDP_PAYLOAD" "$UDP_WARMUP_MS"
    sleep 0.2
  done
done
for c in "${CANDS[@]}"; do stop_proxy "$c"; done
report_bars "UDP round trips, Sluice vs NGINX (bar: ≥ 1.5× the round trips at ≤ 0.7× the CPU per round trip)" \
  sluice/nginx:value'>='1.5 sluice/nginx:cpu'<='0.7 || { ((ENFORCE)) && exit 1; }
exit 0
