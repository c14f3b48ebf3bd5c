//! GRANDPA: `(Message, round, set_id)` votes, decoded byte by byte.

use crate::error::PolicyError;
use serde::{Deserialize, Serialize};

/// Which GRANDPA message a vote is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum GrandpaStage {
    /// `Message::Prevote` (SCALE tag 0).
    Prevote = 0,
    /// `Message::Precommit` (SCALE tag 1).
    Precommit = 1,
    /// `Message::PrimaryPropose` (SCALE tag 2).
    PrimaryPropose = 2,
}

/// A decoded GRANDPA vote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GrandpaVote {
    /// The stage.
    pub stage: GrandpaStage,
    /// The target block hash.
    pub target_hash: [u8; 32],
    /// The target block number.
    pub target_number: u32,
    /// The round.
    pub round: u64,
    /// The authority set id.
    pub set_id: u64,
}

/// Length of `(Message<H256, u32>, u64, u64).encode()`.
pub const VOTE_LEN: usize = 1 + 32 + 4 + 8 + 8;

/// Decode `(Message, round, set_id).encode()` for 32-byte hashes and u32 block numbers; the
/// exact length is required, so trailing bytes are refused.
pub fn decode_vote(bytes: &[u8]) -> Result<GrandpaVote, PolicyError> {
    let bad = |reason: String| PolicyError::BadVote { reason };
    if bytes.len() != VOTE_LEN {
        return Err(bad(format!("expected exactly {VOTE_LEN} bytes, got {}", bytes.len())));
    }
    let stage = match bytes[0] {
        0 => GrandpaStage::Prevote,
        1 => GrandpaStage::Precommit,
        2 => GrandpaStage::PrimaryPropose,
        t => return Err(bad(format!("message tag {t} is not prevote (0), precommit (1) or primary propose (2)"))),
    };
    let mut target_hash = [0u8; 32];
    target_hash.copy_from_slice(&bytes[1..33]);
    let le4 = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    let le8 = |b: &[u8]| u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
    Ok(GrandpaVote { stage, target_hash, target_number: le4(&bytes[33..37]), round: le8(&bytes[37..45]), set_id: le8(&bytes[45..53]) })
}
