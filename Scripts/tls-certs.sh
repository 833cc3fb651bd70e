#!/usr/bin/env bash
# Test certificates for burrowd's HTTPS listener (EC P-256, valid 2 days):
# a CA (ca.pem, ca.key), a server certificate for 127.0.0.1 (server.pem,
# server.key, mode 0600 as burrowd requires), and a client certificate per
# NAME (NAME.pem, NAME.key) whose subject CN is NAME, for client auth.
# Used by Scripts/abuse.sh and Scripts/bench-api.sh; never for production.
#
# Usage: Scripts/tls-certs.sh DIR [NAME...]
set -euo pipefail
dir=${1:?usage: tls-certs.sh DIR [NAME...]}
shift
mkdir -p "$dir"
cd "$dir"
key() { openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1.key" -out "$1.csr" -subj "/CN=$1" 2>/dev/null; }
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=burrow-test-ca 2>/dev/null
for name in server "$@"; do
    key "$name"
    if [ "$name" = server ]; then echo "subjectAltName=IP:127.0.0.1" >"$name.ext"; else echo "extendedKeyUsage=clientAuth" >"$name.ext"; fi
    openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -out "$name.pem" -days 2 -extfile "$name.ext" 2>/dev/null
done
chmod 600 server.key
