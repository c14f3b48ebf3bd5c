#!/usr/bin/env bash
# The chaos test's long mode (docs/reliability.md): 3 signer processes on the TiKV wire-protocol
# stand-in (or, with CHAOS_STORE=etcd, a real 3-member etcd cluster), CHAOS_VALIDATORS validators x 2 simulated nodes, faults injected throughout, until
# CHAOS_DUTIES duties are signed; then every pair of signatures for one duty is checked with
# Substrate's equivocation checkers. Not part of the default test command (it runs for an hour
# or more). Progress goes to stderr every 10 s; the summary at the end is what docs/reliability.md
# records.
set -euo pipefail
cd "$(dirname "$0")/.."
export CHAOS_DUTIES="${CHAOS_DUTIES:-1000000}"
export CHAOS_VALIDATORS="${CHAOS_VALIDATORS:-16}"
command -v cargo-nextest >/dev/null || cargo install --locked cargo-nextest
if ! command -v protoc >/dev/null; then
    apt-get update -qq && apt-get install -y -qq protobuf-compiler
fi
if [[ "${CHAOS_STORE:-}" == etcd ]] && ! command -v etcd >/dev/null; then
    apt-get update -qq && apt-get install -y -qq etcd-server
fi
exec cargo nextest run --profile long --release -p exclave --test it --run-ignored only -E 'test(chaos::chaos_long)' --no-capture
