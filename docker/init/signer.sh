#!/bin/sh
# signer-a-init / signer-b-init (compose one-shot, as root, exclave image):
#   1. render /etc/exclave/signer.toml (docker/signer-X.toml) into /data/signer.toml with the
#      demo chain's genesis hash from /genesis/chain;
#   2. on first start, import the validator's session keys into /data/keystore with
#      `exclave keys import` (the secret goes through standard input, never the command line);
#   3. hand /data to the exclave user (uid 10001).
# VALIDATOR_SURI is //Alice: a well-known dev key, public to everyone. Never do this with a real
# validator's secret; move real keys as docs/operations.md ("Keys") says.
set -eu
chain=$(cat /genesis/chain)
case "$chain" in
	0x*) ;;
	*) echo "signer-init: /genesis/chain holds no genesis hash" >&2; exit 1 ;;
esac
sed "s/^chain = .*/chain = \"$chain\"  # the demo chain's genesis hash (genesis service)/" \
	/etc/exclave/signer.toml >/data/signer.toml
echo "signer-init: /data/signer.toml for chain $chain"

if [ -z "$(ls -A /data/keystore 2>/dev/null)" ]; then
	: "${VALIDATOR_SURI:?set VALIDATOR_SURI}"
	# The demo runtime's session keys: babe and imon sr25519, gran ed25519.
	for key_type in babe gran imon; do
		printf '%s' "$VALIDATOR_SURI" | exclave keys import --keystore /data/keystore --key-type "$key_type"
	done
else
	echo "signer-init: /data/keystore already holds keys; not importing"
fi
exclave keys list --keystore /data/keystore
chown -R 10001:10001 /data
