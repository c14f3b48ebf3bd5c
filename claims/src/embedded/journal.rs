//! Journaled mode's bookkeeping: the journal mark, when a batch needs an fsync, what a restore
//! inserts (see the module docs of [`super`]).

use super::{Commit, Suspect, WriteOp};
use crate::{decode_record, StoreError};
use redb::{Database, Durability, ReadableTable, Table, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};
use std::sync::{
    atomic::{AtomicU64, Ordering},
    Arc,
};

/// The journal mark's table (one row, [`MARK`]).
pub(super) const JOURNAL: TableDefinition<&str, &[u8]> = TableDefinition::new("journal");
const MARK: &str = "mark";

/// Written with every durable commit in journaled mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JournalMark {
    /// A journaled signer has the file open (or stopped without closing it).
    pub open: bool,
    /// Every claim of a signing-log record up to this sequence number is in the file.
    pub replay_after: u64,
}

/// What [`super::EmbeddedStore::restore`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Restored {
    /// Claims the file did not hold (lost by the crash): inserted.
    pub inserted: usize,
    /// Claims the file already held, binding the same payload and signature.
    pub present: usize,
}

/// The writer thread's journal state.
pub(super) struct Journal {
    log_seq: Arc<AtomicU64>,
    /// Until a restore succeeded: the mark never moves past where the restore starts.
    floor: Option<u64>,
    /// Claims committed since the last durable commit (committed again after a failed one).
    unflushed: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Journal {
    pub(super) fn new(log_seq: Arc<AtomicU64>, floor: u64) -> Self {
        Self { log_seq, floor: Some(floor), unflushed: Vec::new() }
    }

    /// A ticker's flush with nothing committed since the last durable commit.
    pub(super) fn idle(&self, batch: &[WriteOp]) -> bool {
        self.unflushed.is_empty() && batch.iter().all(|op| matches!(op, WriteOp::Flush { close: false, reply: None }))
    }

    /// Claims alone commit without an fsync; anything else makes the batch, and every commit
    /// before it, durable, with the mark.
    pub(super) fn commit_for(&self, batch: &[WriteOp]) -> Commit {
        if batch.iter().all(|op| matches!(op, WriteOp::Claim { .. } | WriteOp::Guarded { .. })) {
            return Commit { durability: Durability::None, mark: None };
        }
        let close = batch.iter().any(|op| matches!(op, WriteOp::Flush { close: true, .. }));
        let restoring = batch.iter().any(|op| matches!(op, WriteOp::Restore { .. }));
        // Read before the commit: every record up to here was written after its claim was
        // committed (the engine logs only after `claim` answered), so the claim is in this
        // commit or an earlier one.
        let seq = self.log_seq.load(Ordering::SeqCst);
        let replay_after = match self.floor {
            Some(floor) if !restoring => floor.min(seq),
            _ => seq,
        };
        Commit { durability: Durability::Immediate, mark: Some(JournalMark { open: !close, replay_after }) }
    }

    /// After a successful commit.
    pub(super) fn committed(&mut self, durable: bool, restored: bool, claims: Vec<(Vec<u8>, Vec<u8>)>) {
        if durable {
            self.unflushed.clear();
            if restored {
                self.floor = None;
            }
        } else {
            self.unflushed.extend(claims);
        }
    }

    /// After a failed commit: the claims whose durability it left unknown.
    pub(super) fn take_unflushed(&mut self) -> Vec<(Vec<u8>, Vec<u8>)> {
        std::mem::take(&mut self.unflushed)
    }
}

pub(super) fn read_mark(db: &Database) -> Result<Option<JournalMark>, String> {
    let txn = db.begin_read().map_err(|e| e.to_string())?;
    let table = txn.open_table(JOURNAL).map_err(|e| e.to_string())?;
    let value = table.get(MARK).map_err(|e| e.to_string())?;
    value.map(|v| serde_json::from_slice(v.value()).map_err(|e| format!("the journal mark is corrupt: {e}"))).transpose()
}

pub(super) fn put_mark(txn: &WriteTransaction, mark: JournalMark) -> Result<(), String> {
    let bytes = serde_json::to_vec(&mark).map_err(|e| e.to_string())?;
    let mut table = txn.open_table(JOURNAL).map_err(|e| e.to_string())?;
    table.insert(MARK, bytes.as_slice()).map_err(|e| e.to_string())?;
    Ok(())
}

/// Write `mark` in a durable commit of its own.
pub(super) fn write_mark(db: &Database, mark: JournalMark) -> Result<(), String> {
    let mut txn = db.begin_write().map_err(|e| e.to_string())?;
    txn.set_durability(Durability::Immediate);
    put_mark(&txn, mark)?;
    txn.commit().map_err(|e| e.to_string())
}

/// Why [`super::EmbeddedStore::open`] refuses a file left open by a journaled signer.
pub(super) fn unclean(mark: &JournalMark) -> String {
    format!(
        "the signer that used this file did not stop cleanly: its claims after signing-log record {} are in its signing log, not yet in this file. \
         Start that signer again (it restores them) and stop it cleanly, or run this command with --config (it restores them from the configured signing log)",
        mark.replay_after
    )
}

/// Insert each absent claim; a held one must bind the same payload and signature.
pub(super) fn restore(
    claims: &mut Table<&[u8], &[u8]>,
    entries: Vec<(Vec<u8>, Vec<u8>)>,
    written: &mut Suspect,
) -> Result<Result<Restored, StoreError>, String> {
    let mut out = Restored::default();
    for (key, value) in entries {
        let held = claims.get(key.as_slice()).map_err(|e| e.to_string())?.map(|v| v.value().to_vec());
        match held {
            None => {
                claims.insert(key.as_slice(), value.as_slice()).map_err(|e| e.to_string())?;
                written.claims.push((key, value));
                out.inserted += 1;
            }
            Some(held) => match same_claim(&key, &held, &value) {
                Ok(true) => out.present += 1,
                Ok(false) => {
                    return Ok(Err(StoreError::Corrupt {
                        key: String::from_utf8_lossy(&key).into_owned(),
                        reason: "the signing log's record of this claim binds another payload or signature than the stored claim".into(),
                    }))
                }
                Err(e) => return Ok(Err(e)),
            },
        }
    }
    Ok(Ok(out))
}

fn same_claim(key: &[u8], held: &[u8], value: &[u8]) -> Result<bool, StoreError> {
    let (a, b) = (decode_record(key, held)?, decode_record(key, value)?);
    Ok(a.payload_hash == b.payload_hash && a.signature == b.signature)
}
