//! The signer's configuration file (`exclave.toml`): strict TOML, every key documented.
//! `Serialize` too, so tools and tests write configs from the same types they are read into.

use exclave_policies::{is_loopback_endpoint, ChainId};
use serde::{Deserialize, Serialize};
use std::{net::SocketAddr, path::PathBuf};

/// The whole configuration.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// This signer's id, recorded in every claim it makes (e.g. `signer-a`).
    pub signer_id: String,
    /// The chain's genesis hash (`0x` + 64 hex digits): the only chain this signer signs for.
    pub chain: String,
    /// The keystore directory (Substrate `LocalKeystore` format: one file per key).
    pub keystore_dir: PathBuf,
    /// A password-protected Substrate keystore: the file holding its password (mode 0600; one
    /// trailing newline ignored), as the node's `--password-filename`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keystore_password_file: Option<PathBuf>,
    /// Key files encrypted at rest (age), with a passphrase from a file or a systemd credential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keystore_encryption: Option<KeystoreEncryption>,
    /// The signing log (append-only JSON lines, hash-chained).
    pub signing_log: PathBuf,
    /// The JSON-RPC listener.
    pub listen: ListenConfig,
    /// The metrics listener.
    #[serde(default)]
    pub metrics: Option<MetricsConfig>,
    /// BABE slot settings.
    pub babe: BabeConfig,
    /// The claim store.
    pub claims: ClaimsConfig,
    /// Signing-log checkpoints and rotation.
    #[serde(default)]
    pub audit: AuditConfig,
    /// The active-node lease (on by default).
    #[serde(default)]
    pub lease: LeaseConfig,
    /// Load key files, the TLS key and the audit key even when group or others may read them
    /// (with a warning). Off: such files are refused. Only for filesystems without Unix modes.
    #[serde(default)]
    pub insecure_key_file_permissions: bool,
    /// Per-client permissions (`[[clients]]`): a client not named here may do nothing. At least
    /// one entry is required.
    #[serde(default)]
    pub clients: Vec<crate::grants::ClientConfig>,
}

/// `[keystore_encryption]`: where the keystore passphrase comes from (exactly one of the two).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KeystoreEncryption {
    /// A file holding the passphrase (mode 0600; one trailing newline ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passphrase_file: Option<PathBuf>,
    /// The name of a systemd credential holding it (`LoadCredential=` or
    /// `LoadCredentialEncrypted=`; read from `$CREDENTIALS_DIRECTORY`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passphrase_credential: Option<String>,
}

impl KeystoreEncryption {
    /// Read the passphrase.
    pub fn passphrase(&self, allow_exposed: bool) -> Result<crate::keystore_dir::Password, crate::keystore_dir::KeyError> {
        use crate::keystore_dir::Password;
        match (&self.passphrase_file, &self.passphrase_credential) {
            (Some(file), _) => Password::from_file(file, allow_exposed),
            (None, Some(name)) => Password::from_credential(name, allow_exposed),
            (None, None) => unreachable!("validated: one source is set"),
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        match (&self.passphrase_file, &self.passphrase_credential) {
            (Some(_), None) => Ok(()),
            (None, Some(name)) if !name.is_empty() && !name.contains('/') && name != "." && name != ".." => Ok(()),
            (None, Some(name)) => {
                Err(ConfigError::Invalid(format!("keystore_encryption.passphrase_credential {name:?} must be a credential name (no '/')")))
            }
            _ => Err(ConfigError::Invalid("[keystore_encryption] needs exactly one of passphrase_file and passphrase_credential".into())),
        }
    }
}

/// The active-node lease: of several nodes of one validator, only the holder authors and votes.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LeaseConfig {
    /// `false` turns the lease off: every node asks for every duty and the claims alone decide
    /// (safe, but a node refused a GRANDPA vote stops). For a validator with a single node.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// How long a lease lasts after its last renewal. The bound on failover: a standby node
    /// takes over at most this long (plus one renewal interval) after the active node stopped.
    #[serde(default = "default_lease_duration_ms")]
    pub duration_ms: u64,
    /// The active node renews once its lease is this old (nodes call `exclave_lease` this often).
    #[serde(default = "default_lease_renew_ms")]
    pub renew_ms: u64,
    /// The lease name for every key not in a `[[lease.groups]]` entry: the validator. Default:
    /// derived from the lowest BABE public key held (`babe-<hex>`).
    #[serde(default)]
    pub validator: Option<String>,
    /// The node identities (client certificate names) that may hold that lease; empty: any.
    #[serde(default)]
    pub nodes: Vec<String>,
    /// Named key groups, when one signer holds several validators' keys.
    #[serde(default)]
    pub groups: Vec<LeaseGroup>,
}

/// One validator's keys, for a signer holding several validators'.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LeaseGroup {
    /// The lease name (the validator).
    pub name: String,
    /// Its public keys (`0x` + hex), any key type.
    pub keys: Vec<String>,
    /// The node identities that may hold its lease; empty: any. Set it whenever one signer holds
    /// several validators' keys, or another validator's node could take this one's lease.
    #[serde(default)]
    pub nodes: Vec<String>,
}

impl Default for LeaseConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            duration_ms: default_lease_duration_ms(),
            renew_ms: default_lease_renew_ms(),
            validator: None,
            nodes: Vec::new(),
            groups: Vec::new(),
        }
    }
}

impl LeaseConfig {
    /// The engine's lease settings (`None` when disabled).
    pub fn settings(&self) -> Result<Option<crate::lease::LeaseSettings>, ConfigError> {
        if !self.enabled {
            return Ok(None);
        }
        if self.renew_ms == 0 || self.renew_ms >= self.duration_ms {
            return Err(ConfigError::Invalid("lease.renew_ms must be > 0 and below lease.duration_ms".into()));
        }
        let valid_name = |n: &str| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        let mut groups = Vec::new();
        for g in &self.groups {
            if !valid_name(&g.name) {
                return Err(ConfigError::Invalid(format!(
                    "lease.groups: name {:?} must be non-empty ASCII letters, digits, '-', '_' or '.'",
                    g.name
                )));
            }
            let keys = g
                .keys
                .iter()
                .map(|k| {
                    k.strip_prefix("0x")
                        .and_then(|h| hex::decode(h).ok())
                        .ok_or_else(|| ConfigError::Invalid(format!("lease.groups {}: key {k:?} is not 0x-prefixed hex", g.name)))
                })
                .collect::<Result<Vec<_>, _>>()?;
            groups.push(crate::lease::LeaseGroup { name: g.name.clone(), keys, nodes: g.nodes.clone() });
        }
        if self.validator.as_deref().is_some_and(|v| !valid_name(v)) {
            return Err(ConfigError::Invalid("lease.validator must be non-empty ASCII letters, digits, '-', '_' or '.'".into()));
        }
        Ok(Some(crate::lease::LeaseSettings {
            timing: exclave_policies::LeaseTiming { duration_ms: self.duration_ms, renew_after_ms: self.renew_ms },
            validator: self.validator.clone().unwrap_or_default(),
            nodes: self.nodes.clone(),
            groups,
        }))
    }
}

fn default_true() -> bool {
    true
}

/// Two 6-second BABE slots at most: a lease of 6 s renewed every second. See
/// docs/operations.md ("Several nodes and signers") for the trade-off.
fn default_lease_duration_ms() -> u64 {
    6000
}

fn default_lease_renew_ms() -> u64 {
    1000
}

/// Signing-log checkpoints (signed with the audit key) and rotation.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// A checkpoint after this many records.
    #[serde(default = "default_checkpoint_every")]
    pub checkpoint_every: u64,
    /// A checkpoint at most this many milliseconds after an unattested record.
    #[serde(default = "default_checkpoint_interval_ms")]
    pub checkpoint_interval_ms: u64,
    /// Rotate the active log file once it reaches this many bytes (the chain continues).
    #[serde(default = "default_rotate_bytes")]
    pub rotate_bytes: u64,
    /// `/ready` fails while the signing log's filesystem has less than this many bytes free
    /// (default 512 MiB), well before a full disk withholds every signature.
    #[serde(default = "default_min_free_bytes")]
    pub min_free_bytes: u64,
    /// Refused requests written to the log per client per minute (and at most that many at
    /// once); past it, refusals are still answered, counted in
    /// `exclave_refusals_unlogged_total` and summed into the client's next record.
    #[serde(default = "default_refused_per_client_per_minute")]
    pub refused_per_client_per_minute: u32,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            checkpoint_every: default_checkpoint_every(),
            checkpoint_interval_ms: default_checkpoint_interval_ms(),
            rotate_bytes: default_rotate_bytes(),
            min_free_bytes: default_min_free_bytes(),
            refused_per_client_per_minute: default_refused_per_client_per_minute(),
        }
    }
}

/// The default of `audit.min_free_bytes`: 512 MiB.
pub fn default_min_free_bytes() -> u64 {
    512 << 20
}

/// The default of `audit.refused_per_client_per_minute`: 600 (10 a second).
pub fn default_refused_per_client_per_minute() -> u32 {
    600
}
fn default_checkpoint_every() -> u64 {
    1000
}

fn default_checkpoint_interval_ms() -> u64 {
    10_000
}

fn default_rotate_bytes() -> u64 {
    256 << 20
}

/// The JSON-RPC listener.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ListenConfig {
    /// Address to bind, e.g. `0.0.0.0:9955`.
    pub address: SocketAddr,
    /// PEM certificate chain of the server.
    pub tls_cert: PathBuf,
    /// PEM private key of the server (mode 0600).
    pub tls_key: PathBuf,
    /// PEM CA certificate(s) that client certificates must chain to. Mutual TLS is mandatory.
    pub client_ca: PathBuf,
    /// Largest request body accepted, in bytes.
    #[serde(default = "default_max_request_bytes")]
    pub max_request_bytes: u32,
    /// Connections open at once, from all clients (more are closed at once).
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Connections open at once from one IP address.
    #[serde(default = "default_max_connections_per_address")]
    pub max_connections_per_address: usize,
    /// Requests served at once; more are answered `503 overloaded` at once, not queued.
    #[serde(default = "default_max_concurrent_requests")]
    pub max_concurrent_requests: usize,
    /// Longest JSON-RPC batch accepted.
    #[serde(default = "default_max_batch")]
    pub max_batch: u32,
    /// Time a client has to complete the TLS handshake, in milliseconds.
    #[serde(default = "default_handshake_timeout_ms")]
    pub handshake_timeout_ms: u64,
    /// Time from a request's headers to its answer, body included, in milliseconds (a dripped
    /// body is cut with 408). Must exceed twice `claims.deadline_ms`.
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// A connection with no request being served for this long is closed, in milliseconds: an
    /// idle kept-alive connection, and one whose request headers never complete (dripped).
    #[serde(default = "default_idle_timeout_ms")]
    pub idle_timeout_ms: u64,
    /// PEM certificate revocation list(s) of `client_ca`: a revoked client certificate fails the
    /// handshake. Read at start-up (restart the signer after updating it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crl: Option<PathBuf>,
}

impl ListenConfig {
    /// A listener on `address` with these TLS files and the default limits.
    pub fn new(address: SocketAddr, tls_cert: PathBuf, tls_key: PathBuf, client_ca: PathBuf) -> Self {
        Self {
            address,
            tls_cert,
            tls_key,
            client_ca,
            max_request_bytes: default_max_request_bytes(),
            max_connections: default_max_connections(),
            max_connections_per_address: default_max_connections_per_address(),
            max_concurrent_requests: default_max_concurrent_requests(),
            max_batch: default_max_batch(),
            handshake_timeout_ms: default_handshake_timeout_ms(),
            request_timeout_ms: default_request_timeout_ms(),
            idle_timeout_ms: default_idle_timeout_ms(),
            crl: None,
        }
    }

    /// The listener's limits.
    pub fn limits(&self) -> crate::server::ServerLimits {
        crate::server::ServerLimits {
            max_request_bytes: self.max_request_bytes,
            max_connections: self.max_connections,
            max_connections_per_address: self.max_connections_per_address,
            max_concurrent_requests: self.max_concurrent_requests,
            max_batch: self.max_batch,
            handshake_timeout: std::time::Duration::from_millis(self.handshake_timeout_ms),
            request_timeout: std::time::Duration::from_millis(self.request_timeout_ms),
            idle_timeout: std::time::Duration::from_millis(self.idle_timeout_ms),
        }
    }
}

fn default_max_request_bytes() -> u32 {
    crate::server::ServerLimits::default().max_request_bytes
}
fn default_max_connections() -> usize {
    crate::server::ServerLimits::default().max_connections
}
fn default_max_connections_per_address() -> usize {
    crate::server::ServerLimits::default().max_connections_per_address
}
fn default_max_concurrent_requests() -> usize {
    crate::server::ServerLimits::default().max_concurrent_requests
}
fn default_max_batch() -> u32 {
    crate::server::ServerLimits::default().max_batch
}
fn default_request_timeout_ms() -> u64 {
    crate::server::ServerLimits::default().request_timeout.as_millis() as u64
}
fn default_idle_timeout_ms() -> u64 {
    crate::server::ServerLimits::default().idle_timeout.as_millis() as u64
}
fn default_handshake_timeout_ms() -> u64 {
    crate::server::ServerLimits::default().handshake_timeout.as_millis() as u64
}

/// The metrics listener (`/metrics`, `/health`, `/ready`), plain HTTP.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Address to bind; default `127.0.0.1:9956` (loopback: plain HTTP, no authentication).
    #[serde(default = "default_metrics_address")]
    pub address: SocketAddr,
}

fn default_metrics_address() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9956))
}

/// BABE slot settings.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BabeConfig {
    /// The chain's slot duration in milliseconds.
    pub slot_duration_ms: u64,
    /// How many slots away from the wall-clock slot a seal or VRF request may be.
    #[serde(default = "default_max_drift")]
    pub max_drift_slots: u64,
    /// The chain's first slot; earlier slots are refused.
    #[serde(default)]
    pub genesis_slot: u64,
}

fn default_max_drift() -> u64 {
    2
}

/// Which claim store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// The embedded redb store (one signer).
    Embedded,
    /// An etcd cluster (several signers share it).
    Etcd,
    /// A TiKV cluster, raw API in atomic mode (several signers share it).
    Tikv,
}

/// The claim store.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimsConfig {
    /// `embedded`, `etcd` or `tikv`.
    pub backend: Backend,
    /// The embedded store's file (backend `embedded`).
    pub path: Option<PathBuf>,
    /// Deadline for every store call, in milliseconds.
    #[serde(default = "default_deadline_ms")]
    pub deadline_ms: u64,
    /// Backend `etcd`: the client URLs of every member, e.g. `["http://10.0.0.1:2379", …]`.
    /// Backend `tikv`: the PD endpoints, e.g. `["10.0.0.1:2379", …]`.
    #[serde(default)]
    pub endpoints: Vec<String>,
    /// The most one request may take before it is retried (etcd: on the next member; tikv: the
    /// client's own gRPC timeout), in ms.
    #[serde(default = "default_attempt_timeout_ms")]
    pub attempt_timeout_ms: u64,
    /// Backend `tikv`: the API v2 keyspace the claims live in (create it in PD first). Strongly
    /// recommended: it keeps Exclave's keys apart from every other user of the cluster.
    #[serde(default)]
    pub keyspace: Option<String>,
    /// Backend `tikv`: the most building a client (PD discovery) may take, in ms; it runs in the
    /// background and never holds a request longer than `deadline_ms`.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Backends `tikv` and `etcd`: mutual TLS to the store (PEM files; all three or none). For
    /// etcd the endpoints are then `https://…`, and with the cluster's `--client-cert-auth` the
    /// certificate's common name is the etcd user.
    #[serde(default)]
    pub tls: Option<StoreTls>,
    /// Backend `tikv` without `tls`: PD endpoints off loopback are refused unless this is set
    /// (then keep the cluster on a private network).
    #[serde(default)]
    pub insecure_plaintext_tikv: bool,
    /// etcd traffic is not yet encrypted or authenticated: members off loopback are refused
    /// unless this is set (then keep etcd on a private network).
    #[serde(default)]
    pub insecure_plaintext_etcd: bool,
    /// etcd password authentication (the cluster's `auth enable`): the etcd user. Needs
    /// `etcd_password_file`. With `[claims.tls]` too, TLS protects the password on the wire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etcd_user: Option<String>,
    /// The file holding `etcd_user`'s password (mode 0600; one trailing newline ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etcd_password_file: Option<PathBuf>,
}

impl ClaimsConfig {
    /// A `[claims]` table for `backend` with every optional key at its default.
    pub fn new(backend: Backend) -> Self {
        Self {
            backend,
            path: None,
            deadline_ms: default_deadline_ms(),
            endpoints: Vec::new(),
            attempt_timeout_ms: default_attempt_timeout_ms(),
            keyspace: None,
            connect_timeout_ms: default_connect_timeout_ms(),
            tls: None,
            insecure_plaintext_tikv: false,
            insecure_plaintext_etcd: false,
            etcd_user: None,
            etcd_password_file: None,
        }
    }
}

/// TLS files for the connection to the claim store.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StoreTls {
    /// The CA that signed the store's certificates.
    pub ca: PathBuf,
    /// This signer's client certificate.
    pub cert: PathBuf,
    /// Its private key.
    pub key: PathBuf,
}

fn default_connect_timeout_ms() -> u64 {
    5000
}

fn default_attempt_timeout_ms() -> u64 {
    500
}

fn default_deadline_ms() -> u64 {
    2000
}

/// Why a configuration is unusable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {source}")]
    Read {
        /// Where.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML is invalid or has unknown keys.
    #[error("invalid config {path}: {message}")]
    Parse {
        /// Where.
        path: String,
        /// The parser's message, naming the field.
        message: String,
    },
    /// A value is out of range.
    #[error("invalid config: {0}")]
    Invalid(String),
}

impl Config {
    /// Read and validate a config file.
    pub fn load(path: &std::path::Path) -> Result<Self, ConfigError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: p.clone(), source })?;
        let config: Config = toml::from_str(&text).map_err(|e| ConfigError::Parse { path: p, message: e.to_string() })?;
        config.validate()?;
        Ok(config)
    }

    /// The `[[clients]]` grants, checked against the lease's validator names.
    pub fn grants(&self) -> Result<crate::grants::Grants, ConfigError> {
        let validators: Vec<String> =
            self.lease.validator.iter().cloned().chain(self.lease.groups.iter().map(|g| g.name.clone())).collect();
        crate::grants::Grants::from_config(&self.clients, &validators).map_err(|e| ConfigError::Invalid(e.to_string()))
    }

    /// Check values a type cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        parse_chain(&self.chain)?;
        if self.signer_id.is_empty() || self.signer_id.contains('/') {
            return Err(ConfigError::Invalid("signer_id must be non-empty and contain no '/'".into()));
        }
        if self.babe.slot_duration_ms == 0 {
            return Err(ConfigError::Invalid("babe.slot_duration_ms must be > 0".into()));
        }
        if self.audit.checkpoint_every == 0
            || self.audit.checkpoint_interval_ms == 0
            || self.audit.rotate_bytes < 4096
            || self.audit.refused_per_client_per_minute == 0
        {
            return Err(ConfigError::Invalid(
                "audit.checkpoint_every, checkpoint_interval_ms and refused_per_client_per_minute must be > 0 and audit.rotate_bytes at least 4096".into(),
            ));
        }
        self.lease.settings()?;
        self.grants()?;
        if let Some(e) = &self.keystore_encryption {
            e.validate()?;
        }
        let l = &self.listen;
        if l.max_connections == 0
            || l.max_connections_per_address == 0
            || l.max_concurrent_requests == 0
            || l.max_batch == 0
            || l.handshake_timeout_ms == 0
            || l.idle_timeout_ms == 0
        {
            return Err(ConfigError::Invalid(
                "listen.max_connections, max_connections_per_address, max_concurrent_requests, max_batch, handshake_timeout_ms and idle_timeout_ms must be > 0"
                    .into(),
            ));
        }
        if l.request_timeout_ms <= 2 * self.claims.deadline_ms {
            return Err(ConfigError::Invalid(format!(
                "listen.request_timeout_ms ({}) must exceed twice claims.deadline_ms ({}): a claim and its re-read must fit in a request",
                l.request_timeout_ms, self.claims.deadline_ms
            )));
        }
        if self.claims.deadline_ms == 0 {
            return Err(ConfigError::Invalid("claims.deadline_ms must be > 0".into()));
        }
        if self.claims.backend != Backend::Etcd && (self.claims.etcd_user.is_some() || self.claims.etcd_password_file.is_some()) {
            return Err(ConfigError::Invalid("claims.etcd_user and claims.etcd_password_file are for backend = \"etcd\"".into()));
        }
        match self.claims.backend {
            Backend::Embedded if self.claims.path.is_none() => {
                return Err(ConfigError::Invalid("claims.path is required for backend = \"embedded\"".into()));
            }
            Backend::Etcd => self.validate_etcd()?,
            Backend::Tikv => self.validate_tikv()?,
            Backend::Embedded => {}
        }
        Ok(())
    }

    /// Settings that work but that an operator should hear about at start-up.
    pub fn warnings(&self) -> Vec<String> {
        let (lease, deadline) = (&self.lease, self.claims.deadline_ms);
        let mut out = Vec::new();
        if lease.enabled && lease.renew_ms.saturating_add(deadline) > lease.duration_ms {
            out.push(format!(
                "lease.duration_ms ({}) is below lease.renew_ms + claims.deadline_ms ({} + {deadline}): \
                 a renewal that waits out a slow store can find the lease expired, and a standby node take over",
                lease.duration_ms, lease.renew_ms
            ));
        }
        out
    }

    /// What etcd and TiKV share: endpoints listed, an attempt shorter than the deadline.
    fn validate_replicated(&self, what: &str, backend: &str) -> Result<(), ConfigError> {
        let c = &self.claims;
        if c.endpoints.is_empty() {
            return Err(ConfigError::Invalid(format!("claims.endpoints must list the {what} for backend = \"{backend}\"")));
        }
        if c.attempt_timeout_ms == 0 || c.attempt_timeout_ms >= c.deadline_ms {
            return Err(ConfigError::Invalid("claims.attempt_timeout_ms must be > 0 and below claims.deadline_ms".into()));
        }
        Ok(())
    }

    fn validate_tikv(&self) -> Result<(), ConfigError> {
        self.validate_replicated("PD endpoints", "tikv")?;
        let c = &self.claims;
        if c.connect_timeout_ms == 0 {
            return Err(ConfigError::Invalid("claims.connect_timeout_ms must be > 0".into()));
        }
        if c.keyspace.as_deref() == Some("") {
            return Err(ConfigError::Invalid("claims.keyspace must not be empty (leave it out for API v1 raw keys)".into()));
        }
        if let Some(tls) = &c.tls {
            for (field, path) in [("ca", &tls.ca), ("cert", &tls.cert), ("key", &tls.key)] {
                if !path.is_file() {
                    return Err(ConfigError::Invalid(format!("claims.tls.{field}: {} is not a readable file", path.display())));
                }
            }
        } else if let Some(remote) = c.endpoints.iter().find(|e| !is_loopback_endpoint(e)) {
            if !c.insecure_plaintext_tikv {
                return Err(ConfigError::Invalid(format!(
                    "PD endpoint {remote} is not on loopback and claims.tls is not set; configure [claims.tls], or set claims.insecure_plaintext_tikv = true only on a private network"
                )));
            }
        }
        Ok(())
    }

    fn validate_etcd(&self) -> Result<(), ConfigError> {
        self.validate_replicated("etcd members", "etcd")?;
        let c = &self.claims;
        match (&c.etcd_user, &c.etcd_password_file) {
            (Some(user), Some(_)) if user.is_empty() => return Err(ConfigError::Invalid("claims.etcd_user is empty".into())),
            (Some(_), Some(_)) | (None, None) => {}
            _ => return Err(ConfigError::Invalid("claims.etcd_user and claims.etcd_password_file go together".into())),
        }
        if c.tls.is_some() {
            if let Some(plain) = c.endpoints.iter().find(|e| !e.starts_with("https://")) {
                return Err(ConfigError::Invalid(format!("etcd endpoint {plain}: with [claims.tls] every endpoint is https://")));
            }
            return Ok(());
        }
        if let Some(remote) = c.endpoints.iter().find(|e| !is_loopback_endpoint(e)) {
            if !c.insecure_plaintext_etcd {
                return Err(ConfigError::Invalid(format!(
                    "etcd endpoint {remote} is not on loopback and [claims.tls] is not set: configure mutual TLS (ca, cert, key; https:// endpoints), or set claims.insecure_plaintext_etcd = true only on a private network"
                )));
            }
        }
        Ok(())
    }
}

/// Parse a `0x`-prefixed 32-byte genesis hash.
pub fn parse_chain(s: &str) -> Result<[u8; 32], ConfigError> {
    s.parse::<ChainId>().map(|c| c.0).map_err(|e| ConfigError::Invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal valid config with the given `[lease]` lines and `claims.deadline_ms`.
    fn config(lease: &str, deadline_ms: u64) -> Config {
        let text = format!(
            "signer_id = \"s\"\nchain = \"0x{}\"\nkeystore_dir = \"k\"\nsigning_log = \"l\"\n\
             [listen]\naddress = \"127.0.0.1:0\"\ntls_cert = \"c\"\ntls_key = \"k\"\nclient_ca = \"a\"\n\
             [babe]\nslot_duration_ms = 6000\n\
             [claims]\nbackend = \"embedded\"\npath = \"c.redb\"\ndeadline_ms = {deadline_ms}\n\
             [[clients]]\nname = \"n\"\nkeys = [\"*\"]\n\
             [lease]\n{lease}",
            "11".repeat(32)
        );
        let c: Config = toml::from_str(&text).expect("test config parses");
        c.validate().expect("test config is valid");
        c
    }

    #[test]
    fn lease_shorter_than_renewal_plus_store_deadline_is_warned_about() {
        let cases = [
            ("", 2000, None),
            ("duration_ms = 3000\nrenew_ms = 1000\n", 2000, None),
            (
                "duration_ms = 2999\nrenew_ms = 1000\n",
                2000,
                Some("lease.duration_ms (2999) is below lease.renew_ms + claims.deadline_ms (1000 + 2000)"),
            ),
            ("duration_ms = 6000\nrenew_ms = 1000\n", 5001, Some("(1000 + 5001)")),
            ("enabled = false\nduration_ms = 2000\nrenew_ms = 1000\n", 2000, None),
        ];
        for (lease, deadline, want) in cases {
            let w = config(lease, deadline).warnings();
            match want {
                None => assert!(w.is_empty(), "{lease:?}/{deadline}: {w:?}"),
                Some(text) => assert!(w.len() == 1 && w[0].contains(text), "{lease:?}/{deadline}: {w:?}"),
            }
        }
    }

    #[test]
    fn etcd_off_loopback_needs_mutual_tls_or_the_insecure_switch() {
        let tls = "[claims.tls]\nca = \"ca.pem\"\ncert = \"c.pem\"\nkey = \"c.key\"\n";
        let cases = [
            ("[\"http://10.0.0.1:2379\"]", "", Err("[claims.tls] is not set")),
            ("[\"http://10.0.0.1:2379\"]", "insecure_plaintext_etcd = true\n", Ok(())),
            ("[\"https://10.0.0.1:2379\"]", tls, Ok(())),
            ("[\"http://10.0.0.1:2379\"]", tls, Err("every endpoint is https://")),
            ("[\"http://127.0.0.1:2379\"]", "", Ok(())),
            ("[\"http://127.0.0.1:2379\"]", "etcd_user = \"u\"\netcd_password_file = \"p\"\n", Ok(())),
            ("[\"http://127.0.0.1:2379\"]", "etcd_user = \"u\"\n", Err("go together")),
            ("[\"http://127.0.0.1:2379\"]", "etcd_password_file = \"p\"\n", Err("go together")),
            ("[\"http://127.0.0.1:2379\"]", "etcd_user = \"\"\netcd_password_file = \"p\"\n", Err("etcd_user is empty")),
        ];
        for (endpoints, extra, want) in cases {
            let text = format!(
                "signer_id = \"s\"\nchain = \"0x{}\"\nkeystore_dir = \"k\"\nsigning_log = \"l\"\n\
                 [listen]\naddress = \"127.0.0.1:0\"\ntls_cert = \"c\"\ntls_key = \"k\"\nclient_ca = \"a\"\n\
                 [babe]\nslot_duration_ms = 6000\n\
                 [[clients]]\nname = \"n\"\nkeys = [\"*\"]\n\
                 [claims]\nbackend = \"etcd\"\nendpoints = {endpoints}\n{extra}",
                "11".repeat(32)
            );
            let config: Config = toml::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
            match (want, config.validate()) {
                (Ok(()), Ok(())) => {}
                (Err(needle), Err(e)) => assert!(e.to_string().contains(needle), "{endpoints} {extra:?}: {e}"),
                (want, got) => panic!("{endpoints} {extra:?}: got {got:?}, wanted {want:?}"),
            }
        }
    }
}
