//! `exclave_policies::babe::decode_seal_header(header, message)`: the pre-seal header a BABE
//! seal request carries, and the hash it must have.
//!
//! Input: a flag byte, then the header. Flag bit 0 clear: the message is blake2_256 of the
//! header bytes, as an honest node sends (so the decoder is driven past its hash check). Set:
//! the next byte `n` splits the rest into `n % 64` message bytes and the header.
//!
//! Asserts, when the decoder accepts: the message is blake2_256 of the header bytes; the header
//! re-encodes to exactly the bytes given; it holds no seal and exactly one BABE pre-digest, and
//! Substrate's own `CompatibleDigestItem::as_babe_pre_digest` reads the same slot and authority
//! index from it. When the message is the header's hash, no refusal is a hash mismatch.
//! `classify` of a `babe` sr25519 request with this header as context agrees with the decoder.
#![no_main]

use codec::{DecodeAll, Encode};
use exclave_policies::{classify, decode_seal_header, Classification, Crypto, Duty, KeyType, PolicyError, SignContext, SignRequest};
use libfuzzer_sys::fuzz_target;
use sp_consensus_babe::digests::CompatibleDigestItem;
use sp_runtime::{
    generic::{DigestItem, Header},
    traits::BlakeTwo256,
};

fuzz_target!(|data: &[u8]| {
    let Some((&flag, rest)) = data.split_first() else { return };
    let hashed;
    let (header, message): (&[u8], &[u8]) = if flag & 1 == 0 {
        hashed = sp_crypto_hashing::blake2_256(rest);
        (rest, &hashed)
    } else {
        let Some((&n, rest)) = rest.split_first() else { return };
        let n = usize::from(n % 64).min(rest.len());
        let (message, header) = rest.split_at(n);
        (header, message)
    };
    let ours = decode_seal_header(header, message);
    match &ours {
        Ok(sealed) => {
            assert_eq!(sp_crypto_hashing::blake2_256(header), message, "accepted a message that is not the header's hash");
            let decoded = Header::<u32, BlakeTwo256>::decode_all(&mut &header[..]).expect("accepted header decodes");
            assert_eq!(decoded.encode(), header, "the header does not re-encode to the bytes given");
            assert_eq!(decoded.number, sealed.block_number);
            let logs = &decoded.digest.logs;
            assert!(!logs.iter().any(|l| matches!(l, DigestItem::Seal(..))), "accepted a sealed header");
            let pres: Vec<_> = logs.iter().filter_map(CompatibleDigestItem::as_babe_pre_digest).collect();
            assert_eq!(pres.len(), 1, "accepted a header without exactly one BABE pre-digest Substrate reads");
            assert_eq!(*pres[0].slot(), sealed.slot);
            assert_eq!(pres[0].authority_index(), sealed.authority_index);
        }
        Err(PolicyError::HeaderHashMismatch { .. }) => assert!(flag & 1 == 1, "refused the header's own hash"),
        Err(_) => {}
    }
    let context = SignContext::BabeSeal { header: header.to_vec() };
    let req = SignRequest { key_type: KeyType::BABE, crypto: Crypto::Sr25519, message, context: &context, prehashed: false };
    match (classify(&req), ours) {
        (Ok(Classification::Claimed(Duty::BabeSeal { slot, authority_index })), Ok(s)) => {
            assert_eq!((slot, authority_index), (s.slot, s.authority_index))
        }
        (Err(_), Err(_)) => {}
        (c, s) => panic!("classify {c:?} disagrees with decode_seal_header {s:?}"),
    }
});
