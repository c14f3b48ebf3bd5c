//! The node integration's BEEFY hook against the real dev signer: the commitments BEEFY will
//! build from the payloads its provider returns are noted, so a vote (`ecdsa_sign_prehashed`
//! of the commitment's keccak_256) carries its commitment and is signed and claimed per
//! (set id, block); a second commitment for a voted block is refused; a hash nobody noted is
//! never signed.

use crate::common::*;
use exclave_node_integration::{encoded_commitment, BeefyCommitmentNoter};
use parking_lot::Mutex;
use sp_consensus_beefy::{known_payloads::MMR_ROOT_ID, Payload, PayloadProvider};
use sp_core::{crypto::KeyTypeId, ecdsa, Pair};
use sp_keystore::Keystore;
use sp_runtime::traits::Header as _;
use std::sync::Arc;

type Header = sp_runtime::generic::Header<u32, sp_runtime::traits::BlakeTwo256>;
type Block = sp_runtime::generic::Block<Header, sp_runtime::OpaqueExtrinsic>;

const BEEF: KeyTypeId = KeyTypeId(*b"beef");
const SET_ID: u64 = 3;

/// An MMR-root payload provider whose root the test sets.
struct Mmr(Arc<Mutex<[u8; 32]>>);

impl PayloadProvider<Block> for Mmr {
    fn payload(&self, _: &Header) -> Option<Payload> {
        Some(Payload::from_single_entry(MMR_ROOT_ID, codec::Encode::encode(&*self.0.lock())))
    }
}

fn header(number: u32) -> Header {
    Header::new(number, Default::default(), Default::default(), Default::default(), Default::default())
}

#[test]
fn beefy_votes_carry_their_commitment_and_are_claimed_per_block() {
    let dir = tempfile::tempdir().expect("tempdir");
    let signer = Signer::start(dir.path(), 0);
    let ks = signer.keystore();
    let root = Arc::new(Mutex::new([1u8; 32]));
    let noter = BeefyCommitmentNoter::<Block, _>::new(Mmr(root.clone()), ks.clone(), Arc::new(|_: &Header| vec![SET_ID]));
    let alice = ecdsa::Pair::from_string("//Alice", None).expect("dev").public();

    // BEEFY asks the provider for block 20's payload, then signs the commitment's hash.
    let payload = noter.payload(&header(20)).expect("a payload");
    let hash = sp_crypto_hashing::keccak_256(&encoded_commitment(payload, 20u32, SET_ID));
    let sig = ks.ecdsa_sign_prehashed(BEEF, &alice, &hash).expect("sign").expect("the noted commitment is signed");
    assert!(ecdsa::Pair::verify_prehashed(&sig, &hash, &alice));
    assert_eq!(ks.ecdsa_sign_prehashed(BEEF, &alice, &hash).expect("again"), Some(sig), "the same vote again: the same signature");

    // Another payload for the same block and set: a second vote for a voted block is refused.
    *root.lock() = [2u8; 32];
    let other = noter.payload(&header(20)).expect("a payload");
    let other_hash = sp_crypto_hashing::keccak_256(&encoded_commitment(other, 20u32, SET_ID));
    assert_eq!(ks.ecdsa_sign_prehashed(BEEF, &alice, &other_hash).expect("refused, not an error"), None);

    // A hash nobody noted a commitment for is never signed.
    assert_eq!(ks.ecdsa_sign_prehashed(BEEF, &alice, &[9u8; 32]).expect("refused, not an error"), None);

    let log = signer.log();
    let votes: Vec<_> = log.iter().filter(|r| r["duty"]["kind"] == "beefyVote").collect();
    assert!(votes.iter().all(|r| r["duty"]["setId"] == SET_ID && r["duty"]["blockNumber"] == 20), "{votes:?}");
    assert_eq!(votes.iter().filter(|r| r["decision"] == "signed").count(), 1, "{votes:?}");
    assert_eq!(votes.iter().filter(|r| r["decision"] == "refused").count(), 1, "{votes:?}");
}
