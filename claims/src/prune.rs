//! Deleting claims, for pruning ([`PruneClaims`]), and listing a whole prefix ([`list_all`]).
//!
//! Deleting is deliberately not part of [`ClaimStore`]: a signer never deletes, and a backend
//! that cannot delete (etcd and TiKV here, until they implement this trait) still serves
//! signers. Whoever deletes must first raise the watermark of every family it prunes and let
//! the raise become durable: see `exclave claims prune` and docs/claims.md ("Watermarks").

use crate::{ClaimStore, StoreError, WithDeadline};
use async_trait::async_trait;
use exclave_policies::ClaimRecord;

/// A store whose claims can be deleted (by an operator's prune, never by a signer).
#[async_trait]
pub trait PruneClaims: ClaimStore {
    /// Delete the claims under these encoded keys (absent keys are ignored), durably.
    async fn delete_claims(&self, keys: &[Vec<u8>]) -> Result<(), StoreError>;
}

#[async_trait]
impl<S: PruneClaims> PruneClaims for WithDeadline<S> {
    async fn delete_claims(&self, keys: &[Vec<u8>]) -> Result<(), StoreError> {
        let inner = self.inner();
        tokio::time::timeout(self.deadline(), inner.delete_claims(keys)).await.unwrap_or(Err(StoreError::Deadline {
            backend: inner.backend(),
            op: "delete_claims",
            deadline: self.deadline(),
        }))
    }
}

/// How many entries one `list` call asks for.
pub const PAGE: usize = 1000;

/// Every claim under `prefix`, in key order, with only [`ClaimStore::list`] (which has a
/// limit but no start key): a prefix whose page comes back full is split into its 256
/// one-byte-longer prefixes. Keys are big-endian coordinates, so a dense range costs about
/// 256 calls per split level and sparse ranges end quickly.
pub async fn list_all<S: ClaimStore + ?Sized>(store: &S, prefix: &[u8]) -> Result<Vec<(Vec<u8>, ClaimRecord)>, StoreError> {
    let mut out = Vec::new();
    let mut stack = vec![prefix.to_vec()];
    while let Some(p) = stack.pop() {
        let page = store.list(&p, PAGE).await?;
        if page.len() < PAGE {
            out.extend(page);
            continue;
        }
        // The key equal to the prefix itself is under no longer prefix.
        if let Some(exact) = page.into_iter().find(|(k, _)| *k == p) {
            out.push(exact);
        }
        for b in (0..=255u8).rev() {
            let mut longer = p.clone();
            longer.push(b);
            stack.push(longer);
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}
