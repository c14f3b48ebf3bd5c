//! Why the engine did not sign: one precise variant per cause. The wire category of each
//! ([`EngineError::kind`]) is what the RPC layer sends (`rpc.rs` turns an `EngineError` into an
//! `ExclaveError`), what the signing log records (refused or error) and what the metrics count.

use crate::{chain::ChainError, keystore_dir::KeyError, lease::LeaseError, signing_log::LogError};
use exclave_claims::StoreError;
use exclave_policies::{KeyType, PolicyError, Refusal};
use exclave_protocol::ErrorKind;

/// Why a request was refused or failed. Every variant's message says that nothing was signed
/// where a node could wonder.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The client is not granted this operation or key (`[[clients]]`); nothing was signed.
    #[error("{0}; nothing was done")]
    Denied(#[from] crate::grants::Denied),
    /// A signing rule refused the request before any claim (opaque bytes, hash mismatch, …).
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// The verdict on the claim (conflict, watermark, slot bounds).
    #[error("{0}")]
    Refused(Refusal),
    /// The request's chain.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The signer holds no such key.
    #[error("this signer holds no {key_type} key 0x{}", hex::encode(public))]
    UnknownKey {
        /// The key type asked for.
        key_type: KeyType,
        /// The public key asked for.
        public: Vec<u8>,
    },
    /// A claim-store call failed or timed out.
    #[error("{what}: {source}; nothing was signed")]
    Store {
        /// What the engine was doing.
        what: &'static str,
        /// The store's answer.
        source: StoreError,
    },
    /// The claim's outcome is unknown and the re-read could not prove it ours (law 3).
    #[error("claim outcome unknown ({first}) and the re-read {}; nothing was signed", reread_outcome(.reread))]
    Ambiguous {
        /// The claim's own error.
        first: StoreError,
        /// The re-read's error; `None`: the re-read found no claim.
        reread: Option<StoreError>,
    },
    /// The claim store's id could not be read, so a bound request cannot be checked.
    #[error("the claim store's id could not be read; nothing was signed")]
    StoreIdUnknown,
    /// The request names another claim store than this signer's.
    #[error("this signer's claim store is {mine}, not {wanted} as the request requires; nothing was signed")]
    StoreMismatch {
        /// This signer's store id.
        mine: String,
        /// The request's.
        wanted: String,
    },
    /// The node is not one of the validator's configured nodes.
    #[error("node {client} is not one of validator {validator}'s nodes (lease.nodes); nothing was signed")]
    NotMember {
        /// The asking node.
        client: String,
        /// The validator.
        validator: String,
    },
    /// Another node holds the validator's active-node lease.
    #[error("node {client} is standby for validator {validator}: node {holder} holds the active-node lease for {expires_in_ms} ms more (term {term}); nothing was signed")]
    Standby {
        /// The asking node.
        client: String,
        /// The validator.
        validator: String,
        /// The active node.
        holder: String,
        /// How long its lease runs.
        expires_in_ms: u64,
        /// The lease term.
        term: u64,
    },
    /// The lease could not be decided before a gated duty.
    #[error("cannot confirm the active-node lease of validator {validator}: {source}; nothing was signed")]
    LeaseUnconfirmed {
        /// The validator.
        validator: String,
        /// Why.
        source: LeaseError,
    },
    /// `exclave_lease` could not read or renew a lease.
    #[error("cannot read or renew the active-node lease of validator {validator}: {source}")]
    LeaseUnavailable {
        /// The validator.
        validator: String,
        /// Why.
        source: LeaseError,
    },
    /// An `audi` request with a key also held as a protected key.
    #[error("audi: this public key is also held as a protected (babe/imon) key; signing arbitrary records with it would bypass the claims. Use a separate authority-discovery key")]
    ProtectedKeyAsAudi,
    /// A VRF request's randomness is not 32 bytes.
    #[error("randomness must be 32 bytes, got {len}")]
    BadRandomness {
        /// The length given.
        len: usize,
    },
    /// A BABE key that is not sr25519 (a keystore holding a foreign file).
    #[error("babe keys are sr25519")]
    NotSr25519,
    /// Bad key material in the request (a secret that does not derive, a wrong public key, a
    /// prehash of the wrong length).
    #[error(transparent)]
    KeyMaterial(KeyError),
    /// A seeded key was asked of a signer not in dev mode.
    #[error("generating a key from a seed is a dev shortcut; this signer was not started with --dev (insecure_dev_seeds)")]
    DevSeedsOff,
    /// The key file could not be written.
    #[error("{0}")]
    KeyWrite(KeyError),
    /// The signing log could not be written: the reply is withheld.
    #[error("{0}; the signature was withheld, retry the identical request")]
    LogWithheld(LogError),
    /// A verdict to sign reached the end without a fresh claim (a bug; nothing is released).
    #[error("verdict Sign without a fresh claim; nothing was signed")]
    VerdictWithoutClaim,
}

fn reread_outcome(reread: &Option<StoreError>) -> String {
    match reread {
        None => "found no claim".into(),
        Some(e) => format!("failed ({e})"),
    }
}

impl EngineError {
    /// The wire category (and stable code) of this error.
    pub fn kind(&self) -> ErrorKind {
        use EngineError as E;
        match self {
            E::Policy(PolicyError::UnsupportedKeyType { .. } | PolicyError::WrongCrypto { .. }) => ErrorKind::BadRequest,
            E::Policy(_) | E::ProtectedKeyAsAudi => ErrorKind::RefusedPolicy,
            E::Refused(Refusal::Conflict { .. }) => ErrorKind::RefusedConflict,
            E::Refused(_) => ErrorKind::RefusedPolicy,
            E::Chain(ChainError::Mismatch { .. }) => ErrorKind::RefusedPolicy,
            E::Chain(ChainError::BadLength { .. }) => ErrorKind::BadRequest,
            E::Chain(ChainError::PinWrite { .. }) => ErrorKind::Internal,
            E::UnknownKey { .. } => ErrorKind::UnknownKey,
            E::Store { .. } | E::Ambiguous { .. } | E::StoreIdUnknown | E::LeaseUnconfirmed { .. } | E::LeaseUnavailable { .. } => {
                ErrorKind::StoreUnavailable
            }
            E::StoreMismatch { .. } => ErrorKind::StoreMismatch,
            E::NotMember { .. } | E::Standby { .. } => ErrorKind::NotActive,
            E::BadRandomness { .. } | E::NotSr25519 | E::KeyMaterial(_) => ErrorKind::BadRequest,
            E::DevSeedsOff | E::Denied(_) => ErrorKind::Unauthorised,
            E::KeyWrite(_) | E::LogWithheld(_) | E::VerdictWithoutClaim => ErrorKind::Internal,
        }
    }

    /// Structured detail for the wire's `data` (a refusal: the existing claim).
    pub fn data(&self) -> Option<serde_json::Value> {
        match self {
            EngineError::Refused(r) => serde_json::to_value(r).ok(),
            _ => None,
        }
    }
}
