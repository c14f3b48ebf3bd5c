//! A per-client budget for refused requests in the signing log.
//!
//! Every refusal is answered, with its reason, whatever the budget: only its *log record* is
//! budgeted. A client may have `per_minute` refused requests logged per minute (a token bucket
//! holding at most that many); past it, its refusals are answered, counted in
//! `exclave_refusals_unlogged_total{client}` and summed into the `unloggedRefusals` field of the
//! client's next record. A client cannot fill the disk, or the log's fsyncs, with refusals;
//! signatures are never budgeted, and a standby node's `not-active` answers are unchanged (they
//! are answers), so its takeover is not affected.

use parking_lot::Mutex;
use std::{collections::HashMap, time::Instant};

/// The budget of every client.
#[derive(Debug)]
pub struct RefusalBudget {
    per_minute: u32,
    clients: Mutex<HashMap<String, Bucket>>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
    unlogged: u64,
}

impl RefusalBudget {
    /// `per_minute` logged refusals per client per minute (and at most that many at once).
    pub fn new(per_minute: u32) -> Self {
        Self { per_minute, clients: Mutex::new(HashMap::new()) }
    }

    /// A refusal of `client` at `now`: `Some(n)` to log it, carrying the `n` refusals not logged
    /// since the client's last record; `None` when over budget (not logged, counted).
    pub fn refused(&self, client: &str, now: Instant) -> Option<u64> {
        let cap = f64::from(self.per_minute);
        let mut clients = self.clients.lock();
        let bucket = clients.entry(client.to_owned()).or_insert(Bucket { tokens: cap, at: now, unlogged: 0 });
        let refill = now.saturating_duration_since(bucket.at).as_secs_f64() * cap / 60.0;
        bucket.tokens = (bucket.tokens + refill).min(cap);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Some(std::mem::take(&mut bucket.unlogged))
        } else {
            bucket.unlogged += 1;
            None
        }
    }

    /// Any other record of `client`: the refusals not logged since its last record, if any.
    pub fn take_unlogged(&self, client: &str) -> Option<u64> {
        let mut clients = self.clients.lock();
        clients.get_mut(client).map(|b| std::mem::take(&mut b.unlogged)).filter(|n| *n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn refusals_past_the_budget_are_not_logged_but_counted_into_the_next_record() {
        let budget = RefusalBudget::new(60);
        let t0 = Instant::now();
        // (client, seconds after t0, expected answer)
        let mut steps: Vec<(&str, f64, Option<u64>)> = (0..60).map(|_| ("a", 0.0, Some(0))).collect();
        steps.extend([
            ("a", 0.0, None),     // the 61st at once: over budget
            ("a", 0.0, None),     // and the 62nd
            ("b", 0.0, Some(0)),  // another client has its own budget
            ("a", 0.5, None),     // half a token refilled: still over
            ("a", 1.0, Some(3)),  // one token after 1 s (60/min): logged, carrying the 3 unlogged
            ("a", 1.0, None),     // spent again
            ("a", 61.0, Some(1)), // a minute later: full again
        ]);
        for (i, (client, at, want)) in steps.into_iter().enumerate() {
            let now = t0 + Duration::from_secs_f64(at);
            assert_eq!(budget.refused(client, now), want, "step {i}: {client} at {at} s");
        }
        assert_eq!(budget.take_unlogged("a"), None);
        let t61 = t0 + Duration::from_secs(61);
        for _ in 0..59 {
            assert_eq!(budget.refused("a", t61), Some(0));
        }
        assert_eq!(budget.refused("a", t61), None, "the full minute's worth spent");
        assert_eq!(budget.take_unlogged("a"), Some(1), "a signed record carries the count");
        assert_eq!(budget.take_unlogged("a"), None, "once");
        assert_eq!(budget.take_unlogged("nobody"), None);
    }
}
