//! Claim latency on a real 3-member etcd cluster (local processes, loopback):
//! the bare put-if-absent transaction through `etcd-client` vs `EtcdStore::claim` through
//! `WithDeadline`, 1000 sequential claims each, fresh keys.
//!
//! Run: `cargo bench -p exclave-claims --bench etcd --features etcd` (needs `etcd` on PATH).
//! Two passes, so the spread between runs on a shared machine is visible.

use etcd_client::{Client, Compare, CompareOp, Txn, TxnOp};
use exclave_claims::{
    conformance, encode_record,
    etcd::{local_cluster::LocalCluster, EtcdConfig, EtcdStore},
    ClaimOutcome, ClaimStore, WithDeadline,
};
use exclave_policies::{ChainId, ClaimKey, Duty};
use std::time::{Duration, Instant};

const CLAIMS: u64 = 1000;
const WARM_UP: u64 = 100;

fn key(chain: u8, session_index: u64) -> ClaimKey {
    conformance::key(ChainId([chain; 32]), Duty::Heartbeat { session_index: session_index as u32 })
}

fn put_if_absent(key: &ClaimKey, value: Vec<u8>) -> Txn {
    let key = key.to_bytes();
    Txn::new()
        .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
        .and_then([TxnOp::put(key.clone(), value, None)])
        .or_else([TxnOp::get(key, None)])
}

fn report(name: &str, mut took: Vec<Duration>) -> (f64, f64) {
    took.sort();
    let pct = |p: usize| took[(took.len() * p).div_ceil(100).saturating_sub(1)];
    let mean = took.iter().sum::<Duration>() / took.len() as u32;
    println!(
        "{name:<44} n={:<5} p50 {:>8.3} ms  p90 {:>8.3} ms  p99 {:>8.3} ms  max {:>8.3} ms  mean {:>8.3} ms",
        took.len(),
        pct(50).as_secs_f64() * 1e3,
        pct(90).as_secs_f64() * 1e3,
        pct(99).as_secs_f64() * 1e3,
        took[took.len() - 1].as_secs_f64() * 1e3,
        mean.as_secs_f64() * 1e3,
    );
    (pct(50).as_secs_f64() * 1e3, pct(99).as_secs_f64() * 1e3)
}

async fn raw(client: &mut Client, chain: u8, n: u64) -> Vec<Duration> {
    let mut took = Vec::with_capacity(n as usize);
    for i in 0..n {
        let k = key(chain, i);
        let value = encode_record(&conformance::record("bench", &i.to_le_bytes())).expect("encode");
        let started = Instant::now();
        let resp = client.txn(put_if_absent(&k, value)).await.expect("txn");
        took.push(started.elapsed());
        assert!(resp.succeeded(), "fresh key already claimed");
    }
    took
}

async fn store(store: &WithDeadline<EtcdStore>, chain: u8, n: u64) -> Vec<Duration> {
    let mut took = Vec::with_capacity(n as usize);
    for i in 0..n {
        let record = conformance::record("bench", &i.to_le_bytes());
        let started = Instant::now();
        let out = store.claim(&key(chain, i), &record).await.expect("claim");
        took.push(started.elapsed());
        assert_eq!(out, ClaimOutcome::Inserted);
    }
    took
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let cluster = LocalCluster::start(3);
        let endpoints = cluster.endpoints();
        let leader = cluster.leader().await;
        println!("etcd {} members on loopback; leader: member {leader:?}; every client asks member 0 first", cluster.len());
        let mut first = Client::connect([&endpoints[0]], None).await.expect("connect");
        let mut balanced = Client::connect(&endpoints, None).await.expect("connect");
        let claims =
            WithDeadline::new(EtcdStore::connect(&EtcdConfig::new(endpoints.clone())).await.expect("connect"), Duration::from_secs(2));
        raw(&mut first, 200, WARM_UP).await;
        raw(&mut balanced, 201, WARM_UP).await;
        store(&claims, 202, WARM_UP).await;
        let mut summary = serde_json::Map::new();
        for pass in 0..2u8 {
            println!("pass {}: {CLAIMS} sequential claims each, fresh keys", pass + 1);
            let first = report("raw txn, etcd-client on member 0", raw(&mut first, 10 * pass, CLAIMS).await);
            let balanced = report("raw txn, etcd-client balanced over 3", raw(&mut balanced, 10 * pass + 1, CLAIMS).await);
            let ours = report("EtcdStore::claim via WithDeadline (2 s)", store(&claims, 10 * pass + 2, CLAIMS).await);
            for (name, (p50, p99)) in [("raw_member0", first), ("raw_balanced", balanced), ("store", ours)] {
                summary.insert(format!("pass{}_{name}_p50_ms", pass + 1), p50.into());
                summary.insert(format!("pass{}_{name}_p99_ms", pass + 1), p99.into());
            }
            summary.insert(format!("pass{}_ratio_p50", pass + 1), (ours.0 / first.0).into());
        }
        println!("bench-summary: {}", serde_json::Value::Object(summary));
    });
}
