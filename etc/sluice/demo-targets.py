#!/usr/bin/env python3
"""Tiny targets for the example config: HTTP targets that answer with their own name, and
DNS-like UDP echo targets (each datagram is answered at once, with the target's name in
front) that also listen on TCP on the same port, where Sluice's default health check for
udp groups connects.

Usage: demo-targets.py [HTTP_PORT ...] [--udp UDP_PORT ...]   (default: 9001 9002)
"""
import http.server
import socket
import socketserver
import sys
import threading


def handler(name):
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = f"hello from target {name} ({self.server.server_address[1]})\n".encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    return H


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def udp_target(name, port):
    """Answers each datagram with `hello from udp target NAME (PORT): ` + the datagram; the
    TCP side accepts and closes (it is there for health checks)."""
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind(("127.0.0.1", port))
    tcp.listen(64)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", port))

    def accept():
        while True:
            conn, _ = tcp.accept()
            conn.close()

    def answer():
        prefix = f"hello from udp target {name} ({port}): ".encode()
        while True:
            data, peer = udp.recvfrom(65536)
            try:
                udp.sendto(prefix + data, peer)
            except OSError:
                pass  # too long with the prefix

    threading.Thread(target=accept, daemon=True).start()
    threading.Thread(target=answer, daemon=True).start()


args = sys.argv[1:]
udp_ports = []
if "--udp" in args:
    i = args.index("--udp")
    udp_ports = [int(p) for p in args[i + 1:]]
    args = args[:i]
ports = [int(p) for p in args] or [9001, 9002]
servers = [Server(("127.0.0.1", p), handler(chr(ord("A") + i))) for i, p in enumerate(ports)]
for i, p in enumerate(udp_ports):
    udp_target(chr(ord("A") + i), p)
for s in servers[1:]:
    threading.Thread(target=s.serve_forever, daemon=True).start()
print("demo targets on " + ", ".join(f"127.0.0.1:{p}" for p in ports)
      + "".join(f", udp 127.0.0.1:{p}" for p in udp_ports), flush=True)
servers[0].serve_forever()
