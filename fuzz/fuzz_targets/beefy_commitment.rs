//! `exclave_policies::beefy::decode_commitment(commitment, message)`: the SCALE
//! `Commitment<u32>` behind a prehashed BEEFY vote, and the keccak_256 it must have.
//!
//! Input: a flag byte, then the commitment. Flag bit 0 clear: the message is keccak_256 of the
//! commitment bytes, as an honest node sends. Set: the next byte `n` splits the rest into
//! `n % 64` message bytes and the commitment.
//!
//! Asserts: when the message is the commitment's hash, the decoder accepts exactly what
//! `Commitment::<u32>::decode_all` accepts; when it accepts, the message is keccak_256 of the
//! commitment bytes, the commitment re-encodes to the bytes given and the set id and block
//! number returned are the commitment's; `classify` of a `beef` ecdsa prehashed request with
//! this context agrees with the decoder.
#![no_main]

use codec::{DecodeAll, Encode};
use exclave_policies::{classify, decode_commitment, Classification, Crypto, Duty, KeyType, PolicyError, SignContext, SignRequest};
use libfuzzer_sys::fuzz_target;
use sp_consensus_beefy::Commitment;

fuzz_target!(|data: &[u8]| {
    let Some((&flag, rest)) = data.split_first() else { return };
    let hashed;
    let (commitment, message): (&[u8], &[u8]) = if flag & 1 == 0 {
        hashed = sp_crypto_hashing::keccak_256(rest);
        (rest, &hashed)
    } else {
        let Some((&n, rest)) = rest.split_first() else { return };
        let n = usize::from(n % 64).min(rest.len());
        let (message, commitment) = rest.split_at(n);
        (commitment, message)
    };
    let ours = decode_commitment(commitment, message);
    let upstream = Commitment::<u32>::decode_all(&mut &commitment[..]);
    if flag & 1 == 0 {
        assert_eq!(ours.is_ok(), upstream.is_ok(), "decode_commitment {ours:?} disagrees with sp-consensus-beefy {upstream:?}");
        assert!(!matches!(ours, Err(PolicyError::CommitmentHashMismatch { .. })), "refused the commitment's own hash");
    }
    if let Ok((set_id, block)) = ours {
        assert_eq!(sp_crypto_hashing::keccak_256(commitment), message, "accepted a message that is not the commitment's hash");
        let c = upstream.as_ref().expect("an accepted commitment decodes upstream");
        assert_eq!(c.encode(), commitment, "an accepted commitment does not re-encode");
        assert_eq!((set_id, block), (c.validator_set_id, c.block_number));
    }
    let context = SignContext::BeefyCommitment { commitment: commitment.to_vec() };
    let req = SignRequest { key_type: KeyType::BEEFY, crypto: Crypto::Ecdsa, message, context: &context, prehashed: true };
    match (classify(&req), ours) {
        (Ok(Classification::Claimed(Duty::BeefyVote { set_id, block_number })), Ok(d)) => assert_eq!((set_id, block_number), d),
        (Err(_), Err(_)) => {}
        (c, d) => panic!("classify {c:?} disagrees with decode_commitment {d:?}"),
    }
});
