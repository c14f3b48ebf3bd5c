#!/usr/bin/env bash
# The whole test suite, with its own set-up: what README.md's second command runs and what
# .ci/run calls. On a fresh Debian machine with the Rust toolchain it installs what is missing
# (needs root and apt for the Debian packages), then checks formatting, lints, the dependency
# policy, the compose files, the alert rules, and runs every test.
#
#   etcd-server    the claims crate's and the signer's etcd tests start real etcd clusters
#   prometheus     promtool for the alert rules; the dashboard check runs a real Prometheus
#   docker-compose `docker-compose config -q` of the compose demo (no Docker engine is used)
#   systemd        `systemd-analyze verify` of the unit in docs/operations.md
#   faketime       libfaketime: the clock-skew tests run one signer seconds ahead or behind
#   fiu-utils      libfiu's fiu-run / fiu-ctrl: the disk-fault tests fail fdatasync and pwrite in
#                  a running signer (the full-filesystem test mounts a 1 MiB tmpfs: needs root)
#   cargo-nextest, cargo-deny   installed with `cargo install --locked` when missing
#   cargo-fuzz     installed by scripts/fuzz.sh when missing (the fuzz smoke needs the nightly
#                  toolchain the machine has; it fails, naming it, without)
#   /dev/fuse      the power-loss test mounts exclave-lossyfs (as root: no fusermount needed)
#
# No protoc is needed anywhere (vendored etcd-client code; protoc-bin-vendored for the TiKV
# stand-in). Set TEST_SKIP_SETUP=1 to install nothing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n== %s\n' "$*"; }

# Tests clean up their network namespaces (exn<pid>-…) and mounts (the power-loss test's FUSE
# filesystem, the disk-fault test's tmpfs), also when they panic; a test process that was killed
# (a nextest timeout) cannot, so at the end delete what is left, with what still runs in it.
clean_up_after_tests() {
    awk '$1 == "exclave-lossyfs" || $1 == "exclave-test" {print $2}' /proc/mounts | while read -r m; do
        fusermount3 -u "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
    done
    command -v ip >/dev/null || return 0
    for ns in $(ip netns list 2>/dev/null | awk '/^exn[0-9]+-/{print $1}'); do
        pid="${ns#exn}"; pid="${pid%%-*}"
        [ -e "/proc/$pid" ] && continue
        ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
        ip netns delete "$ns" 2>/dev/null || true
    done
}
trap clean_up_after_tests EXIT

if [ "${TEST_SKIP_SETUP:-0}" != 1 ]; then
    step "set-up"
    missing=()
    command -v etcd >/dev/null || missing+=(etcd-server)
    command -v promtool >/dev/null || missing+=(prometheus)
    command -v docker-compose >/dev/null || missing+=(docker-compose)
    command -v systemd-analyze >/dev/null || missing+=(systemd)
    [ -e /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 ] || missing+=(faketime)
    command -v fiu-run >/dev/null || missing+=(fiu-utils)
    command -v nft >/dev/null || missing+=(nftables)
    command -v ip >/dev/null || missing+=(iproute2)
    if [ ${#missing[@]} -gt 0 ]; then
        echo "installing ${missing[*]} (apt)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
    command -v cargo-nextest >/dev/null || cargo install --locked cargo-nextest
    command -v cargo-deny >/dev/null || cargo install --locked cargo-deny
fi

step "cargo fmt --check"
cargo fmt --all --check

step "cargo deny check bans licenses sources (advisories: the advisory database cannot be fetched here)"
cargo deny --log-level error check bans licenses sources

step "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "compose demo files and alert rules"
bash docker/check.sh

step "tests"
cargo nextest run --workspace --no-fail-fast
cargo test --workspace --doc --quiet

step "dashboard: every panel's query against a real Prometheus scraping the demo's signers"
bash docker/dashboard-check.sh target/debug/exclave

step "fuzz smoke: every cargo-fuzz target built and run briefly from its seeds (docs/fuzzing.md)"
bash scripts/fuzz.sh smoke
