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
    // The sequence continues from the last record that parses (a torn line has none).
    let seq = buf
        .rsplit(|b| *b == b'\n')
        .find_map(|line| serde_json::from_slice::<serde_json::Value>(line).ok()?.get("seq")?.as_u64())
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
        if result.is_err() {
            // Part of the batch may have reached the file: continue the chain from what is there.
            match read_tail(&mut file) {
                Ok(t) => tail = t,
                Err(e) => tracing::error!(path = %path.display(), error = %e, "cannot re-read the signing log tail"),
            }
        }
        for (_, reply) in batch {
            let _ = reply.send(result.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: u64) -> LogEntry {
        LogEntry {
            time_ms: n,
            signer: "s".into(),
            client: "c".into(),
            chain: "0x00".into(),
            method: "sign",
            key_type: "gran".into(),
            public: "00".into(),
            duty: None,
            decision: Decision::Signed,
            payload_hash: None,
            message: None,
            preimage: None,
            signature: None,
            reason: None,
        }
    }

    fn lines(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path).expect("read").lines().map(str::to_owned).collect()
    }

    fn assert_chained(lines: &[String]) {
        let first: serde_json::Value = serde_json::from_str(&lines[0]).expect("json");
        assert_eq!(first["prev"], hex::encode([0u8; 32]));
        for w in lines.windows(2) {
            // A torn line carries no link of its own; the line after it links to it.
            let Ok(next) = serde_json::from_str::<serde_json::Value>(&w[1]) else { continue };
            assert_eq!(next["prev"], hex::encode(sp_crypto_hashing::blake2_256(w[0].as_bytes())));
        }
    }

    #[tokio::test]
    async fn chain_continues_across_reopen_and_over_a_torn_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("signing.log");
        let log = SigningLog::open(&path).expect("open");
        for n in 0..3 {
            log.append(entry(n)).await.expect("append");
        }
        drop(log);
        let log = SigningLog::open(&path).expect("reopen");
        log.append(entry(3)).await.expect("append");
        drop(log);
        let l = lines(&path);
        assert_eq!(l.len(), 4);
        assert_chained(&l);
        let seqs: Vec<u64> = l.iter().map(|x| serde_json::from_str::<serde_json::Value>(x).expect("json")["seq"].as_u64().expect("seq")).collect();
        assert_eq!(seqs, vec![1, 2, 3, 4]);

        // A crash mid-write leaves a torn line: it is terminated and the chain links over it.
        std::fs::OpenOptions::new().append(true).open(&path).expect("open").write_all(b"{\"seq\":5,\"pr").expect("tear");
        let log = SigningLog::open(&path).expect("reopen after tear");
        log.append(entry(5)).await.expect("append");
        drop(log);
        let l = lines(&path);
        assert_eq!(l.len(), 6);
        assert_eq!(l[4], "{\"seq\":5,\"pr");
        assert_chained(&l);
        let last: serde_json::Value = serde_json::from_str(&l[5]).expect("json");
        assert_eq!(last["seq"], 5, "the sequence continues from the last whole record");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777, 0o600);
    }
}
