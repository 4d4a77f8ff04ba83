#!/usr/bin/env bash
# ka_64k: L7 keep-alive, 64 KiB body (nginx sendfile) — MiB/s (wrk Transfer/sec), proxy CPU µs/request.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
bench_init ka_64k
DUR=${DUR:-5}
run_side_by_side http /64k MiB/s
