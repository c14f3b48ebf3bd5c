//! The operator's path: `exclave keys import|list`, `exclave serve --config` with mutual TLS,
//! strict config errors (exit 64, naming the field), the metrics endpoints, and the refusal of
//! dev mode off loopback.

use crate::common::*;
use sp_core::{crypto::KeyTypeId, ed25519, Pair};
use sp_keystore::Keystore;
use std::{
    os::unix::fs::PermissionsExt,
    process::{Command, Stdio},
};

#[test]
fn unknown_config_key_exits_64_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = write_config(dir.path(), "insecure_no_claims = true");
    let out = exclave().args(["serve", "--config"]).arg(&cfg).output().expect("run");
    assert_eq!(out.status.code(), Some(64), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown field") && stderr.contains("insecure_no_claims"), "{stderr}");
}

#[test]
fn dev_mode_refuses_non_loopback() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = exclave().args(["serve", "--dev", "--listen", "0.0.0.0:0", "--data-dir"]).arg(dir.path()).output().expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("only bind loopback"), "{out:?}");
}

#[test]
fn imported_key_serves_over_mutual_tls_with_metrics() {
    let dir = tempfile::tempdir().expect("tempdir");
    exclave_signer::tls::DevPki::ensure(dir.path()).expect("pki");
    let keystore = dir.path().join("keystore");
    let out = keys_import_gran(&keystore, &[], b"//Alice\n");
    assert!(out.status.success(), "{out:?}");
    let alice = ed25519::Pair::from_string("//Alice", None).expect("dev").public();
    assert!(String::from_utf8_lossy(&out.stdout).contains(&hex::encode(alice.0)), "import names the public key");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("Alice"), "import never echoes the secret");
    let file = keystore.join(format!("{}{}", hex::encode(b"gran"), hex::encode(alice.0)));
    assert_eq!(std::fs::metadata(&file).expect("key file").permissions().mode() & 0o777, 0o600);
    let listed = exclave().args(["keys", "list", "--keystore"]).arg(&keystore).output().expect("list");
    assert!(String::from_utf8_lossy(&listed.stdout).contains(&format!("gran  ed25519  0x{}", hex::encode(alice.0))));

    let cfg = write_config(dir.path(), "");
    let signer = Signer::spawn(&["serve".into(), "--config".into(), cfg.display().to_string()], dir.path());
    let ks = signer.keystore();
    let vote = grandpa_payload(false, 1, 2, 3, 4);
    let sig = ks.ed25519_sign(KeyTypeId(*b"gran"), &alice, &vote).expect("sign").expect("signed");
    assert!(ed25519::Pair::verify(&sig, &vote, &alice));
    // No dev shortcuts outside --dev: seeded key generation is refused.
    assert!(ks.ed25519_generate_new(KeyTypeId(*b"gran"), Some("//Bob")).is_err());

    assert_eq!(http_get(&format!("{}/health", signer.metrics)).0, 200);
    assert_eq!(http_get(&format!("{}/ready", signer.metrics)).0, 200);
    let (status, metrics) = http_get(&format!("{}/metrics", signer.metrics));
    assert_eq!(status, 200);
    assert!(
        metrics.contains(r#"exclave_requests_total{method="sign",key_type="gran",duty="grandpa_vote",outcome="signed"} 1"#),
        "{metrics}"
    );
    assert!(metrics.contains("exclave_claim_seconds_count 1"), "{metrics}");
    assert!(!metrics.contains("Alice"), "no secret in metrics");
}

/// The OpenSSL commands in docs/operations.md produce a PKI the signer accepts, and the client
/// certificate's common name becomes the client identity.
#[test]
fn openssl_pki_works() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/operations.md")).expect("doc");
    let section = doc.split("## TLS").nth(1).expect("TLS section");
    let script = section.split("```sh\n").nth(1).and_then(|s| s.split("```").next()).expect("sh block");
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new("bash").args(["-euo", "pipefail", "-c", script]).current_dir(dir.path()).output().expect("bash");
    assert!(out.status.success(), "the documented openssl commands failed: {}", String::from_utf8_lossy(&out.stderr));
    let tls = dir.path().join("tls");
    std::fs::create_dir(&tls).expect("tls dir");
    for (from, to) in [("ca.pem", "ca.pem"), ("signer.pem", "server.pem"), ("signer.key", "server.key")] {
        std::fs::copy(dir.path().join(from), tls.join(to)).expect("copy");
    }
    let cfg = write_config(dir.path(), "");
    let signer = Signer::spawn(&["serve".into(), "--config".into(), cfg.display().to_string()], dir.path());
    let files = exclave_keystore_remote::TlsFiles {
        ca: dir.path().join("ca.pem"),
        cert: dir.path().join("alice-1.pem"),
        key: dir.path().join("alice-1.key"),
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
    let status = rt.block_on(async {
        use exclave_protocol::ExclaveApiClient;
        let client = rpc_client(&signer.rpc, &files);
        client.status().await.expect("status")
    });
    assert_eq!(status.client, "alice-1");
    assert_eq!(status.signer_id, "signer-a");
    assert!(status.store_ready);
}

/// Two signer processes sharing one real 3-member etcd cluster: a claim made through one
/// excludes the other, whose refusal names the winner; and a remote etcd endpoint is refused
/// unless explicitly marked insecure.
#[test]
fn two_signers_on_one_etcd_cluster_exclude_each_other() {
    let cluster = exclave_claims::etcd::local_cluster::LocalCluster::start(3);
    let claims = etcd_claims(&cluster.endpoints(), 2000);
    let dir = tempfile::tempdir().expect("tempdir");
    let signers = spawn_signers(dir.path(), &["signer-a", "signer-b"], &claims);
    let alice = ed25519::Pair::from_string("//Alice", None).expect("dev").public();
    let gran = KeyTypeId(*b"gran");
    let (a, b) = (signers[0].keystore(), signers[1].keystore());
    for round in 1..=20u64 {
        let first = grandpa_payload(true, 1, 5, round, 9);
        let sig = a.ed25519_sign(gran, &alice, &first).expect("signer-a signs").expect("signed");
        // The identical request through the other signer is the same data: the same signature.
        assert_eq!(b.ed25519_sign(gran, &alice, &first).expect("same data").expect("signed"), sig);
        let err = b.ed25519_sign(gran, &alice, &grandpa_payload(true, 2, 5, round, 9)).expect_err("conflict");
        assert!(err.to_string().contains("signer-a/dev-node"), "the refusal names the winner: {err}");
    }

    // Loopback is parsed, not prefixed: a host name starting with "127." is remote.
    for remote in ["http://10.9.9.9:2379", "http://127.evil.example:2379"] {
        let cfg = TestConfig::new(dir.path(), "signer-c").claims(etcd_claims(&[remote.into()], 2000)).write();
        let out = exclave().args(["serve", "--config"]).arg(&cfg).output().expect("run");
        assert_eq!(out.status.code(), Some(64), "{remote}: {out:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("insecure_plaintext_etcd"), "{remote}: {out:?}");
    }
}

/// `backend = "tikv"` is checked like etcd: PD endpoints off loopback need TLS or an explicit
/// `insecure_plaintext_tikv`, and TLS files that do not exist are named.
#[test]
fn tikv_config_refuses_plaintext_off_loopback_and_missing_tls_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    exclave_signer::tls::DevPki::ensure(dir.path()).expect("pki");
    let tikv = |endpoints: &[&str], tls: bool| {
        let mut c = ClaimsConfig::new(Backend::Tikv);
        c.endpoints = endpoints.iter().map(|e| (*e).to_string()).collect();
        c.tls =
            tls.then(|| StoreTls { ca: "/nonexistent/ca.pem".into(), cert: "/nonexistent/c.pem".into(), key: "/nonexistent/c.key".into() });
        c
    };
    let cases = [
        (tikv(&["10.9.9.9:2379"], false), "insecure_plaintext_tikv"),
        (tikv(&[], false), "PD endpoints"),
        (tikv(&["10.9.9.9:2379"], true), "claims.tls.ca"),
    ];
    for (claims, named) in cases {
        let claims = TestConfig::new(dir.path(), "signer-t").claims(claims);
        let cfg = claims.write();
        let claims = claims.toml();
        let out = exclave().args(["serve", "--config"]).arg(&cfg).output().expect("run");
        assert_eq!(out.status.code(), Some(64), "{claims}: {out:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains(named), "{claims}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

/// SIGTERM (what systemd, `docker stop` and Kubernetes send) stops the signer as ctrl-c does:
/// exit 0, and the signing log ends with the signed `stop` checkpoint.
#[test]
fn sigterm_stops_cleanly_with_the_closing_checkpoint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut signer = Signer::start(dir.path(), 0);
    let alice = ed25519::Pair::from_string("//Alice", None).expect("dev").public();
    let ks = signer.keystore();
    ks.ed25519_sign(KeyTypeId(*b"gran"), &alice, &grandpa_payload(true, 1, 5, 1, 9)).expect("signs").expect("signed");
    let pid = signer.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().expect("kill").success());
    let status = signer.child.wait().expect("wait");
    assert!(status.success(), "SIGTERM must end in a clean exit: {status:?}");
    let log = std::fs::read_to_string(dir.path().join("signing.log")).expect("log");
    let last: serde_json::Value = serde_json::from_str(log.lines().last().expect("a line")).expect("json");
    assert_eq!(last["checkpoint"]["reason"], "stop", "the log ends with the closing checkpoint: {log}");
}

/// The systemd unit in docs/operations.md verifies (`systemd-analyze verify`, with `ExecStart`
/// pointed at the binary under test): no unknown directive, no error.
#[test]
fn the_systemd_unit_verifies() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/operations.md")).expect("doc");
    let section = doc.split("## Running under systemd").nth(1).expect("systemd section");
    let unit = section.split("```ini\n").nth(1).and_then(|s| s.split("```").next()).expect("ini block");
    assert!(unit.contains("ExecStart=/usr/local/bin/exclave serve"), "{unit}");
    let unit = unit.replace("/usr/local/bin/exclave", env!("CARGO_BIN_EXE_exclave"));
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("exclave.service");
    std::fs::write(&path, unit).expect("write unit");
    let out = Command::new("systemd-analyze").arg("verify").arg(&path).output().expect("systemd-analyze (Debian's systemd package)");
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "systemd-analyze verify failed: {said}");
    let about_unit: Vec<&str> = said.lines().filter(|l| l.contains("exclave.service")).collect();
    assert!(about_unit.is_empty(), "systemd-analyze has remarks on the unit: {about_unit:?}");
}

/// `/ready` fails, naming the figures, while the signing log's filesystem has less free than
/// `audit.min_free_bytes`; with the default it is ready.
#[test]
fn ready_fails_before_the_signing_log_disk_fills() {
    let dir = tempfile::tempdir().expect("tempdir");
    exclave_signer::tls::DevPki::ensure(dir.path()).expect("pki");
    import_key(&dir.path().join("keystore"), "gran", "//Alice");
    let ready = |min_free: Option<u64>, id: &str| {
        let mut cfg = TestConfig::new(dir.path(), id).own_log();
        if let Some(bytes) = min_free {
            cfg = cfg.min_free_bytes(bytes);
        }
        let signer = Signer::spawn(&["serve".into(), "--config".into(), cfg.write().display().to_string()], dir.path());
        http_get(&format!("http://{}/ready", signer.metrics))
    };
    let (status, body) = ready(None, "signer-a");
    assert_eq!(status, 200, "{body}");
    let (status, body) = ready(Some(u64::MAX / 2), "signer-b");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("bytes free, below audit.min_free_bytes"), "{body}");
}

/// The compose demo's signer configs are valid configs for this signer (strict parse and
/// validation: unknown keys, a missing `[[clients]]`, bad grants all fail here, not in a container).
#[test]
fn the_compose_signer_configs_are_valid() {
    for name in ["signer-a.toml", "signer-b.toml"] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docker").join(name);
        let config = exclave_signer::config::Config::load(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(config.grants().is_ok(), "{name}: grants");
    }
}

/// The worked permissions config in docs/security.md is a valid config.
#[test]
fn the_worked_permissions_config_in_the_docs_is_valid() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/security.md")).expect("doc");
    let section = doc.split("## Permissions").nth(1).expect("permissions section");
    let example = section.split("```toml\n").nth(1).and_then(|s| s.split("```").next()).expect("toml block");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut base = TestConfig::new(dir.path(), "signer-a");
    base.0.clients.clear();
    let base = base.toml();
    // The base's own [lease] table gives way to the example's.
    let base: String =
        base.split("[lease]").next().expect("base").lines().filter(|l| !l.starts_with("clients = ")).collect::<Vec<_>>().join("\n");
    let path = dir.path().join("exclave.toml");
    std::fs::write(&path, format!("{base}\n{example}")).expect("write");
    let config = exclave_signer::config::Config::load(&path).unwrap_or_else(|e| panic!("{e}\n{base}\n{example}"));
    let grants = config.grants().expect("grants");
    for name in ["alice-1", "alice-2", "bob-1", "monitor"] {
        assert!(grants.knows(name), "{name}");
    }
}

/// A password-protected Substrate keystore: `exclave keys import --password-file` derives the
/// key with the password, the signer loads it with `keystore_password_file` and signs with it;
/// without the password it does not start, and says why.
#[test]
fn a_password_protected_keystore_is_loaded_with_its_password_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    exclave_signer::tls::DevPki::ensure(dir.path()).expect("pki");
    let password = dir.path().join("keystore.password");
    exclave_signer::tls::write_file(&password, b"correct horse\n", 0o600).expect("password file");
    let keystore = dir.path().join("keystore");
    let out = keys_import_gran(&keystore, &["--password-file".as_ref(), password.as_os_str()], b"//Alice");
    assert!(out.status.success(), "{out:?}");
    let protected = ed25519::Pair::from_string("//Alice", Some("correct horse")).expect("pair").public();
    assert!(String::from_utf8_lossy(&out.stdout).contains(&hex::encode(protected)), "{out:?}");

    let mut cfg = TestConfig::new(dir.path(), "signer-a");
    let without = exclave().args(["serve", "--config"]).arg(cfg.write()).output().expect("run");
    assert!(!without.status.success(), "started without the keystore password");
    assert!(String::from_utf8_lossy(&without.stderr).contains("keystore_password_file"), "{without:?}");
    cfg.0.keystore_password_file = Some(password);
    let signer = Signer::spawn(&["serve".into(), "--config".into(), cfg.write().display().to_string()], dir.path());
    let signed = signer.keystore().ed25519_sign(KeyTypeId(*b"gran"), &protected, &grandpa_payload(false, 1, 1, 1, 1)).expect("sign");
    let sig = signed.expect("signed with the password-derived key");
    assert!(<ed25519::Pair as Pair>::verify(&sig, grandpa_payload(false, 1, 1, 1, 1), &protected));
}

#[test]
fn a_keystore_encrypted_at_rest_is_converted_and_served_with_its_passphrase_from_a_file_or_a_systemd_credential() {
    let dir = tempfile::tempdir().expect("tempdir");
    exclave_signer::tls::DevPki::ensure(dir.path()).expect("pki");
    let creds = dir.path().join("credentials");
    std::fs::create_dir(&creds).expect("credentials dir");
    let passphrase = creds.join("exclave-keystore");
    exclave_signer::tls::write_file(&passphrase, b"a long random passphrase\n", 0o400).expect("passphrase file");
    // A plain keystore, as a node has it, converted in place.
    let keystore = dir.path().join("keystore");
    assert!(keys_import_gran(&keystore, &[], b"//Alice").status.success());
    let alice = ed25519::Pair::from_string("//Alice", None).expect("pair").public();
    let mut cfg = TestConfig::new(dir.path(), "signer-a");
    cfg.0.keystore_encryption =
        Some(exclave_signer::config::KeystoreEncryption { passphrase_file: Some(passphrase.clone()), passphrase_credential: None });
    let refused = exclave().args(["serve", "--config"]).arg(cfg.write()).output().expect("run");
    assert!(!refused.status.success(), "served a plaintext keystore as an encrypted one");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("exclave keys encrypt"), "{refused:?}");
    let encrypt = |verb: &str| {
        let out =
            exclave().args(["keys", verb, "--keystore"]).arg(&keystore).arg("--passphrase-file").arg(&passphrase).output().expect("run");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(encrypt("encrypt").starts_with("1 key files encrypted, 0 already"));
    for entry in std::fs::read_dir(&keystore).expect("ls") {
        let text = std::fs::read_to_string(entry.expect("entry").path()).expect("read");
        assert!(text.starts_with("-----BEGIN AGE ENCRYPTED FILE-----") && !text.contains("Alice"), "{text}");
    }
    // Without the passphrase, listing and serving are refused, naming why.
    let list = exclave().args(["keys", "list", "--keystore"]).arg(&keystore).output().expect("list");
    assert!(!list.status.success() && String::from_utf8_lossy(&list.stderr).contains("encrypted at rest"), "{list:?}");
    let plain_cfg = TestConfig::new(dir.path(), "signer-a");
    let plain = exclave().args(["serve", "--config"]).arg(plain_cfg.write()).output().expect("run");
    assert!(String::from_utf8_lossy(&plain.stderr).contains("encrypted at rest"), "{plain:?}");
    // Served with the passphrase from a file, then from a systemd credential.
    let payload = grandpa_payload(false, 1, 1, 1, 1);
    let signer = Signer::spawn(&["serve".into(), "--config".into(), cfg.write().display().to_string()], dir.path());
    let sig = signer.keystore().ed25519_sign(KeyTypeId(*b"gran"), &alice, &payload).expect("sign").expect("signed");
    assert!(<ed25519::Pair as Pair>::verify(&sig, &payload, &alice));
    drop(signer);
    cfg.0.keystore_encryption =
        Some(exclave_signer::config::KeystoreEncryption { passphrase_file: None, passphrase_credential: Some("exclave-keystore".into()) });
    let no_creds = exclave().args(["serve", "--config"]).arg(cfg.write()).env_remove("CREDENTIALS_DIRECTORY").output().expect("run");
    assert!(String::from_utf8_lossy(&no_creds.stderr).contains("CREDENTIALS_DIRECTORY"), "{no_creds:?}");
    let args = ["serve".into(), "--config".into(), cfg.write().display().to_string()];
    let signer = Signer::spawn_with_env(&args, dir.path(), &[("CREDENTIALS_DIRECTORY", &creds.display().to_string())]);
    let again = signer.keystore().ed25519_sign(KeyTypeId(*b"gran"), &alice, &payload).expect("sign").expect("signed");
    assert_eq!(again, sig, "the same vote again: the stored signature");
    drop(signer);
    assert!(encrypt("decrypt").starts_with("1 key files decrypted"));
    assert!(exclave().args(["keys", "list", "--keystore"]).arg(&keystore).output().expect("list").status.success());
}

/// `exclave keys import --key-type gran --keystore <keystore> <extra>` with `secret` on stdin.
fn keys_import_gran(keystore: &std::path::Path, extra: &[&std::ffi::OsStr], secret: &[u8]) -> std::process::Output {
    use std::io::Write;
    let mut import = exclave()
        .args(["keys", "import", "--key-type", "gran", "--keystore"])
        .arg(keystore)
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("import");
    import.stdin.take().expect("stdin").write_all(secret).expect("secret");
    import.wait_with_output().expect("import")
}
