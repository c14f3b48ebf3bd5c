//! Classification: which duty (if any) a signing request fulfils.

use crate::{
    babe::decode_seal_header, beefy::decode_commitment, error::PolicyError, grandpa::decode_vote, heartbeat::decode_heartbeat,
    types::Crypto, types::Duty, types::KeyType,
};
use serde::{Deserialize, Serialize};

/// The pre-image a node sends beside the message, when the message alone names no duty.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SignContext {
    /// No context: the message itself is decodable (GRANDPA, heartbeat) or unclaimed.
    None,
    /// The SCALE pre-seal header whose blake2_256 is the message (BABE seal).
    BabeSeal {
        /// SCALE-encoded header without the seal.
        header: Vec<u8>,
    },
    /// The SCALE commitment whose keccak_256 is the prehashed message (BEEFY vote).
    BeefyCommitment {
        /// SCALE-encoded `Commitment<u32>`.
        commitment: Vec<u8>,
    },
}

/// A request to sign `message` with a key of `key_type`.
#[derive(Clone, Copy, Debug)]
pub struct SignRequest<'a> {
    /// The key type.
    pub key_type: KeyType,
    /// The scheme the node asked for.
    pub crypto: Crypto,
    /// The exact bytes to sign (for `prehashed`, the 32-byte hash).
    pub message: &'a [u8],
    /// The pre-image context.
    pub context: &'a SignContext,
    /// `ecdsa_sign_prehashed`: the message is already a hash.
    pub prehashed: bool,
}

/// Signatures that are allowed without a claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum UnclaimedKind {
    /// An authority-discovery record (`audi` key): not slashable.
    AuthorityDiscovery,
    /// A session-key proof of possession, `b"POP_" ++ owner`: not slashable.
    ProofOfPossession,
}

/// What a request is, once understood.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Classification {
    /// A duty that must be claimed before signing.
    Claimed(Duty),
    /// Allowed, not claimed.
    Unclaimed(UnclaimedKind),
}

/// Owner lengths a proof of possession may carry: 32-byte and 20-byte account ids, and none
/// (plain `author_rotateKeys`). These keep a POP statement (36, 24 or 4 bytes) from ever having
/// the length of a seal hash (32), a vote (53) or a heartbeat (16).
const POP_OWNER_LENGTHS: [usize; 3] = [32, 20, 0];

fn is_proof_of_possession(message: &[u8]) -> bool {
    message.starts_with(b"POP_") && POP_OWNER_LENGTHS.contains(&(message.len() - 4))
}

/// Classify a request, re-deriving the message from its pre-image for every protected duty.
pub fn classify(req: &SignRequest<'_>) -> Result<Classification, PolicyError> {
    let key_type = req.key_type;
    let expected = key_type.crypto().ok_or(PolicyError::UnsupportedKeyType { key_type })?;
    if expected != req.crypto {
        return Err(PolicyError::WrongCrypto { key_type, expected, got: req.crypto });
    }
    if !req.prehashed && matches!(req.context, SignContext::None) && is_proof_of_possession(req.message) {
        return Ok(Classification::Unclaimed(UnclaimedKind::ProofOfPossession));
    }
    let unrecognised = |expected| PolicyError::Unrecognised { key_type, expected };
    let duty = match (&key_type.0, req.context, req.prehashed) {
        (b"audi", SignContext::None, false) => return Ok(Classification::Unclaimed(UnclaimedKind::AuthorityDiscovery)),
        (b"babe", SignContext::BabeSeal { header }, false) => {
            let sealed = decode_seal_header(header, req.message)?;
            Duty::BabeSeal { slot: sealed.slot, authority_index: sealed.authority_index }
        }
        (b"babe", SignContext::None, false) => return Err(PolicyError::MissingSealHeader),
        (b"gran", SignContext::None, false) => {
            let vote = decode_vote(req.message)?;
            Duty::GrandpaVote { set_id: vote.set_id, round: vote.round, stage: vote.stage }
        }
        (b"imon", SignContext::None, false) => Duty::Heartbeat { session_index: decode_heartbeat(req.message)?.session_index },
        (b"beef", SignContext::BeefyCommitment { commitment }, true) => {
            let (set_id, block_number) = decode_commitment(commitment, req.message)?;
            Duty::BeefyVote { set_id, block_number }
        }
        (b"beef", _, _) => return Err(PolicyError::MissingCommitment),
        (b"babe", _, _) => return Err(unrecognised("a seal: sr25519 over blake2_256 of the pre-seal header sent as babeSeal context")),
        (b"gran", _, _) => return Err(unrecognised("a (Message, round, set_id) vote, not prehashed, without context")),
        (b"imon", _, _) => return Err(unrecognised("a SCALE heartbeat, not prehashed, without context")),
        (b"audi", _, _) => return Err(unrecognised("an authority-discovery record without context")),
        _ => return Err(PolicyError::UnsupportedKeyType { key_type }),
    };
    Ok(Classification::Claimed(duty))
}
