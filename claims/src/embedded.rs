//! The embedded claim store: one redb file, written by one group-commit thread.
//!
//! Why redb: it is pure Rust (no C toolchain, no RocksDB build), ACID with copy-on-write
//! B-trees and a checksummed commit protocol, crash-safe with `Durability::Immediate` (the
//! commit fsyncs before it returns), and it takes an exclusive file lock so two signers can
//! never open one file. Its one writer at a time suits a claim store; to reach tens of
//! thousands of claims per second, this backend batches every claim that arrives while a
//! commit is in flight into the next transaction (group commit): one fsync per batch, and no
//! claim is answered `Inserted` before the fsync of its batch returns.

use crate::{decode_record, encode_record, ClaimOutcome, ClaimStore, StoreError, Swap};
use async_trait::async_trait;
use exclave_policies::{ClaimKey, ClaimRecord, Position, WatermarkKey};
use redb::{Database, Durability, ReadableTable, TableDefinition};
use std::{path::Path, sync::Arc};
use tokio::sync::{mpsc, oneshot};

const CLAIMS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("claims");
const WATERMARKS: TableDefinition<&[u8], (u64, u64)> = TableDefinition::new("watermarks");
const REGISTERS: TableDefinition<&str, &[u8]> = TableDefinition::new("registers");
const BACKEND: &str = "embedded";
/// The most claims one transaction takes.
const MAX_BATCH: usize = 4096;

enum WriteOp {
    Claim { key: Vec<u8>, value: Vec<u8>, reply: oneshot::Sender<Result<ClaimOutcome, StoreError>> },
    Raise { key: Vec<u8>, to: Position, reply: oneshot::Sender<Result<Position, StoreError>> },
    Delete { keys: Vec<Vec<u8>>, reply: oneshot::Sender<Result<(), StoreError>> },
    Swap { name: String, expected: Option<Vec<u8>>, new: Vec<u8>, reply: oneshot::Sender<Result<Swap, StoreError>> },
}

/// The embedded, single-process claim store.
pub struct EmbeddedStore {
    db: Arc<Database>,
    writer: mpsc::Sender<WriteOp>,
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable { backend: BACKEND, reason: e.to_string() }
}

impl EmbeddedStore {
    /// Open (or create) the store file at `path` and start its writer thread.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let open_err = |reason: String| StoreError::Open { path: path.display().to_string(), reason };
        let db = Database::create(path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => open_err("another process (another exclave signer?) holds this store open".into()),
            other => open_err(other.to_string()),
        })?;
        let txn = db.begin_write().map_err(|e| open_err(e.to_string()))?;
        txn.open_table(CLAIMS).map_err(|e| open_err(e.to_string()))?;
        txn.open_table(WATERMARKS).map_err(|e| open_err(e.to_string()))?;
        txn.open_table(REGISTERS).map_err(|e| open_err(e.to_string()))?;
        txn.commit().map_err(|e| open_err(e.to_string()))?;
        let db = Arc::new(db);
        let (writer, rx) = mpsc::channel(MAX_BATCH * 4);
        let thread_db = db.clone();
        std::thread::Builder::new()
            .name("exclave-claims-writer".into())
            .spawn(move || writer_loop(&thread_db, rx))
            .map_err(|e| open_err(e.to_string()))?;
        Ok(Self { db, writer })
    }

    /// Reads run on the blocking pool, never inline: a stalled disk must not block a runtime
    /// worker, and the caller's deadline (`WithDeadline`) must be able to fire.
    async fn read<T: Send + 'static>(&self, f: impl FnOnce(&Database) -> Result<T, StoreError> + Send + 'static) -> Result<T, StoreError> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || f(&db)).await.map_err(unavailable)?
    }

    async fn submit<T>(&self, op: WriteOp, rx: oneshot::Receiver<Result<T, StoreError>>) -> Result<T, StoreError> {
        self.writer.send(op).await.map_err(|_| unavailable("the writer thread has stopped"))?;
        rx.await.map_err(|_| unavailable("the writer thread dropped the request"))?
    }
}

/// Receive ops, batching whatever is queued, and commit each batch with one fsync.
fn writer_loop(db: &Database, mut rx: mpsc::Receiver<WriteOp>) {
    while let Some(first) = rx.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        commit_batch(db, batch);
    }
}

enum Pending {
    Claim(oneshot::Sender<Result<ClaimOutcome, StoreError>>, Result<ClaimOutcome, StoreError>),
    Raise(oneshot::Sender<Result<Position, StoreError>>, Result<Position, StoreError>),
    Delete(oneshot::Sender<Result<(), StoreError>>),
    Swap(oneshot::Sender<Result<Swap, StoreError>>, Swap),
}

fn commit_batch(db: &Database, batch: Vec<WriteOp>) {
    let mut pending = Vec::with_capacity(batch.len());
    let committed = apply(db, batch, &mut pending);
    for p in pending {
        // Answers are only released after the batch's commit (fsync) succeeded; otherwise every
        // op of the batch gets the commit error, and callers re-read.
        match p {
            Pending::Claim(tx, r) => drop(tx.send(committed.as_ref().map_err(unavailable).and(r))),
            Pending::Raise(tx, r) => drop(tx.send(committed.as_ref().map_err(unavailable).and(r))),
            Pending::Delete(tx) => drop(tx.send(committed.as_ref().map(drop).map_err(unavailable))),
            Pending::Swap(tx, r) => drop(tx.send(committed.as_ref().map(|()| r).map_err(unavailable))),
        }
    }
}

fn apply(db: &Database, batch: Vec<WriteOp>, pending: &mut Vec<Pending>) -> Result<(), String> {
    let mut txn = db.begin_write().map_err(|e| e.to_string())?;
    txn.set_durability(Durability::Immediate);
    {
        let mut claims = txn.open_table(CLAIMS).map_err(|e| e.to_string())?;
        let mut marks = txn.open_table(WATERMARKS).map_err(|e| e.to_string())?;
        let mut registers = txn.open_table(REGISTERS).map_err(|e| e.to_string())?;
        for op in batch {
            match op {
                WriteOp::Claim { key, value, reply } => {
                    let existing = claims.get(key.as_slice()).map_err(|e| e.to_string())?.map(|v| v.value().to_vec());
                    let outcome = match existing {
                        Some(bytes) => decode_record(&key, &bytes).map(ClaimOutcome::Existing),
                        None => {
                            claims.insert(key.as_slice(), value.as_slice()).map_err(|e| e.to_string())?;
                            Ok(ClaimOutcome::Inserted)
                        }
                    };
                    pending.push(Pending::Claim(reply, outcome));
                }
                WriteOp::Raise { key, to, reply } => {
                    let current = marks.get(key.as_slice()).map_err(|e| e.to_string())?.map(|v| v.value());
                    let next = current.map_or(to, |c| c.max(to));
                    marks.insert(key.as_slice(), next).map_err(|e| e.to_string())?;
                    pending.push(Pending::Raise(reply, Ok(next)));
                }
                WriteOp::Delete { keys, reply } => {
                    for key in keys {
                        claims.remove(key.as_slice()).map_err(|e| e.to_string())?;
                    }
                    pending.push(Pending::Delete(reply));
                }
                WriteOp::Swap { name, expected, new, reply } => {
                    let current = registers.get(name.as_str()).map_err(|e| e.to_string())?.map(|v| v.value().to_vec());
                    let outcome = if current == expected {
                        registers.insert(name.as_str(), new.as_slice()).map_err(|e| e.to_string())?;
                        Swap::Swapped
                    } else {
                        Swap::Current(current)
                    };
                    pending.push(Pending::Swap(reply, outcome));
                }
            }
        }
    }
    txn.commit().map_err(|e| e.to_string())
}

#[async_trait]
impl crate::PruneClaims for EmbeddedStore {
    async fn delete_claims(&self, keys: &[Vec<u8>]) -> Result<(), StoreError> {
        let (reply, rx) = oneshot::channel();
        self.submit(WriteOp::Delete { keys: keys.to_vec(), reply }, rx).await
    }
}

#[async_trait]
impl ClaimStore for EmbeddedStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn claim(&self, key: &ClaimKey, record: &ClaimRecord) -> Result<ClaimOutcome, StoreError> {
        let (reply, rx) = oneshot::channel();
        let op = WriteOp::Claim { key: key.to_bytes(), value: encode_record(record)?, reply };
        self.submit(op, rx).await
    }

    async fn get(&self, key: &ClaimKey) -> Result<Option<ClaimRecord>, StoreError> {
        let key = key.to_bytes();
        self.read(move |db| {
            let txn = db.begin_read().map_err(unavailable)?;
            let table = txn.open_table(CLAIMS).map_err(unavailable)?;
            let value = table.get(key.as_slice()).map_err(unavailable)?;
            value.map(|v| decode_record(&key, v.value())).transpose()
        })
        .await
    }

    async fn list(&self, prefix: &[u8], limit: usize) -> Result<Vec<(Vec<u8>, ClaimRecord)>, StoreError> {
        let prefix = prefix.to_vec();
        self.read(move |db| {
            let txn = db.begin_read().map_err(unavailable)?;
            let table = txn.open_table(CLAIMS).map_err(unavailable)?;
            let mut out = Vec::new();
            for entry in table.range(prefix.as_slice()..).map_err(unavailable)? {
                let (k, v) = entry.map_err(unavailable)?;
                if !k.value().starts_with(&prefix) || out.len() >= limit {
                    break;
                }
                out.push((k.value().to_vec(), decode_record(k.value(), v.value())?));
            }
            Ok(out)
        })
        .await
    }

    async fn watermark(&self, key: &WatermarkKey) -> Result<Option<Position>, StoreError> {
        let key = key.to_bytes();
        self.read(move |db| {
            let txn = db.begin_read().map_err(unavailable)?;
            let table = txn.open_table(WATERMARKS).map_err(unavailable)?;
            let value = table.get(key.as_slice()).map_err(unavailable)?;
            Ok(value.map(|v| v.value()))
        })
        .await
    }

    async fn raise_watermark(&self, key: &WatermarkKey, to: Position) -> Result<Position, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.submit(WriteOp::Raise { key: key.to_bytes(), to, reply }, rx).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.read(|db| db.begin_read().map(drop).map_err(unavailable)).await
    }

    async fn register(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let name = name.to_owned();
        self.read(move |db| {
            let txn = db.begin_read().map_err(unavailable)?;
            let table = txn.open_table(REGISTERS).map_err(unavailable)?;
            let value = table.get(name.as_str()).map_err(unavailable)?;
            Ok(value.map(|v| v.value().to_vec()))
        })
        .await
    }

    async fn swap_register(&self, name: &str, expected: Option<&[u8]>, new: &[u8]) -> Result<Swap, StoreError> {
        let (reply, rx) = oneshot::channel();
        let op = WriteOp::Swap { name: name.into(), expected: expected.map(<[u8]>::to_vec), new: new.to_vec(), reply };
        self.submit(op, rx).await
    }
}
