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
//!    `RemoteKeystore` (watermark read, claim, watermark re-read, signing-log fdatasync, reply);
//! 4. an authenticated no-op round trip to that signer (`hasKeys` for one held key).
//!
//! (1) and (2) are timed on a runtime worker, as the signer's own store calls run.
//! Sequential requests, fresh duties, the four paths interleaved sample by sample; p50/p99
//! and their ratio to (1); and the sign request against its floor, (1) + (4) of the same sample
//! (the aim, issue 16: p50 and p99 within 1.3x). The last line is `bench-summary: {…}`.
//! Run: `cargo bench -p exclave-sim --bench stores` (needs `etcd` on PATH).

use exclave_claims::{
    encode_record,
    etcd::{local_cluster::LocalCluster, EtcdConfig, EtcdStore},
    tikv::{TikvConfig, TikvStore},
    ClaimOutcome, ClaimStore, WithDeadline,
};
use exclave_keystore_remote::{RemoteKeystore, RemoteKeystoreConfig, TlsFiles};
use exclave_policies::{payload_hash, ChainId, ClaimKey, ClaimRecord, Duty, GrandpaStage, KeyType};
use exclave_protocol::{Bytes, ExclaveApiClient, WireKeyType};
use exclave_signer::daemon::{self, DaemonOptions, StoreOptions};
use exclave_tikv_protocol_standin::StandIn;
use jsonrpsee::http_client::HttpClient;
use serde_json::{json, Map, Value};
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

/// A signer on `store`, in process, a `RemoteKeystore` connected to it and a plain client for
/// the no-op round trip.
fn signer(rt: &tokio::runtime::Runtime, store: StoreOptions) -> (daemon::Daemon, RemoteKeystore, HttpClient, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut opts =
        DaemonOptions::dev(dir.path().to_path_buf(), "127.0.0.1:0".parse().expect("addr"), None, Some(ChainId(CHAIN)), false).expect("dev");
    opts.store = store;
    let d = rt.block_on(daemon::start(opts, Default::default())).expect("start signer");
    let tls_dir = dir.path().join("tls");
    let tls = TlsFiles { ca: tls_dir.join("ca.pem"), cert: tls_dir.join("client.pem"), key: tls_dir.join("client.key") };
    let cfg = exclave_keystore_remote::tls_client_config(&tls).expect("client TLS");
    let url = format!("https://{}", d.rpc_addr);
    let noop = jsonrpsee::http_client::HttpClientBuilder::default().with_custom_cert_store(cfg).build(&url).expect("client");
    let remote = RemoteKeystore::new(RemoteKeystoreConfig {
        urls: vec![url],
        chain: CHAIN,
        tls: Some(tls),
        timeout: Duration::from_secs(5),
        store_id: None,
    })
    .expect("remote");
    (d, remote, noop, dir)
}

/// What a comparison runs against.
struct Paths<'a, S> {
    title: &'a str,
    /// `etcd` or `tikv`: the prefix of its figures in the summary.
    name: &'a str,
    raw_name: &'a str,
    store: &'a std::sync::Arc<S>,
    remote: &'a RemoteKeystore,
    noop: &'a HttpClient,
}

/// The four paths, interleaved sample by sample (so load on a shared machine hits all alike):
/// `raw(i)` is the store's bare round trip, then claim+sign in process through `store`, then a
/// `sign` request to the signer, then a no-op round trip to it.
fn compare<S: ClaimStore>(
    rt: &tokio::runtime::Runtime,
    p: Paths<'_, S>,
    raw: impl Fn(u64) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>>,
    summary: &mut Map<String, Value>,
) {
    let Paths { title, name, raw_name, store, remote, noop } = p;
    let pair = ed25519::Pair::from_string("//Alice", None).expect("dev");
    let alice = pair.public();
    let held = vec![(Bytes(alice.0.to_vec()), WireKeyType(*b"gran"))];
    let mut samples = [Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new()];
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
            timed(|| assert!(rt.block_on(noop.has_keys(held.clone())).expect("hasKeys"))),
        ];
        if i >= WARM_UP {
            let floor = t[0] + t[3];
            for (s, t) in samples.iter_mut().zip(t.into_iter().chain([floor])) {
                s.push(t);
            }
        }
    }
    let [r, c, s, n, f] = samples.map(percentiles);
    println!("\n## {title}, {SAMPLES} sequential claims per path, interleaved\n");
    println!("| path | p50 ms | p99 ms | p50 / raw | p99 / raw |\n|---|---|---|---|---|");
    row(raw_name, r, r);
    row("Exclave claim+sign (sign, then the store's claim via WithDeadline)", c, r);
    row("Exclave sign request (RemoteKeystore → signer over mTLS)", s, r);
    row("no-op round trip to the signer (hasKeys)", n, r);
    row("floor: raw + no-op, per sample", f, r);
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    let (r50, r99) = (ratio(s.0, f.0), ratio(s.1, f.1));
    let met = |x: f64| if x <= 1.3 { "met" } else { "missed" };
    println!("\nsign request / floor: p50 {r50:.2}x ({}), p99 {r99:.2}x ({}); aim <= 1.3x", met(r50), met(r99));
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    for (k, v) in [
        ("raw_p50_ms", ms(r.0)),
        ("raw_p99_ms", ms(r.1)),
        ("claim_sign_p50_ms", ms(c.0)),
        ("claim_sign_p99_ms", ms(c.1)),
        ("sign_p50_ms", ms(s.0)),
        ("sign_p99_ms", ms(s.1)),
        ("noop_p50_ms", ms(n.0)),
        ("noop_p99_ms", ms(n.1)),
        ("floor_p50_ms", ms(f.0)),
        ("floor_p99_ms", ms(f.1)),
        ("ratio_p50", r50),
        ("ratio_p99", r99),
    ] {
        summary.insert(format!("{name}_{k}"), json!(v));
    }
}

fn etcd(rt: &tokio::runtime::Runtime, summary: &mut Map<String, Value>) {
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
    let (_d, remote, noop, _dir) = signer(rt, StoreOptions::Etcd(EtcdConfig::new(endpoints)));
    let title = "etcd: 3 local members (Debian etcd 3.4)";
    let paths = Paths { title, name: "etcd", raw_name: "raw put-if-absent txn (etcd-client)", store: &store, remote: &remote, noop: &noop };
    compare(rt, paths, raw, summary);
}

fn tikv(rt: &tokio::runtime::Runtime, summary: &mut Map<String, Value>) {
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
    let (_d, remote, noop, _dir) = signer(rt, StoreOptions::Tikv(config));
    let title = "TiKV wire-protocol stand-in (in process, NOT TiKV)";
    let paths = Paths { title, name: "tikv", raw_name: "raw compare_and_swap (tikv-client)", store: &store, remote: &remote, noop: &noop };
    compare(rt, paths, raw, summary);
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default().split_whitespace().next().unwrap_or("?").to_string();
    println!("# Exclave on replicated claim stores: claim cost against the store's own round trip (load average at start: {load})");
    let mut summary = Map::new();
    summary.insert("load_average_start".into(), json!(load));
    etcd(&rt, &mut summary);
    tikv(&rt, &mut summary);
    println!("bench-summary: {}", Value::Object(summary));
}
