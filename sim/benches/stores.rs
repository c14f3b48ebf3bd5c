#![allow(missing_docs)]
//! Benchmark (not a test): what a claim costs on a replicated store, in one run on this
//! machine. For a real 3-member etcd cluster (local processes) and for the TiKV wire-protocol
//! stand-in (in process; NOT TiKV, so its figures show client and protocol overhead, not Raft):
//!
//! 1. the store's own round trip: a bare put-if-absent (etcd: one conditional transaction
//!    through `etcd-client`; TiKV: `compare_and_swap(key, None, value)` through `tikv-client`);
//! 2. Exclave's claim+sign core: sign the vote, then `claim` through the backend and
//!    `WithDeadline` (what the engine does per duty, in process);
//! 3. a whole `sign` request to a signer on that backend, over mutual TLS through
//!    `RemoteKeystore` (watermark read, claim, signing-log fdatasync, reply).
//!
//! (1) and (2) are timed on a runtime worker, as the signer's own store calls run.
//! Sequential requests, fresh duties, the three paths interleaved sample by sample; p50/p99
//! and their ratio to (1).
//! Run: `cargo bench -p exclave-sim --bench stores` (needs `etcd` on PATH).

use exclave_claims::{
    encode_record,
    etcd::{local_cluster::LocalCluster, EtcdConfig, EtcdStore},
    tikv::{TikvConfig, TikvStore},
    ClaimOutcome, ClaimStore, WithDeadline,
};
use exclave_keystore_remote::{RemoteKeystore, RemoteKeystoreConfig, TlsFiles};
use exclave_policies::{payload_hash, ChainId, ClaimKey, ClaimRecord, Duty, GrandpaStage, KeyType};
use exclave_signer::daemon::{self, DaemonOptions, StoreOptions};
use exclave_tikv_protocol_standin::StandIn;
use sp_core::{crypto::KeyTypeId, ed25519, Pair};
use sp_keystore::Keystore;
use std::{
    future::Future,
    time::{Duration, Instant},
};

const CHAIN: [u8; 32] = [0x42; 32];
const GRAN: KeyTypeId = KeyTypeId(*b"gran");
const SAMPLES: u64 = 1000;
const WARM_UP: u64 = 100;

fn vote(round: u64, set_id: u64) -> Vec<u8> {
    let msg =
        finality_grandpa::Message::Prevote(finality_grandpa::Prevote { target_hash: sp_core::H256::repeat_byte(1), target_number: 1u32 });
    sp_consensus_grandpa::localized_payload(round, set_id, &msg)
}

/// //Alice's public key, derived once (the derivation costs more than a store round trip and
/// must not be inside a timed sample).
fn alice_public() -> Vec<u8> {
    static PUBLIC: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    PUBLIC.get_or_init(|| ed25519::Pair::from_string("//Alice", None).expect("dev").public().0.to_vec()).clone()
}

fn claim_key(set_id: u64, round: u64) -> ClaimKey {
    let public = alice_public();
    ClaimKey {
        chain: ChainId(CHAIN),
        key_type: KeyType::GRANDPA,
        public,
        duty: Duty::GrandpaVote { set_id, round, stage: GrandpaStage::Prevote },
    }
}

fn record(message: &[u8], signature: Vec<u8>) -> ClaimRecord {
    ClaimRecord { claimer: "bench/bench".into(), payload_hash: payload_hash(message), signature, claimed_at_ms: 1 }
}

/// Sorted samples → (p50, p99).
fn percentiles(mut took: Vec<Duration>) -> (Duration, Duration) {
    took.sort();
    (took[took.len() / 2], took[took.len() * 99 / 100])
}

fn row(name: &str, (p50, p99): (Duration, Duration), raw: (Duration, Duration)) {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "| {name} | {:.3} | {:.3} | {:.2}x | {:.2}x |",
        ms(p50),
        ms(p99),
        p50.as_secs_f64() / raw.0.as_secs_f64(),
        p99.as_secs_f64() / raw.1.as_secs_f64()
    );
}

fn timed(f: impl FnOnce()) -> Duration {
    let started = Instant::now();
    f();
    started.elapsed()
}

/// Time `fut` on a runtime worker (where the signer's own store calls run), not across the
/// hand-off from the bench thread.
fn timed_on(rt: &tokio::runtime::Runtime, fut: impl Future<Output = ()> + Send + 'static) -> Duration {
    rt.block_on(rt.spawn(async move {
        let started = Instant::now();
        fut.await;
        started.elapsed()
    }))
    .expect("task")
}

/// A signer on `store`, in process, and a `RemoteKeystore` connected to it.
fn signer(rt: &tokio::runtime::Runtime, store: StoreOptions) -> (daemon::Daemon, RemoteKeystore, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut opts =
        DaemonOptions::dev(dir.path().to_path_buf(), "127.0.0.1:0".parse().expect("addr"), None, Some(ChainId(CHAIN)), false).expect("dev");
    opts.store = store;
    let d = rt.block_on(daemon::start(opts, Default::default())).expect("start signer");
    let tls_dir = dir.path().join("tls");
    let tls = TlsFiles { ca: tls_dir.join("ca.pem"), cert: tls_dir.join("client.pem"), key: tls_dir.join("client.key") };
    let remote = RemoteKeystore::new(RemoteKeystoreConfig {
        urls: vec![format!("https://{}", d.rpc_addr)],
        chain: CHAIN,
        tls: Some(tls),
        timeout: Duration::from_secs(5),
        store_id: None,
    })
    .expect("remote");
    (d, remote, dir)
}

/// The three paths, interleaved sample by sample (so load on a shared machine hits all three
/// alike): `raw(i)` is the store's bare round trip, then claim+sign in process through `store`,
/// then a `sign` request to the signer.
fn compare<S: ClaimStore>(
    rt: &tokio::runtime::Runtime,
    title: &str,
    raw_name: &str,
    raw: impl Fn(u64) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>>,
    store: &std::sync::Arc<S>,
    remote: &RemoteKeystore,
) {
    let pair = ed25519::Pair::from_string("//Alice", None).expect("dev");
    let alice = pair.public();
    let mut samples = [Vec::new(), Vec::new(), Vec::new()];
    for i in 0..WARM_UP + SAMPLES {
        let t = [
            timed_on(rt, raw(i)),
            timed_on(rt, {
                let (store, pair) = (store.clone(), pair);
                async move {
                    let message = vote(i, 2);
                    let signature = pair.sign(&message).0.to_vec();
                    let out = store.claim(&claim_key(2, i), &record(&message, signature)).await.expect("claim");
                    assert_eq!(out, ClaimOutcome::Inserted);
                }
            }),
            timed(|| {
                remote.ed25519_sign(GRAN, &alice, &vote(i, 3)).expect("sign").expect("signed");
            }),
        ];
        if i >= WARM_UP {
            for (s, t) in samples.iter_mut().zip(t) {
                s.push(t);
            }
        }
    }
    let [r, c, s] = samples.map(percentiles);
    println!("\n## {title}, {SAMPLES} sequential claims per path, interleaved\n");
    println!("| path | p50 ms | p99 ms | p50 / raw | p99 / raw |\n|---|---|---|---|---|");
    row(raw_name, r, r);
    row("Exclave claim+sign (sign, then the store's claim via WithDeadline)", c, r);
    row("Exclave sign request (RemoteKeystore → signer over mTLS)", s, r);
}

fn etcd(rt: &tokio::runtime::Runtime) {
    let cluster = LocalCluster::start(3);
    let endpoints = cluster.endpoints();
    let client = rt.block_on(etcd_client::Client::connect(&endpoints, None)).expect("connect");
    let raw = |i: u64| -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> {
        let mut kv = client.kv_client();
        Box::pin(async move {
            let key = claim_key(1, i).to_bytes();
            let txn = etcd_client::Txn::new()
                .when([etcd_client::Compare::create_revision(key.clone(), etcd_client::CompareOp::Equal, 0)])
                .and_then([etcd_client::TxnOp::put(key.clone(), encode_record(&record(b"x", vec![0; 64])).expect("encode"), None)])
                .or_else([etcd_client::TxnOp::get(key, None)]);
            assert!(kv.txn(txn).await.expect("txn").succeeded());
        })
    };
    let store = std::sync::Arc::new(WithDeadline::new(
        rt.block_on(EtcdStore::connect(&EtcdConfig::new(endpoints.clone()))).expect("store"),
        Duration::from_secs(2),
    ));
    let (_d, remote, _dir) = signer(rt, StoreOptions::Etcd(EtcdConfig::new(endpoints)));
    compare(rt, "etcd: 3 local members (Debian etcd 3.4)", "raw put-if-absent txn (etcd-client)", raw, &store, &remote);
}

fn tikv(rt: &tokio::runtime::Runtime) {
    let standin = rt.block_on(StandIn::start()).expect("stand-in");
    let config = TikvConfig::new([standin.pd_endpoint()]);
    let client = rt.block_on(tikv_client::RawClient::new(vec![standin.pd_endpoint()])).expect("client").with_atomic_for_cas();
    let raw = |i: u64| -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> {
        let client = client.clone();
        Box::pin(async move {
            let value = encode_record(&record(b"x", vec![0; 64])).expect("encode");
            assert!(client.compare_and_swap(claim_key(1, i).to_bytes(), None, value).await.expect("cas").1);
        })
    };
    let store = std::sync::Arc::new(WithDeadline::new(TikvStore::new(&config).expect("store"), Duration::from_secs(2)));
    let (_d, remote, _dir) = signer(rt, StoreOptions::Tikv(config));
    compare(rt, "TiKV wire-protocol stand-in (in process, NOT TiKV)", "raw compare_and_swap (tikv-client)", raw, &store, &remote);
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    println!("# Exclave on replicated claim stores: claim cost against the store's own round trip");
    etcd(&rt);
    tikv(&rt);
}
