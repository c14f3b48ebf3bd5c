//! Power cuts. The signer's whole data directory (embedded claim store, signing log and its
//! rotated files, audit key, chain pin, keystore, TLS files) lives on `exclave-lossyfs`, a FUSE
//! filesystem in this test process that keeps every write not made durable (fsync, fdatasync,
//! directory fsync) in a cache of its own and throws it away on command, as a power cut would
//! (the page cache survives `kill -9`; it does not survive a power cut).
//!
//! Each cycle starts the signer, lets two nodes race different GRANDPA votes for the same rounds
//! (and rotate keys, and rotate the signing log: `audit.rotate_bytes` is tiny), kills the signer
//! at a random moment with SIGKILL and cuts the power. After every cut it checks:
//! - before the restart, on the log as the cut left it: every signature a node received is in
//!   the signing log, and `exclave audit verify --live` accepts the log (a torn tail would be
//!   named; none is expected, since a write is durable only as a whole, at its fdatasync): the
//!   newest three files (`--partial`) after every cut, the whole log after every 25th and the
//!   last (a whole-log verify per cut made a 1,000-cut run's cost grow with its square);
//! - no round ever got two different signatures, over every answer any node received;
//! - every signature a node received is still claimed: after the restart the other node's
//!   payload is refused as a conflict and the same request gets the same signature;
//! - every key that `generateKey` acknowledged is still held.
//!
//! `EXCLAVE_POWER_CUTS` sets the number of cuts (default 25 here; `scripts/power-loss.sh` runs
//! 1,000) and `EXCLAVE_POWER_ROTATE_BYTES` the log's rotation size (default 4 KiB; the script's
//! 32 KiB keeps the file count of a 1,000-cut run in the hundreds). The seed of the random kill moments is printed, and `EXCLAVE_POWER_SEED` replays it.

use crate::common::*;
use exclave_lossyfs::LossyMount;
use exclave_protocol::{ErrorKind, ExclaveApiClient, ExclaveError, WireCrypto, WireKeyType};
use std::{
    collections::{BTreeMap, BTreeSet},
    time::{Duration, Instant},
};

/// What the nodes were told, over every cycle.
#[derive(Default)]
struct Seen {
    /// round → (the payload's target byte, the signature) of every signature received.
    signed: BTreeMap<u64, BTreeSet<(u8, Vec<u8>)>>,
    /// Public keys `generateKey` returned.
    keys: Vec<Vec<u8>>,
}

/// A tiny deterministic generator (xorshift) for the kill moments: no new dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().map(|v| v.parse().unwrap_or_else(|_| panic!("{name}={v:?} is not a number"))).unwrap_or(default)
}

/// Two nodes race rounds `rounds` (node A payload 0xaa, node B 0xbb), one generates a key, until
/// `kill_after`; then the signer is killed. Returns what they were answered.
fn race_until_killed(signer: &mut Signer, rounds: std::ops::Range<u64>, kill_after: Duration, seen: &mut Seen) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let (a, b) = (signer.client(), signer.client());
    let node = |client: jsonrpsee::http_client::HttpClient, target: u8, rounds: std::ops::Range<u64>| async move {
        let mut got = Vec::new();
        for round in rounds {
            match client.sign(vote_request(false, target, round)).await {
                Ok(r) => got.push((round, target, r.signature.0)),
                Err(jsonrpsee::core::ClientError::Call(_)) => {}
                Err(_) => break, // the signer is gone
            }
        }
        got
    };
    let keys = signer.client();
    let (answers, key) = rt.block_on(async {
        let a = tokio::spawn(node(a, 0xaa, rounds.clone()));
        let b = tokio::spawn(node(b, 0xbb, rounds));
        let key = tokio::spawn(async move { keys.generate_key(WireKeyType(*b"gran"), WireCrypto::Ed25519, None).await });
        tokio::time::sleep(kill_after).await;
        signer.kill9();
        let (a, b) = (a.await.expect("node a"), b.await.expect("node b"));
        (a.into_iter().chain(b).collect::<Vec<_>>(), key.await.expect("keys"))
    });
    for (round, target, sig) in answers {
        seen.signed.entry(round).or_default().insert((target, sig));
    }
    if let Ok(public) = key {
        seen.keys.push(public.0);
    }
}

/// The claims and keys after a cut, against the restarted signer: every round of the last cycle
/// (`recent`, the ones the cut could hit) and a sample of 20 older ones are asked again.
fn check_claims(signer: &Signer, seen: &Seen, recent: std::ops::Range<u64>, rng: &mut Rng) {
    for (round, sigs) in &seen.signed {
        assert_eq!(sigs.len(), 1, "round {round} got two different signatures: {sigs:?}");
    }
    let older: Vec<u64> = seen.signed.keys().copied().filter(|r| !recent.contains(r)).collect();
    let sample: BTreeSet<u64> = (0..20.min(older.len())).map(|_| older[rng.below(older.len() as u64) as usize]).collect();
    let asked: Vec<_> = seen.signed.iter().filter(|(r, _)| recent.contains(r) || sample.contains(r)).collect();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let client = signer.client();
    rt.block_on(async {
        for (round, sigs) in asked {
            let (target, sig) = sigs.iter().next().expect("one");
            // The other payload first: were the claim lost, it would be signed now.
            let other = if *target == 0xaa { 0xbb } else { 0xaa };
            match client.sign(vote_request(false, other, *round)).await {
                Err(jsonrpsee::core::ClientError::Call(obj)) => {
                    let e = ExclaveError::from_object(&obj).expect("an Exclave error");
                    assert_eq!(e.kind, ErrorKind::RefusedConflict, "round {round}: {e:?}");
                }
                other => panic!("round {round}: the claim was lost, the other payload got {other:?}"),
            }
            let again = client.sign(vote_request(false, *target, *round)).await;
            let again = again.unwrap_or_else(|e| panic!("round {round}: the signed payload is no longer claimed as ours: {e:?}"));
            assert_eq!(&again.signature.0, sig, "round {round}: another signature for the same payload");
        }
        let held = client.keys(WireKeyType(*b"gran")).await.expect("keys");
        for key in &seen.keys {
            assert!(held.iter().any(|k| &k.0 == key), "an acknowledged generateKey lost its key file: 0x{}", hex::encode(key));
        }
    });
}

/// The hex strings of a signature's length in each log file, kept between cuts for files whose
/// length and modification time did not change (a long run's log reaches hundreds of MB).
#[derive(Default)]
struct LogScan(BTreeMap<std::path::PathBuf, ((u64, std::time::SystemTime), std::collections::HashSet<String>)>);

impl LogScan {
    /// The signing log's files (active and rotated), oldest first.
    fn files(data: &std::path::Path) -> Vec<std::path::PathBuf> {
        let mut files: Vec<_> = std::fs::read_dir(data)
            .expect("ls data")
            .map(|e| e.expect("entry").path())
            .filter(|p| {
                p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("signing.log") && !n.to_string_lossy().contains("audit"))
            })
            .collect();
        // `signing.log.<20-digit first seq>` sorts in order; the active `signing.log` is newest.
        files.sort_by_key(|p| (p.file_name().is_some_and(|n| n == "signing.log"), p.clone()));
        files
    }

    /// Re-read every file that changed since the last scan; drop the ones that are gone.
    fn refresh(&mut self, files: &[std::path::PathBuf]) {
        let present: BTreeSet<&std::path::PathBuf> = files.iter().collect();
        self.0.retain(|path, _| present.contains(path));
        for path in files {
            let meta = std::fs::metadata(path).expect("stat log");
            let stamp = (meta.len(), meta.modified().expect("mtime"));
            if self.0.get(path).is_some_and(|(s, _)| *s == stamp) {
                continue;
            }
            let text = std::fs::read_to_string(path).expect("read log");
            let sigs = text.split(|c: char| !c.is_ascii_hexdigit()).filter(|t| t.len() == 128).map(str::to_owned).collect();
            self.0.insert(path.clone(), (stamp, sigs));
        }
    }

    /// Every signature-length hex string in the log, one set (a lookup per file per signature
    /// grew with the product of the two).
    fn all(&self) -> std::collections::HashSet<&str> {
        self.0.values().flat_map(|(_, sigs)| sigs.iter().map(String::as_str)).collect()
    }
}

/// The signing log as the cut left it (no signer running, so nothing rotates under the reader):
/// every signature a node received is in it, and `audit verify --live` accepts it. `full`
/// verifies every file; otherwise the newest three (the active file and the two rotated before
/// it, where a cut can land) are verified with `--partial`, which checks their chain,
/// checkpoints and signatures but not that they start at seq 1.
fn check_log(seen: &Seen, data: &std::path::Path, scan: &mut LogScan, full: bool) {
    let files = LogScan::files(data);
    scan.refresh(&files);
    let logged = scan.all();
    for sigs in seen.signed.values() {
        for (_, sig) in sigs {
            let sig = hex::encode(sig);
            assert!(logged.contains(sig.as_str()), "a received signature is not in the signing log: {sig}");
        }
    }
    let mut verify = exclave();
    verify.args(["audit", "verify", "--live", "-q"]);
    if full {
        verify.arg(data);
    } else {
        verify.arg("--partial").args(&files[files.len().saturating_sub(3)..]);
    }
    let verify = verify.output().expect("audit verify");
    assert!(
        verify.status.success(),
        "audit verify after a power cut (full: {full}): {}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
}

#[test]
fn power_cuts_never_lose_a_claim_a_log_record_or_a_key_that_was_acknowledged() {
    let cuts = env_u64("EXCLAVE_POWER_CUTS", 25);
    let seed = env_u64("EXCLAVE_POWER_SEED", std::process::id() as u64 ^ 0x9e37_79b9_7f4a_7c15);
    eprintln!("power cuts: {cuts}, seed {seed} (EXCLAVE_POWER_SEED replays it)");
    let mut rng = Rng(seed | 1);
    let dir = tempfile::tempdir().expect("tempdir");
    let mountpoint = dir.path().join("lossy");
    std::fs::create_dir(&mountpoint).expect("mountpoint");
    let fs = LossyMount::mount(&mountpoint).expect("mount exclave-lossyfs (needs /dev/fuse and root)");
    let data = fs.path().join("data");
    exclave_durable::create_dir_all(&data, 0o700).expect("data dir");
    exclave_signer::tls::DevPki::ensure(&data).expect("pki");
    import_key(&data.join("keystore"), "gran", "//Alice");
    let mut cfg = TestConfig::new(&data, "signer-a").min_free_bytes(0);
    // Rotations inside most cycles; the long run takes larger files (every file costs each
    // cut's log check a FUSE round trip or four).
    cfg.0.audit.rotate_bytes = env_u64("EXCLAVE_POWER_ROTATE_BYTES", 4096);
    // The config is the operator's file, not the signer's data: it lives off the lossy mount.
    let config = dir.path().join("signer-a.toml");
    std::fs::write(&config, cfg.toml()).expect("config");
    // Nothing is lost before the first start: the set-up above made its files durable.
    fs.cut_power();
    let args = ["serve".into(), "--config".into(), config.display().to_string()];
    let mut seen = Seen::default();
    let started = Instant::now();
    let mut discarded = 0u64;
    let mut scan = LogScan::default();
    for cycle in 0..cuts {
        if cycle > 0 {
            // The whole log every 25th cut; the newest files after every cut.
            check_log(&seen, &data, &mut scan, cycle % 25 == 0);
        }
        let mut signer = Signer::spawn(&args, &data);
        if cycle > 0 {
            check_claims(&signer, &seen, (cycle - 1) * 1000..cycle * 1000, &mut rng);
        }
        let rounds = cycle * 1000..cycle * 1000 + 500;
        race_until_killed(&mut signer, rounds, Duration::from_millis(rng.below(400)), &mut seen);
        discarded += fs.cut_power().bytes_discarded;
        if (cycle + 1) % 50 == 0 {
            let kept: usize = seen.signed.values().map(BTreeSet::len).sum();
            eprintln!("power cuts: {}/{cuts} after {:?}; {kept} signatures so far, all kept", cycle + 1, started.elapsed());
        }
    }
    check_log(&seen, &data, &mut scan, true);
    let signer = Signer::spawn(&args, &data);
    check_claims(&signer, &seen, (cuts - 1) * 1000..cuts * 1000, &mut rng);
    let signatures: usize = seen.signed.values().map(BTreeSet::len).sum();
    eprintln!(
        "power cuts: {cuts} in {:?}; {signatures} signatures received and all kept; {} keys generated and kept; {discarded} unsynced bytes discarded",
        started.elapsed(),
        seen.keys.len()
    );
    assert!(signatures > 0, "no signature was ever received: the test tested nothing");
    assert!(discarded > 0, "no cut ever discarded anything: the kills never hit unsynced data");
}
