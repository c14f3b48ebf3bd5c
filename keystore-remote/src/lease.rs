//! The lease keep-alive: every `renewEveryMs` the node calls `exclave_lease`, which keeps the
//! active node's lease (or takes an expired one for this node), and logs when this node
//! becomes active or standby.

use crate::client::Clients;
use exclave_protocol::{ExclaveApiClient, LeaseState};
use parking_lot::Mutex;
use std::{sync::Arc, time::Duration};

/// Between calls when the signers report no lease to keep, or do not answer.
const IDLE: Duration = Duration::from_secs(5);
const FAILED: Duration = Duration::from_secs(1);

/// Run forever on the keystore's runtime (it ends with the runtime).
pub(crate) async fn keepalive(clients: Arc<Clients>, shared: Arc<Mutex<Vec<LeaseState>>>) {
    let mut failing = false;
    loop {
        let pause = match clients.call(|c| async move { c.lease().await }).await {
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
