//! The etcd claim store: claims as keys of an etcd v3 cluster (feature `etcd`).
//!
//! **What it is.** A [`ClaimStore`] for several signers sharing one validator's claims. A claim
//! is one etcd transaction, `if create_revision(key) == 0 then put(key, record) else get(key)`,
//! so of all claimers of a key exactly one put ever succeeds, and etcd answers it only once the
//! put is committed by a quorum (Raft, each member's WAL fsync'd). Keys are
//! [`ClaimKey::to_bytes`] and [`WatermarkKey::to_bytes`] (they carry the `exclave/…/v1/`
//! prefixes); values are [`encode_record`] (JSON) and, for watermarks, a JSON pair `[a,b]`.
//! Reads are linearizable (never served from one member's possibly stale copy). Raising a
//! watermark is a compare-and-swap on the key's `mod_revision`, at most
//! [`MAX_WATERMARK_CAS`] rounds.
//!
//! **Members and failures.** Every configured endpoint gets its own client; a call goes to
//! the member that last answered and, on a transport error, an error status that may pass
//! (`Unavailable`, …) or no answer within [`EtcdConfig::attempt_timeout`], to the next one,
//! until [`EtcdConfig::retry_budget`] is spent. Members are asked to refuse at once when they
//! have no leader (etcd's `require_leader`). Repeating a call is safe, `claim` included: the
//! put is conditional on the key being absent, so a repeat of a claim whose first attempt was
//! applied (the reply was lost) finds the key and answers `Existing(<our own record>)`, and an
//! `Inserted` answer always means *this* attempt's put committed. Any error is ambiguous for
//! `claim`; the caller re-reads (the signer's engine does).
//!
//! **Transport.** With [`EtcdConfig::tls`], mutual TLS to every member (rustls, ring): a
//! network path can neither read nor forge claim traffic, and with the cluster's
//! `--client-cert-auth` and `auth enable` the client certificate's common name is the etcd user
//! (its roles decide which keys it may write). Without it, plaintext.
//!
//! With [`EtcdConfig::user`], etcd password authentication: each member's client authenticates
//! at its first attempt rather than at connect, so a member down at start-up stops nothing.
//!
//! **What it is not.** No leases, TTLs or deletion: claims are append-only. It decides nothing (that is
//! `exclave-policies`' verdict) and it is no lock service. Its deadline is a retry budget;
//! the signer still wraps it in [`crate::WithDeadline`].

mod error;
#[cfg(feature = "conformance")]
pub mod local_cluster;
mod route;

pub use error::EtcdError;

use crate::{
    decode_record, encode_record, encode_watermark, register_key, ClaimOutcome, ClaimStore, Guarded, StoreError, Swap, WatermarkSeen,
};
use async_trait::async_trait;
use etcd_client::{Compare, CompareOp, GetOptions, KeyValue, Txn, TxnOp, TxnOpResponse, TxnResponse};
use exclave_policies::{ClaimKey, ClaimRecord, Position, WatermarkKey};
use route::Members;
use std::time::Duration;

const BACKEND: &str = "etcd";
/// How many lost compare-and-swaps in a row `raise_watermark` accepts before giving up.
pub const MAX_WATERMARK_CAS: u32 = 16;
/// The key `ping` reads (a linearizable read, so it needs a leader and a quorum).
const PING_KEY: &[u8] = b"exclave/ping/v1";

/// Mutual TLS to the members: the CA their certificates chain to, and this client's
/// certificate and key (PEM). With `--client-cert-auth` and `auth enable` on the cluster, the
/// certificate's common name is the etcd user whose roles decide what it may read and write.
#[derive(Clone)]
pub struct EtcdTls {
    /// The CA of the members' certificates (PEM).
    pub ca: Vec<u8>,
    /// This client's certificate chain (PEM).
    pub cert: Vec<u8>,
    /// This client's key (PEM).
    pub key: zeroize::Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for EtcdTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EtcdTls { ca, cert, key: <redacted> }")
    }
}

/// Where the cluster is and how long a call may take.
#[derive(Clone, Debug)]
pub struct EtcdConfig {
    /// Client URLs of the members (`http://10.0.0.1:2379` or `10.0.0.1:2379`); list them all.
    pub endpoints: Vec<String>,
    /// The most one request to one member may take before the next member is tried.
    pub attempt_timeout: Duration,
    /// The most one store call may take across all its attempts. Keep it a little below the
    /// [`crate::WithDeadline`] deadline the store is wrapped in.
    pub retry_budget: Duration,
    /// The most opening a TCP connection to a member may take.
    pub connect_timeout: Duration,
    /// Mutual TLS (endpoints `https://…`); `None`: plaintext, for loopback or a network the
    /// operator vouches for.
    pub tls: Option<EtcdTls>,
    /// etcd user and password (etcd's `auth enable`): each member's client authenticates at its
    /// first attempt. Alone or with [`EtcdConfig::tls`] (whose certificate then only encrypts
    /// and authenticates the member, and the user is this one).
    pub user: Option<EtcdUser>,
}

/// An etcd user and its password. The password is never printed (`Debug` redacts it) and is
/// zeroized when the config is dropped (the etcd client keeps its own copy to renew tokens).
#[derive(Clone)]
pub struct EtcdUser {
    /// The etcd user name.
    pub name: String,
    /// Its password.
    pub password: zeroize::Zeroizing<String>,
}

impl std::fmt::Debug for EtcdUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdUser").field("name", &self.name).field("password", &"<redacted>").finish()
    }
}

impl EtcdConfig {
    /// The endpoints with the default limits: 500 ms per attempt (about 100× a loopback
    /// cluster's p99, and short enough to try another member while a new leader is elected),
    /// a 1.8 s budget per call (just under the signer's default 2 s store deadline, so a failed
    /// call ends with the members' own reasons rather than a bare deadline), 500 ms to connect.
    pub fn new(endpoints: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            endpoints: endpoints.into_iter().map(Into::into).collect(),
            attempt_timeout: Duration::from_millis(500),
            retry_budget: Duration::from_millis(1800),
            connect_timeout: Duration::from_millis(500),
            tls: None,
            user: None,
        }
    }
}

/// The etcd claim store.
pub struct EtcdStore {
    members: Members,
}

impl EtcdStore {
    /// Build the store's clients. This sends nothing (connections open on first use, and a dead
    /// member does not delay it); call [`ClaimStore::ping`] to check the cluster answers.
    pub async fn connect(config: &EtcdConfig) -> Result<Self, StoreError> {
        let members =
            Members::connect(config).await.map_err(|e| StoreError::Open { path: config.endpoints.join(","), reason: e.to_string() })?;
        Ok(Self { members })
    }

    async fn txn(&self, op: &'static str, txn: Txn) -> Result<TxnResponse, StoreError> {
        self.members
            .call(|mut kv| {
                let txn = txn.clone();
                async move { kv.txn(txn).await }
            })
            .await
            .map_err(|e| e.into_store(op))
    }

    async fn get_one(&self, op: &'static str, key: &[u8]) -> Result<Option<KeyValue>, StoreError> {
        let mut resp = self.members.call(|mut kv| async move { kv.get(key, None).await }).await.map_err(|e| e.into_store(op))?;
        Ok(resp.take_kvs().into_iter().next())
    }
}

/// The key-value a transaction's `else get(key)` branch returned, if any.
fn else_branch_kv(resp: &TxnResponse) -> Option<KeyValue> {
    resp.op_responses().into_iter().find_map(|op| match op {
        TxnOpResponse::Get(mut get) => get.take_kvs().into_iter().next(),
        _ => None,
    })
}

fn decode_watermark(kv: &KeyValue) -> Result<Position, StoreError> {
    serde_json::from_slice(kv.value()).map_err(|e| {
        EtcdError::BadWatermark { key: String::from_utf8_lossy(kv.key()).into_owned(), reason: e.to_string() }.into_store("watermark")
    })
}

#[async_trait]
impl ClaimStore for EtcdStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn claim(&self, key: &ClaimKey, record: &ClaimRecord) -> Result<ClaimOutcome, StoreError> {
        let key = key.to_bytes();
        let txn = Txn::new()
            .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(key.clone(), encode_record(record)?, None)])
            .or_else([TxnOp::get(key.clone(), None)]);
        let resp = self.txn("claim", txn).await?;
        if resp.succeeded() {
            return Ok(ClaimOutcome::Inserted);
        }
        let kv = else_branch_kv(&resp)
            .ok_or_else(|| EtcdError::MissingRecord { key: String::from_utf8_lossy(&key).into_owned() }.into_store("claim"))?;
        decode_record(&key, kv.value()).map(ClaimOutcome::Existing)
    }

    fn guards_claims(&self) -> bool {
        true
    }

    /// One transaction: put the claim if the key is absent and the watermark key's
    /// `mod_revision` is the one seen (0 for an absent key, as etcd compares it); otherwise read
    /// both back.
    async fn claim_guarded(&self, key: &ClaimKey, record: &ClaimRecord, seen: WatermarkSeen) -> Result<Guarded, StoreError> {
        let mark = key.watermark_key().to_bytes();
        let key = key.to_bytes();
        let txn = Txn::new()
            .when([
                Compare::create_revision(key.clone(), CompareOp::Equal, 0),
                Compare::mod_revision(mark.clone(), CompareOp::Equal, seen.version),
            ])
            .and_then([TxnOp::put(key.clone(), encode_record(record)?, None)])
            .or_else([TxnOp::get(key.clone(), None), TxnOp::get(mark, None)]);
        let resp = self.txn("claim", txn).await?;
        if resp.succeeded() {
            return Ok(Guarded::Claimed(ClaimOutcome::Inserted));
        }
        let mut gets = resp.op_responses().into_iter().filter_map(|op| match op {
            TxnOpResponse::Get(mut get) => Some(get.take_kvs().into_iter().next()),
            _ => None,
        });
        let (held, watermark) = (gets.next().flatten(), gets.next().flatten());
        if let Some(kv) = held {
            return decode_record(&key, kv.value()).map(|r| Guarded::Claimed(ClaimOutcome::Existing(r)));
        }
        let now = WatermarkSeen {
            position: watermark.as_ref().map(decode_watermark).transpose()?,
            version: watermark.as_ref().map_or(0, KeyValue::mod_revision),
        };
        if now.version == seen.version {
            // Both compares held by what came back, yet the transaction failed: not an answer.
            let key = String::from_utf8_lossy(&key).into_owned();
            return Err(EtcdError::MissingRecord { key }.into_store("claim"));
        }
        Ok(Guarded::WatermarkMoved(now))
    }

    async fn get(&self, key: &ClaimKey) -> Result<Option<ClaimRecord>, StoreError> {
        let key = key.to_bytes();
        let kv = self.get_one("get", &key).await?;
        kv.map(|kv| decode_record(&key, kv.value())).transpose()
    }

    async fn list(&self, prefix: &[u8], limit: usize) -> Result<Vec<(Vec<u8>, ClaimRecord)>, StoreError> {
        // etcd reads a limit of 0 as "no limit".
        if limit == 0 {
            return Ok(Vec::new());
        }
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        // Without a sort option etcd returns a range in key order and applies the limit in the
        // index (asking for an ascending key sort would make 3.4 read the whole range first).
        let options = GetOptions::new().with_prefix().with_limit(limit);
        let mut resp = self
            .members
            .call(|mut kv| {
                let options = options.clone();
                async move { kv.get(prefix, Some(options)).await }
            })
            .await
            .map_err(|e| e.into_store("list"))?;
        resp.take_kvs().into_iter().map(|kv| Ok((kv.key().to_vec(), decode_record(kv.key(), kv.value())?))).collect()
    }

    async fn watermark(&self, key: &WatermarkKey) -> Result<Option<Position>, StoreError> {
        let kv = self.get_one("watermark", &key.to_bytes()).await?;
        kv.as_ref().map(decode_watermark).transpose()
    }

    async fn raise_watermark(&self, key: &WatermarkKey, to: Position) -> Result<Position, StoreError> {
        let key = key.to_bytes();
        // First guess: no watermark yet (mod_revision 0). A lost compare returns the current
        // value and revision, so each round is one round trip.
        let mut seen: Option<(Position, i64)> = None;
        for _ in 0..MAX_WATERMARK_CAS {
            if let Some((current, _)) = seen.filter(|(current, _)| *current >= to) {
                return Ok(current);
            }
            let revision = seen.map_or(0, |(_, revision)| revision);
            let txn = Txn::new()
                .when([Compare::mod_revision(key.clone(), CompareOp::Equal, revision)])
                .and_then([TxnOp::put(key.clone(), encode_watermark(to)?, None)])
                .or_else([TxnOp::get(key.clone(), None)]);
            let resp = self.txn("raise_watermark", txn).await?;
            if resp.succeeded() {
                return Ok(to);
            }
            seen = match else_branch_kv(&resp) {
                Some(kv) => Some((decode_watermark(&kv)?, kv.mod_revision())),
                None => None,
            };
        }
        let key = String::from_utf8_lossy(&key).into_owned();
        Err(EtcdError::Contended { key, attempts: MAX_WATERMARK_CAS }.into_store("raise_watermark"))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let read = |mut kv: etcd_client::KvClient| async move { kv.get(PING_KEY, Some(GetOptions::new().with_count_only())).await };
        self.members.call(read).await.map(drop).map_err(|e| e.into_store("ping"))
    }

    async fn register(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.get_one("register", &register_key(name)).await?.map(|kv| kv.value().to_vec()))
    }

    async fn swap_register(&self, name: &str, expected: Option<&[u8]>, new: &[u8]) -> Result<Swap, StoreError> {
        let key = register_key(name);
        let compare = match expected {
            None => Compare::create_revision(key.clone(), CompareOp::Equal, 0),
            Some(value) => Compare::value(key.clone(), CompareOp::Equal, value.to_vec()),
        };
        let txn =
            Txn::new().when([compare]).and_then([TxnOp::put(key.clone(), new.to_vec(), None)]).or_else([TxnOp::get(key.clone(), None)]);
        let resp = self.txn("swap_register", txn).await?;
        if resp.succeeded() {
            return Ok(Swap::Swapped);
        }
        Ok(Swap::Current(else_branch_kv(&resp).map(|kv| kv.value().to_vec())))
    }
}
