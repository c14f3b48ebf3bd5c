//! Deny by default, end to end: a client may do only what its `[[clients]]` entry grants; every
//! refusal is `unauthorised` (1005) naming the client and the missing grant, is counted in
//! `exclave_denied_total`, and a refused signature request is in the signing log. `serve --dev`
//! issues a second certificate, `dev-stranger`, that no grant names.

use crate::common::*;
use exclave_protocol::{Bytes, ErrorKind, ExclaveApiClient, ExclaveError, SignRequest, WireCrypto, WireKeyType};
use exclave_signer::grants::{default_operations, ClientConfig};
use sp_core::{ed25519, Pair};

fn gran(suri: &str) -> Vec<u8> {
    ed25519::Pair::from_string(suri, None).expect("dev key").public().0.to_vec()
}

/// A round-`round` prevote by the gran key `public`.
fn vote_by(public: &[u8], round: u64) -> SignRequest {
    SignRequest { public: Bytes(public.to_vec()), ..vote_request(false, 0xaa, round) }
}

/// The Exclave error of a failed call: its kind and message.
fn refusal<T: std::fmt::Debug>(answer: Result<T, jsonrpsee::core::ClientError>) -> (ErrorKind, String) {
    match answer {
        Err(jsonrpsee::core::ClientError::Call(obj)) => {
            let e = ExclaveError::from_object(&obj).expect("an Exclave error");
            (e.kind, e.message)
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn a_dev_stranger_certificate_is_refused_everything_but_status() {
    let dir = tempfile::tempdir().expect("tempdir");
    let signer = Signer::start(dir.path(), 0);
    let tls = dir.path().join("tls");
    let stranger = rpc_client(
        &signer.rpc,
        &exclave_keystore_remote::TlsFiles { ca: tls.join("ca.pem"), cert: tls.join("stranger.pem"), key: tls.join("stranger.key") },
    );
    let node = rpc_client(&signer.rpc, &signer.tls());
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let alice = gran("//Alice");
        let (kind, message) = refusal(stranger.sign(vote_by(&alice, 1)).await);
        assert_eq!(kind, ErrorKind::Unauthorised);
        assert!(message.contains("\"dev-stranger\"") && message.contains("[[clients]]"), "{message}");
        assert_eq!(refusal(stranger.keys(WireKeyType(*b"gran")).await).0, ErrorKind::Unauthorised);
        assert!(!stranger.has_keys(vec![(Bytes(alice.clone()), WireKeyType(*b"gran"))]).await.expect("hasKeys"));
        assert_eq!(stranger.status().await.expect("status").client, "dev-stranger", "status needs no grant");
        // The dev node may do everything.
        assert!(node.sign(vote_by(&alice, 1)).await.is_ok(), "dev-node signs the duty the stranger could not");
    });
    let log = signer.log();
    let refused = log.iter().find(|r| r["client"] == "dev-stranger").expect("the stranger's refusal is in the signing log");
    assert_eq!(refused["decision"], "refused");
    assert!(refused["reason"].as_str().is_some_and(|r| r.contains("dev-stranger")), "{refused}");
    assert_eq!(metric(&signer.metrics, r#"exclave_denied_total{client="unconfigured",operation="sign"}"#), 1.0);
}

#[test]
fn each_node_uses_only_its_validators_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = exclave_signer::tls::DevPki::ensure_with_nodes(dir.path(), &["alice-1", "bob-1"]).expect("pki");
    let keystore = dir.path().join("keystore");
    import_key(&keystore, "gran", "//Alice");
    import_key(&keystore, "gran", "//Bob");
    let (alice, bob) = (gran("//Alice"), gran("//Bob"));
    let node = |name: &str, keys: &[&[u8]]| ClientConfig {
        name: name.into(),
        sha256: None,
        keys: keys.iter().map(|k| format!("0x{}", hex::encode(k))).collect(),
        validators: Vec::new(),
        operations: default_operations(),
        key_types: vec!["gran".into()],
        key_management: false,
    };
    let mut cfg = TestConfig::new(dir.path(), "signer-a");
    cfg.0.lease.enabled = false;
    // bob-1 is pinned to a certificate it does not have.
    cfg.0.clients = vec![node("alice-1", &[&alice]), ClientConfig { sha256: Some("ab".repeat(32)), ..node("bob-1", &[&bob]) }];
    let signer = Signer::spawn(&["serve".into(), "--config".into(), cfg.write().display().to_string()], dir.path());
    let client_of = |name: &str| {
        let (cert, key) = pki.node_files(name);
        rpc_client(&signer.rpc, &exclave_keystore_remote::TlsFiles { ca: pki.ca.clone(), cert, key })
    };
    let (alice_1, bob_1) = (client_of("alice-1"), client_of("bob-1"));
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        assert!(alice_1.sign(vote_by(&alice, 1)).await.is_ok(), "alice-1 signs with alice's key");
        let (kind, message) = refusal(alice_1.sign(vote_by(&bob, 1)).await);
        assert_eq!(kind, ErrorKind::Unauthorised);
        assert!(message.contains("\"alice-1\"") && message.contains(&hex::encode(&bob)), "{message}");
        let listed = alice_1.keys(WireKeyType(*b"gran")).await.expect("keys");
        assert_eq!(listed, vec![Bytes(alice.clone())], "alice-1 lists only alice's key");
        assert!(!alice_1.has_keys(vec![(Bytes(bob.clone()), WireKeyType(*b"gran"))]).await.expect("hasKeys"));
        let (kind, message) = refusal(alice_1.generate_key(WireKeyType(*b"gran"), WireCrypto::Ed25519, None).await);
        assert_eq!(kind, ErrorKind::Unauthorised);
        assert!(message.contains("key_management"), "{message}");
        let (kind, message) = refusal(bob_1.sign(vote_by(&bob, 1)).await);
        assert_eq!(kind, ErrorKind::Unauthorised, "bob-1's certificate is not the pinned one");
        assert!(message.contains("SHA-256"), "{message}");
    });
    assert_eq!(metric(&signer.metrics, r#"exclave_denied_total{client="alice-1",operation="sign"}"#), 1.0);
}

#[test]
fn a_config_that_grants_nothing_does_not_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = TestConfig::new(dir.path(), "signer-a");
    cfg.0.clients.clear();
    let out = exclave().args(["serve", "--config"]).arg(cfg.write()).output().expect("run");
    assert_eq!(out.status.code(), Some(64), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no [[clients]] section"), "{stderr}");
}
