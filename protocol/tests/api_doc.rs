//! docs/api.md stays true to the code: every JSON example in it deserializes into the wire
//! type it claims, every request names a real method with well-typed parameters, every error
//! code is one of ours, and every method is documented.

use exclave_protocol::{
    Bytes, ErrorKind, LeaseState, SignRequest, SignResponse, StatusResponse, VersionResponse, VrfRequest, VrfSignResponse, WireCrypto,
    WireKeyType,
};
use serde::de::DeserializeOwned;
use serde_json::Value;

const METHODS: [&str; 11] =
    ["version", "status", "publicKeys", "keys", "hasKeys", "generateKey", "insertKey", "sign", "vrfSign", "vrfPreOutput", "lease"];

fn blocks(doc: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut lines = doc.lines();
    while let Some(line) = lines.next() {
        if let Some(tag) = line.strip_prefix("```json") {
            let body: Vec<&str> = lines.by_ref().take_while(|l| !l.starts_with("```")).collect();
            out.push((tag.trim().to_string(), body.join("\n")));
        }
    }
    out
}

fn parse<T: DeserializeOwned>(v: &Value, what: &str) {
    if let Err(e) = serde_json::from_value::<T>(v.clone()) {
        panic!("{what}: {e}\n{v}");
    }
}

fn check_request(v: &Value) {
    let method = v["method"].as_str().expect("method").strip_prefix("exclave_").expect("exclave_ namespace");
    let p = v["params"].clone();
    match method {
        "lease" => parse::<(Vec<(Bytes, WireKeyType)>,)>(&p, method),
        "version" | "status" => assert_eq!(p, Value::Array(vec![])),
        "publicKeys" => parse::<(WireKeyType, WireCrypto)>(&p, method),
        "keys" => parse::<(WireKeyType,)>(&p, method),
        "hasKeys" => parse::<(Vec<(Bytes, WireKeyType)>,)>(&p, method),
        "generateKey" => parse::<(WireKeyType, WireCrypto, Option<String>)>(&p, method),
        "insertKey" => parse::<(WireKeyType, String, Bytes)>(&p, method),
        "sign" => parse::<(SignRequest,)>(&p, method),
        "vrfSign" | "vrfPreOutput" => parse::<(VrfRequest,)>(&p, method),
        other => panic!("docs/api.md documents an unknown method {other}"),
    }
}

fn check_response(ty: &str, v: &Value) {
    match ty {
        "VersionResponse" => parse::<VersionResponse>(v, ty),
        "StatusResponse" => parse::<StatusResponse>(v, ty),
        "Vec<Bytes>" => parse::<Vec<Bytes>>(v, ty),
        "Bytes" => parse::<Bytes>(v, ty),
        "bool" => parse::<bool>(v, ty),
        "()" => parse::<()>(v, ty),
        "SignResponse" => parse::<SignResponse>(v, ty),
        "VrfSignResponse" => parse::<VrfSignResponse>(v, ty),
        "Vec<LeaseState>" => parse::<Vec<LeaseState>>(v, ty),
        other => panic!("unknown response type {other} in docs/api.md"),
    }
}

#[test]
fn every_example_in_the_api_doc_matches_the_wire_types() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/api.md")).expect("docs/api.md");
    let blocks = blocks(&doc);
    assert!(blocks.len() >= 20, "expected the API doc's examples, found {}", blocks.len());
    for (tag, body) in &blocks {
        let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("invalid JSON in docs/api.md ({tag}): {e}\n{body}"));
        let mut words = tag.split_whitespace();
        match (words.next(), words.next()) {
            (Some("request"), None) => check_request(&v),
            (Some("response"), Some(ty)) => check_response(ty, &v),
            (Some("error"), None) => {
                let code = v["error"]["code"].as_i64().expect("code") as i32;
                assert!(ErrorKind::from_code(code).is_some(), "unknown code {code}");
            }
            _ => panic!("untagged JSON block in docs/api.md: ```json {tag}"),
        }
    }
    for m in METHODS {
        assert!(doc.contains(&format!("## exclave_{m}\n")), "exclave_{m} is not documented");
        assert!(blocks.iter().any(|(t, b)| t == "request" && b.contains(&format!("\"exclave_{m}\""))), "no example for exclave_{m}");
    }
    for kind in ErrorKind::ALL {
        assert!(doc.contains(&format!("| {} | `{}` |", kind.code(), kind.name())), "error {} is not documented", kind.name());
    }
}

#[test]
fn wire_types_reject_unknown_fields_and_bad_hex() {
    let ok = r#"{"chain":"0x00","keyType":"gran","crypto":"ed25519","public":"0x01","message":"0x02"}"#;
    let req: SignRequest = serde_json::from_str(ok).expect("minimal request");
    assert_eq!(req.context, exclave_protocol::SignContext::None);
    assert!(!req.prehashed);
    for bad in [
        r#"{"chain":"0x00","keyType":"gran","crypto":"ed25519","public":"0x01","message":"0x02","extra":1}"#,
        r#"{"chain":"00","keyType":"gran","crypto":"ed25519","public":"0x01","message":"0x02"}"#,
        r#"{"chain":"0x0g","keyType":"gran","crypto":"ed25519","public":"0x01","message":"0x02"}"#,
        r#"{"chain":"0x00","keyType":"grand","crypto":"ed25519","public":"0x01","message":"0x02"}"#,
        r#"{"chain":"0x00","keyType":"gran","crypto":"rsa","public":"0x01","message":"0x02"}"#,
    ] {
        assert!(serde_json::from_str::<SignRequest>(bad).is_err(), "accepted {bad}");
    }
    let kt: WireKeyType = "0x62616265".parse().expect("hex key type");
    assert_eq!(kt.to_string(), "babe");
}
