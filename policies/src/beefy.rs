//! BEEFY: the commitment behind a prehashed vote.

use crate::error::PolicyError;
use codec::DecodeAll;
use sp_consensus_beefy::Commitment;

/// Decode a SCALE `Commitment<u32>` and require keccak_256 of it to be `message`.
/// Returns `(validator_set_id, block_number)`.
pub fn decode_commitment(commitment: &[u8], message: &[u8]) -> Result<(u64, u32), PolicyError> {
    let decoded = Commitment::<u32>::decode_all(&mut &commitment[..]).map_err(|e| PolicyError::BadCommitment { reason: e.to_string() })?;
    let computed = sp_crypto_hashing::keccak_256(commitment);
    if computed[..] != *message {
        return Err(PolicyError::CommitmentHashMismatch {
            computed: format!("0x{}", hex::encode(computed)),
            message: format!("0x{}", hex::encode(message)),
        });
    }
    Ok((decoded.validator_set_id, decoded.block_number))
}
