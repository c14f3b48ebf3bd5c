//! `exclave_policies::heartbeat::decode_heartbeat`: the SCALE `Heartbeat<u32>` an I'm-online
//! offchain worker signs.
//!
//! Asserts: it accepts exactly the 16-byte inputs; an accepted heartbeat re-encodes to the bytes
//! given; `classify` of an `imon` sr25519 request with these bytes agrees with the decoder.
#![no_main]

use codec::Encode;
use exclave_policies::{classify, decode_heartbeat, Classification, Crypto, Duty, KeyType, SignContext, SignRequest};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let decoded = decode_heartbeat(data);
    assert_eq!(decoded.is_ok(), data.len() == 16, "{decoded:?} for {} bytes", data.len());
    if let Ok(hb) = &decoded {
        assert_eq!(hb.encode(), data, "an accepted heartbeat does not re-encode");
    }
    let req =
        SignRequest { key_type: KeyType::IM_ONLINE, crypto: Crypto::Sr25519, message: data, context: &SignContext::None, prehashed: false };
    match (classify(&req), decoded) {
        (Ok(Classification::Claimed(Duty::Heartbeat { session_index })), Ok(hb)) => assert_eq!(session_index, hb.session_index),
        // A proof of possession (`POP_` ++ owner, 4, 24 or 36 bytes) is never a heartbeat's length.
        (Ok(Classification::Unclaimed(_)), Err(_)) => assert!(data.starts_with(b"POP_")),
        (Err(_), Err(_)) => {}
        (c, h) => panic!("classify {c:?} disagrees with decode_heartbeat {h:?}"),
    }
});
