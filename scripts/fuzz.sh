#!/usr/bin/env bash
# The cargo-fuzz targets of fuzz/ (docs/fuzzing.md): libFuzzer on the decoders a signer, a node
# client or an auditor runs on bytes it did not write.
#
#   scripts/fuzz.sh smoke          build every target, run each for a bounded number of runs
#                                  (capped at FUZZ_SMOKE_SECONDS, default 20 s) from
#                                  fuzz/seeds/<target> in a throw-away corpus; what CI runs
#   scripts/fuzz.sh long [RUNS]    run each target for RUNS runs (default 10000000), one at a
#                                  time, growing fuzz/corpus/<target>; prints runs, exec/s and
#                                  wall time per target and a final `fuzz-summary: {json}` line
#
# Any crash, panic, timeout or out-of-memory fails the script (exit 1) with the target named;
# the input is kept in fuzz/artifacts/<target>/. Needs the nightly toolchain (exits 1 if it is
# missing) and cargo-fuzz (installed with `cargo install cargo-fuzz --locked` if missing).
# Builds go to fuzz/target (CARGO_TARGET_DIR overrides). FUZZ_TARGETS="a b" runs only those;
# FUZZ_SANITIZER (default none: our crates forbid unsafe code) may be address.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
fuzz_dir=$root/fuzz

mode=${1:-}
case "$mode" in
    smoke) ;;
    long) runs_long=${2:-10000000} ;;
    *)
        echo "usage: scripts/fuzz.sh smoke | long [RUNS]" >&2
        exit 2
        ;;
esac

# Smoke runs per target: about 10 s each on this project's 2-core machine, with the time cap
# (FUZZ_SMOKE_SECONDS) bounding a slower one. Every target is listed here.
declare -A smoke_runs=(
    [seal_header]=2000000
    [grandpa_vote]=2000000
    [heartbeat]=2000000
    [beefy_commitment]=800000
    [jsonrpc_request]=300000
    [interchange_import]=1000000
    [signing_log_line]=150000
    [audit_verify]=3000
)
all_targets=(seal_header grandpa_vote heartbeat beefy_commitment jsonrpc_request interchange_import signing_log_line audit_verify)
read -r -a targets <<<"${FUZZ_TARGETS:-${all_targets[*]}}"
sanitizer=${FUZZ_SANITIZER:-none}
smoke_seconds=${FUZZ_SMOKE_SECONDS:-20}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$fuzz_dir/target}

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz: FAILED: the nightly Rust toolchain is missing (cargo-fuzz needs it): rustup toolchain install nightly" >&2
    exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: cargo-fuzz is missing; installing it (cargo install cargo-fuzz --locked)"
    cargo install cargo-fuzz --locked
fi
for t in "${targets[@]}"; do
    if [ -z "${smoke_runs[$t]:-}" ] || [ ! -f "$fuzz_dir/fuzz_targets/$t.rs" ]; then
        echo "fuzz: FAILED: unknown target $t (targets: ${all_targets[*]})" >&2
        exit 1
    fi
done

echo "== build (cargo +nightly fuzz build -s $sanitizer, into $CARGO_TARGET_DIR)"
build_start=$(date +%s)
cargo +nightly fuzz build --fuzz-dir "$fuzz_dir" -s "$sanitizer"
echo "build: $(($(date +%s) - build_start)) s"
host=$(rustc +nightly -vV | sed -n 's/^host: //p')
bin_dir=$CARGO_TARGET_DIR/$host/release

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

failed=()
summary=()
for t in "${targets[@]}"; do
    bin=$bin_dir/$t
    if [ "$mode" = smoke ]; then
        corpus=$scratch/corpus-$t
        limits=(-runs="${smoke_runs[$t]}" -max_total_time="$smoke_seconds")
    else
        corpus=$fuzz_dir/corpus/$t
        limits=(-runs="$runs_long")
    fi
    artifacts=$fuzz_dir/artifacts/$t
    mkdir -p "$corpus" "$artifacts"
    log=$scratch/$t.log
    echo "== $t (${limits[*]})"
    start=$(date +%s.%N)
    # The first corpus directory receives new inputs; the seeds are only read.
    rc=0
    "$bin" "$corpus" "$fuzz_dir/seeds/$t" "${limits[@]}" -timeout=30 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$artifacts/" >"$log" 2>&1 || rc=$?
    wall=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    # libFuzzer's final stats; after a crash, its last status line.
    done_runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    [ -n "$done_runs" ] || done_runs=$(sed -n 's/^#\([0-9]*\).*/\1/p' "$log" | tail -1)
    done_runs=${done_runs:-0}
    exec_s=$(awk -v n="$done_runs" -v w="$wall" 'BEGIN { printf "%d", (w > 0 ? n / w : 0) }')
    corpus_size=$(find "$corpus" -type f | wc -l)
    printf '%s: runs %s, %s exec/s, wall %s s, corpus %s\n' "$t" "$done_runs" "$exec_s" "$wall" "$corpus_size"
    crashed=false
    if [ "$rc" -ne 0 ] || [ "$done_runs" -eq 0 ]; then
        crashed=true
        failed+=("$t")
        echo "fuzz: FAILED: $t (exit $rc); its log:" >&2
        grep -v '^#[0-9]' "$log" | tail -60 >&2
        echo "fuzz: reproduce with: $bin <input> (inputs kept in $artifacts/)" >&2
    fi
    summary+=("$(printf '"%s":{"runs":%s,"execs_per_sec":%s,"wall_s":%s,"corpus":%s,"crashed":%s}' \
        "$t" "$done_runs" "$exec_s" "$wall" "$corpus_size" "$crashed")")
done

joined=$(IFS=,; echo "${summary[*]}")
echo "fuzz-summary: {\"mode\":\"$mode\",\"sanitizer\":\"$sanitizer\",\"targets\":{$joined}}"
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "fuzz: $mode: ${#targets[@]} targets, no crash"
