//! Request and response types.

use crate::{Bytes, WireKeyType};
use serde::{Deserialize, Serialize};

/// A signature scheme on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WireCrypto {
    /// sr25519.
    Sr25519,
    /// ed25519.
    Ed25519,
    /// ecdsa (secp256k1).
    Ecdsa,
}

/// The pre-image beside a message, for duties whose message is a hash.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum SignContext {
    /// No context.
    #[default]
    None,
    /// BABE seal: the SCALE pre-seal header.
    BabeSeal {
        /// SCALE header without the seal.
        header: Bytes,
    },
    /// BEEFY vote: the SCALE commitment.
    BeefyCommitment {
        /// SCALE `Commitment<u32>`.
        commitment: Bytes,
    },
}

/// `exclave_sign` parameters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SignRequest {
    /// The chain's genesis hash; must match the signer's configured chain.
    pub chain: Bytes,
    /// The key type.
    pub key_type: WireKeyType,
    /// The scheme.
    pub crypto: WireCrypto,
    /// The public key.
    pub public: Bytes,
    /// The exact bytes to sign (32-byte hash when `prehashed`).
    pub message: Bytes,
    /// The pre-image context.
    #[serde(default)]
    pub context: SignContext,
    /// `ecdsa_sign_prehashed`.
    #[serde(default)]
    pub prehashed: bool,
    /// The claim-store id the client checked that every signer it fails over between shares
    /// (`exclave_status`). A signer on another store refuses a claimed duty with
    /// `store-mismatch` before claiming it. Absent: not checked (a client of one signer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_id: Option<String>,
}

/// How a signature came to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SignOutcome {
    /// A new claim was recorded and the signature released.
    Signed,
    /// The same payload was claimed before: this is the stored signature.
    SameData,
    /// Not a claimed duty (authority discovery, proof of possession).
    Unclaimed,
}

/// `exclave_sign` result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SignResponse {
    /// The signature bytes (64 for sr25519/ed25519, 65 for ecdsa).
    pub signature: Bytes,
    /// How it came to be.
    pub outcome: SignOutcome,
}

/// `exclave_vrfSign` / `exclave_vrfPreOutput` parameters: the BABE transcript's inputs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VrfRequest {
    /// The chain's genesis hash.
    pub chain: Bytes,
    /// The key type (only `babe`).
    pub key_type: WireKeyType,
    /// The sr25519 public key.
    pub public: Bytes,
    /// The epoch randomness (32 bytes).
    pub randomness: Bytes,
    /// The slot.
    pub slot: u64,
    /// The epoch index.
    pub epoch: u64,
}

/// `exclave_vrfSign` result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VrfSignResponse {
    /// The 32-byte VRF pre-output.
    pub pre_output: Bytes,
    /// The 64-byte VRF proof.
    pub proof: Bytes,
}

/// `exclave_version` result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionResponse {
    /// The signer's software version.
    pub version: String,
    /// The protocol version it speaks.
    pub protocol: u32,
}

/// `exclave_status` result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusResponse {
    /// This signer's id (recorded in every claim it makes).
    pub signer_id: String,
    /// The chain it serves.
    pub chain: Bytes,
    /// The claim-store backend.
    pub store_backend: String,
    /// Whether the claim store answered a ping just now.
    pub store_ready: bool,
    /// How many keys the signer holds.
    pub keys: usize,
    /// The caller's identity as the signer sees it (from its client certificate).
    pub client: String,
    /// The identity of the claim store (a random id written into the store once): signers
    /// that report the same id share one store, which is what makes failing over between them
    /// safe. Empty while the store has not answered (and from a protocol-1 signer).
    #[serde(default)]
    pub store_id: String,
}

/// One validator's active-node lease, as `exclave_lease` reports it to the asking node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LeaseState {
    /// The validator (the lease's name in the signer's config).
    pub validator: String,
    /// The node holding the lease.
    pub holder: String,
    /// Whether the asking node is the holder: it may author and vote.
    pub active: bool,
    /// How long the lease lasts without renewal, in milliseconds from now.
    pub expires_in_ms: u64,
    /// Counts holders: one more on every takeover.
    pub term: u64,
    /// How often the node should call `exclave_lease` to keep (or take) the lease.
    pub renew_every_ms: u64,
}
