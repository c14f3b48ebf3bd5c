//! The embedded claim store: one redb file, written by one group-commit thread.
//!
//! Why redb: it is pure Rust (no C toolchain, no RocksDB build), ACID with copy-on-write
//! B-trees and a checksummed commit protocol, crash-safe with `Durability::Immediate` (the
//! commit fsyncs before it returns), and it takes an exclusive file lock so two signers can
//! never open one file. Its one writer at a time suits a claim store; to reach tens of
//! thousands of claims per second, this backend batches every claim that arrives while a
//! commit is in flight into the next transaction (group commit): one fsync per batch, and no
//! claim is answered `Inserted` before the fsync of its batch returns.
//!
//! **A failed write.** redb refuses every call after an I/O error (`PreviousIo`); and after a
//! failed fsync, the data may be in the page cache but not on disk, and a later fsync may
//! report success without it ("fsyncgate"). So after a failed commit the store: answers every
//! read and write `Unavailable` (nothing that failed can be read back as a proof of a claim),
//! reopens the file, and commits again every claim and watermark of the failed batch (new pages,
//! a new fsync) before it serves anything. It recovers when the disk does, at the next write or
//! `ping`.

use crate::{decode_record, encode_record, ClaimOutcome, ClaimStore, Guarded, StoreError, Swap, WatermarkSeen};
use async_trait::async_trait;
use exclave_policies::{ClaimKey, ClaimRecord, Position, WatermarkKey};
use redb::{Database, Durability, ReadableTable, TableDefinition};
use std::{
    path::{Path, PathBuf},
    sync::{atomic::AtomicU64, Arc, Mutex, RwLock},
    time::Duration,
};

mod journal;
use journal::{Journal, JOURNAL};
pub use journal::{JournalMark, Restored};
use tokio::sync::{mpsc, oneshot};

const CLAIMS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("claims");
const WATERMARKS: TableDefinition<&[u8], (u64, u64)> = TableDefinition::new("watermarks");
const REGISTERS: TableDefinition<&str, &[u8]> = TableDefinition::new("registers");
const BACKEND: &str = "embedded";
/// The most claims one transaction takes.
const MAX_BATCH: usize = 4096;
/// redb's page cache (its default, 1 GiB, would hold a large store in memory; reads here are
/// of recent claims and of watermarks).
const CACHE_BYTES: usize = 32 << 20;
/// Journaled mode: the longest a claim stays committed without an fsync of the store.
pub const FLUSH_EVERY: Duration = Duration::from_millis(250);

enum WriteOp {
    Claim {
        key: Vec<u8>,
        value: Vec<u8>,
        reply: oneshot::Sender<Result<ClaimOutcome, StoreError>>,
    },
    /// A claim made only while the family's watermark (`mark`) is `seen`.
    Guarded {
        key: Vec<u8>,
        value: Vec<u8>,
        mark: Vec<u8>,
        seen: Option<Position>,
        reply: oneshot::Sender<Result<Guarded, StoreError>>,
    },
    Raise {
        key: Vec<u8>,
        to: Position,
        reply: oneshot::Sender<Result<Position, StoreError>>,
    },
    Delete {
        keys: Vec<Vec<u8>>,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    Swap {
        name: String,
        expected: Option<Vec<u8>>,
        new: Vec<u8>,
        reply: oneshot::Sender<Result<Swap, StoreError>>,
    },
    /// Recover from a failed write, if one is pending (`ping` while unhealthy).
    Heal {
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    /// Journaled mode: make every earlier commit durable; `close`: mark the journal closed (a
    /// clean stop). The ticker's flushes have no reply.
    Flush {
        close: bool,
        reply: Option<oneshot::Sender<Result<(), StoreError>>>,
    },
    /// Journaled mode: re-insert claims rebuilt from the signing log (after a crash).
    Restore {
        entries: Vec<(Vec<u8>, Vec<u8>)>,
        reply: oneshot::Sender<Result<Restored, StoreError>>,
    },
}

/// The embedded, single-process claim store. Clones share the file and its writer thread.
#[derive(Clone)]
pub struct EmbeddedStore {
    shared: Arc<Shared>,
    writer: mpsc::Sender<WriteOp>,
}

/// What the writer thread and the readers share.
struct Shared {
    path: PathBuf,
    /// The open database; `None` after a failed write until it is reopened.
    db: RwLock<Option<Arc<Database>>>,
    /// Writes of a batch whose commit failed: committed again before anything is served.
    suspect: Mutex<Suspect>,
}

/// Claims and watermarks whose durability a failed commit left unknown.
#[derive(Default)]
struct Suspect {
    claims: Vec<(Vec<u8>, Vec<u8>)>,
    raises: Vec<(Vec<u8>, Position)>,
    /// Why the store is unhealthy (the failed write's error); `None`: healthy.
    failure: Option<String>,
}

impl Shared {
    /// The database, if healthy: no failed write is waiting to be made good.
    fn healthy_db(&self) -> Result<Arc<Database>, StoreError> {
        if let Some(failure) = &self.suspect.lock().map_err(unavailable)?.failure {
            return Err(unavailable(format!("a write failed ({failure}); the store recovers at the next write")));
        }
        self.db.read().map_err(unavailable)?.clone().ok_or_else(|| unavailable("the store is being reopened"))
    }
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable { backend: BACKEND, reason: e.to_string() }
}

impl EmbeddedStore {
    /// Open (or create) the store file at `path` and start its writer thread: every claim is
    /// fsync'd before `claim` answers. A file a journaled signer left without a clean stop is
    /// refused: its newest claims are only in that signer's signing log.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let (db, mark) = create(path)?;
        if let Some(mark) = mark.filter(|m| m.open) {
            return Err(StoreError::Open { path: path.display().to_string(), reason: journal::unclean(&mark) });
        }
        Self::start(path, db, None)
    }

    /// Open in journaled mode (module docs). `log_seq` is the signing log's last written
    /// sequence number, kept current by the log. Returns the store and, when the file was left
    /// without a clean stop, the sequence number after which the signing log's claims are not
    /// in the file: the caller rebuilds them from the log and passes them to
    /// [`EmbeddedStore::restore`] (with none when there is nothing to restore) before it serves.
    pub fn open_journaled(path: &Path, log_seq: Arc<AtomicU64>) -> Result<(Self, Option<u64>), StoreError> {
        let (db, mark) = create(path)?;
        let replay_after = mark.filter(|m| m.open).map(|m| m.replay_after);
        let floor = replay_after.unwrap_or_else(|| log_seq.load(std::sync::atomic::Ordering::SeqCst));
        // Marked open before the first claim: a crash from here on restores from `floor`.
        journal::write_mark(&db, JournalMark { open: true, replay_after: floor })
            .map_err(|reason| StoreError::Open { path: path.display().to_string(), reason })?;
        let store = Self::start(path, db, Some(Journal::new(log_seq, floor)))?;
        Ok((store, replay_after))
    }

    fn start(path: &Path, db: Database, journal: Option<Journal>) -> Result<Self, StoreError> {
        let open_err = |reason: String| StoreError::Open { path: path.display().to_string(), reason };
        let journaled = journal.is_some();
        let shared =
            Arc::new(Shared { path: path.to_path_buf(), db: RwLock::new(Some(Arc::new(db))), suspect: Mutex::new(Suspect::default()) });
        let (writer, rx) = mpsc::channel(MAX_BATCH * 4);
        let thread_shared = shared.clone();
        std::thread::Builder::new()
            .name("exclave-claims-writer".into())
            .spawn(move || writer_loop(&thread_shared, rx, journal))
            .map_err(|e| open_err(e.to_string()))?;
        if journaled {
            let weak = writer.downgrade();
            std::thread::Builder::new()
                .name("exclave-claims-flush".into())
                .spawn(move || loop {
                    std::thread::sleep(FLUSH_EVERY);
                    match weak.upgrade() {
                        Some(tx) if tx.blocking_send(WriteOp::Flush { close: false, reply: None }).is_ok() => {}
                        _ => break,
                    }
                })
                .map_err(|e| open_err(e.to_string()))?;
        }
        Ok(Self { shared, writer })
    }

    /// Journaled mode: re-insert claims rebuilt from the signing log after a crash, durably.
    /// A claim already held is left as it is if it binds the same payload and signature; one
    /// that differs is an error naming it (nothing is overwritten). Until this has succeeded
    /// once, the journal mark does not move past where the restore starts.
    pub async fn restore(&self, claims: &[(ClaimKey, ClaimRecord)]) -> Result<Restored, StoreError> {
        let entries = claims.iter().map(|(k, r)| Ok((k.to_bytes(), encode_record(r)?))).collect::<Result<Vec<_>, StoreError>>()?;
        let (reply, rx) = oneshot::channel();
        self.submit(WriteOp::Restore { entries, reply }, rx).await
    }

    /// Journaled mode: make every claim so far durable now; `close`: and mark the file as left
    /// cleanly (a signer's clean stop; the offline tools then open it).
    pub async fn flush(&self, close: bool) -> Result<(), StoreError> {
        let (reply, rx) = oneshot::channel();
        self.submit(WriteOp::Flush { close, reply: Some(reply) }, rx).await
    }

    /// Reads run on the blocking pool, never inline: a stalled disk must not block a runtime
    /// worker, and the caller's deadline (`WithDeadline`) must be able to fire.
    async fn read<T: Send + 'static>(&self, f: impl FnOnce(&Database) -> Result<T, StoreError> + Send + 'static) -> Result<T, StoreError> {
        let db = self.shared.healthy_db()?;
        tokio::task::spawn_blocking(move || f(&db)).await.map_err(unavailable)?
    }

    async fn submit<T>(&self, op: WriteOp, rx: oneshot::Receiver<Result<T, StoreError>>) -> Result<T, StoreError> {
        self.writer.send(op).await.map_err(|_| unavailable("the writer thread has stopped"))?;
        rx.await.map_err(|_| unavailable("the writer thread dropped the request"))?
    }
}

/// Create or open the file and its tables; returns the journal mark, if any.
fn create(path: &Path) -> Result<(Database, Option<JournalMark>), StoreError> {
    let open_err = |reason: String| StoreError::Open { path: path.display().to_string(), reason };
    let db = redb::Builder::new().set_cache_size(CACHE_BYTES).create(path).map_err(|e| match e {
        redb::DatabaseError::DatabaseAlreadyOpen => open_err("another process (another exclave signer?) holds this store open".into()),
        other => open_err(other.to_string()),
    })?;
    let txn = db.begin_write().map_err(|e| open_err(e.to_string()))?;
    txn.open_table(CLAIMS).map_err(|e| open_err(e.to_string()))?;
    txn.open_table(WATERMARKS).map_err(|e| open_err(e.to_string()))?;
    txn.open_table(REGISTERS).map_err(|e| open_err(e.to_string()))?;
    txn.open_table(JOURNAL).map_err(|e| open_err(e.to_string()))?;
    txn.commit().map_err(|e| open_err(e.to_string()))?;
    // redb fsyncs the file, not the directory: make a new file's name durable too, before any
    // claim in it is answered (a power cut must not take the whole store away).
    exclave_durable::sync_dir(path).map_err(|e| open_err(e.to_string()))?;
    let mark = journal::read_mark(&db).map_err(open_err)?;
    Ok((db, mark))
}

/// Receive ops, batching whatever is queued, and commit each batch with one fsync (journaled
/// mode: a batch of claims only, without); after a failed commit, recover (reopen, commit the
/// failed writes again) before the next.
fn writer_loop(shared: &Shared, mut rx: mpsc::Receiver<WriteOp>, mut journal: Option<Journal>) {
    while let Some(first) = rx.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        if journal.as_ref().is_some_and(|j| j.idle(&batch)) {
            // A tick with nothing to flush.
            continue;
        }
        match recover(shared) {
            Ok(db) => commit_batch(shared, &db, batch, journal.as_mut()),
            Err(e) => refuse_batch(batch, &e),
        }
    }
}

/// The database, once every write of a failed batch is committed again. Reopens the file
/// (redb refuses all calls after an I/O error) and re-puts the suspect claims and watermarks
/// in a new transaction: their pages are written and fsync'd again, whatever the page cache
/// held. Until this succeeds, nothing is read or written.
fn recover(shared: &Shared) -> Result<Arc<Database>, String> {
    let mut suspect = shared.suspect.lock().map_err(|e| e.to_string())?;
    if suspect.failure.is_none() {
        if let Some(db) = shared.db.read().map_err(|e| e.to_string())?.clone() {
            return Ok(db);
        }
    }
    let db = {
        let mut slot = shared.db.write().map_err(|e| e.to_string())?;
        match slot.clone() {
            Some(db) => db,
            None => {
                let db = Arc::new(
                    redb::Builder::new()
                        .set_cache_size(CACHE_BYTES)
                        .create(&shared.path)
                        .map_err(|e| format!("reopening {}: {e}", shared.path.display()))?,
                );
                *slot = Some(db.clone());
                db
            }
        }
    };
    let result = (|| {
        let mut txn = db.begin_write().map_err(|e| e.to_string())?;
        txn.set_durability(Durability::Immediate);
        {
            let mut claims = txn.open_table(CLAIMS).map_err(|e| e.to_string())?;
            for (key, value) in &suspect.claims {
                let held = claims.get(key.as_slice()).map_err(|e| e.to_string())?.map(|v| v.value().to_vec());
                // Ours (visible from the cache) or absent: write it again. Another record cannot
                // be there: this thread is the store's only writer.
                if held.as_deref().is_none_or(|h| h == value.as_slice()) {
                    claims.insert(key.as_slice(), value.as_slice()).map_err(|e| e.to_string())?;
                }
            }
            let mut marks = txn.open_table(WATERMARKS).map_err(|e| e.to_string())?;
            for (key, to) in &suspect.raises {
                let current = marks.get(key.as_slice()).map_err(|e| e.to_string())?.map(|v| v.value());
                marks.insert(key.as_slice(), current.map_or(*to, |c| c.max(*to))).map_err(|e| e.to_string())?;
            }
        }
        txn.commit().map_err(|e| e.to_string())
    })();
    match result {
        Ok(()) => {
            tracing::info!(claims = suspect.claims.len(), watermarks = suspect.raises.len(), "claim store recovered after a failed write");
            *suspect = Suspect::default();
            Ok(db)
        }
        Err(e) => {
            drop(db);
            *shared.db.write().map_err(|e| e.to_string())? = None;
            suspect.failure = Some(e.clone());
            Err(e)
        }
    }
}

/// Answer every op of a batch that could not be applied.
fn refuse_batch(batch: Vec<WriteOp>, why: &str) {
    let err = || unavailable(format!("a write failed and the store has not recovered yet: {why}"));
    for op in batch {
        match op {
            WriteOp::Claim { reply, .. } => drop(reply.send(Err(err()))),
            WriteOp::Guarded { reply, .. } => drop(reply.send(Err(err()))),
            WriteOp::Raise { reply, .. } => drop(reply.send(Err(err()))),
            WriteOp::Delete { reply, .. } => drop(reply.send(Err(err()))),
            WriteOp::Swap { reply, .. } => drop(reply.send(Err(err()))),
            WriteOp::Heal { reply } => drop(reply.send(Err(err()))),
            WriteOp::Flush { reply, .. } => drop(reply.map(|r| r.send(Err(err())))),
            WriteOp::Restore { reply, .. } => drop(reply.send(Err(err()))),
        }
    }
}

enum Pending {
    Claim(oneshot::Sender<Result<ClaimOutcome, StoreError>>, Result<ClaimOutcome, StoreError>),
    Guarded(oneshot::Sender<Result<Guarded, StoreError>>, Result<Guarded, StoreError>),
    Raise(oneshot::Sender<Result<Position, StoreError>>, Result<Position, StoreError>),
    Delete(oneshot::Sender<Result<(), StoreError>>),
    Swap(oneshot::Sender<Result<Swap, StoreError>>, Swap),
    Heal(oneshot::Sender<Result<(), StoreError>>),
    Flush(Option<oneshot::Sender<Result<(), StoreError>>>),
    Restore(oneshot::Sender<Result<Restored, StoreError>>, Result<Restored, StoreError>),
}

/// How one batch is committed.
struct Commit {
    durability: Durability,
    /// Journaled mode, durable commits: the mark written with it.
    mark: Option<JournalMark>,
}

fn commit_batch(shared: &Shared, db: &Database, batch: Vec<WriteOp>, journal: Option<&mut Journal>) {
    let commit = match &journal {
        None => Commit { durability: Durability::Immediate, mark: None },
        Some(j) => j.commit_for(&batch),
    };
    let durable = matches!(commit.durability, Durability::Immediate);
    let mut pending = Vec::with_capacity(batch.len());
    let mut written = Suspect::default();
    let committed = apply(db, batch, &mut pending, &mut written, commit);
    if let Err(e) = &committed {
        // Unknown durability: keep what the batch wrote, and in journaled mode every claim
        // committed since the last durable commit, to commit them again; refuse every read, and
        // let the database go (redb refuses all calls after an I/O error).
        tracing::error!(error = %e, claims = written.claims.len(), "claim store commit failed; refusing until the disk recovers");
        if let (Ok(mut suspect), Ok(mut slot)) = (shared.suspect.lock(), shared.db.write()) {
            suspect.claims.append(&mut written.claims);
            if let Some(j) = journal {
                suspect.claims.append(&mut j.take_unflushed());
            }
            suspect.raises.append(&mut written.raises);
            suspect.failure = Some(e.clone());
            *slot = None;
        }
    } else if let Some(j) = journal {
        let restored = pending.iter().any(|p| matches!(p, Pending::Restore(_, Ok(_))));
        j.committed(durable, restored, written.claims);
    }
    for p in pending {
        // Answers are only released after the batch's commit succeeded (durable mode: after its
        // fsync); otherwise every op of the batch gets the commit error, and callers re-read.
        let failed = || committed.as_ref().map_err(unavailable).err();
        match p {
            Pending::Claim(tx, r) => drop(tx.send(committed.as_ref().map_err(unavailable).and(r))),
            Pending::Guarded(tx, r) => drop(tx.send(committed.as_ref().map_err(unavailable).and(r))),
            Pending::Raise(tx, r) => drop(tx.send(committed.as_ref().map_err(unavailable).and(r))),
            Pending::Delete(tx) | Pending::Heal(tx) => drop(tx.send(failed().map_or(Ok(()), Err))),
            Pending::Swap(tx, r) => drop(tx.send(committed.as_ref().map(|()| r).map_err(unavailable))),
            Pending::Flush(tx) => drop(tx.map(|tx| tx.send(failed().map_or(Ok(()), Err)))),
            Pending::Restore(tx, r) => drop(tx.send(committed.as_ref().map_err(unavailable).and(r))),
        }
    }
}

fn apply(db: &Database, batch: Vec<WriteOp>, pending: &mut Vec<Pending>, written: &mut Suspect, commit: Commit) -> Result<(), String> {
    let mut txn = db.begin_write().map_err(|e| e.to_string())?;
    txn.set_durability(commit.durability);
    {
        let mut claims = txn.open_table(CLAIMS).map_err(|e| e.to_string())?;
        let mut marks = txn.open_table(WATERMARKS).map_err(|e| e.to_string())?;
        let mut registers = txn.open_table(REGISTERS).map_err(|e| e.to_string())?;
        for op in batch {
            match op {
                WriteOp::Claim { key, value, reply } => {
                    let outcome = insert_if_absent(&mut claims, key, value, written)?;
                    pending.push(Pending::Claim(reply, outcome));
                }
                WriteOp::Guarded { key, value, mark, seen, reply } => {
                    let current = marks.get(mark.as_slice()).map_err(|e| e.to_string())?.map(|v| v.value());
                    let outcome = if claims.get(key.as_slice()).map_err(|e| e.to_string())?.is_none() && current != seen {
                        Ok(Guarded::WatermarkMoved(WatermarkSeen { position: current, version: 0 }))
                    } else {
                        insert_if_absent(&mut claims, key, value, written)?.map(Guarded::Claimed)
                    };
                    pending.push(Pending::Guarded(reply, outcome));
                }
                WriteOp::Raise { key, to, reply } => {
                    let current = marks.get(key.as_slice()).map_err(|e| e.to_string())?.map(|v| v.value());
                    let next = current.map_or(to, |c| c.max(to));
                    written.raises.push((key.clone(), next));
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
                WriteOp::Heal { reply } => pending.push(Pending::Heal(reply)),
                WriteOp::Flush { reply, .. } => pending.push(Pending::Flush(reply)),
                WriteOp::Restore { entries, reply } => {
                    let outcome = journal::restore(&mut claims, entries, written)?;
                    pending.push(Pending::Restore(reply, outcome));
                }
            }
        }
    }
    if let Some(mark) = commit.mark {
        journal::put_mark(&txn, mark)?;
    }
    txn.commit().map_err(|e| e.to_string())
}

/// Insert `value` under `key` unless a record is there; the record there otherwise.
fn insert_if_absent(
    claims: &mut redb::Table<&[u8], &[u8]>,
    key: Vec<u8>,
    value: Vec<u8>,
    written: &mut Suspect,
) -> Result<Result<ClaimOutcome, StoreError>, String> {
    let existing = claims.get(key.as_slice()).map_err(|e| e.to_string())?.map(|v| v.value().to_vec());
    Ok(match existing {
        Some(bytes) => decode_record(&key, &bytes).map(ClaimOutcome::Existing),
        None => {
            claims.insert(key.as_slice(), value.as_slice()).map_err(|e| e.to_string())?;
            written.claims.push((key, value));
            Ok(ClaimOutcome::Inserted)
        }
    })
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

    fn guards_claims(&self) -> bool {
        true
    }

    /// The watermark is compared and the claim inserted in one transaction of the single writer
    /// (watermarks have no version here: the position is compared).
    async fn claim_guarded(&self, key: &ClaimKey, record: &ClaimRecord, seen: WatermarkSeen) -> Result<Guarded, StoreError> {
        let (reply, rx) = oneshot::channel();
        let mark = key.watermark_key().to_bytes();
        let op = WriteOp::Guarded { key: key.to_bytes(), value: encode_record(record)?, mark, seen: seen.position, reply };
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
        if self.shared.healthy_db().is_err() {
            // Try to recover now rather than at the next write (`/ready` pings).
            let (reply, rx) = oneshot::channel();
            self.submit(WriteOp::Heal { reply }, rx).await?;
        }
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
