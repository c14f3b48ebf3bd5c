//! `exclave_policies::grandpa::decode_vote`: the 53-byte `(Message, round, set_id)` a GRANDPA
//! vote signs, decoded by hand.
//!
//! Asserts: the hand decoder accepts exactly what SCALE-decoding finality-grandpa's own
//! `(Message<H256, u32>, u64, u64)` with `decode_all` accepts, and reads the same stage, target,
//! round and set id; an accepted vote re-encodes (upstream) to the bytes given; `classify` of a
//! `gran` ed25519 request with these bytes agrees with the decoder.
#![no_main]

use codec::{DecodeAll, Encode};
use exclave_policies::{classify, decode_vote, Classification, Crypto, Duty, GrandpaStage, KeyType, SignContext, SignRequest};
use finality_grandpa::Message;
use libfuzzer_sys::fuzz_target;
use sp_core::H256;

type Vote = (Message<H256, u32>, u64, u64);

fuzz_target!(|data: &[u8]| {
    let ours = decode_vote(data);
    let upstream = Vote::decode_all(&mut &data[..]);
    match (&ours, &upstream) {
        (Ok(v), Ok((m, round, set_id))) => {
            let (stage, hash, number) = match m {
                Message::Prevote(p) => (GrandpaStage::Prevote, p.target_hash, p.target_number),
                Message::Precommit(p) => (GrandpaStage::Precommit, p.target_hash, p.target_number),
                Message::PrimaryPropose(p) => (GrandpaStage::PrimaryPropose, p.target_hash, p.target_number),
            };
            assert_eq!((v.stage, v.target_hash, v.target_number, v.round, v.set_id), (stage, hash.0, number, *round, *set_id));
            assert_eq!(upstream.as_ref().map(Encode::encode).ok().as_deref(), Some(data), "an accepted vote does not re-encode");
        }
        (Err(_), Err(_)) => {}
        _ => panic!("decode_vote {ours:?} disagrees with finality-grandpa {upstream:?}"),
    }
    let req =
        SignRequest { key_type: KeyType::GRANDPA, crypto: Crypto::Ed25519, message: data, context: &SignContext::None, prehashed: false };
    match (classify(&req), ours) {
        (Ok(Classification::Claimed(Duty::GrandpaVote { set_id, round, stage })), Ok(v)) => {
            assert_eq!((set_id, round, stage), (v.set_id, v.round, v.stage))
        }
        // A proof of possession (`POP_` ++ owner, 4, 24 or 36 bytes) is never a vote's length.
        (Ok(Classification::Unclaimed(_)), Err(_)) => assert!(data.starts_with(b"POP_") && data.len() != 53),
        (Err(_), Err(_)) => {}
        (c, v) => panic!("classify {c:?} disagrees with decode_vote {v:?}"),
    }
});
