//! The lease keep-alive: every `renewEveryMs` the node calls `exclave_lease` with the BABE and
//! GRANDPA keys it has asked about, which keeps the active node's lease (or takes an expired
//! one for this node), and logs when this node becomes active or standby.

use crate::client::Clients;
use exclave_protocol::{Bytes, ExclaveApiClient, LeaseState, WireKeyType};
use parking_lot::Mutex;
use std::{sync::Arc, time::Duration};

/// Between calls when the signers report no lease to keep, or do not answer.
const IDLE: Duration = Duration::from_secs(5);
const FAILED: Duration = Duration::from_secs(1);

/// The BABE and GRANDPA keys the node has asked about.
pub(crate) type Interest = Arc<Mutex<std::collections::BTreeSet<(Vec<u8>, [u8; 4])>>>;

/// Note a key the node asked about, if it is a BABE or GRANDPA key.
pub(crate) fn note_interest(interest: &Interest, kt: [u8; 4], public: &[u8]) {
    if (kt == *b"babe" || kt == *b"gran") && !interest.lock().contains(&(public.to_vec(), kt)) {
        interest.lock().insert((public.to_vec(), kt));
    }
}

/// Run forever on the keystore's runtime (it ends with the runtime).
pub(crate) async fn keepalive(clients: Arc<Clients>, interest: Interest, shared: Arc<Mutex<Vec<LeaseState>>>) {
    let mut failing = false;
    loop {
        let keys: Vec<(Bytes, WireKeyType)> = interest.lock().iter().map(|(p, kt)| (Bytes(p.clone()), WireKeyType(*kt))).collect();
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
