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

/// With `listen.crl`, a client certificate the CA revoked fails the handshake (and is counted);
/// the CA's other certificates are served.
#[test]
fn a_revoked_client_certificate_fails_the_handshake() {
    use rcgen::{
        BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyIdMethod, KeyPair,
        KeyUsagePurpose, RevokedCertParams, SerialNumber,
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let tls = dir.path().join("tls");
    std::fs::create_dir_all(&tls).expect("tls dir");
    let write =
        |name: &str, data: String, mode: u32| exclave_signer::tls::write_file(&tls.join(name), data.as_bytes(), mode).expect("write");
    let ca_key = KeyPair::generate().expect("key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca_params.distinguished_name.push(DnType::CommonName, "test CA");
    let ca = ca_params.self_signed(&ca_key).expect("CA");
    let issue = |cn: &str, sans: Vec<String>, usage: ExtendedKeyUsagePurpose, serial: u64| {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(sans).expect("params");
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![usage];
        params.serial_number = Some(SerialNumber::from(serial));
        (params.signed_by(&key, &ca, &ca_key).expect("cert").pem(), key.serialize_pem())
    };
    write("ca.pem", ca.pem(), 0o644);
    let (server, server_key) = issue("signer", vec!["localhost".into(), "127.0.0.1".into()], ExtendedKeyUsagePurpose::ServerAuth, 10);
    write("server.pem", server, 0o644);
    write("server.key", server_key, 0o600);
    for (name, serial) in [("alice-1", 1), ("alice-2", 2)] {
        let (cert, key) = issue(name, vec![], ExtendedKeyUsagePurpose::ClientAuth, serial);
        write(&format!("node-{name}.pem"), cert, 0o644);
        write(&format!("node-{name}.key"), key, 0o600);
    }
    let crl = CertificateRevocationListParams {
        this_update: rcgen::date_time_ymd(2026, 1, 1),
        next_update: rcgen::date_time_ymd(2036, 1, 1),
        crl_number: SerialNumber::from(1u64),
        issuing_distribution_point: None,
        revoked_certs: vec![RevokedCertParams {
            serial_number: SerialNumber::from(2u64),
            revocation_time: rcgen::date_time_ymd(2026, 6, 1),
            reason_code: None,
            invalidity_date: None,
        }],
        key_identifier_method: KeyIdMethod::Sha256,
    }
    .signed_by(&ca, &ca_key)
    .expect("CRL");
    write("crl.pem", crl.pem().expect("CRL PEM"), 0o644);
    let cfg = TestConfig::new(dir.path(), "signer-a").crl(tls.join("crl.pem")).write();
    let signer = Signer::spawn(&["serve".into(), "--config".into(), cfg.display().to_string()], dir.path());
    let status_as = |name: &str| {
        let body = br#"{"jsonrpc":"2.0","id":1,"method":"exclave_status","params":[]}"#;
        raw_request(&signer, &post_request(body), Some((tls.join(format!("node-{name}.pem")), tls.join(format!("node-{name}.key")))), None)
    };
    assert!(status_as("alice-1").is_ok_and(|r| r.contains("\"alice-1\"")), "alice-1 is served");
    let revoked = status_as("alice-2");
    assert!(!revoked.as_ref().is_ok_and(|r| r.contains("storeId")), "the revoked alice-2 was served: {revoked:?}");
    assert_eq!(signer.transport_refusals("handshake-failed"), 1);
}

/// A client over its refused-request budget (`audit.refused_per_client_per_minute`, 6 here) is
/// still answered with its refusal every time, but only the budget's worth of refusals reach
/// the signing log; the rest are counted in `exclave_refusals_unlogged_total` and summed into
/// the client's next logged record. Other clients' records are not affected.
#[test]
fn refusals_past_a_clients_budget_are_answered_but_not_logged() {
    let dir = tempfile::tempdir().expect("tempdir");
    exclave_signer::tls::DevPki::ensure(dir.path()).expect("pki");
    import_key(&dir.path().join("keystore"), "gran", "//Alice");
    let mut cfg = TestConfig::new(dir.path(), "signer-a");
    cfg.0.audit.refused_per_client_per_minute = 6;
    let signer = Signer::spawn(&["serve".into(), "--config".into(), cfg.write().display().to_string()], dir.path());
    let tls = dir.path().join("tls");
    let stranger = rpc_client(
        &signer.rpc,
        &exclave_keystore_remote::TlsFiles { ca: tls.join("ca.pem"), cert: tls.join("stranger.pem"), key: tls.join("stranger.key") },
    );
    let node = rpc_client(&signer.rpc, &signer.tls());
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let alice = gran("//Alice");
    let started = std::time::Instant::now();
    rt.block_on(async {
        for round in 0..16 {
            assert_eq!(refusal(stranger.sign(vote_by(&alice, round)).await).0, ErrorKind::Unauthorised, "round {round}");
        }
        assert!(node.sign(vote_by(&alice, 1)).await.is_ok(), "the granted node signs and is logged as ever");
    });
    assert!(started.elapsed() < std::time::Duration::from_secs(9), "too slow to test a 6-a-minute budget: {:?}", started.elapsed());
    let stranger_records = |log: &[serde_json::Value]| log.iter().filter(|r| r["client"] == "dev-stranger").cloned().collect::<Vec<_>>();
    assert_eq!(stranger_records(&signer.log()).len(), 6, "the budget's worth of refusals logged");
    assert!(signer.log().iter().any(|r| r["client"] == "dev-node" && r["decision"] == "signed"));
    assert_eq!(metric(&signer.metrics, r#"exclave_refusals_unlogged_total{client="unconfigured"}"#), 10.0);
    // One token back after 10 s: the next refusal is logged, carrying the 10 not logged.
    std::thread::sleep(std::time::Duration::from_millis(10_500));
    rt.block_on(async { refusal(stranger.sign(vote_by(&alice, 99)).await) });
    let records = stranger_records(&signer.log());
    assert_eq!(records.len(), 7);
    assert_eq!(records[6]["unloggedRefusals"], 10, "{}", records[6]);
}
