//! Fault switches: each makes the stand-in misbehave the way a real cluster can.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use tokio::sync::watch;

/// Switches a test flips while the stand-in runs. Counters count down as faults fire.
pub struct Faults {
    not_leader: AtomicU32,
    drop_reply: AtomicU32,
    kv_frozen: watch::Sender<bool>,
    pd_frozen: watch::Sender<bool>,
    cas_calls: AtomicU64,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            not_leader: AtomicU32::new(0),
            drop_reply: AtomicU32::new(0),
            kv_frozen: watch::channel(false).0,
            pd_frozen: watch::channel(false).0,
            cas_calls: AtomicU64::new(0),
        }
    }
}

fn take_one(counter: &AtomicU32) -> bool {
    counter.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok()
}

impl Faults {
    /// The next `n` TiKV raw requests answer a `NotLeader` region error naming the same
    /// (only) peer as leader, without touching the map.
    pub fn not_leader(&self, n: u32) {
        self.not_leader.store(n, Ordering::SeqCst);
    }

    /// The next `n` compare-and-swaps are applied, and then their reply is replaced by a gRPC
    /// `Unavailable` error, as if the connection broke after the write committed.
    pub fn drop_reply_after_apply(&self, n: u32) {
        self.drop_reply.store(n, Ordering::SeqCst);
    }

    /// Freeze (or thaw) the TiKV service: while frozen, every request is accepted and never
    /// answered, and nothing is applied.
    pub fn freeze_store(&self, frozen: bool) {
        self.kv_frozen.send_replace(frozen);
    }

    /// Freeze (or thaw) the PD service the same way (`GetMembers` included, so a new client
    /// cannot even be built).
    pub fn freeze_pd(&self, frozen: bool) {
        self.pd_frozen.send_replace(frozen);
    }

    /// How many compare-and-swap requests reached the map (applied or compared).
    pub fn cas_calls(&self) -> u64 {
        self.cas_calls.load(Ordering::SeqCst)
    }

    pub(crate) fn count_cas(&self) {
        self.cas_calls.fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn take_not_leader(&self) -> bool {
        take_one(&self.not_leader)
    }

    pub(crate) fn take_drop_reply(&self) -> bool {
        take_one(&self.drop_reply)
    }

    /// Never returns while the store is frozen (a request that arrived frozen is never
    /// answered, even after a thaw: its client has long given up and retried).
    pub(crate) async fn gate_store(&self) {
        gate(&self.kv_frozen).await;
    }

    pub(crate) async fn gate_pd(&self) {
        gate(&self.pd_frozen).await;
    }
}

async fn gate(switch: &watch::Sender<bool>) {
    if *switch.borrow() {
        std::future::pending::<()>().await;
    }
}
