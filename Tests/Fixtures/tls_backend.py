#!/usr/bin/env python3
"""An HTTPS target for Sluice's integration tests: http_backend.py behind TLS.

  tls_backend.py --port P --cert C --key K [--name N] [--client-ca CA] [--h2] [--failing]

Prints "READY <port>" once listening (P = 0 picks a free loopback port); exits 0 on SIGTERM.
Every request is answered as http_backend.py does (the same handler, imported): JSON with the
backend name, method, path, query, all request headers (so a test can check what Sluice added:
X-Forwarded-Proto, X-Sluice-Client-Cert-*, ...), body length and hash, and the same special
paths (/__stats, /status/<code>, /slow, /chunked, /big, /close). The JSON also has "tls":
  {"version": "TLSv1.3", "cipher": ..., "alpn": "http/1.1" | "h2" | null,
   "sni": the server name the client sent (null without SNI),
   "peer_subject": subject of the client's certificate, RFC 4514 ("CN=client-1,O=Sluice Tests"),
   "peer_serial": its serial in upper-case hex (both only with --client-ca, else null)}
so a test can check the `server_name` and `verify` of an https target group.

--client-ca CA asks for a client certificate (optional) and verifies it against CA: none is
fine, one that does not chain to CA fails the handshake.
--h2 offers ALPN "h2, http/1.1" and serves HTTP/2 (h2_server.py: stdlib, HPACK decoding by
libnghttp2 through ctypes) to clients that pick h2; the JSON then says "http_version": "2" and
"tls.alpn": "h2". Without --h2 only http/1.1
is offered (ALPN "http/1.1"; a client without ALPN is served HTTP/1.1 as well).
"""
import argparse
import os
import signal
import socket
import ssl
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import http_backend  # noqa: E402  (the handler, not its command line)


def tls_facts(sock, sni):
    try:
        peer = sock.getpeercert()
    except (ValueError, ssl.SSLError):
        peer = None
    subject = None
    if peer and peer.get("subject"):
        # RFC 4514 order (most specific first), as Sluice's X-Sluice-Client-Cert-Subject
        parts = [f"{SHORT.get(k, k)}={v}" for rdn in peer["subject"] for (k, v) in rdn]
        subject = ",".join(reversed(parts))
    cipher = sock.cipher()
    return {"version": sock.version(), "cipher": cipher[0] if cipher else None,
            "alpn": sock.selected_alpn_protocol(), "sni": sni, "peer_subject": subject,
            "peer_serial": peer.get("serialNumber") if peer else None}


SHORT = {"commonName": "CN", "organizationName": "O", "organizationalUnitName": "OU",
         "countryName": "C", "stateOrProvinceName": "ST", "localityName": "L",
         "domainComponent": "DC", "userId": "UID", "streetAddress": "STREET"}


class TLSHandler(http_backend.Handler):
    """http_backend's handler on a TLS connection: handshake in the connection's thread."""

    def setup(self):
        raw = self.request
        raw.settimeout(10)  # a client that never finishes its handshake does not hold a thread
        tls = self.server.ctx.wrap_socket(raw, server_side=True, do_handshake_on_connect=False)
        try:
            tls.do_handshake()
        except (ssl.SSLError, OSError):
            tls.close()
            raise
        tls.settimeout(None)
        self.sni = getattr(tls, "sni_name", None)
        self.request = self.connection = tls
        self.h2 = self.server.h2 and tls.selected_alpn_protocol() == "h2"
        super().setup()

    def handle(self):
        if self.h2:
            import h2_server
            h2_server.serve_connection(self.connection, lambda m, p, h, b: h2_server.run_h1_handler(
                type(self), m, p, h, b, connection=self.connection, sni=self.sni))
            return
        super().handle()

    def extra_info(self):
        return {"tls": tls_facts(self.connection, self.sni),
                "http_version": "2" if getattr(self, "in_h2", False) else "1.1"}


def _record_sni(sock, server_name, ctx):
    sock.sni_name = server_name  # the SSLSocket being handshaken (tls_facts reads it back)


class TLSServer(http_backend.Server):
    def handle_error(self, request, client_address):
        pass  # failed handshakes (tests do that on purpose) are not worth a traceback


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--name", default="a")
    ap.add_argument("--client-ca")
    ap.add_argument("--h2", action="store_true")
    ap.add_argument("--failing", action="store_true", help="every path but /healthz answers 500")
    a = ap.parse_args()
    http_backend.name = a.name
    http_backend.failing = a.failing

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a.cert, a.key)
    ctx.set_alpn_protocols(["h2", "http/1.1"] if a.h2 else ["http/1.1"])
    if a.client_ca:
        ctx.load_verify_locations(a.client_ca)
        ctx.verify_mode = ssl.CERT_OPTIONAL
    ctx.sni_callback = _record_sni

    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    srv = TLSServer(("127.0.0.1", a.port), TLSHandler)
    srv.ctx = ctx
    srv.h2 = a.h2
    print("READY %d" % srv.server_address[1], flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
