//! A Polkadot-sized authority set costs round trips only for the keys the signer holds: BABE's
//! VRF per authority and GRANDPA's and BEEFY's `has_keys` per voter (`exclave_sim::authorities`,
//! the loops as polkadot-sdk runs them) against the real dev signer, 1,000 authorities, round
//! trips counted at the signer (`exclave_rpc_calls_total`).

use crate::common::*;
use exclave_policies::VrfContext;
use exclave_sim::authorities::{babe_claim_slot, beefy_authority_id, grandpa_local_authority, Authorities};
use std::collections::BTreeMap;

const AUTHORITIES: usize = 1000;
const ROUNDS: u64 = 5;
const METHODS: [&str; 4] = ["hasKeys", "vrfSign", "keys", "sign"];

/// Round trips by method since `before`.
fn calls_since(signer: &Signer, before: &BTreeMap<&'static str, u64>) -> BTreeMap<&'static str, u64> {
    METHODS.iter().map(|m| (*m, signer.rpc_calls(m) - before.get(m).copied().unwrap_or(0))).collect()
}

fn calls_now(signer: &Signer) -> BTreeMap<&'static str, u64> {
    calls_since(signer, &BTreeMap::new())
}

/// BABE slots the dev signer accepts now (its drift bound is two 6 s slots).
fn babe_slots() -> Vec<VrfContext> {
    let now = current_slot();
    (now - 1..=now + 1).map(|slot| VrfContext { randomness: [7; 32], slot, epoch: 4 }).collect()
}

struct Costs {
    babe: BTreeMap<&'static str, u64>,
    grandpa: BTreeMap<&'static str, u64>,
    beefy: BTreeMap<&'static str, u64>,
    found: (Vec<Option<usize>>, Option<usize>, Option<usize>),
}

/// Three BABE slots, then [`ROUNDS`] GRANDPA round starts and BEEFY votes, on a fresh keystore;
/// the round trips each part cost.
fn run(signer: &Signer, set: &Authorities) -> Costs {
    let ks = signer.keystore();
    let slots = babe_slots();
    ks.note_vrf_candidates(slots.clone());
    let start = calls_now(signer);
    let claimed = slots.iter().map(|ctx| babe_claim_slot(&*ks, &set.babe, ctx)).collect();
    let babe = calls_since(signer, &start);
    let start = calls_now(signer);
    let mut voter = None;
    for _ in 0..ROUNDS {
        voter = grandpa_local_authority(&*ks, &set.grandpa);
    }
    let grandpa = calls_since(signer, &start);
    let start = calls_now(signer);
    let mut beefy_id = None;
    for _ in 0..ROUNDS {
        beefy_id = beefy_authority_id(&*ks, &set.beefy);
    }
    let beefy = calls_since(signer, &start);
    Costs { babe, grandpa, beefy, found: (claimed, voter, beefy_id) }
}

fn want(pairs: &[(&'static str, u64)]) -> BTreeMap<&'static str, u64> {
    METHODS.iter().map(|m| (*m, pairs.iter().find(|(k, _)| k == m).map_or(0, |(_, v)| *v))).collect()
}

#[test]
fn a_thousand_authorities_cost_round_trips_only_for_held_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let signer = Signer::start(dir.path(), 0);

    // A node holding one of 1,000 (Alice, last: GRANDPA's search runs through every voter).
    let holder = run(&signer, &Authorities::new(AUTHORITIES, Some(AUTHORITIES - 1)));
    assert_eq!(holder.found.1, Some(AUTHORITIES - 1), "GRANDPA found alice's voter key");
    assert_eq!(holder.found.2, Some(AUTHORITIES - 1), "BEEFY found alice's key");
    assert!(holder.found.0.iter().all(|c| c.is_none_or(|i| i == AUTHORITIES - 1)), "{:?}", holder.found.0);
    // BABE: one list fetch, one VRF per slot for alice's key, and a hasKeys only in the slots whose
    // secondary author is alice (none of the other 999 authorities costs anything).
    assert_eq!(holder.babe["keys"], 1, "babe: {:?}", holder.babe);
    assert_eq!(holder.babe["vrfSign"], 3, "babe: {:?}", holder.babe);
    assert!(holder.babe["hasKeys"] <= 3, "babe: {:?}", holder.babe);
    // GRANDPA and BEEFY: one list fetch each, then one hasKeys per round for alice's key.
    assert_eq!(holder.grandpa, want(&[("keys", 1), ("hasKeys", ROUNDS)]), "grandpa");
    assert_eq!(holder.beefy, want(&[("keys", 1), ("hasKeys", ROUNDS)]), "beefy");

    // A node holding none of them: the list fetches, nothing else.
    let none = run(&signer, &Authorities::new(AUTHORITIES, None));
    assert_eq!(none.found, (vec![None; 3], None, None));
    assert_eq!(none.babe, want(&[("keys", 1)]), "babe");
    assert_eq!(none.grandpa, want(&[("keys", 1)]), "grandpa");
    assert_eq!(none.beefy, want(&[("keys", 1)]), "beefy");
}
