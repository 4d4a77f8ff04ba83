#!/usr/bin/env python3
"""A server that answers every HTTP request with hostile bytes in place of etcd's JSON gateway,
for the etcd client's malformed-answer tests. Usage: etcd_garbage.py MODE; prints READY <port>.
Each connection gets one answer, then is closed."""
import socket
import sys
import threading

MODE = sys.argv[1]

def ok(body):
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)

def chunked(body):
    return b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)

ANSWERS = {
    "badjson": ok(b"{nope"),
    "notobject": ok(b"[1,2,3]"),
    "badbase64": ok(b'{"header":{"revision":"3"},"kvs":[{"key":"!!!!"}]}'),
    "badint": ok(b'{"header":{"revision":"99999999999999999999"}}'),
    "badhttp": b"HTTP/9.9 two hundred\r\n\r\n",
    "badchunk": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
    "hugechunk": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffffff\r\n{}",
    "html404": b"HTTP/1.1 404 Not Found\r\nContent-Length: 20\r\n\r\n<html>nothing</html>",
    "binary": b"\x00\xff\xfe\r\n\r\n\x01\x02",
    "watchgarbage": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(b'{"result":{"events":[{"type":"BOOM","kv":{}}]}}\n'),
}

def serve(conn):
    try:
        data = b""
        while b"\r\n\r\n" not in data:
            d = conn.recv(65536)
            if not d:
                return
            data += d
        conn.sendall(ANSWERS[MODE])
    except OSError:
        pass
    finally:
        conn.close()

def main():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    print("READY %d" % s.getsockname()[1], flush=True)
    while True:
        conn, _ = s.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()

main()
