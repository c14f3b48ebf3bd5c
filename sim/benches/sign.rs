#![allow(missing_docs)]
//! Benchmark (not a test): what a whole sign request costs against its floor, and how the cost
//! grows. A dev signer runs in-process (mutual TLS on loopback, embedded store, signing log on
//! the same disk); every figure is a GRANDPA prevote for a duty never signed before.
//!
//! 1. Latency, one client, interleaved sample by sample: a `sign` request; its floor, an
//!    authenticated no-op round trip (`hasKeys` for one held key: TLS, JSON-RPC, the grant check)
//!    plus one 300-byte append and `fdatasync` of a file beside the signing log. Ratio of the
//!    percentiles.
//! 2. Concurrency: signed duties per second end to end and latency with 1, 8, 64 and 256
//!    clients (each its own TLS connection).
//! 3. Keys: sign latency with 1, 100 and 10,000 keys held (a signer each).
//! 4. Disk per duty: the claim store's and the signing log's growth over 60,000 signed duties
//!    (after 20,000).
//! 5. Memory: resident set of this process (signer and its clients) with 1,000 keys after
//!    100,000 signed duties.
//!
//! Run: `cargo bench -p exclave-sim --bench sign` (figures go to docs/performance.md); the last
//! line is `bench-summary: {…}`. `SIGN_BENCH_QUICK=1` runs every part with a tenth of the work.

use exclave_keystore_remote::TlsFiles;
use exclave_policies::{ChainId, Crypto, KeyType};
use exclave_protocol::{Bytes, ExclaveApiClient, SignContext, SignRequest, WireCrypto, WireKeyType};
use exclave_signer::{
    daemon::{self, Daemon, DaemonOptions},
    keystore_dir::{KeyPair, KeystoreDir},
};
use jsonrpsee::http_client::HttpClient;
use serde_json::{json, Map, Value};
use std::{
    io::Write,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

const CHAIN: [u8; 32] = [0x42; 32];

/// Every fresh duty gets its own (set id, round).
static NEXT_ROUND: AtomicU64 = AtomicU64::new(1);

fn quick() -> bool {
    std::env::var_os("SIGN_BENCH_QUICK").is_some()
}

fn scaled(n: u64) -> u64 {
    if quick() {
        (n / 10).max(1)
    } else {
        n
    }
}

fn vote(round: u64) -> Vec<u8> {
    let msg =
        finality_grandpa::Message::Prevote(finality_grandpa::Prevote { target_hash: sp_core::H256::repeat_byte(1), target_number: 1u32 });
    sp_consensus_grandpa::localized_payload(round, 1, &msg)
}

fn sign_request(public: &[u8]) -> SignRequest {
    SignRequest {
        chain: Bytes(CHAIN.to_vec()),
        key_type: WireKeyType(*b"gran"),
        crypto: WireCrypto::Ed25519,
        public: Bytes(public.to_vec()),
        message: Bytes(vote(NEXT_ROUND.fetch_add(1, Ordering::Relaxed))),
        context: SignContext::None,
        prehashed: false,
        store_id: None,
    }
}

/// p50 and p99, in milliseconds.
fn pct(mut v: Vec<Duration>) -> (f64, f64) {
    v.sort();
    let at = |q: usize| v[(v.len() * q / 100).min(v.len() - 1)].as_secs_f64() * 1000.0;
    (at(50), at(99))
}

/// A signer on a fresh directory holding `keys` gran keys (hex seeds), with connection limits
/// raised for 256 clients from one address.
struct Signer {
    dir: tempfile::TempDir,
    daemon: Daemon,
    url: String,
    publics: Vec<Vec<u8>>,
}

impl Signer {
    fn start(rt: &tokio::runtime::Runtime, keys: usize) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let ks = KeystoreDir::open(&dir.path().join("keystore")).expect("keystore");
        let mut publics = Vec::with_capacity(keys);
        for i in 0..keys {
            let seed = format!("0x{}", hex::encode(sp_crypto_hashing::blake2_256(&(i as u64).to_le_bytes())));
            let pair = KeyPair::from_suri(Crypto::Ed25519, &seed).expect("seed");
            publics.push(pair.public());
            ks.write(KeyType::GRANDPA, &pair, &seed).expect("write key");
        }
        let mut opts =
            DaemonOptions::dev(dir.path().to_path_buf(), "127.0.0.1:0".parse().expect("addr"), None, Some(ChainId(CHAIN)), false)
                .expect("dev options");
        opts.dev = false; // the keys above are the keystore
        opts.limits.max_connections = 1024;
        opts.limits.max_connections_per_address = 1024;
        opts.limits.max_concurrent_requests = 1024;
        let daemon = rt.block_on(daemon::start(opts, Default::default())).expect("start signer");
        let url = format!("https://{}", daemon.rpc_addr);
        Self { dir, daemon, url, publics }
    }

    fn client(&self) -> HttpClient {
        let tls_dir = self.dir.path().join("tls");
        let tls = TlsFiles { ca: tls_dir.join("ca.pem"), cert: tls_dir.join("client.pem"), key: tls_dir.join("client.key") };
        let cfg = exclave_keystore_remote::tls_client_config(&tls).expect("client TLS");
        jsonrpsee::http_client::HttpClientBuilder::default()
            .max_concurrent_requests(4)
            .with_custom_cert_store(cfg)
            .build(&self.url)
            .expect("client")
    }

    /// Bytes of the claim store and of every signing-log file.
    fn disk(&self) -> (u64, u64) {
        let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
        let log: u64 = std::fs::read_dir(self.dir.path())
            .expect("dir")
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with("signing.log") && !e.file_name().to_string_lossy().contains("audit"))
            .map(|e| size(&e.path()))
            .sum();
        (size(&self.dir.path().join("claims.redb")), log)
    }

    fn stop(self, rt: &tokio::runtime::Runtime) {
        self.daemon.stop();
        rt.block_on(self.daemon.close_store()).expect("close store");
    }
}

/// One 300-byte append and fdatasync, as the floor's disk half.
struct FloorFile(std::fs::File);

impl FloorFile {
    fn open(dir: &Path) -> Self {
        let path: PathBuf = dir.join("floor.bin");
        Self(std::fs::OpenOptions::new().create(true).append(true).open(path).expect("floor file"))
    }

    fn append(&mut self) -> Duration {
        let t = Instant::now();
        self.0.write_all(&[0x5a; 299]).expect("write");
        self.0.write_all(b"\n").expect("write");
        self.0.sync_data().expect("fdatasync");
        t.elapsed()
    }
}

async fn timed_sign(client: &HttpClient, public: &[u8]) -> Duration {
    let req = sign_request(public);
    let t = Instant::now();
    client.sign(req).await.expect("sign");
    t.elapsed()
}

fn latency(rt: &tokio::runtime::Runtime, s: &Signer, summary: &mut Map<String, Value>) {
    let samples = scaled(3000) as usize;
    let client = s.client();
    let mut floor_file = FloorFile::open(s.dir.path());
    let public = s.publics[0].clone();
    let held = vec![(Bytes(public.clone()), WireKeyType(*b"gran"))];
    for _ in 0..200 {
        rt.block_on(timed_sign(&client, &public));
    }
    let (mut sign, mut noop, mut disk, mut floor) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..samples {
        sign.push(rt.block_on(timed_sign(&client, &public)));
        let t = Instant::now();
        assert!(rt.block_on(client.has_keys(held.clone())).expect("hasKeys"));
        let n = t.elapsed();
        let d = floor_file.append();
        noop.push(n);
        disk.push(d);
        floor.push(n + d);
    }
    let ((s50, s99), (n50, n99), (d50, d99), (f50, f99)) = (pct(sign), pct(noop), pct(disk), pct(floor));
    println!("## 1. Latency, one client ({samples} interleaved samples)\n");
    println!("| path | p50 ms | p99 ms |\n|---|---|---|");
    println!("| sign request (claim, signing-log record, one fdatasync) | {s50:.3} | {s99:.3} |");
    println!("| no-op round trip (`hasKeys`) | {n50:.3} | {n99:.3} |");
    println!("| 300-byte append + fdatasync | {d50:.3} | {d99:.3} |");
    println!("| floor: no-op + append, per sample | {f50:.3} | {f99:.3} |");
    let (r50, r99) = (s50 / f50, s99 / f99);
    println!(
        "\nratio sign / floor: p50 {r50:.2}x (aim <= 1.5x: {}), p99 {r99:.2}x; p99 {s99:.3} ms (aim <= 3 ms: {})\n",
        met(r50 <= 1.5),
        met(s99 <= 3.0)
    );
    for (k, v) in [
        ("sign_p50_ms", s50),
        ("sign_p99_ms", s99),
        ("noop_p50_ms", n50),
        ("noop_p99_ms", n99),
        ("fdatasync_p50_ms", d50),
        ("fdatasync_p99_ms", d99),
        ("floor_p50_ms", f50),
        ("floor_p99_ms", f99),
        ("ratio_p50", r50),
        ("ratio_p99", r99),
    ] {
        summary.insert(k.into(), json!(v));
    }
}

fn met(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "missed"
    }
}

/// `clients` tasks, each with its own connection, sign `total` fresh duties between them.
/// Returns (duties/s, latencies).
fn run_clients(rt: &tokio::runtime::Runtime, s: &Signer, clients: usize, total: u64) -> (f64, Vec<Duration>) {
    let per_client = (total / clients as u64).max(1);
    let conns: Vec<HttpClient> = (0..clients).map(|_| s.client()).collect();
    let publics = Arc::new(s.publics.clone());
    rt.block_on(async {
        // Connect (TLS handshakes) before the clock starts.
        for c in &conns {
            let p = &publics[0];
            c.has_keys(vec![(Bytes(p.clone()), WireKeyType(*b"gran"))]).await.expect("warm");
        }
        let start = Instant::now();
        let tasks: Vec<_> = conns
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                let publics = publics.clone();
                tokio::spawn(async move {
                    let mut lat = Vec::with_capacity(per_client as usize);
                    for n in 0..per_client as usize {
                        let public = &publics[(i + n * clients) % publics.len()];
                        lat.push(timed_sign(&c, public).await);
                    }
                    lat
                })
            })
            .collect();
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.expect("client task"));
        }
        ((per_client * clients as u64) as f64 / start.elapsed().as_secs_f64(), all)
    })
}

fn concurrency(rt: &tokio::runtime::Runtime, s: &Signer, summary: &mut Map<String, Value>) {
    println!("## 2. Concurrent clients (signed duties per second end to end)\n");
    println!("| clients | duties | duties/s | p50 ms | p99 ms |\n|---|---|---|---|---|");
    for clients in [1usize, 8, 64, 256] {
        let total = scaled(if clients == 1 { 3000 } else { 20_000 });
        let (rate, lat) = run_clients(rt, s, clients, total);
        let n = lat.len();
        let (p50, p99) = pct(lat);
        println!("| {clients} | {n} | {rate:.0} | {p50:.3} | {p99:.3} |");
        summary.insert(format!("clients_{clients}_per_s"), json!(rate));
        summary.insert(format!("clients_{clients}_p50_ms"), json!(p50));
        summary.insert(format!("clients_{clients}_p99_ms"), json!(p99));
    }
    let rate = summary["clients_64_per_s"].as_f64().unwrap_or(0.0);
    println!("\n64 clients: {rate:.0}/s (aim >= 20,000/s: {}, {:.1}x short)\n", met(rate >= 20_000.0), 20_000.0 / rate);
}

fn keys(rt: &tokio::runtime::Runtime, summary: &mut Map<String, Value>) {
    println!("## 3. Keys held\n");
    println!("| keys | p50 ms | p99 ms | duties/s, 8 clients |\n|---|---|---|---|");
    for n in [1usize, 100, 10_000] {
        let s = Signer::start(rt, n);
        let (_, warm) = run_clients(rt, &s, 1, 100);
        drop(warm);
        let (_, lat) = run_clients(rt, &s, 1, scaled(2000));
        let (p50, p99) = pct(lat);
        let (rate, _) = run_clients(rt, &s, 8, scaled(8000));
        println!("| {n} | {p50:.3} | {p99:.3} | {rate:.0} |");
        summary.insert(format!("keys_{n}_p50_ms"), json!(p50));
        summary.insert(format!("keys_{n}_p99_ms"), json!(p99));
        summary.insert(format!("keys_{n}_per_s_8_clients"), json!(rate));
        s.stop(rt);
    }
    println!();
}

/// Disk per duty, at the steady state: the store's file grows in steps (redb reuses pages
/// freed by the claims committed without an fsync only after the next durable commit), so the
/// growth is measured over `MEASURED` duties after `WARM` duties, and the file's size per claim
/// held is given too.
fn disk(rt: &tokio::runtime::Runtime, summary: &mut Map<String, Value>) {
    let (warm, measured) = (scaled(20_000), scaled(60_000));
    let s = Signer::start(rt, 1);
    run_clients(rt, &s, 64, warm);
    rt.block_on(s.daemon.close_store()).expect("flush");
    let (before_store, before_log) = s.disk();
    run_clients(rt, &s, 64, measured);
    rt.block_on(s.daemon.close_store()).expect("flush");
    let (store, log) = s.disk();
    let per_claim = (store - before_store) as f64 / measured as f64;
    let per_held = store as f64 / (warm + measured) as f64;
    let per_record = (log - before_log) as f64 / measured as f64;
    // One validator: a GRANDPA prevote and precommit per round (~1 round per 6 s block at best),
    // a BABE seal per authored slot, a heartbeat and a BEEFY vote now and then: ~2 duties per 6 s.
    let per_year = 2.0 * 365.25 * 24.0 * 600.0;
    println!("## 4. Disk per duty ({measured} signed duties after {warm})\n");
    println!("| what | bytes per duty | per year at ~2 duties per 6 s (~{per_year:.0} duties) |\n|---|---|---|");
    println!("| claims.redb, growth | {per_claim:.0} | {:.0} MiB |", per_claim * per_year / 1048576.0);
    println!("| claims.redb, file / claims held | {per_held:.0} | |");
    println!("| signing log | {per_record:.0} | {:.0} MiB |", per_record * per_year / 1048576.0);
    println!("\nclaim: {per_claim:.0} B (aim <= 200 B: {})\n", met(per_claim <= 200.0));
    summary.insert("claim_bytes".into(), json!(per_claim));
    summary.insert("claim_file_bytes_per_held".into(), json!(per_held));
    summary.insert("log_record_bytes".into(), json!(per_record));
    summary.insert("duties_per_year".into(), json!(per_year));
    s.stop(rt);
}

fn memory(rt: &tokio::runtime::Runtime, summary: &mut Map<String, Value>) {
    let s = Signer::start(rt, 1000);
    let duties = scaled(100_000);
    let (rate, _) = run_clients(rt, &s, 16, duties);
    let rss = rss_kib() as f64 / 1024.0;
    println!("## 5. Memory\n");
    println!(
        "resident set of this process (signer and 16 clients) with 1,000 keys after {duties} signed duties ({rate:.0}/s): {rss:.1} MiB (aim < 64 MiB: {})\n",
        met(rss < 64.0)
    );
    summary.insert("rss_mib_1000_keys".into(), json!(rss));
    summary.insert("rss_after_duties".into(), json!(duties));
    s.stop(rt);
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.split_whitespace().next()?.parse().ok()).unwrap_or(0)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg").map(|l| l.split_whitespace().next().unwrap_or("?").to_string()).unwrap_or_else(|_| "?".into())
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let load = load_average();
    println!("# Exclave sign benchmark (load average at start: {load}{})\n", if quick() { "; QUICK" } else { "" });
    let mut summary = Map::new();
    summary.insert("load_average_start".into(), json!(load));
    // Memory first, while the process has allocated nothing else.
    memory(&rt, &mut summary);
    let s = Signer::start(&rt, 1);
    latency(&rt, &s, &mut summary);
    concurrency(&rt, &s, &mut summary);
    s.stop(&rt);
    keys(&rt, &mut summary);
    disk(&rt, &mut summary);
    println!("bench-summary: {}", Value::Object(summary));
}
