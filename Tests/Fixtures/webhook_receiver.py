#!/usr/bin/env python3
"""A webhook receiver for Sluice's event rules (SPEC §13), for tests and the events benchmark.

Prints "READY <port>" once listening. Every POST is recorded as one JSON line in --log (appended,
so a restarted receiver on the same --port keeps one history): the X-Sluice-Event-Id, whether the
X-Sluice-Signature verified (HMAC-SHA256 of the body under --secret-file's content without one final
newline; null without a secret), the body's id and time, the arrival time and what was answered.

--cert/--key serve HTTPS (TLS) instead of HTTP.

Failing on purpose: --fail-every N answers every Nth request (1-based) with the failure; --fail-rate R
fails a random fraction R (seeded with --seed). --fail-mode status answers 500; close sends a cut-short
answer (head promising 10 bytes, 3 sent) and closes.
"""
import argparse
import hashlib
import hmac
import json
import random
import socketserver
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--log", required=True)
    ap.add_argument("--secret-file")
    ap.add_argument("--fail-every", type=int, default=0)
    ap.add_argument("--fail-rate", type=float, default=0.0)
    ap.add_argument("--fail-mode", choices=["status", "close"], default="status")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    args = ap.parse_args()

    secret = None
    if args.secret_file:
        with open(args.secret_file, "rb") as f:
            secret = f.read()
        if secret.endswith(b"\n"):
            secret = secret[:-1]
    lock = threading.Lock()
    rng = random.Random(args.seed)
    state = {"count": 0}
    log = open(args.log, "a", buffering=1)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def do_POST(self):
            arrival = time.time()
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            event_id = self.headers.get("X-Sluice-Event-Id")
            signature = self.headers.get("X-Sluice-Signature")
            sig_ok = None
            if secret is not None:
                expected = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
                sig_ok = signature is not None and hmac.compare_digest(expected, signature)
            try:
                event = json.loads(body)
            except ValueError:
                event = {}
            with lock:
                state["count"] += 1
                n = state["count"]
                fail = (args.fail_every > 0 and n % args.fail_every == 0) or (
                    args.fail_rate > 0 and rng.random() < args.fail_rate)
                answered = (args.fail_mode if fail else "ok")
                log.write(json.dumps({
                    "id": event_id, "sig_ok": sig_ok, "signature": signature, "answered": answered,
                    "arrival": arrival, "body_id": event.get("id"), "time": event.get("time"),
                    "type": event.get("type"), "target": event.get("target"), "path": self.path,
                    "content_type": self.headers.get("Content-Type"), "body": body.decode("utf-8", "replace"),
                }) + "\n")
            if fail and args.fail_mode == "close":
                self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
                self.wfile.flush()
                self.close_connection = True
                return
            status = 500 if fail else 200
            payload = b"nope\n" if fail else b"ok\n"
            self.send_response(status)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    class Server(socketserver.ThreadingMixIn, HTTPServer):
        daemon_threads = True
        allow_reuse_address = True

    server = Server(("127.0.0.1", args.port), Handler)
    if args.cert:
        import ssl
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.cert, args.key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    print("READY %d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
