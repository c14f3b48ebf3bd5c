#![allow(missing_docs)]
//! Benchmark (not a test): does the embedded store slow down as it fills? Claim latency (one
//! client, fresh duties, journaled mode as the signer runs it; and a durable `flush` after each
//! claim, the cost of an fsync'd commit) and lookup latency, on an empty store and on one
//! holding `FILL_CLAIMS` claims (default 10,000,000: 100 validators × 100,000 GRANDPA rounds),
//! plus the file's size per claim.
//!
//! Run: `cargo bench -p exclave-claims --bench fill` (`FILL_CLAIMS=1000000` for a shorter run;
//! needs ~9 GB free for 10 M). The last line is `bench-summary: {…}`.

use exclave_claims::{embedded::EmbeddedStore, ClaimOutcome, ClaimStore};
use exclave_policies::{ChainId, ClaimKey, ClaimRecord, Duty, GrandpaStage, KeyType};
use serde_json::{json, Map, Value};
use std::{
    sync::{atomic::AtomicU64, Arc},
    time::{Duration, Instant},
};

const VALIDATORS: u64 = 100;
const SAMPLES: usize = 2000;

fn key(validator: u64, round: u64) -> ClaimKey {
    let public = sp_crypto_hashing_stub(validator);
    ClaimKey {
        chain: ChainId([0x42; 32]),
        key_type: KeyType::GRANDPA,
        public,
        duty: Duty::GrandpaVote { set_id: 7, round, stage: GrandpaStage::Prevote },
    }
}

/// A 32-byte public key per validator (any distinct bytes do).
fn sp_crypto_hashing_stub(validator: u64) -> Vec<u8> {
    let mut p = vec![0u8; 32];
    p[..8].copy_from_slice(&validator.to_be_bytes());
    p[8..16].copy_from_slice(&validator.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_le_bytes());
    p
}

fn record(n: u64) -> ClaimRecord {
    let mut hash = [0u8; 32];
    hash[..8].copy_from_slice(&n.to_le_bytes());
    ClaimRecord { claimer: "signer-a/node-1".into(), payload_hash: hash, signature: vec![0xab; 64], claimed_at_ms: 1_764_900_000_000 + n }
}

fn pct(mut v: Vec<Duration>) -> (f64, f64) {
    v.sort();
    let at = |q: usize| v[(v.len() * q / 100).min(v.len() - 1)].as_secs_f64() * 1000.0;
    (at(50), at(99))
}

/// Claim latency (journaled, and with a durable flush after each) and lookup latency, on fresh
/// duties of validator `VALIDATORS` (one not used by the fill) starting at `round`.
async fn measure(store: &EmbeddedStore, round: u64, filled: u64) -> [(f64, f64); 3] {
    let (mut claim, mut durable, mut get) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..SAMPLES as u64 {
        let k = key(VALIDATORS, round + 2 * i);
        let t = Instant::now();
        assert_eq!(store.claim(&k, &record(i)).await.expect("claim"), ClaimOutcome::Inserted);
        claim.push(t.elapsed());
        let k = key(VALIDATORS, round + 2 * i + 1);
        let t = Instant::now();
        store.claim(&k, &record(i)).await.expect("claim");
        store.flush(false).await.expect("flush");
        durable.push(t.elapsed());
        let probe = if filled > 0 { key(i % VALIDATORS, (i * 7919) % (filled / VALIDATORS)) } else { k };
        let t = Instant::now();
        assert!(store.get(&probe).await.expect("get").is_some());
        get.push(t.elapsed());
    }
    [pct(claim), pct(durable), pct(get)]
}

#[tokio::main]
async fn main() {
    let total: u64 = std::env::var("FILL_CLAIMS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("claims.redb");
    let (store, _) = EmbeddedStore::open_journaled(&path, Arc::new(AtomicU64::new(0))).expect("open");
    store.restore(&[]).await.expect("start");
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default().split_whitespace().next().unwrap_or("?").to_string();
    println!("# Embedded claim store as it fills (load average at start: {load})\n");
    let empty = measure(&store, 10_000_000_000, 0).await;

    let per_validator = total / VALIDATORS;
    let started = Instant::now();
    let chunk = 20_000u64;
    let mut done = 0u64;
    for round0 in (0..per_validator).step_by((chunk / VALIDATORS) as usize) {
        let rounds = (chunk / VALIDATORS).min(per_validator - round0);
        let batch: Vec<_> =
            (0..VALIDATORS).flat_map(|v| (round0..round0 + rounds).map(move |r| (key(v, r), record(v * per_validator + r)))).collect();
        done += batch.len() as u64;
        store.restore(&batch).await.expect("fill");
        if done % 1_000_000 < chunk {
            eprintln!("filled {done} claims in {:.0} s", started.elapsed().as_secs_f64());
        }
    }
    store.flush(false).await.expect("flush");
    let fill_s = started.elapsed().as_secs_f64();
    let bytes = std::fs::metadata(&path).expect("size").len();
    let full = measure(&store, 20_000_000_000, done).await;

    println!(
        "filled {done} claims in {fill_s:.0} s ({:.0}/s); file {:.2} GiB, {:.0} B per claim\n",
        done as f64 / fill_s,
        bytes as f64 / (1u64 << 30) as f64,
        bytes as f64 / done as f64
    );
    println!(
        "| claims held | claim p50 / p99 ms (journaled) | claim + durable flush p50 / p99 ms | lookup p50 / p99 ms |\n|---|---|---|---|"
    );
    let mut summary = Map::new();
    summary.insert("load_average_start".into(), json!(load));
    summary.insert("claims".into(), json!(done));
    summary.insert("bytes_per_claim".into(), json!(bytes as f64 / done as f64));
    for (name, m) in [("empty", empty), ("full", full)] {
        let held = if name == "empty" { 0 } else { done };
        println!("| {held} | {:.3} / {:.3} | {:.3} / {:.3} | {:.3} / {:.3} |", m[0].0, m[0].1, m[1].0, m[1].1, m[2].0, m[2].1);
        for (what, (p50, p99)) in ["claim", "durable", "get"].iter().zip(m) {
            summary.insert(format!("{name}_{what}_p50_ms"), json!(p50));
            summary.insert(format!("{name}_{what}_p99_ms"), json!(p99));
        }
    }
    let ratio = full[0].0 / empty[0].0;
    let ratio99 = full[0].1 / empty[0].1;
    println!("\nclaim at {done} / empty: p50 {ratio:.2}x, p99 {ratio99:.2}x");
    summary.insert("ratio_claim_p50".into(), json!(ratio));
    summary.insert("ratio_claim_p99".into(), json!(ratio99));
    println!("bench-summary: {}", Value::Object(summary));
}
