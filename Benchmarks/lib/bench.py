#!/usr/bin/env python3
"""Shared helper of Benchmarks/run.sh and its scenarios (stdlib only).

  exec NICE CPUS CMD...          new session, nice NICE (process + its own autogroup),
                                 pinned to CPUS ("" = unpinned), then exec CMD (same PID)
  run [opts] -- CMD...           run a load generator like `exec` would, bounded by
                                 --timeout; print key=value: rc, elapsed, client CPU,
                                 CPU seconds of each --group NAME=PGID,..., per-core busy %,
                                 and the CPU used meanwhile by processes NOT started by the
                                 harness (--root PID and its descendants are "ours")
  parse iperf|wrk|h2load|tlsload|udpload FILE
                                 key=value from iperf3 -J / wrk / h2load / lib/tlsload.c /
                                 lib/udpload.c output (rps, [mibps,] p50_ms, p99_ms, requests,
                                 errors; h2load: proto; tlsload: resumed; udpload: ops, lost,
                                 late, bad)
  free-ports N                   N distinct ports on 127.0.0.1, free for TCP and UDP (bound
                                 together, released)
  cpu PGID                       utime+stime (s) summed over a process group (/proc/PID/stat)
  mem PGID                       VmRSS/VmHWM (KiB) and open fds summed over a process group
  holder HOST PORT STATUSFILE    backend for the idle test: accepts and holds every
                                 connection; writes "accepted open" to STATUSFILE
  idle-client HOST PORT N STATUSFILE BATCH TIMEOUT
                                 opens N idle connections in batches of BATCH; after
                                 each batch waits until the holder reports them open
                                 (end-to-end pacing); prints "ready ..." then holds them
  probe PORT N                   N HTTP requests, one connection each: X-Backend values
  http-load HOST PORT PATH N CONNS [close]
                                 exactly N HTTP/1.1 GETs over CONNS connections (keep-alive,
                                 or a new connection per request with "close"): deterministic
                                 request count for the allocation budget
  nginx-accepts URL              "accepts" of an nginx stub_status page
  report RESULTS META            the markdown report (one row per scenario x candidate)
  bars RESULTS SCENARIO TITLE SPEC...
                                 a markdown list comparing cells of SCENARIO, medians as in the
                                 report; SPEC = CAND/REF:value|cpu[>=|<=X] (result or CPU µs/op
                                 of CAND ÷ REF, with an optional bar); exit 1 when a bar is missed
"""
import json
import math
import os
import re
import resource
import select
import selectors
import signal
import socket
import statistics
import sys
import time

CLK = os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------------ priority
def _prio_pin(nice, cpus):
    """In the calling process: own session/autogroup, nice, CPU affinity."""
    try:
        os.setsid()
    except OSError:
        pass  # already a process-group leader
    n = int(nice)
    if n != 0:
        # with sched_autogroup_enabled=1, nice only matters within an autogroup:
        # only touch the autogroup if it is our own (we lead the session)
        if os.getsid(0) == os.getpid():
            try:
                with open("/proc/self/autogroup", "w") as f:
                    f.write(str(n))
            except OSError:
                pass
        try:
            os.setpriority(os.PRIO_PROCESS, 0, n)
        except OSError:
            pass
    if cpus:
        s = set()
        for part in cpus.split(","):
            a, _, b = part.partition("-")
            s.update(range(int(a), int(b or a) + 1))
        os.sched_setaffinity(0, s)


def cmd_exec(args):
    nice, cpus, cmd = args[0], args[1], args[2:]
    _prio_pin(nice, cpus)
    os.execvp(cmd[0], cmd)


# ------------------------------------------------------------ CPU accounting
def _read_stat(pid):
    with open("/proc/%s/stat" % pid) as f:
        s = f.read()
    f = s[s.rindex(")") + 2:].split()
    # f[1]=ppid f[2]=pgrp f[11]=utime f[12]=stime f[13]=cutime f[14]=cstime f[19]=starttime
    return {"ppid": int(f[1]), "pgid": int(f[2]), "t": int(f[11]) + int(f[12]),
            "ct": int(f[13]) + int(f[14]), "start": int(f[19])}


def snap():
    procs = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                procs[d] = _read_stat(d)
            except (OSError, ValueError, IndexError):
                pass
    cpus = {}
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu") and line[3:4].isdigit():
                p = line.split()
                v = [int(x) for x in p[1:9]]  # user nice system idle iowait irq softirq steal
                cpus[p[0]] = {"usersys": v[0] + v[1] + v[2], "steal": v[7],
                              "busy": v[0] + v[1] + v[2] + v[5] + v[6] + v[7], "total": sum(v)}
    return {"time": time.monotonic(), "procs": procs, "cpus": cpus}


def _descendants(procs, root):
    kids = {}
    for pid, p in procs.items():
        kids.setdefault(str(p["ppid"]), []).append(pid)
    out, todo = {str(root)}, [str(root)]
    while todo:
        for k in kids.get(todo.pop(), []):
            if k not in out:
                out.add(k)
                todo.append(k)
    return out


def cpu_diff(a, b, root, groups):
    """CPU use between two snapshots; process times include reaped children."""
    el = max(b["time"] - a["time"], 1e-6)
    res = {"elapsed": el}
    tot = steal = 0
    for c, cb in b["cpus"].items():
        ca = a["cpus"].get(c)
        if ca:
            res[c + "_busy"] = 100.0 * (cb["busy"] - ca["busy"]) / max(cb["total"] - ca["total"], 1)
            tot += cb["usersys"] - ca["usersys"]
            steal += cb["steal"] - ca["steal"]
    ours = _descendants(a["procs"], root) | _descendants(b["procs"], root)

    def delta(pid):
        pb, pa = b["procs"][pid], a["procs"].get(pid)
        if pa and pa["start"] == pb["start"]:
            return (pb["t"] - pa["t"]) + (pb["ct"] - pa["ct"])
        return pb["t"] + pb["ct"]

    ours_t = kthr = 0
    gsum = {g: 0 for g in groups}
    for pid, p in b["procs"].items():
        if p["ppid"] == 2 or pid == "2":
            kthr += delta(pid)
        elif pid in ours:
            d = delta(pid)
            ours_t += d
            for g, pgids in groups.items():
                if p["pgid"] in pgids:
                    gsum[g] += d
    for g, v in gsum.items():
        res[g + "_cpu_s"] = v / CLK
        res[g + "_cpu"] = 100.0 * v / CLK / el
    # user+system time of the whole machine not accounted to our processes or kernel
    # threads = other users of this machine (softirq time is not in user+system)
    res["foreign_cpu"] = max(0.0, 100.0 * (tot - ours_t - kthr) / CLK / el)
    res["steal_cpu"] = 100.0 * steal / CLK / el
    return res


def cmd_run(args):
    opts = {"root": str(os.getppid()), "timeout": "60", "cpus": "", "nice": "0", "out": "/dev/null"}
    groups = {}
    i = 0
    while args[i] != "--":
        k, v = args[i].lstrip("-"), args[i + 1]
        if k == "group":
            name, _, ids = v.partition("=")
            groups[name] = {int(x) for x in ids.split(",") if x}
        else:
            opts[k] = v
        i += 2
    cmd = args[i + 1:]
    a = snap()
    with open(opts["out"], "wb") as out:
        t0 = time.monotonic()
        pid = os.fork()
        if pid == 0:
            try:
                os.dup2(out.fileno(), 1)
                os.dup2(out.fileno(), 2)
                os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
                _prio_pin(opts["nice"], opts["cpus"])
                os.execvp(cmd[0], cmd)
            finally:
                os._exit(127)
        deadline = t0 + float(opts["timeout"])
        killed = False
        while True:
            wpid, status, ru = os.wait4(pid, os.WNOHANG)
            if wpid == pid:
                break
            if time.monotonic() > deadline and not killed:
                killed = True
                for sig in (signal.SIGTERM, signal.SIGKILL):
                    try:
                        os.killpg(pid, sig)
                    except OSError:
                        pass
                    time.sleep(0.5)
            time.sleep(0.02)
        el = time.monotonic() - t0
    b = snap()
    r = cpu_diff(a, b, opts["root"], groups)
    r["rc"] = 124 if killed else (os.waitstatus_to_exitcode(status))
    r["client_cpu"] = 100.0 * (ru.ru_utime + ru.ru_stime) / max(el, 1e-6)
    r["wall"] = el
    print(fmt_kv(r))


def fmt_kv(d):
    out = []
    for k, v in d.items():
        if isinstance(v, float):
            v = "nan" if math.isnan(v) else "%.6g" % v
        out.append("%s=%s" % (k, v))
    return " ".join(out)


# -------------------------------------------------------------------- parsers
def cmd_parse(args):
    kind, path = args
    txt = open(path, errors="replace").read()
    r = {}
    if kind == "iperf":
        r = {"gbps": float("nan"), "bytes": 0, "errors": 0}
        try:
            j = json.loads(txt[txt.index("{"):])
            if "error" in j:
                r["errors"] = 1
            e = j.get("end", {})
            r["gbps"] = e["sum_received"]["bits_per_second"] / 1e9
            r["bytes"] = int(e["sum_received"]["bytes"])
            r["retrans"] = e.get("sum_sent", {}).get("retransmits", 0)
        except (ValueError, KeyError, TypeError):
            r["errors"] = 1
    elif kind == "wrk":
        r = parse_wrk(txt)
    elif kind == "h2load":
        r = parse_h2load(txt)
    elif kind == "tlsload":
        r = parse_tlsload(txt)
    elif kind == "udpload":
        r = parse_udpload(txt)
    print(fmt_kv(r))


# ----------------------------------------------------------- idle connections
def _raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _write_status(path, accepted, nopen):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d %d\n" % (accepted, nopen))
    os.replace(tmp, path)


def _read_status(path):
    try:
        with open(path) as f:
            a, o = f.read().split()
        return int(a), int(o)
    except (OSError, ValueError):
        return -1, -1


def cmd_holder(args):
    host, port, status = args[0], int(args[1]), args[2]
    _raise_nofile()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((host, port))
    ls.listen(4096)
    ls.setblocking(False)
    sel = selectors.EpollSelector()
    sel.register(ls, selectors.EVENT_READ, None)
    accepted = nopen = 0
    written = None
    last = 0.0
    _write_status(status, 0, 0)
    while True:
        for key, _ in sel.select(timeout=0.05):
            if key.data is None:
                while True:
                    try:
                        c, _ = ls.accept()
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError:  # e.g. EMFILE: leave it in the backlog
                        break
                    c.setblocking(False)
                    sel.register(c, selectors.EVENT_READ, 1)
                    accepted += 1
                    nopen += 1
            else:
                c = key.fileobj
                try:
                    d = c.recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    d = b""
                if not d:
                    sel.unregister(c)
                    c.close()
                    nopen -= 1
        now = time.monotonic()
        if (accepted, nopen) != written and now - last >= 0.01:
            _write_status(status, accepted, nopen)
            written, last = (accepted, nopen), now


def cmd_idle_client(args):
    host, port, n, status, batch, timeout = args[0], int(args[1]), int(args[2]), args[3], int(args[4]), float(args[5])
    _raise_nofile()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    t0 = time.monotonic()
    deadline = t0 + timeout
    _, base = _read_status(status)
    socks = []

    def fail(why):
        print("fail %s opened=%d backend_open=%d secs=%.2f" % (why, len(socks), _read_status(status)[1] - base,
                                                               time.monotonic() - t0), flush=True)
        sys.exit(1)

    while len(socks) < n:
        pend = {}
        for _ in range(min(batch, n - len(socks))):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            e = s.connect_ex((host, port))
            if e not in (0, 115):  # EINPROGRESS
                fail("connect_errno=%d" % e)
            pend[s.fileno()] = s
        p = select.poll()
        for fd in pend:
            p.register(fd, select.POLLOUT)
        left = set(pend)
        while left:
            if time.monotonic() > deadline:
                fail("timeout_connecting")
            for fd, _ in p.poll(100):
                p.unregister(fd)
                left.discard(fd)
                e = pend[fd].getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if e:
                    fail("connect_errno=%d" % e)
        socks.extend(pend.values())
        # end-to-end pacing: the proxy must have accepted AND connected them all
        while _read_status(status)[1] - base < len(socks):
            if time.monotonic() > deadline:
                fail("timeout_waiting_for_backend")
            time.sleep(0.005)
    print("ready n=%d backend_open=%d secs=%.2f" % (len(socks), _read_status(status)[1] - base,
                                                    time.monotonic() - t0), flush=True)
    while True:
        signal.pause()


# --------------------------------------------------------------------- memory
def cmd_mem(args):
    pgid = int(args[0])
    r = {"rss_kib": 0, "hwm_kib": 0, "nproc": 0, "fds": 0}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            if _read_stat(d)["pgid"] != pgid:
                continue
            with open("/proc/%s/status" % d) as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        r["hwm_kib"] += int(line.split()[1])
                    elif line.startswith("VmRSS:"):
                        r["rss_kib"] += int(line.split()[1])
            r["fds"] += len(os.listdir("/proc/%s/fd" % d))
            r["nproc"] += 1
        except (OSError, ValueError, IndexError):
            pass
    print(fmt_kv(r))


def cmd_probe(args):
    port, n = int(args[0]), int(args[1])
    seen = []
    for _ in range(n):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=3)
            s.sendall(b"GET /small HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                d = s.recv(65536)
                if not d:
                    break
                data += d
            s.close()
            m = re.search(rb"\r\nX-Backend: (\w+)", data, re.I)
            seen.append(m.group(1).decode() if m else "?")
        except OSError:
            seen.append("ERR")
    print(",".join(seen))


def _bytes(s):
    m = re.match(r"([\d.]+)\s*([KMGT]?)B", s)
    if not m:
        return float("nan")
    return float(m.group(1)) * 1024 ** "_KMGT".index(m.group(2) or "_")


def _dur_ms(s):
    m = re.match(r"([\d.]+)\s*(us|ms|s|m)$", s.strip())
    if not m:
        return float("nan")
    return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[m.group(2)]


def parse_wrk(txt):
    r = {}
    m = re.search(r"Requests/sec:\s*([\d.]+)", txt)
    r["rps"] = float(m.group(1)) if m else float("nan")
    # wrk prints binary units (MB = MiB); includes the response headers
    m = re.search(r"Transfer/sec:\s*([\d.]+\s*[KMGT]?B)", txt)
    r["mibps"] = _bytes(m.group(1)) / 1024 ** 2 if m else float("nan")
    for p in ("50", "99"):
        m = re.search(r"^\s*%s%%\s+([\d.]+\s*(?:us|ms|s|m))\s*$" % p, txt, re.M)
        r["p%s_ms" % p] = _dur_ms(m.group(1)) if m else float("nan")
    m = re.search(r"(\d+) requests in", txt)
    r["requests"] = int(m.group(1)) if m else 0
    err = 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", txt)
    if m:
        err += sum(int(x) for x in m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", txt)
    if m:
        err += int(m.group(1))
    r["errors"] = err
    return r


def parse_h2load(txt):
    """h2load's summary: rps, requests (done), errors (failed + errored + timeout + 4xx/5xx),
    proto (the negotiated application protocol); h2load prints no percentiles."""
    r = {"rps": float("nan"), "requests": 0, "errors": 0, "p50_ms": float("nan"), "p99_ms": float("nan")}
    m = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", txt)
    if m:
        r["rps"] = float(m.group(1))
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
                  r"(\d+) errored, (\d+) timeout", txt)
    if m:
        g = [int(x) for x in m.groups()]
        r["requests"] = g[3]
        r["errors"] = g[4] + g[5] + g[6]
    m = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", txt)
    if m:
        r["errors"] += int(m.group(3)) + int(m.group(4))
    m = re.search(r"Application protocol: (\S+)", txt)
    r["proto"] = m.group(1) if m else "none"
    return r


def parse_tlsload(txt):
    """lib/tlsload.c's key=value line: rps, requests (= completed connections), errors,
    resumed, p50_ms, p99_ms."""
    r = {"rps": float("nan"), "requests": 0, "errors": 0, "resumed": 0,
         "p50_ms": float("nan"), "p99_ms": float("nan")}
    m = re.search(r"^conns=.*$", txt, re.M)
    if m:
        kv = dict(x.split("=", 1) for x in m.group(0).split())
        r.update(rps=float(kv["rps"]), requests=int(kv["conns"]), errors=int(kv["errors"]),
                 resumed=int(kv["resumed"]), p50_ms=float(kv["p50_ms"]), p99_ms=float(kv["p99_ms"]))
    return r


def parse_udpload(txt):
    """lib/udpload.c's key=value line: rps (round trips/s, measured window), requests (round trips
    in the measured window), ops (round trips of the whole run, warm-up included: CPU per round
    trip divides by it), errors (lost + bad + send/receive errors), lost, late, bad, p50_ms, p99_ms."""
    r = {"rps": float("nan"), "requests": 0, "ops": 0, "errors": 0, "lost": 0, "late": 0, "bad": 0,
         "p50_ms": float("nan"), "p99_ms": float("nan")}
    m = re.search(r"^rtts=.*$", txt, re.M)
    if m:
        kv = dict(x.split("=", 1) for x in m.group(0).split())
        r.update(rps=float(kv["rps"]), requests=int(kv["rtts"]), ops=int(kv["rtts_total"]),
                 lost=int(kv["lost"]), late=int(kv["late"]), bad=int(kv["bad"]),
                 errors=int(kv["lost"]) + int(kv["bad"]) + int(kv["errors"]))
        if int(kv["rtts"]) > 0:
            r.update(p50_ms=float(kv["p50_ms"]), p99_ms=float(kv["p99_ms"]))
    return r


# ------------------------------------------------------------ small helpers
def cmd_free_ports(args):
    """N ports free on 127.0.0.1 for TCP and for UDP (a UDP listener, e.g. udp_rtt's, gets one too)."""
    n = int(args[0])
    socks = []
    ports = []
    try:
        for _ in range(n + 1000):
            if len(ports) == n:
                break
            t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            t.bind(("127.0.0.1", 0))
            socks.append(t)
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                u.bind(("127.0.0.1", t.getsockname()[1]))
            except OSError:
                u.close()
                continue  # busy for UDP: keep the TCP one bound (not picked again), try another
            socks.append(u)
            ports.append(t.getsockname()[1])
        print(" ".join(str(p) for p in ports))
    finally:
        for s in socks:
            s.close()


def cmd_cpu(args):
    pgid = int(args[0])
    t = 0
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                st = _read_stat(d)
            except (OSError, ValueError, IndexError):
                continue
            if st["pgid"] == pgid:
                t += st["t"] + st["ct"]
    print("%.3f" % (t / CLK))


def cmd_nginx_accepts(args):
    import urllib.request
    with urllib.request.urlopen(args[0], timeout=3) as f:
        txt = f.read().decode()
    # "server accepts handled requests\n N N N"
    print(txt.split("\n")[2].split()[0])


def cmd_http_load(args):
    """Exactly N requests; prints requests=.. errors=.. secs=.."""
    host, port, path, n, conns = args[0], int(args[1]), args[2], int(args[3]), int(args[4])
    close = len(args) > 5 and args[5] == "close"
    req = ("GET %s HTTP/1.1\r\nHost: bench\r\n%s\r\n" % (path, "Connection: close\r\n" if close else "")).encode()
    sel = selectors.EpollSelector()
    started = done = errors = 0
    t0 = time.monotonic()

    def open_one():
        nonlocal started
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.connect((host, port))
        s.setblocking(False)
        st = {"buf": b""}
        sel.register(s, selectors.EVENT_READ, st)
        return s

    def send(s):
        nonlocal started
        started += 1
        s.sendall(req)

    for _ in range(min(conns, n)):
        try:
            send(open_one())
        except OSError:
            errors += 1
            started += 1
    while done + errors < n and time.monotonic() - t0 < 120:
        for key, _ in sel.select(timeout=1):
            s, st = key.fileobj, key.data
            try:
                d = s.recv(262144)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                d = b""
            st["buf"] += d
            b = st["buf"]
            finished = False
            h = b.find(b"\r\n\r\n")
            if h >= 0:
                m = re.search(rb"\r\ncontent-length:\s*(\d+)", b[:h], re.I)
                if m and len(b) >= h + 4 + int(m.group(1)):
                    finished = True
                    ok = b[9:10] in (b"2", b"3")
                    st["buf"] = b[h + 4 + int(m.group(1)):]
                    if ok:
                        done += 1
                    else:
                        errors += 1
            if not d and not finished:
                errors += 1
                sel.unregister(s)
                s.close()
                if started < n:
                    try:
                        send(open_one())
                    except OSError:
                        errors += 1
                        started += 1
                continue
            if finished and started < n:
                if close:
                    sel.unregister(s)
                    s.close()
                    try:
                        send(open_one())
                    except OSError:
                        errors += 1
                        started += 1
                else:
                    send(s)
            elif finished:
                sel.unregister(s)
                s.close()
    for key in list(sel.get_map().values()):
        key.fileobj.close()
    print("requests=%d errors=%d secs=%.3f" % (done, errors, time.monotonic() - t0))


# --------------------------------------------------------------------- report
def _num(s):
    try:
        return float(s)
    except (TypeError, ValueError):
        return float("nan")


def _f(v, nd=1):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    if abs(v) >= 1000:
        return "{:,.0f}".format(v)
    return ("%%.%df" % nd) % v


def _nd(v):
    if v is None or math.isnan(v):
        return 1
    a = abs(v)
    return 0 if a >= 100 else 1 if a >= 10 else 2 if a >= 0.1 else 4


COLS = ("scenario candidate rep attempt status unit value ops op_unit cpu_s p50_ms p99_ms "
        "rss_before_kib rss_after_kib errors foreign_cpu client_cpu better note").split()
ORDER = ("direct", "haproxy", "nginx")


def _read_results(path):
    rows = []
    with open(path) as f:
        for line in f:
            p = line.rstrip("\n").split("\t")
            if not p or p[0] == "scenario":
                continue
            rows.append(dict(zip(COLS, p + [""] * (len(COLS) - len(p)))))
    return rows


def _usable(rs):
    """The runs a cell's figures come from: clean ones (over_bar / over_budget: a valid measurement
    that misses its bar, shown with ✗), else the disturbed ones (-> True: shown with ⚠)."""
    ok = [r for r in rs if r["status"] == "ok" or r["status"].startswith("over_")]
    return (ok, False) if ok else ([r for r in rs if r["status"] == "disturbed"], True)


def _med(rs, col):
    v = [_num(r[col]) for r in rs]
    v = [x for x in v if not math.isnan(x)]
    return (statistics.median(v), min(v), max(v)) if v else (float("nan"),) * 3


def _cpu_per_op(use):
    """Median over the usable runs of CPU µs per op (cpu_s / ops)."""
    us = [1e6 * a / b for a, b in ((_num(r["cpu_s"]), _num(r["ops"])) for r in use) if b > 0 and not math.isnan(a)]
    return statistics.median(us) if us else float("nan")


def cmd_report(args):
    rows = _read_results(args[0])
    meta = open(args[1]).read() if len(args) > 1 and os.path.exists(args[1]) else ""
    scen, cands = [], {}
    for r in rows:
        if r["scenario"] not in scen:
            scen.append(r["scenario"])
        cands.setdefault(r["scenario"], [])
        if r["candidate"] not in cands[r["scenario"]]:
            cands[r["scenario"]].append(r["candidate"])

    summary = {}
    out = [meta.rstrip(), ""] if meta else []
    out.append("| scenario | candidate | result | unit | min–max | CPU µs/op | op | p50 ms | p99 ms "
               "| RSS before MiB | RSS after MiB | ÷ HAProxy | ÷ NGINX | runs ok/all |")
    out.append("|---|---|---:|---|---|---:|---|---:|---:|---:|---:|---:|---:|---|")
    for s in scen:
        cs = sorted(cands[s], key=lambda c: (ORDER.index(c) if c in ORDER else len(ORDER), c))
        for c in cs:
            rs = [r for r in rows if r["scenario"] == s and r["candidate"] == c]
            use, dist = _usable(rs)
            unit = rs[0]["unit"]
            better = rs[-1]["better"] or "higher"
            v, lo, hi = _med(use, "value")
            usv = _cpu_per_op(use)
            summary[(s, c)] = (v, usv)
            p50 = _med(use, "p50_ms")[0]
            p99 = _med(use, "p99_ms")[0]
            rb = _med(use, "rss_before_kib")[0] / 1024
            ra = _med(use, "rss_after_kib")[0] / 1024
            ratios = []
            for a in ("haproxy", "nginx"):
                av = summary.get((s, a))
                # a variant of a candidate (sluice-plain, sluice-steady) is measured against its
                # candidate (bars), not against the anchors, which run the scenario's own config
                if c in ("direct", a) or "-" in c or not av or math.isnan(av[0]) or av[0] == 0 or math.isnan(v):
                    ratios.append("—")
                else:
                    ratios.append("%.2f" % (v / av[0]))
            name = "**%s**" % c if c not in ORDER else c
            res = _f(v, _nd(v)) if use else "failed (%s)" % ",".join(sorted({r["status"] for r in rs}))
            na = not use and all(r["status"] == "n/a" for r in rs)   # the candidate cannot run it (note: why)
            if na:
                res = "n/a"
            if dist and use:
                res = "⚠ " + res
            if any(r["status"].startswith("over_") for r in use):
                res = "✗ " + res
            note = "; ".join(sorted({r["note"] for r in rs if r["note"]}))
            runs = "%d/%d" % (len([r for r in rs if r["status"] == "ok"]), len(rs))
            out.append("| %s | %s | %s | %s%s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s%s |" % (
                s, name, res, unit, "" if better == "higher" else " (lower is better)",
                "%s–%s" % (_f(lo, _nd(lo)), _f(hi, _nd(hi))) if len(use) > 1 else "",
                _f(usv, 1), rs[0]["op_unit"] or "", _f(p50, 3), _f(p99, 3), _f(rb, 1), _f(ra, 1),
                ratios[0], ratios[1], "" if na else runs, note if na else (" — " + note) if note else ""))
    out.append("")
    out.append("Medians over the repetitions (⚠: only runs disturbed by foreign load; ✗: misses its bar or budget). *CPU µs/op*: CPU time "
               "(utime+stime from /proc/PID/stat) of the candidate's process group during the run ÷ ops "
               "(requests, connections or MiB; see *op*). *÷ HAProxy / ÷ NGINX*: the candidate's result ÷ "
               "the anchor's in the same run (for a lower-is-better unit, < 1 is better; none for a variant such as "
               "sluice-plain, which is compared with its candidate below the table). RSS: VmRSS of the "
               "process group when the scenario's load starts and after it.")
    print("\n".join(out))


def cmd_bars(args):
    """bars RESULTS SCENARIO TITLE SPEC...: "- TITLE" and one line per SPEC CAND/REF:value|cpu[>=X|<=X]."""
    rows = _read_results(args[0])
    scen, title, specs = args[1], args[2], args[3:]

    def cell(c):
        use, _ = _usable([r for r in rows if r["scenario"] == scen and r["candidate"] == c])
        return _med(use, "value")[0], _cpu_per_op(use), len(use)

    out, missed = ["**%s** (%s, medians of this run):" % (title, scen), ""], False
    for spec in specs:
        m = re.match(r"([\w.-]+)/([\w.-]+):(value|cpu)(?:(>=|<=)([\d.]+))?$", spec)
        if not m:
            sys.exit("bars: bad spec %r" % spec)
        c, ref, what, op, bar = m.groups()
        (cv, cu, cn), (rv, ru, rn) = cell(c), cell(ref)
        a, b = (cv, rv) if what == "value" else (cu, ru)
        label = "result" if what == "value" else "CPU µs/op"
        if not cn or not rn or math.isnan(a) or math.isnan(b) or b == 0:
            out.append("- %s ÷ %s, %s: — (no usable runs of %s)" % (c, ref, label, c if not cn else ref))
            continue
        x = a / b
        verdict = ""
        if op:
            ok = x >= float(bar) if op == ">=" else x <= float(bar)
            missed |= not ok
            verdict = ", bar %s %s: %s" % ("≥" if op == ">=" else "≤", bar, "met" if ok else "**missed**")
        out.append("- %s ÷ %s, %s: **%.2f×** (%s ÷ %s)%s" % (c, ref, label, x, _f(a, _nd(a)), _f(b, _nd(b)), verdict))
    print("\n".join(out))
    sys.exit(1 if missed else 0)


def main():
    cmds = {"exec": cmd_exec, "run": cmd_run, "parse": cmd_parse, "holder": cmd_holder,
            "idle-client": cmd_idle_client, "mem": cmd_mem, "probe": cmd_probe, "report": cmd_report,
            "free-ports": cmd_free_ports, "cpu": cmd_cpu, "http-load": cmd_http_load,
            "nginx-accepts": cmd_nginx_accepts, "bars": cmd_bars}
    if len(sys.argv) < 2 or sys.argv[1] not in cmds:
        sys.exit(__doc__)
    cmds[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    main()
