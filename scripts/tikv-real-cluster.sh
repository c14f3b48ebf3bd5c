#!/usr/bin/env bash
# Run the claim-store conformance suite against a REAL TiKV cluster (opt-in; CI has none, so
# these tests are #[ignore]d there and nextest reports them as skipped).
#
#   TIKV_PD_ADDRS=10.0.0.1:2379,10.0.0.2:2379 [TIKV_KEYSPACE=exclave] scripts/tikv-real-cluster.sh
#
# With TIKV_KEYSPACE the cluster must run API v2 (storage.api-version = 2) and the keyspace must
# exist in PD. Every case uses a fresh random chain id, so the suite can share a long-lived
# cluster; it writes claim keys under the exclave/claim/v1/ prefix and never deletes them.
set -euo pipefail
: "${TIKV_PD_ADDRS:?set TIKV_PD_ADDRS to the PD endpoints (comma-separated)}"
cd "$(dirname "$0")/.."
exec cargo nextest run -p exclave-claims --test it --run-ignored only --no-fail-fast -E 'test(/^tikv::real_cluster::/)'
