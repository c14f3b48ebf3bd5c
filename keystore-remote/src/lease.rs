//! The lease keep-alive: every `renewEveryMs` the node calls `exclave_lease` with the BABE and
//! GRANDPA keys it has asked about in the last 10 s (held by the signers), which keeps the
//! active node's lease (or takes an expired one for this node), and logs when this node becomes
//! active or standby. A node whose consensus stopped asking stops renewing.

use crate::client::Clients;
use exclave_protocol::{Bytes, ExclaveApiClient, LeaseState, WireKeyType};
use parking_lot::Mutex;
use std::{
    sync::Arc,
    time::{Duration, Instant},
};

/// Between calls when the signers report no lease to keep, or do not answer.
const IDLE: Duration = Duration::from_secs(5);
const FAILED: Duration = Duration::from_secs(1);

/// The BABE and GRANDPA keys (held by the signers) the node has asked about, and when last.
pub(crate) type Interest = Arc<Mutex<std::collections::HashMap<(Vec<u8>, [u8; 4]), Instant>>>;

/// The keep-alive renews only for keys the node asked about this recently: a node whose BABE and
/// GRANDPA stopped asking (hung, stuck in import or sync) lets its lease expire.
const RECENT: Duration = Duration::from_secs(10);
/// How often every signer's claim-store id is checked again.
const REVERIFY: Duration = Duration::from_secs(10);
/// At most this many keys are remembered (a node uses two; BABE asks for every authority).
const MAX_KEYS: usize = 64;

/// Whether a key type is one the lease governs.
pub(crate) fn gated(kt: [u8; 4]) -> bool {
    kt == *b"babe" || kt == *b"gran"
}

/// Note that the node asked about a held BABE or GRANDPA key.
pub(crate) fn note_interest(interest: &Interest, kt: [u8; 4], public: &[u8]) {
    let mut keys = interest.lock();
    if keys.len() >= MAX_KEYS && !keys.contains_key(&(public.to_vec(), kt)) {
        let oldest = keys.iter().min_by_key(|(_, t)| **t).map(|(k, _)| k.clone());
        oldest.map(|k| keys.remove(&k));
    }
    keys.insert((public.to_vec(), kt), Instant::now());
}

/// Run forever on the keystore's runtime (it ends with the runtime).
pub(crate) async fn keepalive(clients: Arc<Clients>, interest: Interest, shared: Arc<Mutex<Vec<LeaseState>>>) {
    let mut failing = false;
    let mut last_reverify = Instant::now();
    loop {
        // Re-check every signer's store id now and then: a signer restarted on another store
        // between two calls would otherwise go unnoticed.
        if last_reverify.elapsed() > REVERIFY {
            clients.reverify();
            last_reverify = Instant::now();
        }
        let keys: Vec<(Bytes, WireKeyType)> = interest
            .lock()
            .iter()
            .filter(|(_, asked)| asked.elapsed() < RECENT)
            .map(|((p, kt), _)| (Bytes(p.clone()), WireKeyType(*kt)))
            .collect();
        if keys.is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        let pause = match clients
            .call(|c| {
                let keys = keys.clone();
                async move { c.lease(keys).await }
            })
            .await
        {
            Ok(states) => {
                failing = false;
                report_changes(&shared.lock(), &states);
                let every = states.iter().map(|s| s.renew_every_ms).min().map(Duration::from_millis);
                *shared.lock() = states;
                every.unwrap_or(IDLE).clamp(Duration::from_millis(50), IDLE)
            }
            Err(e) => {
                if !failing {
                    tracing::warn!(error = %e, "remote keystore: keeping the active-node lease failed; retrying");
                }
                failing = true;
                shared.lock().iter_mut().for_each(|s| s.active = false);
                FAILED
            }
        };
        tokio::time::sleep(pause).await;
    }
}

fn report_changes(before: &[LeaseState], now: &[LeaseState]) {
    for s in now {
        let was = before.iter().find(|b| b.validator == s.validator);
        if was.is_some_and(|b| b.active == s.active && b.holder == s.holder) {
            continue;
        }
        if s.active {
            tracing::info!(validator = %s.validator, term = s.term, "Exclave: this node is now the ACTIVE node (it authors and votes)");
        } else {
            tracing::info!(validator = %s.validator, holder = %s.holder, term = s.term, "Exclave: this node is STANDBY (another node holds the active-node lease)");
        }
    }
}
