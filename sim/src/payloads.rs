//! Real SCALE payloads of the duties a validator signs.

use codec::Encode;
use sp_consensus_babe::{digests::PreDigest, BABE_ENGINE_ID};
use sp_runtime::{
    generic::{Digest, DigestItem, Header},
    traits::{BlakeTwo256, Header as _},
};

/// The header type of the simulated chain.
pub type SimHeader = Header<u32, BlakeTwo256>;

/// A real pre-seal header for `slot` (a BABE secondary-plain pre-digest), varied by `salt` (its
/// parent hash and state root): two nodes building their own block for a slot use two salts.
pub fn babe_header(slot: u64, number: u32, salt: u8) -> SimHeader {
    let pre = PreDigest::SecondaryPlain(sp_consensus_babe::digests::SecondaryPlainPreDigest { authority_index: 0, slot: slot.into() });
    Header::new(
        number,
        [salt; 32].into(),
        [salt.wrapping_add(1); 32].into(),
        [9; 32].into(),
        Digest { logs: vec![DigestItem::PreRuntime(BABE_ENGINE_ID, pre.encode())] },
    )
}

/// The pre-hash a node signs for a header.
pub fn pre_hash(h: &SimHeader) -> [u8; 32] {
    h.hash().0
}

/// The header with its BABE seal appended, as it would be imported.
pub fn sealed(mut h: SimHeader, signature: &[u8]) -> SimHeader {
    h.digest_mut().push(DigestItem::Seal(BABE_ENGINE_ID, signature.to_vec()));
    h
}

/// A GRANDPA vote payload (`localized_payload`) for `(round, set_id)` targeting the block
/// numbered `number` with hash `[target; 32]`.
pub fn grandpa_payload(precommit: bool, target: u8, number: u32, round: u64, set_id: u64) -> Vec<u8> {
    let hash = sp_core::H256::repeat_byte(target);
    let msg = if precommit {
        finality_grandpa::Message::Precommit(finality_grandpa::Precommit { target_hash: hash, target_number: number })
    } else {
        finality_grandpa::Message::Prevote(finality_grandpa::Prevote { target_hash: hash, target_number: number })
    };
    sp_consensus_grandpa::localized_payload(round, set_id, &msg)
}

/// An I'm-online heartbeat payload.
pub fn heartbeat(block: u32, session: u32) -> Vec<u8> {
    exclave_policies::Heartbeat { block_number: block, session_index: session, authority_index: 0, validators_len: 3 }.encode()
}
