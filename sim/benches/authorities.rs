#![allow(missing_docs)]
//! Benchmark (not a test): what one BABE slot, one GRANDPA round start and one BEEFY vote cost
//! the node's keystore with 1,000 authorities (`exclave_sim::authorities`, the loops as
//! polkadot-sdk runs them), for a node holding one of them and for one holding none. Beside each,
//! interleaved, its floor: the same loop on an in-process `MemoryKeystore` plus the round trips
//! the held key needs (one `hasKeys` round trip, measured in the same run); and what the loop
//! cost when every authority was a round trip (1,000 sequential `hasKeys` requests).
//!
//! Run: `cargo bench -p exclave-sim --bench authorities` (figures go to docs/performance.md).
//! The last line is `bench-summary: {…}` with every figure in milliseconds and every ratio.

use exclave_keystore_remote::{RemoteKeystore, RemoteKeystoreConfig, TlsFiles};
use exclave_policies::{ChainId, VrfContext};
use exclave_protocol::{Bytes, ExclaveApiClient, WireKeyType};
use exclave_signer::daemon::{self, DaemonOptions};
use exclave_sim::authorities::{babe_claim_slot, beefy_authority_id, grandpa_local_authority, Authorities};
use sp_core::crypto::KeyTypeId;
use sp_keystore::{testing::MemoryKeystore, Keystore};
use std::time::{Duration, Instant};

const CHAIN: [u8; 32] = [0x42; 32];
const AUTHORITIES: usize = 1000;
const SAMPLES: usize = 200;
/// Whole-set round-trip loops measured (each is 1,000 requests).
const PER_AUTHORITY_SAMPLES: usize = 5;

type Loop = fn(&dyn Keystore, &Authorities, &VrfContext);

fn babe(ks: &dyn Keystore, set: &Authorities, ctx: &VrfContext) {
    std::hint::black_box(babe_claim_slot(ks, &set.babe, ctx));
}
fn grandpa(ks: &dyn Keystore, set: &Authorities, _: &VrfContext) {
    std::hint::black_box(grandpa_local_authority(ks, &set.grandpa));
}
fn beefy(ks: &dyn Keystore, set: &Authorities, _: &VrfContext) {
    std::hint::black_box(beefy_authority_id(ks, &set.beefy));
}

fn p50_p99(mut v: Vec<Duration>) -> (f64, f64) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    (ms(v[v.len() / 2]), ms(v[(v.len() * 99 / 100).min(v.len() - 1)]))
}

fn timed(f: impl FnOnce()) -> Duration {
    let t = Instant::now();
    f();
    t.elapsed()
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
    let remote = RemoteKeystore::new(RemoteKeystoreConfig {
        urls: vec![url.clone()],
        chain: CHAIN,
        tls: Some(tls.clone()),
        timeout: Duration::from_secs(5),
        store_id: None,
    })
    .expect("remote keystore");
    let memory = MemoryKeystore::new();
    memory.sr25519_generate_new(KeyTypeId(*b"babe"), Some("//Alice")).expect("babe");
    memory.ed25519_generate_new(KeyTypeId(*b"gran"), Some("//Alice")).expect("gran");
    memory.ecdsa_generate_new(KeyTypeId(*b"beef"), Some("//Alice")).expect("beef");
    let rpc = jsonrpsee::http_client::HttpClientBuilder::default()
        .with_custom_cert_store(exclave_keystore_remote::tls_client_config(&tls).expect("client TLS"))
        .build(&url)
        .expect("rpc client");

    // BABE's VRF is asked for slots near the signer's clock (6 s slots, 2 slots of drift).
    let slot = (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis() / 6000) as u64;
    let ctx = VrfContext { randomness: [7; 32], slot, epoch: 4 };
    remote.note_vrf_candidates([ctx]);
    let holder = Authorities::new(AUTHORITIES, Some(AUTHORITIES - 1));
    let none = Authorities::new(AUTHORITIES, None);
    let alice_gran = holder.grandpa[AUTHORITIES - 1];

    println!("# Keystore cost of 1,000 authorities ({SAMPLES} interleaved samples each; load average at start: {})\n", load_average());
    println!("| duty | node holds | RemoteKeystore p50 / p99 | floor p50 / p99 | ratio p50 |\n|---|---|---|---|---|");
    let mut summary = serde_json::Map::new();
    let loops: [(&str, Loop); 3] = [("babe_slot", babe), ("grandpa_round", grandpa), ("beefy_vote", beefy)];
    for (name, run) in loops {
        for (who, set, round_trips) in [("one", &holder, 1u32), ("none", &none, 0)] {
            run(&remote, set, &ctx); // fetch the key lists, open the connection
            let (mut remote_t, mut floor_t) = (Vec::new(), Vec::new());
            for _ in 0..SAMPLES {
                remote_t.push(timed(|| run(&remote, set, &ctx)));
                let local = timed(|| run(&memory, set, &ctx));
                let trip = if round_trips > 0 {
                    timed(|| {
                        rt.block_on(rpc.has_keys(vec![(Bytes(alice_gran.0.to_vec()), WireKeyType(*b"gran"))])).expect("hasKeys");
                    })
                } else {
                    Duration::ZERO
                };
                floor_t.push(local + trip * round_trips);
            }
            let ((r50, r99), (f50, f99)) = (p50_p99(remote_t), p50_p99(floor_t));
            let ratio = r50 / f50;
            println!("| {name} | {who} | {r50:.3} / {r99:.3} ms | {f50:.3} / {f99:.3} ms | {ratio:.2}x |");
            summary.insert(format!("{name}_{who}_p50_ms"), r50.into());
            summary.insert(format!("{name}_{who}_p99_ms"), r99.into());
            summary.insert(format!("{name}_{who}_floor_p50_ms"), f50.into());
            summary.insert(format!("{name}_{who}_ratio_p50"), ratio.into());
        }
    }

    // The cost before the node answered unheld keys itself: a round trip per authority.
    let per_authority: Vec<Duration> = (0..PER_AUTHORITY_SAMPLES)
        .map(|_| {
            timed(|| {
                for v in &none.grandpa {
                    rt.block_on(rpc.has_keys(vec![(Bytes(v.0.to_vec()), WireKeyType(*b"gran"))])).expect("hasKeys");
                }
            })
        })
        .collect();
    let (a50, a99) = p50_p99(per_authority);
    println!("\nA round trip per authority (1,000 sequential hasKeys requests, as before): p50 {a50:.1} ms, p99 {a99:.1} ms");
    summary.insert("round_trip_per_authority_p50_ms".into(), a50.into());
    summary.insert("round_trip_per_authority_p99_ms".into(), a99.into());
    println!("bench-summary: {}", serde_json::Value::Object(summary));
    d.stop();
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg").map(|l| l.split_whitespace().next().unwrap_or("?").to_string()).unwrap_or_else(|_| "?".into())
}
