#!/usr/bin/env python3
"""Event rules helper of scenarios/events.sh (stdlib only): conf, receiver, latency, flaky.

The receiver is Tests/Fixtures/webhook_receiver.py (one JSON line per request in its log)."""
import json, os, signal, subprocess, sys, time
from datetime import datetime

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from control import UDSConnection  # the control socket client, written once
from fleet import call, metric     # one request on a keep-alive connection; one metric's value

RECEIVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Tests", "Fixtures", "webhook_receiver.py")

def conf(out, sock, state, port, rules):
    """RULES: NAME=RECEIVER_PORT:TYPES(+-separated) ... -> one webhook rule each."""
    L = ["node: { workers: 1 }",
         "control: { socket: %s, state: %s }" % (sock, state),
         "listeners:",
         "  - { name: front, protocol: tcp, bind: \"127.0.0.1:%d\", default: { forward: app } }" % port,
         "target_groups:",
         "  - { name: app, protocol: tcp, health_check: off, deregistration_delay: 0s, targets: [] }",
         "events:",
         "  rules:"]
    for r in rules:
        name, rest = r.split("=")
        rport, types = rest.split(":")
        L += ["    - name: %s" % name,
              "      match: { type: [%s] }" % ", ".join(types.split("+")),
              "      deliver: { webhook: \"http://127.0.0.1:%s/hook\" }" % rport]
    L += ["  retry: { attempts: 1000, backoff: 10ms, max_backoff: 100ms }"]
    with open(out, "w") as f:
        f.write("\n".join(L) + "\n")

def start_receiver(port, log, extra=()):
    """Starts the receiver on PORT (0: any) -> (process, port)."""
    p = subprocess.Popen([sys.executable, RECEIVER, "--port", str(port), "--log", log] + list(extra),
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True)
    line = p.stdout.readline().decode()
    if not line.startswith("READY "):
        raise SystemExit("receiver did not start: %r" % line)
    return p, int(line.split()[1])

def stop_receiver(p):
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()

def read_log(log):
    out = []
    try:
        with open(log) as f:
            for line in f:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
    except FileNotFoundError:
        pass
    return out

def event_epoch(t):
    """RFC 3339 UTC with milliseconds -> seconds since the epoch."""
    return datetime.strptime(t, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=__import__("datetime").timezone.utc).timestamp()

def pct(xs, q):
    return xs[min(len(xs) - 1, int(len(xs) * q))] if xs else float("nan")

def seq(event_id):
    return int(event_id.rsplit("-", 1)[1])

def latency(sock, log, n, gap_ms, timeout=60.0):
    """N registrations (one keep-alive control connection, GAP_MS apart), then waits until the receiver
    logged N deliveries -> 'p50_ms p99_ms max_ms delivered n'."""
    a = UDSConnection(sock, timeout=30)
    for i in range(n):
        st, _ = call(a, "POST", "/v1/target-groups/app/targets",
                     json.dumps({"address": "10.1.%d.%d:8080" % (i // 250, i % 250 + 1)}).encode())
        if st not in (200, 201):
            print("registration answered %d" % st, file=sys.stderr)
        time.sleep(gap_ms / 1000.0)
    t0 = time.time()
    got = []
    while time.time() - t0 < timeout:
        got = [e for e in read_log(log) if e.get("answered") == "ok"]
        if len(got) >= n:
            break
        time.sleep(0.05)
    lat = sorted((e["arrival"] - event_epoch(e["time"])) * 1e3 for e in got)
    print("%.2f %.2f %.2f %d %d" % (pct(lat, 0.5), pct(lat, 0.99), lat[-1] if lat else float("nan"), len(got), n))

def flaky(sock, log, port, n_events, restart_at, fail_rate, timeout=600.0):
    """N_EVENTS/2 register + deregister pairs (distinct addresses) through one keep-alive control
    connection; the receiver fails FAIL_RATE of its answers (500s, then after its restart cut-short
    answers) and is SIGKILLed after RESTART_AT events, started again on the same port 1 s later.
    Waits until every event was answered 200 -> 'events delivered_unique lost out_of_order duplicates
    attempts failed_answers publish_s drain_s'."""
    pairs = n_events // 2
    extra = ["--fail-rate", str(fail_rate), "--fail-mode", "status", "--seed", "7"]
    rec, _ = start_receiver(port, log, extra)
    a = UDSConnection(sock, timeout=30)
    t0 = time.time()
    expected = []
    restarted = False
    for i in range(pairs):
        addr = "10.2.%d.%d:8080" % (i // 250, i % 250 + 1)
        for method, path, body in (("POST", "/v1/target-groups/app/targets", json.dumps({"address": addr}).encode()),
                                   ("DELETE", "/v1/target-groups/app/targets/" + addr, None)):
            st, _ = call(a, method, path, body)
            if st not in (200, 201):
                print("%s answered %d" % (method, st), file=sys.stderr)
        expected += [("registration", addr), ("deregistration", addr)]
        if not restarted and len(expected) >= restart_at:
            stop_receiver(rec)
            time.sleep(1.0)
            # the second half fails by cut-short answers instead of 500s
            rec, _ = start_receiver(port, log, ["--fail-rate", str(fail_rate), "--fail-mode", "close", "--seed", "8"])
            restarted = True
    publish_s = time.time() - t0
    want = set(expected)
    ok = []
    while time.time() - t0 < timeout:
        ok = [e for e in read_log(log) if e.get("answered") == "ok"]
        if want <= {(e.get("type"), e.get("target")) for e in ok}:
            break
        time.sleep(0.2)
    drain_s = time.time() - t0 - publish_s
    stop_receiver(rec)
    all_requests = read_log(log)
    seen = {(e.get("type"), e.get("target")) for e in ok}
    lost = len(want - seen)
    # Out of order: the ids answered 200, in arrival order, must rise (a repeat of the last is a duplicate).
    out_of_order, dups, last = 0, 0, -1
    for e in ok:
        s = seq(e["id"])
        if s == last:
            dups += 1
        elif s < last:
            out_of_order += 1
        else:
            last = s
    failed = sum(1 for e in all_requests if e.get("answered") != "ok")
    print("%d %d %d %d %d %d %d %.1f %.1f" % (len(expected), len(seen & want), lost, out_of_order, dups,
                                             len(all_requests), failed, publish_s, drain_s))

def main():
    cmd, a = sys.argv[1], sys.argv[2:]
    if cmd == "conf":            # OUT SOCK STATE PORT RULE...
        conf(a[0], a[1], a[2], int(a[3]), a[4:])
    elif cmd == "latency":       # SOCK LOG N GAP_MS
        latency(a[0], a[1], int(a[2]), float(a[3]))
    elif cmd == "flaky":         # SOCK LOG PORT N_EVENTS RESTART_AT FAIL_RATE
        flaky(a[0], a[1], int(a[2]), int(a[3]), int(a[4]), float(a[5]))
    elif cmd == "metric":        # SOCK NAME
        print(metric(a[0], a[1]))
    else:
        raise SystemExit("unknown command " + cmd)

if __name__ == "__main__":
    main()
