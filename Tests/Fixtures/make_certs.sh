#!/bin/sh
# make_certs.sh DIR: test certificates for Sluice's TLS tests and the `make run` demo.
#
#   ca.pem / ca.key             test CA (ECDSA P-256)
#   a.pem / a.key               RSA 2048, SAN a.example, localhost, IP 127.0.0.1, signed by the CA
#   b.pem / b.key               ECDSA P-256, SAN b.example, *.wild.example, signed by the CA
#   client.pem / client.key     client certificate, subject CN=client-1,O=Sluice Tests (RFC 4514), by the CA
#   other-ca.pem                another CA
#   stranger.pem / stranger.key a client certificate signed by other-ca
#   bad.pem                     not a certificate
#
# Idempotent: a complete set (marked by DIR/.complete) is left alone; otherwise the set is made in
# a scratch directory and renamed into place, so a concurrent run never sees half-written files.
set -eu

if [ $# -ne 1 ]; then
    echo "usage: $0 DIR" >&2
    exit 2
fi
dir=$1
files="ca.pem ca.key a.pem a.key b.pem b.key client.pem client.key other-ca.pem stranger.pem stranger.key bad.pem"

mkdir -p "$dir"
if [ -f "$dir/.complete" ]; then
    complete=1
    for f in $files; do [ -s "$dir/$f" ] || complete=0; done
    [ "$complete" = 1 ] && exit 0
fi

work=$(mktemp -d "$dir/.make_certs.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"

cat > openssl.cnf <<'CNF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca_ext]
basicConstraints = critical,CA:true
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[a_ext]
basicConstraints = CA:false
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:a.example,DNS:localhost,IP:127.0.0.1
authorityKeyIdentifier = keyid
[b_ext]
basicConstraints = CA:false
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:b.example,DNS:*.wild.example
authorityKeyIdentifier = keyid
[client_ext]
basicConstraints = CA:false
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
authorityKeyIdentifier = keyid
CNF

ec="-newkey ec -pkeyopt ec_paramgen_curve:P-256"
serial() { echo "0x$(openssl rand -hex 8)"; }
req() { openssl req -config openssl.cnf -x509 -noenc -days 3650 -set_serial "$(serial)" "$@" 2>/dev/null; }

req $ec -keyout ca.key -out ca.pem -subj "/O=Sluice Tests/CN=Sluice Test CA" -extensions ca_ext
req $ec -keyout other-ca.key -out other-ca.pem -subj "/O=Somebody Else/CN=Other CA" -extensions ca_ext
req -newkey rsa:2048 -keyout a.key -out a.pem -subj "/CN=a.example" -CA ca.pem -CAkey ca.key -extensions a_ext
req $ec -keyout b.key -out b.pem -subj "/CN=b.example" -CA ca.pem -CAkey ca.key -extensions b_ext
req $ec -keyout client.key -out client.pem -subj "/O=Sluice Tests/CN=client-1" -CA ca.pem -CAkey ca.key \
    -extensions client_ext
req $ec -keyout stranger.key -out stranger.pem -subj "/O=Somebody Else/CN=stranger" -CA other-ca.pem \
    -CAkey other-ca.key -extensions client_ext
printf 'this is not a certificate\n' > bad.pem

for f in $files; do mv -f "$f" "$dir/$f"; done
touch "$dir/.complete"
