//! Test support: run the real `exclave` binary in dev mode on a free loopback port, connect
//! `RemoteKeystore` and raw TLS clients to it, and build real duty payloads.
#![allow(dead_code, missing_docs)]

pub mod netns;

use codec::Encode;
use exclave_keystore_remote::{RemoteKeystore, RemoteKeystoreConfig, TlsFiles};
pub use exclave_signer::config::{
    AuditConfig, BabeConfig, Backend, ClaimsConfig, Config, LeaseConfig, LeaseGroup, ListenConfig, MetricsConfig, StoreTls,
};
use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::Arc,
    time::Duration,
};

/// The genesis hash the test signers are pinned to.
pub const CHAIN: [u8; 32] = [0x42; 32];

/// A signer process; killed (SIGKILL) on drop.
pub struct Signer {
    pub child: Child,
    pub rpc: String,
    pub metrics: String,
    pub data_dir: PathBuf,
}

impl Signer {
    /// Start `exclave serve --dev` on `data_dir`, on `port` (0 = any).
    pub fn start(data_dir: &Path, port: u16) -> Self {
        let args = vec![
            "serve".into(),
            "--dev".into(),
            "--data-dir".into(),
            data_dir.display().to_string(),
            "--listen".into(),
            format!("127.0.0.1:{port}"),
            "--metrics".into(),
            "127.0.0.1:0".into(),
            "--chain".into(),
            format!("0x{}", hex::encode(CHAIN)),
        ];
        Self::spawn(&args, data_dir)
    }

    /// Start `exclave` with `args`; `data_dir` is where its dev-style files (tls/, log) are.
    pub fn spawn(args: &[String], data_dir: &Path) -> Self {
        Self::spawn_with_env(args, data_dir, &[])
    }

    /// [`Signer::spawn`] with extra environment variables (libfaketime's, say).
    pub fn spawn_with_env(args: &[String], data_dir: &Path, envs: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_exclave"));
        command.args(args).envs(envs.iter().copied());
        Self::spawn_command(command, data_dir)
    }

    /// [`Signer::spawn`] under a wrapper program (`fiu-run -x`, say) that runs
    /// `exclave <args>` in its own process (exec, same pid).
    pub fn spawn_under(wrapper: &[&str], args: &[String], data_dir: &Path) -> Self {
        let mut command = Command::new(wrapper[0]);
        command.args(&wrapper[1..]).arg(env!("CARGO_BIN_EXE_exclave")).args(args);
        Self::spawn_command(command, data_dir)
    }

    fn spawn_command(mut command: Command, data_dir: &Path) -> Self {
        let mut child = command.env("RUST_LOG", "warn").stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("spawn exclave");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let line = loop {
            match lines.next() {
                Some(Ok(l)) if l.starts_with("listening: ") => break l,
                Some(Ok(_)) => continue,
                other => panic!("exclave exited before listening: {other:?} (status {:?})", child.try_wait()),
            }
        };
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let field = |name: &str| {
            line.split_whitespace().find_map(|w| w.strip_prefix(name)).unwrap_or_else(|| panic!("no {name} in {line:?}")).to_string()
        };
        Signer { child, rpc: field("rpc="), metrics: field("metrics="), data_dir: data_dir.to_path_buf() }
    }

    /// The port the RPC listener is on.
    pub fn port(&self) -> u16 {
        self.rpc.rsplit(':').next().and_then(|p| p.parse().ok()).expect("port")
    }

    /// How many JSON-RPC calls of `method` (`hasKeys`, `sign`, …) this signer has received, from
    /// its `exclave_rpc_calls_total` metric.
    pub fn rpc_calls(&self, method: &str) -> u64 {
        metric(&self.metrics, &format!("exclave_rpc_calls_total{{method=\"{method}\"}}")) as u64
    }

    /// How many connections or requests the transport refused for `reason`.
    pub fn transport_refusals(&self, reason: &str) -> u64 {
        metric(&self.metrics, &format!("exclave_transport_refusals_total{{reason=\"{reason}\"}}")) as u64
    }

    /// SIGKILL the process and wait for it.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The dev PKI files a node uses.
    pub fn tls(&self) -> TlsFiles {
        let tls = self.data_dir.join("tls");
        TlsFiles { ca: tls.join("ca.pem"), cert: tls.join("client.pem"), key: tls.join("client.key") }
    }

    /// A `RemoteKeystore` connected to this signer.
    pub fn keystore(&self) -> Arc<RemoteKeystore> {
        Arc::new(
            RemoteKeystore::new(RemoteKeystoreConfig {
                urls: vec![self.rpc.clone()],
                chain: CHAIN,
                tls: Some(self.tls()),
                timeout: Duration::from_secs(5),
                store_id: None,
            })
            .expect("remote keystore"),
        )
    }

    /// A typed async JSON-RPC client with this signer's dev client certificate.
    pub fn client(&self) -> jsonrpsee::http_client::HttpClient {
        rpc_client(&self.rpc, &self.tls())
    }

    /// Stop cleanly (SIGTERM: drain, closing checkpoint) and wait for the exit; panics unless 0.
    pub fn stop(&mut self) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().expect("kill").success());
        let status = self.child.wait().expect("wait");
        assert!(status.success(), "the signer did not stop cleanly: {status:?}");
    }

    /// Lines of the signing log, parsed.
    pub fn log(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.data_dir.join("signing.log"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("log line is JSON"))
            .collect()
    }
}

impl Drop for Signer {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A typed async JSON-RPC client for `url` with the client certificate in `tls`.
pub fn rpc_client(url: &str, tls: &TlsFiles) -> jsonrpsee::http_client::HttpClient {
    let cfg = exclave_keystore_remote::tls_client_config(tls).expect("client TLS");
    jsonrpsee::http_client::HttpClientBuilder::default().with_custom_cert_store(cfg).build(url).expect("client")
}

/// The BABE slot now, at the dev signer's 6 s slots.
pub fn current_slot() -> u64 {
    let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis() as u64;
    ms / 6000
}

#[allow(unused_imports)]
pub use exclave_sim::payloads::{babe_header, grandpa_payload, heartbeat, pre_hash};

/// A BEEFY commitment.
pub fn commitment(block: u32, set_id: u64, root: u8) -> Vec<u8> {
    use sp_consensus_beefy::{known_payloads::MMR_ROOT_ID, Commitment, Payload};
    Commitment { payload: Payload::from_single_entry(MMR_ROOT_ID, vec![root; 32]), block_number: block, validator_set_id: set_id }.encode()
}

/// Raw HTTPS POST to a signer (for malformed requests a typed client cannot send). Returns the
/// response text, or the I/O error (e.g. a refused handshake).
pub fn raw_post(signer: &Signer, body: &[u8], with_client_cert: bool) -> std::io::Result<String> {
    let cert = with_client_cert.then(|| signer.tls()).map(|t| (t.cert, t.key));
    raw_request(signer, &post_request(body), cert, None)
}

/// An HTTP/1.1 POST of `body` to `/`, closing the connection after the answer.
pub fn post_request(body: &[u8]) -> Vec<u8> {
    let head = format!(
        "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    [head.as_bytes(), body].concat()
}

/// Send `request` over TLS to `signer` with the client certificate and key `cert` (none: no
/// client certificate), from the local address `from` (default: any), and read to the end.
pub fn raw_request(
    signer: &Signer,
    request: &[u8],
    cert: Option<(PathBuf, PathBuf)>,
    from: Option<std::net::IpAddr>,
) -> std::io::Result<String> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(raw_request_async(signer.rpc.clone(), signer.tls().ca, request.to_vec(), cert, from))
}

async fn raw_request_async(
    url: String,
    ca: PathBuf,
    request: Vec<u8>,
    cert: Option<(PathBuf, PathBuf)>,
    from: Option<std::net::IpAddr>,
) -> std::io::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr: std::net::SocketAddr = url.trim_start_matches("https://").parse().map_err(std::io::Error::other)?;
    let config = match cert {
        Some((cert, key)) => exclave_keystore_remote::tls_client_config(&TlsFiles { ca, cert, key }).map_err(std::io::Error::other)?,
        None => {
            let mut roots = rustls::RootCertStore::empty();
            use rustls_pki_types::pem::PemObject;
            for c in rustls_pki_types::CertificateDer::pem_slice_iter(&std::fs::read(&ca)?) {
                roots.add(c.map_err(std::io::Error::other)?).map_err(std::io::Error::other)?;
            }
            rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .map_err(std::io::Error::other)?
                .with_root_certificates(roots)
                .with_no_client_auth()
        }
    };
    let mut stream = tls_connect(addr, config, from).await?;
    // A server may answer (413) and close before the whole request is written: keep what it said.
    let written = stream.write_all(&request).await;
    let mut out = Vec::new();
    // A request without `Connection: close` leaves the connection open after the answer: read
    // what came within 5 s.
    let read = tokio::time::timeout(std::time::Duration::from_secs(5), stream.read_to_end(&mut out)).await.unwrap_or(Ok(0));
    if out.is_empty() {
        written?;
        read?;
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// A TLS connection to `addr` (server name `localhost`) from `from` (default: any address).
pub async fn tls_connect(
    addr: std::net::SocketAddr,
    config: rustls::ClientConfig,
    from: Option<std::net::IpAddr>,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    if let Some(ip) = from {
        socket.bind(std::net::SocketAddr::new(ip, 0))?;
    }
    let tcp = socket.connect(addr).await?;
    let name = rustls_pki_types::ServerName::try_from("localhost").map_err(std::io::Error::other)?;
    tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp).await
}

/// The value of the metric series `series` (name and labels as printed) at `metrics`, 0 if absent.
pub fn metric(metrics: &str, series: &str) -> f64 {
    let (status, body) = http_get(&format!("http://{metrics}/metrics"));
    assert_eq!(status, 200, "metrics: {body}");
    let prefix = format!("{series} ");
    body.lines().find_map(|l| l.strip_prefix(prefix.as_str())).map_or(0.0, |v| v.trim().parse().expect("a metric value"))
}

/// The `exclave` binary under test.
pub fn exclave() -> Command {
    Command::new(env!("CARGO_BIN_EXE_exclave"))
}

/// A signer's configuration for tests: the signer's own typed [`Config`], built from a dev-PKI
/// base and written as TOML (no string editing of TOML).
#[derive(Clone, Debug)]
pub struct TestConfig(pub Config);

impl TestConfig {
    /// `signer_id` in `dir`: TLS files from `dir/tls`, keystore `dir/keystore`, signing log
    /// `dir/signing.log`, the embedded store `dir/claims.redb`, RPC and metrics on 127.0.0.1
    /// port 0, 6 s slots, the lease at its defaults.
    pub fn new(dir: &Path, signer_id: &str) -> Self {
        let tls = dir.join("tls");
        let mut claims = ClaimsConfig::new(Backend::Embedded);
        claims.path = Some(dir.join("claims.redb"));
        Self(Config {
            signer_id: signer_id.into(),
            chain: format!("0x{}", hex::encode(CHAIN)),
            keystore_dir: dir.join("keystore"),
            keystore_password_file: None,
            keystore_encryption: None,
            signing_log: dir.join("signing.log"),
            listen: ListenConfig::new(
                "127.0.0.1:0".parse().expect("addr"),
                tls.join("server.pem"),
                tls.join("server.key"),
                tls.join("ca.pem"),
            ),
            metrics: Some(MetricsConfig { address: "127.0.0.1:0".parse().expect("addr") }),
            babe: BabeConfig { slot_duration_ms: 6000, max_drift_slots: 2, genesis_slot: 0 },
            claims,
            audit: AuditConfig::default(),
            lease: LeaseConfig::default(),
            insecure_key_file_permissions: false,
            clients: everything_for_test_clients(dir),
        })
    }

    /// Another `[claims]` table.
    pub fn claims(mut self, claims: ClaimsConfig) -> Self {
        self.0.claims = claims;
        self
    }

    /// The signing log at `dir/<signer id>.log` (signers sharing a directory).
    pub fn own_log(mut self) -> Self {
        let dir = self.0.signing_log.parent().expect("log dir").to_path_buf();
        self.0.signing_log = dir.join(format!("{}.log", self.0.signer_id));
        self
    }

    /// The RPC listener on 127.0.0.1:`port`.
    pub fn port(mut self, port: u16) -> Self {
        self.0.listen.address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        self
    }

    /// BABE slots of `slot_ms`, VRF requests allowed `max_drift_slots` from the wall clock.
    pub fn slots(mut self, slot_ms: u64, max_drift_slots: u64) -> Self {
        self.0.babe = BabeConfig { slot_duration_ms: slot_ms, max_drift_slots, genesis_slot: 0 };
        self
    }

    /// Another `[lease]` table.
    pub fn min_free_bytes(mut self, bytes: u64) -> Self {
        self.0.audit.min_free_bytes = bytes;
        self
    }

    pub fn request_timeout_ms(mut self, ms: u64) -> Self {
        self.0.listen.request_timeout_ms = ms;
        self
    }

    pub fn idle_timeout_ms(mut self, ms: u64) -> Self {
        self.0.listen.idle_timeout_ms = ms;
        self
    }

    pub fn crl(mut self, crl: PathBuf) -> Self {
        self.0.listen.crl = Some(crl);
        self
    }

    pub fn max_connections_per_address(mut self, n: usize) -> Self {
        self.0.listen.max_connections_per_address = n;
        self
    }

    pub fn max_concurrent_requests(mut self, n: usize) -> Self {
        self.0.listen.max_concurrent_requests = n;
        self
    }

    pub fn lease(mut self, lease: LeaseConfig) -> Self {
        self.0.lease = lease;
        self
    }

    /// The TOML text.
    pub fn toml(&self) -> String {
        toml::to_string(&self.0).expect("a Config serialises")
    }

    /// Write `dir/<signer id>.toml` (`dir`: the directory of the keystore) and return its path.
    pub fn write(&self) -> PathBuf {
        let dir = self.0.keystore_dir.parent().expect("config dir");
        let path = dir.join(format!("{}.toml", self.0.signer_id));
        std::fs::write(&path, self.toml()).expect("write config");
        path
    }
}

/// A config for `signer-a` on an embedded store in `dir`, with `extra` top-level TOML lines
/// (only for tests of what the parser refuses, such as an unknown key).
pub fn write_config(dir: &Path, extra: &str) -> std::path::PathBuf {
    let path = TestConfig::new(dir, "signer-a").write();
    if !extra.is_empty() {
        let text = std::fs::read_to_string(&path).expect("read config");
        std::fs::write(&path, format!("{extra}\n{text}")).expect("write config");
    }
    path
}

/// `[[clients]]` for the test PKI under `dir/tls`: `dev-node` and every `node-<name>.pem` may do
/// everything (key management too), with every key. `dev-stranger` is granted nothing.
pub fn everything_for_test_clients(dir: &Path) -> Vec<exclave_signer::grants::ClientConfig> {
    let mut names = vec![exclave_signer::tls::DEV_CLIENT.to_string()];
    if let Ok(entries) = std::fs::read_dir(dir.join("tls")) {
        let mut nodes: Vec<String> =
            entries.filter_map(|e| e.ok()?.file_name().to_str()?.strip_prefix("node-")?.strip_suffix(".pem").map(str::to_owned)).collect();
        nodes.sort();
        names.extend(nodes);
    }
    names
        .into_iter()
        .map(|name| exclave_signer::grants::ClientConfig {
            name,
            sha256: None,
            keys: vec!["*".into()],
            validators: Vec::new(),
            operations: exclave_signer::grants::default_operations(),
            key_types: Vec::new(),
            key_management: true,
        })
        .collect()
}

/// A plain HTTP GET: status and the whole response.
pub fn http_get(url: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let addr = url.trim_start_matches("http://").split('/').next().expect("addr").to_string();
    let path = format!("/{}", url.trim_start_matches("http://").split_once('/').map_or("", |(_, p)| p));
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    let status = out.split_whitespace().nth(1).and_then(|c| c.parse().ok()).expect("status");
    (status, out)
}

/// `exclave keys import` of `secret` (from stdin) as a `key_type` key into `keystore`.
pub fn import_key(keystore: &Path, key_type: &str, secret: &str) {
    use std::io::Write;
    let mut import = exclave()
        .args(["keys", "import", "--key-type", key_type, "--keystore"])
        .arg(keystore)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("import");
    import.stdin.take().expect("stdin").write_all(secret.as_bytes()).expect("secret");
    assert!(import.wait().expect("import").success(), "keys import failed");
}

/// The `[claims]` table of signers sharing the TiKV wire-protocol stand-in (NOT TiKV) at
/// `pd_endpoint`, keyspace `exclave`.
pub fn standin_claims(pd_endpoint: &str, deadline_ms: u64) -> ClaimsConfig {
    let mut c = ClaimsConfig::new(Backend::Tikv);
    c.endpoints = vec![pd_endpoint.into()];
    c.keyspace = Some("exclave".into());
    c.deadline_ms = deadline_ms;
    c
}

/// The `[claims]` table of signers sharing the etcd cluster at `endpoints`.
pub fn etcd_claims(endpoints: &[String], deadline_ms: u64) -> ClaimsConfig {
    let mut c = ClaimsConfig::new(Backend::Etcd);
    c.endpoints = endpoints.to_vec();
    c.deadline_ms = deadline_ms;
    c
}

/// The `[claims]` table of an embedded store at `path`.
pub fn embedded_claims(path: &Path) -> ClaimsConfig {
    let mut c = ClaimsConfig::new(Backend::Embedded);
    c.path = Some(path.to_path_buf());
    c
}

/// Signer processes `ids` in `dir` sharing the `[claims]` table `claims`, each with its own
/// signing log (`dir/<id>.log`), all holding //Alice's GRANDPA key and the dev PKI.
pub fn spawn_signers(dir: &Path, ids: &[&str], claims: &ClaimsConfig) -> Vec<Signer> {
    spawn_signers_each(dir, ids, |_| claims.clone())
}

/// [`spawn_signers`] with a `[claims]` table per signer id.
pub fn spawn_signers_each(dir: &Path, ids: &[&str], claims: impl Fn(&str) -> ClaimsConfig) -> Vec<Signer> {
    exclave_signer::tls::DevPki::ensure(dir).expect("pki");
    let keystore = dir.join("keystore");
    if !keystore.exists() {
        import_key(&keystore, "gran", "//Alice");
    }
    ids.iter()
        .map(|id| {
            let cfg = TestConfig::new(dir, id).claims(claims(id)).own_log().write();
            Signer::spawn(&["serve".into(), "--config".into(), cfg.display().to_string()], dir)
        })
        .collect()
}

/// An in-process engine with //Alice keys for babe, gran, imon and beef, on `store`, logging to
/// `dir/log/signing.log` as `signer` (a checkpoint every 5 records).
pub fn engine(dir: &Path, signer: &str, store: Arc<dyn exclave_claims::ClaimStore>) -> exclave_signer::engine::Engine {
    engine_with_lease(dir, signer, store, None)
}

/// [`engine`] with an active-node lease.
pub fn engine_with_lease(
    dir: &Path,
    signer: &str,
    store: Arc<dyn exclave_claims::ClaimStore>,
    lease: Option<exclave_signer::lease::LeaseSettings>,
) -> exclave_signer::engine::Engine {
    use exclave_policies::{Crypto, KeyType};
    use exclave_signer::keystore_dir::{KeyPair, KeyRing, KeystoreDir};
    std::fs::create_dir_all(dir.join("log")).expect("mkdir");
    let mut ring = KeyRing::default();
    for (kt, crypto) in [
        (KeyType::BABE, Crypto::Sr25519),
        (KeyType::GRANDPA, Crypto::Ed25519),
        (KeyType::IM_ONLINE, Crypto::Sr25519),
        (KeyType::BEEFY, Crypto::Ecdsa),
    ] {
        ring.insert(kt, KeyPair::from_suri(crypto, "//Alice").expect("key"));
    }
    let options = exclave_signer::signing_log::LogOptions { checkpoint_every: 5, ..exclave_signer::signing_log::LogOptions::new(signer) };
    exclave_signer::engine::Engine::new(
        exclave_signer::engine::EngineSettings {
            store_instance: None,
            grants: exclave_signer::grants::Grants::insecure_allow_all(),
            log_min_free_bytes: 0,
            refused_per_client_per_minute: exclave_signer::config::default_refused_per_client_per_minute(),
            signer_id: signer.into(),
            bounds: exclave_policies::SlotBounds { slot_duration_ms: 6000, max_drift_slots: 2, genesis_slot: 0 },
            insecure_dev_seeds: false,
            lease,
            store_deadline: std::time::Duration::from_secs(2),
        },
        exclave_signer::chain::ChainPin::Fixed(exclave_policies::ChainId(CHAIN)),
        KeystoreDir::open(&dir.join("keystore")).expect("keystore"),
        ring,
        store,
        exclave_signer::signing_log::SigningLog::open(&dir.join("log").join("signing.log"), options).expect("log"),
        exclave_signer::metrics::Metrics::register(&mut prometheus_client::registry::Registry::default()),
    )
}

/// The //Alice public key of a key type.
pub fn alice(kt: exclave_policies::KeyType) -> Vec<u8> {
    exclave_signer::keystore_dir::KeyPair::from_suri(kt.crypto().expect("supported"), "//Alice").expect("key").public()
}

/// A sign request of //Alice's `kt` key.
pub fn request(
    kt: exclave_policies::KeyType,
    message: Vec<u8>,
    context: exclave_protocol::SignContext,
    prehashed: bool,
) -> exclave_protocol::SignRequest {
    use exclave_protocol::{Bytes, WireCrypto, WireKeyType};
    let crypto = match kt.crypto().expect("supported") {
        exclave_policies::Crypto::Sr25519 => WireCrypto::Sr25519,
        exclave_policies::Crypto::Ed25519 => WireCrypto::Ed25519,
        exclave_policies::Crypto::Ecdsa => WireCrypto::Ecdsa,
    };
    exclave_protocol::SignRequest {
        chain: Bytes(CHAIN.to_vec()),
        key_type: WireKeyType(kt.0),
        crypto,
        public: Bytes(alice(kt)),
        message: Bytes(message),
        context,
        prehashed,
        store_id: None,
    }
}

/// //Alice's GRANDPA vote request for (set 1, `round`), targeting block `target`.
pub fn vote_request(precommit: bool, target: u8, round: u64) -> exclave_protocol::SignRequest {
    request(
        exclave_policies::KeyType::GRANDPA,
        grandpa_payload(precommit, target, 10, round, 1),
        exclave_protocol::SignContext::None,
        false,
    )
}

/// //Alice's BABE seal request for `slot`, varied by `salt`.
pub fn seal_request(slot: u64, salt: u8) -> exclave_protocol::SignRequest {
    let header = babe_header(slot, 7, salt);
    let context = exclave_protocol::SignContext::BabeSeal { header: exclave_protocol::Bytes(header.encode()) };
    request(exclave_policies::KeyType::BABE, pre_hash(&header).to_vec(), context, false)
}
