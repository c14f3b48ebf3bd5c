//! The other key types: I'm-online heartbeats (the crate's `Heartbeat` against its hand-checked
//! layout), BEEFY votes (real `sp_consensus_beefy::Commitment<u32>`, keccak-prehashed),
//! authority-discovery records and proofs of possession (unclaimed), unsupported key types; and
//! the claim/watermark key encodings (distinct per duty, public, chain; big-endian ordering;
//! the BABE authority index is not part of the key).

use crate::common::{check_refusals, variant, OwnedRequest, CHAIN};
use codec::Encode;
use exclave_policies::{
    classify, decode_commitment, decode_heartbeat, ChainId, ClaimKey, Classification, Crypto, Duty, DutyKind, GrandpaStage, Heartbeat,
    KeyType, PolicyError, SignContext, UnclaimedKind, CLAIM_PREFIX, WATERMARK_PREFIX,
};
use sp_consensus_beefy::{known_payloads, Commitment, Payload};
use sp_core::proof_of_possession::statement_of_ownership;
use sp_crypto_hashing::keccak_256;

// ---------------------------------------------------------------------------------------------
// I'm-online

#[test]
fn heartbeat_encoding_is_four_le_u32s() {
    let hb = Heartbeat { block_number: 0x0102_0304, session_index: 0x1112_1314, authority_index: 0x2122_2324, validators_len: 0x3132_3334 };
    let by_hand = [
        0x04, 0x03, 0x02, 0x01, // block_number
        0x14, 0x13, 0x12, 0x11, // session_index
        0x24, 0x23, 0x22, 0x21, // authority_index
        0x34, 0x33, 0x32, 0x31, // validators_len
    ];
    assert_eq!(hb.encode(), by_hand);
    assert_eq!(decode_heartbeat(&by_hand), Ok(hb));
}

#[test]
fn heartbeat_table() {
    let hb = |session_index| Heartbeat { block_number: 99, session_index, authority_index: 3, validators_len: 300 }.encode();
    let ok: [(u32, Vec<u8>); 3] = [(0, hb(0)), (42, hb(42)), (u32::MAX, hb(u32::MAX))];
    for (session_index, bytes) in ok {
        assert_eq!(
            classify(&OwnedRequest::plain(KeyType::IM_ONLINE, bytes).req()),
            Ok(Classification::Claimed(Duty::Heartbeat { session_index }))
        );
    }
    let good = hb(7);
    let refused: Vec<(&str, OwnedRequest, &str)> = vec![
        ("trailing byte", OwnedRequest::plain(KeyType::IM_ONLINE, [&good[..], &[0]].concat()), "BadHeartbeat"),
        (
            "trailing four bytes (an old network_state field)",
            OwnedRequest::plain(KeyType::IM_ONLINE, [&good[..], &[0; 4]].concat()),
            "BadHeartbeat",
        ),
        ("short by one", OwnedRequest::plain(KeyType::IM_ONLINE, good[..15].to_vec()), "BadHeartbeat"),
        ("empty", OwnedRequest::plain(KeyType::IM_ONLINE, vec![]), "BadHeartbeat"),
        ("a 32-byte hash", OwnedRequest::plain(KeyType::IM_ONLINE, vec![0; 32]), "BadHeartbeat"),
        ("prehashed", OwnedRequest::plain(KeyType::IM_ONLINE, good.clone()).prehashed(), "Unrecognised"),
        (
            "with context",
            OwnedRequest::plain(KeyType::IM_ONLINE, good.clone()).with_context(SignContext::BabeSeal { header: good.clone() }),
            "Unrecognised",
        ),
        ("ed25519", OwnedRequest::plain(KeyType::IM_ONLINE, good.clone()).with_crypto(Crypto::Ed25519), "WrongCrypto"),
    ];
    check_refusals(refused);
}

// ---------------------------------------------------------------------------------------------
// BEEFY

fn commitment(block_number: u32, validator_set_id: u64, root: u8) -> Vec<u8> {
    Commitment { payload: Payload::from_single_entry(known_payloads::MMR_ROOT_ID, vec![root; 32].encode()), block_number, validator_set_id }
        .encode()
}

/// A BEEFY vote exactly as sc-consensus-beefy asks for it: ecdsa, prehashed keccak_256 of the
/// SCALE commitment, with the commitment as context.
fn beefy_request(commitment: Vec<u8>) -> OwnedRequest {
    OwnedRequest::plain(KeyType::BEEFY, keccak_256(&commitment).to_vec())
        .with_context(SignContext::BeefyCommitment { commitment })
        .prehashed()
}

#[test]
fn beefy_votes_decode() {
    for (block_number, set_id) in [(0, 0), (1, 0), (123_456, 7), (u32::MAX, u64::MAX)] {
        let c = commitment(block_number, set_id, 0xaa);
        assert_eq!(classify(&beefy_request(c.clone()).req()), Ok(Classification::Claimed(Duty::BeefyVote { set_id, block_number })));
        assert_eq!(decode_commitment(&c, &keccak_256(&c)), Ok((set_id, block_number)));
    }
}

#[test]
fn beefy_refusals() {
    let c = commitment(100, 2, 0xaa);
    let other = commitment(100, 2, 0xbb);
    let mut trailing = c.clone();
    trailing.push(0);
    let refused: Vec<(&str, OwnedRequest, &str)> = vec![
        ("hash of another commitment", beefy_request(c.clone()).with_message(keccak_256(&other).to_vec()), "CommitmentHashMismatch"),
        (
            "blake2 instead of keccak",
            beefy_request(c.clone()).with_message(sp_crypto_hashing::blake2_256(&c).to_vec()),
            "CommitmentHashMismatch",
        ),
        ("the commitment itself as message", beefy_request(c.clone()).with_message(c.clone()), "CommitmentHashMismatch"),
        ("truncated hash", beefy_request(c.clone()).with_message(keccak_256(&c)[..31].to_vec()), "CommitmentHashMismatch"),
        ("commitment with a trailing byte", beefy_request(trailing.clone()).with_message(keccak_256(&trailing).to_vec()), "BadCommitment"),
        ("garbage commitment", beefy_request(vec![1, 2, 3]), "BadCommitment"),
        ("empty commitment", beefy_request(vec![]), "BadCommitment"),
        ("not prehashed", OwnedRequest { prehashed: false, ..beefy_request(c.clone()) }, "MissingCommitment"),
        ("prehashed, no context", OwnedRequest::plain(KeyType::BEEFY, keccak_256(&c).to_vec()).prehashed(), "MissingCommitment"),
        ("plain, no context", OwnedRequest::plain(KeyType::BEEFY, c.clone()), "MissingCommitment"),
        ("babe context", beefy_request(c.clone()).with_context(SignContext::BabeSeal { header: c.clone() }), "MissingCommitment"),
        ("sr25519", beefy_request(c.clone()).with_crypto(Crypto::Sr25519), "WrongCrypto"),
        ("ed25519", beefy_request(c.clone()).with_crypto(Crypto::Ed25519), "WrongCrypto"),
    ];
    check_refusals(refused);
}

// ---------------------------------------------------------------------------------------------
// Unclaimed: authority discovery and proofs of possession

#[test]
fn authority_discovery_is_unclaimed() {
    for message in [vec![], b"protobuf record".to_vec(), vec![0; 32], vec![0xff; 1000]] {
        assert_eq!(
            classify(&OwnedRequest::plain(KeyType::AUTHORITY_DISCOVERY, message).req()),
            Ok(Classification::Unclaimed(UnclaimedKind::AuthorityDiscovery))
        );
    }
    check_refusals(vec![
        ("audi prehashed", OwnedRequest::plain(KeyType::AUTHORITY_DISCOVERY, vec![1; 32]).prehashed(), "Unrecognised"),
        (
            "audi with context",
            OwnedRequest::plain(KeyType::AUTHORITY_DISCOVERY, vec![1]).with_context(SignContext::BabeSeal { header: vec![] }),
            "Unrecognised",
        ),
        ("audi ed25519", OwnedRequest::plain(KeyType::AUTHORITY_DISCOVERY, vec![1]).with_crypto(Crypto::Ed25519), "WrongCrypto"),
    ]);
}

#[test]
fn proofs_of_possession_are_unclaimed_on_every_key_type() {
    for key_type in KeyType::SUPPORTED {
        // 32- and 20-byte account ids, and the empty owner plain `author_rotateKeys` uses.
        for owner in [[0u8; 32].to_vec(), [0xee; 32].to_vec(), [1u8; 20].to_vec(), Vec::new()] {
            let statement = statement_of_ownership(&owner);
            assert_eq!(&statement[..4], b"POP_");
            assert_eq!(
                classify(&OwnedRequest::plain(key_type, statement).req()),
                Ok(Classification::Unclaimed(UnclaimedKind::ProofOfPossession)),
                "{key_type} owner of {} bytes",
                owner.len()
            );
        }
    }
}

#[test]
fn pop_lookalikes_are_not_proofs_of_possession() {
    // Owners of other lengths fall through to the key type's own rule.
    for len in [1usize, 19, 21, 28, 31, 33, 49, 64] {
        let statement = statement_of_ownership(&vec![0u8; len]);
        let expect = [
            (KeyType::BABE, "MissingSealHeader"),
            (KeyType::GRANDPA, "BadVote"),
            (KeyType::IM_ONLINE, "BadHeartbeat"),
            (KeyType::BEEFY, "MissingCommitment"),
        ];
        for (key_type, expect) in expect {
            match classify(&OwnedRequest::plain(key_type, statement.clone()).req()) {
                Err(e) => assert_eq!(variant(&e), expect, "{key_type} owner of {len} bytes"),
                other => panic!("{key_type} owner of {len} bytes: expected {expect}, got {other:?}"),
            }
        }
    }
    let pop = statement_of_ownership(&[0u8; 32]);
    check_refusals(vec![
        // Prehashed or with context, a POP statement is not a POP request.
        ("beef prehashed pop", OwnedRequest::plain(KeyType::BEEFY, pop.clone()).prehashed(), "MissingCommitment"),
        ("gran prehashed pop", OwnedRequest::plain(KeyType::GRANDPA, pop.clone()).prehashed(), "Unrecognised"),
        (
            "babe pop with header",
            OwnedRequest::plain(KeyType::BABE, pop.clone()).with_context(SignContext::BabeSeal { header: vec![1, 2, 3] }),
            "BadHeader",
        ),
        // A lower-case tag is not the tag.
        ("pop_ lowercase", OwnedRequest::plain(KeyType::BABE, [&b"pop_"[..], &[0u8; 32]].concat()), "MissingSealHeader"),
        // Still the key type's crypto.
        ("gran pop sr25519", OwnedRequest::plain(KeyType::GRANDPA, pop.clone()).with_crypto(Crypto::Sr25519), "WrongCrypto"),
    ]);
}

#[test]
fn unsupported_key_types() {
    for key in [*b"para", *b"acco", *b"asgn", *b"lp2p", *b"BABE", *b"gra\0", [0xff; 4]] {
        for crypto in [Crypto::Sr25519, Crypto::Ed25519, Crypto::Ecdsa] {
            let mut request = OwnedRequest::plain(KeyType(key), statement_of_ownership(&[0u8; 32]));
            request.crypto = crypto;
            assert_eq!(
                classify(&request.req()),
                Err(PolicyError::UnsupportedKeyType { key_type: KeyType(key) }),
                "{} {crypto}",
                KeyType(key)
            );
        }
    }
    assert_eq!(KeyType(*b"para").crypto(), None);
    assert!(!KeyType(*b"para").is_protected());
    assert!(!KeyType::AUTHORITY_DISCOVERY.is_protected());
    for key_type in [KeyType::BABE, KeyType::GRANDPA, KeyType::IM_ONLINE, KeyType::BEEFY] {
        assert!(key_type.is_protected(), "{key_type}");
    }
}

// ---------------------------------------------------------------------------------------------
// Claim keys

fn key(chain: ChainId, key_type: KeyType, public: &[u8], duty: Duty) -> ClaimKey {
    ClaimKey { chain, key_type, public: public.to_vec(), duty }
}

const PUB_A: [u8; 32] = [0xaa; 32];
const PUB_B: [u8; 32] = [0xbb; 32];

fn babe(slot: u64) -> Duty {
    Duty::BabeSeal { slot, authority_index: 0 }
}

fn gran(set_id: u64, round: u64, stage: GrandpaStage) -> Duty {
    Duty::GrandpaVote { set_id, round, stage }
}

#[test]
fn claim_keys_are_distinct() {
    let duties = [
        babe(1),
        babe(2),
        babe(256),
        gran(0, 1, GrandpaStage::Prevote),
        gran(0, 1, GrandpaStage::Precommit),
        gran(0, 1, GrandpaStage::PrimaryPropose),
        gran(1, 1, GrandpaStage::Prevote),
        gran(0, 2, GrandpaStage::Prevote),
        gran(1, 0, GrandpaStage::Prevote),
        Duty::Heartbeat { session_index: 1 },
        Duty::Heartbeat { session_index: 2 },
        Duty::BeefyVote { set_id: 0, block_number: 1 },
        Duty::BeefyVote { set_id: 1, block_number: 0 },
        Duty::BeefyVote { set_id: 0, block_number: 2 },
    ];
    let chains = [CHAIN, ChainId([0xc1; 32])];
    let publics: [&[u8]; 3] = [&PUB_A, &PUB_B, &[0xaa; 33]];
    let key_types = [KeyType::BABE, KeyType::GRANDPA];
    let mut seen = std::collections::HashMap::new();
    for chain in chains {
        for key_type in key_types {
            for public in publics {
                for duty in duties {
                    let k = key(chain, key_type, public, duty);
                    let bytes = k.to_bytes();
                    assert!(bytes.starts_with(CLAIM_PREFIX));
                    let back = ClaimKey::from_bytes(&bytes).expect("decodes");
                    let unindexed = match duty {
                        Duty::BabeSeal { slot, .. } => Duty::BabeSeal { slot, authority_index: 0 },
                        other => other,
                    };
                    assert_eq!(back, ClaimKey { duty: unindexed, ..k.clone() }, "from_bytes inverts to_bytes");
                    assert_eq!(ClaimKey::from_bytes(&bytes[..bytes.len() - 1]), None, "a cut key is not a key");
                    assert_eq!(ClaimKey::from_bytes(&[bytes.as_slice(), &[0]].concat()), None, "trailing bytes");
                    if let Some(prev) = seen.insert(bytes, k.clone()) {
                        panic!("{prev:?} and {k:?} share a claim key");
                    }
                }
            }
        }
    }
    assert_eq!(seen.len(), chains.len() * key_types.len() * publics.len() * duties.len());
}

#[test]
fn babe_authority_index_is_not_part_of_the_key() {
    let a = key(CHAIN, KeyType::BABE, &PUB_A, Duty::BabeSeal { slot: 9, authority_index: 0 });
    let b = key(CHAIN, KeyType::BABE, &PUB_A, Duty::BabeSeal { slot: 9, authority_index: 41 });
    assert_eq!(a.to_bytes(), b.to_bytes());
    assert_ne!(a.to_bytes(), key(CHAIN, KeyType::BABE, &PUB_A, babe(10)).to_bytes());
}

/// Keys of one family sort by position (big-endian coordinates), so a store can scan and prune.
#[test]
fn claim_keys_sort_by_position() {
    let families: Vec<Vec<Duty>> = vec![
        [0, 1, 255, 256, 65_535, 65_536, 1 << 32, u64::MAX - 1, u64::MAX].into_iter().map(babe).collect(),
        vec![
            gran(0, 1, GrandpaStage::Prevote),
            gran(0, 1, GrandpaStage::Precommit),
            gran(0, 1, GrandpaStage::PrimaryPropose),
            gran(0, 2, GrandpaStage::Prevote),
            gran(0, 256, GrandpaStage::Prevote),
            gran(0, 1000, GrandpaStage::Precommit),
            gran(1, 1, GrandpaStage::Prevote), // set id dominates the round
            gran(1, 2, GrandpaStage::Prevote),
            gran(256, 0, GrandpaStage::Prevote),
        ],
        [0, 1, 255, 256, u32::MAX].into_iter().map(|session_index| Duty::Heartbeat { session_index }).collect(),
        vec![
            Duty::BeefyVote { set_id: 0, block_number: 1 },
            Duty::BeefyVote { set_id: 0, block_number: 256 },
            Duty::BeefyVote { set_id: 0, block_number: u32::MAX },
            Duty::BeefyVote { set_id: 1, block_number: 0 },
        ],
    ];
    for family in families {
        let bytes: Vec<Vec<u8>> = family.iter().map(|d| key(CHAIN, KeyType::BABE, &PUB_A, *d).to_bytes()).collect();
        for (i, pair) in bytes.windows(2).enumerate() {
            assert!(pair[0] < pair[1], "{:?} should sort before {:?}", family[i], family[i + 1]);
            assert!(family[i].position() <= family[i + 1].position());
        }
        // Same prefix up to the coordinates: the family's keys differ only at the end.
        let prefix_len = CLAIM_PREFIX.len() + 32 + 4 + 1 + PUB_A.len() + 1;
        assert!(bytes.iter().all(|b| b[..prefix_len] == bytes[0][..prefix_len]));
    }
}

#[test]
fn watermark_keys_are_per_family_and_apart_from_claims() {
    let k = |duty| key(CHAIN, KeyType::GRANDPA, &PUB_A, duty);
    let w1 = k(gran(0, 1, GrandpaStage::Prevote)).watermark_key();
    let w2 = k(gran(5, 9, GrandpaStage::Precommit)).watermark_key();
    assert_eq!(w1, w2, "one watermark per family, whatever the position");
    assert_eq!(w1.kind, DutyKind::GrandpaVote);
    assert!(w1.to_bytes().starts_with(WATERMARK_PREFIX));
    let others = [
        k(babe(1)).watermark_key(),
        k(Duty::Heartbeat { session_index: 1 }).watermark_key(),
        k(Duty::BeefyVote { set_id: 0, block_number: 1 }).watermark_key(),
        key(CHAIN, KeyType::GRANDPA, &PUB_B, gran(0, 1, GrandpaStage::Prevote)).watermark_key(),
        key(ChainId([1; 32]), KeyType::GRANDPA, &PUB_A, gran(0, 1, GrandpaStage::Prevote)).watermark_key(),
    ];
    for other in &others {
        assert_ne!(other.to_bytes(), w1.to_bytes(), "{other:?}");
    }
    assert!(!CLAIM_PREFIX.starts_with(WATERMARK_PREFIX) && !WATERMARK_PREFIX.starts_with(CLAIM_PREFIX));
}
