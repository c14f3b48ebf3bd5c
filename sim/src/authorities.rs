//! How polkadot-sdk's consensus clients find "which of these authorities is mine", call for call
//! on the keystore, so that tests and benchmarks can count what one slot or round costs with a
//! Polkadot-sized authority set (600 to 1,000).
//!
//! Mirrored from polkadot-sdk (the release the demo node uses):
//! - BABE, `sc-consensus-babe` `authorship::claim_slot`: one `sr25519_vrf_sign` per authority
//!   of the epoch (primary slots), then, if none won, `has_keys` for the slot's secondary author
//!   (plain secondary slots);
//! - GRANDPA, `sc-consensus-grandpa` `local_authority_id`: `has_keys` per voter, in order, until
//!   one is held (at every round start);
//! - BEEFY, `sc-consensus-beefy` `BeefyKeystore::authority_id`: `has_keys` for every validator
//!   (the whole list is filtered, on every vote).
//!
//! Not consensus: no epochs, weights or fork choice; only the keystore calls and their order.

use codec::Encode;
use exclave_policies::VrfContext;
use sp_core::{crypto::KeyTypeId, ecdsa, ed25519, sr25519, Pair, U256};
use sp_keystore::Keystore;

const BABE: KeyTypeId = KeyTypeId(*b"babe");
const GRAN: KeyTypeId = KeyTypeId(*b"gran");
const BEEF: KeyTypeId = KeyTypeId(*b"beef");
/// `sc-consensus-babe`'s `AUTHORING_SCORE_VRF_CONTEXT` and `AUTHORING_SCORE_LENGTH`.
const AUTHORING_SCORE_VRF_CONTEXT: &[u8] = b"substrate-babe-vrf";
const AUTHORING_SCORE_LENGTH: usize = 16;

/// One authority set in the three schemes: `n` keys, `//Alice`'s at `alice_at` (if any), the
/// others derived from `//authority//<i>` (nobody's keys the dev signer holds).
pub struct Authorities {
    /// BABE authorities.
    pub babe: Vec<sr25519::Public>,
    /// GRANDPA voters.
    pub grandpa: Vec<ed25519::Public>,
    /// BEEFY validators.
    pub beefy: Vec<ecdsa::Public>,
}

impl Authorities {
    /// `n` authorities, `//Alice` at position `alice_at`.
    pub fn new(n: usize, alice_at: Option<usize>) -> Self {
        let suri = |i: usize| if Some(i) == alice_at { "//Alice".to_string() } else { format!("//authority//{i}") };
        let pair_err = "a valid dev secret URI";
        Self {
            babe: (0..n).map(|i| sr25519::Pair::from_string(&suri(i), None).expect(pair_err).public()).collect(),
            grandpa: (0..n).map(|i| ed25519::Pair::from_string(&suri(i), None).expect(pair_err).public()).collect(),
            beefy: (0..n).map(|i| ecdsa::Pair::from_string(&suri(i), None).expect(pair_err).public()).collect(),
        }
    }
}

/// BABE's `claim_slot` on primary and plain secondary slots with `c = 1/4`: the index of the
/// authority that claimed the slot, if this keystore holds it.
pub fn babe_claim_slot(ks: &dyn Keystore, authorities: &[sr25519::Public], ctx: &VrfContext) -> Option<usize> {
    let data = sp_consensus_babe::make_vrf_sign_data(&ctx.randomness, ctx.slot.into(), ctx.epoch);
    let threshold = primary_threshold((1, 4), authorities.len());
    for (i, authority) in authorities.iter().enumerate() {
        if let Ok(Some(signature)) = ks.sr25519_vrf_sign(BABE, authority, &data) {
            let won = authority
                .make_bytes::<AUTHORING_SCORE_LENGTH>(AUTHORING_SCORE_VRF_CONTEXT, data.as_ref(), &signature.pre_output)
                .map(|bytes| u128::from_le_bytes(bytes) < threshold)
                .unwrap_or_default();
            if won {
                return Some(i);
            }
        }
    }
    let expected = secondary_slot_author(ctx, authorities.len())?;
    ks.has_keys(&[(authorities[expected].0.to_vec(), BABE)]).then_some(expected)
}

/// GRANDPA's `local_authority_id`: the first voter whose key this keystore holds.
pub fn grandpa_local_authority(ks: &dyn Keystore, voters: &[ed25519::Public]) -> Option<usize> {
    voters.iter().position(|v| ks.has_keys(&[(v.0.to_vec(), GRAN)]))
}

/// BEEFY's `authority_id`: every validator whose key this keystore holds (the first is used).
pub fn beefy_authority_id(ks: &dyn Keystore, validators: &[ecdsa::Public]) -> Option<usize> {
    let held: Vec<usize> = (0..validators.len()).filter(|i| ks.has_keys(&[(validators[*i].0.to_vec(), BEEF)])).collect();
    held.first().copied()
}

/// BABE's primary threshold for one of `n` equally weighted authorities: `(1 - (1 - c)^(1/n))`
/// of `2^128` (`calculate_primary_threshold`, in floating point).
fn primary_threshold(c: (u64, u64), n: usize) -> u128 {
    if c.1 == 0 || n == 0 {
        return 0;
    }
    let p = 1.0 - (1.0 - c.0 as f64 / c.1 as f64).powf(1.0 / n as f64);
    (p * 2f64.powi(128)) as u128
}

/// BABE's `secondary_slot_author`: the index chosen by `blake2_256((randomness, slot))`.
fn secondary_slot_author(ctx: &VrfContext, n: usize) -> Option<usize> {
    if n == 0 {
        return None;
    }
    let rand = U256::from_little_endian(&(ctx.randomness, ctx.slot).using_encoded(sp_crypto_hashing::blake2_256));
    usize::try_from((rand % U256::from(n)).as_u64()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sp_keystore::testing::MemoryKeystore;

    /// With an in-memory keystore holding `//Alice`, each loop finds Alice where she sits and
    /// nothing when she is absent.
    #[test]
    fn the_loops_find_the_held_key_and_nothing_else() {
        let ks = MemoryKeystore::new();
        ks.sr25519_generate_new(BABE, Some("//Alice")).expect("babe");
        ks.ed25519_generate_new(GRAN, Some("//Alice")).expect("gran");
        ks.ecdsa_generate_new(BEEF, Some("//Alice")).expect("beef");
        let with = Authorities::new(50, Some(37));
        let without = Authorities::new(50, None);
        assert_eq!(grandpa_local_authority(&ks, &with.grandpa), Some(37));
        assert_eq!(grandpa_local_authority(&ks, &without.grandpa), None);
        assert_eq!(beefy_authority_id(&ks, &with.beefy), Some(37));
        assert_eq!(beefy_authority_id(&ks, &without.beefy), None);
        for slot in 0..20 {
            let ctx = VrfContext { randomness: [3; 32], slot, epoch: 1 };
            assert!(matches!(babe_claim_slot(&ks, &with.babe, &ctx), None | Some(37)), "slot {slot}");
            assert_eq!(babe_claim_slot(&ks, &without.babe, &ctx), None, "slot {slot}");
        }
    }

    /// The secondary author is spread over the set, and c = 1/4 gives a whole-set threshold of
    /// about a quarter of the score space per slot.
    #[test]
    fn secondary_authors_and_thresholds_match_babe() {
        let authors: std::collections::HashSet<usize> =
            (0..200).filter_map(|slot| secondary_slot_author(&VrfContext { randomness: [9; 32], slot, epoch: 0 }, 10)).collect();
        assert_eq!(authors.len(), 10, "200 slots reach every one of 10 authorities");
        let one = primary_threshold((1, 4), 1) as f64 / 2f64.powi(128);
        assert!((one - 0.25).abs() < 1e-9, "{one}");
        assert_eq!(primary_threshold((1, 0), 5), 0);
    }
}
