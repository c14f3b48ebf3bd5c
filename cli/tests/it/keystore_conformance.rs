//! The same keystore scenario against `sp_keystore::testing::MemoryKeystore` and against
//! `RemoteKeystore` → `exclave`: keys listed, generated keys visible, `has_keys`, unknown keys,
//! and signatures (deterministic schemes must be byte-identical; randomised ones must verify).

use crate::common::*;
use sp_core::{crypto::KeyTypeId, ecdsa, ed25519, sr25519, Pair};
use sp_keystore::{testing::MemoryKeystore, Keystore};

const BABE: KeyTypeId = KeyTypeId(*b"babe");
const GRAN: KeyTypeId = KeyTypeId(*b"gran");
const IMON: KeyTypeId = KeyTypeId(*b"imon");
const BEEF: KeyTypeId = KeyTypeId(*b"beef");
const AUDI: KeyTypeId = KeyTypeId(*b"audi");

#[derive(Debug, PartialEq)]
struct Observed {
    babe_keys: Vec<sr25519::Public>,
    gran_keys: Vec<ed25519::Public>,
    beef_keys: Vec<ecdsa::Public>,
    raw_gran_keys: Vec<Vec<u8>>,
    audi_count_before: usize,
    audi_count_after: usize,
    generated_audi_listed: bool,
    has_alice_babe: bool,
    has_bob_and_alice: bool,
    has_unknown: bool,
    has_charlie_after_insert: bool,
    vote_signature: Option<ed25519::Signature>,
    beefy_signature: Option<ecdsa::Signature>,
    heartbeat_verifies: bool,
    unknown_key_sign: Option<ed25519::Signature>,
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

/// Run the scenario; `note_commitment` hands a BEEFY commitment to a remote keystore.
fn scenario(ks: &dyn Keystore, note_commitment: &dyn Fn(Vec<u8>)) -> Observed {
    let bob_gran = ks.ed25519_generate_new(GRAN, Some("//Bob")).expect("gran");
    let bob_imon = ks.sr25519_generate_new(IMON, Some("//Bob")).expect("imon");
    let bob_beef = ks.ecdsa_generate_new(BEEF, Some("//Bob")).expect("beef");
    let bob_babe = ks.sr25519_generate_new(BABE, Some("//Bob")).expect("babe");
    let audi_count_before = ks.sr25519_public_keys(AUDI).len();
    let fresh = ks.sr25519_generate_new(AUDI, None).expect("random audi");
    let audi_keys = ks.sr25519_public_keys(AUDI);

    let alice_babe = sr25519::Pair::from_string("//Alice", None).expect("dev").public();
    let charlie = ed25519::Pair::from_string("//Charlie", None).expect("dev").public();
    ks.insert(GRAN, "//Charlie", &charlie.0).expect("insert");

    let vote = grandpa_payload(true, 0x77, 12, 3, 1);
    let c = commitment(12, 1, 0x33);
    note_commitment(c.clone());
    let hb = heartbeat(12, 4);
    let hb_sig = ks.sr25519_sign(IMON, &bob_imon, &hb).expect("heartbeat");
    Observed {
        babe_keys: sorted(ks.sr25519_public_keys(BABE)),
        gran_keys: sorted(ks.ed25519_public_keys(GRAN)),
        beef_keys: sorted(ks.ecdsa_public_keys(BEEF)),
        raw_gran_keys: sorted(ks.keys(GRAN).expect("keys")),
        audi_count_before,
        audi_count_after: audi_keys.len(),
        generated_audi_listed: audi_keys.contains(&fresh),
        has_alice_babe: ks.has_keys(&[(alice_babe.0.to_vec(), BABE)]),
        has_bob_and_alice: ks.has_keys(&[(alice_babe.0.to_vec(), BABE), (bob_babe.0.to_vec(), BABE)]),
        has_unknown: ks.has_keys(&[(alice_babe.0.to_vec(), BABE), (vec![9; 32], BABE)]),
        has_charlie_after_insert: ks.has_keys(&[(charlie.0.to_vec(), GRAN)]),
        vote_signature: ks.ed25519_sign(GRAN, &bob_gran, &vote).expect("vote"),
        beefy_signature: ks.ecdsa_sign_prehashed(BEEF, &bob_beef, &sp_crypto_hashing::keccak_256(&c)).expect("beefy"),
        heartbeat_verifies: hb_sig.is_some_and(|s| sr25519::Pair::verify(&s, &hb, &bob_imon)),
        unknown_key_sign: ks.ed25519_sign(GRAN, &ed25519::Public::from_raw([9; 32]), &vote).expect("unknown key is Ok(None)"),
    }
}

#[test]
fn remote_keystore_behaves_like_memory_keystore() {
    let memory = MemoryKeystore::new();
    for (kt, scheme) in [(BABE, 's'), (GRAN, 'e'), (IMON, 's'), (BEEF, 'k'), (AUDI, 's')] {
        match scheme {
            's' => drop(memory.sr25519_generate_new(kt, Some("//Alice")).expect("alice")),
            'e' => drop(memory.ed25519_generate_new(kt, Some("//Alice")).expect("alice")),
            _ => drop(memory.ecdsa_generate_new(kt, Some("//Alice")).expect("alice")),
        }
    }
    let expected = scenario(&memory, &|_| {});

    let dir = tempfile::tempdir().expect("tempdir");
    let signer = Signer::start(dir.path(), 0);
    let remote = signer.keystore();
    let observed = scenario(remote.as_ref(), &|c| remote.note_beefy_commitment(c));
    assert_eq!(observed, expected);
    assert!(observed.vote_signature.is_some() && observed.beefy_signature.is_some() && observed.heartbeat_verifies);
    assert_eq!(observed.audi_count_after, observed.audi_count_before + 1);

    // Generated keys were written to the signer's keystore directory as 0600 files.
    use std::os::unix::fs::PermissionsExt;
    let files: Vec<_> = std::fs::read_dir(dir.path().join("keystore")).expect("dir").map(|e| e.expect("entry")).collect();
    assert!(files.len() >= 10, "5 dev keys + 5 generated + inserted, got {}", files.len());
    for f in files {
        assert_eq!(f.metadata().expect("meta").permissions().mode() & 0o777, 0o600, "{:?}", f.path());
    }
}
