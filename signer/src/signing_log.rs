//! The signing log's writer task: records are appended, and fdatasync'd, before the signer
//! replies, so a signature that reached a node is always in the log. Appends are batched by a
//! writer thread (one fdatasync per batch). The format, checkpoints and rotation are
//! `exclave-signing-log`'s; the verifier is `exclave-audit` (docs/audit.md).
//!
//! Not for: deciding anything (the engine does) or hiding a failure: a failed write is an error
//! the engine turns into a withheld reply.

pub use exclave_signing_log::{checkpoint, writer, Decision, LogLine, LogOptions};

use std::{
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};
use tokio::sync::{mpsc, oneshot};
use writer::ChainWriter;

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

enum Msg {
    Append(Box<LogLine>, Reply),
    Seal(Reply),
    Tick,
}

/// A handle to the log; cheap to clone.
#[derive(Clone)]
pub struct SigningLog {
    tx: mpsc::Sender<Msg>,
    path: PathBuf,
    audit_key: String,
    /// The last write's error, until a write (or a tick's cut of the failed bytes) succeeds.
    failed: Arc<Mutex<Option<String>>>,
    /// The sequence number of the last line written and fdatasync'd.
    written: Arc<AtomicU64>,
}

impl SigningLog {
    /// Open (or create, mode 0600) the log, load or create the audit key beside it, continue
    /// the chain and write a `start` checkpoint.
    pub fn open(path: &Path, options: LogOptions) -> Result<Self, LogError> {
        let io = |source| LogError::Io { path: path.display().to_string(), source };
        let (key, created) = checkpoint::AuditKey::load_or_create_allowing(path, options.allow_exposed_key).map_err(io)?;
        let audit_key = key.public_hex();
        if created {
            tracing::info!(audit_key = %audit_key, public_file = %checkpoint::public_path(path).display(), "audit key generated: keep a copy of the public key off this host");
        }
        let interval = options.checkpoint_interval;
        let writer = ChainWriter::open(path, key, options).map_err(io)?;
        let written = Arc::new(AtomicU64::new(writer.tail().seq));
        let (tx, rx) = mpsc::channel(8192);
        let p = path.to_path_buf();
        let failed = Arc::new(Mutex::new(None));
        let seen = failed.clone();
        let seq = written.clone();
        std::thread::Builder::new().name("exclave-signing-log".into()).spawn(move || run(writer, rx, &p, &seen, &seq)).map_err(io)?;
        let weak = tx.downgrade();
        std::thread::Builder::new()
            .name("exclave-log-ticker".into())
            .spawn(move || loop {
                std::thread::sleep(interval.min(Duration::from_secs(1)));
                match weak.upgrade() {
                    Some(tx) if tx.blocking_send(Msg::Tick).is_ok() => {}
                    _ => break,
                }
            })
            .map_err(io)?;
        Ok(Self { tx, path: path.to_path_buf(), audit_key, failed, written })
    }

    /// The sequence number of the last line written and fdatasync'd, kept current: the
    /// journaled claim store's mark (every record up to it is on disk).
    pub fn written_seq(&self) -> Arc<AtomicU64> {
        self.written.clone()
    }

    /// The last write's error while the log has not written since (`/ready` reports it).
    pub fn failure(&self) -> Option<String> {
        self.failed.lock().ok().and_then(|f| f.clone())
    }

    /// The active log file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The audit public key (hex).
    pub fn audit_key(&self) -> &str {
        &self.audit_key
    }

    /// Append a record; returns once it is written and fdatasync'd.
    pub async fn append(&self, entry: LogLine) -> Result<(), LogError> {
        self.call(|reply| Msg::Append(Box::new(entry), reply)).await
    }

    /// Write a `stop` checkpoint (clean shutdown); appends after it remain possible.
    pub async fn seal(&self) -> Result<(), LogError> {
        self.call(Msg::Seal).await
    }

    async fn call(&self, msg: impl FnOnce(Reply) -> Msg) -> Result<(), LogError> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(msg(reply)).await.map_err(|_| LogError::Stopped)?;
        rx.await
            .map_err(|_| LogError::Stopped)?
            .map_err(|e| LogError::Io { path: self.path.display().to_string(), source: std::io::Error::other(e) })
    }
}

fn run(mut writer: ChainWriter, mut rx: mpsc::Receiver<Msg>, path: &Path, failed: &Mutex<Option<String>>, written: &AtomicU64) {
    let report = |e: std::io::Error| {
        tracing::error!(path = %path.display(), error = %e, "signing log write failed");
        e.to_string()
    };
    while let Some(first) = rx.blocking_recv() {
        let mut batch = Vec::new();
        let mut seals = Vec::new();
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                Msg::Append(entry, reply) => batch.push((entry, reply)),
                Msg::Seal(reply) => seals.push(reply),
                Msg::Tick => {}
            }
            if batch.len() < 4096 {
                next = rx.try_recv().ok();
            }
        }
        let mut entries: Vec<&mut LogLine> = batch.iter_mut().map(|(e, _)| e.as_mut()).collect();
        let failing = failed.lock().map(|f| f.is_some()).unwrap_or(true);
        let result = match (entries.is_empty(), failing) {
            (true, false) => writer.tick().map_err(report),
            // A tick after a failure writes a checkpoint: only a write that succeeds clears it.
            (true, true) => writer.probe().map_err(report),
            (false, _) => writer.append(&mut entries).map_err(report),
        };
        if let Ok(mut f) = failed.lock() {
            *f = result.clone().err();
        }
        written.store(writer.tail().seq, Ordering::SeqCst);
        for (_, reply) in batch {
            let _ = reply.send(result.clone());
        }
        for reply in seals {
            let _ = reply.send(writer.seal().map_err(report));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn entry(n: u64) -> LogLine {
        LogLine {
            time_ms: n + 1,
            signer: "s".into(),
            client: "c".into(),
            chain: "0x00".into(),
            method: "sign".into(),
            key_type: "gran".into(),
            public: "00".into(),
            decision: Some(Decision::Signed),
            ..LogLine::default()
        }
    }

    fn lines(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path).expect("read").lines().map(str::to_owned).collect()
    }

    fn json(line: &str) -> serde_json::Value {
        serde_json::from_str(line).expect("json")
    }

    /// Every line links to the one before it; a torn line carries no link of its own.
    fn assert_chained(lines: &[String]) {
        assert_eq!(json(&lines[0])["prev"], hex::encode([0u8; 32]));
        for w in lines.windows(2) {
            let Ok(next) = serde_json::from_str::<serde_json::Value>(&w[1]) else { continue };
            assert_eq!(next["prev"], hex::encode(sp_crypto_hashing::blake2_256(w[0].as_bytes())));
        }
    }

    fn record_seqs(lines: &[String]) -> Vec<u64> {
        lines
            .iter()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v.get("checkpoint").is_none())
            .map(|v| v["seq"].as_u64().expect("seq"))
            .collect()
    }

    #[tokio::test]
    async fn chain_continues_across_reopen_and_over_a_torn_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("signing.log");
        let log = SigningLog::open(&path, LogOptions::new("s")).expect("open");
        for n in 0..3 {
            log.append(entry(n)).await.expect("append");
        }
        log.seal().await.expect("seal");
        drop(log);
        let log = SigningLog::open(&path, LogOptions::new("s")).expect("reopen");
        log.append(entry(3)).await.expect("append");
        drop(log);
        let l = lines(&path);
        // start, 3 records, stop, start, 1 record.
        assert_eq!(l.len(), 7);
        assert_chained(&l);
        assert_eq!(record_seqs(&l), vec![2, 3, 4, 7]);
        let kinds: Vec<String> = l.iter().map(|x| json(x)["checkpoint"]["reason"].as_str().unwrap_or("-").to_string()).collect();
        assert_eq!(kinds, ["start", "-", "-", "-", "stop", "start", "-"]);
        assert_eq!(json(&l[5])["checkpoint"]["records"], 3);

        // A crash mid-write leaves a torn line: it is terminated and the chain links over it.
        std::fs::OpenOptions::new().append(true).open(&path).expect("open").write_all(b"{\"seq\":8,\"pr").expect("tear");
        let log = SigningLog::open(&path, LogOptions::new("s")).expect("reopen after tear");
        log.append(entry(5)).await.expect("append");
        drop(log);
        let l = lines(&path);
        assert_eq!(l[7], "{\"seq\":8,\"pr");
        assert_chained(&l);
        assert_eq!(json(&l[8])["seq"], 8, "the sequence continues from the last whole line");
        assert_eq!(json(&l[8])["checkpoint"]["records"], 4);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777, 0o600);
    }

    #[tokio::test]
    async fn rotation_keeps_the_chain_across_files_and_reopen_continues_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("signing.log");
        let options = LogOptions { rotate_bytes: 2000, checkpoint_every: 4, ..LogOptions::new("s") };
        let log = SigningLog::open(&path, options.clone()).expect("open");
        for n in 0..20 {
            log.append(entry(n)).await.expect("append");
        }
        drop(log);
        // The active file may be empty right after a rotation: reopening continues from the
        // newest rotated file.
        let log = SigningLog::open(&path, options).expect("reopen");
        log.append(entry(20)).await.expect("append");
        drop(log);
        let rotated = writer::rotated_files(&path).expect("list");
        assert!(rotated.len() >= 2, "expected rotations, got {rotated:?}");
        let mut all = Vec::new();
        for f in rotated.iter().chain(std::iter::once(&path)) {
            let l = lines(f);
            if l.is_empty() && f == &path {
                continue; // the last append rotated
            }
            assert!(
                json(l.last().expect("line"))["checkpoint"]["reason"] == "rotate" || f == &path,
                "a rotated file ends with a rotate checkpoint"
            );
            all.extend(l);
        }
        assert_chained(&all);
        assert_eq!(record_seqs(&all).len(), 21);
        let seqs: Vec<u64> = all.iter().map(|l| json(l)["seq"].as_u64().expect("seq")).collect();
        assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "gap-free sequence across files: {seqs:?}");
    }
}
