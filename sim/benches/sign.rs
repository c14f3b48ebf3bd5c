#![allow(missing_docs)]
//! Benchmark (not a test): remote sign latency over mutual TLS on loopback with the embedded
//! store, against in-process `MemoryKeystore` and `LocalKeystore` signing as the baseline; and
//! claims per second with 1, 8 and 64 concurrent clients, both at the store and end to end.
//!
//! Run: `cargo bench -p exclave-sim --bench sign` (figures go to docs/performance.md).

use exclave_claims::{embedded::EmbeddedStore, ClaimStore, WithDeadline};
use exclave_keystore_remote::{RemoteKeystore, RemoteKeystoreConfig, TlsFiles};
use exclave_policies::{ChainId, ClaimKey, ClaimRecord, Duty, GrandpaStage, KeyType};
use exclave_protocol::{Bytes, ExclaveApiClient, SignContext, SignRequest, WireCrypto, WireKeyType};
use exclave_signer::daemon::{self, DaemonOptions};
use sp_core::{crypto::KeyTypeId, ed25519, Pair};
use sp_keystore::Keystore;
use std::{
    sync::Arc,
    time::{Duration, Instant},
};

const CHAIN: [u8; 32] = [0x42; 32];
const GRAN: KeyTypeId = KeyTypeId(*b"gran");
const LATENCY_SAMPLES: u64 = 3000;

fn vote(round: u64, set_id: u64) -> Vec<u8> {
    let msg =
        finality_grandpa::Message::Prevote(finality_grandpa::Prevote { target_hash: sp_core::H256::repeat_byte(1), target_number: 1u32 });
    sp_consensus_grandpa::localized_payload(round, set_id, &msg)
}

fn percentiles(mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort();
    (v[v.len() / 2], v[v.len() * 99 / 100])
}

fn time_signs(ks: &dyn Keystore, public: &ed25519::Public, set_id: u64) -> (Duration, Duration) {
    let samples = (0..LATENCY_SAMPLES)
        .map(|round| {
            let msg = vote(round, set_id);
            let t = Instant::now();
            ks.ed25519_sign(GRAN, public, &msg).expect("sign").expect("signed");
            t.elapsed()
        })
        .collect();
    percentiles(samples)
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let opts =
        DaemonOptions::dev(dir.path().to_path_buf(), "127.0.0.1:0".parse().expect("addr"), None, Some(ChainId(CHAIN)), false).expect("dev");
    let d = rt.block_on(daemon::start(opts, Default::default())).expect("start signer");
    let tls_dir = dir.path().join("tls");
    let tls = TlsFiles { ca: tls_dir.join("ca.pem"), cert: tls_dir.join("client.pem"), key: tls_dir.join("client.key") };
    let url = format!("https://{}", d.rpc_addr);
    let alice = ed25519::Pair::from_string("//Alice", None).expect("dev").public();

    println!("# Exclave sign benchmark ({} sequential samples each)\n", LATENCY_SAMPLES);
    let memory = sp_keystore::testing::MemoryKeystore::new();
    memory.ed25519_generate_new(GRAN, Some("//Alice")).expect("key");
    let local_dir = tempfile::tempdir().expect("tempdir");
    let local = sc_keystore::LocalKeystore::open(local_dir.path(), None).expect("local keystore");
    local.ed25519_generate_new(GRAN, Some("//Alice")).expect("key");
    let remote = RemoteKeystore::new(RemoteKeystoreConfig {
        urls: vec![url.clone()],
        chain: CHAIN,
        tls: Some(tls.clone()),
        timeout: Duration::from_secs(5),
        store_id: None,
    })
    .expect("remote");
    // Warm up connections and caches.
    time_signs(&remote, &alice, 999);

    let pair = ed25519::Pair::from_string("//Alice", None).expect("dev");
    let derived: Vec<Duration> = (0..LATENCY_SAMPLES)
        .map(|round| {
            let msg = vote(round, 1);
            let t = Instant::now();
            std::hint::black_box(pair.sign(&msg));
            t.elapsed()
        })
        .collect();
    let (dp50, dp99) = percentiles(derived);
    let (mp50, mp99) = time_signs(&memory, &alice, 1);
    let (lp50, lp99) = time_signs(&local, &alice, 1);
    let (rp50, rp99) = time_signs(&remote, &alice, 1);
    println!("| keystore | p50 | p99 |\n|---|---|---|");
    println!("| ed25519 Pair::sign, key already derived (lower bound) | {} | {} |", ms(dp50), ms(dp99));
    println!("| MemoryKeystore (in process) | {} | {} |", ms(mp50), ms(mp99));
    println!("| LocalKeystore (in process) | {} | {} |", ms(lp50), ms(lp99));
    println!("| RemoteKeystore → exclave, TLS loopback, claim + fsync + log | {} | {} |", ms(rp50), ms(rp99));
    println!(
        "\nratio remote/local: p50 {:.1}x, p99 {:.1}x\n",
        rp50.as_secs_f64() / lp50.as_secs_f64(),
        rp99.as_secs_f64() / lp99.as_secs_f64()
    );

    println!("| concurrent clients | store claims/s (embedded, group commit) | end-to-end signs/s (TLS) |\n|---|---|---|");
    for clients in [1usize, 8, 64] {
        let store_rate = rt.block_on(store_throughput(dir.path(), clients));
        let e2e_rate = rt.block_on(e2e_throughput(&url, &tls, clients, &alice));
        println!("| {clients} | {store_rate:.0} | {e2e_rate:.0} |");
    }
    d.stop();
}

/// Claims per second straight into a fresh embedded store.
async fn store_throughput(base: &std::path::Path, clients: usize) -> f64 {
    let path = base.join(format!("bench-{clients}.redb"));
    let store = Arc::new(WithDeadline::new(EmbeddedStore::open(&path).expect("store"), Duration::from_secs(5)));
    let per_client = 20_000 / clients.max(1) as u64;
    let start = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let store = store.clone();
            tokio::spawn(async move {
                for round in 0..per_client {
                    let key = ClaimKey {
                        chain: ChainId(CHAIN),
                        key_type: KeyType::GRANDPA,
                        public: vec![c as u8; 32],
                        duty: Duty::GrandpaVote { set_id: 1, round, stage: GrandpaStage::Prevote },
                    };
                    let rec = ClaimRecord { claimer: "bench".into(), payload_hash: [1; 32], signature: vec![2; 64], claimed_at_ms: 0 };
                    store.claim(&key, &rec).await.expect("claim");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task");
    }
    (per_client * clients as u64) as f64 / start.elapsed().as_secs_f64()
}

/// Signed GRANDPA votes per second through the signer, one TLS client per task.
async fn e2e_throughput(url: &str, tls: &TlsFiles, clients: usize, alice: &ed25519::Public) -> f64 {
    let per_client = (8_000 / clients.max(1)) as u64;
    let cfg = client_tls(tls);
    let start = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let client =
                jsonrpsee::http_client::HttpClientBuilder::default().with_custom_cert_store(cfg.clone()).build(url).expect("client");
            let public = Bytes(alice.0.to_vec());
            tokio::spawn(async move {
                for round in 0..per_client {
                    let req = SignRequest {
                        chain: Bytes(CHAIN.to_vec()),
                        key_type: WireKeyType(*b"gran"),
                        crypto: WireCrypto::Ed25519,
                        public: public.clone(),
                        message: Bytes(vote(round, 1000 + (clients * 100 + c) as u64)),
                        context: SignContext::None,
                        prehashed: false,
                        store_id: None,
                    };
                    client.sign(req).await.expect("sign");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task");
    }
    (per_client * clients as u64) as f64 / start.elapsed().as_secs_f64()
}

fn client_tls(tls: &TlsFiles) -> rustls::ClientConfig {
    exclave_keystore_remote::tls_client_config(tls).expect("client TLS")
}
