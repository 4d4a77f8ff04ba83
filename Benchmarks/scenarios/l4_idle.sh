#!/usr/bin/env bash
# l4_idle: memory per idle proxied TCP connection. Per repetition a fresh proxy; VmRSS after 1 s is
# the base; then IDLE_CONNS (9000) client connections in batches of IDLE_BATCH (500), each batch only
# once the backend (a holder that accepts and holds) reports the previous ones accepted — so the
# proxy has accepted and connected all N; then VmRSS. Result: (RSS with N − base) ÷ N, KiB/conn.
# The fd hard limit must allow 2 fds per connection in the proxy.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
bench_init l4_idle
IDLE_CONNS=${IDLE_CONNS:-9000}
IDLE_BATCH=${IDLE_BATCH:-500}
IDLE_TIMEOUT_S=${IDLE_TIMEOUT_S:-60}
[[ " $PROXIES " == *" haproxy "* ]] && need haproxy
[[ " $PROXIES " == *" sluice "* ]] && ensure_sluiced
hard=$(ulimit -Hn)
[[ $hard == unlimited ]] || ((2 * IDLE_CONNS + 200 <= hard)) || die "IDLE_CONNS=$IDLE_CONNS needs $((2 * IDLE_CONNS + 200)) fds, the hard limit is $hard"
start_holder
holder_open() { local a o; read -r a o <"$T/holder.status" 2>/dev/null || { echo -1; return; }; echo "$o"; }
for ((rep = 1; rep <= REPS; rep++)); do
  for c in $(rotated "$rep" $PROXIES); do
    for ((i = 0; i < 300; i++)); do (($(holder_open) == 0)) && break; sleep 0.1; done
    start_proxy "$c" "tcp=127.0.0.1:$BE_IDLE"; rc=$?
    ((rc == 3)) && continue
    if ((rc != 0)); then record candidate="$c" rep="$rep" attempt=1 status=start_failed unit=KiB/conn better=lower; stop_proxy "$c"; continue; fi
    sleep 1   # let a freshly started daemon finish its start-up before the baseline
    pg=${PROXY_PID[$c]}
    base=$(rss_kib "$pg")
    lf="$T/runs/idle_${c}_r$rep.log"
    start_bg "idle-client($IDLE_CONNS)" "$CLIENT_CPUS" "$lf" \
      "$PY" "$BPY" idle-client 127.0.0.1 "${PROXY_PORTS[$c]}" "$IDLE_CONNS" "$T/holder.status" "$IDLE_BATCH" "$IDLE_TIMEOUT_S"
    cl=$LAST_PID
    line=
    for ((i = 0; i < (IDLE_TIMEOUT_S + 5) * 20; i++)); do
      line=$(grep -m1 -E '^(ready|fail)' "$lf" 2>/dev/null)
      [[ -n $line ]] && break
      kill -0 "$cl" 2>/dev/null && kill -0 "$pg" 2>/dev/null || break
      sleep 0.05
    done
    st=ok; m=""; k=nan
    if [[ $line == ready* ]]; then
      m=$(mem_kv "$pg")
      k=$(calc "printf \"%.2f\", ($(kv rss_kib "$m") - $base) / $IDLE_CONNS")
      (($(holder_open) < IDLE_CONNS)) && st="backend_lost_conns($(holder_open))"
    else
      kill -0 "$pg" 2>/dev/null && st="not_ready" || st=proxy_died
    fi
    record candidate="$c" rep="$rep" attempt=1 status="$st" unit=KiB/conn value="$k" better=lower \
      rss_before_kib="$base" rss_after_kib="$(kv rss_kib "$m")" note="${IDLE_CONNS}_idle_conns,_fds_$(kv fds "$m"),_connected_in_$(kv secs "$line")_s"
    log "$c r$rep $st base=${base}KiB rss=$(kv rss_kib "$m")KiB KiB/conn=$k (${line:-no answer})"
    stop_pid "$cl" 5
    stop_proxy "$c"
  done
done
