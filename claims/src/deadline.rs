//! A wrapper that bounds every call of a claim store by a deadline.

use crate::{ClaimOutcome, ClaimStore, Guarded, StoreError, Swap, WatermarkSeen};
use async_trait::async_trait;
use exclave_policies::{ClaimKey, ClaimRecord, Position, WatermarkKey};
use std::{future::Future, time::Duration};

/// Bounds every call of the inner store by `deadline`. A call that runs out becomes
/// [`StoreError::Deadline`]; for `claim` that outcome is unknown, and the caller must re-read.
pub struct WithDeadline<S> {
    inner: S,
    deadline: Duration,
}

impl<S: ClaimStore> WithDeadline<S> {
    /// Wrap `inner`.
    pub fn new(inner: S, deadline: Duration) -> Self {
        Self { inner, deadline }
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The deadline in force.
    pub fn deadline(&self) -> Duration {
        self.deadline
    }

    async fn bounded<T>(&self, op: &'static str, fut: impl Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
        tokio::time::timeout(self.deadline, fut).await.unwrap_or(Err(StoreError::Deadline {
            backend: self.inner.backend(),
            op,
            deadline: self.deadline,
        }))
    }
}

#[async_trait]
impl<S: ClaimStore> ClaimStore for WithDeadline<S> {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    async fn claim(&self, key: &ClaimKey, record: &ClaimRecord) -> Result<ClaimOutcome, StoreError> {
        self.bounded("claim", self.inner.claim(key, record)).await
    }

    async fn get(&self, key: &ClaimKey) -> Result<Option<ClaimRecord>, StoreError> {
        self.bounded("get", self.inner.get(key)).await
    }

    async fn list(&self, prefix: &[u8], limit: usize) -> Result<Vec<(Vec<u8>, ClaimRecord)>, StoreError> {
        self.bounded("list", self.inner.list(prefix, limit)).await
    }

    async fn watermark(&self, key: &WatermarkKey) -> Result<Option<Position>, StoreError> {
        self.bounded("watermark", self.inner.watermark(key)).await
    }

    async fn raise_watermark(&self, key: &WatermarkKey, to: Position) -> Result<Position, StoreError> {
        self.bounded("raise_watermark", self.inner.raise_watermark(key, to)).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.bounded("ping", self.inner.ping()).await
    }

    async fn register(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.bounded("register", self.inner.register(name)).await
    }

    async fn swap_register(&self, name: &str, expected: Option<&[u8]>, new: &[u8]) -> Result<Swap, StoreError> {
        self.bounded("swap_register", self.inner.swap_register(name, expected, new)).await
    }

    fn guards_claims(&self) -> bool {
        self.inner.guards_claims()
    }

    async fn claim_guarded(&self, key: &ClaimKey, record: &ClaimRecord, seen: WatermarkSeen) -> Result<Guarded, StoreError> {
        self.bounded("claim", self.inner.claim_guarded(key, record, seen)).await
    }
}
