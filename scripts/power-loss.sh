#!/usr/bin/env bash
# The power-loss test's long mode (docs/reliability.md, "Power loss"): EXCLAVE_POWER_CUTS power
# cuts (default 1,000) of a signer whose data directory is on exclave-lossyfs, each at a random
# moment while two nodes race for votes, keys are generated and the signing log rotates; after
# every cut the claims, the log and the keys are checked. Needs /dev/fuse and root. About 25 to
# 40 minutes on a 2-core machine (release build). EXCLAVE_POWER_SEED replays a run's kill moments.
set -euo pipefail
cd "$(dirname "$0")/.."
export EXCLAVE_POWER_CUTS="${EXCLAVE_POWER_CUTS:-1000}"
# Rotations still inside most cycles, without thousands of 4 KiB files for every cut to read.
export EXCLAVE_POWER_ROTATE_BYTES="${EXCLAVE_POWER_ROTATE_BYTES:-32768}"
command -v cargo-nextest >/dev/null || cargo install --locked cargo-nextest
command -v fusermount3 >/dev/null || { apt-get update -qq && apt-get install -y -qq fuse3; }
exec cargo nextest run --profile long --release -p exclave --test it -E 'test(power_loss::)' --no-capture
