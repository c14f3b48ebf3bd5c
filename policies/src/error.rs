//! The one error type of this crate: why a request cannot be classified.

use crate::types::{Crypto, KeyType};

/// Why a signing request was refused before any claim was attempted.
///
/// Every variant names what was expected, so that an operator reading a refusal in the node's
/// log or the signing log can tell which side is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The key type is not one Exclave signs for.
    #[error("key type {key_type} is not supported: Exclave signs babe, gran, imon, beef and audi keys")]
    UnsupportedKeyType {
        /// The key type asked for.
        key_type: KeyType,
    },
    /// The crypto scheme does not match the key type's scheme.
    #[error("key type {key_type} uses {expected}, not {got}")]
    WrongCrypto {
        /// The key type asked for.
        key_type: KeyType,
        /// The scheme that key type uses.
        expected: Crypto,
        /// The scheme asked for.
        got: Crypto,
    },
    /// A BABE seal request carried no pre-seal header.
    #[error("babe: a seal request must carry the pre-seal header as context; opaque 32-byte hashes are never signed")]
    MissingSealHeader,
    /// The pre-seal header did not decode.
    #[error("babe: the pre-seal header does not decode as a SCALE header with u32 number: {reason}")]
    BadHeader {
        /// The decoder's reason.
        reason: String,
    },
    /// The header carries no BABE pre-runtime digest.
    #[error("babe: the header has no PreRuntime(BABE) digest item, so it names no slot")]
    NoBabePreDigest,
    /// The header carries more than one BABE pre-digest (block import rejects such headers).
    #[error("babe: the header carries more than one PreRuntime(BABE) digest item; nodes reject such headers")]
    MultipleBabePreDigests,
    /// The header already carries a seal.
    #[error("babe: the header already carries a Seal digest item; send the pre-seal header")]
    AlreadySealed,
    /// blake2_256(header) is not the message.
    #[error("babe: blake2_256 of the pre-seal header is {computed}, but the message to sign is {message}")]
    HeaderHashMismatch {
        /// Hex of the hash the signer computed.
        computed: String,
        /// Hex of the message the node asked to sign.
        message: String,
    },
    /// A GRANDPA message did not decode as `(Message, round, set_id)`.
    #[error("gran: the message is not a SCALE (Message, round u64, set_id u64) vote: {reason}")]
    BadVote {
        /// What was wrong.
        reason: String,
    },
    /// An I'm-online message did not decode as a heartbeat.
    #[error(
        "imon: the message is not a SCALE Heartbeat {{block_number, session_index, authority_index, validators_len}} (16 bytes): {reason}"
    )]
    BadHeartbeat {
        /// What was wrong.
        reason: String,
    },
    /// A BEEFY request came without its commitment.
    #[error("beef: a vote must carry the SCALE commitment as context and be signed prehashed")]
    MissingCommitment,
    /// The BEEFY commitment did not decode.
    #[error("beef: the commitment does not decode as SCALE Commitment<u32>: {reason}")]
    BadCommitment {
        /// The decoder's reason.
        reason: String,
    },
    /// keccak_256(commitment) is not the message.
    #[error("beef: keccak_256 of the commitment is {computed}, but the message to sign is {message}")]
    CommitmentHashMismatch {
        /// Hex of the hash the signer computed.
        computed: String,
        /// Hex of the message the node asked to sign.
        message: String,
    },
    /// A VRF request was made for a key type that has no VRF duty.
    #[error("vrf signing is only offered for babe keys with (randomness, slot, epoch) context, not {key_type}")]
    VrfNotAllowed {
        /// The key type asked for.
        key_type: KeyType,
    },
    /// A message for a protected key type matches none of its duties.
    #[error("{key_type}: refusing opaque bytes; expected {expected}")]
    Unrecognised {
        /// The key type asked for.
        key_type: KeyType,
        /// What the signer would have accepted.
        expected: &'static str,
    },
}
