//! Bad input gets a clear error and changes nothing: malformed JSON, wrong types, unknown
//! fields, oversized bodies, unknown key types and keys, a header whose hash is not the
//! message, a vote with trailing bytes, the wrong chain, and a client without a certificate.
//! Afterwards the duties those requests named can still be signed (no claim was consumed).

use crate::common::*;
use serde_json::{json, Value};
use sp_core::{ed25519, sr25519, Pair};

fn alice(crypto: &str) -> String {
    let public = match crypto {
        "ed25519" => ed25519::Pair::from_string("//Alice", None).expect("dev").public().0.to_vec(),
        _ => sr25519::Pair::from_string("//Alice", None).expect("dev").public().0.to_vec(),
    };
    format!("0x{}", hex::encode(public))
}

fn chain() -> String {
    format!("0x{}", hex::encode(CHAIN))
}

fn sign_body(request: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": 1, "method": "exclave_sign", "params": [request]})).expect("json")
}

fn vote_request(message: &[u8]) -> Value {
    json!({"chain": chain(), "keyType": "gran", "crypto": "ed25519", "public": alice("ed25519"),
           "message": format!("0x{}", hex::encode(message))})
}

fn seal_request(header: &[u8], message: &[u8]) -> Value {
    json!({"chain": chain(), "keyType": "babe", "crypto": "sr25519", "public": alice("sr25519"),
           "message": format!("0x{}", hex::encode(message)),
           "context": {"babeSeal": {"header": format!("0x{}", hex::encode(header))}}})
}

/// The JSON-RPC error code in an HTTP response, if any.
fn error_code(response: &str) -> Option<i64> {
    let body = response.split("\r\n\r\n").nth(1)?;
    let v: Value = serde_json::from_str(body.trim()).ok()?;
    v["error"]["code"].as_i64()
}

fn expect_error(signer: &Signer, body: &[u8], code: i64, needle: &str) {
    let response = raw_post(signer, body, true).expect("post");
    assert_eq!(error_code(&response), Some(code), "wanted code {code} in {response}");
    assert!(response.contains(needle), "wanted {needle:?} in {response}");
}

#[test]
fn bad_input_is_refused_clearly_and_consumes_no_claim() {
    let dir = tempfile::tempdir().expect("tempdir");
    let signer = Signer::start(dir.path(), 0);
    let slot = current_slot();
    let vote = grandpa_payload(false, 0xaa, 9, 11, 4);
    let header = babe_header(slot, 9, 1);
    let header_bytes = codec::Encode::encode(&header);

    expect_error(&signer, b"{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": ", -32700, "Parse error");
    let wrong_types = json!({"jsonrpc": "2.0", "id": 1, "method": "exclave_sign", "params": [42]});
    expect_error(&signer, &serde_json::to_vec(&wrong_types).expect("json"), -32602, "Invalid params");
    let mut unknown_field = vote_request(&vote);
    unknown_field["extra"] = json!(true);
    expect_error(&signer, &sign_body(unknown_field), -32602, "unknown field");
    let mut unknown_type = vote_request(&vote);
    unknown_type["keyType"] = json!("zzzz");
    expect_error(&signer, &sign_body(unknown_type), 1006, "not supported");
    let mut unknown_key = vote_request(&vote);
    unknown_key["public"] = json!(format!("0x{}", hex::encode([3u8; 32])));
    expect_error(&signer, &sign_body(unknown_key), 1003, "holds no gran key");
    let mut trailing = vote.clone();
    trailing.push(0);
    expect_error(&signer, &sign_body(vote_request(&trailing)), 1002, "expected exactly 53 bytes");
    let mut other_chain = vote_request(&vote);
    other_chain["chain"] = json!(format!("0x{}", hex::encode([1u8; 32])));
    expect_error(&signer, &sign_body(other_chain), 1002, "is not the chain this signer serves");
    expect_error(&signer, &sign_body(seal_request(&header_bytes, &[7u8; 32])), 1002, "blake2_256 of the pre-seal header");
    let mut bare = seal_request(&header_bytes, &pre_hash(&header));
    bare.as_object_mut().expect("object").remove("context");
    expect_error(&signer, &sign_body(bare), 1002, "opaque 32-byte hashes are never signed");

    let oversized = sign_body(vote_request(&vec![0u8; 300 * 1024]));
    let response = raw_post(&signer, &oversized, true).expect("post");
    assert!(response.starts_with("HTTP/1.1 413"), "oversized body: {}", &response[..response.len().min(200)]);

    // A client without a certificate gets nothing: the handshake fails or the connection closes.
    match raw_post(&signer, &sign_body(vote_request(&vote)), false) {
        Err(_) => {}
        Ok(r) => assert!(!r.contains("jsonrpc"), "a client without a certificate got an answer: {r}"),
    }

    // Nothing above consumed the duties: the real vote and seal still sign.
    let ok = raw_post(&signer, &sign_body(vote_request(&vote)), true).expect("post");
    assert!(ok.contains("\"outcome\":\"signed\""), "{ok}");
    let ok = raw_post(&signer, &sign_body(seal_request(&header_bytes, &pre_hash(&header))), true).expect("post");
    assert!(ok.contains("\"outcome\":\"signed\""), "{ok}");
    // And every refusal is in the signing log with its reason.
    let refused = signer.log().into_iter().filter(|r| r["decision"] == "refused").count();
    assert_eq!(refused, 6, "unknown key type, unknown key, trailing bytes, chain, hash mismatch, bare hash");
}

/// A refused request is recorded with its message's hash and reason, not the message or its
/// pre-image: ten refused 200 KB requests (a 100 KB header, hex) add ten short lines to the
/// signing log, not 2 MB.
#[test]
fn refused_requests_are_logged_by_hash_not_by_content() {
    let dir = tempfile::tempdir().expect("tempdir");
    let signer = Signer::start(dir.path(), 0);
    let log = dir.path().join("signing.log");
    let before = std::fs::metadata(&log).expect("log").len();
    let big_header = vec![0x5au8; 100 * 1024];
    for i in 0..10u8 {
        // A pre-seal header whose hash is not the message: refused (1002) after decoding.
        expect_error(&signer, &sign_body(seal_request(&big_header, &[i; 32])), 1002, "");
    }
    let grown = std::fs::metadata(&log).expect("log").len() - before;
    assert!(grown < 10 * 1024, "ten refused 200 KB requests grew the log by {grown} bytes");
    let refused: Vec<_> = signer.log().into_iter().filter(|r| r["decision"] == "refused").collect();
    assert_eq!(refused.len(), 10);
    for (i, r) in refused.iter().enumerate() {
        assert!(r.get("message").is_none() && r.get("preimage").is_none(), "{r}");
        let want = hex::encode(sp_crypto_hashing::blake2_256(&[i as u8; 32]));
        assert_eq!(r["payloadHash"].as_str().map(|h| h.trim_start_matches("0x")), Some(want.as_str()), "{r}");
        assert!(r["reason"].as_str().is_some_and(|w| !w.is_empty()), "{r}");
    }
}
