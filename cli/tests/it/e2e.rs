//! End to end over real mutual TLS on loopback: the `exclave` binary in dev mode, driven by
//! the node-side `RemoteKeystore`. Every duty is signed and verifies; a second, different
//! message for a duty is refused with the conflict code; the identical request gets the
//! identical signature; kill -9 and restart keep every claim.

use crate::common::*;
use exclave_protocol::{Bytes, ErrorKind, ExclaveApiClient, ExclaveError, SignContext, SignRequest, WireCrypto, WireKeyType};
use sp_core::{
    crypto::{KeyTypeId, VrfPublic},
    ecdsa, ed25519, sr25519, Pair,
};
use sp_keystore::Keystore;

const BABE: KeyTypeId = KeyTypeId(*b"babe");
const GRAN: KeyTypeId = KeyTypeId(*b"gran");
const IMON: KeyTypeId = KeyTypeId(*b"imon");
const BEEF: KeyTypeId = KeyTypeId(*b"beef");

fn alice_sr() -> sr25519::Public {
    sr25519::Pair::from_string("//Alice", None).expect("dev").public()
}
fn alice_ed() -> ed25519::Public {
    ed25519::Pair::from_string("//Alice", None).expect("dev").public()
}
fn alice_ecdsa() -> ecdsa::Public {
    ecdsa::Pair::from_string("//Alice", None).expect("dev").public()
}

/// What one round of duties produced, to compare across a restart.
struct Signed {
    seal: sr25519::Signature,
    prevote: ed25519::Signature,
    precommit: ed25519::Signature,
    heartbeat: sr25519::Signature,
    beefy: ecdsa::Signature,
}

fn sign_every_duty(ks: &exclave_keystore_remote::RemoteKeystore, slot: u64) -> Signed {
    let header = babe_header(slot, 7, 1);
    ks.note_seal_header(codec::Encode::encode(&header));
    let seal = ks.sr25519_sign(BABE, &alice_sr(), &pre_hash(&header)).expect("seal").expect("signed");
    assert!(sr25519::Pair::verify(&seal, pre_hash(&header), &alice_sr()), "seal must verify");

    let prevote_msg = grandpa_payload(false, 0xaa, 7, 5, 2);
    let prevote = ks.ed25519_sign(GRAN, &alice_ed(), &prevote_msg).expect("prevote").expect("signed");
    assert!(ed25519::Pair::verify(&prevote, &prevote_msg, &alice_ed()));
    let precommit_msg = grandpa_payload(true, 0xaa, 7, 5, 2);
    let precommit = ks.ed25519_sign(GRAN, &alice_ed(), &precommit_msg).expect("precommit").expect("signed");
    assert!(ed25519::Pair::verify(&precommit, &precommit_msg, &alice_ed()));

    let hb = heartbeat(7, 3);
    let heartbeat = ks.sr25519_sign(IMON, &alice_sr(), &hb).expect("heartbeat").expect("signed");
    assert!(sr25519::Pair::verify(&heartbeat, &hb, &alice_sr()));

    let c = commitment(7, 1, 0x11);
    ks.note_beefy_commitment(c.clone());
    let hash = sp_crypto_hashing::keccak_256(&c);
    let beefy = ks.ecdsa_sign_prehashed(BEEF, &alice_ecdsa(), &hash).expect("beefy").expect("signed");
    assert!(ecdsa::Pair::verify_prehashed(&beefy, &hash, &alice_ecdsa()));
    Signed { seal, prevote, precommit, heartbeat, beefy }
}

/// Second, different messages for the same duties: every one refused.
fn conflicting_duties_refused(ks: &exclave_keystore_remote::RemoteKeystore, slot: u64) {
    let other = babe_header(slot, 7, 2);
    ks.note_seal_header(codec::Encode::encode(&other));
    assert_eq!(ks.sr25519_sign(BABE, &alice_sr(), &pre_hash(&other)).expect("refusal is Ok(None)"), None);
    let err = ks.ed25519_sign(GRAN, &alice_ed(), &grandpa_payload(false, 0xbb, 7, 5, 2)).expect_err("conflicting prevote");
    assert!(matches!(err, sp_keystore::Error::ValidationError(ref m) if m.contains("already claimed")), "{err:?}");
    assert_eq!(ks.sr25519_sign(IMON, &alice_sr(), &heartbeat(8, 3)).expect("refusal"), None);
    let c = commitment(7, 1, 0x22);
    ks.note_beefy_commitment(c.clone());
    assert_eq!(ks.ecdsa_sign_prehashed(BEEF, &alice_ecdsa(), &sp_crypto_hashing::keccak_256(&c)).expect("refusal"), None);
}

/// The conflict error over the wire: code 1001, naming the existing claim.
fn conflict_code_over_the_wire(signer: &Signer) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
    let req = SignRequest {
        chain: Bytes(CHAIN.to_vec()),
        key_type: WireKeyType(*b"gran"),
        crypto: WireCrypto::Ed25519,
        public: Bytes(alice_ed().0.to_vec()),
        message: Bytes(grandpa_payload(false, 0xcc, 7, 5, 2)),
        context: SignContext::None,
        prehashed: false,
        store_id: None,
    };
    let err = rt.block_on(async { signer.client().sign(req).await.expect_err("conflict") });
    let jsonrpsee::core::ClientError::Call(obj) = err else { panic!("expected an error object, got {err:?}") };
    let e = ExclaveError::from_object(&obj).expect("exclave error");
    assert_eq!(e.kind, ErrorKind::RefusedConflict);
    assert_eq!(obj.code(), 1001);
    let data = e.data.expect("conflict data");
    assert_eq!(data["reason"], "conflict");
    assert!(data["claimer"].as_str().expect("claimer").starts_with("dev-signer/dev-node"), "{data}");
}

#[test]
fn every_duty_signs_conflicts_refuse_and_claims_survive_kill_9() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut signer = Signer::start(dir.path(), 0);
    let ks = signer.keystore();
    let slot = current_slot();

    let first = sign_every_duty(&ks, slot);
    // Identical requests again: identical signatures (sr25519 is randomised, so equality proves
    // the stored signature came back rather than a fresh one).
    let again = sign_every_duty(&ks, slot);
    assert_eq!(first.seal, again.seal);
    assert_eq!(first.heartbeat, again.heartbeat);
    assert_eq!((first.prevote, first.precommit, first.beefy), (again.prevote, again.precommit, again.beefy));
    conflicting_duties_refused(&ks, slot);
    conflict_code_over_the_wire(&signer);

    // kill -9 between requests, restart on the same data directory and port.
    let port = signer.port();
    signer.kill9();
    drop(ks);
    let signer = Signer::start(dir.path(), port);
    let ks = signer.keystore();
    let after = sign_every_duty(&ks, slot);
    assert_eq!(first.seal, after.seal, "the claim (and its stored signature) survived kill -9");
    assert_eq!(first.heartbeat, after.heartbeat);
    assert_eq!(first.prevote, after.prevote);
    conflicting_duties_refused(&ks, slot);

    // The log holds every decision, hash-chained across the restart.
    let log = signer.log();
    assert!(log.iter().filter(|r| r["decision"] == "signed").count() >= 5);
    assert!(log.iter().filter(|r| r["decision"] == "same-data").count() >= 10);
    assert!(log.iter().filter(|r| r["decision"] == "refused").count() >= 9);
    for pair in log.windows(2) {
        assert_eq!(pair[1]["seq"].as_u64(), pair[0]["seq"].as_u64().map(|s| s + 1), "sequence continues");
    }
    let raw = std::fs::read_to_string(dir.path().join("signing.log")).expect("log");
    let lines: Vec<&str> = raw.lines().collect();
    for w in lines.windows(2) {
        let next: serde_json::Value = serde_json::from_str(w[1]).expect("json");
        assert_eq!(next["prev"], hex::encode(sp_crypto_hashing::blake2_256(w[0].as_bytes())), "hash chain");
    }
    // `exclave audit verify` re-verifies every signature the node received (seals from real
    // headers, votes, heartbeat, BEEFY, VRF) and the checkpoints across the kill -9. The signer
    // is still running, so its last records may not be checkpointed yet (--live).
    let log = dir.path().join("signing.log");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_exclave"))
        .args(["audit", "verify", "--live", "--json", "-q"])
        .arg(&log)
        .output()
        .expect("audit");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json report");
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    assert!(report["summary"]["signatures"]["babe/babe_seal"].as_u64() >= Some(2), "{report:#}");
    assert!(report["summary"]["signatures"]["beef/beefy_vote"].as_u64() >= Some(1), "{report:#}");
    assert!(report["logs"][0]["checkpoints"].as_u64() >= Some(2), "a start checkpoint per run: {report:#}");
}

#[test]
fn babe_vrf_is_rebuilt_by_the_signer_and_verifies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let signer = Signer::start(dir.path(), 0);
    let ks = signer.keystore();
    let ctx = exclave_policies::VrfContext { randomness: [5; 32], slot: current_slot(), epoch: 3 };
    let data = sp_consensus_babe::make_vrf_sign_data(&ctx.randomness, ctx.slot.into(), ctx.epoch);
    // Without the context the node cannot say what the transcript is: no claim, no request.
    assert_eq!(ks.sr25519_vrf_sign(BABE, &alice_sr(), &data).expect("no context"), None);
    ks.note_vrf_candidates([ctx]);
    let sig = ks.sr25519_vrf_sign(BABE, &alice_sr(), &data).expect("vrf").expect("signed");
    assert!(alice_sr().vrf_verify(&data, &sig));
    let pre = ks.sr25519_vrf_pre_output(BABE, &alice_sr(), data.as_ref()).expect("pre").expect("some");
    assert_eq!(pre, sig.pre_output);
    // A slot far from the wall clock is refused by the signer.
    let far = exclave_policies::VrfContext { slot: ctx.slot + 1000, ..ctx };
    ks.note_vrf_candidates([far]);
    let far_data = sp_consensus_babe::make_vrf_sign_data(&far.randomness, far.slot.into(), far.epoch);
    assert_eq!(ks.sr25519_vrf_sign(BABE, &alice_sr(), &far_data).expect("refused"), None);
}

#[test]
fn an_audi_key_that_is_also_a_babe_key_signs_nothing_unclaimed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let signer = Signer::start(dir.path(), 0);
    let ks = signer.keystore();
    let audi = KeyTypeId(*b"audi");
    // The dev authority-discovery key is its own key, and signs records.
    let own = ks.sr25519_public_keys(audi);
    assert_eq!(own.len(), 1);
    assert_ne!(own[0], alice_sr(), "dev audi key must not be the babe key");
    assert!(ks.sr25519_sign(audi, &own[0], b"record").expect("audi").is_some());
    // Import the babe secret as an audi key: it would sign a seal hash with no claim.
    ks.insert(audi, "//Alice", &alice_sr().0).expect("insert");
    let header = babe_header(current_slot(), 3, 9);
    assert_eq!(ks.sr25519_sign(audi, &alice_sr(), &pre_hash(&header)).expect("refused"), None);
    let refusal = signer.log().into_iter().rev().find(|r| r["keyType"] == "audi").expect("logged");
    assert!(refusal["reason"].as_str().expect("reason").contains("also held as a protected"), "{refusal}");
    // Its own proof of possession still signs.
    let pop = sp_core::proof_of_possession::statement_of_ownership(&[1; 32]);
    assert!(ks.sr25519_sign(BABE, &alice_sr(), &pop).expect("pop").is_some());
}
