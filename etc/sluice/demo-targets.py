#!/usr/bin/env python3
"""Two tiny HTTP targets for the example config: each answers with its own name."""
import http.server
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


ports = [int(p) for p in sys.argv[1:]] or [9001, 9002]
servers = [Server(("127.0.0.1", p), handler(chr(ord("A") + i))) for i, p in enumerate(ports)]
for s in servers[1:]:
    threading.Thread(target=s.serve_forever, daemon=True).start()
print("demo targets on " + ", ".join(f"127.0.0.1:{p}" for p in ports), flush=True)
servers[0].serve_forever()
