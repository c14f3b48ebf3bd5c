//! Assembling a running signer from a config file or from `--dev` options.

use crate::{
    chain::ChainPin,
    config::{parse_chain, Config},
    engine::{Engine, EngineSettings},
    keystore_dir::{KeyPair, KeystoreDir},
    metrics::Metrics,
    rpc::Rpc,
    server::{self, RpcServer, Transport},
    signing_log::{LogOptions, SigningLog},
    tls::DevPki,
};
use exclave_claims::{embedded::EmbeddedStore, ClaimStore, WithDeadline};
use exclave_policies::{ChainId, KeyType, SlotBounds};
use prometheus_client::registry::Registry;
use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};
use tokio::net::TcpListener;

/// How the listener is secured.
#[derive(Debug, Clone)]
pub enum TransportOptions {
    /// Mutual TLS with these PEM files.
    Tls {
        /// Server certificate chain.
        cert: PathBuf,
        /// Server key.
        key: PathBuf,
        /// CA for client certificates.
        client_ca: PathBuf,
        /// Revoked client certificates (PEM CRLs of that CA), if any.
        crl: Option<PathBuf>,
    },
    /// Plain HTTP on loopback, dev only.
    InsecurePlaintext,
}

/// Which claim store, and how to reach it.
#[derive(Debug, Clone)]
pub enum StoreOptions {
    /// The embedded redb file.
    Embedded(PathBuf),
    /// An etcd cluster.
    Etcd(exclave_claims::etcd::EtcdConfig),
    /// A TiKV cluster.
    Tikv(exclave_claims::tikv::TikvConfig),
    /// A store already open in this process, shared by several signers (`exclave demo`). Used as
    /// given: the caller bounds its calls (wrap it in `WithDeadline`, as the demo does); the
    /// `store_deadline` setting is not applied to it.
    Shared(SharedStore),
}

/// An open claim store handed to [`start`].
#[derive(Clone)]
pub struct SharedStore(pub Arc<dyn ClaimStore>);

impl std::fmt::Debug for SharedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SharedStore({})", self.0.backend())
    }
}

/// Everything needed to start a signer.
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    /// Signer id.
    pub signer_id: String,
    /// Fixed chain, or `None` to pin on first use (dev only).
    pub chain: Option<ChainId>,
    /// Where a first-use chain pin is kept.
    pub data_dir: Option<PathBuf>,
    /// Keystore directory.
    pub keystore_dir: PathBuf,
    /// Signing log file.
    pub signing_log: PathBuf,
    /// Checkpoints and rotation of the signing log (its signer id is set from `signer_id`).
    pub log_options: LogOptions,
    /// The claim store.
    pub store: StoreOptions,
    /// Deadline for every store call.
    pub store_deadline: Duration,
    /// RPC listen address.
    pub listen: SocketAddr,
    /// Transport.
    pub transport: TransportOptions,
    /// Metrics listen address.
    pub metrics: Option<SocketAddr>,
    /// BABE bounds.
    pub bounds: SlotBounds,
    /// The RPC listener's limits (body size, connections, requests in flight, batches).
    pub limits: crate::server::ServerLimits,
    /// Dev mode: seeded key generation allowed, loopback only, dev keys created.
    pub dev: bool,
    /// The active-node lease (`None`: off).
    pub lease: Option<crate::lease::LeaseSettings>,
    /// Load key files, the TLS key and the audit key that group or others may read.
    pub insecure_key_file_permissions: bool,
    /// `/ready` fails while the signing log's filesystem has less free than this.
    pub log_min_free_bytes: u64,
    /// Refused requests logged per client per minute.
    pub refused_per_client_per_minute: u32,
    /// Who may do what (`[[clients]]`; `--dev`: the dev node may do everything).
    pub grants: crate::grants::Grants,
    /// The password of a password-protected keystore.
    pub keystore_password: Option<crate::keystore_dir::Password>,
    /// The passphrase of a keystore encrypted at rest.
    pub keystore_passphrase: Option<crate::keystore_dir::Password>,
}

/// Why a signer could not start.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The dev chain pin could not be loaded.
    #[error(transparent)]
    ChainPin(#[from] crate::chain::ChainPinError),
    /// TLS set-up failed.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// Keys could not be loaded.
    #[error(transparent)]
    Keys(#[from] crate::keystore_dir::KeyError),
    /// The claim store could not be opened.
    #[error(transparent)]
    Store(#[from] exclave_claims::StoreError),
    /// The signing log could not be opened.
    #[error(transparent)]
    Log(#[from] crate::signing_log::LogError),
    /// The embedded store's newest claims could not be restored from the signing log.
    #[error(transparent)]
    Journal(#[from] crate::journal::JournalError),
    /// A listener could not bind.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// Where.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A dev shortcut was asked for off loopback.
    #[error("--dev and insecure_* modes only bind loopback addresses; {0} is not loopback")]
    NotLoopback(SocketAddr),
    /// The embedded claim store's file could not be examined.
    #[error("claim store file {path}: {source}")]
    StoreFile {
        /// Which file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// The TiKV store's settings from the `[claims]` table.
pub fn tikv_config(c: &crate::config::ClaimsConfig) -> exclave_claims::tikv::TikvConfig {
    let mut tikv = exclave_claims::tikv::TikvConfig::new(c.endpoints.clone());
    tikv.keyspace = c.keyspace.clone();
    tikv.tls = c.tls.as_ref().map(|t| exclave_claims::tikv::TikvTls { ca: t.ca.clone(), cert: t.cert.clone(), key: t.key.clone() });
    tikv.request_timeout = Duration::from_millis(c.attempt_timeout_ms);
    tikv.connect_timeout = Duration::from_millis(c.connect_timeout_ms);
    // End each call with the store's own reason just before the outer deadline.
    tikv.call_timeout = Duration::from_millis(c.deadline_ms * 9 / 10);
    tikv
}

impl DaemonOptions {
    /// Options from a config file.
    pub fn from_config(c: &Config) -> Result<Self, DaemonError> {
        Ok(Self {
            signer_id: c.signer_id.clone(),
            chain: Some(ChainId(parse_chain(&c.chain)?)),
            data_dir: None,
            keystore_dir: c.keystore_dir.clone(),
            signing_log: c.signing_log.clone(),
            log_options: LogOptions {
                checkpoint_every: c.audit.checkpoint_every,
                checkpoint_interval: Duration::from_millis(c.audit.checkpoint_interval_ms),
                rotate_bytes: c.audit.rotate_bytes,
                allow_exposed_key: c.insecure_key_file_permissions,
                ..LogOptions::new(c.signer_id.clone())
            },
            store: match c.claims.backend {
                crate::config::Backend::Embedded => StoreOptions::Embedded(c.claims.path.clone().unwrap_or_default()),
                crate::config::Backend::Etcd => {
                    let mut etcd = exclave_claims::etcd::EtcdConfig::new(c.claims.endpoints.clone());
                    etcd.tls = c.claims.tls.as_ref().map(|t| etcd_tls(t, c.insecure_key_file_permissions)).transpose()?;
                    etcd.user = etcd_user(&c.claims, c.insecure_key_file_permissions)?;
                    etcd.attempt_timeout = Duration::from_millis(c.claims.attempt_timeout_ms);
                    // End each call with the members' own reasons just before the outer deadline.
                    etcd.retry_budget = Duration::from_millis(c.claims.deadline_ms * 9 / 10);
                    StoreOptions::Etcd(etcd)
                }
                crate::config::Backend::Tikv => StoreOptions::Tikv(tikv_config(&c.claims)),
            },
            store_deadline: Duration::from_millis(c.claims.deadline_ms),
            listen: c.listen.address,
            transport: TransportOptions::Tls {
                cert: c.listen.tls_cert.clone(),
                key: c.listen.tls_key.clone(),
                client_ca: c.listen.client_ca.clone(),
                crl: c.listen.crl.clone(),
            },
            metrics: c.metrics.as_ref().map(|m| m.address),
            bounds: SlotBounds {
                slot_duration_ms: c.babe.slot_duration_ms,
                max_drift_slots: c.babe.max_drift_slots,
                genesis_slot: c.babe.genesis_slot,
            },
            limits: c.listen.limits(),
            dev: false,
            lease: c.lease.settings()?,
            insecure_key_file_permissions: c.insecure_key_file_permissions,
            log_min_free_bytes: c.audit.min_free_bytes,
            refused_per_client_per_minute: c.audit.refused_per_client_per_minute,
            grants: c.grants()?,
            keystore_password: c
                .keystore_password_file
                .as_deref()
                .map(|p| crate::keystore_dir::Password::from_file(p, c.insecure_key_file_permissions))
                .transpose()?,
            keystore_passphrase: c.keystore_encryption.as_ref().map(|e| e.passphrase(c.insecure_key_file_permissions)).transpose()?,
        })
    }

    /// `--dev` options: everything under `data_dir`, self-signed TLS unless plaintext is asked.
    pub fn dev(
        data_dir: PathBuf,
        listen: SocketAddr,
        metrics: Option<SocketAddr>,
        chain: Option<ChainId>,
        insecure_plaintext: bool,
    ) -> Result<Self, DaemonError> {
        exclave_durable::create_dir_all(&data_dir, 0o700)
            .map_err(|source| crate::keystore_dir::KeyError::Io { path: data_dir.display().to_string(), source })?;
        let transport = if insecure_plaintext {
            TransportOptions::InsecurePlaintext
        } else {
            let pki = DevPki::ensure(&data_dir)?;
            TransportOptions::Tls { cert: pki.server_cert, key: pki.server_key, client_ca: pki.ca, crl: None }
        };
        Ok(Self {
            signer_id: "dev-signer".into(),
            chain,
            keystore_dir: data_dir.join("keystore"),
            signing_log: data_dir.join("signing.log"),
            log_options: LogOptions::new("dev-signer"),
            store: StoreOptions::Embedded(data_dir.join("claims.redb")),
            data_dir: Some(data_dir),
            store_deadline: Duration::from_secs(2),
            listen,
            transport,
            metrics,
            bounds: SlotBounds { slot_duration_ms: 6000, max_drift_slots: 2, genesis_slot: 0 },
            // Dev binds loopback only: every client comes from one address, so the per-address
            // cap is the global one (the demo and benchmarks open 64 connections).
            limits: crate::server::ServerLimits {
                max_connections_per_address: crate::server::ServerLimits::default().max_connections,
                ..crate::server::ServerLimits::default()
            },
            dev: true,
            lease: crate::config::LeaseConfig::default().settings()?,
            insecure_key_file_permissions: false,
            log_min_free_bytes: crate::config::default_min_free_bytes(),
            refused_per_client_per_minute: crate::config::default_refused_per_client_per_minute(),
            keystore_password: None,
            keystore_passphrase: None,
            grants: if insecure_plaintext {
                crate::grants::Grants::everything_for(&[crate::tls::DEV_CLIENT]).with_plaintext_clients_as(crate::tls::DEV_CLIENT)
            } else {
                crate::grants::Grants::everything_for(&[crate::tls::DEV_CLIENT])
            },
        })
    }
}

/// A running signer.
pub struct Daemon {
    /// Where the RPC listener is bound.
    pub rpc_addr: SocketAddr,
    /// Where the metrics listener is bound.
    pub metrics_addr: Option<SocketAddr>,
    /// The engine.
    pub engine: Arc<Engine>,
    server: RpcServer,
    /// The embedded store (journaled), to close it at a clean stop.
    embedded: Option<EmbeddedStore>,
}

impl Daemon {
    /// Stop the RPC listener.
    pub fn stop(&self) {
        self.server.stop();
    }

    /// After [`Daemon::stop`]: wait, at most `limit`, for the requests in flight to finish (and
    /// be logged); returns how many had not.
    pub async fn drain(&self, limit: Duration) -> usize {
        self.server.drain(limit).await
    }

    /// After [`Daemon::drain`]: make the embedded store's claims durable in its own file and
    /// mark it closed cleanly (the offline tools refuse a file left open). Nothing for shared
    /// stores.
    pub async fn close_store(&self) -> Result<(), exclave_claims::StoreError> {
        match &self.embedded {
            Some(store) => store.flush(true).await,
            None => Ok(()),
        }
    }
}

/// Open the embedded store in journaled mode and restore the claims a crash left only in the
/// signing log at `log` ([`crate::journal`]). `written`: the log's last written sequence number
/// (a fresh counter when no signer runs: the offline tools).
pub async fn open_embedded(path: &std::path::Path, log: &std::path::Path, written: Arc<AtomicU64>) -> Result<EmbeddedStore, DaemonError> {
    let (store, replay_after) = EmbeddedStore::open_journaled(path, written.clone())?;
    let claims = match replay_after {
        Some(after) => {
            let (claims, last) = crate::journal::claims_after(log, after)?;
            written.fetch_max(last, Ordering::SeqCst);
            claims
        }
        None => Vec::new(),
    };
    let restored = store.restore(&claims).await?;
    if let Some(after) = replay_after {
        tracing::warn!(
            after,
            inserted = restored.inserted,
            present = restored.present,
            "the claim store was not closed cleanly: claims restored from the signing log"
        );
    }
    Ok(store)
}

/// The key types `--dev` creates keys for when the keystore has none ([`dev_suri`]).
pub const DEV_KEY_TYPES: [KeyType; 5] = KeyType::SUPPORTED;

async fn bind(addr: SocketAddr) -> Result<TcpListener, DaemonError> {
    TcpListener::bind(addr).await.map_err(|source| DaemonError::Bind { addr, source })
}

/// Start a signer; metrics are registered on `registry`.
pub async fn start(opts: DaemonOptions, registry: Registry) -> Result<Daemon, DaemonError> {
    let insecure = opts.dev || matches!(opts.transport, TransportOptions::InsecurePlaintext);
    for addr in std::iter::once(opts.listen).chain(opts.metrics) {
        if insecure && !addr.ip().is_loopback() {
            return Err(DaemonError::NotLoopback(addr));
        }
    }
    let mut registry = registry;
    let metrics = Metrics::register(&mut registry);
    let keystore = KeystoreDir::open(&opts.keystore_dir)?
        .allowing_exposed_files(opts.insecure_key_file_permissions)
        .with_password(opts.keystore_password.clone())
        .with_encryption(opts.keystore_passphrase.as_ref())?;
    if opts.dev {
        create_dev_keys(&keystore)?;
    }
    let (keys, skipped) = keystore.load()?;
    for s in &skipped {
        tracing::warn!(file = %s.file, reason = %s.reason, "key file skipped");
    }
    tracing::info!(keys = keys.len(), dir = %opts.keystore_dir.display(), "keys loaded");
    // The log first: the embedded store's newest claims may be only in it (journaled mode).
    let log = SigningLog::open(&opts.signing_log, LogOptions { signer_id: opts.signer_id.clone(), ..opts.log_options.clone() })?;
    let (store, embedded): (Arc<dyn ClaimStore>, _) = match &opts.store {
        StoreOptions::Embedded(path) => {
            let store = open_embedded(path, &opts.signing_log, log.written_seq()).await?;
            (Arc::new(WithDeadline::new(store.clone(), opts.store_deadline)), Some(store))
        }
        StoreOptions::Etcd(cfg) => {
            let store = WithDeadline::new(exclave_claims::etcd::EtcdStore::connect(cfg).await?, opts.store_deadline);
            // Connecting sends nothing: say now, not at the first claim, if the cluster is unreachable.
            if let Err(e) = store.ping().await {
                tracing::warn!(error = %e, "etcd does not answer yet; the signer starts not ready");
            }
            (Arc::new(store), None)
        }
        StoreOptions::Tikv(cfg) => {
            let store = WithDeadline::new(exclave_claims::tikv::TikvStore::new(cfg)?, opts.store_deadline);
            // The client is built in the background: say now if PD or TiKV do not answer.
            if let Err(e) = store.ping().await {
                tracing::warn!(error = %e, "tikv does not answer yet; the signer starts not ready");
            }
            (Arc::new(store), None)
        }
        StoreOptions::Shared(shared) => (shared.0.clone(), None),
    };
    tracing::info!(audit_key = %log.audit_key(), log = %opts.signing_log.display(), "signing log open");
    let chain = match (opts.chain, &opts.data_dir) {
        (Some(c), _) => ChainPin::Fixed(c),
        (None, Some(dir)) => ChainPin::first_use(dir.join("chain"))?,
        (None, None) => return Err(crate::config::ConfigError::Invalid("no chain configured".into()).into()),
    };
    let store_instance = match &opts.store {
        StoreOptions::Embedded(path) => Some(file_instance(path)?),
        _ => None,
    };
    let settings = EngineSettings {
        grants: opts.grants.clone(),
        store_instance,
        log_min_free_bytes: opts.log_min_free_bytes,
        refused_per_client_per_minute: opts.refused_per_client_per_minute,
        signer_id: opts.signer_id.clone(),
        bounds: opts.bounds,
        insecure_dev_seeds: opts.dev,
        lease: opts.lease.clone(),
        store_deadline: opts.store_deadline,
    };
    let engine = Arc::new(Engine::new(settings, chain, keystore, keys, store, log, metrics.clone()));
    let transport = match &opts.transport {
        TransportOptions::Tls { cert, key, client_ca, crl } => {
            let files = crate::tls::ServerFiles { cert, key, client_ca, crl: crl.as_deref() };
            Transport::Tls(crate::tls::server_config(files, opts.insecure_key_file_permissions)?)
        }
        TransportOptions::InsecurePlaintext => Transport::InsecurePlaintext,
    };
    let listener = bind(opts.listen).await?;
    let rpc_addr = listener.local_addr().map_err(|source| DaemonError::Bind { addr: opts.listen, source })?;
    let server = server::start(listener, transport, Rpc::new(engine.clone(), metrics.clone()), opts.limits.clone(), metrics);
    let metrics_addr = match opts.metrics {
        Some(addr) => {
            let l = bind(addr).await?;
            let bound = l.local_addr().map_err(|source| DaemonError::Bind { addr, source })?;
            tokio::spawn(crate::http_status::serve(l, Arc::new(registry), engine.clone()));
            Some(bound)
        }
        None => None,
    };
    Ok(Daemon { rpc_addr, metrics_addr, engine, server, embedded })
}

/// The etcd client's TLS files, read now (the key refused if group or others may read it).
fn etcd_tls(t: &crate::config::StoreTls, allow_exposed_key: bool) -> Result<exclave_claims::etcd::EtcdTls, DaemonError> {
    let read = |p: &std::path::Path| std::fs::read(p).map_err(|source| DaemonError::StoreFile { path: p.display().to_string(), source });
    crate::keystore_dir::check_mode(&t.key, allow_exposed_key)?;
    Ok(exclave_claims::etcd::EtcdTls { ca: read(&t.ca)?, cert: read(&t.cert)?, key: zeroize::Zeroizing::new(read(&t.key)?) })
}

/// The etcd user and its password, read now (the file refused if group or others may read it).
fn etcd_user(c: &crate::config::ClaimsConfig, allow_exposed: bool) -> Result<Option<exclave_claims::etcd::EtcdUser>, DaemonError> {
    let (Some(name), Some(file)) = (&c.etcd_user, &c.etcd_password_file) else { return Ok(None) };
    let password = crate::keystore_dir::Password::from_file(file, allow_exposed)?;
    Ok(Some(exclave_claims::etcd::EtcdUser { name: name.clone(), password: zeroize::Zeroizing::new(password.expose().to_owned()) }))
}

/// A file's identity on this host (device and inode, hex): a copy of the file has another.
fn file_instance(path: &std::path::Path) -> Result<String, DaemonError> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).map_err(|source| DaemonError::StoreFile { path: path.display().to_string(), source })?;
    Ok(format!("{:x}.{:x}", meta.dev(), meta.ino()))
}

/// The dev secret URI for a key type: `//Alice`, except the authority-discovery key, which must
/// not share its key with babe/imon (the signer refuses `audi` signing with a protected key).
pub fn dev_suri(kt: KeyType) -> &'static str {
    if kt == KeyType::AUTHORITY_DISCOVERY {
        "//Alice//audi"
    } else {
        "//Alice"
    }
}

fn create_dev_keys(keystore: &KeystoreDir) -> Result<(), DaemonError> {
    let (existing, _) = keystore.load()?;
    for kt in DEV_KEY_TYPES {
        let Some(crypto) = kt.crypto() else { continue };
        let pair = KeyPair::from_suri(crypto, dev_suri(kt))?;
        if existing.get(kt, &pair.public()).is_none() && existing.publics(kt, None).is_empty() {
            keystore.write(kt, &pair, dev_suri(kt))?;
        }
    }
    Ok(())
}
