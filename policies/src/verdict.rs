//! The verdict: what the signer may do once it knows the existing claim for a duty.

use crate::types::{ClaimRecord, Position};
use serde::{Deserialize, Serialize};

/// Why a protected duty was refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "camelCase")]
pub enum Refusal {
    /// The duty is already claimed with a different payload.
    #[serde(rename_all = "camelCase")]
    Conflict {
        /// Who holds the claim.
        claimer: String,
        /// Hex of the payload hash they signed.
        payload_hash: String,
        /// When they claimed it (unix ms).
        claimed_at_ms: u64,
    },
    /// The duty is at or below the low watermark and is not the same data.
    #[serde(rename_all = "camelCase")]
    BelowWatermark {
        /// The duty's position.
        position: Position,
        /// The watermark.
        watermark: Position,
    },
    /// A BABE slot too far from the wall-clock slot.
    #[serde(rename_all = "camelCase")]
    SlotOutOfRange {
        /// The slot requested.
        slot: u64,
        /// The wall-clock slot.
        current: u64,
        /// The allowed distance.
        max_drift: u64,
    },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Conflict { claimer, payload_hash, claimed_at_ms } => {
                write!(f, "already claimed by {claimer} at {claimed_at_ms} ms with a different payload (hash 0x{payload_hash})")
            }
            Refusal::BelowWatermark { position, watermark } => {
                write!(f, "position {position:?} is at or below the low watermark {watermark:?} and is not the same data")
            }
            Refusal::SlotOutOfRange { slot, current, max_drift } => {
                write!(f, "slot {slot} is more than {max_drift} slots from the wall-clock slot {current} (or before genesis)")
            }
        }
    }
}

/// What the signer may do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// No earlier claim: this candidate's signature may be released (once its claim is durable).
    Sign,
    /// The same payload was claimed before: return the stored signature, never a fresh one.
    SameData {
        /// The signature recorded with the claim.
        signature: Vec<u8>,
    },
    /// Refuse.
    Refuse(Refusal),
}

/// Decide, from the claim already recorded for a duty (if any), the candidate's payload hash and
/// the low watermark for the duty's family.
///
/// `position` is the candidate duty's position; `watermark` the family's low watermark, if set.
/// A duty at or below the watermark is refused unless it is the same data as an existing claim.
pub fn verdict(existing: Option<&ClaimRecord>, payload_hash: &[u8; 32], position: Position, watermark: Option<Position>) -> Verdict {
    match existing {
        Some(rec) if rec.payload_hash == *payload_hash && !rec.signature.is_empty() => {
            Verdict::SameData { signature: rec.signature.clone() }
        }
        Some(rec) => Verdict::Refuse(Refusal::Conflict {
            claimer: rec.claimer.clone(),
            payload_hash: hex::encode(rec.payload_hash),
            claimed_at_ms: rec.claimed_at_ms,
        }),
        None => match watermark {
            Some(wm) if position <= wm => Verdict::Refuse(Refusal::BelowWatermark { position, watermark: wm }),
            _ => Verdict::Sign,
        },
    }
}
