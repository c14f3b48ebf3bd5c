//! The active-node lease, kept in the claim store: which of a validator's nodes may author and
//! vote. The rules are `exclave_policies::lease_step`; this module reads and writes the lease
//! register (compare-and-swap, under the store's deadline), caches what it saw, and answers
//! from the cache while the answer cannot have changed (an unexpired lease of another node, or
//! our own lease before its renewal is due).
//!
//! Safety never rests on this: per-duty claims decide every signature. A lease answer that is
//! wrong (clocks of two signers far apart, a partition) makes a node refused, never a duty
//! signed twice.

use crate::metrics::{LeaseHolderLabels, Metrics, ValidatorLabel};
use exclave_claims::{ClaimStore, StoreError, Swap};
use exclave_policies::{lease_step, ChainId, LeaseRecord, LeaseStep, LeaseTiming};
use parking_lot::Mutex;
use std::{collections::HashMap, sync::Arc};

/// Lease settings.
#[derive(Debug, Clone)]
pub struct LeaseSettings {
    /// Duration and renewal.
    pub timing: LeaseTiming,
    /// The validator of every key not in a named group (its lease's name); empty: derived from
    /// the signer's BABE key at start ([`default_validator_name`]).
    pub validator: String,
    /// The node identities allowed to hold that validator's lease (empty: any client).
    pub nodes: Vec<String>,
    /// Named groups of keys, for a signer that holds several validators' keys.
    pub groups: Vec<LeaseGroup>,
}

/// One validator's keys and nodes.
#[derive(Debug, Clone)]
pub struct LeaseGroup {
    /// The validator (lease name).
    pub name: String,
    /// Its public keys.
    pub keys: Vec<Vec<u8>>,
    /// The node identities allowed to hold its lease (empty: any client).
    pub nodes: Vec<String>,
}

/// A lease name derived from the lowest BABE public key held (`babe-<first 8 bytes hex>`), so that
/// two validators' signers sharing a store never share a lease by default; `validator` without one.
pub fn default_validator_name(babe_keys: &[Vec<u8>]) -> String {
    babe_keys.iter().min().map_or_else(|| "validator".into(), |k| format!("babe-{}", hex::encode(&k[..k.len().min(8)])))
}

/// What the lease says about one node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaseView {
    /// The node holds the lease.
    Active(LeaseRecord),
    /// Another node holds it.
    Standby(LeaseRecord),
    /// The node is not one of the validator's configured nodes: it never holds the lease.
    NotMember,
}

/// Why the lease could not be decided (the node is then treated as standby).
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// The store did not answer, or not in time.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// The lease register holds something that is not a lease record.
    #[error("the lease register {name} is corrupt: {reason}")]
    Corrupt {
        /// Register name.
        name: String,
        /// Why.
        reason: String,
    },
    /// Other writers kept changing the lease.
    #[error("the lease register {0} changed under every attempt")]
    Contended(String),
    /// The decision took longer than the store deadline (a slow or frozen store, or a queue of
    /// requests behind one).
    #[error("no lease decision within {0:?}")]
    Deadline(std::time::Duration),
}

/// A lease record and its exact stored bytes (the compare-and-swap's expected value).
#[derive(Clone)]
struct Stored {
    record: LeaseRecord,
    bytes: Vec<u8>,
}

/// The lease keeper of one signer.
pub struct Leases {
    settings: LeaseSettings,
    deadline: std::time::Duration,
    signer_id: String,
    store: Arc<dyn ClaimStore>,
    metrics: Metrics,
    cache: Mutex<HashMap<String, Stored>>,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// Attempts at one lease decision before giving up as contended.
const ATTEMPTS: usize = 3;

impl Leases {
    /// A keeper over `store`; every decision ends within `deadline`.
    pub fn new(
        settings: LeaseSettings,
        deadline: std::time::Duration,
        signer_id: String,
        store: Arc<dyn ClaimStore>,
        metrics: Metrics,
    ) -> Self {
        // Every validator's takeover counter exists from the start, at 0: a first takeover is then
        // an increase Prometheus sees (a series born at 1 has no increase).
        for validator in std::iter::once(&settings.validator).chain(settings.groups.iter().map(|g| &g.name)) {
            drop(metrics.lease_takeovers.get_or_create(&ValidatorLabel { validator: validator.clone() }));
        }
        Self { settings, deadline, signer_id, store, metrics, cache: Mutex::default(), locks: Mutex::default() }
    }

    /// The settings in force.
    pub fn settings(&self) -> &LeaseSettings {
        &self.settings
    }

    /// The validator whose lease governs `public`.
    pub fn validator_of(&self, public: &[u8]) -> &str {
        self.settings
            .groups
            .iter()
            .find(|g| g.keys.iter().any(|k| k == public))
            .map_or(self.settings.validator.as_str(), |g| g.name.as_str())
    }

    /// Whether `node` may ever hold `validator`'s lease.
    fn member(&self, validator: &str, node: &str) -> bool {
        let nodes = self.settings.groups.iter().find(|g| g.name == validator).map_or(&self.settings.nodes, |g| &g.nodes);
        nodes.is_empty() || nodes.iter().any(|n| n == node)
    }

    /// Whether `node` is the active node of `validator` on `chain`, taking or renewing the
    /// lease when the rules say so. Ends within the store deadline.
    pub async fn check(&self, chain: Option<ChainId>, validator: &str, node: &str) -> Result<LeaseView, LeaseError> {
        if !self.member(validator, node) {
            return Ok(LeaseView::NotMember);
        }
        tokio::time::timeout(self.deadline, self.decide(chain, validator, node)).await.unwrap_or(Err(LeaseError::Deadline(self.deadline)))
    }

    async fn decide(&self, chain: Option<ChainId>, validator: &str, node: &str) -> Result<LeaseView, LeaseError> {
        let name = register_name(chain, validator);
        if let Some(view) = self.cached_view(&name, node) {
            return Ok(view);
        }
        let lock = self.locks.lock().entry(name.clone()).or_default().clone();
        let _one_at_a_time = lock.lock().await;
        if let Some(view) = self.cached_view(&name, node) {
            return Ok(view);
        }
        let cached = self.cache.lock().get(&name).cloned();
        let mut current = match cached {
            Some(c) => Some(c),
            None => self.read(&name).await?,
        };
        for _ in 0..ATTEMPTS {
            let step = lease_step(current.as_ref().map(|c| &c.record), node, &self.signer_id, crate::clock::now_ms(), self.settings.timing);
            let (next, takeover) = match step {
                LeaseStep::Holding => return Ok(LeaseView::Active(self.adopt(&name, validator, current)?)),
                LeaseStep::Standby => return Ok(LeaseView::Standby(self.adopt(&name, validator, current)?)),
                LeaseStep::Write { next, takeover } => (next, takeover),
            };
            let bytes = serde_json::to_vec(&next).map_err(|e| StoreError::Encode { what: "lease record", reason: e.to_string() })?;
            let expected = current.as_ref().map(|c| c.bytes.as_slice());
            match self.swap(&name, expected, &bytes).await? {
                None => {
                    self.written(validator, current.as_ref().map(|c| &c.record), &next, takeover);
                    self.cache.lock().insert(name.clone(), Stored { record: next.clone(), bytes });
                    return Ok(LeaseView::Active(next));
                }
                Some(now_there) => current = now_there,
            }
        }
        Err(LeaseError::Contended(name))
    }

    /// `None`: swapped (ours). `Some(current)`: not swapped, this is what the register holds.
    async fn swap(&self, name: &str, expected: Option<&[u8]>, new: &[u8]) -> Result<Option<Option<Stored>>, LeaseError> {
        match self.store.swap_register(name, expected, new).await {
            Ok(Swap::Swapped) => Ok(None),
            Ok(Swap::Current(bytes)) => Ok(Some(self.decode(name, bytes)?)),
            Err(e) => {
                // Unknown is no: the write may or may not have landed. Read it back.
                tracing::warn!(lease = name, error = %e, "lease write outcome unknown; re-reading");
                match self.read(name).await? {
                    Some(stored) if stored.bytes == new => Ok(None),
                    other => Ok(Some(other)),
                }
            }
        }
    }

    async fn read(&self, name: &str) -> Result<Option<Stored>, LeaseError> {
        let bytes = self.store.register(name).await?;
        self.decode(name, bytes)
    }

    fn decode(&self, name: &str, bytes: Option<Vec<u8>>) -> Result<Option<Stored>, LeaseError> {
        bytes
            .map(|b| {
                serde_json::from_slice(&b)
                    .map(|record| Stored { record, bytes: b })
                    .map_err(|e| LeaseError::Corrupt { name: name.into(), reason: e.to_string() })
            })
            .transpose()
    }

    /// Cache a record read from the store (present whenever the step was not a write).
    fn adopt(&self, name: &str, validator: &str, current: Option<Stored>) -> Result<LeaseRecord, LeaseError> {
        let stored = current.ok_or_else(|| LeaseError::Corrupt { name: name.into(), reason: "no lease to adopt".into() })?;
        let record = stored.record.clone();
        let previous = self.cache.lock().insert(name.into(), stored);
        self.show_holder(validator, previous.map(|p| p.record.holder), &record.holder);
        Ok(record)
    }

    fn cached_view(&self, name: &str, node: &str) -> Option<LeaseView> {
        let cache = self.cache.lock();
        let c = cache.get(name)?;
        match lease_step(Some(&c.record), node, &self.signer_id, crate::clock::now_ms(), self.settings.timing) {
            LeaseStep::Holding => Some(LeaseView::Active(c.record.clone())),
            LeaseStep::Standby => Some(LeaseView::Standby(c.record.clone())),
            LeaseStep::Write { .. } => None,
        }
    }

    fn written(&self, validator: &str, previous: Option<&LeaseRecord>, next: &LeaseRecord, takeover: bool) {
        if takeover {
            tracing::info!(validator, node = %next.holder, term = next.term, previous = previous.map_or("-", |p| p.holder.as_str()), "active-node lease taken");
            if next.term > 1 {
                self.metrics.lease_takeovers.get_or_create(&ValidatorLabel { validator: validator.into() }).inc();
            }
        } else {
            tracing::debug!(validator, node = %next.holder, term = next.term, "active-node lease renewed");
        }
        self.show_holder(validator, previous.map(|p| p.holder.clone()), &next.holder);
    }

    fn show_holder(&self, validator: &str, previous: Option<String>, holder: &str) {
        let label = |node: &str| LeaseHolderLabels { validator: validator.into(), node: node.into() };
        if let Some(p) = previous.filter(|p| p != holder) {
            self.metrics.lease_holder.get_or_create(&label(&p)).set(0);
        }
        self.metrics.lease_holder.get_or_create(&label(holder)).set(1);
    }
}

/// The register holding a validator's lease on a chain (`unpinned` before a dev signer's chain
/// is pinned).
pub fn register_name(chain: Option<ChainId>, validator: &str) -> String {
    let chain = chain.map_or_else(|| "unpinned".to_string(), |c| hex::encode(c.0));
    format!("lease/{chain}/{validator}")
}
