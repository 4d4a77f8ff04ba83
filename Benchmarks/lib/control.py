#!/usr/bin/env python3
"""Control-plane helper of scenarios/control.sh (stdlib only): conf, register, count, hup, loop."""
import http.client, json, os, signal, socket, statistics, subprocess, sys, time

class UDSConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=30):
        super().__init__("sluice", timeout=timeout)
        self.path = path
    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.path)
        self.sock = s

def addr(prefix, i):
    return "%s.%d.%d:8080" % (prefix, i // 250, i % 250 + 1)

def conf(out, sock, state, port, rules, targets, tprefix, backend, extra_port, extra_rule):
    L = ["node: { workers: 1 }",
         "control: { socket: %s, state: %s }" % (sock, state),
         "listeners:",
         "  - name: web", "    protocol: http", "    bind: 127.0.0.1:%d" % port, "    access_log: off"]
    if rules or extra_rule:
        L.append("    rules:")
        for i in range(1, rules + 1):
            L.append('      - { priority: %d, when: { path: ["/p%d/*"] }, then: { forward: app } }' % (i, i))
        if extra_rule:
            L.append('      - { priority: %d, when: { path: ["/extra/*"] }, then: { forward: app } }' % (rules + 1))
    L.append("    default: { forward: app }")
    if extra_port:
        L += ["  - name: extra", "    protocol: http", "    bind: 127.0.0.1:%d" % extra_port,
              "    access_log: off", "    default: { forward: app }"]
    L += ["target_groups:", "  - name: app", "    protocol: http", "    health_check: off", "    targets:"]
    if backend:
        L.append('      - { address: "%s" }' % backend)
    for i in range(targets):
        L.append('      - { address: "%s" }' % addr(tprefix, i))
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(L) + "\n")
    os.replace(tmp, out)   # atomic: a SIGHUP never reads half a file

def count_reloaded(logf):
    with open(logf, errors="replace") as f:
        return sum(1 for l in f if " reloaded generation=" in l)

def refused(logf):
    with open(logf, errors="replace") as f:
        return sum(1 for l in f if "reload refused" in l)

def hup_and_wait(pid, logf, timeout=10.0):
    """SIGHUP, then poll the log until one more 'reloaded' line: seconds, or None."""
    n0 = count_reloaded(logf)
    t0 = time.perf_counter()
    os.kill(pid, signal.SIGHUP)
    while time.perf_counter() - t0 < timeout:
        if count_reloaded(logf) > n0:
            return time.perf_counter() - t0
        time.sleep(0.0002)
    return None

def post_reload(conn):
    conn.request("POST", "/v1/reload", body=b"", headers={"Content-Length": "0"})
    r = conn.getresponse()
    body = r.read()
    try:
        ok = r.status == 200 and json.loads(body).get("ok") is True
    except Exception:
        ok = False
    return ok, body

def main():
    cmd, a = sys.argv[1], sys.argv[2:]
    if cmd == "conf":
        # OUT SOCK STATE PORT RULES TARGETS TPREFIX BACKEND EXTRA_PORT EXTRA_RULE
        conf(a[0], a[1], a[2], int(a[3]), int(a[4]), int(a[5]), a[6], a[7] if a[7] != "-" else "",
             int(a[8]), a[9] == "1")
    elif cmd == "register":   # SOCK GROUP N PREFIX -> "elapsed_s created other_status conns p50_ms p99_ms"
        sock, group, n, prefix = a[0], a[1], int(a[2]), a[3]
        bodies = [json.dumps({"address": addr(prefix, i)}).encode() for i in range(n)]
        path = "/v1/target-groups/%s/targets" % group
        conn = UDSConnection(sock)
        codes, lat, connects = {}, [], 0
        orig = conn.connect
        def counting():
            nonlocal connects
            connects += 1
            orig()
        conn.connect = counting
        t0 = time.perf_counter()
        for b in bodies:
            s = time.perf_counter()
            conn.request("POST", path, body=b, headers={"Content-Type": "application/json"})
            r = conn.getresponse()
            r.read()
            lat.append(time.perf_counter() - s)
            codes[r.status] = codes.get(r.status, 0) + 1
            if r.will_close:
                conn.close()
        el = time.perf_counter() - t0
        k = max(1, min(100, n // 10))
        first, last = sum(lat[:k]) / k * 1e3, sum(lat[-k:]) / k * 1e3
        lat.sort()
        print("%.4f %d %d %d %.3f %.3f %.3f %.3f %d" % (el, codes.get(201, 0), n - codes.get(201, 0), connects,
              lat[len(lat) // 2] * 1e3, lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1e3, first, last, k))
        if set(codes) - {201}:
            print("status codes: %s" % codes, file=sys.stderr)
    elif cmd == "count":      # SOCK GROUP STATEFILE -> "api_total api_dynamic state_regs"
        conn = UDSConnection(a[0])
        conn.request("GET", "/v1/target-groups/" + a[1])
        r = conn.getresponse()
        g = json.loads(r.read())
        ts = g.get("targets", [])
        dyn = sum(1 for t in ts if not t.get("static"))
        regs = -1
        for _ in range(40):   # the state file may be written just after the answer
            try:
                with open(a[2]) as f:
                    st = json.load(f)
                regs = sum(1 for x in st.get("registrations", []) if x.get("group") == a[1])
                if regs >= dyn:
                    break
            except Exception:
                pass
            time.sleep(0.05)
        print(len(ts), dyn, regs)
    elif cmd == "hup":        # PID LOG -> ms
        d = hup_and_wait(int(a[0]), a[1])
        print("%.2f" % (d * 1e3) if d is not None else "timeout")
    elif cmd == "loop":
        # MODE(hup|post) PID LOG SOCK CONFIG CONF_A CONF_B(-) N INTERVAL_MS -> summary line
        mode, pid, logf, sock, cfg, ca, cb = a[0], int(a[1]), a[2], a[3], a[4], a[5], a[6]
        n, iv = int(a[7]), int(a[8]) / 1e3
        conn = UDSConnection(sock, timeout=60)
        lat, bad, n_logged0, ref0 = [], 0, count_reloaded(logf), refused(logf)
        start = time.perf_counter()
        for i in range(n):
            target = start + i * iv
            now = time.perf_counter()
            if target > now:
                time.sleep(target - now)
            if cb != "-":
                src = cb if i % 2 == 0 else ca
                with open(src, "rb") as f:
                    data = f.read()
                with open(cfg + ".tmp", "wb") as f:
                    f.write(data)
                os.replace(cfg + ".tmp", cfg)
            s = time.perf_counter()
            if mode == "post":
                ok, body = post_reload(conn)
                if not ok:
                    bad += 1
                    print("reload %d failed: %r" % (i, body[:300]), file=sys.stderr)
                lat.append(time.perf_counter() - s)
            else:
                os.kill(pid, signal.SIGHUP)
        total = time.perf_counter() - start
        # SIGHUPs are coalesced by a signalfd if two arrive during one reload: count the log lines
        deadline = time.perf_counter() + 10
        while count_reloaded(logf) - n_logged0 < n and time.perf_counter() < deadline:
            time.sleep(0.05)
        logged = count_reloaded(logf) - n_logged0
        lat.sort()
        p50 = "%.1f" % (lat[len(lat) // 2] * 1e3) if lat else "-"
        mx = "%.1f" % (lat[-1] * 1e3) if lat else "-"
        print("sent=%d logged=%d refused=%d bad_answers=%d span_s=%.2f post_p50_ms=%s post_max_ms=%s"
              % (n, logged, refused(logf) - ref0, bad, total, p50, mx))

if __name__ == "__main__":
    main()
