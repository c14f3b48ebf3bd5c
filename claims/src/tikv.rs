//! The TiKV claim store: claims as keys of a TiKV cluster's raw API in atomic mode (feature
//! `tikv`).
//!
//! **What it is.** A [`ClaimStore`] for several signers sharing one validator's claims. A claim
//! is one raw compare-and-swap "put `record` only if `key` does not exist"
//! (`RawClient::with_atomic_for_cas`, `compare_and_swap(key, None, record)`), which TiKV runs
//! under a per-key latch and through Raft: linearizable, answered once a quorum has it. Keys are
//! [`ClaimKey::to_bytes`] and [`WatermarkKey::to_bytes`] (the `exclave/…/v1/` prefixes, numbers
//! big-endian so they sort); values are [`encode_record`] (JSON) and, for watermarks, a JSON
//! pair `[a,b]`. Put the keys in their own keyspace ([`TikvConfig::keyspace`], API v2) and
//! never let a transactional client or a non-atomic raw client write them.
//!
//! **Lost replies.** When a compare-and-swap was applied but its reply was lost, the client
//! retries by itself and gets `(Some(<our own record>), false)`: that is returned as
//! `Existing(ours)`, which the engine reads as same-data, not as a conflict.
//!
//! **Deadlines.** Nothing in `tikv-client` bounds building a client (it waits forever on a PD
//! that accepts and never answers) and a frozen store keeps a call retrying for ~24 s. So the
//! client is built lazily, by one background task at a time, and every call, waiting for that
//! build included, is bounded by [`TikvConfig::call_timeout`]. A call that fails or runs out
//! drops the client, and the next call builds a new one. Any error on `claim` is ambiguous;
//! the caller re-reads (the signer's engine does) and refuses unless the record is its own.
//!
//! **What it is not.** No TTLs, no deletion, no transactions: claims are append-only (TiKV's
//! atomic CAS takes no TTL, and none is needed). It decides nothing (that is
//! `exclave-policies`' verdict). Its timeouts are a budget; the signer still wraps it in
//! [`crate::WithDeadline`].

mod slot;

use crate::{decode_record, encode_record, encode_watermark, register_key, ClaimOutcome, ClaimStore, StoreError, Swap};
use async_trait::async_trait;
use exclave_policies::{ClaimKey, ClaimRecord, Position, WatermarkKey};
use slot::ClientSlot;
use std::{future::Future, path::PathBuf, sync::Arc, time::Duration};
use tikv_client::RawClient;

const BACKEND: &str = "tikv";
/// How many lost compare-and-swaps in a row `raise_watermark` accepts before giving up.
pub const MAX_WATERMARK_CAS: u32 = 16;
/// The key `ping` reads (a region lookup at PD, then a read at the region's leader).
const PING_KEY: &[u8] = b"exclave/ping/v1";
/// The most pairs one raw scan request may ask for (the client's own limit).
const SCAN_CHUNK: usize = 10_240;

/// Client certificate and CA for a TLS-secured cluster (PEM files).
#[derive(Clone, Debug)]
pub struct TikvTls {
    /// The CA that signed PD's and TiKV's certificates.
    pub ca: PathBuf,
    /// This signer's client certificate.
    pub cert: PathBuf,
    /// Its private key.
    pub key: PathBuf,
}

/// Where the cluster is and how long a call may take.
#[derive(Clone, Debug)]
pub struct TikvConfig {
    /// PD endpoints (`10.0.0.1:2379`); list them all.
    pub pd_endpoints: Vec<String>,
    /// The API v2 keyspace the claims live in (must exist in PD); `None` for API v1 raw keys.
    pub keyspace: Option<String>,
    /// TLS for PD and TiKV connections.
    pub tls: Option<TikvTls>,
    /// The most one store call may take, building the client included. Keep it a little
    /// below the [`crate::WithDeadline`] deadline the store is wrapped in.
    pub call_timeout: Duration,
    /// The most one gRPC request may take inside the client before it retries.
    pub request_timeout: Duration,
    /// The most building a client (PD discovery) may take in the background.
    pub connect_timeout: Duration,
}

impl TikvConfig {
    /// The endpoints with the default limits: 1.8 s per call (just under the signer's default
    /// 2 s store deadline), 500 ms per gRPC request (time for two or three retries after a
    /// NotLeader or a lost reply within one call), 5 s to build a client.
    pub fn new(pd_endpoints: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            pd_endpoints: pd_endpoints.into_iter().map(Into::into).collect(),
            keyspace: None,
            tls: None,
            call_timeout: Duration::from_millis(1800),
            request_timeout: Duration::from_millis(500),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// The TiKV claim store.
pub struct TikvStore {
    slot: Arc<ClientSlot>,
    call_timeout: Duration,
}

impl TikvStore {
    /// Prepare the store. This sends nothing and never blocks: the client is built on first
    /// use (call [`ClaimStore::ping`] to check the cluster answers). Fails only on an unusable
    /// configuration.
    pub fn new(config: &TikvConfig) -> Result<Self, StoreError> {
        if config.pd_endpoints.is_empty() {
            return Err(StoreError::Open { path: "tikv".into(), reason: "no PD endpoint configured".into() });
        }
        Ok(Self { slot: Arc::new(ClientSlot::new(config.clone())), call_timeout: config.call_timeout })
    }

    async fn call<T, F, Fut>(&self, op: &'static str, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(Arc<RawClient>) -> Fut + Send,
        Fut: Future<Output = Result<T, tikv_client::Error>> + Send,
    {
        let work = async {
            let client = self.slot.client().await.map_err(|reason| unavailable(op, reason))?;
            f(client).await.map_err(|e| unavailable(op, e.to_string()))
        };
        match tokio::time::timeout(self.call_timeout, work).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => {
                self.slot.discard();
                Err(e)
            }
            Err(_) => {
                self.slot.discard();
                Err(StoreError::Deadline { backend: BACKEND, op, deadline: self.call_timeout })
            }
        }
    }

    async fn get_raw(&self, op: &'static str, key: Vec<u8>) -> Result<Option<Vec<u8>>, StoreError> {
        self.call(op, |c| async move { c.get(key).await }).await
    }

    /// One compare-and-swap: `(previous value, swapped)`.
    async fn cas(
        &self,
        op: &'static str,
        key: Vec<u8>,
        expected: Option<Vec<u8>>,
        value: Vec<u8>,
    ) -> Result<(Option<Vec<u8>>, bool), StoreError> {
        self.call(op, |c| async move { c.compare_and_swap(key, expected, value).await }).await
    }
}

fn unavailable(op: &'static str, reason: String) -> StoreError {
    StoreError::Unavailable { backend: BACKEND, reason: format!("{op}: {reason}") }
}

fn decode_watermark(key: &[u8], bytes: &[u8]) -> Result<Position, StoreError> {
    serde_json::from_slice(bytes)
        .map_err(|e| StoreError::Corrupt { key: String::from_utf8_lossy(key).into_owned(), reason: format!("watermark: {e}") })
}

/// The first key after every key that starts with `prefix` (`None`: no such key, scan to the end).
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[async_trait]
impl ClaimStore for TikvStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn claim(&self, key: &ClaimKey, record: &ClaimRecord) -> Result<ClaimOutcome, StoreError> {
        let key = key.to_bytes();
        match self.cas("claim", key.clone(), None, encode_record(record)?).await? {
            (None, true) => Ok(ClaimOutcome::Inserted),
            // Someone's record, or ours after a lost reply: the engine compares.
            (Some(existing), false) => decode_record(&key, &existing).map(ClaimOutcome::Existing),
            (previous, swapped) => Err(unavailable(
                "claim",
                format!("incoherent compare-and-swap answer (previous present: {}, swapped: {swapped})", previous.is_some()),
            )),
        }
    }

    async fn get(&self, key: &ClaimKey) -> Result<Option<ClaimRecord>, StoreError> {
        let key = key.to_bytes();
        let value = self.get_raw("get", key.clone()).await?;
        value.map(|v| decode_record(&key, &v)).transpose()
    }

    async fn list(&self, prefix: &[u8], limit: usize) -> Result<Vec<(Vec<u8>, ClaimRecord)>, StoreError> {
        let end = prefix_end(prefix);
        let mut out: Vec<(Vec<u8>, ClaimRecord)> = Vec::new();
        let mut from = prefix.to_vec();
        while out.len() < limit {
            let chunk = (limit - out.len()).min(SCAN_CHUNK);
            let pairs = self.scan_chunk(from.clone(), end.clone(), chunk).await?;
            let full = pairs.len() >= chunk;
            for (k, v) in pairs.into_iter().take(chunk) {
                let record = decode_record(&k, &v)?;
                from = k.clone();
                out.push((k, record));
            }
            if !full {
                break;
            }
            from.push(0); // the smallest key after the last one
        }
        Ok(out)
    }

    async fn watermark(&self, key: &WatermarkKey) -> Result<Option<Position>, StoreError> {
        let key = key.to_bytes();
        let value = self.get_raw("watermark", key.clone()).await?;
        value.map(|v| decode_watermark(&key, &v)).transpose()
    }

    async fn raise_watermark(&self, key: &WatermarkKey, to: Position) -> Result<Position, StoreError> {
        let key = key.to_bytes();
        // First guess: no watermark yet. A lost compare returns the current value, so each
        // round is one round trip.
        let mut seen: Option<Vec<u8>> = None;
        for _ in 0..MAX_WATERMARK_CAS {
            if let Some(current) = seen.as_deref().map(|v| decode_watermark(&key, v)).transpose()? {
                if current >= to {
                    return Ok(current);
                }
            }
            let new = encode_watermark(to)?;
            let (previous, swapped) = self.cas("raise_watermark", key.clone(), seen.clone(), new.clone()).await?;
            // Swapped, or our own write answered as "already there" after a lost reply.
            if swapped || previous.as_deref() == Some(new.as_slice()) {
                return Ok(to);
            }
            seen = previous;
        }
        Err(unavailable(
            "raise_watermark",
            format!("{}: lost {MAX_WATERMARK_CAS} compare-and-swaps in a row", String::from_utf8_lossy(&key)),
        ))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.get_raw("ping", PING_KEY.to_vec()).await.map(drop)
    }

    async fn register(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.get_raw("register", register_key(name)).await
    }

    async fn swap_register(&self, name: &str, expected: Option<&[u8]>, new: &[u8]) -> Result<Swap, StoreError> {
        let expected = expected.map(<[u8]>::to_vec);
        let (previous, swapped) = self.cas("swap_register", register_key(name), expected.clone(), new.to_vec()).await?;
        // TiKV answers a compare that held as swapped; a value equal to `new` that was not
        // expected is somebody's (or our earlier, lost) write: the caller decides.
        Ok(if swapped { Swap::Swapped } else { Swap::Current(previous) })
    }
}

impl TikvStore {
    /// Up to `limit` pairs in `[from, end)`, in key order. Uses the client's batch scan: its
    /// plain `scan` restarts from the last region's empty end key and re-reads (tikv-client 0.4).
    async fn scan_chunk(&self, from: Vec<u8>, end: Option<Vec<u8>>, limit: usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
        let each = u32::try_from(limit).unwrap_or(u32::MAX);
        let pairs = self
            .call("list", |c| async move {
                match end {
                    Some(end) => c.batch_scan([from..end], each).await,
                    None => c.batch_scan([from..], each).await,
                }
            })
            .await?;
        let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = pairs.into_iter().map(|p| (p.0.into(), p.1)).collect();
        // One answer per region, each up to `limit`: order, and keep the first `limit`.
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        pairs.dedup_by(|a, b| a.0 == b.0);
        pairs.truncate(limit);
        Ok(pairs)
    }
}

#[cfg(test)]
mod tests {
    use super::prefix_end;

    #[test]
    fn prefix_end_is_the_first_key_after_the_prefix() {
        let cases: [(&[u8], Option<&[u8]>); 4] = [(b"ab", Some(b"ac")), (b"a\xff", Some(b"b")), (b"\xff\xff", None), (b"", None)];
        for (prefix, end) in cases {
            assert_eq!(prefix_end(prefix).as_deref(), end, "prefix {prefix:?}");
        }
    }
}
