//! Moving protection history between stores and machines: `exclave claims export`, `import`
//! and `prune`, written against the [`ClaimStore`](crate::ClaimStore) trait so they
//! apply to every backend unchanged (prune also needs [`PruneClaims`](crate::PruneClaims)).
//!
//! The file format ([`format`]) is versioned JSON modelled on EIP-3076: chain genesis hash in
//! the metadata, per public key its BABE slots, GRANDPA votes, sessions and BEEFY blocks, each
//! with its payload hash when known, and low watermarks. Import raises watermarks first, then
//! inserts claims with the store's own compare-and-swap, so it is safe against running signers;
//! prune raises watermarks, waits, then deletes. The safety argument is in docs/claims.md.
//!
//! Not for: merging two histories that already conflict (a conflict is reported, the store's
//! record is kept), or backends' own backup tools.

pub mod export;
pub mod format;
mod hex_field;
pub mod import;
pub mod prune;

pub use export::export;
pub use format::Interchange;
pub use import::{import, ImportReport};
pub use prune::{prune, PruneReport};

use exclave_policies::{DutyKind, Position};

/// Why an export, import or prune stopped.
#[derive(Debug, thiserror::Error)]
pub enum InterchangeError {
    /// The store failed; nothing after this point was done.
    #[error(transparent)]
    Store(#[from] crate::StoreError),
    /// The file is for another chain.
    #[error("the file is for chain {file}, this store serves chain {expected}: refusing to import")]
    WrongChain {
        /// The file's genesis hash.
        file: String,
        /// The target chain.
        expected: String,
    },
    /// Not this format, or a version this build does not read.
    #[error("unsupported interchange file: format {format:?} version {version} (expected {expected:?} version 1)")]
    Unsupported {
        /// The file's format name.
        format: String,
        /// The file's version.
        version: u32,
        /// This build's format name.
        expected: &'static str,
    },
    /// An entry is malformed; nothing was written.
    #[error("interchange file, key {key}: {reason}; nothing was imported")]
    BadEntry {
        /// `keyType/public` of the entry.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// A stored key does not decode.
    #[error("the store holds a claim key that does not decode: {0}")]
    BadStoredKey(String),
}

/// The one duty family a key type's claims belong to.
pub fn family_of(key_type: exclave_policies::KeyType) -> Option<DutyKind> {
    match &key_type.0 {
        b"babe" => Some(DutyKind::BabeSeal),
        b"gran" => Some(DutyKind::GrandpaVote),
        b"imon" => Some(DutyKind::Heartbeat),
        b"beef" => Some(DutyKind::BeefyVote),
        _ => None,
    }
}

/// `(a, b)` as `"a,b"`.
pub fn show_position(p: Position) -> String {
    format!("{},{}", p.0, p.1)
}
