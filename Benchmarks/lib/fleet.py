#!/usr/bin/env python3
"""Fleet helper of scenarios/fleet.sh (stdlib only): conf, nginx, metric, wait-metric, count,
wait-count, propagate, bulk."""
import http.client, json, os, socket, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from control import UDSConnection  # the control socket client, written once

def call(conn, method, path, body=None):
    """One request on a keep-alive connection (reconnects when the server closes): (status, body)."""
    headers = {"Content-Type": "application/json"} if body is not None else {}
    for attempt in (0, 1):
        try:
            conn.request(method, path, body=body, headers=headers)
            r = conn.getresponse()
            data = r.read()
            if r.will_close:
                conn.close()
            return r.status, data
        except (http.client.HTTPException, OSError):
            conn.close()
            if attempt:
                raise

def conf(out, name, zone, sock, state, port, endpoint, prefix):
    L = ["node: { name: %s, zone: %s, workers: 1 }" % (name, zone),
         "control: { socket: %s, state: %s }" % (sock, state),
         "registry:",
         "  etcd:",
         '    endpoints: ["%s"]' % endpoint,
         "    prefix: %s" % prefix,
         "    dial_timeout: 500ms",
         "    lease_ttl: 2s",
         "listeners:",
         "  - name: web", "    protocol: http", "    bind: 127.0.0.1:%d" % port, "    access_log: off",
         "    default: { forward: app }",
         "target_groups:",
         "  - name: app", "    protocol: http", "    health_check: off", "    cross_zone: true",
         "    targets: []"]
    with open(out, "w") as f:
        f.write("\n".join(L) + "\n")

def nginx(out, d, ports):
    """One nginx, one worker, listening on every port of PORTS (comma-separated); answers the port."""
    ls = "\n".join("    listen 127.0.0.1:%s;" % p for p in ports.split(","))
    with open(out, "w") as f:
        f.write("""worker_processes 1;
daemon off;
master_process on;
user root;
pid %(d)s/nginx.pid;
error_log %(d)s/error.log warn;
worker_rlimit_nofile 20000;
events { worker_connections 9000; }
http {
  access_log off;
  client_body_temp_path %(d)s/tmp/body;
  proxy_temp_path %(d)s/tmp/proxy;
  fastcgi_temp_path %(d)s/tmp/fastcgi;
  uwsgi_temp_path %(d)s/tmp/uwsgi;
  scgi_temp_path %(d)s/tmp/scgi;
  tcp_nodelay on;
  keepalive_requests 100000000;
  keepalive_timeout 75s;
  server {
%(ls)s
    location / { default_type text/plain; return 200 "port=$server_port\\n"; }
  }
}
""" % {"d": d, "ls": ls})

def metric(sock, name):
    st, body = call(UDSConnection(sock, timeout=5), "GET", "/metrics")
    for line in body.decode(errors="replace").splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == name:
            return parts[1]
    return "-"

def count(sock, group):
    """(all targets, registered ones not draining) of GROUP through the control API."""
    st, body = call(UDSConnection(sock, timeout=10), "GET", "/v1/target-groups/" + group)
    ts = json.loads(body).get("targets", []) if st == 200 else []
    live = sum(1 for t in ts if not t.get("static") and t.get("state") != "draining")
    return len(ts), live

def poll_b(conn, port, want):
    """One GET / on B's listener: 'hit' (200 from port WANT), 'none' (503), 'other'."""
    try:
        conn.request("GET", "/")
        r = conn.getresponse()
        body = r.read()
        if r.will_close:
            conn.close()
    except (http.client.HTTPException, OSError):
        conn.close()
        return "err"
    if r.status == 200:
        return "hit" if body.strip() == ("port=%s" % want).encode() else "other"
    return "none" if r.status == 503 else "s%d" % r.status

def propagate(sock_a, port_b, ports, timeout=10.0):
    """For each backend port: register on A, poll B until it answers from it; deregister on A,
    poll B until 503. -> 'p50_ms p99_ms max_ms min_ms ok timeouts before503 gone_p50_ms gone_max_ms
    polls register_answer_p50_ms register_answer_p99_ms hits_at_the_first_poll'."""
    a = UDSConnection(sock_a, timeout=30)
    b = http.client.HTTPConnection("127.0.0.1", port_b, timeout=5)
    lat, gone, regs, timeouts, before_ok, polls, first, odd = [], [], [], 0, 0, 0, 0, {}
    path = "/v1/target-groups/app/targets"
    for p in ports:
        addr = "127.0.0.1:%s" % p
        if poll_b(b, port_b, p) == "none":
            before_ok += 1
        t0 = time.perf_counter()
        st, body = call(a, "POST", path, json.dumps({"address": addr}).encode())
        regs.append(time.perf_counter() - t0)
        if st not in (200, 201):
            print("register %s: %d %r" % (addr, st, body[:200]), file=sys.stderr)
            timeouts += 1
            continue
        hit, n = None, 0
        while time.perf_counter() - t0 < timeout:
            res = poll_b(b, port_b, p)
            polls += 1
            n += 1
            if res == "hit":
                hit = time.perf_counter()
                first += n == 1
                break
            if res != "none":
                odd[res] = odd.get(res, 0) + 1
        if hit is None:
            timeouts += 1
            print("B never answered from %s within %.0f s" % (addr, timeout), file=sys.stderr)
        else:
            lat.append(hit - t0)
        t2 = time.perf_counter()
        st, body = call(a, "DELETE", path + "/" + addr)
        if st not in (200, 202, 204):
            print("deregister %s: %d %r" % (addr, st, body[:200]), file=sys.stderr)
        while time.perf_counter() - t2 < timeout:
            if poll_b(b, port_b, p) == "none":
                gone.append(time.perf_counter() - t2)
                break
        else:
            print("B still answered from %s %.0f s after the deregistration" % (addr, timeout), file=sys.stderr)
    if odd:
        print("unexpected answers of B while waiting: %s" % odd, file=sys.stderr)
    lat.sort(); gone.sort(); regs.sort()
    pct = lambda xs, q: xs[min(len(xs) - 1, int(len(xs) * q))] * 1e3 if xs else float("nan")
    print("%.2f %.2f %.2f %.2f %d %d %d %.2f %.2f %d %.2f %.2f %d" % (pct(lat, 0.5), pct(lat, 0.99), (lat[-1] * 1e3 if lat else float("nan")),
          (lat[0] * 1e3 if lat else float("nan")), len(lat), timeouts, before_ok, pct(gone, 0.5),
          (gone[-1] * 1e3 if gone else float("nan")), polls, pct(regs, 0.5), pct(regs, 0.99), first))

def bulk(sock_a, sock_b, n, prefix, timeout=60.0):
    """N registrations on A one after another over one keep-alive connection, then poll B's
    GET /v1/target-groups/app until it lists all N.
    -> 'total_s until_b_s answered_2xx answered_201 other conns b_count p50_ms p99_ms first_k_ms last_k_ms k'."""
    a = UDSConnection(sock_a, timeout=30)
    connects = 0
    orig = a.connect
    def counting():
        nonlocal connects
        connects += 1
        orig()
    a.connect = counting
    path = "/v1/target-groups/app/targets"
    bodies = [json.dumps({"address": "%s.%d.%d:8080" % (prefix, i // 250, i % 250 + 1)}).encode() for i in range(n)]
    codes, lat = {}, []
    t0 = time.perf_counter()
    for b in bodies:
        s = time.perf_counter()
        st, _ = call(a, "POST", path, b)
        lat.append(time.perf_counter() - s)
        codes[st] = codes.get(st, 0) + 1
    total = time.perf_counter() - t0
    k = max(1, min(100, n // 10))
    first, last = sum(lat[:k]) / k * 1e3, sum(lat[-k:]) / k * 1e3
    lat.sort()
    seen, until = 0, None
    while time.perf_counter() - t0 < total + timeout:
        _, seen = count(sock_b, "app")
        if seen >= n:
            until = time.perf_counter() - t0
            break
        time.sleep(0.005)
    if set(codes) - {200, 201}:
        print("status codes: %s" % codes, file=sys.stderr)
    ok = codes.get(200, 0) + codes.get(201, 0)   # Fleet.register may answer 200 for a fresh address (its watch applied the put first)
    print("%.4f %s %d %d %d %d %d %.2f %.2f %.2f %.2f %d" % (total, "%.4f" % until if until is not None else "timeout",
          ok, codes.get(201, 0), n - ok, connects, seen, lat[len(lat) // 2] * 1e3,
          lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1e3, first, last, k))

def register_all(sock, ports):
    """Registers 127.0.0.1:PORT for each port on A -> number of 2xx answers."""
    a = UDSConnection(sock, timeout=30)
    ok = 0
    for p in ports:
        st, _ = call(a, "POST", "/v1/target-groups/app/targets", json.dumps({"address": "127.0.0.1:%s" % p}).encode())
        ok += st in (200, 201)
    print(ok)

def main():
    cmd, a = sys.argv[1], sys.argv[2:]
    if cmd == "conf":            # OUT NAME ZONE SOCK STATE PORT ENDPOINT PREFIX
        conf(a[0], a[1], a[2], a[3], a[4], int(a[5]), a[6], a[7])
    elif cmd == "nginx":         # OUT DIR PORTS(csv)
        nginx(a[0], a[1], a[2])
    elif cmd == "metric":        # SOCK NAME -> value or -
        print(metric(a[0], a[1]))
    elif cmd == "wait-metric":   # SOCK NAME VALUE TIMEOUT_S -> seconds waited, or timeout
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < float(a[3]):
            try:
                if metric(a[0], a[1]) == a[2]:
                    print("%.3f" % (time.perf_counter() - t0)); return
            except (OSError, http.client.HTTPException, ValueError):
                pass
            time.sleep(0.02)
        print("timeout")
    elif cmd == "count":         # SOCK GROUP -> "all registered_not_draining"
        print("%d %d" % count(a[0], a[1]))
    elif cmd == "wait-count":    # SOCK GROUP N TIMEOUT_S -> seconds waited, or timeout
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < float(a[3]):
            if count(a[0], a[1])[1] >= int(a[2]):
                print("%.3f" % (time.perf_counter() - t0)); return
            time.sleep(0.02)
        print("timeout")
    elif cmd == "propagate":     # SOCK_A PORT_B PORTS(csv)
        propagate(a[0], int(a[1]), a[2].split(","))
    elif cmd == "bulk":          # SOCK_A SOCK_B N PREFIX
        bulk(a[0], a[1], int(a[2]), a[3])
    elif cmd == "register-all":  # SOCK PORTS(csv)
        register_all(a[0], a[1].split(","))
    else:
        sys.exit("unknown command " + cmd)

if __name__ == "__main__":  # also imported by events.py for call and metric
    main()
