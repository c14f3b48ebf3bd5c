#!/usr/bin/env bash
# gen-pki.sh — the compose demo's PKI, made with OpenSSL into docker/pki/ (gitignored; never commit it).
#
#   ca.pem, ca.key            the demo CA (signs both sides; ca.key is needed only to issue more)
#   server.pem, server.key    one server certificate for both signers: CN signer, SANs signer-a,
#                             signer-b, localhost, 127.0.0.1 (how the nodes and you reach them)
#   alice-1.pem/.key,         one client certificate per node. The signer takes the client
#   alice-2.pem/.key          certificate's subject common name as the node's identity (claims,
#                             signing log, metrics, leases): CN alice-1 and alice-2
#
# Usage: docker/gen-pki.sh [--force]    (--force replaces an existing docker/pki/; PKI_DIR=... writes there)
# The files are copied into the `pki` volume, owned by the containers' user, by the compose
# service pki-init at each `docker-compose up`.
set -euo pipefail

DIR="${PKI_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/pki}"   # PKI_DIR: elsewhere (scripts/e2e-chain.sh failover)
NODES=(alice-1 alice-2)
DAYS=825

if [[ -e "$DIR/ca.pem" && "${1:-}" != "--force" ]]; then
	echo "gen-pki: $DIR already holds a PKI; pass --force to replace it" >&2
	exit 1
fi
rm -rf "$DIR"
mkdir -p "$DIR"
cd "$DIR"
umask 077

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

# The CA.
key ca.key
openssl req -x509 -new -key ca.key -days 3650 -subj "/CN=Exclave demo CA" -out ca.pem \
	-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign

# issue NAME EXTENSIONS: a key and a certificate signed by the CA.
issue() {
	key "$1.key"
	openssl req -new -key "$1.key" -subj "/CN=$1" -out "$1.csr"
	printf '%b' "$2" >"$1.ext"
	openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days "$DAYS" \
		-extfile "$1.ext" -out "$1.pem" 2>/dev/null
	rm -f "$1.csr" "$1.ext"
}

# The signers' certificate: its names must match the URLs the nodes use.
issue signer 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:signer-a,DNS:signer-b,DNS:localhost,IP:127.0.0.1\n'
mv signer.pem server.pem
mv signer.key server.key

# One client certificate per node; CN = the node's identity.
for node in "${NODES[@]}"; do
	issue "$node" 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n'
done
rm -f ca.srl
chmod 600 ./*.key
chmod 644 ./*.pem

for cert in server "${NODES[@]}"; do
	openssl verify -CAfile ca.pem "$cert.pem" >/dev/null
done
echo "gen-pki: wrote $DIR:"
ls -l "$DIR" | sed 1d
