#!/usr/bin/env python3
"""Helper for l7-bench.sh (stdlib only). Reuses l4bench.py, unchanged:

  exec NICE CPUS CMD...          = l4bench exec (own session/autogroup, nice, pinning, exec)
  run [opts] -- CMD...           = l4bench run (bounded client run with CPU accounting from
                                   /proc: proxy/backend groups, per-core busy, foreign CPU)
  mem PGID                       = l4bench mem (VmRSS/VmHWM/fds of a process group)
  parse FILE                     key=value from wrk output: rps, requests, errors (socket
                                 errors + non-2xx/3xx), mibps (Transfer/sec), p50_ms, p99_ms
  sanity PORT                    X-Backend of 4 requests on 4 new connections and of 4
                                 requests on one keep-alive connection; /64k status + size
  report RAW MEM SANITY META "TARGETS" REPS CANDIDATE
                                 the markdown report
"""
import http.client
import math
import os
import re
import socket
import sys

sys.dont_write_bytecode = True  # no __pycache__ next to the scripts
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import l4bench as L4  # noqa: E402

SCENARIOS = ("ka_small", "ka_64k", "close_small")
OK, DISTURBED = "ok", "disturbed"


# -------------------------------------------------------------------- parsers
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


def cmd_parse(args):
    print(L4.fmt_kv(parse_wrk(open(args[0], errors="replace").read())))


# --------------------------------------------------------------------- sanity
def _get(conn, path):
    conn.request("GET", path, headers={"Host": "127.0.0.1"})
    r = conn.getresponse()
    body = r.read()
    return r, body


def cmd_sanity(args):
    """new=a,b,a,b ka=a,b,a,b ka_closed=0 size64k=65536 status64k=200"""
    port = int(args[0])
    out = {}
    seq = []
    for _ in range(4):  # one connection per request
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=3)
            r, _ = _get(c, "/small")
            seq.append(r.getheader("X-Backend") or ("%d" % r.status))
            c.close()
        except (OSError, http.client.HTTPException) as e:
            seq.append("ERR(%s)" % type(e).__name__)
    out["new"] = ",".join(seq)
    seq, closed = [], 0
    try:  # 4 requests on one keep-alive connection
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=3)
        c.connect()
        c.auto_open = 0  # never reconnect silently
        for _ in range(4):
            r, _ = _get(c, "/small")
            seq.append(r.getheader("X-Backend") or ("%d" % r.status))
            if r.will_close:
                closed += 1
                break
        c.close()
    except (OSError, http.client.HTTPException) as e:
        seq.append("ERR(%s)" % type(e).__name__)
    out["ka"] = ",".join(seq) or "-"
    out["ka_closed"] = closed
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=3)
        r, body = _get(c, "/64k")
        out["size64k"] = len(body)
        out["status64k"] = r.status
        c.close()
    except (OSError, http.client.HTTPException, socket.timeout) as e:
        out["size64k"] = 0
        out["status64k"] = "ERR(%s)" % type(e).__name__
    print(L4.fmt_kv(out))


# --------------------------------------------------------------------- report
_num, _f, _stats, _read_tsv = L4._num, L4._f, L4._stats, L4._read_tsv


def cmd_report(args):
    raw, mem, sanity = _read_tsv(args[0]), _read_tsv(args[1]), _read_tsv(args[2])
    meta, targets, reps, cand = open(args[3]).read(), args[4].split(), int(args[5]), args[6]
    out = [meta.rstrip() + "\n"]
    proxies = [t for t in targets if t != "direct"]

    def rows(s, t):
        return [r for r in raw if r["scenario"] == s and r["target"] == t]

    def usable(rs):
        ok = [r for r in rs if r["status"] == OK]
        if ok:
            return ok, False
        dist = [r for r in rs if r["status"] == DISTURBED]
        return dist, bool(dist)

    cache = {}

    def cell(s, t, col):  # (median, min, max, n, only_disturbed)
        k = (s, t, col)
        if k not in cache:
            use, flag = usable(rows(s, t))
            cache[k] = _stats([_num(r[col]) for r in use]) + (flag,)
        return cache[k]

    def failed(s, t):  # rows exist but none usable
        rs = rows(s, t)
        return bool(rs) and not usable(rs)[0]

    def q(a, b):
        return a / b if b and not math.isnan(a) and not math.isnan(b) else float("nan")

    def ratio(s, t, col="rps"):
        return q(cell(s, t, col)[0], cell(s, "direct", col)[0])

    def val(s, t, col, nd):
        if failed(s, t):
            return "**failed**"
        c = cell(s, t, col)
        return _f(c[0], nd) + (" ⚠" if c[4] and not math.isnan(c[0]) else "")

    def us(s, t):
        return "—" if t == "direct" or failed(s, t) else _f(cell(s, t, "us_per_req")[0], 1)

    def x(s, t, col="rps"):
        if failed(s, t):
            return "—"
        return "1.00" if t == "direct" and not math.isnan(cell(s, t, col)[0]) else _f(ratio(s, t, col), 2)

    def hwm(t):
        v = [_num(r["hwm_kib"]) for r in mem if r["target"] == t]
        v = [a for a in v if not math.isnan(a) and a > 0]
        return max(v) / 1024 if v else float("nan")

    out.append("## Summary (medians of %d repetitions)\n" % reps)
    out.append("| target | ka_small req/s | × direct | p50 ms | p99 ms | proxy µs/req "
               "| ka_64k MiB/s | req/s | × direct | proxy µs/req "
               "| close_small req/s | × direct | proxy µs/req | proxy VmHWM MiB |")
    out.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for t in targets:
        out.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            t, val("ka_small", t, "rps", 0), x("ka_small", t), val("ka_small", t, "p50_ms", 3),
            val("ka_small", t, "p99_ms", 3), us("ka_small", t),
            val("ka_64k", t, "mibps", 0), val("ka_64k", t, "rps", 0), x("ka_64k", t, "mibps"), us("ka_64k", t),
            val("close_small", t, "rps", 0), x("close_small", t), us("close_small", t),
            "—" if t == "direct" else _f(hwm(t), 1)))
    if cand in proxies:
        for a in proxies:
            if a == cand:
                continue

            def qq(s, col):
                if failed(s, cand) or failed(s, a):
                    return "—"
                return _f(q(cell(s, cand, col)[0], cell(s, a, col)[0]), 2)
            out.append("| **%s ÷ %s** | %s | | %s | %s | %s | %s | %s | | %s | %s | | %s | %s |" % (
                cand, a, qq("ka_small", "rps"), qq("ka_small", "p50_ms"), qq("ka_small", "p99_ms"),
                qq("ka_small", "us_per_req"), qq("ka_64k", "mibps"), qq("ka_64k", "rps"), qq("ka_64k", "us_per_req"),
                qq("close_small", "rps"), qq("close_small", "us_per_req"), _f(q(hwm(cand), hwm(a)), 2)))
    out.append("")
    out.append("Higher is better for req/s and MiB/s; lower is better for latency, µs/req and MiB. "
               "× direct for ka_64k is the MiB/s ratio. ⚠ = only runs disturbed by other processes on the "
               "machine were available; **failed** = no valid run (see the detail tables and *Problems*).\n")

    def rng(c, nd):
        return "%s–%s" % (_f(c[1], nd), _f(c[2], nd)) if c[3] else "—"

    titles = {
        "ka_small": ("ka_small — keep-alive, 100 B body: `wrk -t1 -c64 -d%ss --latency`", "req/s", "rps", 0),
        "ka_64k": ("ka_64k — keep-alive, 64 KiB body (backend sendfile): `wrk -t1 -c64 -d%ss`", "MiB/s", "mibps", 0),
        "close_small": ("close_small — new client connection per request: `wrk -t1 -c64 -d%ss -H 'Connection: close'`",
                        "req/s", "rps", 0),
    }
    for s in SCENARIOS:
        if not any(r["scenario"] == s for r in raw):
            continue
        title, unit, col, nd = titles[s]
        dur = next((r["dur"] for r in raw if r["scenario"] == s and r["dur"] != "nan"), "?")
        out.append("## %s\n" % (title % dur))
        extra_h = {"ka_small": " p50 ms | p99 ms (min–max) |", "ka_64k": " req/s |", "close_small": ""}[s]
        extra_d = {"ka_small": "---|---|", "ka_64k": "---|", "close_small": ""}[s]
        out.append("| target | %s median | min–max | × direct |%s proxy µs/req (min–max) | proxy CPU %% "
                   "| client CPU %% | CPU0/CPU1 busy %% | foreign CPU %% | runs ok/disturbed/failed |" % (unit, extra_h))
        out.append("|---|---|---|---|%s---|---|---|---|---|---|" % extra_d)
        for t in targets:
            rs = rows(s, t)
            if not rs:
                continue
            v, u = cell(s, t, col), cell(s, t, "us_per_req")
            counts = "%d/%d/%d" % (sum(r["status"] == OK for r in rs), sum(r["status"] == DISTURBED for r in rs),
                                   sum(r["status"] not in (OK, DISTURBED) for r in rs))
            if s == "ka_small":
                p99 = cell(s, t, "p99_ms")
                extra = " %s | %s (%s) |" % (_f(cell(s, t, "p50_ms")[0], 3), _f(p99[0], 3), rng(p99, 3))
            elif s == "ka_64k":
                extra = " %s |" % _f(cell(s, t, "rps")[0], 0)
            else:
                extra = ""
            if failed(s, t):
                extra = re.sub(r"[^|]+\|", " — |", extra)
                out.append("| %s | **failed** | — | — |%s — | — | — | — | — | %s |" % (t, extra, counts))
                continue
            pu = "—" if t == "direct" else "%s (%s)" % (_f(u[0], 1), rng(u, 1))
            pc = "—" if t == "direct" else _f(cell(s, t, "proxy_cpu")[0], 0)
            out.append("| %s | %s%s | %s | %s |%s %s | %s | %s | %s/%s | %s | %s |" % (
                t, _f(v[0], nd), " ⚠" if v[4] else "", rng(v, nd), x(s, t, col), extra, pu, pc,
                _f(cell(s, t, "client_cpu")[0], 0), _f(cell(s, t, "cpu0_busy")[0], 0),
                _f(cell(s, t, "cpu1_busy")[0], 0), _f(cell(s, t, "foreign_cpu")[0], 0), counts))
        out.append("")

    bad = [r for r in raw if r["status"] not in (OK, DISTURBED)]
    if bad:
        out.append("Runs without a valid result:\n")
        seen = {}
        for r in bad:
            seen.setdefault((r["target"], r["scenario"], r["status"]), []).append(r["rep"])
        for (t, s, st), rp in seen.items():
            out.append("- %s %s: %s (rep %s)" % (t, s, st, ",".join(rp)))
        out.append("")

    if sanity:
        out.append("## Sanity check\n")
        out.append("| target | X-Backend, 4 requests on 4 new connections | X-Backend, 4 requests on one "
                   "keep-alive connection | /64k status, bytes |")
        out.append("|---|---|---|---|")
        for r in sanity:
            ka = r["ka"] + (" (closed by the server)" if r.get("ka_closed") not in ("0", "", None) else "")
            out.append("| %s | %s | %s | %s, %s |" % (r["target"], r["new"], ka, r["status64k"], r["size64k"]))
        out.append("")

    if mem:
        out.append("## Proxy memory (process group: VmRSS after each repetition, VmHWM at the end)\n")
        out.append("| target | processes | VmRSS MiB per repetition | VmHWM MiB |")
        out.append("|---|---|---|---|")
        for t in proxies:
            ms = [r for r in mem if r["target"] == t]
            if not ms:
                continue
            out.append("| %s | %s | %s | %s |" % (t, ms[-1]["nproc"], ", ".join(_f(_num(r["rss_kib"]) / 1024, 1) for r in ms),
                                                 _f(hwm(t), 1)))
        out.append("")
    print("\n".join(out))


def main():
    cmds = {"exec": L4.cmd_exec, "run": L4.cmd_run, "mem": L4.cmd_mem,
            "parse": cmd_parse, "sanity": cmd_sanity, "report": cmd_report}
    if len(sys.argv) < 2 or sys.argv[1] not in cmds:
        sys.exit(__doc__)
    cmds[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    main()
