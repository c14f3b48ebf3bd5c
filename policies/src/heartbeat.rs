//! I'm-online: the SCALE `Heartbeat` the offchain worker signs.

use crate::error::PolicyError;
use codec::{Decode, DecodeAll, Encode};

/// `pallet_im_online::Heartbeat<u32>`, field for field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Heartbeat {
    /// Block number at the time the heartbeat is created.
    pub block_number: u32,
    /// The session the heartbeat is for.
    pub session_index: u32,
    /// The validator's index in the session's authority set.
    pub authority_index: u32,
    /// The length of that set.
    pub validators_len: u32,
}

/// Decode a heartbeat; trailing bytes are refused.
pub fn decode_heartbeat(bytes: &[u8]) -> Result<Heartbeat, PolicyError> {
    Heartbeat::decode_all(&mut &bytes[..]).map_err(|e| PolicyError::BadHeartbeat { reason: format!("{e} ({} bytes)", bytes.len()) })
}
