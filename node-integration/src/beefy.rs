//! BEEFY context: the commitment a BEEFY vote signs.
//!
//! BEEFY signs `keccak_256(commitment)` with `ecdsa_sign_prehashed`: the keystore sees only a
//! hash, and the signer never signs opaque bytes for a protected key type. The commitment is
//! built from the payload BEEFY's `PayloadProvider` returns for a block, that block's number and
//! the validator set id. [`BeefyCommitmentNoter`] wraps the node's payload provider (handed to
//! BEEFY through its params): for every payload it provides, it notes the commitments for the
//! set ids the node names (the BEEFY set active at that block, from the node's BEEFY runtime
//! API: a vote on a block always carries that set's id, a session's first block included, since
//! pallet-beefy changes the set in it), so the vote request carries the commitment and the
//! signer re-derives the hash, claims the vote per (set id, block) and refuses a second
//! commitment for it. The demo node's `service.rs` has the closure.

use codec::Encode;
use exclave_keystore_remote::RemoteKeystore;
use sp_consensus_beefy::{Commitment, Payload, PayloadProvider, ValidatorSetId};
use sp_runtime::traits::{Block as BlockT, Header as HeaderT, NumberFor};
use std::sync::Arc;

/// The validator set ids a vote on this header may carry.
pub type SetIds<B> = Arc<dyn Fn(&<B as BlockT>::Header) -> Vec<ValidatorSetId> + Send + Sync>;

/// A `PayloadProvider` that also notes, in the remote keystore, the commitments BEEFY will
/// build from each payload.
pub struct BeefyCommitmentNoter<B: BlockT, P> {
    inner: P,
    keystore: Arc<RemoteKeystore>,
    set_ids: SetIds<B>,
}

impl<B: BlockT, P> BeefyCommitmentNoter<B, P> {
    /// Wrap `inner`; `set_ids` names the set ids for a header (at least the current one).
    pub fn new(inner: P, keystore: Arc<RemoteKeystore>, set_ids: SetIds<B>) -> Self {
        Self { inner, keystore, set_ids }
    }
}

/// The SCALE commitment BEEFY signs for `payload` at `block_number` in set `validator_set_id`.
pub fn encoded_commitment<N: Encode>(payload: Payload, block_number: N, validator_set_id: ValidatorSetId) -> Vec<u8> {
    Commitment { payload, block_number, validator_set_id }.encode()
}

impl<B: BlockT, P: PayloadProvider<B>> PayloadProvider<B> for BeefyCommitmentNoter<B, P>
where
    NumberFor<B>: Encode,
{
    fn payload(&self, header: &B::Header) -> Option<Payload> {
        let payload = self.inner.payload(header)?;
        for set_id in (self.set_ids)(header) {
            self.keystore.note_beefy_commitment(encoded_commitment(payload.clone(), *header.number(), set_id));
        }
        Some(payload)
    }
}
