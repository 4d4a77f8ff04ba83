#!/usr/bin/env python3
"""A real HTTP/1.1 target for Sluice's integration tests (keep-alive, threads).

Prints "READY <port>" once listening. Every request is answered with a JSON object
describing what arrived: backend name, method, path, query, headers, body length and a
hash of the body. Special paths:
  /__stats           {"requests": N, "paths": [...], "connections": C} (not counted;
                     C counts accepted connections, this one included)
  /status/<code>     answers with that status
  /slow?ms=N         waits N ms before answering
  /chunked           answers with a chunked body of 3 chunks
  /big?n=N           answers with N bytes
  /close             answers and closes the connection
  /ws                WebSocket upgrade (101) then echoes bytes until EOF
A third argument "failing" makes every other path but /healthz answer 500 (a target whose
health checks pass while its traffic fails).
"""
import hashlib
import http.server
import json
import socketserver
import sys
import threading
import time
import urllib.parse

# Command line: PORT NAME [failing]. Imported as a module (tls_backend.py), the importer sets
# `name` and `failing` itself and serves with `Server`/`Handler`.
name = "a"
failing = False
lock = threading.Lock()
seen = []
connections = [0]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Head and body leave in separate writes: without TCP_NODELAY the body waits for the
    # proxy's delayed ACK (40 ms a request).
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def setup(self):
        with lock:
            connections[0] += 1
        super().setup()

    def extra_info(self):
        """More keys for the JSON answer (tls_backend.py adds the TLS facts)."""
        return {}

    def read_body(self):
        te = self.headers.get("Transfer-Encoding", "")
        if te.lower() == "chunked":
            body = b""
            while True:
                line = self.rfile.readline()
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return body
                body += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length", "0") or "0")
        return self.rfile.read(n) if n > 0 else b""

    def send(self, status, body, extra=None, close=False):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Backend", name)
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def handle_any(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/__stats":
            self.read_body()
            with lock:
                body = json.dumps({"requests": len(seen), "paths": list(seen),
                                   "connections": connections[0]}).encode()
            return self.send(200, body)
        body = self.read_body()
        with lock:
            seen.append(self.command + " " + self.path)
        info = {
            "backend": name, "method": self.command, "path": url.path, "query": url.query,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body_len": len(body), "body_sha": hashlib.sha256(body).hexdigest(),
        }
        info.update(self.extra_info())
        if url.path == "/ws" and self.headers.get("Upgrade", "").lower() == "websocket":
            self.send_response(101)
            self.send_header("Upgrade", "websocket")
            self.send_header("Connection", "Upgrade")
            self.end_headers()
            self.wfile.flush()
            while True:
                data = self.connection.recv(65536)
                if not data:
                    break
                self.connection.sendall(data)
            self.close_connection = True
            return
        q = urllib.parse.parse_qs(url.query)
        if failing and url.path != "/healthz":
            return self.send(500, json.dumps(info).encode())
        if url.path.startswith("/status/"):
            return self.send(int(url.path.split("/")[2]), json.dumps(info).encode())
        if url.path == "/slow":
            time.sleep(int(q.get("ms", ["100"])[0]) / 1000)
        if url.path == "/big":
            n = int(q.get("n", ["65536"])[0])
            return self.send(200, b"x" * n)
        if url.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("X-Backend", name)
            self.end_headers()
            for part in (b"hello ", b"chunked ", b"world\n"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
            return
        return self.send(200, json.dumps(info).encode(), close=url.path == "/close")

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = handle_any


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default backlog is 5: a burst of connections (20 HTTP/2 streams, each
    # served on its own target connection) would wait a SYN retransmit (1 s) for the rest.
    request_queue_size = 256


if __name__ == "__main__":
    name = sys.argv[2] if len(sys.argv) > 2 else "a"
    failing = len(sys.argv) > 3 and sys.argv[3] == "failing"
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    srv = Server(("127.0.0.1", port), Handler)
    print("READY %d" % srv.server_address[1], flush=True)
    srv.serve_forever()
