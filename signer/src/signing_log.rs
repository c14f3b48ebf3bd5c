//! The signing log: one JSON line per decision, each carrying the hash of the line before it.
//!
//! A record is appended, and fdatasync'd, before the signer replies: a signature that reached a
//! node is always in the log. Appends are batched by a writer thread (one fdatasync per batch).
//! `prev` is blake2_256 of the previous line's bytes (without its newline); the first line of a
//! new log has `prev` = 32 zero bytes. Verification tools build on exactly this (see docs/audit).

use serde::Serialize;
use std::{
    fs::{File, OpenOptions},
    io::{Read, Seek, SeekFrom, Write},
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
};
use tokio::sync::{mpsc, oneshot};

/// What became of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Decision {
    /// Signed under a new claim (or unclaimed signing).
    Signed,
    /// The stored signature of an identical earlier claim was returned.
    SameData,
    /// Refused (conflict, policy, watermark, unknown key).
    Refused,
    /// No usable answer from the store, or an internal failure: nothing was signed.
    Error,
}

/// One decision, as logged. Fields other than `seq` and `prev` are filled by the engine.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogEntry {
    /// Unix milliseconds.
    pub time_ms: u64,
    /// The signer id.
    pub signer: String,
    /// The client identity (from its certificate).
    pub client: String,
    /// The chain (genesis hash, hex).
    pub chain: String,
    /// The RPC method (`sign`, `vrfSign`, `generateKey`, …).
    pub method: &'static str,
    /// The key type.
    pub key_type: String,
    /// The public key, hex.
    pub public: String,
    /// The duty (claimed requests only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duty: Option<serde_json::Value>,
    /// The decision.
    pub decision: Decision,
    /// blake2_256 of the message signed, hex.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload_hash: Option<String>,
    /// The exact message, hex (so a verifier can check the signature).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The pre-image the message was derived from (header, commitment or VRF inputs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preimage: Option<serde_json::Value>,
    /// The signature returned, hex.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// Why it was refused or failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Serialize)]
struct Line<'a> {
    seq: u64,
    prev: String,
    #[serde(flatten)]
    entry: &'a LogEntry,
}

/// Why the log could not be written.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// Filesystem trouble.
    #[error("signing log {path}: {source}")]
    Io {
        /// The log file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The writer thread is gone.
    #[error("signing log writer has stopped")]
    Stopped,
}

type Reply = oneshot::Sender<Result<(), String>>;

/// A handle to the log; cheap to clone.
#[derive(Clone)]
pub struct SigningLog {
    tx: mpsc::Sender<(LogEntry, Reply)>,
    path: PathBuf,
}

struct Tail {
    seq: u64,
    prev: [u8; 32],
}

impl SigningLog {
    /// Open (or create, mode 0600) the log and continue its chain.
    pub fn open(path: &Path) -> Result<Self, LogError> {
        let io = |source| LogError::Io { path: path.display().to_string(), source };
        let mut file = OpenOptions::new().create(true).read(true).append(true).mode(0o600).open(path).map_err(io)?;
        let tail = read_tail(&mut file).map_err(io)?;
        let (tx, rx) = mpsc::channel(8192);
        let p = path.to_path_buf();
        std::thread::Builder::new()
            .name("exclave-signing-log".into())
            .spawn(move || writer(file, tail, rx, &p))
            .map_err(io)?;
        Ok(Self { tx, path: path.to_path_buf() })
    }

    /// Append a record; returns once it is written and fdatasync'd.
    pub async fn append(&self, entry: LogEntry) -> Result<(), LogError> {
        let (reply, rx) = oneshot::channel();
        self.tx.send((entry, reply)).await.map_err(|_| LogError::Stopped)?;
        rx.await.map_err(|_| LogError::Stopped)?.map_err(|e| LogError::Io {
            path: self.path.display().to_string(),
            source: std::io::Error::other(e),
        })
    }
}

/// Find the last line's sequence number and hash. A torn last line (no newline, left by a
/// crash mid-write) is terminated so the next record starts on its own line; it stays in the
/// chain as written, for the verifier to flag.
fn read_tail(file: &mut File) -> std::io::Result<Tail> {
    let len = file.seek(SeekFrom::End(0))?;
    if len == 0 {
        return Ok(Tail { seq: 0, prev: [0; 32] });
    }
    let start = len.saturating_sub(1 << 20);
    file.seek(SeekFrom::Start(start))?;
    let mut buf = Vec::new();
    file.read_to_end(&mut buf)?;
    if buf.last() != Some(&b'\n') {
        file.write_all(b"\n")?;
        file.sync_data()?;
    } else {
        buf.pop();
    }
    let last = buf.rsplit(|b| *b == b'\n').next().unwrap_or_default();
    let seq = serde_json::from_slice::<serde_json::Value>(last)
        .ok()
        .and_then(|v| v.get("seq").and_then(|s| s.as_u64()))
        .unwrap_or(0);
    Ok(Tail { seq, prev: sp_crypto_hashing::blake2_256(last) })
}

fn writer(mut file: File, mut tail: Tail, mut rx: mpsc::Receiver<(LogEntry, Reply)>, path: &Path) {
    while let Some(first) = rx.blocking_recv() {
        let mut batch = vec![first];
        while let Ok(next) = rx.try_recv() {
            batch.push(next);
            if batch.len() >= 4096 {
                break;
            }
        }
        let mut buf = Vec::with_capacity(batch.len() * 512);
        for (entry, _) in &batch {
            tail.seq += 1;
            let line = Line { seq: tail.seq, prev: hex::encode(tail.prev), entry };
            let bytes = serde_json::to_vec(&line).unwrap_or_default();
            tail.prev = sp_crypto_hashing::blake2_256(&bytes);
            buf.extend_from_slice(&bytes);
            buf.push(b'\n');
        }
        let result = file.write_all(&buf).and_then(|()| file.sync_data()).map_err(|e| {
            tracing::error!(path = %path.display(), error = %e, "signing log write failed");
            e.to_string()
        });
        for (_, reply) in batch {
            let _ = reply.send(result.clone());
        }
    }
}
