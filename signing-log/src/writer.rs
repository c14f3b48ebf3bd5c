//! The chain writer: encodes records as chained lines, writes checkpoints, rotates files.
//! Synchronous and single-owner: the log's writer thread owns one (benchmarks use it directly).

use crate::{
    checkpoint::{AuditKey, CheckpointReason},
    line::line_hash,
    LogLine, LogOptions,
};
use exclave_durable::sync_dir;
use std::{
    fs::{File, OpenOptions},
    io::{Read, Seek, SeekFrom, Write},
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
    time::Instant,
};

/// Where the chain stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tail {
    /// The last sequence number used (0 for an empty chain).
    pub seq: u64,
    /// blake2_256 of the last line (32 zero bytes for an empty chain).
    pub prev: [u8; 32],
    /// Records (not checkpoints) in the chain so far.
    pub records: u64,
}

/// Owns the active log file and the chain state.
pub struct ChainWriter {
    file: File,
    path: PathBuf,
    tail: Tail,
    /// The first sequence number in the active file (names the file when it is rotated).
    file_first_seq: u64,
    /// Bytes of the active file known durable (every write up to here was fdatasync'd).
    file_bytes: u64,
    /// A write or fdatasync failed: the file may hold bytes past `file_bytes` whose durability
    /// is unknown. They are cut off before anything else is written.
    poisoned: bool,
    unattested: u64,
    last_checkpoint: Instant,
    key: AuditKey,
    options: LogOptions,
}

/// The name a rotated file gets: `<log>.<first seq, 20 digits>`.
pub fn rotated_name(log: &Path, first_seq: u64) -> PathBuf {
    let mut name = log.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{first_seq:020}"));
    log.with_file_name(name)
}

/// Rotated files of `log`, oldest first.
pub fn rotated_files(log: &Path) -> std::io::Result<Vec<PathBuf>> {
    let dir = log.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let stem = format!("{}.", log.file_name().unwrap_or_default().to_string_lossy());
    let mut out: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)?
        .filter_map(|e| {
            let e = e.ok()?;
            let name = e.file_name().to_string_lossy().into_owned();
            let n = name.strip_prefix(&stem)?;
            (n.len() == 20).then(|| n.parse().ok()).flatten().map(|n: u64| (n, e.path()))
        })
        .collect();
    out.sort();
    Ok(out.into_iter().map(|(_, p)| p).collect())
}

impl ChainWriter {
    /// Open (or create, 0600) the active file, continue the chain (from the newest rotated
    /// file when the active one is empty) and write a `start` checkpoint.
    pub fn open(path: &Path, key: AuditKey, options: LogOptions) -> std::io::Result<Self> {
        let existed = path.exists();
        let mut file = OpenOptions::new().create(true).read(true).append(true).mode(0o600).open(path)?;
        if !existed {
            // The new file's name must be durable before any record in it counts as written.
            sync_dir(path)?;
        }
        let file_bytes = file.seek(SeekFrom::End(0))?;
        let (tail, file_first_seq) = if file_bytes > 0 {
            // Records before this file count when it holds no checkpoint yet (the first lines
            // after a rotation, then a crash): they are the newest rotated file's.
            let before = || match rotated_files(path)?.last() {
                Some(prev) => Ok(read_tail(&mut OpenOptions::new().read(true).append(true).open(prev)?, || Ok(0))?.records),
                None => Ok(0),
            };
            let tail = read_tail(&mut file, before)?;
            (tail, first_seq(path)?.unwrap_or(tail.seq + 1))
        } else {
            let tail = match rotated_files(path)?.last() {
                Some(prev) => read_tail(&mut OpenOptions::new().read(true).append(true).open(prev)?, || Ok(0))?,
                None => Tail { seq: 0, prev: [0; 32], records: 0 },
            };
            (tail, tail.seq + 1)
        };
        let mut w = Self {
            file,
            path: path.to_path_buf(),
            tail,
            file_first_seq,
            file_bytes,
            poisoned: false,
            unattested: 0,
            last_checkpoint: Instant::now(),
            key,
            options,
        };
        w.write_and_sync(CheckpointReason::Start, &[])?;
        Ok(w)
    }

    /// The chain's tail.
    pub fn tail(&self) -> Tail {
        self.tail
    }

    /// Append records (one write, one fdatasync), then a checkpoint or a rotation when due.
    /// Each record's `seq` and `prev` are set here; a line with a checkpoint or without a
    /// decision is refused, and the chain is then left as it was.
    pub fn append(&mut self, records: &mut [&mut LogLine]) -> std::io::Result<()> {
        // Every record is checked, and every line encoded, before the chain state moves: a refused
        // batch leaves the tail as it was, so the next append still links to the file.
        if let Some(bad) = records.iter().find(|r| r.checkpoint.is_some() || r.decision.is_none()) {
            let why = if bad.checkpoint.is_some() { "a record cannot carry a checkpoint" } else { "a record needs a decision" };
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, why));
        }
        let (tail, unattested) = (self.tail, self.unattested);
        match self.encode_records(records) {
            Ok(mut buf) => {
                if self.unattested >= self.options.checkpoint_every {
                    self.encode_checkpoint(&mut buf, CheckpointReason::Periodic)?;
                }
                self.write_buf(&buf, (tail, unattested))?;
            }
            Err(e) => {
                (self.tail, self.unattested) = (tail, unattested);
                return Err(e);
            }
        }
        if self.file_bytes >= self.options.rotate_bytes {
            self.rotate()?;
        }
        Ok(())
    }

    fn encode_records(&mut self, records: &mut [&mut LogLine]) -> std::io::Result<Vec<u8>> {
        let mut buf = Vec::with_capacity(records.len() * 512);
        for record in records.iter_mut() {
            self.tail.seq += 1;
            record.seq = self.tail.seq;
            record.prev = hex::encode(self.tail.prev);
            self.push_line(&mut buf, &record.encode().map_err(std::io::Error::other)?);
            self.tail.records += 1;
            self.unattested += 1;
        }
        Ok(buf)
    }

    /// Write a checkpoint if records are unattested and `checkpoint_interval` has passed.
    /// Also where a failed write is cut off once the disk allows it, with no record waiting.
    pub fn tick(&mut self) -> std::io::Result<()> {
        self.cut_unsynced()?;
        if self.unattested > 0 && self.last_checkpoint.elapsed() >= self.options.checkpoint_interval {
            self.write_and_sync(CheckpointReason::Periodic, &[])?;
        }
        Ok(())
    }

    /// After a failed write: cut off what it left and write a checkpoint, to learn whether the
    /// disk takes writes again (a signer that is not asked to sign still recovers).
    pub fn probe(&mut self) -> std::io::Result<()> {
        self.write_and_sync(CheckpointReason::Periodic, &[])
    }

    /// Write a `stop` checkpoint (clean shutdown).
    pub fn seal(&mut self) -> std::io::Result<()> {
        self.write_and_sync(CheckpointReason::Stop, &[])
    }

    fn write_and_sync(&mut self, reason: CheckpointReason, prefix: &[u8]) -> std::io::Result<()> {
        let before = (self.tail, self.unattested);
        let mut buf = prefix.to_vec();
        self.encode_checkpoint(&mut buf, reason)?;
        self.write_buf(&buf, before)
    }

    fn encode_checkpoint(&mut self, buf: &mut Vec<u8>, reason: CheckpointReason) -> std::io::Result<()> {
        self.tail.seq += 1;
        let cp = self.key.checkpoint(&self.options.signer_id, self.tail.seq, &self.tail.prev, crate::now_ms(), reason, self.tail.records);
        let line = LogLine { seq: self.tail.seq, prev: hex::encode(self.tail.prev), checkpoint: Some(cp), ..LogLine::default() };
        self.push_line(buf, &line.encode().map_err(std::io::Error::other)?);
        self.unattested = 0;
        self.last_checkpoint = Instant::now();
        Ok(())
    }

    fn push_line(&mut self, buf: &mut Vec<u8>, line: &[u8]) {
        self.tail.prev = line_hash(line);
        buf.extend_from_slice(line);
        buf.push(b'\n');
    }

    /// Write `buf` and fdatasync it. On failure the chain goes back to `before` (the tail and
    /// unattested count before `buf` was encoded) and the bytes are cut off the file: after a
    /// failed fdatasync a later one may report success while the data is gone ("fsyncgate"), so
    /// a batch whose sync failed is never left to count as written.
    fn write_buf(&mut self, buf: &[u8], before: (Tail, u64)) -> std::io::Result<()> {
        let result = self.cut_unsynced().and_then(|()| {
            self.poisoned = true;
            self.file.write_all(buf)?;
            self.file.sync_data()
        });
        if let Err(e) = result {
            (self.tail, self.unattested) = before;
            if let Err(cut) = self.cut_unsynced() {
                tracing::warn!(error = %cut, "signing log: cannot cut off a failed write yet; retried before the next one");
            }
            return Err(e);
        }
        self.poisoned = false;
        self.file_bytes += buf.len() as u64;
        Ok(())
    }

    /// After a failed write or sync: truncate the file to its last durable length, durably.
    fn cut_unsynced(&mut self) -> std::io::Result<()> {
        if self.poisoned {
            self.file.set_len(self.file_bytes)?;
            self.file.sync_data()?;
            self.poisoned = false;
        }
        Ok(())
    }

    /// Close the active file with a `rotate` checkpoint, rename it to its rotated name and
    /// start a new active file; the chain continues into it.
    fn rotate(&mut self) -> std::io::Result<()> {
        self.write_and_sync(CheckpointReason::Rotate, &[])?;
        let target = rotated_name(&self.path, self.file_first_seq);
        std::fs::rename(&self.path, &target)?;
        sync_dir(&self.path)?;
        self.file = OpenOptions::new().create(true).read(true).append(true).mode(0o600).open(&self.path)?;
        sync_dir(&self.path)?;
        self.file_first_seq = self.tail.seq + 1;
        self.file_bytes = 0;
        tracing::info!(rotated = %target.display(), next_seq = self.file_first_seq, "signing log rotated");
        Ok(())
    }
}

fn first_seq(path: &Path) -> std::io::Result<Option<u64>> {
    let mut first = Vec::new();
    let mut f = File::open(path)?;
    let mut chunk = [0u8; 4096];
    while !first.contains(&b'\n') {
        let n = f.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        first.extend_from_slice(&chunk[..n]);
    }
    let line = first.split(|b| *b == b'\n').next().unwrap_or_default();
    Ok(serde_json::from_slice::<serde_json::Value>(line).ok().and_then(|v| v.get("seq")?.as_u64()))
}

/// Find the last line's sequence number and hash. A torn last line (no newline, left by a
/// crash mid-write) is terminated so the next record starts on its own line; it stays in the
/// chain as written, for the verifier to flag.
/// `before`: the records of the chain before this file, asked only when the file holds no
/// checkpoint (whose count would say it).
fn read_tail(file: &mut File, before: impl FnOnce() -> std::io::Result<u64>) -> std::io::Result<Tail> {
    let len = file.seek(SeekFrom::End(0))?;
    if len == 0 {
        return Ok(Tail { seq: 0, prev: [0; 32], records: 0 });
    }
    let mut buf = Vec::new();
    let start = len.saturating_sub(1 << 20);
    file.seek(SeekFrom::Start(start))?;
    file.read_to_end(&mut buf)?;
    if buf.last() != Some(&b'\n') {
        file.write_all(b"\n")?;
        file.sync_data()?;
    } else {
        buf.pop();
    }
    if start > 0 && !buf.windows(14).any(|w| w == b"\"checkpoint\":{") {
        // No checkpoint in the last MiB: count the records of the whole file.
        buf.clear();
        file.seek(SeekFrom::Start(0))?;
        file.read_to_end(&mut buf)?;
        buf.pop();
    }
    let last = buf.rsplit(|b| *b == b'\n').next().unwrap_or_default();
    // The sequence continues from the last line that parses (a torn line has none); the
    // record count from the last checkpoint plus the records after it.
    let mut seq = None;
    let mut records_after = 0;
    let mut records = None;
    for line in buf.rsplit(|b| *b == b'\n') {
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(line) else { continue };
        if seq.is_none() {
            seq = v.get("seq").and_then(serde_json::Value::as_u64);
        }
        match v.get("checkpoint").and_then(|c| c.get("records")).and_then(serde_json::Value::as_u64) {
            Some(n) => {
                records = Some(n + records_after);
                break;
            }
            None => records_after += 1,
        }
    }
    let records = match records {
        Some(n) => n,
        None => before()? + records_after,
    };
    Ok(Tail { seq: seq.unwrap_or(0), prev: line_hash(last), records })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Decision, LogLine};

    fn record() -> LogLine {
        LogLine { time_ms: 1, signer: "s".into(), method: "sign".into(), decision: Some(Decision::Signed), ..LogLine::default() }
    }

    #[test]
    fn a_restart_after_records_in_a_fresh_rotated_file_keeps_counting_the_whole_chain() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("signing.log");
        let options = LogOptions { rotate_bytes: 1, ..LogOptions::new("s") };
        let (key, _) = AuditKey::load_or_create(&path).expect("key");
        let mut w = ChainWriter::open(&path, key, options.clone()).expect("open");
        for _ in 0..3 {
            w.append(&mut [&mut record()]).expect("append");
        }
        // Each append rotated: the active file is empty. One more record with no checkpoint
        // after it, then a crash (no stop checkpoint): the active file holds records only.
        let rotate_never = LogOptions { rotate_bytes: u64::MAX, ..options };
        drop(w);
        let (key, _) = AuditKey::load_or_create(&path).expect("key");
        let mut w = ChainWriter::open(&path, key, rotate_never.clone()).expect("reopen");
        let mut r = record();
        w.append(&mut [&mut r]).expect("append");
        let counted = w.tail().records;
        assert_eq!(counted, 4);
        drop(w);
        // The start checkpoint of the second open is in this file; cut the file back to the
        // lines after it to get a file with records and no checkpoint, as a crash right after
        // a rotation leaves it.
        let text = std::fs::read_to_string(&path).expect("read");
        let records_only: String = text.lines().filter(|l| !l.contains("\"checkpoint\"")).map(|l| format!("{l}\n")).collect();
        std::fs::write(&path, records_only).expect("rewrite");
        let (key, _) = AuditKey::load_or_create(&path).expect("key");
        let w = ChainWriter::open(&path, key, rotate_never).expect("reopen after the crash");
        assert_eq!(w.tail().records, 4, "the records of the rotated files count too");
    }

    #[test]
    fn a_refused_batch_leaves_the_chain_as_it_was() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("signing.log");
        let (key, _) = AuditKey::load_or_create(&path).expect("key");
        let mut w = ChainWriter::open(&path, key, LogOptions::new("s")).expect("open");
        w.append(&mut [&mut record()]).expect("append");
        let before = w.tail();
        let (mut good, mut undecided) = (record(), LogLine { decision: None, ..record() });
        let err = w.append(&mut [&mut good, &mut undecided]).expect_err("a record without a decision");
        assert!(err.to_string().contains("needs a decision"), "{err}");
        let mut checkpointed = LogLine { checkpoint: Some(w.key.checkpoint("s", 1, &[0; 32], 1, CheckpointReason::Start, 0)), ..record() };
        assert!(w.append(&mut [&mut checkpointed]).is_err(), "a record cannot carry a checkpoint");
        assert_eq!(w.tail(), before, "nothing of a refused batch moves the chain");
        w.append(&mut [&mut record()]).expect("append after the refusal");
        let text = std::fs::read_to_string(&path).expect("read");
        let lines: Vec<&str> = text.lines().collect();
        for pair in lines.windows(2) {
            let next = LogLine::parse(pair[1].as_bytes()).expect("line");
            let prev = LogLine::parse(pair[0].as_bytes()).expect("line");
            assert_eq!(next.seq, prev.seq + 1, "gap-free");
            assert_eq!(next.prev, hex::encode(line_hash(pair[0].as_bytes())), "linked");
        }
        assert_eq!(lines.len(), 3, "start checkpoint and two records: {text}");
    }
}
