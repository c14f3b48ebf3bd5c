//! BABE: the pre-seal header behind a seal request, and the bounds on slots.

use crate::{error::PolicyError, verdict::Refusal};
use codec::DecodeAll;
use sp_consensus_babe::{digests::PreDigest, BABE_ENGINE_ID};
use sp_runtime::{
    generic::{DigestItem, Header},
    traits::{BlakeTwo256, Header as _},
};

/// The slot and author named by a pre-seal header's BABE pre-digest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SealedSlot {
    /// The BABE slot.
    pub slot: u64,
    /// The authority index in the pre-digest.
    pub authority_index: u32,
    /// The block number in the header.
    pub block_number: u32,
}

/// Decode a SCALE pre-seal header, find its `PreRuntime(BABE)` digest, and require that
/// blake2_256 of the header is exactly `message` (the hash the node asked to sign).
pub fn decode_seal_header(header: &[u8], message: &[u8]) -> Result<SealedSlot, PolicyError> {
    let header = Header::<u32, BlakeTwo256>::decode_all(&mut &header[..]).map_err(|e| PolicyError::BadHeader { reason: e.to_string() })?;
    let logs = header.digest().logs();
    if logs.iter().any(|l| matches!(l, DigestItem::Seal(..))) {
        return Err(PolicyError::AlreadySealed);
    }
    let mut pres = logs.iter().filter_map(|l| match l {
        DigestItem::PreRuntime(id, data) if *id == BABE_ENGINE_ID => Some(data),
        _ => None,
    });
    let pre = pres.next().ok_or(PolicyError::NoBabePreDigest)?;
    if pres.next().is_some() {
        return Err(PolicyError::MultipleBabePreDigests);
    }
    let pre = PreDigest::decode_all(&mut &pre[..]).map_err(|e| PolicyError::BadHeader { reason: format!("BABE pre-digest: {e}") })?;
    let computed = header.hash();
    if computed.as_bytes() != message {
        return Err(PolicyError::HeaderHashMismatch {
            computed: format!("0x{}", hex::encode(computed.as_bytes())),
            message: format!("0x{}", hex::encode(message)),
        });
    }
    Ok(SealedSlot { slot: *pre.slot(), authority_index: pre.authority_index(), block_number: header.number })
}

/// What the signer rebuilds a BABE VRF transcript from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VrfContext {
    /// The epoch randomness.
    pub randomness: [u8; 32],
    /// The slot being claimed.
    pub slot: u64,
    /// The epoch index.
    pub epoch: u64,
}

/// Where slots may lie relative to the wall clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotBounds {
    /// The chain's slot duration in milliseconds (BABE slot = unix ms / duration).
    pub slot_duration_ms: u64,
    /// How many slots away from the wall-clock slot a request may be.
    pub max_drift_slots: u64,
    /// Slots below the chain's genesis slot are refused.
    pub genesis_slot: u64,
}

/// The BABE slot at a wall-clock time.
pub fn slot_at(now_ms: u64, slot_duration_ms: u64) -> u64 {
    now_ms / slot_duration_ms.max(1)
}

/// Refuse a slot too far from the wall-clock slot, or before genesis.
pub fn check_vrf_bounds(slot: u64, now_ms: u64, bounds: &SlotBounds) -> Result<(), Refusal> {
    let current = slot_at(now_ms, bounds.slot_duration_ms);
    if slot < bounds.genesis_slot || slot.abs_diff(current) > bounds.max_drift_slots {
        return Err(Refusal::SlotOutOfRange { slot, current, max_drift: bounds.max_drift_slots });
    }
    Ok(())
}

/// The VRF sign data BABE builds for a slot claim, rebuilt by the signer from its inputs
/// (`make_vrf_sign_data(randomness, slot, epoch)`; BABE adds no extra transcript).
pub fn vrf_sign_data(ctx: &VrfContext) -> sp_core::sr25519::vrf::VrfSignData {
    sp_consensus_babe::make_vrf_sign_data(&ctx.randomness, ctx.slot.into(), ctx.epoch)
}
