//! Prometheus metrics, registered on a registry passed in, and the `/metrics`, `/health` and
//! `/ready` HTTP endpoints.

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};
use std::sync::atomic::AtomicU64;

/// Labels of `exclave_requests_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// RPC method.
    pub method: &'static str,
    /// Key type (`babe`, `gran`, …), or `-`.
    pub key_type: String,
    /// Duty kind (`babe_seal`, `grandpa_vote`, `heartbeat`, `beefy_vote`, `unclaimed`, `vrf`, `-`).
    pub duty: &'static str,
    /// `signed`, `same-data`, or an error kind such as `refused-conflict`.
    pub outcome: &'static str,
}

/// Labels of `exclave_rpc_calls_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodLabel {
    /// RPC method, without the `exclave_` prefix.
    pub method: &'static str,
}

/// Labels of `exclave_transport_refusals_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// Why (`connection-limit`, `address-limit`, `handshake-timeout`, `handshake-failed`,
    /// `client-cert-not-client-auth`, `client-cert-bad-name`, `client-cert-unparsable`,
    /// `overloaded`).
    pub reason: &'static str,
}

/// Labels of `exclave_denied_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeniedLabels {
    /// The client (a `[[clients]]` name, or `unconfigured`).
    pub client: String,
    /// The operation not granted (`sign`, `vrf`, `has_keys`, `lease`, `list_keys`,
    /// `key_management`, or `certificate` for a pin mismatch).
    pub operation: &'static str,
}

/// Labels of `exclave_refusals_unlogged_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClientLabel {
    /// The client (a `[[clients]]` name, or `unconfigured`).
    pub client: String,
}

/// Labels of `exclave_lease_holder`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LeaseHolderLabels {
    /// The validator (lease name).
    pub validator: String,
    /// A node identity.
    pub node: String,
}

/// Labels of `exclave_key_last_signed_timestamp_seconds`: a key the signer holds.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KeyLabels {
    /// Key type (`babe`, `gran`, …).
    pub key_type: String,
    /// The public key, `0x` hex.
    pub key: String,
}

/// A validator label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ValidatorLabel {
    /// The validator (lease name).
    pub validator: String,
}

/// The signer's metrics.
#[derive(Clone)]
pub struct Metrics {
    /// Requests by method, key type, duty and outcome.
    pub requests: Family<RequestLabels, Counter>,
    /// Every JSON-RPC call received from an authenticated client, by method (the round trips a
    /// node's keystore makes).
    pub rpc_calls: Family<MethodLabel, Counter>,
    /// Connections and requests the transport turned away, by reason.
    pub transport_refusals: Family<ReasonLabel, Counter>,
    /// Requests refused because the client is not granted them (`[[clients]]`).
    pub denied: Family<DeniedLabels, Counter>,
    /// Signing-log appends that failed (write or fdatasync): their replies were withheld.
    pub log_write_errors: Counter,
    /// Refusals answered but not written to the signing log (over the client's budget).
    pub refusals_unlogged: Family<ClientLabel, Counter>,
    /// Client connections open now (past the TLS handshake or waiting for it).
    pub connections_open: Gauge,
    /// Time for the claim store to answer a claim, seconds.
    pub claim_seconds: Histogram,
    /// Time from request to reply for signing methods, seconds.
    pub sign_seconds: Histogram,
    /// Claims whose store answer was an error or deadline (outcome unknown, then re-read).
    pub store_ambiguous: Counter,
    /// Keys held.
    pub keys: Gauge,
    /// 1 for the node holding a validator's lease as this signer last saw it, 0 for earlier holders.
    pub lease_holder: Family<LeaseHolderLabels, Gauge>,
    /// Takeovers of a lease (a new holder after the old one let it expire) written by this signer.
    pub lease_takeovers: Family<ValidatorLabel, Counter>,
    /// Unix time of the last signature released for each key (only keys the signer holds, so
    /// the label set is bounded by the keystore).
    pub key_last_signed: Family<KeyLabels, Gauge<f64, AtomicU64>>,
    /// Bytes available to the signer on the filesystem holding the signing log (read at scrape).
    pub log_disk_available: Gauge,
    /// Size in bytes of the filesystem holding the signing log (read at scrape).
    pub log_disk_size: Gauge,
}

fn latency_buckets() -> impl Iterator<Item = f64> {
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0].into_iter()
}

impl Metrics {
    /// Create the metrics and register them on `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self {
            requests: Family::default(),
            rpc_calls: Family::default(),
            transport_refusals: Family::default(),
            denied: Family::default(),
            refusals_unlogged: Family::default(),
            log_write_errors: Counter::default(),
            connections_open: Gauge::default(),
            claim_seconds: Histogram::new(latency_buckets()),
            sign_seconds: Histogram::new(latency_buckets()),
            store_ambiguous: Counter::default(),
            keys: Gauge::default(),
            lease_holder: Family::default(),
            lease_takeovers: Family::default(),
            key_last_signed: Family::default(),
            log_disk_available: Gauge::default(),
            log_disk_size: Gauge::default(),
        };
        let r = registry.sub_registry_with_prefix("exclave");
        r.register("requests", "Signer requests by method, key type, duty and outcome", m.requests.clone());
        r.register("rpc_calls", "JSON-RPC calls received, by method", m.rpc_calls.clone());
        r.register("transport_refusals", "Connections and requests the RPC transport turned away, by reason", m.transport_refusals.clone());
        r.register("denied", "Requests refused because the client is not granted them", m.denied.clone());
        r.register(
            "log_write_errors",
            "Signing-log appends that failed (write or fdatasync); their replies were withheld",
            m.log_write_errors.clone(),
        );
        r.register(
            "refusals_unlogged",
            "Refused requests answered but not written to the signing log: the client is over its refused-request budget",
            m.refusals_unlogged.clone(),
        );
        r.register("connections_open", "Client connections open on the RPC listener", m.connections_open.clone());
        r.register("claim_seconds", "Claim-store latency of one claim", m.claim_seconds.clone());
        r.register("sign_seconds", "Latency of signing requests, request to reply", m.sign_seconds.clone());
        r.register("store_ambiguous", "Claims whose store answer was an error or deadline", m.store_ambiguous.clone());
        r.register("keys", "Keys held by the signer", m.keys.clone());
        r.register(
            "lease_holder",
            "1 for the node holding the validator's active-node lease as this signer last saw it",
            m.lease_holder.clone(),
        );
        r.register("lease_takeovers", "Active-node lease takeovers written by this signer", m.lease_takeovers.clone());
        r.register(
            "key_last_signed_timestamp_seconds",
            "Unix time of the last signature this signer released for the key",
            m.key_last_signed.clone(),
        );
        r.register(
            "signing_log_disk_available_bytes",
            "Bytes available on the filesystem of the signing log",
            m.log_disk_available.clone(),
        );
        r.register("signing_log_disk_size_bytes", "Size of the filesystem of the signing log", m.log_disk_size.clone());
        m
    }

    /// Read the signing log's filesystem usage into the disk gauges (at each scrape).
    pub fn observe_log_disk(&self, log: &std::path::Path) {
        if let Some((avail, size)) = log_disk(log) {
            self.log_disk_available.set(i64::try_from(avail).unwrap_or(i64::MAX));
            self.log_disk_size.set(i64::try_from(size).unwrap_or(i64::MAX));
        }
    }
}

/// Bytes available to the signer and total size of the filesystem holding the signing log
/// `log`; `None` (with a warning) if it cannot be read.
pub fn log_disk(log: &std::path::Path) -> Option<(u64, u64)> {
    let dir = log.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    match rustix::fs::statvfs(dir) {
        Ok(st) => Some((st.f_bavail.saturating_mul(st.f_frsize), st.f_blocks.saturating_mul(st.f_frsize))),
        Err(e) => {
            tracing::warn!(path = %dir.display(), error = %e, "cannot read the signing log's filesystem usage");
            None
        }
    }
}
