#!/usr/bin/env python3
"""A burst that waits for every answer: CONNS keep-alive clients send GET URL back to back for
SECONDS, then each finishes the request it has in flight (wrk drops those at its deadline, so
it cannot tell whether the requests still queued when the burst ends are answered).

Prints one line of key=value: sent, ok (2xx), errors (any other status, a reset, a timeout),
p50_ms, p99_ms, last_ms (how long after the burst's end the last answer came).
Usage: burst.py URL CONNS SECONDS [TIMEOUT_S]
"""
import http.client
import sys
import threading
import time
from urllib.parse import urlsplit


def main():
    url, conns, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    timeout = float(sys.argv[4]) if len(sys.argv) > 4 else 30.0
    u = urlsplit(url)
    path = u.path + ("?" + u.query if u.query else "")
    lock = threading.Lock()
    latencies, statuses = [], []
    start = time.monotonic()
    end = start + seconds

    def client():
        c = None
        while time.monotonic() < end:
            t0 = time.monotonic()
            try:
                if c is None:
                    c = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
                c.request("GET", path)
                r = c.getresponse()
                r.read()
                status = r.status
                if r.getheader("connection", "").lower() == "close":
                    c.close()
                    c = None
            except Exception:
                status = 0
                if c is not None:
                    c.close()
                c = None
            with lock:
                statuses.append(status)
                latencies.append((time.monotonic() - t0) * 1000)

    threads = [threading.Thread(target=client) for _ in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    last = (time.monotonic() - end) * 1000
    latencies.sort()

    def pct(p):
        return latencies[min(len(latencies) - 1, int(len(latencies) * p))] if latencies else 0

    ok = sum(1 for s in statuses if 200 <= s < 300)
    print(f"sent={len(statuses)} ok={ok} errors={len(statuses) - ok} p50_ms={pct(0.5):.1f} "
          f"p99_ms={pct(0.99):.1f} last_ms={last:.0f}")


if __name__ == "__main__":
    main()
