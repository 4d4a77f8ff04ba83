#!/usr/bin/env python3
"""A UDP echo target for Sluice's integration tests, DNS-like: every datagram is answered
at once with NAME + b"|" + the datagram exactly as it arrived (so a PROXY v2 header the
proxy put in front shows up in the answer), or with the datagram alone when NAME is "-".

Usage: udp_echo.py NAME [--host H] [--port P] [--no-tcp]

It also listens on TCP on the same port (for Sluice's default TCP health check, and for
tcp_udp listeners): a TCP connection gets NAME + "\n" and then its bytes echoed, until EOF.
--no-tcp leaves the TCP side closed (a target whose health checks fail).
Prints "READY <port>" once both sides listen; b"__stats" answers NAME|datagrams=N|clients=M
(not counted).
"""
import socket
import sys
import threading

args = sys.argv[1:]
name = args[0].encode() if args else b"echo"
host = "127.0.0.1"
port = 0
tcp = True
i = 1
while i < len(args):
    if args[i] == "--host":
        host = args[i + 1]
        i += 2
    elif args[i] == "--port":
        port = int(args[i + 1])
        i += 2
    elif args[i] == "--no-tcp":
        tcp = False
        i += 1
    else:
        raise SystemExit("unknown argument " + args[i])

family = socket.AF_INET6 if ":" in host else socket.AF_INET


def bind_both():
    # Port 0: take a free UDP port, then the same port on TCP (retry when TCP has it taken).
    for _ in range(50):
        u = socket.socket(family, socket.SOCK_DGRAM)
        u.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        u.bind((host, port))
        p = u.getsockname()[1]
        if not tcp:
            return u, None, p
        t = socket.socket(family, socket.SOCK_STREAM)
        t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            t.bind((host, p))
        except OSError:
            u.close()
            t.close()
            if port:
                raise
            continue
        t.listen(128)
        return u, t, p
    raise SystemExit("no port free on both TCP and UDP")


udp, listener, bound_port = bind_both()
count = 0
clients = set()


def serve_tcp(conn):
    try:
        conn.sendall(name + b"\n")
        while True:
            data = conn.recv(65536)
            if not data:
                break
            conn.sendall(data)
    except OSError:
        pass
    finally:
        conn.close()


def accept_loop():
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve_tcp, args=(conn,), daemon=True).start()


if listener is not None:
    threading.Thread(target=accept_loop, daemon=True).start()

print("READY %d" % bound_port, flush=True)
while True:
    data, peer = udp.recvfrom(65536)
    if data == b"__stats":
        udp.sendto(name + b"|datagrams=%d|clients=%d" % (count, len(clients)), peer)
        continue
    count += 1
    clients.add(peer)
    try:
        udp.sendto(data if name == b"-" else name + b"|" + data, peer)
    except OSError:
        pass  # too long with the name in front: use NAME "-" for the largest datagrams
