#!/usr/bin/env python3
"""A target that records the PROXY protocol header each connection starts with.

  proxy_target.py [--port P] [--tls CERT KEY]

Prints "READY <port>" once listening on 127.0.0.1 and [::1] (P = 0 picks a free port; the
IPv6 socket takes the same port when it can). Each connection:
  * its first bytes are taken as a PROXY header when they start like one: v1 up to the first
    LF (107 bytes at most), v2 its 16 fixed bytes plus the length they announce; the exact
    bytes are recorded (hex), or "" when the connection does not start with a header;
  * with --tls the rest of the connection is TLS (the header comes before the handshake);
  * then a request starting "GET " is answered `200 ok` (HTTP health checks), anything else
    is echoed until the peer half-closes;
  * a connection whose first bytes are "STATS\\n" is answered with a JSON list of the
    headers recorded so far (oldest first, itself not counted) and closed.
"""
import argparse
import json
import socket
import ssl
import sys
import threading

SIG = b"\r\n\r\n\x00\r\nQUIT\n"
lock = threading.Lock()
headers = []


def recv_exact(sock, n, have=b""):
    data = have
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


def read_header(sock):
    """Returns (header bytes, bytes read after it)."""
    first = sock.recv(1)
    if not first:
        return b"", b""
    if first == b"P":
        data = first
        while not data.endswith(b"\n") and len(data) < 107:
            c = sock.recv(1)
            if not c:
                break
            data += c
        if data.startswith(b"PROXY "):
            return data, b""
        return b"", data
    if first == b"\r":
        fixed = recv_exact(sock, 16, first)
        if fixed[:12] != SIG or len(fixed) < 16:
            return b"", fixed
        length = int.from_bytes(fixed[14:16], "big")
        return recv_exact(sock, 16 + length, fixed), b""
    return b"", first


def serve(conn, context):
    try:
        conn.settimeout(10)
        first = conn.recv(6, socket.MSG_PEEK)
        if first == b"STATS\n":
            recv_exact(conn, 6)  # consumed: closing with unread bytes would reset
            with lock:
                body = json.dumps(headers).encode()
            conn.sendall(body)
            return
        header, rest = read_header(conn)
        with lock:
            headers.append(header.hex())
        if context is not None:
            conn = context.wrap_socket(conn, server_side=True)
        data = rest
        while len(data) < 4:
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
        if data.startswith(b"GET "):
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            return
        while data:
            conn.sendall(data)
            data = conn.recv(65536)
        try:
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            pass
    except (OSError, ssl.SSLError):
        pass
    finally:
        try:
            conn.close()
        except OSError:
            pass


def accept_loop(listener, context):
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve, args=(conn, context), daemon=True).start()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    args = ap.parse_args()
    context = None
    if args.tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.tls[0], args.tls[1])
    v4 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    v4.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    v4.bind(("127.0.0.1", args.port))
    v4.listen(128)
    port = v4.getsockname()[1]
    threading.Thread(target=accept_loop, args=(v4, context), daemon=True).start()
    try:
        v6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        v6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        v6.bind(("::1", port))
        v6.listen(128)
        threading.Thread(target=accept_loop, args=(v6, context), daemon=True).start()
    except OSError:
        pass
    print("READY %d" % port, flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    sys.exit(main())
