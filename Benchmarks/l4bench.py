#!/usr/bin/env python3
"""Helper for l4-bench.sh (stdlib only).

  exec NICE CPUS CMD...          new session, nice NICE (process + its own autogroup),
                                 pinned to CPUS ("" = unpinned), then exec CMD (same PID)
  run [opts] -- CMD...           run a load generator like `exec` would, bounded by
                                 --timeout; print key=value: rc, elapsed, client CPU,
                                 CPU seconds of each --group, per-core busy %, and the
                                 CPU used meanwhile by processes NOT started by the
                                 script (--root PID and its descendants are "ours")
  parse iperf|wrk FILE           key=value from iperf3 -J / wrk output
  holder HOST PORT STATUSFILE    backend for the idle test: accepts and holds every
                                 connection; writes "accepted open" to STATUSFILE
  idle-client HOST PORT N STATUSFILE BATCH TIMEOUT
                                 opens N idle connections in batches of BATCH; after
                                 each batch waits until the holder reports them open
                                 (end-to-end pacing); prints "ready ..." then holds them
  mem PGID                       VmRSS/VmHWM (KiB) and open fds summed over a process group
  probe PORT N                   N HTTP requests, one connection each: X-Backend values
  report RAW IDLE META           the markdown report
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
        m = re.search(r"Requests/sec:\s*([\d.]+)", txt)
        r["rps"] = float(m.group(1)) if m else float("nan")
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


# --------------------------------------------------------------------- report
def _num(s):
    try:
        return float(s)
    except (TypeError, ValueError):
        return float("nan")


def _f(v, nd=1):
    if v is None or math.isnan(v):
        return "—"
    if abs(v) >= 1000:
        return "{:,.0f}".format(v)
    return ("{:.%df}" % nd).format(v)


def _read_tsv(path):
    rows = []
    if os.path.exists(path):
        with open(path) as f:
            hdr = f.readline().rstrip("\n").split("\t")
            for line in f:
                rows.append(dict(zip(hdr, line.rstrip("\n").split("\t"))))
    return rows


def _stats(vals):
    vals = [v for v in vals if not math.isnan(v)]
    if not vals:
        return float("nan"), float("nan"), float("nan"), 0
    return statistics.median(vals), min(vals), max(vals), len(vals)


def cmd_report(args):
    raw, idle, meta, targets = _read_tsv(args[0]), _read_tsv(args[1]), open(args[2]).read(), args[3].split()
    reps = int(args[4])
    out = [meta.rstrip() + "\n"]

    def usable(rs):
        ok = [r for r in rs if r["status"] == "ok"]
        if ok:
            return ok, False
        dist = [r for r in rs if r["status"] == "disturbed"]
        return dist, bool(dist)

    med = {}  # (scenario, target, col) -> (median, min, max, n, flag)

    def cell(scen, t, col):
        key = (scen, t, col)
        if key not in med:
            use, flag = usable([r for r in raw if r["scenario"] == scen and r["target"] == t])
            med[key] = _stats([_num(r[col]) for r in use]) + (flag,)
        return med[key]

    def ratio(scen, t):
        a, b = cell(scen, t, "value")[0], cell(scen, "direct", "value")[0]
        return a / b if b and not math.isnan(a) and not math.isnan(b) else float("nan")

    def ist(t, col):
        return _stats([_num(r[col]) for r in idle if r["target"] == t and r["status"] == "ok"])

    proxies = [t for t in targets if t != "direct"]
    out.append("## Summary (medians of %d repetitions)\n" % reps)
    n_idle = idle[0]["n"] if idle else "N"
    out.append("| target | TCP Gbit/s | × direct | proxy µs/MiB | conn/s | × direct | proxy µs/conn "
               "| idle: base RSS MiB | RSS with %s conns MiB | KiB/conn |" % n_idle)
    out.append("|---|---|---|---|---|---|---|---|---|---|")

    def flag(scen, t):
        return " ⚠" if cell(scen, t, "value")[4] else ""

    for t in targets:
        g, c = cell("iperf", t, "value")[0], cell("connrate", t, "value")[0]
        if t == "direct":
            out.append("| direct | %s%s | %s | — | %s%s | %s | — | — | — | — |" % (
                _f(g, 2), flag("iperf", t), "—" if math.isnan(g) else "1.00",
                _f(c, 0), flag("connrate", t), "—" if math.isnan(c) else "1.00"))
            continue
        out.append("| %s | %s%s | %s | %s | %s%s | %s | %s | %s | %s | %s |" % (
            t, _f(g, 2), flag("iperf", t), _f(ratio("iperf", t), 2), _f(cell("iperf", t, "us_per_op")[0], 0),
            _f(c, 0), flag("connrate", t), _f(ratio("connrate", t), 2), _f(cell("connrate", t, "us_per_op")[0], 1),
            _f(ist(t, "base_rss_kib")[0] / 1024, 1), _f(ist(t, "rss_kib")[0] / 1024, 1),
            _f(ist(t, "kib_per_conn")[0], 2)))
    if len(proxies) >= 2:
        a, b = proxies[-1], proxies[0]

        def q(x, y):
            return x / y if y and not math.isnan(x) and not math.isnan(y) else float("nan")
        out.append("| **%s ÷ %s** | %s | | %s | %s | | %s | %s | %s | %s |" % (
            a, b, _f(q(cell("iperf", a, "value")[0], cell("iperf", b, "value")[0]), 2),
            _f(q(cell("iperf", a, "us_per_op")[0], cell("iperf", b, "us_per_op")[0]), 2),
            _f(q(cell("connrate", a, "value")[0], cell("connrate", b, "value")[0]), 2),
            _f(q(cell("connrate", a, "us_per_op")[0], cell("connrate", b, "us_per_op")[0]), 2),
            _f(q(ist(a, "base_rss_kib")[0], ist(b, "base_rss_kib")[0]), 2),
            _f(q(ist(a, "rss_kib")[0], ist(b, "rss_kib")[0]), 2),
            _f(q(ist(a, "kib_per_conn")[0], ist(b, "kib_per_conn")[0]), 2)))
    out.append("")
    out.append("Higher is better for Gbit/s and conn/s; lower is better for µs/MiB, µs/conn, MiB and KiB/conn. "
               "⚠ = only runs disturbed by other processes on the machine were available.\n")

    def rng(s, nd):
        return "%s–%s" % (_f(s[1], nd), _f(s[2], nd)) if s[3] else "—"

    for scen, title, unit, nd, opunit, ond in (
            ("iperf", "TCP throughput: `iperf3 -c`, 1 stream", "Gbit/s", 2, "µs/MiB", 0),
            ("connrate", "Short connections: `wrk -t1 -c64 -H 'Connection: close'`, one TCP connection per request",
             "conn/s", 0, "µs/conn", 1)):
        if not any(r["scenario"] == scen for r in raw):
            continue
        out.append("## %s\n" % title)
        out.append("| target | %s median | min–max | × direct | proxy CPU %s (min–max) | proxy CPU %% | client CPU %% "
                   "| CPU0/CPU1 busy %% | foreign CPU %% | runs ok/disturbed/failed |" % (unit, opunit))
        out.append("|---|---|---|---|---|---|---|---|---|---|")
        for t in targets:
            rs = [r for r in raw if r["scenario"] == scen and r["target"] == t]
            if not rs:
                continue
            v, u = cell(scen, t, "value"), cell(scen, t, "us_per_op")
            counts = "%d/%d/%d" % (sum(r["status"] == "ok" for r in rs), sum(r["status"] == "disturbed" for r in rs),
                                   sum(r["status"] not in ("ok", "disturbed") for r in rs))
            pc = "—" if t == "direct" else _f(cell(scen, t, "proxy_cpu")[0], 0)
            us = "—" if t == "direct" else "%s (%s)" % (_f(u[0], ond), rng(u, ond))
            out.append("| %s | %s%s | %s | %s | %s | %s | %s | %s/%s | %s | %s |" % (
                t, _f(v[0], nd), " ⚠" if v[4] else "", rng(v, nd), _f(ratio(scen, t), 2), us, pc,
                _f(cell(scen, t, "client_cpu")[0], 0), _f(cell(scen, t, "cpu0_busy")[0], 0),
                _f(cell(scen, t, "cpu1_busy")[0], 0), _f(cell(scen, t, "foreign_cpu")[0], 0), counts))
        out.append("")

    if idle:
        out.append("## Memory with %s idle proxied connections\n" % n_idle)
        out.append("| target | base VmRSS MiB | VmRSS with conns MiB (min–max) | VmHWM MiB | KiB/conn (min–max) "
                   "| proxy fds | backend saw | connect all, s | runs ok/failed |")
        out.append("|---|---|---|---|---|---|---|---|---|")
        for t in proxies:
            rs = [r for r in idle if r["target"] == t]
            if not rs:
                continue
            b, m, h, k = ist(t, "base_rss_kib"), ist(t, "rss_kib"), ist(t, "hwm_kib"), ist(t, "kib_per_conn")
            out.append("| %s | %s | %s (%s–%s) | %s | %s (%s) | %s | %s | %s | %d/%d |" % (
                t, _f(b[0] / 1024, 1), _f(m[0] / 1024, 1), _f(m[1] / 1024, 1), _f(m[2] / 1024, 1), _f(h[0] / 1024, 1),
                _f(k[0], 2), rng(k, 2), _f(ist(t, "fds")[0], 0), _f(ist(t, "backend_open")[0], 0),
                _f(ist(t, "connect_s")[0], 2), sum(r["status"] == "ok" for r in rs),
                sum(r["status"] != "ok" for r in rs)))
        out.append("")
        bad = [r for r in idle if r["status"] != "ok"]
        for r in bad:
            out.append("- %s rep %s: %s" % (r["target"], r["rep"], r["status"]))
        if bad:
            out.append("")
    print("\n".join(out))


def main():
    cmds = {"exec": cmd_exec, "run": cmd_run, "parse": cmd_parse, "holder": cmd_holder,
            "idle-client": cmd_idle_client, "mem": cmd_mem, "probe": cmd_probe, "report": cmd_report}
    if len(sys.argv) < 2 or sys.argv[1] not in cmds:
        sys.exit(__doc__)
    cmds[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    main()
