#!/bin/sh
# pki-init (compose one-shot, as root): copy docker/pki (mounted at /pki-src) into the pki
# volume, owned by uid 10001 (the user of both images), keys 0600, so the signers and nodes can
# read them and the signer does not warn about the key's mode.
set -eu
for f in ca.pem server.pem server.key alice-1.pem alice-1.key alice-2.pem alice-2.key; do
	[ -f "/pki-src/$f" ] || { echo "pki-init: docker/pki/$f is missing: run docker/gen-pki.sh first" >&2; exit 1; }
done
rm -f /pki/*
cp /pki-src/*.pem /pki-src/*.key /pki/
rm -f /pki/ca.key   # the CA key stays on the host: no container needs it
chown 10001:10001 /pki/*
chmod 644 /pki/*.pem
chmod 600 /pki/*.key
echo "pki-init: $(ls /pki | tr '\n' ' ')"
