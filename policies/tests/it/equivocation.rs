//! The safety property with real crypto: a simulated signer (`classify` + `verdict` + a HashMap
//! claim store, keys in `sp_keystore::testing::MemoryKeystore`) is fed many conflicting and
//! repeated BABE seal and GRANDPA vote requests in a seeded random order; every pair of
//! signatures it releases for one duty is handed to the runtime's own equivocation checkers
//! (`sp_consensus_babe::check_equivocation_proof`, `sp_consensus_grandpa::check_equivocation_proof`)
//! and none may be a valid proof. Controls show the checkers do fire on what the policy prevents:
//! two headers sealed for one slot, one header sealed twice (sr25519 is randomised), two votes in
//! one round, and the same request stream signed without the policy.

use crate::common::{babe_item, header_with, Header, OwnedRequest, XorShift, CHAIN};
use codec::{Decode, Encode};
use exclave_policies::{classify, payload_hash, verdict, ClaimKey, ClaimRecord, Classification, Crypto, KeyType, Verdict};
use sp_consensus_babe::{
    digests::{CompatibleDigestItem, PreDigest, PrimaryPreDigest, SecondaryPlainPreDigest, SecondaryVRFPreDigest},
    make_vrf_sign_data, Slot,
};
use sp_consensus_grandpa::localized_payload;
use sp_core::{crypto::KeyTypeId, ed25519, sr25519, H256};
use sp_keystore::{testing::MemoryKeystore, Keystore};
use sp_runtime::generic::DigestItem;
use std::collections::HashMap;

const BABE: KeyTypeId = KeyTypeId(KeyType::BABE.0);
const GRAN: KeyTypeId = KeyTypeId(KeyType::GRANDPA.0);

/// Sign with the keystore, whatever the policy says (the raw key, as a node would without Exclave).
fn raw_sign(keystore: &MemoryKeystore, request: &OwnedRequest, public: &[u8]) -> Vec<u8> {
    match request.crypto {
        Crypto::Sr25519 => {
            let public = sr25519::Public::try_from(public).expect("sr25519 public");
            let sig = keystore.sr25519_sign(KeyTypeId(request.key_type.0), &public, &request.message);
            sig.expect("signs").expect("key present").encode()
        }
        Crypto::Ed25519 => {
            let public = ed25519::Public::try_from(public).expect("ed25519 public");
            let sig = keystore.ed25519_sign(KeyTypeId(request.key_type.0), &public, &request.message);
            sig.expect("signs").expect("key present").encode()
        }
        Crypto::Ecdsa => unreachable!("no ecdsa duties here"),
    }
}

/// A signer as Exclave runs one: classify, read the claim, decide, sign, insert-if-absent, and
/// release only what the verdict on the stored claim allows.
struct Signer {
    keystore: MemoryKeystore,
    store: HashMap<Vec<u8>, ClaimRecord>,
    refusals: usize,
}

impl Signer {
    fn new(keystore: MemoryKeystore) -> Self {
        Signer { keystore, store: HashMap::new(), refusals: 0 }
    }

    fn sign(&mut self, request: &OwnedRequest, public: &[u8]) -> Option<Vec<u8>> {
        let Ok(Classification::Claimed(duty)) = classify(&request.req()) else {
            panic!("every request here is a claimed duty: {request:?}");
        };
        let key = ClaimKey { chain: CHAIN, key_type: request.key_type, public: public.to_vec(), duty }.to_bytes();
        let hash = payload_hash(&request.message);
        let released = match verdict(self.store.get(&key), &hash, duty.position(), None) {
            Verdict::Sign => {
                let signature = raw_sign(&self.keystore, request, public);
                let fresh = ClaimRecord { claimer: "signer-a/test".into(), payload_hash: hash, signature, claimed_at_ms: 0 };
                let winner = self.store.entry(key).or_insert(fresh);
                match verdict(Some(winner), &hash, duty.position(), None) {
                    Verdict::SameData { signature } => Some(signature),
                    _ => None,
                }
            }
            Verdict::SameData { signature } => Some(signature),
            Verdict::Refuse(_) => None,
        };
        if released.is_none() {
            self.refusals += 1;
        }
        released
    }
}

// ---------------------------------------------------------------------------------------------
// BABE

const SLOTS: u64 = 50;
const FIRST_SLOT: u64 = 300_000_000;

/// Three different pre-seal headers for `slot`, all by authority 0, one per pre-digest kind, with
/// real VRF signatures from the keystore.
fn babe_headers(keystore: &MemoryKeystore, public: &sr25519::Public, slot: u64) -> Vec<Header> {
    let vrf = || {
        let data = make_vrf_sign_data(&[3u8; 32], Slot::from(slot), 1);
        keystore.sr25519_vrf_sign(BABE, public, &data).expect("vrf").expect("key present")
    };
    let slot = Slot::from(slot);
    let pres = [
        PreDigest::SecondaryPlain(SecondaryPlainPreDigest { authority_index: 0, slot }),
        PreDigest::Primary(PrimaryPreDigest { authority_index: 0, slot, vrf_signature: vrf() }),
        PreDigest::SecondaryVRF(SecondaryVRFPreDigest { authority_index: 0, slot, vrf_signature: vrf() }),
    ];
    pres.iter().enumerate().map(|(i, pre)| header_with(1000 + *slot as u32, i as u8, vec![babe_item(pre)])).collect()
}

fn sealed(pre_header: &Header, signature: &[u8]) -> Header {
    let signature = sp_consensus_babe::AuthoritySignature::decode(&mut &signature[..]).expect("64-byte signature");
    let mut header = pre_header.clone();
    header.digest.push(<DigestItem as CompatibleDigestItem>::babe_seal(signature));
    header
}

fn babe_equivocates(public: &sr25519::Public, slot: u64, first: &Header, second: &Header) -> bool {
    sp_consensus_babe::check_equivocation_proof(sp_consensus_babe::EquivocationProof {
        offender: sp_consensus_babe::AuthorityId::from(*public),
        slot: Slot::from(slot),
        first_header: first.clone(),
        second_header: second.clone(),
    })
}

/// The request stream: every header of every slot one to three times, shuffled.
fn babe_stream(keystore: &MemoryKeystore, public: &sr25519::Public, rng: &mut XorShift) -> Vec<(u64, Header)> {
    let mut stream = Vec::new();
    for slot in FIRST_SLOT..FIRST_SLOT + SLOTS {
        for header in babe_headers(keystore, public, slot) {
            for _ in 0..=rng.below(3) {
                stream.push((slot, header.clone()));
            }
        }
    }
    rng.shuffle(&mut stream);
    stream
}

/// Every pair of sealed headers released for one slot that the runtime accepts as an equivocation.
fn babe_proofs(public: &sr25519::Public, released: &[(u64, Header)]) -> usize {
    let mut valid = 0;
    for (i, (slot, first)) in released.iter().enumerate() {
        for (other_slot, second) in &released[i + 1..] {
            if slot == other_slot && babe_equivocates(public, *slot, first, second) {
                valid += 1;
            }
        }
    }
    valid
}

#[test]
fn babe_signer_never_releases_an_equivocation() {
    let keystore = MemoryKeystore::new();
    let public = keystore.sr25519_generate_new(BABE, None).expect("key");
    let mut rng = XorShift::new(0xbabe_5eed);
    let stream = babe_stream(&keystore, &public, &mut rng);
    let mut signer = Signer::new(keystore);

    let mut released: Vec<(u64, Header)> = Vec::new();
    for (slot, header) in &stream {
        if let Some(signature) = signer.sign(&OwnedRequest::seal(header), &public.0) {
            let sealed = sealed(header, &signature);
            // Each released seal is genuinely valid: the refusals below are not vacuous.
            let seal = sealed.digest.logs.last().and_then(|l| l.as_babe_seal()).expect("seal");
            assert!(<sr25519::Pair as sp_core::Pair>::verify(&sr25519::Signature::from(seal), header.hash().as_bytes(), &public));
            released.push((*slot, sealed));
        }
    }

    // Liveness: every slot got its seal, repeats were served, conflicts were refused.
    for slot in FIRST_SLOT..FIRST_SLOT + SLOTS {
        assert!(released.iter().any(|(s, _)| *s == slot), "slot {slot} never sealed");
    }
    assert!(released.len() > SLOTS as usize, "no repeat was served");
    assert!(signer.refusals > 0, "no conflict was refused");
    assert_eq!(released.len() + signer.refusals, stream.len());

    assert_eq!(babe_proofs(&public, &released), 0, "the signer released a BABE equivocation");
}

#[test]
fn babe_control_checker_detects_equivocations() {
    let keystore = MemoryKeystore::new();
    let public = keystore.sr25519_generate_new(BABE, None).expect("key");
    let slot = FIRST_SLOT;
    let headers = babe_headers(&keystore, &public, slot);
    let sign = |h: &Header| raw_sign(&keystore, &OwnedRequest::seal(h), &public.0);

    // Two different headers sealed for one slot, bypassing the policy.
    let a = sealed(&headers[0], &sign(&headers[0]));
    let b = sealed(&headers[1], &sign(&headers[1]));
    assert!(babe_equivocates(&public, slot, &a, &b), "two headers for one slot must be an equivocation");
    // One header sealed twice: sr25519 is randomised, so this too is an equivocation. This is
    // why a retry must get the stored signature back.
    let a2 = sealed(&headers[0], &sign(&headers[0]));
    assert_ne!(a, a2, "sr25519 signatures are randomised");
    assert!(babe_equivocates(&public, slot, &a, &a2), "one header sealed twice must be an equivocation");
    // And the checker's negative cases: the same sealed header, or two slots.
    assert!(!babe_equivocates(&public, slot, &a, &a));
    let other_slot = &babe_headers(&keystore, &public, slot + 1)[0];
    assert!(!babe_equivocates(&public, slot, &a, &sealed(other_slot, &sign(other_slot))));
}

#[test]
fn babe_control_same_stream_without_policy_equivocates() {
    let keystore = MemoryKeystore::new();
    let public = keystore.sr25519_generate_new(BABE, None).expect("key");
    let mut rng = XorShift::new(0xbabe_5eed);
    let stream = babe_stream(&keystore, &public, &mut rng);
    // Only the first ten slots: the pairwise check is quadratic and each proof verifies twice.
    let released: Vec<(u64, Header)> = stream
        .iter()
        .filter(|(slot, _)| *slot < FIRST_SLOT + 10)
        .map(|(slot, h)| (*slot, sealed(h, &raw_sign(&keystore, &OwnedRequest::seal(h), &public.0))))
        .collect();
    assert!(babe_proofs(&public, &released) > 0, "the unprotected stream must contain equivocations");
}

// ---------------------------------------------------------------------------------------------
// GRANDPA

type Message = finality_grandpa::Message<H256, u32>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Prevote,
    Precommit,
}

#[derive(Clone, Debug)]
struct Vote {
    set_id: u64,
    round: u64,
    stage: Stage,
    target: (H256, u32),
}

impl Vote {
    fn message(&self) -> Message {
        let (hash, number) = self.target;
        match self.stage {
            Stage::Prevote => Message::Prevote(finality_grandpa::Prevote::new(hash, number)),
            Stage::Precommit => Message::Precommit(finality_grandpa::Precommit::new(hash, number)),
        }
    }

    fn request(&self) -> OwnedRequest {
        OwnedRequest::plain(KeyType::GRANDPA, localized_payload(self.round, self.set_id, &self.message()))
    }

    fn same_duty(&self, other: &Vote) -> bool {
        (self.set_id, self.round, self.stage) == (other.set_id, other.round, other.stage)
    }
}

fn grandpa_equivocates(public: &ed25519::Public, first: &(Vote, Vec<u8>), second: &(Vote, Vec<u8>)) -> bool {
    use sp_consensus_grandpa::{AuthorityId, AuthoritySignature, Equivocation, EquivocationProof};
    let identity = AuthorityId::from(*public);
    let sig = |s: &[u8]| AuthoritySignature::decode(&mut &s[..]).expect("64-byte signature");
    let round_number = first.0.round;
    let equivocation = match first.0.stage {
        Stage::Prevote => {
            let prevote = |v: &Vote| finality_grandpa::Prevote::new(v.target.0, v.target.1);
            Equivocation::Prevote(finality_grandpa::Equivocation {
                round_number,
                identity,
                first: (prevote(&first.0), sig(&first.1)),
                second: (prevote(&second.0), sig(&second.1)),
            })
        }
        Stage::Precommit => {
            let precommit = |v: &Vote| finality_grandpa::Precommit::new(v.target.0, v.target.1);
            Equivocation::Precommit(finality_grandpa::Equivocation {
                round_number,
                identity,
                first: (precommit(&first.0), sig(&first.1)),
                second: (precommit(&second.0), sig(&second.1)),
            })
        }
    };
    sp_consensus_grandpa::check_equivocation_proof(EquivocationProof::new(first.0.set_id, equivocation))
}

/// Two authority sets, rounds 1..=25 in each (rounds restart with every set), prevote and
/// precommit, three targets per vote, each requested one to three times, shuffled.
fn grandpa_stream(rng: &mut XorShift) -> Vec<Vote> {
    let mut stream = Vec::new();
    for set_id in [0, 1] {
        for round in 1..=25 {
            for stage in [Stage::Prevote, Stage::Precommit] {
                for t in 0..3u8 {
                    let target = (H256::repeat_byte(t + 1), 100 * round as u32 + u32::from(t));
                    for _ in 0..=rng.below(3) {
                        stream.push(Vote { set_id, round, stage, target });
                    }
                }
            }
        }
    }
    rng.shuffle(&mut stream);
    stream
}

fn grandpa_proofs(public: &ed25519::Public, released: &[(Vote, Vec<u8>)]) -> usize {
    let mut valid = 0;
    for (i, first) in released.iter().enumerate() {
        for second in &released[i + 1..] {
            if first.0.same_duty(&second.0) && grandpa_equivocates(public, first, second) {
                valid += 1;
            }
        }
    }
    valid
}

#[test]
fn grandpa_signer_never_releases_an_equivocation() {
    let keystore = MemoryKeystore::new();
    let public = keystore.ed25519_generate_new(GRAN, None).expect("key");
    let mut rng = XorShift::new(0x6a4e_d5ee);
    let stream = grandpa_stream(&mut rng);
    let mut signer = Signer::new(keystore);

    let mut released: Vec<(Vote, Vec<u8>)> = Vec::new();
    for vote in &stream {
        if let Some(signature) = signer.sign(&vote.request(), &public.0) {
            let check = sp_consensus_grandpa::check_message_signature(
                &vote.message(),
                &sp_consensus_grandpa::AuthorityId::from(public),
                &sp_consensus_grandpa::AuthoritySignature::decode(&mut &signature[..]).expect("signature"),
                vote.round,
                vote.set_id,
            );
            assert!(check.is_valid(), "released vote signature must verify");
            released.push((vote.clone(), signature));
        }
    }

    // Liveness: every (set, round, stage) voted, in both sets (rounds restart per set).
    for set_id in [0, 1] {
        for round in 1..=25 {
            for stage in [Stage::Prevote, Stage::Precommit] {
                assert!(
                    released.iter().any(|(v, _)| (v.set_id, v.round, v.stage) == (set_id, round, stage)),
                    "set {set_id} round {round} {stage:?} never signed"
                );
            }
        }
    }
    assert!(released.len() > 200, "no repeat was served");
    assert!(signer.refusals > 0, "no conflict was refused");

    assert_eq!(grandpa_proofs(&public, &released), 0, "the signer released a GRANDPA equivocation");
}

#[test]
fn grandpa_control_checker_detects_equivocations() {
    let keystore = MemoryKeystore::new();
    let public = keystore.ed25519_generate_new(GRAN, None).expect("key");
    let sign = |v: &Vote| (v.clone(), raw_sign(&keystore, &v.request(), &public.0));
    for stage in [Stage::Prevote, Stage::Precommit] {
        let a = Vote { set_id: 3, round: 7, stage, target: (H256::repeat_byte(1), 70) };
        let b = Vote { target: (H256::repeat_byte(2), 71), ..a.clone() };
        assert!(grandpa_equivocates(&public, &sign(&a), &sign(&b)), "{stage:?}: two targets in one round");
        // Negative cases: the same vote twice (ed25519 is deterministic), or another set's vote.
        assert!(!grandpa_equivocates(&public, &sign(&a), &sign(&a)));
        let c = Vote { set_id: 4, ..b.clone() };
        assert!(!grandpa_equivocates(&public, &sign(&a), &sign(&c)));
    }
}

#[test]
fn grandpa_control_same_stream_without_policy_equivocates() {
    let keystore = MemoryKeystore::new();
    let public = keystore.ed25519_generate_new(GRAN, None).expect("key");
    let mut rng = XorShift::new(0x6a4e_d5ee);
    let released: Vec<(Vote, Vec<u8>)> = grandpa_stream(&mut rng)
        .into_iter()
        .filter(|v| v.round <= 5)
        .map(|v| {
            let sig = raw_sign(&keystore, &v.request(), &public.0);
            (v, sig)
        })
        .collect();
    assert!(grandpa_proofs(&public, &released) > 0, "the unprotected stream must contain equivocations");
}
