#!/usr/bin/env python3
"""HTTP/2 for Sluice's test targets: http_backend.py's answers over h2 (stdlib + ctypes).

  h2_server.py [--port P] [--name N] [--failing]     an h2c target (prior knowledge)

Prints "READY <port>" once listening; exits 0 on SIGTERM. A connection that starts with the
HTTP/2 client preface is served as HTTP/2, any other as HTTP/1.1 (so HTTP/1.1 health checks
work too). Every request gets http_backend.py's answer (same JSON, same special paths), with
"http_version": "2" for HTTP/2 requests. Streams are answered concurrently (one thread per
request: /slow on one stream does not hold the others), with flow control both ways.

Also the module behind `tls_backend.py --h2`: serve_connection(sock, dispatch) runs one server
connection on a connected socket (plain or ssl.SSLSocket whose ALPN said h2, preface not yet
read); dispatch(method, path, headers, body) -> (status, [(name, value)], body) runs in a
thread per request; run_h1_handler() turns http_backend's handler into such a dispatch.

Header blocks are decoded with libnghttp2's HPACK inflater through ctypes (libnghttp2 is what
Sluice itself links; Debian libnghttp2-14) -- peers Huffman-code their headers -- and encoded as
literals without indexing and without Huffman, which every decoder accepts.
"""
import ctypes
import ctypes.util
import http.client
import io
import os
import queue
import selectors
import signal
import socket
import ssl
import struct
import sys
import threading

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS, PADDED, PRIORITY_FLAG = 0x1, 0x1, 0x4, 0x8, 0x20
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "trailer"}


# ------------------------------------------------------------------ HPACK
class _NV(ctypes.Structure):
    _fields_ = [("name", ctypes.c_void_p), ("value", ctypes.c_void_p), ("namelen", ctypes.c_size_t),
                ("valuelen", ctypes.c_size_t), ("flags", ctypes.c_uint8)]


_LIB = None


def _lib():
    global _LIB
    if _LIB is None:
        lib = ctypes.CDLL(ctypes.util.find_library("nghttp2") or "libnghttp2.so.14")
        lib.nghttp2_hd_inflate_new.argtypes = [ctypes.POINTER(ctypes.c_void_p)]
        lib.nghttp2_hd_inflate_new.restype = ctypes.c_int
        lib.nghttp2_hd_inflate_del.argtypes = [ctypes.c_void_p]
        lib.nghttp2_hd_inflate_hd2.argtypes = [ctypes.c_void_p, ctypes.POINTER(_NV), ctypes.POINTER(ctypes.c_int),
                                               ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        lib.nghttp2_hd_inflate_hd2.restype = ctypes.c_ssize_t
        lib.nghttp2_hd_inflate_end_headers.argtypes = [ctypes.c_void_p]
        _LIB = lib
    return _LIB


class Inflater:
    """One connection's HPACK decoder (blocks must be decoded in the order they arrived)."""

    def __init__(self):
        self.lib = _lib()
        self.p = ctypes.c_void_p()
        if self.lib.nghttp2_hd_inflate_new(ctypes.byref(self.p)) != 0:
            raise MemoryError("nghttp2_hd_inflate_new")

    def decode(self, block):
        buf = ctypes.create_string_buffer(bytes(block), len(block))
        base, off, out = ctypes.addressof(buf), 0, []
        nv, flags = _NV(), ctypes.c_int()
        while True:
            rv = self.lib.nghttp2_hd_inflate_hd2(self.p, ctypes.byref(nv), ctypes.byref(flags),
                                                 base + off, len(block) - off, 1)
            if rv < 0:
                raise ValueError("HPACK decoding error %d" % rv)
            off += rv
            if flags.value & 0x02:  # NGHTTP2_HD_INFLATE_EMIT
                out.append((ctypes.string_at(nv.name, nv.namelen).decode("latin-1"),
                            ctypes.string_at(nv.value, nv.valuelen).decode("latin-1")))
            if flags.value & 0x01:  # NGHTTP2_HD_INFLATE_FINAL
                self.lib.nghttp2_hd_inflate_end_headers(self.p)
                return out
            if rv == 0 and not flags.value & 0x02:
                raise ValueError("HPACK: truncated block")

    def close(self):
        if self.p:
            self.lib.nghttp2_hd_inflate_del(self.p)
            self.p = None


def _int(n, prefix_bits, first=0):
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


def encode(headers):
    out = bytearray()
    for k, v in headers:
        k, v = k.lower().encode("latin-1"), str(v).encode("latin-1")
        out += b"\x00" + _int(len(k), 7) + k + _int(len(v), 7) + v
    return bytes(out)


def frame(ftype, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", sid & 0x7FFFFFFF) + payload


# ------------------------------------------------------------------ one server connection
class _Stream:
    def __init__(self):
        self.block = b""
        self.headers = None
        self.trailers = []
        self.body = bytearray()
        self.window = 0
        self.pending = b""   # response DATA not yet allowed by flow control
        self.pending_end = False


class Connection:
    def __init__(self, sock, dispatch):
        self.sock = sock
        self.dispatch = dispatch
        self.inflater = Inflater()
        self.out = bytearray()
        self.streams = {}
        self.peer_initial_window = 65535
        self.peer_max_frame = 16384
        self.conn_window = 65535
        self.done = queue.Queue()
        self.wake_r, self.wake_w = socket.socketpair()
        self.wake_r.setblocking(False)
        self.closing = False
        self.busy = 0
        self.inbuf = b""
        self.cont_sid = None

    # -- reading
    def on_frame(self, ftype, flags, sid, payload):
        if self.cont_sid is not None and ftype != CONTINUATION:
            raise ValueError("expected CONTINUATION")
        if ftype == SETTINGS:
            if not flags & ACK:
                for i in range(0, len(payload) - 5, 6):
                    ident, val = struct.unpack(">HI", payload[i:i + 6])
                    if ident == 4:  # INITIAL_WINDOW_SIZE
                        delta = val - self.peer_initial_window
                        self.peer_initial_window = val
                        for st in self.streams.values():
                            st.window += delta
                    elif ident == 5:
                        self.peer_max_frame = val
                self.out += frame(SETTINGS, ACK, 0)
        elif ftype == PING:
            if not flags & ACK:
                self.out += frame(PING, ACK, 0, payload)
        elif ftype == WINDOW_UPDATE:
            inc = struct.unpack(">I", payload[:4])[0] & 0x7FFFFFFF
            if sid == 0:
                self.conn_window += inc
            elif sid in self.streams:
                self.streams[sid].window += inc
        elif ftype == GOAWAY:
            self.closing = True
        elif ftype == RST_STREAM:
            self.streams.pop(sid, None)
        elif ftype in (HEADERS, CONTINUATION):
            if ftype == HEADERS:
                if flags & PADDED:
                    payload = payload[1:len(payload) - payload[0]]
                if flags & PRIORITY_FLAG:
                    payload = payload[5:]
                st = self.streams.get(sid)
                if st is None:
                    st = self.streams[sid] = _Stream()
                    st.window = self.peer_initial_window
                st.block = payload
                st.end_after = bool(flags & END_STREAM)
            else:
                st = self.streams.get(sid)
                if st is None:
                    return
                st.block += payload
            if flags & END_HEADERS:
                self.cont_sid = None
                fields = self.inflater.decode(st.block)
                st.block = b""
                if st.headers is None:
                    st.headers = fields
                else:
                    st.trailers = fields
                if st.end_after:
                    self.start(sid, st)
            else:
                self.cont_sid = sid
        elif ftype == DATA:
            st = self.streams.get(sid)
            if flags & PADDED:
                payload = payload[1:len(payload) - payload[0]]
            if payload:
                self.out += frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", len(payload)))
                if st is not None and not flags & END_STREAM:
                    self.out += frame(WINDOW_UPDATE, 0, sid, struct.pack(">I", len(payload)))
            if st is not None:
                st.body += payload
                if flags & END_STREAM:
                    self.start(sid, st)

    def start(self, sid, st):
        self.busy += 1
        threading.Thread(target=self.work, args=(sid, st), daemon=True).start()

    def work(self, sid, st):
        pseudo = {k: v for k, v in st.headers if k.startswith(":")}
        regular = [(k, v) for k, v in st.headers if not k.startswith(":")] + st.trailers
        try:
            status, headers, body = self.dispatch(pseudo.get(":method", "GET"), pseudo.get(":path", "/"),
                                                  regular + [(":authority", pseudo.get(":authority", ""))],
                                                  bytes(st.body))
        except Exception as e:  # noqa: BLE001  (a fixture answers 500 rather than dying)
            status, headers, body = 500, [("content-type", "text/plain")], ("fixture error: %r" % e).encode()
        self.done.put((sid, status, headers, body))
        try:
            self.wake_w.send(b"x")
        except OSError:
            pass

    # -- writing
    def respond(self, sid, status, headers, body):
        st = self.streams.get(sid)
        self.busy -= 1
        if st is None:
            return  # reset meanwhile
        hs = [(":status", str(status))] + [(k, v) for k, v in headers if k.lower() not in HOP_BY_HOP]
        block = encode(hs)
        first, rest = block[:self.peer_max_frame], block[self.peer_max_frame:]
        flags = 0 if rest else END_HEADERS
        if not body:
            flags |= END_STREAM
        self.out += frame(HEADERS, flags, sid, first)
        while rest:
            chunk, rest = rest[:self.peer_max_frame], rest[self.peer_max_frame:]
            self.out += frame(CONTINUATION, 0 if rest else END_HEADERS, sid, chunk)
        if not body:
            self.streams.pop(sid, None)
            return
        st.pending, st.pending_end = body, True
        self.flush_data()

    def flush_data(self):
        for sid, st in list(self.streams.items()):
            while st.pending and self.conn_window > 0 and st.window > 0:
                n = min(len(st.pending), self.conn_window, st.window, self.peer_max_frame)
                chunk, st.pending = st.pending[:n], st.pending[n:]
                self.conn_window -= n
                st.window -= n
                last = not st.pending and st.pending_end
                self.out += frame(DATA, END_STREAM if last else 0, sid, chunk)
                if last:
                    self.streams.pop(sid, None)

    def run(self):
        sock = self.sock
        sock.settimeout(10)
        got = b""
        while len(got) < len(PREFACE):
            d = sock.recv(len(PREFACE) - len(got))
            if not d:
                return
            got += d
        if got != PREFACE:
            return
        self.out += frame(SETTINGS, 0, 0, struct.pack(">HI", 3, 100))  # MAX_CONCURRENT_STREAMS
        sock.setblocking(False)
        sel = selectors.DefaultSelector()
        sel.register(sock, selectors.EVENT_READ)
        sel.register(self.wake_r, selectors.EVENT_READ)
        registered = True
        eof = False
        try:
            while True:
                readable = isinstance(sock, ssl.SSLSocket) and sock.pending() > 0
                for key, ev in sel.select(0 if readable else 1.0):
                    if key.fileobj is sock and ev & selectors.EVENT_READ:
                        readable = True
                    if key.fileobj is self.wake_r:
                        try:
                            self.wake_r.recv(4096)
                        except BlockingIOError:
                            pass
                    if key.fileobj is sock and ev & selectors.EVENT_WRITE:
                        self.write()
                if readable and not eof:
                    eof = not self.read()
                while True:
                    try:
                        self.respond(*self.done.get_nowait())
                    except queue.Empty:
                        break
                self.flush_data()
                if self.out:
                    self.write()
                if (eof or self.closing) and self.busy == 0 and not self.out:
                    return
                mask = (0 if eof else selectors.EVENT_READ) | (selectors.EVENT_WRITE if self.out else 0)
                if mask:
                    if registered:
                        sel.modify(sock, mask)
                    else:
                        sel.register(sock, mask)
                        registered = True
                elif registered:
                    sel.unregister(sock)  # the peer closed: wait for the workers (wake_r)
                    registered = False
        except (OSError, ValueError, ssl.SSLError):
            return
        finally:
            self.inflater.close()
            self.wake_r.close()
            self.wake_w.close()

    def read(self):
        while True:
            try:
                d = self.sock.recv(65536)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                return True
            if not d:
                return False
            self.inbuf += d
            while len(self.inbuf) >= 9:
                n = int.from_bytes(self.inbuf[:3], "big")
                if len(self.inbuf) < 9 + n:
                    break
                b = self.inbuf
                self.on_frame(b[3], b[4], int.from_bytes(b[5:9], "big") & 0x7FFFFFFF, b[9:9 + n])
                self.inbuf = b[9 + n:]

    def write(self):
        while self.out:
            try:
                n = self.sock.send(self.out[:65536])
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                return
            del self.out[:n]


def serve_connection(sock, dispatch):
    Connection(sock, dispatch).run()


# ------------------------------------------------------------------ http_backend's answers
def run_h1_handler(cls, method, path, headers, body, **attrs):
    """Run http_backend's Handler.handle_any (or a subclass's) on one request without a
    socket: the HTTP/1.1 response it writes is parsed back into (status, headers, body).
    ATTRS are set on the handler (connection, sni, ... for its extra_info)."""
    h = cls.__new__(cls)
    lines = []
    authority = ""
    for k, v in headers:
        if k == ":authority":
            authority = v
        else:
            lines.append("%s: %s" % (k, v))
    if authority and not any(k.lower() == "host" for k, _ in headers):
        lines.insert(0, "host: " + authority)
    if body and not any(k.lower() == "content-length" for k, _ in headers):
        lines.append("content-length: %d" % len(body))
    h.headers = http.client.parse_headers(io.BytesIO(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")))
    h.command, h.path, h.request_version = method, path, "HTTP/1.1"
    h.requestline = "%s %s HTTP/2" % (method, path)
    h.rfile, h.wfile = io.BytesIO(body), io.BytesIO()
    h.close_connection = False
    h.client_address = ("127.0.0.1", 0)
    h.server = None
    h.in_h2 = True
    for k, v in attrs.items():
        setattr(h, k, v)
    h.handle_any()
    raw = h.wfile.getvalue()
    head, _, rest = raw.partition(b"\r\n\r\n")
    hl = head.decode("latin-1").split("\r\n")
    status = int(hl[0].split()[1])
    out = []
    chunked = False
    for line in hl[1:]:
        k, _, v = line.partition(":")
        k, v = k.strip().lower(), v.strip()
        if k == "transfer-encoding" and "chunked" in v.lower():
            chunked = True
        out.append((k, v))
    if chunked:
        data, i = bytearray(), 0
        while True:
            j = rest.index(b"\r\n", i)
            size = int(rest[i:j].split(b";")[0], 16)
            if size == 0:
                break
            data += rest[j + 2:j + 2 + size]
            i = j + 2 + size + 2
        rest = bytes(data)
    return status, out, rest


def main():
    import argparse
    sys.dont_write_bytecode = True
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import http_backend

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--name", default="a")
    ap.add_argument("--failing", action="store_true", help="every path but /healthz answers 500")
    a = ap.parse_args()
    http_backend.name = a.name
    http_backend.failing = a.failing

    class H2CHandler(http_backend.Handler):
        in_h2 = False

        def handle(self):
            try:
                first = self.connection.recv(len(PREFACE), socket.MSG_PEEK | socket.MSG_WAITALL)
            except OSError:
                return
            if first != PREFACE:
                return super().handle()  # HTTP/1.1
            serve_connection(self.connection, lambda m, p, h, b: run_h1_handler(H2CHandler, m, p, h, b))

        def extra_info(self):
            return {"http_version": "2" if self.in_h2 else "1.1"}

    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    srv = http_backend.Server(("127.0.0.1", a.port), H2CHandler)
    print("READY %d" % srv.server_address[1], flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
