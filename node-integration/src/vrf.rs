//! BABE VRF context: which `(randomness, slot, epoch)` a transcript was built from.
//!
//! BABE hands the keystore an opaque `VrfSignData` built by
//! `make_vrf_sign_data(randomness, slot, epoch)`. The node knows the epochs (its BABE runtime
//! API: `current_epoch`, `next_epoch`); it notes them here. For a transcript, every noted epoch
//! and every slot within a window around the wall clock is tried, and the candidate whose
//! transcript fingerprint matches is the context sent to the signer, which rebuilds the
//! transcript itself and bounds the slot. When nothing matches (an epoch the node has not
//! noted, a clock far off), the keystore answers "no claim" for that slot and logs a warning:
//! the node skips the slot, it never signs blind.

use exclave_keystore_remote::{vrf_fingerprint, VrfContext, VrfResolver};
use exclave_policies::vrf_sign_data;
use parking_lot::RwLock;
use sp_core::sr25519::vrf::VrfInput;
use std::{collections::VecDeque, sync::Arc};

/// How many epochs are remembered (current, next and a little history).
const EPOCHS_KEPT: usize = 4;

/// Noted epochs and a slot window; resolves VRF inputs.
pub struct EpochVrfCandidates {
    slot_duration_ms: u64,
    window_slots: u64,
    epochs: RwLock<VecDeque<([u8; 32], u64)>>,
}

impl EpochVrfCandidates {
    /// Candidates for a chain with `slot_duration_ms` slots, trying slots within
    /// `window_slots` of the wall-clock slot.
    pub fn new(slot_duration_ms: u64, window_slots: u64) -> Self {
        Self { slot_duration_ms: slot_duration_ms.max(1), window_slots, epochs: RwLock::new(VecDeque::new()) }
    }

    /// Note an epoch's randomness and index (idempotent).
    pub fn note_epoch(&self, randomness: [u8; 32], index: u64) {
        let mut epochs = self.epochs.write();
        if !epochs.contains(&(randomness, index)) {
            epochs.push_back((randomness, index));
            while epochs.len() > EPOCHS_KEPT {
                epochs.pop_front();
            }
        }
    }

    /// The candidate whose transcript is `input`, searching around `now_ms`.
    pub fn resolve(&self, input: &VrfInput, now_ms: u64) -> Option<VrfContext> {
        let target = vrf_fingerprint(input);
        let now = now_ms / self.slot_duration_ms;
        let epochs = self.epochs.read().clone();
        epochs.iter().rev().find_map(|&(randomness, epoch)| {
            (now.saturating_sub(self.window_slots)..=now + self.window_slots)
                .map(|slot| VrfContext { randomness, slot, epoch })
                .find(|ctx| vrf_fingerprint(vrf_sign_data(ctx).as_ref()) == target)
        })
    }

    /// A resolver for `RemoteKeystore::set_vrf_resolver`, reading the wall clock.
    pub fn resolver(self: Arc<Self>) -> VrfResolver {
        Arc::new(move |input: &VrfInput| {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
            self.resolve(input, now)
        })
    }
}
