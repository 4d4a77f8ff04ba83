#!/usr/bin/env python3
"""A gRPC client for Sluice's integration tests (grpcio, raw bytes; pairs with grpc_server.py).

  grpc_client.py --target HOST:PORT [--tls-ca CA [--authority NAME]] [--metadata K=V]... CALL [ARGS]

CALL: unary TEXT | server-stream K | client-stream A B C ... | fail | health [SERVICE]

Prints one JSON line:
  {"code": "OK" | grpc status name, "details": str, "messages": [str, ...],
   "trailing": {key: value}, "initial": {key: value}}
(health: messages = ["SERVING"] / ["NOT_SERVING"] / ...). Exit 0 even when the RPC fails (the
JSON says how); exit 2 on bad usage. The channel has grpc.enable_retries=0 and every call a 5 s
deadline (--deadline). Without --tls-ca it speaks h2c (prior knowledge); with it, TLS verified
against CA, with NAME (default: the host of --target) as SNI, certificate name and :authority.
"""
import argparse
import json
import os
import sys

try:
    import grpc
except ImportError:
    # Debian's python3-grpcio is in /usr/lib/python3/dist-packages, which only the system
    # interpreter sees (a pyenv or venv python3 first in PATH does not): run under that one.
    if os.path.realpath(sys.executable) != os.path.realpath("/usr/bin/python3") and os.path.exists("/usr/bin/python3"):
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    raise

HEALTH_NAMES = {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}


def md_dict(md):
    out = {}
    for k, v in md or ():
        out[k] = v.decode("latin-1") if isinstance(v, bytes) else v
    return out


def encode_health_request(service):
    s = service.encode()
    return (b"\x0a" + bytes([len(s)]) + s) if s else b""  # names < 128 bytes


def decode_health_response(buf):
    # field 1 (tag 0x08), a small varint
    if len(buf) >= 2 and buf[0] == 0x08:
        return HEALTH_NAMES.get(buf[1], str(buf[1]))
    return "UNKNOWN" if not buf else "unparsed:" + buf.hex()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--target", required=True)
    ap.add_argument("--tls-ca")
    ap.add_argument("--authority")
    ap.add_argument("--metadata", action="append", default=[], metavar="K=V")
    ap.add_argument("--deadline", type=float, default=5.0)
    ap.add_argument("call", choices=["unary", "server-stream", "client-stream", "fail", "health"])
    ap.add_argument("args", nargs="*")
    a = ap.parse_args()

    options = [("grpc.enable_retries", 0)]
    if a.tls_ca:
        with open(a.tls_ca, "rb") as f:
            creds = grpc.ssl_channel_credentials(root_certificates=f.read())
        if a.authority:
            options += [("grpc.ssl_target_name_override", a.authority),
                        ("grpc.default_authority", a.authority)]
        channel = grpc.secure_channel(a.target, creds, options=options)
    else:
        if a.authority:
            options.append(("grpc.default_authority", a.authority))
        channel = grpc.insecure_channel(a.target, options=options)
    metadata = tuple(tuple(kv.split("=", 1)) for kv in a.metadata) or None

    res = {"code": "OK", "details": "", "messages": [], "trailing": {}, "initial": {}}
    call = None
    try:
        if a.call in ("unary", "fail", "health"):
            method = {"unary": "/test.Echo/Unary", "fail": "/test.Echo/Fail",
                      "health": "/grpc.health.v1.Health/Check"}[a.call]
            if a.call == "health":
                req = encode_health_request(a.args[0] if a.args else "")
            else:
                req = (a.args[0] if a.args else "").encode()
            resp, call = channel.unary_unary(method).with_call(req, timeout=a.deadline, metadata=metadata)
            res["messages"] = [decode_health_response(resp) if a.call == "health" else resp.decode("latin-1")]
        elif a.call == "server-stream":
            call = channel.unary_stream("/test.Echo/ServerStream")(
                (a.args[0] if a.args else "3").encode(), timeout=a.deadline, metadata=metadata)
            for m in call:
                res["messages"].append(m.decode("latin-1"))
        else:  # client-stream
            resp, call = channel.stream_unary("/test.Echo/ClientStream").with_call(
                iter([x.encode() for x in a.args]), timeout=a.deadline, metadata=metadata)
            res["messages"] = [resp.decode("latin-1")]
        res["code"] = call.code().name
        res["details"] = call.details() or ""
    except grpc.RpcError as e:
        call = e
        res["code"] = e.code().name
        res["details"] = e.details() or ""
    if call is not None:
        try:
            res["initial"] = md_dict(call.initial_metadata())
            res["trailing"] = md_dict(call.trailing_metadata())
        except Exception:  # noqa: BLE001  (a call that never started has no metadata)
            pass
    channel.close()
    print(json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
