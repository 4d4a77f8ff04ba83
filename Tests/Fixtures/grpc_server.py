#!/usr/bin/env python3
"""A gRPC target for Sluice's integration tests (grpcio, generic handlers, raw bytes; no
generated code).

  grpc_server.py [--port P] [--name N] [--tls CERT KEY] [--health SERVING|NOT_SERVING]
                 [--health-service NAME=STATUS]...

h2c (prior knowledge) by default, h2 over TLS with --tls. Prints "READY <port>" once listening
(P = 0 or absent picks a free loopback port); exits 0 on SIGTERM. SIGUSR1 flips the health
status between SERVING and NOT_SERVING (a target that turns unhealthy while it runs).

Methods (messages are raw bytes):
  /test.Echo/Unary         echoes the request; initial metadata x-served-by: N plus, for each
                           request metadata key starting with "x-" (x-forwarded-for,
                           x-forwarded-proto, x-sluice-trace, ...), x-seen-<key>: <value>;
                           trailing metadata x-served-by: N
  /test.Echo/ServerStream  request = a decimal count K (ASCII); streams K messages msg-0 ..
                           msg-(K-1); trailing x-served-by: N
  /test.Echo/ClientStream  answers the concatenation of all request messages
  /test.Echo/Fail          aborts with NOT_FOUND, details "nope" (trailing x-served-by: N):
                           the grpc-status trailers must pass end to end
  /grpc.health.v1.Health/Check
                           hand-encoded protobuf: the request's field 1 is the service name,
                           the reply's field 1 a varint: 1 SERVING, 2 NOT_SERVING (--health,
                           default SERVING, for every name not given by --health-service;
                           --health-service NAME=NOT_FOUND fails the RPC with NOT_FOUND)
"""
import argparse
import os
import signal
import sys
import threading
from concurrent import futures

try:
    import grpc
except ImportError:
    # Debian's python3-grpcio is in /usr/lib/python3/dist-packages, which only the system
    # interpreter sees (a pyenv or venv python3 first in PATH does not): run under that one.
    if os.path.realpath(sys.executable) != os.path.realpath("/usr/bin/python3") and os.path.exists("/usr/bin/python3"):
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    raise

NAME = "a"
HEALTH = {"status": "SERVING"}
SERVICES = {}  # --health-service NAME=STATUS
HEALTH_CODES = {"UNKNOWN": 0, "SERVING": 1, "NOT_SERVING": 2, "SERVICE_UNKNOWN": 3}


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def read_varint(buf, i):
    shift = n = 0
    while True:
        b = buf[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, i


def proto_fields(buf):
    """{field number: value} of a flat protobuf message (varints and length-delimited only)."""
    out, i = {}, 0
    while i < len(buf):
        key, i = read_varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            out[num], i = read_varint(buf, i)
        elif wt == 2:
            n, i = read_varint(buf, i)
            out[num] = bytes(buf[i:i + n])
            i += n
        else:
            raise ValueError("wire type %d" % wt)
    return out


def served_by():
    return (("x-served-by", NAME),)


def unary(request, context):
    md = [("x-served-by", NAME)]
    for k, v in context.invocation_metadata():
        if k.startswith("x-") and not k.endswith("-bin"):
            md.append(("x-seen-" + k, v))
    context.send_initial_metadata(tuple(md))
    context.set_trailing_metadata(served_by())
    return request


def server_stream(request, context):
    context.set_trailing_metadata(served_by())
    for i in range(int(request.decode() or "0")):
        yield b"msg-%d" % i


def client_stream(request_iterator, context):
    context.set_trailing_metadata(served_by())
    return b"".join(request_iterator)


def fail(request, context):
    context.set_trailing_metadata(served_by())
    context.abort(grpc.StatusCode.NOT_FOUND, "nope")


def health_check(request, context):
    service = proto_fields(request).get(1, b"").decode()
    status = SERVICES.get(service, HEALTH["status"])
    if status == "NOT_FOUND":
        context.abort(grpc.StatusCode.NOT_FOUND, "unknown service " + service)
    return b"\x08" + varint(HEALTH_CODES[status])


HANDLERS = {
    "/test.Echo/Unary": grpc.unary_unary_rpc_method_handler(unary),
    "/test.Echo/ServerStream": grpc.unary_stream_rpc_method_handler(server_stream),
    "/test.Echo/ClientStream": grpc.stream_unary_rpc_method_handler(client_stream),
    "/test.Echo/Fail": grpc.unary_unary_rpc_method_handler(fail),
    "/grpc.health.v1.Health/Check": grpc.unary_unary_rpc_method_handler(health_check),
}


class Generic(grpc.GenericRpcHandler):
    def service(self, handler_call_details):
        return HANDLERS.get(handler_call_details.method)  # None: UNIMPLEMENTED


def main():
    global NAME
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--name", default="a")
    ap.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    ap.add_argument("--health", choices=["SERVING", "NOT_SERVING"], default="SERVING")
    ap.add_argument("--health-service", action="append", default=[], metavar="NAME=STATUS",
                    help="STATUS (SERVING, NOT_SERVING, SERVICE_UNKNOWN or NOT_FOUND: the RPC fails "
                         "with NOT_FOUND) for service NAME; other names get --health")
    a = ap.parse_args()
    for kv in a.health_service:
        k, _, v = kv.partition("=")
        if v not in ("SERVING", "NOT_SERVING", "SERVICE_UNKNOWN", "NOT_FOUND"):
            ap.error("--health-service %s: unknown status" % kv)
        SERVICES[k] = v
    NAME = a.name
    HEALTH["status"] = a.health

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16), handlers=(Generic(),),
                         options=[("grpc.so_reuseport", 0)])
    addr = "127.0.0.1:%d" % a.port
    if a.tls:
        with open(a.tls[0], "rb") as f:
            cert = f.read()
        with open(a.tls[1], "rb") as f:
            key = f.read()
        port = server.add_secure_port(addr, grpc.ssl_server_credentials([(key, cert)]))
    else:
        port = server.add_insecure_port(addr)
    if not port:
        print("cannot listen on %s" % addr, file=sys.stderr)
        sys.exit(1)
    server.start()

    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())

    def flip(*_):
        HEALTH["status"] = "NOT_SERVING" if HEALTH["status"] == "SERVING" else "SERVING"
    signal.signal(signal.SIGUSR1, flip)
    print("READY %d" % port, flush=True)
    while not done.wait(0.2):
        pass
    server.stop(0).wait(2)
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
