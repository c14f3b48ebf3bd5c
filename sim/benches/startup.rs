#![allow(missing_docs)]
//! Benchmark (not a test): how long a signer takes to start, ready to sign, with 10,000 keys in
//! its keystore directory, for keys stored as hex seeds and as mnemonic phrases (what
//! `author_rotateKeys` and `exclave keys generate` write: each is stretched with PBKDF2 when
//! loaded). Beside each, from the same run, its floor: reading the 10,000 files and deriving the
//! pairs in a loop, without a signer. The aim (issue 16): ready in under 2 s.
//!
//! Run: `cargo bench -p exclave-sim --bench startup` (figures go to docs/performance.md). The
//! last line is `bench-summary: {…}`.

use exclave_policies::{ChainId, Crypto, KeyType};
use exclave_signer::{
    daemon::{self, DaemonOptions},
    keystore_dir::{KeyPair, KeystoreDir},
};
use std::time::{Duration, Instant};

const KEYS: usize = 10_000;

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// A keystore directory under `dir` with `KEYS` gran keys, as seeds or as phrases.
fn fill(dir: &std::path::Path, phrases: bool) -> KeystoreDir {
    let ks = KeystoreDir::open(&dir.join("keystore")).expect("keystore");
    for i in 0..KEYS {
        let (pair, secret) = if phrases {
            let (pair, phrase) = KeyPair::generate(Crypto::Ed25519);
            (pair, phrase.to_string())
        } else {
            let seed = format!("0x{}", hex::encode(sp_crypto_hashing::blake2_256(&(i as u64).to_le_bytes())));
            (KeyPair::from_suri(Crypto::Ed25519, &seed).expect("seed"), seed)
        };
        ks.write(KeyType::GRANDPA, &pair, &secret).expect("write");
    }
    ks
}

fn main() {
    println!("# Signer start-up with {KEYS} keys (load average at start: {})\n", load_average());
    println!("| keys stored as | start, ready to sign | floor: read + derive | ratio | aim |\n|---|---|---|---|---|");
    let mut summary = serde_json::Map::new();
    for (name, phrases) in [("hex seeds", false), ("mnemonic phrases", true)] {
        let dir = tempfile::tempdir().expect("tempdir");
        let ks = fill(dir.path(), phrases);
        let floor = {
            let t = Instant::now();
            let (ring, _) = ks.load().expect("load");
            assert_eq!(ring.len(), KEYS);
            t.elapsed()
        };
        let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
        let mut opts =
            DaemonOptions::dev(dir.path().to_path_buf(), "127.0.0.1:0".parse().expect("addr"), None, Some(ChainId([0x42; 32])), false)
                .expect("dev options");
        opts.dev = false; // no dev keys added: the 10,000 are the keystore
        let t = Instant::now();
        let d = rt.block_on(daemon::start(opts, Default::default())).expect("start");
        rt.block_on(d.engine.readiness()).expect("ready");
        let started = t.elapsed();
        d.stop();
        let ratio = secs(started) / secs(floor);
        println!(
            "| {name} | {:.2} s | {:.2} s | {ratio:.2}x | < 2 s: {} |",
            secs(started),
            secs(floor),
            if secs(started) < 2.0 { "met" } else { "missed" }
        );
        let key = if phrases { "phrases" } else { "seeds" };
        summary.insert(format!("startup_{key}_s"), secs(started).into());
        summary.insert(format!("floor_{key}_s"), secs(floor).into());
        summary.insert(format!("ratio_{key}"), ratio.into());
    }
    println!("bench-summary: {}", serde_json::Value::Object(summary));
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg").map(|l| l.split_whitespace().next().unwrap_or("?").to_string()).unwrap_or_else(|_| "?".into())
}
