//! BABE seal requests: real pre-seal headers (`sp_runtime::generic::Header<u32, BlakeTwo256>` with
//! `PreRuntime(BABE, PreDigest)` built by sp-consensus-babe) through `classify`, one case table
//! for every accepted pre-digest kind and every refusal; pinned header vectors; and the slot
//! bounds (`check_vrf_bounds`, `slot_at`).

use crate::common::{
    babe_item, fixture_hex, header_with, pre_header, primary, secondary_plain, secondary_vrf, variant, vrf_pair, Header, OwnedRequest,
};
use codec::Encode;
use exclave_policies::{
    check_vrf_bounds, classify, decode_seal_header, slot_at, Classification, Crypto, Duty, KeyType, PolicyError, Refusal, SealedSlot,
    SignContext, SlotBounds,
};
use sp_consensus_babe::BABE_ENGINE_ID;
use sp_runtime::generic::DigestItem;

/// What a case expects: the duty, or the name of the refusal.
type Expect = Result<Duty, &'static str>;

fn seal(slot: u64, authority_index: u32) -> Expect {
    Ok(Duty::BabeSeal { slot, authority_index })
}

struct Case {
    name: &'static str,
    request: OwnedRequest,
    expect: Expect,
}

fn cases() -> Vec<Case> {
    let pair = vrf_pair();
    let plain = pre_header(7, 1, &secondary_plain(0, 1001));
    let other = pre_header(7, 2, &secondary_plain(0, 1001));
    let with_pre = |item: DigestItem| header_with(7, 1, vec![item, babe_item(&secondary_plain(4, 88))]);
    let mut sealed = plain.clone();
    sealed.digest.push(DigestItem::Seal(BABE_ENGINE_ID, vec![0u8; 64]));
    let mut foreign_seal = plain.clone();
    foreign_seal.digest.logs.insert(0, DigestItem::Seal(*b"aura", vec![1, 2, 3]));
    let mut trailing_pre = secondary_plain(0, 5).encode();
    trailing_pre.push(0);
    let plain_bytes = plain.encode();
    let mut trailing_header = plain_bytes.clone();
    trailing_header.push(0);
    let babe_ctx = |header: Vec<u8>| SignContext::BabeSeal { header };
    let hash_of = |bytes: &[u8]| sp_crypto_hashing::blake2_256(bytes).to_vec();
    let raw = |header: Vec<u8>| OwnedRequest::seal(&plain).with_message(hash_of(&header)).with_context(babe_ctx(header));

    vec![
        // Every pre-digest kind names its slot and author.
        Case { name: "primary", request: OwnedRequest::seal(&pre_header(10, 1, &primary(&pair, 3, 1000))), expect: seal(1000, 3) },
        Case { name: "secondary plain", request: OwnedRequest::seal(&plain), expect: seal(1001, 0) },
        Case {
            name: "secondary vrf",
            request: OwnedRequest::seal(&pre_header(12, 1, &secondary_vrf(&pair, 7, 1 << 40))),
            expect: seal(1 << 40, 7),
        },
        Case { name: "slot 0", request: OwnedRequest::seal(&pre_header(0, 1, &secondary_plain(0, 0))), expect: seal(0, 0) },
        Case {
            name: "slot u64::MAX, number u32::MAX",
            request: OwnedRequest::seal(&pre_header(u32::MAX, 1, &secondary_plain(u32::MAX, u64::MAX))),
            expect: seal(u64::MAX, u32::MAX),
        },
        Case {
            name: "pre-digest after other items",
            request: OwnedRequest::seal(&with_pre(DigestItem::Other(vec![1, 2]))),
            expect: seal(88, 4),
        },
        Case {
            name: "pre-digest after a foreign pre-runtime",
            request: OwnedRequest::seal(&with_pre(DigestItem::PreRuntime(*b"aura", secondary_plain(9, 9).encode()))),
            expect: seal(88, 4),
        },
        Case {
            name: "pre-digest after a BABE consensus item",
            request: OwnedRequest::seal(&with_pre(DigestItem::Consensus(BABE_ENGINE_ID, vec![0]))),
            expect: seal(88, 4),
        },
        Case {
            name: "two BABE pre-digests are refused",
            request: OwnedRequest::seal(&with_pre(babe_item(&secondary_plain(1, 77)))),
            expect: Err("MultipleBabePreDigests"),
        },
        // The message must be exactly blake2_256 of the header sent.
        Case {
            name: "hash of another header",
            request: OwnedRequest::seal(&plain).with_message(other.hash().as_bytes().to_vec()),
            expect: Err("HeaderHashMismatch"),
        },
        Case {
            name: "hash of the header with a byte flipped",
            request: OwnedRequest::seal(&plain).with_message({
                let mut m = plain.hash().as_bytes().to_vec();
                m[31] ^= 1;
                m
            }),
            expect: Err("HeaderHashMismatch"),
        },
        Case {
            name: "hash truncated to 31 bytes",
            request: OwnedRequest::seal(&plain).with_message(plain.hash().as_bytes()[..31].to_vec()),
            expect: Err("HeaderHashMismatch"),
        },
        Case {
            name: "hash with a trailing byte",
            request: OwnedRequest::seal(&plain).with_message([plain.hash().as_bytes(), &[0]].concat()),
            expect: Err("HeaderHashMismatch"),
        },
        Case {
            name: "the header bytes themselves as message",
            request: OwnedRequest::seal(&plain).with_message(plain_bytes.clone()),
            expect: Err("HeaderHashMismatch"),
        },
        Case { name: "empty message", request: OwnedRequest::seal(&plain).with_message(vec![]), expect: Err("HeaderHashMismatch") },
        // Only pre-seal headers.
        Case { name: "already sealed (BABE seal last)", request: OwnedRequest::seal(&sealed), expect: Err("AlreadySealed") },
        Case {
            name: "already sealed, message the pre-seal hash",
            request: OwnedRequest::seal(&sealed).with_message(plain.hash().as_bytes().to_vec()),
            expect: Err("AlreadySealed"),
        },
        Case { name: "any engine's seal counts", request: OwnedRequest::seal(&foreign_seal), expect: Err("AlreadySealed") },
        // A header must name a BABE slot.
        Case { name: "empty digest", request: OwnedRequest::seal(&header_with(7, 1, vec![])), expect: Err("NoBabePreDigest") },
        Case {
            name: "only a foreign pre-runtime",
            request: OwnedRequest::seal(&header_with(7, 1, vec![DigestItem::PreRuntime(*b"aura", secondary_plain(0, 1).encode())])),
            expect: Err("NoBabePreDigest"),
        },
        Case {
            name: "BABE as consensus, not pre-runtime",
            request: OwnedRequest::seal(&header_with(7, 1, vec![DigestItem::Consensus(BABE_ENGINE_ID, secondary_plain(0, 1).encode())])),
            expect: Err("NoBabePreDigest"),
        },
        Case {
            name: "BABE as other",
            request: OwnedRequest::seal(&header_with(7, 1, vec![DigestItem::Other(secondary_plain(0, 1).encode())])),
            expect: Err("NoBabePreDigest"),
        },
        // Bytes that are not a header, or a pre-digest that is not a PreDigest.
        Case {
            name: "garbage pre-digest",
            request: OwnedRequest::seal(&header_with(7, 1, vec![DigestItem::PreRuntime(BABE_ENGINE_ID, vec![9, 9, 9])])),
            expect: Err("BadHeader"),
        },
        Case {
            name: "empty pre-digest",
            request: OwnedRequest::seal(&header_with(7, 1, vec![DigestItem::PreRuntime(BABE_ENGINE_ID, vec![])])),
            expect: Err("BadHeader"),
        },
        Case {
            name: "pre-digest with a trailing byte",
            request: OwnedRequest::seal(&header_with(7, 1, vec![DigestItem::PreRuntime(BABE_ENGINE_ID, trailing_pre)])),
            expect: Err("BadHeader"),
        },
        Case {
            name: "pre-digest tag 0",
            request: OwnedRequest::seal(&header_with(
                7,
                1,
                vec![DigestItem::PreRuntime(BABE_ENGINE_ID, [&[0u8][..], &secondary_plain(0, 1).encode()[1..]].concat())],
            )),
            expect: Err("BadHeader"),
        },
        Case { name: "garbage header", request: raw(vec![1, 2, 3]), expect: Err("BadHeader") },
        Case { name: "empty header", request: raw(vec![]), expect: Err("BadHeader") },
        Case { name: "header with a trailing byte", request: raw(trailing_header), expect: Err("BadHeader") },
        Case {
            name: "header truncated by one byte",
            request: raw(plain_bytes[..plain_bytes.len() - 1].to_vec()),
            expect: Err("BadHeader"),
        },
        Case {
            name: "unknown digest item tag",
            request: raw({
                let mut b = plain_bytes.clone();
                b[32 + 1 + 64 + 1] = 0x09;
                b
            }),
            expect: Err("BadHeader"),
        },
        // A bare hash names no slot: never signed.
        Case {
            name: "bare 32-byte hash",
            request: OwnedRequest::plain(KeyType::BABE, plain.hash().as_bytes().to_vec()),
            expect: Err("MissingSealHeader"),
        },
        Case { name: "bare empty message", request: OwnedRequest::plain(KeyType::BABE, vec![]), expect: Err("MissingSealHeader") },
        Case {
            name: "bare header bytes",
            request: OwnedRequest::plain(KeyType::BABE, plain_bytes.clone()),
            expect: Err("MissingSealHeader"),
        },
        // Wrong shapes of request.
        Case { name: "ed25519", request: OwnedRequest::seal(&plain).with_crypto(Crypto::Ed25519), expect: Err("WrongCrypto") },
        Case { name: "ecdsa", request: OwnedRequest::seal(&plain).with_crypto(Crypto::Ecdsa), expect: Err("WrongCrypto") },
        Case { name: "prehashed", request: OwnedRequest::seal(&plain).prehashed(), expect: Err("Unrecognised") },
        Case {
            name: "prehashed without context",
            request: OwnedRequest::plain(KeyType::BABE, plain.hash().as_bytes().to_vec()).prehashed(),
            expect: Err("Unrecognised"),
        },
        Case {
            name: "beefy context",
            request: OwnedRequest::seal(&plain).with_context(SignContext::BeefyCommitment { commitment: plain_bytes.clone() }),
            expect: Err("Unrecognised"),
        },
    ]
}

#[test]
fn seal_case_table() {
    let mut failures = Vec::new();
    for case in cases() {
        let got = match classify(&case.request.req()) {
            Ok(Classification::Claimed(duty)) => Ok(duty),
            Ok(other) => {
                failures.push(format!("{}: unexpected {other:?}", case.name));
                continue;
            }
            Err(e) => Err(variant(&e)),
        };
        if got != case.expect {
            failures.push(format!("{}: expected {:?}, got {:?}", case.name, case.expect, got));
        }
    }
    assert!(failures.is_empty(), "failing cases:\n{}", failures.join("\n"));
}

#[test]
fn seal_message_is_header_hash_and_blake2_of_encoding() {
    // The builder's message is what a BABE author signs: `header.hash()` of the pre-seal header.
    let header = pre_header(5, 3, &secondary_plain(1, 2));
    let request = OwnedRequest::seal(&header);
    assert_eq!(request.message, header.hash().as_bytes());
    assert_eq!(request.message, sp_crypto_hashing::blake2_256(&header.encode()));
}

#[test]
fn decode_seal_header_reports_slot_author_and_number() {
    let pair = vrf_pair();
    for (pre, slot, authority_index) in
        [(primary(&pair, 3, 1000), 1000, 3), (secondary_plain(0, 1001), 1001, 0), (secondary_vrf(&pair, 9, 1002), 1002, 9)]
    {
        let header = pre_header(123_456, 1, &pre);
        let got = decode_seal_header(&header.encode(), header.hash().as_bytes()).expect("decodes");
        assert_eq!(got, SealedSlot { slot, authority_index, block_number: 123_456 });
    }
}

#[test]
fn hash_mismatch_names_both_hashes() {
    let header = pre_header(5, 1, &secondary_plain(0, 10));
    let wrong = [0xabu8; 32];
    let err = decode_seal_header(&header.encode(), &wrong).expect_err("mismatch");
    assert_eq!(
        err,
        PolicyError::HeaderHashMismatch {
            computed: format!("0x{}", hex::encode(header.hash().as_bytes())),
            message: format!("0x{}", hex::encode(wrong)),
        }
    );
}

#[test]
fn wrong_crypto_names_expected_and_got() {
    let request = OwnedRequest::seal(&pre_header(5, 1, &secondary_plain(0, 10))).with_crypto(Crypto::Ed25519);
    assert_eq!(
        classify(&request.req()),
        Err(PolicyError::WrongCrypto { key_type: KeyType::BABE, expected: Crypto::Sr25519, got: Crypto::Ed25519 })
    );
}

/// A pinned, hand-checked encoding (see the comments in the fixture): guards the header layout
/// and blake2_256 against a change in sp-runtime or in the builder.
#[test]
fn pinned_secondary_plain_header() {
    let bytes = fixture_hex("babe-secondary-plain-header.hex");
    let hash = fixture_hex("babe-secondary-plain-header.hash");
    let built = pre_header(42, 0x11, &secondary_plain(2, 0x1234_5678));
    assert_eq!(hex::encode(built.encode()), hex::encode(&bytes), "builder drifted from the pinned vector");
    assert_eq!(built.hash().as_bytes(), &hash[..]);
    let request = OwnedRequest::seal(&built).with_context(SignContext::BabeSeal { header: bytes }).with_message(hash);
    assert_eq!(classify(&request.req()), Ok(Classification::Claimed(Duty::BabeSeal { slot: 0x1234_5678, authority_index: 2 })));
}

/// A pinned header with a real primary pre-digest (VRF signature by `vrf_pair()`); VRF proofs
/// are randomised, so this vector was produced once and is replayed as bytes.
#[test]
fn pinned_primary_header() {
    let bytes = fixture_hex("babe-primary-header.hex");
    let header: Header = codec::Decode::decode(&mut &bytes[..]).expect("fixture decodes");
    assert_eq!(header.encode(), bytes, "re-encoding is identical");
    let request = OwnedRequest::seal(&header);
    assert_eq!(request.context, SignContext::BabeSeal { header: bytes });
    assert_eq!(classify(&request.req()), Ok(Classification::Claimed(Duty::BabeSeal { slot: 300_000_000, authority_index: 5 })));
}

#[test]
fn slot_at_table() {
    for (now_ms, duration, expect) in [
        (0, 6000, 0),
        (5999, 6000, 0),
        (6000, 6000, 1),
        (6_000_000_123, 6000, 1_000_000),
        (1_700_000_000_000, 2000, 850_000_000),
        (u64::MAX, 1, u64::MAX),
        (u64::MAX, u64::MAX, 1),
        // A zero duration must not panic; it is treated as 1 ms.
        (12345, 0, 12345),
    ] {
        assert_eq!(slot_at(now_ms, duration), expect, "slot_at({now_ms}, {duration})");
    }
}

#[test]
fn vrf_bounds_table() {
    let duration = 6000;
    let now_ms = 1000 * duration + 1234; // wall-clock slot 1000
    let bounds = |max_drift_slots, genesis_slot| SlotBounds { slot_duration_ms: duration, max_drift_slots, genesis_slot };
    // (slot, max drift, genesis slot, allowed)
    let table: &[(u64, u64, u64, bool)] = &[
        (1000, 2, 0, true), // the current slot
        (999, 2, 0, true),  // inside the drift
        (1001, 2, 0, true),
        (998, 2, 0, true), // at the edge
        (1002, 2, 0, true),
        (997, 2, 0, false), // beyond the edge
        (1003, 2, 0, false),
        (0, 2, 0, false),
        (u64::MAX, 2, 0, false),
        (1000, 0, 0, true), // zero drift: only the current slot
        (1001, 0, 0, false),
        (999, 0, 0, false),
        (999, 2, 1000, false), // inside the drift but before genesis
        (1000, 2, 1000, true), // the genesis slot itself
        (1001, 2, 1000, true),
        (5, u64::MAX, 6, false), // before genesis even with unbounded drift
        (0, u64::MAX, 0, true),
        (u64::MAX, u64::MAX, 0, true),
    ];
    for &(slot, drift, genesis, allowed) in table {
        let got = check_vrf_bounds(slot, now_ms, &bounds(drift, genesis));
        if allowed {
            assert_eq!(got, Ok(()), "slot {slot} drift {drift} genesis {genesis}");
        } else {
            assert_eq!(
                got,
                Err(Refusal::SlotOutOfRange { slot, current: 1000, max_drift: drift }),
                "slot {slot} drift {drift} genesis {genesis}"
            );
        }
    }
}
