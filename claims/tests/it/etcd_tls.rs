//! The etcd store over mutual TLS against a real etcd started with `--client-cert-auth` and
//! `auth enable` (its own PKI made here with rcgen): the signer's certificate, whose common name
//! is an etcd user granted the `exclave/` prefix, claims; a plaintext client, a client that
//! trusts another CA, and a certificate of the same CA whose user has no role are refused.

use exclave_claims::{
    etcd::{EtcdConfig, EtcdStore, EtcdTls},
    ClaimOutcome, ClaimStore,
};
use exclave_policies::{ChainId, ClaimKey, ClaimRecord, Duty, GrandpaStage, KeyType};
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};
use std::{
    net::TcpListener,
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Ca {
    fn new(name: &str) -> Self {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        Self { cert: params.self_signed(&key).expect("CA"), key }
    }

    /// A certificate and key (PEM) for `cn`.
    fn issue(&self, cn: &str, sans: Vec<String>, usages: Vec<ExtendedKeyUsagePurpose>) -> (String, String) {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(sans).expect("params");
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = usages;
        (params.signed_by(&key, &self.cert, &self.key).expect("cert").pem(), key.serialize_pem())
    }

    fn client(&self, cn: &str, ca: &Ca) -> EtcdTls {
        let (cert, key) = self.issue(cn, vec![], vec![ExtendedKeyUsagePurpose::ClientAuth]);
        EtcdTls { ca: ca.cert.pem().into_bytes(), cert: cert.into_bytes(), key: key.into_bytes().into() }
    }
}

/// One etcd member serving clients over TLS only; killed on drop.
struct TlsEtcd {
    child: Child,
    endpoint: String,
}

impl Drop for TlsEtcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

fn start_etcd(dir: &Path, ca: &Ca) -> TlsEtcd {
    let (server, server_key) = ca.issue(
        "etcd",
        vec!["127.0.0.1".into(), "localhost".into()],
        vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth],
    );
    for (name, pem) in [("ca.pem", ca.cert.pem()), ("server.pem", server), ("server.key", server_key)] {
        std::fs::write(dir.join(name), pem).expect("write PKI");
    }
    let (client, peer) = (free_port(), free_port());
    let endpoint = format!("https://127.0.0.1:{client}");
    let log = std::fs::File::create(dir.join("etcd.log")).expect("log");
    let child = Command::new("etcd")
        .args(["--name", "tls", "--data-dir"])
        .arg(dir.join("data"))
        .args(["--listen-client-urls", &endpoint, "--advertise-client-urls", &endpoint])
        .args(["--listen-peer-urls", &format!("http://127.0.0.1:{peer}")])
        .args(["--initial-advertise-peer-urls", &format!("http://127.0.0.1:{peer}")])
        .args(["--initial-cluster", &format!("tls=http://127.0.0.1:{peer}")])
        .arg("--cert-file")
        .arg(dir.join("server.pem"))
        .arg("--key-file")
        .arg(dir.join("server.key"))
        .arg("--trusted-ca-file")
        .arg(dir.join("ca.pem"))
        .arg("--client-cert-auth")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("starting etcd (apt-get install etcd-server): {e}"));
    TlsEtcd { child, endpoint }
}

fn config(endpoint: &str, tls: Option<EtcdTls>) -> EtcdConfig {
    EtcdConfig { tls, ..EtcdConfig::new([endpoint.to_string()]) }
}

fn claim_key(round: u64) -> ClaimKey {
    ClaimKey {
        chain: ChainId([0x42; 32]),
        key_type: KeyType::GRANDPA,
        public: vec![7; 32],
        duty: Duty::GrandpaVote { set_id: 1, round, stage: GrandpaStage::Prevote },
    }
}

fn record() -> ClaimRecord {
    ClaimRecord { claimer: "signer-a/alice-1".into(), payload_hash: [1; 32], signature: vec![2; 64], claimed_at_ms: 1 }
}

fn auth<T>(r: Result<T, etcd_client::Error>, what: &str) -> T {
    r.unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// Users, roles and `auth enable`, as an operator would set them up, through the root user's
/// certificate (its common name is `root`).
async fn enable_auth(endpoint: &str, root: EtcdTls) {
    use etcd_client::{Certificate, Client, ConnectOptions, Identity, Permission, TlsOptions};
    let tls =
        TlsOptions::new().ca_certificate(Certificate::from_pem(&root.ca)).identity(Identity::from_pem(&root.cert, root.key.as_slice()));
    let started = Instant::now();
    let mut client = loop {
        let options = ConnectOptions::new().with_tls(tls.clone()).with_timeout(Duration::from_secs(2));
        let last = match Client::connect([endpoint], Some(options)).await {
            Ok(mut c) => match c.status().await {
                Ok(_) => break c,
                Err(e) => e,
            },
            Err(e) => e,
        };
        assert!(started.elapsed() < Duration::from_secs(20), "etcd did not come up over TLS: {last}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    auth(client.user_add("root", "root-password", None).await, "root user");
    auth(client.user_grant_role("root", "root").await, "root role");
    auth(client.role_add("exclave").await, "exclave role");
    auth(client.role_grant_permission("exclave", Permission::read_write("exclave/").with_prefix()).await, "grant exclave/");
    for user in ["exclave-signer", "intruder"] {
        auth(client.user_add(user, "unused-password", None).await, user);
    }
    auth(client.user_grant_role("exclave-signer", "exclave").await, "signer role");
    auth(client.auth_enable().await, "auth enable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_and_etcd_users_keep_everyone_else_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ca, other_ca) = (Ca::new("etcd CA"), Ca::new("another CA"));
    let etcd = start_etcd(dir.path(), &ca);
    enable_auth(&etcd.endpoint, ca.client("root", &ca)).await;

    // The signer's certificate: its user may write exclave/.
    let store = EtcdStore::connect(&config(&etcd.endpoint, Some(ca.client("exclave-signer", &ca)))).await.expect("connect");
    store.ping().await.expect("ping over mutual TLS");
    assert_eq!(store.claim(&claim_key(1), &record()).await.expect("claim"), ClaimOutcome::Inserted);
    assert_eq!(store.claim(&claim_key(1), &record()).await.expect("again"), ClaimOutcome::Existing(record()));

    // Plaintext to a TLS-only member.
    let plain = etcd.endpoint.replace("https://", "http://");
    let plaintext = EtcdStore::connect(&config(&plain, None)).await.expect("built (sends nothing)");
    assert!(plaintext.claim(&claim_key(2), &record()).await.is_err(), "a plaintext client claimed");
    // A client that trusts another CA does not accept the member's certificate.
    let wrong_ca = EtcdStore::connect(&config(&etcd.endpoint, Some(ca.client("exclave-signer", &other_ca)))).await.expect("built");
    assert!(wrong_ca.claim(&claim_key(2), &record()).await.is_err(), "a client trusting another CA claimed");
    // A certificate of the same CA whose user has no role.
    let intruder = EtcdStore::connect(&config(&etcd.endpoint, Some(ca.client("intruder", &ca)))).await.expect("built");
    let refused = intruder.claim(&claim_key(2), &record()).await.expect_err("an unauthorised user claimed");
    assert!(refused.to_string().to_lowercase().contains("permission"), "{refused}");
    // Nothing above took round 2: the signer still claims it.
    assert_eq!(store.claim(&claim_key(2), &record()).await.expect("claim"), ClaimOutcome::Inserted);

    // A configuration with TLS and a plaintext endpoint is refused before any traffic.
    let mixed = EtcdStore::connect(&config(&plain, Some(ca.client("exclave-signer", &ca)))).await;
    assert!(mixed.is_err_and(|e| e.to_string().contains("https://")));
}
