#!/usr/bin/env bash
# Tests/Fixtures/selftest.sh: the TLS/HTTP/2/gRPC fixtures against each other and curl, without
# sluiced -- proves a machine has what they need (python3-grpcio, libnghttp2, openssl, curl with
# HTTP/2) before an integration test blames Sluice. Prints one line per check, then
# "N passed, M failed"; exit 1 when a check failed. Certificates: make_certs.sh into a temp dir.
set -u
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
T=$(mktemp -d /tmp/fixtures-selftest.XXXXXX)
PIDS=()
cleanup() { local p; for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
pass=0 fail=0
check() {  # NAME EXPECTED-SUBSTRING OUTPUT
  if [[ $3 == *"$2"* ]]; then pass=$((pass + 1)); echo "ok   $1"
  else fail=$((fail + 1)); echo "FAIL $1: expected '$2' in: ${3:0:300}"; fi
}
start() {  # VAR CMD...: start a fixture, wait for "READY <port>", port -> VAR
  local var=$1 out i
  shift
  out=$T/$var.out
  "$@" >"$out" 2>"$T/$var.err" &
  PIDS+=($!)
  for ((i = 0; i < 100; i++)); do
    [[ -s $out ]] && break
    sleep 0.1
  done
  printf -v "$var" '%s' "$(awk '/^READY/{print $2}' "$out")"
  [[ -n ${!var} ]] || { echo "FAIL $var did not start: $(tail -3 "$T/$var.err")"; fail=$((fail + 1)); }
}

bash "$HERE/make_certs.sh" "$T/certs" >/dev/null 2>&1 || { echo "FAIL make_certs.sh"; exit 1; }
C=$T/certs

start GRPC python3 "$HERE/grpc_server.py" --name g1
start GRPCS python3 "$HERE/grpc_server.py" --name g2 --tls "$C/a.pem" "$C/a.key" --health NOT_SERVING
start H2C python3 "$HERE/h2_server.py" --name h
start TLSB python3 "$HERE/tls_backend.py" --cert "$C/b.pem" --key "$C/b.key" --name t --client-ca "$C/ca.pem" --h2
start TLS1 python3 "$HERE/tls_backend.py" --cert "$C/a.pem" --key "$C/a.key" --name t1

G="python3 $HERE/grpc_client.py"
check "grpc unary (h2c)" '"messages": ["hi"], "trailing": {"x-served-by": "g1"}' "$($G --target 127.0.0.1:$GRPC unary hi)"
check "grpc server-stream" '["msg-0", "msg-1", "msg-2"]' "$($G --target 127.0.0.1:$GRPC server-stream 3)"
check "grpc client-stream" '["abc"]' "$($G --target 127.0.0.1:$GRPC client-stream a b c)"
check "grpc fail: NOT_FOUND + trailers" '"code": "NOT_FOUND", "details": "nope", "messages": [], "trailing": {"x-served-by": "g1"}' \
  "$($G --target 127.0.0.1:$GRPC fail)"
check "grpc health SERVING" '["SERVING"]' "$($G --target 127.0.0.1:$GRPC health)"
check "grpc over TLS, health NOT_SERVING" '["NOT_SERVING"]' "$($G --target 127.0.0.1:$GRPCS --tls-ca "$C/ca.pem" --authority a.example health)"
check "grpc TLS, unknown CA" '"code": "UNAVAILABLE"' "$($G --target 127.0.0.1:$GRPCS --tls-ca "$C/other-ca.pem" --authority a.example unary x 2>/dev/null)"

check "h2c prior knowledge" '"http_version": "2"' "$(curl -s --http2-prior-knowledge "http://127.0.0.1:$H2C/p?q=1")"
check "h2c port speaks HTTP/1.1 too" '"http_version": "1.1"' "$(curl -s "http://127.0.0.1:$H2C/p")"
check "h2c 300 KB each way" '"body_len": 300000' "$(head -c 300000 /dev/zero | curl -s --http2-prior-knowledge --data-binary @- "http://127.0.0.1:$H2C/post")"
check "h2c /status/503" '503' "$(curl -s -o /dev/null -w '%{http_code}' --http2-prior-knowledge "http://127.0.0.1:$H2C/status/503")"

R="--resolve b.example:$TLSB:127.0.0.1"
out=$(curl -s --cacert "$C/ca.pem" $R --cert "$C/client.pem" --key "$C/client.key" -H 'X-Forwarded-Proto: https' "https://b.example:$TLSB/x")
check "tls_backend h2 + client cert" '"alpn": "h2", "sni": "b.example", "peer_subject": "CN=client-1,O=Sluice Tests"' "$out"
check "tls_backend echoes headers" '"x-forwarded-proto": "https"' "$out"
check "tls_backend HTTP/1.1" '"alpn": "http/1.1"' "$(curl -s --http1.1 --cacert "$C/ca.pem" "https://localhost:$TLS1/")"
check "tls_backend refuses a stranger's cert" '000' "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$C/ca.pem" $R --cert "$C/stranger.pem" --key "$C/stranger.key" "https://b.example:$TLSB/x")"

H="python3 $HERE/h2_hostile.py --wait 1"
check "h2_hostile get (h2c)" '"headers_responses": 3, "statuses": {"200": 3}' "$($H --port "$H2C" get 3)"
check "h2_hostile get (TLS, ALPN h2)" '"alpn": "h2"' "$($H --port "$TLSB" --tls --sni b.example get 2)"
check "h2_hostile ping-flood answered" '"PING": 50' "$($H --port "$H2C" ping-flood 50)"

echo "$pass passed, $fail failed"
((fail == 0))
