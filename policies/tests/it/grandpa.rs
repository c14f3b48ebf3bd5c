//! GRANDPA votes: real `(Message, round, set_id)` payloads from
//! `sp_consensus_grandpa::localized_payload` for prevotes, precommits and primary proposals
//! through `classify` and `decode_vote`; malformed payloads (short, trailing, bad tag, u64
//! block numbers) and wrong request shapes are refused; a pinned, hand-laid-out vector.

use crate::common::{check_refusals, fixture_hex, OwnedRequest};
use codec::Encode;
use exclave_policies::{classify, decode_vote, Classification, Crypto, Duty, GrandpaStage, GrandpaVote, KeyType, PolicyError, SignContext};
use finality_grandpa::{Message, Precommit, Prevote, PrimaryPropose};
use sp_consensus_grandpa::localized_payload;
use sp_core::H256;

fn message(stage: GrandpaStage, hash: H256, number: u32) -> Message<H256, u32> {
    match stage {
        GrandpaStage::Prevote => Message::Prevote(Prevote::new(hash, number)),
        GrandpaStage::Precommit => Message::Precommit(Precommit::new(hash, number)),
        GrandpaStage::PrimaryPropose => Message::PrimaryPropose(PrimaryPropose::new(hash, number)),
    }
}

fn vote_bytes(stage: GrandpaStage, round: u64, set_id: u64, hash: H256, number: u32) -> Vec<u8> {
    localized_payload(round, set_id, &message(stage, hash, number))
}

const STAGES: [GrandpaStage; 3] = [GrandpaStage::Prevote, GrandpaStage::Precommit, GrandpaStage::PrimaryPropose];

#[test]
fn every_stage_round_and_set_decodes() {
    let coordinates: [(u64, u64, u32); 6] =
        [(1, 0, 0), (1, 1, 1), (7, 3, 1_000_000), (u64::from(u32::MAX) + 1, 2, u32::MAX), (u64::MAX, u64::MAX, u32::MAX), (0, u64::MAX, 5)];
    for stage in STAGES {
        for (i, &(round, set_id, number)) in coordinates.iter().enumerate() {
            let hash = H256::repeat_byte(0x40 + i as u8);
            let bytes = vote_bytes(stage, round, set_id, hash, number);
            assert_eq!(bytes.len(), 53, "(Message<H256,u32>, u64, u64) is 53 bytes");
            let what = format!("{stage:?} round {round} set {set_id}");
            assert_eq!(
                classify(&OwnedRequest::plain(KeyType::GRANDPA, bytes.clone()).req()),
                Ok(Classification::Claimed(Duty::GrandpaVote { set_id, round, stage })),
                "{what}"
            );
            assert_eq!(decode_vote(&bytes), Ok(GrandpaVote { stage, target_hash: hash.0, target_number: number, round, set_id }), "{what}");
        }
    }
}

#[test]
fn stage_tags_match_finality_grandpa() {
    for stage in STAGES {
        let encoded = message(stage, H256::zero(), 0).encode();
        assert_eq!(encoded[0], stage as u8, "{stage:?}");
    }
}

#[test]
fn malformed_votes_are_refused() {
    let good = vote_bytes(GrandpaStage::Prevote, 3, 1, H256::repeat_byte(9), 77);
    let with_tag = |tag: u8| [&[tag][..], &good[1..]].concat();
    let u64_numbers = localized_payload(3, 1, &Message::<H256, u64>::Prevote(Prevote::new(H256::repeat_byte(9), 77)));
    let u32_hash_only = (Message::<H256, u32>::Prevote(Prevote::new(H256::repeat_byte(9), 77)), 3u64).encode();
    let table: Vec<(&str, OwnedRequest, &str)> = vec![
        ("trailing byte", OwnedRequest::plain(KeyType::GRANDPA, [&good[..], &[0]].concat()), "BadVote"),
        ("short by one", OwnedRequest::plain(KeyType::GRANDPA, good[..52].to_vec()), "BadVote"),
        ("empty", OwnedRequest::plain(KeyType::GRANDPA, vec![]), "BadVote"),
        ("32-byte hash", OwnedRequest::plain(KeyType::GRANDPA, vec![0; 32]), "BadVote"),
        ("missing set id", OwnedRequest::plain(KeyType::GRANDPA, u32_hash_only), "BadVote"),
        ("u64 block numbers", OwnedRequest::plain(KeyType::GRANDPA, u64_numbers), "BadVote"),
        ("tag 3", OwnedRequest::plain(KeyType::GRANDPA, with_tag(3)), "BadVote"),
        ("tag 0xff", OwnedRequest::plain(KeyType::GRANDPA, with_tag(0xff)), "BadVote"),
        ("prehashed", OwnedRequest::plain(KeyType::GRANDPA, good.clone()).prehashed(), "Unrecognised"),
        (
            "babe context",
            OwnedRequest::plain(KeyType::GRANDPA, good.clone()).with_context(SignContext::BabeSeal { header: good.clone() }),
            "Unrecognised",
        ),
        (
            "beefy context",
            OwnedRequest::plain(KeyType::GRANDPA, good.clone()).with_context(SignContext::BeefyCommitment { commitment: good.clone() }),
            "Unrecognised",
        ),
        ("sr25519", OwnedRequest::plain(KeyType::GRANDPA, good.clone()).with_crypto(Crypto::Sr25519), "WrongCrypto"),
        ("ecdsa", OwnedRequest::plain(KeyType::GRANDPA, good.clone()).with_crypto(Crypto::Ecdsa), "WrongCrypto"),
    ];
    check_refusals(table);
    // The control: the unmodified vote is accepted, so the refusals above are about the change.
    assert!(classify(&OwnedRequest::plain(KeyType::GRANDPA, good).req()).is_ok());
}

#[test]
fn bad_tag_names_the_tag() {
    let mut bytes = vote_bytes(GrandpaStage::Precommit, 1, 1, H256::zero(), 1);
    bytes[0] = 3;
    match decode_vote(&bytes) {
        Err(PolicyError::BadVote { reason }) => assert!(reason.contains("tag 3"), "{reason}"),
        other => panic!("expected BadVote, got {other:?}"),
    }
}

/// The layout from substrate-signing-facts.md, written out field by field, equals the real
/// encoding and the pinned fixture.
#[test]
fn pinned_prevote_layout() {
    let hash = H256::from([0x5a; 32]);
    let (round, set_id, number) = (0x0102_0304_0506_0708u64, 0x1112_1314_1516_1718u64, 0x0a0b_0c0du32);
    let mut by_hand = vec![0u8]; // Message::Prevote
    by_hand.extend_from_slice(&[0x5a; 32]);
    by_hand.extend_from_slice(&[0x0d, 0x0c, 0x0b, 0x0a]);
    by_hand.extend_from_slice(&[0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01]);
    by_hand.extend_from_slice(&[0x18, 0x17, 0x16, 0x15, 0x14, 0x13, 0x12, 0x11]);
    let real = vote_bytes(GrandpaStage::Prevote, round, set_id, hash, number);
    assert_eq!(real, by_hand);
    assert_eq!(fixture_hex("grandpa-prevote.hex"), real);
    assert_eq!(
        classify(&OwnedRequest::plain(KeyType::GRANDPA, real).req()),
        Ok(Classification::Claimed(Duty::GrandpaVote { set_id, round, stage: GrandpaStage::Prevote }))
    );
}
