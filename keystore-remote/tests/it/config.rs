//! What `RemoteKeystore::new` refuses: no URL, https without TLS files, plain http off
//! loopback, unreadable or empty TLS files. Building connects to nothing.

use crate::{assert_rows, fake_signer::KeystoreBuilder};
use exclave_keystore_remote::{RemoteError, TlsFiles};
use std::path::Path;

/// `None`: accepted; `Some(text)`: refused with a configuration error containing `text`.
type Outcome = Option<String>;

fn outcome(builder: KeystoreBuilder) -> Outcome {
    match builder.try_build() {
        Ok(_) => None,
        Err(RemoteError::Config(message)) => Some(message),
        Err(other) => Some(format!("not a configuration error: {other}")),
    }
}

fn files(dir: &Path, ca: &str, cert: &str, key: &str) -> TlsFiles {
    TlsFiles { ca: dir.join(ca), cert: dir.join(cert), key: dir.join(key) }
}

#[test]
fn new_refuses_what_cannot_work() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    for name in ["empty-ca.pem", "empty-cert.pem", "empty-key.pem"] {
        std::fs::write(dir.path().join(name), b"").expect("write an empty PEM file");
    }
    let missing = files(dir.path(), "missing-ca.pem", "missing-cert.pem", "missing-key.pem");
    let empty = files(dir.path(), "empty-ca.pem", "empty-cert.pem", "empty-key.pem");
    let rows: Vec<(&str, KeystoreBuilder, Option<String>)> = vec![
        ("no URL", KeystoreBuilder::new(), Some("no signer URL given".into())),
        ("http on 127.0.0.1", KeystoreBuilder::new().url("http://127.0.0.1:9955"), None),
        ("http on localhost", KeystoreBuilder::new().url("http://localhost:9955"), None),
        ("http on [::1]", KeystoreBuilder::new().url("http://[::1]:9955"), None),
        (
            "http off loopback",
            KeystoreBuilder::new().url("http://10.0.0.7:9955"),
            Some("plain http is only for dev signers on loopback".into()),
        ),
        (
            "a second URL off loopback",
            KeystoreBuilder::new().url("http://127.0.0.1:9955").url("http://signer.example:9955"),
            Some("http://signer.example:9955: plain http is only for dev signers on loopback".into()),
        ),
        (
            "https without TLS files",
            KeystoreBuilder::new().url("https://signer.example:9955"),
            Some("https needs CA, client cert and key".into()),
        ),
        (
            "missing CA file",
            KeystoreBuilder::new().url("https://signer.example:9955").tls(missing.clone()),
            Some(missing.ca.display().to_string()),
        ),
        (
            "empty PEM files: no private key",
            KeystoreBuilder::new().url("https://signer.example:9955").tls(empty.clone()),
            Some(format!("{}: no private key", empty.key.display())),
        ),
    ];
    let mut failures = Vec::new();
    for (name, builder, want) in rows {
        let got = outcome(builder);
        let ok = match (&got, &want) {
            (None, None) => true,
            (Some(message), Some(text)) => message.contains(text.as_str()),
            _ => false,
        };
        if !ok {
            failures.push(format!("{name}: got {got:?}, expected {want:?}"));
        }
    }
    assert_rows("config", &failures);
}

/// Regression (found by this suite): the loopback check was a string prefix, so a host name that
/// merely starts with `127.` passed and plain, unauthenticated http was allowed to whatever that
/// name resolves to. Loopback is now decided by parsing (`exclave_policies::is_loopback_endpoint`).
#[test]
fn plain_http_to_a_host_name_starting_with_127_is_refused() {
    let got = outcome(KeystoreBuilder::new().url("http://127.0.0.1.attacker.example:9955"));
    assert!(
        got.is_some_and(|m| m.contains("plain http is only for dev signers on loopback")),
        "accepted plain http to a non-loopback host name"
    );
}
