//! The judge: every signature any simulated node received, grouped by duty, and every pair of
//! different signatures for one duty checked with Substrate's own equivocation checkers
//! (`sp_consensus_babe::check_equivocation_proof`, `sp_consensus_grandpa::check_equivocation_proof`)
//! or, for heartbeats (not slashable), the claim rule: one payload and one signature a session.

use super::payloads::{sealed, SimHeader};
use exclave_audit::equivocation::{babe_equivocation_proof, grandpa_equivocation_proof};
use parking_lot::Mutex;
use std::collections::HashMap;

/// A duty, as the judge groups signatures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DutyId {
    /// A BABE seal of a slot.
    Seal {
        /// Slot.
        slot: u64,
    },
    /// A GRANDPA vote of a round.
    Vote {
        /// Round.
        round: u64,
        /// Precommit (else prevote).
        precommit: bool,
    },
    /// An I'm-online heartbeat of a session.
    Heartbeat {
        /// Session.
        session: u32,
    },
}

/// One signature a node received.
#[derive(Clone, Debug)]
pub struct Received {
    /// The node.
    pub node: String,
    /// The validator (index in the run).
    pub validator: usize,
    /// The duty.
    pub duty: DutyId,
    /// The signer's public key.
    pub public: Vec<u8>,
    /// What was signed (the vote payload, the heartbeat, or the header's pre-hash).
    pub message: Vec<u8>,
    /// For a seal: the pre-seal header.
    pub header: Option<SimHeader>,
    /// The signature.
    pub signature: Vec<u8>,
}

/// Collects signatures from every node.
#[derive(Default)]
pub struct Judge {
    by_duty: Mutex<HashMap<(usize, DutyId), Vec<Received>>>,
}

/// What the judge found.
#[derive(Clone, Debug, Default)]
pub struct Findings {
    /// Duties with at least one signature.
    pub duties: usize,
    /// Signatures received (repeats of one signature included).
    pub signatures: usize,
    /// Duties whose every received signature is one and the same.
    pub exactly_one: usize,
    /// Pairs of different signatures for one duty that were checked.
    pub pairs_checked: usize,
    /// Equivocations: valid Substrate proofs, or a second heartbeat signature for a session.
    pub equivocations: Vec<String>,
}

impl Judge {
    /// Record one received signature.
    pub fn record(&self, r: Received) {
        self.by_duty.lock().entry((r.validator, r.duty)).or_default().push(r);
    }

    /// How many duties got a signature.
    pub fn duties(&self) -> usize {
        self.by_duty.lock().len()
    }

    /// How many signatures were recorded.
    pub fn signatures(&self) -> usize {
        self.by_duty.lock().values().map(Vec::len).sum()
    }

    /// Seal slots of `validator` that got a signature, sorted.
    pub fn sealed_slots(&self, validator: usize) -> Vec<u64> {
        let mut slots: Vec<u64> = self
            .by_duty
            .lock()
            .keys()
            .filter_map(|(v, d)| match d {
                DutyId::Seal { slot } if *v == validator => Some(*slot),
                _ => None,
            })
            .collect();
        slots.sort_unstable();
        slots
    }

    /// Check every pair of different signatures of every duty.
    pub fn findings(&self) -> Findings {
        let map = self.by_duty.lock();
        let mut f = Findings { duties: map.len(), ..Findings::default() };
        for ((validator, duty), received) in map.iter() {
            f.signatures += received.len();
            let mut distinct: Vec<&Received> = Vec::new();
            for r in received {
                if !distinct.iter().any(|d| d.message == r.message && d.signature == r.signature) {
                    distinct.push(r);
                }
            }
            if distinct.len() == 1 {
                f.exactly_one += 1;
            }
            for (i, a) in distinct.iter().enumerate() {
                for b in &distinct[i + 1..] {
                    f.pairs_checked += 1;
                    if let Some(why) = equivocation(*duty, a, b) {
                        f.equivocations.push(format!("validator {validator} {duty:?}: {why} ({} and {})", a.node, b.node));
                    }
                }
            }
        }
        f
    }
}

/// `Some(description)` when `a` and `b` are an equivocation: the proof `exclave audit verify`
/// builds, accepted by Substrate's checker.
fn equivocation(duty: DutyId, a: &Received, b: &Received) -> Option<String> {
    match duty {
        DutyId::Seal { slot } => {
            let (first, second) = (sealed(a.header.clone()?, &a.signature), sealed(b.header.clone()?, &b.signature));
            let proof = babe_equivocation_proof(&a.public, slot, first, second).ok()?;
            sp_consensus_babe::check_equivocation_proof(proof).then(|| "valid BABE equivocation proof".into())
        }
        DutyId::Vote { .. } => {
            let proof = grandpa_equivocation_proof(&a.public, (&a.message, &a.signature), (&b.message, &b.signature)).ok()?;
            sp_consensus_grandpa::check_equivocation_proof(proof).then(|| "valid GRANDPA equivocation proof".into())
        }
        DutyId::Heartbeat { .. } => Some("two heartbeat signatures for one session".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payloads::{babe_header, grandpa_payload, pre_hash};
    use sp_core::Pair;

    fn seal(node: &str, salt: u8, pair: &sp_core::sr25519::Pair) -> Received {
        let header = babe_header(7, 1, salt);
        let sig = pair.sign(&pre_hash(&header));
        Received {
            node: node.into(),
            validator: 0,
            duty: DutyId::Seal { slot: 7 },
            public: pair.public().0.to_vec(),
            message: pre_hash(&header).to_vec(),
            header: Some(header),
            signature: sig.0.to_vec(),
        }
    }

    fn vote(node: &str, target: u8, pair: &sp_core::ed25519::Pair) -> Received {
        let message = grandpa_payload(false, target, 5, 3, 1);
        let signature = pair.sign(&message).0.to_vec();
        Received {
            node: node.into(),
            validator: 0,
            duty: DutyId::Vote { round: 3, precommit: false },
            public: pair.public().0.to_vec(),
            message,
            header: None,
            signature,
        }
    }

    /// The judge's controls: planted equivocations are found, repeats are not.
    #[test]
    fn planted_equivocations_are_found_and_repeats_are_not() {
        let sr = sp_core::sr25519::Pair::from_string("//Alice", None).expect("key");
        let ed = sp_core::ed25519::Pair::from_string("//Alice", None).expect("key");
        let cases: Vec<(&str, Vec<Received>, usize)> = vec![
            (
                "one seal received twice",
                {
                    let s = seal("a", 1, &sr);
                    vec![s.clone(), s]
                },
                0,
            ),
            ("two seals of one slot", vec![seal("a", 1, &sr), seal("b", 2, &sr)], 1),
            ("one header sealed twice (sr25519 is randomised)", vec![seal("a", 1, &sr), seal("b", 1, &sr)], 1),
            ("one vote from two nodes", vec![vote("a", 1, &ed), vote("b", 1, &ed)], 0),
            ("two votes of one round", vec![vote("a", 1, &ed), vote("b", 2, &ed)], 1),
        ];
        for (name, received, expected) in cases {
            let judge = Judge::default();
            received.into_iter().for_each(|r| judge.record(r));
            let f = judge.findings();
            assert_eq!(f.equivocations.len(), expected, "{name}: {:?}", f.equivocations);
            assert_eq!(f.exactly_one, usize::from(expected == 0), "{name}");
        }
    }
}
