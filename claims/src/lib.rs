//! # exclave-claims
//!
//! The claim store: where a signer records, atomically and durably, that a duty is taken and
//! with which payload, before any signature for it leaves the process.
//!
//! - [`ClaimStore`] is the trait every backend implements: one atomic *insert-if-absent, else
//!   return the existing record* operation, plus reads, listing and low watermarks.
//! - [`WithDeadline`] bounds every call of any store by a deadline; the signer only ever talks
//!   to a store through it.
//! - [`embedded::EmbeddedStore`] is the default backend: a single-file [redb] database with a
//!   group-commit writer (one fsync for every batch of concurrent claims).
//! - `etcd::EtcdStore` (feature `etcd`) keeps claims in an etcd v3 cluster, for several signers
//!   sharing one validator; each claim is one conditional transaction committed by a quorum.
//! - `tikv::TikvStore` (feature `tikv`) keeps claims in a TiKV cluster through the raw API's
//!   atomic compare-and-swap, for the same purpose.
//! - Besides claims, every store keeps small named *registers* changed only by compare-and-swap
//!   ([`ClaimStore::swap_register`]): the signer keeps its store identity and the per-validator
//!   active-node lease in them.
//! - [`PruneClaims`] (deleting claims, for an operator's prune; not part of [`ClaimStore`]) and
//!   [`list_all`] (a whole prefix through [`ClaimStore::list`]'s pages).
//! - [`interchange`]: export, import and prune of protection history (`exclave claims …`),
//!   written against the traits so they work on every backend.
//! - `conformance` (feature `conformance`) is the suite every backend must pass; with `etcd`
//!   too, `etcd::local_cluster` starts a real local etcd cluster for tests.
//!
//! What this crate is **not**: it decides nothing. Whether a claim may be signed is
//! `exclave-policies`' verdict; this crate only makes the claim atomic and durable.

mod deadline;
pub mod embedded;
mod error;
#[cfg(feature = "etcd")]
pub mod etcd;
pub mod interchange;
pub mod prune;
#[cfg(feature = "tikv")]
pub mod tikv;

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;

pub use deadline::WithDeadline;
pub use error::StoreError;
pub use prune::{list_all, PruneClaims};

use async_trait::async_trait;
use exclave_policies::{ClaimKey, ClaimRecord, Position, WatermarkKey};

/// The result of an atomic claim attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// The record was inserted and is durable.
    Inserted,
    /// A record was already present (possibly our own, after a lost reply): here it is.
    Existing(ClaimRecord),
}

/// A claim store. Every implementation must make `claim` atomic (one winner per key, across
/// every process sharing the store) and durable before it returns `Inserted`.
#[async_trait]
pub trait ClaimStore: Send + Sync + 'static {
    /// A short backend name for logs and metrics (`embedded`, `etcd`, `tikv`).
    fn backend(&self) -> &'static str;

    /// Insert `record` under `key` if no record exists; otherwise return the existing record.
    async fn claim(&self, key: &ClaimKey, record: &ClaimRecord) -> Result<ClaimOutcome, StoreError>;

    /// Read the record under `key`.
    async fn get(&self, key: &ClaimKey) -> Result<Option<ClaimRecord>, StoreError>;

    /// List up to `limit` raw claim keys and records whose encoded key starts with `prefix`.
    async fn list(&self, prefix: &[u8], limit: usize) -> Result<Vec<(Vec<u8>, ClaimRecord)>, StoreError>;

    /// The low watermark of a duty family, if one was set.
    async fn watermark(&self, key: &WatermarkKey) -> Result<Option<Position>, StoreError>;

    /// Raise a watermark to at least `to` (never lowers it); returns the watermark now in force.
    async fn raise_watermark(&self, key: &WatermarkKey, to: Position) -> Result<Position, StoreError>;

    /// Check the store answers (for readiness).
    async fn ping(&self) -> Result<(), StoreError>;

    /// Read the register `name` (see [`register_key`]).
    async fn register(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// Set the register `name` to `new` if it holds exactly `expected` (`None`: absent), as one
    /// atomic step across every process sharing the store; otherwise change nothing and return
    /// what it holds. After an error the outcome is unknown: read the register again.
    async fn swap_register(&self, name: &str, expected: Option<&[u8]>, new: &[u8]) -> Result<Swap, StoreError>;

    /// Whether this store implements [`ClaimStore::claim_guarded`] (etcd). The engine then
    /// claims in one round trip, without reading the watermark before or after.
    fn guards_claims(&self) -> bool {
        false
    }

    /// Claim `key` only while its family's watermark is exactly as `seen`, checked in the same
    /// atomic step as the insert: no record is written when the watermark moved. An existing
    /// record is returned whatever the watermark. After an error the outcome is unknown: read
    /// the claim again. Stores without [`ClaimStore::guards_claims`] refuse every call.
    async fn claim_guarded(&self, key: &ClaimKey, record: &ClaimRecord, seen: WatermarkSeen) -> Result<Guarded, StoreError> {
        let _ = (key, record, seen);
        Err(StoreError::Unavailable { backend: self.backend(), reason: "this store does not guard claims by their watermark".into() })
    }
}

/// A watermark as a guarding store last showed it: its position and the store's version of its
/// key (etcd: the `mod_revision`; 0: no watermark).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WatermarkSeen {
    /// The watermark (`None`: none set).
    pub position: Option<Position>,
    /// The store's version of the watermark key.
    pub version: i64,
}

/// The result of [`ClaimStore::claim_guarded`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Guarded {
    /// The claim was inserted with the watermark as seen, or a record was already there.
    Claimed(ClaimOutcome),
    /// No record under the key, and the watermark is no longer as seen: nothing was written.
    WatermarkMoved(WatermarkSeen),
}

/// The result of [`ClaimStore::swap_register`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Swap {
    /// The register now holds the new value (durably).
    Swapped,
    /// The register did not hold the expected value; this is what it holds.
    Current(Option<Vec<u8>>),
}

/// Where the register `name` is stored: `exclave/register/v1/<name>`, apart from every claim
/// and watermark key.
pub fn register_key(name: &str) -> Vec<u8> {
    [REGISTER_PREFIX, name.as_bytes()].concat()
}

/// The prefix of every register key.
pub const REGISTER_PREFIX: &[u8] = b"exclave/register/v1/";

/// Encode a record as stored (JSON, so an operator can read a store with its own tools). A
/// failure is an error, never empty bytes in the store.
pub fn encode_record(record: &ClaimRecord) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(record).map_err(|e| StoreError::Encode { what: "claim record", reason: e.to_string() })
}

/// Encode a low watermark as stored (a JSON pair `[a,b]`).
pub fn encode_watermark(position: Position) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(&position).map_err(|e| StoreError::Encode { what: "watermark", reason: e.to_string() })
}

/// Decode a stored record; `key` is only used to name the record in the error.
pub fn decode_record(key: &[u8], bytes: &[u8]) -> Result<ClaimRecord, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt { key: String::from_utf8_lossy(key).into_owned(), reason: e.to_string() })
}
