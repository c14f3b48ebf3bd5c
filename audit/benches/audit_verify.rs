//! Benchmark: `exclave audit verify` over a large signing log (default 1,000,000 records).
//!
//! Generates a realistic log with real signatures through the signer's own chain writer (a
//! checkpoint every 1000 records, rotation at 256 MiB), then times `audit::verify` on it with
//! all cores. Mix per 6-second slot, as a Polkadot validator's signer sees it: one BABE VRF
//! slot claim, a GRANDPA prevote and precommit, a seal every 50 slots, a heartbeat per 600
//! slots, a refusal every 100 records.
//!
//! ```text
//! nice -n 5 cargo bench -p exclave-audit --bench audit_verify            # 1,000,000 records
//! AUDIT_RECORDS=100000 AUDIT_KEEP=/tmp/audit-log cargo bench -p exclave-audit --bench audit_verify
//! time target/release/exclave audit verify -q /tmp/audit-log               # the CLI on the kept log
//! ```

use exclave_audit::{self as audit, VerifyOptions};
use exclave_policies::{Duty, GrandpaStage};
use exclave_protocol::{Bytes, SignContext, VrfRequest, WireKeyType};
use exclave_signing_log::{checkpoint::AuditKey, writer::ChainWriter, Decision, LogLine, LogOptions};
use sp_core::{crypto::VrfSecret, ed25519, sr25519, Pair};
use sp_runtime::traits::Header as _;
use std::time::Instant;

const CHAIN: [u8; 32] = [0x42; 32];

fn base(method: &'static str, key_type: &str, public: &[u8], time_ms: u64) -> LogLine {
    LogLine {
        time_ms,
        signer: "bench-signer".into(),
        client: "node-1".into(),
        chain: format!("0x{}", hex::encode(CHAIN)),
        method: method.into(),
        key_type: key_type.into(),
        public: hex::encode(public),
        decision: Some(Decision::Signed),
        ..LogLine::default()
    }
}

fn signed(mut e: LogLine, duty: Option<Duty>, message: &[u8], signature: &[u8], context: Option<SignContext>) -> LogLine {
    e.duty = duty;
    e.payload_hash = Some(hex::encode(sp_crypto_hashing::blake2_256(message)));
    e.message = Some(hex::encode(message));
    e.signature = Some(hex::encode(signature));
    e.preimage = context.and_then(|c| serde_json::to_value(c).ok());
    e
}

struct Keys {
    babe: sr25519::Pair,
    gran: ed25519::Pair,
}

/// The `i`-th record.
fn record(keys: &Keys, i: u64) -> LogLine {
    let slot = 280_000_000 + i / 3;
    let time_ms = slot * 6000;
    let babe_pub = keys.babe.public().0;
    if i % 100 == 99 {
        let mut e = base("sign", "gran", &keys.gran.public().0, time_ms);
        e.decision = Some(Decision::Refused);
        e.reason = Some("already claimed by bench-signer/node-2 at 1 ms with a different payload (hash 0x00)".into());
        return e;
    }
    match i % 3 {
        0 if slot.checked_rem(50) == Some(0) => {
            use codec::Encode;
            let pre = sp_consensus_babe::digests::PreDigest::SecondaryPlain(sp_consensus_babe::digests::SecondaryPlainPreDigest {
                authority_index: 0,
                slot: slot.into(),
            });
            let header = sp_runtime::generic::Header::<u32, sp_runtime::traits::BlakeTwo256>::new(
                (i / 3) as u32,
                [1; 32].into(),
                [2; 32].into(),
                [3; 32].into(),
                sp_runtime::generic::Digest {
                    logs: vec![sp_runtime::generic::DigestItem::PreRuntime(sp_consensus_babe::BABE_ENGINE_ID, pre.encode())],
                },
            );
            let hash = sp_runtime::traits::Header::hash(&header);
            let sig = keys.babe.sign(hash.as_bytes());
            let ctx = SignContext::BabeSeal { header: Bytes(header.encode()) };
            let duty = Duty::BabeSeal { slot, authority_index: 0 };
            signed(base("sign", "babe", &babe_pub, time_ms), Some(duty), hash.as_bytes(), &sig.0, Some(ctx))
        }
        0 => {
            let ctx = exclave_policies::VrfContext { randomness: [7; 32], slot, epoch: slot / 600 };
            let sig = keys.babe.vrf_sign(&exclave_policies::vrf_sign_data(&ctx));
            let both = [codec::Encode::encode(&sig.pre_output), codec::Encode::encode(&sig.proof)].concat();
            let req = VrfRequest {
                chain: Bytes(CHAIN.to_vec()),
                key_type: WireKeyType(*b"babe"),
                public: Bytes(babe_pub.to_vec()),
                randomness: Bytes(vec![7; 32]),
                slot,
                epoch: ctx.epoch,
            };
            let mut e = base("vrfSign", "babe", &babe_pub, time_ms);
            e.preimage = serde_json::to_value(req).ok();
            e.signature = Some(hex::encode(both));
            e
        }
        stage => {
            let round = i / 3;
            let precommit = stage == 2;
            let target = sp_core::H256::repeat_byte((round % 251) as u8);
            let msg = if precommit {
                finality_grandpa::Message::Precommit(finality_grandpa::Precommit { target_hash: target, target_number: round as u32 })
            } else {
                finality_grandpa::Message::Prevote(finality_grandpa::Prevote { target_hash: target, target_number: round as u32 })
            };
            let payload = sp_consensus_grandpa::localized_payload(round, 3, &msg);
            let sig = keys.gran.sign(&payload);
            let stage = if precommit { GrandpaStage::Precommit } else { GrandpaStage::Prevote };
            let duty = Duty::GrandpaVote { set_id: 3, round, stage };
            signed(base("sign", "gran", &keys.gran.public().0, time_ms), Some(duty), &payload, &sig.0, None)
        }
    }
}

fn generate(dir: &std::path::Path, n: u64) {
    let keys = Keys {
        babe: sr25519::Pair::from_string("//Alice", None).expect("key"),
        gran: ed25519::Pair::from_string("//Alice", None).expect("key"),
    };
    let log = dir.join("signing.log");
    let (key, _) = AuditKey::load_or_create(&log).expect("audit key");
    let mut w = ChainWriter::open(&log, key, LogOptions::new("bench-signer")).expect("writer");
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let batch = 4096u64;
    let mut i = 0;
    while i < n {
        let end = (i + batch * threads).min(n);
        let per = (end - i).div_ceil(threads);
        let mut entries: Vec<LogLine> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let (a, b) = (i + t * per, (i + (t + 1) * per).min(end));
                    let keys = &keys;
                    s.spawn(move || (a..b).map(|j| record(keys, j)).collect::<Vec<_>>())
                })
                .collect();
            handles.into_iter().flat_map(|h| h.join().expect("generator")).collect()
        });
        for chunk in entries.chunks_mut(batch as usize) {
            w.append(&mut chunk.iter_mut().collect::<Vec<_>>()).expect("append");
        }
        i = end;
        if i % 100_000 < batch * threads {
            eprintln!("generated {i} records");
        }
    }
    w.seal().expect("seal");
}

/// Single-thread cost per record kind: parse, and parse + signature check.
fn breakdown() {
    let keys = Keys {
        babe: sr25519::Pair::from_string("//Alice", None).expect("key"),
        gran: ed25519::Pair::from_string("//Alice", None).expect("key"),
    };
    for (name, method, key_type) in [("vrf", "vrfSign", "babe"), ("grandpa vote", "sign", "gran"), ("babe seal", "sign", "babe")] {
        let lines: Vec<Vec<u8>> = (0..100_000)
            .map(|i| record(&keys, i))
            .filter(|e| e.method == method && e.key_type == key_type && e.decision == Some(Decision::Signed))
            .take(300)
            .map(|e| serde_json::to_vec(&e).expect("json"))
            .collect();
        let t = Instant::now();
        for l in &lines {
            let _ = sp_crypto_hashing::blake2_256(l);
            std::hint::black_box(serde_json::from_slice::<serde_json::Value>(l).expect("parse"));
        }
        let parse = t.elapsed() / lines.len() as u32;
        let with_seq: Vec<Vec<u8>> = lines.iter().map(|l| [b"{\"seq\":1,\"prev\":\"00\",".as_slice(), &l[1..]].concat()).collect();
        let t = Instant::now();
        for l in &with_seq {
            let line = LogLine::parse(l).expect("line");
            audit::sigcheck::check(&line).expect("verifies");
        }
        println!("{name}: parse to Value {parse:?}, parse + check {:?} per record", t.elapsed() / lines.len() as u32);
    }
}

/// CPU seconds (user + system, all threads) this process has used, from /proc/self/stat.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or_default().split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 of stat (utime, stime), counted from the state field (field 3).
    (ticks(11) + ticks(12)) / 100.0
}

fn main() {
    if std::env::var("AUDIT_BREAKDOWN").is_ok() {
        return breakdown();
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let (dir, n) = match std::env::var("AUDIT_VERIFY_ONLY") {
        // Verify a log generated (and kept) by an earlier run.
        Ok(dir) => (std::path::PathBuf::from(dir), std::env::var("AUDIT_RECORDS").ok().and_then(|s| s.parse().ok()).unwrap_or(1_000_000)),
        Err(_) => {
            let n: u64 = std::env::var("AUDIT_RECORDS").ok().and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
            let dir = std::env::var("AUDIT_KEEP").map(std::path::PathBuf::from).unwrap_or_else(|_| tmp.path().to_path_buf());
            std::fs::create_dir_all(&dir).expect("dir");
            let started = Instant::now();
            generate(&dir, n);
            eprintln!("generated {n} records in {:.1?}", started.elapsed());
            (dir, n)
        }
    };
    let bytes: u64 = std::fs::read_dir(&dir).expect("dir").filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum();
    let opts = VerifyOptions { inputs: vec![dir.clone()], progress: true, ..Default::default() };
    let (started, cpu) = (Instant::now(), cpu_seconds());
    let report = audit::verify(&opts).expect("verify");
    let (took, cpu) = (started.elapsed(), cpu_seconds() - cpu);
    assert!(report.ok, "the generated log must verify: {:?}", &report.findings[..report.findings.len().min(5)]);
    assert_eq!(report.summary.records, n);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "audit verify: {n} records, {} MiB, {cores} threads: {took:.2?} wall ({:.0} records/s), {cpu:.1} CPU-seconds ({:.1} µs of CPU per record); load average at the end: {}",
        bytes >> 20,
        n as f64 / took.as_secs_f64(),
        cpu * 1e6 / n as f64,
        std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim()
    );
    let summary = serde_json::json!({
        "records": n,
        "mib": bytes >> 20,
        "threads": cores,
        "wall_s": took.as_secs_f64(),
        "cpu_s": cpu,
        "records_per_s": n as f64 / took.as_secs_f64(),
        "aim_wall_s": 60.0,
        "ratio_to_aim": took.as_secs_f64() / 60.0,
    });
    println!("bench-summary: {summary}");
}
