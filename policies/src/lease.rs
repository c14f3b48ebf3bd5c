//! The active-node lease: of a validator's nodes, which one may author its blocks and cast its
//! GRANDPA votes right now.
//!
//! The lease steers liveness, not safety: per-duty claims stay the last word, so two nodes that
//! both believe they are active get one signature and refusals, never two signatures. What the
//! lease prevents is the refusal itself (a standby node answered "no key" never proposes a block
//! and observes GRANDPA rounds instead of voting in them).
//!
//! Pure rules: the signer reads the record from its claim store, asks [`lease_step`] what to do
//! at time `now_ms`, and writes the result by compare-and-swap.

use crate::KeyType;
use serde::{Deserialize, Serialize};

/// The lease as stored (JSON): who holds it and until when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaseRecord {
    /// The holding node's identity (its client certificate's name).
    pub holder: String,
    /// Milliseconds since the Unix epoch after which another node may take the lease.
    pub expires_at_ms: u64,
    /// When the holder last renewed it.
    pub renewed_at_ms: u64,
    /// Counts holders: 1 for the first, one more on every takeover.
    pub term: u64,
    /// The signer that wrote this record.
    pub signer: String,
}

/// Lease timing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseTiming {
    /// How long a lease lasts after its last renewal.
    pub duration_ms: u64,
    /// The holder's requests renew the lease once it is this old.
    pub renew_after_ms: u64,
}

/// What to do about the lease for one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaseStep {
    /// The asking node holds the lease, which needs no renewal yet.
    Holding,
    /// Write `next` by compare-and-swap against the record read: a first lease, a renewal, or
    /// (`takeover`) a new holder after the old one let it expire.
    Write {
        /// The record to write.
        next: LeaseRecord,
        /// Whether the holder changes.
        takeover: bool,
    },
    /// Another node holds an unexpired lease: the asking node is standby.
    Standby,
}

/// The lease step for `node` given the `current` record and the time. A holder's own expired
/// lease is renewed (same term); another node's expired lease is taken over (next term). A
/// clock that went backwards since the last renewal renews too, so a record never carries a
/// renewal time later than its writer's clock.
pub fn lease_step(current: Option<&LeaseRecord>, node: &str, signer: &str, now_ms: u64, timing: LeaseTiming) -> LeaseStep {
    let write = |term: u64, takeover: bool| LeaseStep::Write {
        next: LeaseRecord {
            holder: node.to_owned(),
            expires_at_ms: now_ms.saturating_add(timing.duration_ms),
            renewed_at_ms: now_ms,
            term,
            signer: signer.to_owned(),
        },
        takeover,
    };
    match current {
        None => write(1, true),
        Some(r) if r.holder == node => {
            let age = now_ms.checked_sub(r.renewed_at_ms);
            if age.is_some_and(|a| a < timing.renew_after_ms) && now_ms < r.expires_at_ms {
                LeaseStep::Holding
            } else {
                write(r.term, false)
            }
        }
        Some(r) if now_ms >= r.expires_at_ms => write(r.term.saturating_add(1), true),
        Some(_) => LeaseStep::Standby,
    }
}

/// Whether `node` may use the lease `record` at `now_ms` (holds it, unexpired).
pub fn lease_active(record: &LeaseRecord, node: &str, now_ms: u64) -> bool {
    record.holder == node && now_ms < record.expires_at_ms
}

/// Key types whose duties only the active node may sign: BABE (block authorship and its VRF)
/// and GRANDPA (votes). Heartbeats, BEEFY and authority discovery are decided by their claims
/// alone.
pub fn lease_gated(key_type: KeyType) -> bool {
    key_type == KeyType::BABE || key_type == KeyType::GRANDPA
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: LeaseTiming = LeaseTiming { duration_ms: 6000, renew_after_ms: 1000 };

    fn rec(holder: &str, renewed: u64, term: u64) -> LeaseRecord {
        LeaseRecord { holder: holder.into(), expires_at_ms: renewed + T.duration_ms, renewed_at_ms: renewed, term, signer: "s".into() }
    }

    fn write(holder: &str, now: u64, term: u64, takeover: bool) -> LeaseStep {
        LeaseStep::Write {
            next: LeaseRecord { holder: holder.into(), expires_at_ms: now + T.duration_ms, renewed_at_ms: now, term, signer: "s".into() },
            takeover,
        }
    }

    #[test]
    fn lease_steps() {
        let a = rec("a", 10_000, 4);
        let cases: Vec<(&str, Option<&LeaseRecord>, &str, u64, LeaseStep)> = vec![
            ("first lease", None, "a", 5, write("a", 5, 1, true)),
            ("holder, fresh", Some(&a), "a", 10_999, LeaseStep::Holding),
            ("holder, renew due", Some(&a), "a", 11_000, write("a", 11_000, 4, false)),
            ("holder, expired: renewed, same term", Some(&a), "a", 16_000, write("a", 16_000, 4, false)),
            ("holder, clock went back", Some(&a), "a", 9_000, write("a", 9_000, 4, false)),
            ("other, unexpired", Some(&a), "b", 15_999, LeaseStep::Standby),
            ("other, expired: takeover", Some(&a), "b", 16_000, write("b", 16_000, 5, true)),
            ("other, clock far behind", Some(&a), "b", 0, LeaseStep::Standby),
        ];
        for (name, current, node, now, expected) in cases {
            assert_eq!(lease_step(current, node, "s", now, T), expected, "{name}");
        }
    }

    #[test]
    fn written_records_are_active_for_their_holder_only_until_expiry() {
        let LeaseStep::Write { next, .. } = lease_step(None, "a", "s", 100, T) else { panic!("first lease must be written") };
        assert!(lease_active(&next, "a", 100));
        assert!(lease_active(&next, "a", 100 + T.duration_ms - 1));
        assert!(!lease_active(&next, "a", 100 + T.duration_ms));
        assert!(!lease_active(&next, "b", 100));
    }

    #[test]
    fn only_babe_and_grandpa_are_gated() {
        for (kt, gated) in [
            (KeyType::BABE, true),
            (KeyType::GRANDPA, true),
            (KeyType::IM_ONLINE, false),
            (KeyType::BEEFY, false),
            (KeyType::AUTHORITY_DISCOVERY, false),
        ] {
            assert_eq!(lease_gated(kt), gated, "{kt}");
        }
    }

    #[test]
    fn records_round_trip_and_reject_unknown_fields() {
        let r = rec("alice-1", 7, 2);
        let json = serde_json::to_vec(&r).expect("encode");
        assert_eq!(serde_json::from_slice::<LeaseRecord>(&json).expect("decode"), r);
        assert!(serde_json::from_str::<LeaseRecord>(r#"{"holder":"a","expires_at_ms":1,"renewed_at_ms":0,"term":1,"signer":"s","x":1}"#)
            .is_err());
    }
}
