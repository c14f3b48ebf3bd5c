#!/usr/bin/env bash
# The partition test's long mode (docs/reliability.md, "Network partitions"): three etcd members
# and three signers, each in a network namespace of its own, and the chaos load; the six faults
# (leader isolated, 2/1 split, signer cut from the store, nodes cut from a signer, asymmetric
# loss at the leader and at a signer) held 8 s each, PARTITION_ROUNDS times over (default 20,
# about 30 minutes; release build). Needs root, iproute2, nftables and etcd; the namespaces are deleted when it
# ends, also when it fails.
set -euo pipefail
cd "$(dirname "$0")/.."
export PARTITION_ROUNDS="${PARTITION_ROUNDS:-20}"
command -v cargo-nextest >/dev/null || cargo install --locked cargo-nextest
missing=()
command -v etcd >/dev/null || missing+=(etcd-server)
command -v nft >/dev/null || missing+=(nftables)
command -v ip >/dev/null || missing+=(iproute2)
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
exec cargo nextest run --profile long --release -p exclave --test it --run-ignored only -E 'test(partitions::partitions_long)' --no-capture
