//! `exclave audit verify` and `audit show` on real logs: two in-process signers (real keys,
//! real claim stores, the real signing log) sign every duty kind; one log is then tampered
//! with in each way an attacker could (byte flip, deleted record, cut tail, reordered
//! records, records spliced from another signer, a re-chained rewrite), and each is detected
//! and named. Two signers with separate stores (the split-brain fault) that sign conflicting
//! GRANDPA prevotes and BABE seals are reported as equivocations whose Substrate proofs the
//! runtime's own checkers accept.

use crate::common;

use crate::common::{commitment, current_slot, heartbeat, CHAIN};
use codec::Decode;
use exclave_audit::{self as audit, show::Filter, FindingKind, Report, VerifyOptions};
use exclave_claims::{embedded::EmbeddedStore, WithDeadline};
use exclave_policies::KeyType;
use exclave_protocol::{Bytes, SignContext, SignOutcome, SignRequest, VrfRequest, WireCrypto, WireKeyType};
use exclave_signer::engine::Engine;
use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::Arc,
    time::Duration,
};

fn engine(dir: &Path, signer: &str) -> Engine {
    std::fs::create_dir_all(dir).expect("mkdir");
    let store = Arc::new(WithDeadline::new(EmbeddedStore::open(&dir.join("claims.redb")).expect("store"), Duration::from_secs(2)));
    common::engine(dir, signer, store)
}

fn public(kt: KeyType) -> Vec<u8> {
    common::alice(kt)
}

fn request(kt: KeyType, _crypto: WireCrypto, message: Vec<u8>, context: SignContext, prehashed: bool) -> SignRequest {
    common::request(kt, message, context, prehashed)
}

fn prevote(target: u8, round: u64) -> SignRequest {
    common::vote_request(false, target, round)
}

fn seal(slot: u64, salt: u8) -> SignRequest {
    common::seal_request(slot, salt)
}

/// Every duty kind, repeats (same-data), a conflict (refused) and a VRF signature.
async fn sign_everything(e: &Engine, client: &str) {
    let slot = current_slot();
    let ok = |r: Result<exclave_protocol::SignResponse, exclave_signer::engine::EngineError>| r.expect("signed").outcome;
    assert_eq!(ok(e.sign(client, seal(slot, 1)).await), SignOutcome::Signed);
    assert_eq!(ok(e.sign(client, seal(slot, 1)).await), SignOutcome::SameData);
    for round in 1..=3 {
        assert_eq!(ok(e.sign(client, prevote(1, round)).await), SignOutcome::Signed);
    }
    e.sign(client, prevote(2, 1)).await.expect_err("conflicting prevote refused");
    let hb = request(KeyType::IM_ONLINE, WireCrypto::Sr25519, heartbeat(5, 4), SignContext::None, false);
    assert_eq!(ok(e.sign(client, hb).await), SignOutcome::Signed);
    let c = commitment(20, 2, 9);
    let beefy = request(
        KeyType::BEEFY,
        WireCrypto::Ecdsa,
        sp_crypto_hashing::keccak_256(&c).to_vec(),
        SignContext::BeefyCommitment { commitment: Bytes(c) },
        true,
    );
    assert_eq!(ok(e.sign(client, beefy).await), SignOutcome::Signed);
    let vrf = VrfRequest {
        chain: Bytes(CHAIN.to_vec()),
        key_type: WireKeyType(*b"babe"),
        public: Bytes(public(KeyType::BABE)),
        randomness: Bytes(vec![3; 32]),
        slot,
        epoch: 1,
    };
    e.vrf_sign(client, vrf).await.expect("vrf");
}

/// Two signers' log directories: `a` (pristine, sealed) and `b` (sealed).
struct Logs {
    _dir: tempfile::TempDir,
    a: PathBuf,
    b: PathBuf,
}

async fn two_signers(conflicting: bool) -> Logs {
    let dir = tempfile::tempdir().expect("tempdir");
    let (da, db) = (dir.path().join("a"), dir.path().join("b"));
    let (a, b) = (engine(&da, "signer-a"), engine(&db, "signer-b"));
    sign_everything(&a, "node-1").await;
    if conflicting {
        // Split brain: signer-b has its own store, so nothing stops it signing other payloads.
        let slot = current_slot();
        b.sign("node-2", prevote(9, 2)).await.expect("b signs another prevote for round 2");
        b.sign("node-2", seal(slot, 5)).await.expect("b seals another header for the slot");
    } else {
        b.sign("node-2", prevote(1, 7)).await.expect("b signs");
    }
    a.seal_log().await.expect("seal");
    b.seal_log().await.expect("seal");
    Logs { _dir: dir, a: da.join("log"), b: db.join("log") }
}

fn run(inputs: &[&Path]) -> Report {
    let opts = VerifyOptions { inputs: inputs.iter().map(|p| p.to_path_buf()).collect(), jobs: 2, ..Default::default() };
    audit::verify(&opts).expect("verify runs")
}

fn kinds(r: &Report) -> Vec<FindingKind> {
    r.findings.iter().map(|f| f.kind).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pristine_logs_verify_with_every_signature_rebuilt_and_counted() {
    let logs = two_signers(false).await;
    let r = run(&[&logs.a, &logs.b]);
    assert!(r.ok, "{:#?}", r.findings);
    assert_eq!(r.logs.len(), 2);
    let s = &r.summary;
    for (what, n) in [("babe/babe_seal", 2), ("gran/grandpa_vote", 4), ("imon/heartbeat", 1), ("beef/beefy_vote", 1), ("babe/vrf", 1)] {
        assert_eq!(s.signatures.get(what), Some(&n), "{what}: {:?}", s.signatures);
    }
    assert_eq!(s.decisions.get("refused"), Some(&1));
    assert_eq!(s.refusals.get("conflict"), Some(&1));
    assert_eq!(s.clients.get("node-1"), Some(&9));
    assert!(r.logs.iter().all(|l| l.last_checkpoint_seq.is_some() && l.audit_keys.len() == 1));
}

/// A log to tamper with: its lines, and a way to write them back and verify.
fn lines(log_dir: &Path) -> Vec<String> {
    std::fs::read_to_string(log_dir.join("signing.log")).expect("read").lines().map(str::to_owned).collect()
}

fn seq(line: &str) -> u64 {
    serde_json::from_str::<serde_json::Value>(line).expect("json")["seq"].as_u64().expect("seq")
}

/// Index of the `n`-th record line (not a checkpoint).
fn record_line(lines: &[String], n: usize) -> usize {
    lines.iter().enumerate().filter(|(_, l)| !l.contains("\"checkpoint\"")).nth(n).expect("record").0
}

type Tamper = fn(&mut Vec<String>, &[String]);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_tampering_is_detected_and_named() {
    let logs = two_signers(false).await;
    let pristine = lines(&logs.a);
    let other = lines(&logs.b);
    let r3 = record_line(&pristine, 3);
    let cases: Vec<(&str, Tamper, FindingKind, u64)> = vec![
        (
            "one byte flipped (JSON stays valid)",
            |l, _| {
                let i = record_line(l, 3);
                l[i] = l[i].replacen("node-1", "node-7", 1);
            },
            FindingKind::BrokenLink,
            seq(&pristine[r3 + 1]),
        ),
        (
            "a signature altered",
            |l, _| {
                let i = record_line(l, 3);
                let at = l[i].find("\"signature\":\"").expect("signature") + 13;
                let flipped = if &l[i][at..at + 1] == "0" { "1" } else { "0" };
                l[i].replace_range(at..at + 1, flipped);
            },
            FindingKind::BadSignature,
            seq(&pristine[r3]),
        ),
        (
            "one byte flipped (JSON broken)",
            |l, _| {
                let i = record_line(l, 3);
                l[i] = l[i].replacen('{', "[", 1);
            },
            FindingKind::BadLine,
            seq(&pristine[r3 + 1]),
        ),
        (
            "a record deleted",
            |l, _| {
                let i = record_line(l, 3);
                l.remove(i);
            },
            FindingKind::BrokenLink,
            seq(&pristine[r3 + 1]),
        ),
        (
            "two records reordered",
            |l, _| {
                let i = record_line(l, 3);
                l.swap(i, i + 1);
            },
            FindingKind::BrokenLink,
            seq(&pristine[r3 + 1]),
        ),
        (
            "a record spliced in from another signer",
            |l, o| {
                let i = record_line(l, 3);
                l.insert(i + 1, o[record_line(o, 0)].clone());
            },
            FindingKind::ForeignSigner,
            2,
        ),
        (
            "the tail cut at a line boundary",
            |l, _| {
                l.truncate(l.len() - 2);
            },
            FindingKind::UnattestedTail,
            seq(&pristine[pristine.len() - 3]),
        ),
        (
            "a record rewritten and the chain re-hashed without the audit key",
            |l, _| {
                let i = record_line(l, 3);
                l[i] = l[i].replacen("node-1", "node-7", 1);
                for j in i + 1..l.len() {
                    let mut v: serde_json::Value = serde_json::from_str(&l[j]).expect("json");
                    v["prev"] = hex::encode(sp_crypto_hashing::blake2_256(l[j - 1].as_bytes())).into();
                    l[j] = serde_json::to_string(&v).expect("json");
                }
            },
            FindingKind::BadCheckpoint,
            0,
        ),
    ];
    for (name, tamper, expected, at_seq) in cases {
        let mut l = pristine.clone();
        tamper(&mut l, &other);
        std::fs::write(logs.a.join("signing.log"), l.join("\n") + "\n").expect("write");
        let r = run(&[&logs.a]);
        assert!(!r.ok, "{name}: not detected");
        let hit = r.findings.iter().find(|f| f.kind == expected);
        let hit = hit.unwrap_or_else(|| panic!("{name}: expected {expected:?}, got {:#?}", r.findings));
        if at_seq > 0 {
            assert!(
                r.findings.iter().any(|f| f.kind == expected && f.seq == Some(at_seq)),
                "{name}: {expected:?} should name seq {at_seq}: {:#?}",
                r.findings
            );
        }
        assert!(
            hit.file.ends_with("signing.log") && (hit.line > 0 || expected == FindingKind::UnattestedTail),
            "{name}: names the place: {hit:?}"
        );
    }
    // A cut inside the last line.
    let mut text = pristine.join("\n");
    text.truncate(text.len() - 10);
    std::fs::write(logs.a.join("signing.log"), text).expect("write");
    assert!(kinds(&run(&[&logs.a])).contains(&FindingKind::TruncatedLine));
    // The audit key beside the log replaced: every checkpoint is now untrusted.
    std::fs::write(logs.a.join("signing.log"), pristine.join("\n") + "\n").expect("write");
    assert!(run(&[&logs.a]).ok);
    std::fs::write(logs.a.join("signing.log.audit-pub"), hex::encode([7u8; 32])).expect("write");
    assert!(kinds(&run(&[&logs.a])).contains(&FindingKind::UntrustedAuditKey));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicting_grandpa_votes_and_babe_seals_of_two_signers_are_equivocations_with_valid_proofs() {
    let logs = two_signers(true).await;
    let r = run(&[&logs.a, &logs.b]);
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
    assert!(!r.ok);
    let kinds: Vec<&str> = r.equivocations.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds.len(), 2, "{kinds:?}");
    let grandpa = r.equivocations.iter().find(|e| e.kind == "grandpa-prevote").expect("grandpa equivocation");
    assert_eq!((grandpa.first.signer.as_str(), grandpa.second.signer.as_str()), ("signer-a", "signer-b"));
    let proof = grandpa.proof.as_ref().expect("proof");
    assert!(proof.valid);
    let bytes = hex::decode(proof.scale.trim_start_matches("0x")).expect("hex");
    let decoded = sp_consensus_grandpa::EquivocationProof::<sp_core::H256, u32>::decode(&mut &bytes[..]).expect("SCALE proof");
    assert_eq!((decoded.set_id(), decoded.round()), (1, 2));
    assert!(sp_consensus_grandpa::check_equivocation_proof(decoded), "the runtime's checker accepts it");

    let babe = r.equivocations.iter().find(|e| e.kind == "babe-seal").expect("babe equivocation");
    let bytes = hex::decode(babe.proof.as_ref().expect("proof").scale.trim_start_matches("0x")).expect("hex");
    type H = sp_runtime::generic::Header<u32, sp_runtime::traits::BlakeTwo256>;
    let decoded = sp_consensus_babe::EquivocationProof::<H>::decode(&mut &bytes[..]).expect("SCALE proof");
    assert!(sp_consensus_babe::check_equivocation_proof(decoded));

    // The CLI: exit 1 and the same equivocations in --json.
    let out = Command::new(env!("CARGO_BIN_EXE_exclave"))
        .args(["audit", "verify", "--json", "-q"])
        .arg(&logs.a)
        .arg(&logs.b)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json report");
    assert_eq!(json["equivocations"].as_array().map(Vec::len), Some(2));
    // Each log alone is clean.
    let out = Command::new(env!("CARGO_BIN_EXE_exclave")).args(["audit", "verify", "-q"]).arg(&logs.a).output().expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_filters_by_key_duty_range_client_and_outcome() {
    let logs = two_signers(false).await;
    let count = |f: Filter| audit::show::show(&[logs.a.clone(), logs.b.clone()], &f, true, &mut Vec::new()).expect("show");
    assert_eq!(count(Filter::default()), 10);
    assert_eq!(count(Filter { duty: Some("grandpa_vote".into()), ..Default::default() }), 5);
    assert_eq!(count(Filter { duty: Some("grandpa_vote".into()), coordinate: Some((2, 3)), ..Default::default() }), 2);
    assert_eq!(count(Filter { set_id: Some(1), ..Default::default() }), 5);
    assert_eq!(count(Filter { outcome: Some("refused".into()), ..Default::default() }), 1);
    assert_eq!(count(Filter { client: Some("node-2".into()), ..Default::default() }), 1);
    assert_eq!(count(Filter { public: Some(format!("0x{}", hex::encode(public(KeyType::BEEFY)))), ..Default::default() }), 1);
    assert_eq!(count(Filter { time_ms: Some((0, 1)), ..Default::default() }), 0);
    assert!(count(Filter { checkpoints: true, ..Default::default() }) > 10);
    let out = Command::new(env!("CARGO_BIN_EXE_exclave"))
        .args(["audit", "show", "--round", "1..2", "--outcome", "signed"])
        .arg(&logs.a)
        .output()
        .expect("run");
    assert!(out.status.success());
    let table = String::from_utf8_lossy(&out.stdout);
    assert_eq!(table.lines().count(), 3, "header + 2 rows:\n{table}");
    assert!(table.contains("grandpa Prevote set 1 round 2"), "{table}");
}

/// `scripts/signing_log_checks.py ARGS` fed the records of `logs` by `exclave audit show --json`,
/// as the e2e scripts run it.
fn log_checks(logs: &[&Path], args: &[&str]) -> std::process::Output {
    let show = common::exclave().args(["audit", "show", "--json"]).args(logs).output().expect("audit show");
    assert!(show.status.success(), "{show:?}");
    let mut check = Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/signing_log_checks.py"))
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    std::io::Write::write_all(&mut check.stdin.take().expect("stdin"), &show.stdout).expect("records");
    check.wait_with_output().expect("checks")
}

/// The e2e scripts' signing-log checks (`scripts/signing_log_checks.py`, fed by
/// `exclave audit show --json`) on real logs with checkpoints: they pass on two signers that
/// shared the work, and fail, naming the checks, on the split brain's conflicting signatures.
/// The e2e runs too seldom to notice a change of the log format; this runs in every CI.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_e2e_log_checks_run_on_a_real_signing_log() {
    for (conflicting, want_ok, needle) in [(false, true, "PASS  nothing signed twice"), (true, false, "FAIL  nothing signed twice")] {
        let logs = two_signers(conflicting).await;
        let out = log_checks(&[&logs.a, &logs.b], &[]);
        let said = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.success(), want_ok, "conflicting={conflicting}: {said}");
        assert!(said.contains(needle), "conflicting={conflicting}: {said}");
    }
}

/// The e2e's conflicting-commitment check (`signing_log_checks.py --conflicting-beefy`: a BEEFY
/// vote's (set id, block) again, with another commitment and its keccak) builds a request the
/// signer parses and refuses as a conflict, not as a malformed or mismatched request; the e2e
/// sends the same request to the signer on the chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_e2e_conflicting_beefy_request_is_refused_as_a_conflict() {
    let dir = tempfile::tempdir().expect("tempdir");
    let e = engine(&dir.path().join("a"), "signer-a");
    sign_everything(&e, "node-1").await;
    let out = log_checks(&[&dir.path().join("a/log")], &["--conflicting-beefy"]);
    assert!(out.status.success(), "{out:?}");
    let call: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a JSON-RPC call");
    assert_eq!(call["method"], "exclave_sign");
    let req: SignRequest = serde_json::from_value(call["params"][0].clone()).expect("a sign request");
    let err = e.sign("node-1", req).await.expect_err("a second commitment for a voted block is refused");
    assert_eq!(err.kind(), exclave_protocol::ErrorKind::RefusedConflict, "{err}");
}
