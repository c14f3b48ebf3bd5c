//! `exclave audit verify`: integrity, signatures and equivocations over one or many logs.
//!
//! Each file is read in chunks of lines; a chunk's lines are hashed, parsed and their
//! signatures checked on `jobs` threads, then linked in order on one thread.

use super::{
    equivocation::{Index, Loc},
    files::{collect, LogSet},
    io_err,
    report::{Finding, FindingKind, LogSummary, Report, Summary},
    sigcheck, AuditError,
};
use exclave_signing_log::{
    checkpoint::{verify_checkpoint, CheckpointReason},
    line_hash, unhex32, LogLine,
};
use std::{
    collections::BTreeSet,
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

const CHUNK: usize = 8192;

/// What to verify and how strictly.
#[derive(Clone, Debug, Default)]
pub struct VerifyOptions {
    /// Log files and directories.
    pub inputs: Vec<PathBuf>,
    /// Trusted audit keys: `(Some(signer), hex)` for one signer, `(None, hex)` for any. When
    /// empty for a signer, the `*.audit-pub` files beside its log are used.
    pub audit_keys: Vec<(Option<String>, String)>,
    /// The newest file may still be written: records after its last checkpoint are a note.
    pub live: bool,
    /// Require every log to end with a `stop` checkpoint (the signer was shut down cleanly).
    pub sealed: bool,
    /// Logs may start after the first record (older files removed by retention).
    pub partial: bool,
    /// Threads for hashing, parsing and signature checks (0 = all cores).
    pub jobs: usize,
    /// Print progress to stderr every 2 s.
    pub progress: bool,
}

struct Processed {
    hash: [u8; 32],
    parsed: Result<LogLine, String>,
    /// For records that released a signature: whether it verifies.
    sig: Option<Result<(), String>>,
    /// For checkpoints: whether the signature verifies.
    checkpoint_ok: bool,
    terminated: bool,
    offset: u64,
}

fn process(raw: &[u8], offset: u64) -> (Processed, Option<ed25519_zebra::batch::Item>) {
    let terminated = raw.last() == Some(&b'\n');
    let bytes = if terminated { &raw[..raw.len() - 1] } else { raw };
    let hash = line_hash(bytes);
    let parsed = LogLine::parse(bytes);
    let (mut sig, mut checkpoint_ok, mut deferred) = (None, false, None);
    if let Ok(line) = &parsed {
        if let Some(cp) = &line.checkpoint {
            checkpoint_ok = unhex32(&line.prev).is_ok_and(|prev| verify_checkpoint(cp, line.seq, &prev));
        } else if line.released() {
            match sigcheck::check_deferred(line) {
                sigcheck::Pending::Done(r) => sig = Some(r),
                sigcheck::Pending::Ed25519(item) => deferred = Some(item),
            }
        }
    }
    (Processed { hash, parsed, sig, checkpoint_ok, terminated, offset }, deferred)
}

/// Process lines on this thread; ed25519 signatures are verified in one batch at the end.
fn process_part(lines: &[(Vec<u8>, u64)]) -> Vec<Processed> {
    let mut out = Vec::with_capacity(lines.len());
    let (mut items, mut at) = (Vec::new(), Vec::new());
    for (l, o) in lines {
        let (p, item) = process(l, *o);
        if let Some(item) = item {
            items.push(item);
            at.push(out.len());
        }
        out.push(p);
    }
    for (i, r) in at.into_iter().zip(sigcheck::verify_batch(items)) {
        out[i].sig = Some(r);
    }
    out
}

fn process_chunk(lines: &[(Vec<u8>, u64)], jobs: usize) -> Vec<Processed> {
    if jobs <= 1 || lines.len() < 64 {
        return process_part(lines);
    }
    let per = lines.len().div_ceil(jobs);
    std::thread::scope(|s| {
        let handles: Vec<_> = lines.chunks(per).map(|part| s.spawn(move || process_part(part))).collect();
        // A worker that panicked takes the verifier down with it: dropping its lines would
        // report a shorter log as intact.
        handles.into_iter().flat_map(|h| h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))).collect()
    })
}

/// Read chunks of lines from `reader`, process each on `jobs` threads and send it on, until
/// the end of the file or until the receiver is gone.
fn read_chunks(
    mut reader: BufReader<std::fs::File>,
    path: &Path,
    jobs: usize,
    tx: &std::sync::mpsc::SyncSender<Result<(Vec<Processed>, u64), AuditError>>,
) {
    let mut offset = 0u64;
    loop {
        let mut lines = Vec::with_capacity(CHUNK);
        while lines.len() < CHUNK {
            let mut buf = Vec::with_capacity(600);
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    lines.push((buf, offset));
                    offset += n as u64;
                }
                Err(e) => {
                    let _ = tx.send(Err(io_err(path)(e)));
                    return;
                }
            }
        }
        if lines.is_empty() {
            return;
        }
        let bytes = lines.iter().map(|(l, _)| l.len() as u64).sum();
        if tx.send(Ok((process_chunk(&lines, jobs), bytes))).is_err() {
            return;
        }
    }
}

/// Run the audit.
pub fn verify(opts: &VerifyOptions) -> Result<Report, AuditError> {
    let (sets, skipped) = collect(&opts.inputs)?;
    let mut report = Report::default();
    for s in skipped {
        report.notes.push(format!("{} skipped: {}", s.path.display(), s.reason));
    }
    let jobs = if opts.jobs == 0 { std::thread::available_parallelism().map_or(1, |n| n.get()) } else { opts.jobs };
    let mut progress = Progress::new(opts.progress, &sets);
    let mut index = Index::default();
    for set in &sets {
        let mut chain = Chain::new(set, trusted_keys(opts, set), opts);
        for (i, file) in set.files.iter().enumerate() {
            let file_idx = u32::try_from(index.files.len()).unwrap_or(u32::MAX);
            index.files.push(file.clone());
            chain.file(file, file_idx, i + 1 == set.files.len(), jobs, &mut report, &mut index, &mut progress)?;
        }
        chain.finish(&mut report);
    }
    report.equivocations = index.into_equivocations()?;
    report.ok = report.findings.is_empty() && report.equivocations.is_empty();
    Ok(report)
}

fn trusted_keys(opts: &VerifyOptions, set: &LogSet) -> BTreeSet<String> {
    let norm = |k: &str| k.trim().trim_start_matches("0x").to_lowercase();
    let given: BTreeSet<String> =
        opts.audit_keys.iter().filter(|(s, _)| s.as_deref().is_none_or(|s| s == set.signer)).map(|(_, k)| norm(k)).collect();
    if given.is_empty() {
        set.beside_keys.iter().map(|k| norm(k)).collect()
    } else {
        given
    }
}

struct Progress {
    on: bool,
    total: u64,
    done: u64,
    last: Instant,
}

impl Progress {
    fn new(on: bool, sets: &[LogSet]) -> Self {
        let total = sets.iter().flat_map(|s| &s.files).filter_map(|f| std::fs::metadata(f).ok()).map(|m| m.len()).sum();
        Self { on, total, done: 0, last: Instant::now() }
    }

    fn advance(&mut self, bytes: u64, signer: &str, records: u64) {
        self.done += bytes;
        if self.on && self.last.elapsed() >= Duration::from_secs(2) {
            self.last = Instant::now();
            eprintln!("audit: {signer}: {records} records, {} of {} MiB", self.done >> 20, self.total >> 20);
        }
    }
}

/// The state of one signer's chain while its files are read.
struct Chain<'a> {
    set: &'a LogSet,
    trusted: BTreeSet<String>,
    opts: &'a VerifyOptions,
    prev_hash: Option<[u8; 32]>,
    last_seq: Option<u64>,
    summary: LogSummary,
    keys_seen: BTreeSet<String>,
    unattested: u64,
    torn: Option<(String, u64)>,
    last_was_stop: bool,
    file: String,
    line: u64,
}

impl<'a> Chain<'a> {
    fn new(set: &'a LogSet, trusted: BTreeSet<String>, opts: &'a VerifyOptions) -> Self {
        let summary = LogSummary {
            signer: set.signer.clone(),
            files: set.files.iter().map(|f| f.display().to_string()).collect(),
            ..Default::default()
        };
        Self {
            set,
            trusted,
            opts,
            prev_hash: None,
            last_seq: None,
            summary,
            keys_seen: BTreeSet::new(),
            unattested: 0,
            torn: None,
            last_was_stop: false,
            file: String::new(),
            line: 0,
        }
    }

    fn finding(&self, report: &mut Report, kind: FindingKind, seq: Option<u64>, message: String) {
        report.findings.push(Finding { kind, signer: self.set.signer.clone(), file: self.file.clone(), line: self.line, seq, message });
    }

    /// Read `path` in chunks on a reader thread that also hashes, parses and checks signatures
    /// (on `jobs` threads), while this thread links the previous chunk.
    #[allow(clippy::too_many_arguments)]
    fn file(
        &mut self,
        path: &Path,
        file_idx: u32,
        last_file: bool,
        jobs: usize,
        report: &mut Report,
        index: &mut Index,
        progress: &mut Progress,
    ) -> Result<(), AuditError> {
        self.file = path.display().to_string();
        self.line = 0;
        let reader = BufReader::with_capacity(1 << 20, std::fs::File::open(path).map_err(io_err(path))?);
        let (tx, rx) = std::sync::mpsc::sync_channel::<Result<(Vec<Processed>, u64), AuditError>>(2);
        std::thread::scope(|s| {
            s.spawn(move || read_chunks(reader, path, jobs, &tx));
            for chunk in rx {
                let (processed, bytes) = chunk?;
                for p in processed {
                    self.line += 1;
                    self.apply(p, file_idx, last_file, report, index);
                }
                progress.advance(bytes, &self.set.signer, self.summary.records);
            }
            Ok(())
        })
    }

    fn apply(&mut self, p: Processed, file_idx: u32, last_file: bool, report: &mut Report, index: &mut Index) {
        let line = match p.parsed {
            Ok(line) => line,
            Err(e) => return self.unparsed(p.hash, p.terminated, last_file, e, report),
        };
        self.check_link(&line, report);
        self.prev_hash = Some(p.hash);
        self.last_seq = Some(line.seq);
        let first = *self.summary.seq_range.get_or_insert((line.seq, line.seq));
        self.summary.seq_range = Some((first.0, line.seq));
        if line.signer() != self.set.signer {
            let msg =
                format!("names signer {:?} in the log of signer {:?}: spliced from another signer's log", line.signer(), self.set.signer);
            self.finding(report, FindingKind::ForeignSigner, Some(line.seq), msg);
        }
        self.last_was_stop = false;
        if line.checkpoint.is_some() {
            self.checkpoint(&line, p.checkpoint_ok, report);
        } else {
            self.record(&line, p.sig, report);
            index.insert(&line, Loc { file: file_idx, offset: p.offset, line: self.line });
        }
    }

    fn unparsed(&mut self, hash: [u8; 32], terminated: bool, last_file: bool, e: String, report: &mut Report) {
        if !terminated && last_file {
            let msg = format!("the file ends inside a line (the tail was cut, or the signer crashed mid-write): {e}");
            self.finding(report, FindingKind::TruncatedLine, None, msg);
            return;
        }
        if let Some((file, line)) = self.torn.take() {
            let msg = format!("is not a valid line ({e}); line {line} of {file} before it was not either");
            self.finding(report, FindingKind::BadLine, None, msg);
        }
        // Judged by the line after it: only a `start` checkpoint linking to it makes it a crash artefact.
        self.torn = Some((self.file.clone(), self.line));
        self.prev_hash = Some(hash);
    }

    fn check_link(&mut self, line: &LogLine, report: &mut Report) {
        let torn = self.torn.take();
        if let Some((file, n)) = &torn {
            let start = line.checkpoint.as_ref().is_some_and(|c| c.reason == CheckpointReason::Start);
            if start {
                report.notes.push(format!(
                    "{file}:{n}: a torn line (the signer crashed mid-write; no reply was sent for it), followed by a restart"
                ));
            } else {
                self.finding(
                    report,
                    FindingKind::BadLine,
                    Some(line.seq),
                    format!("line {n} of {file} before this one is not a valid record or checkpoint (altered bytes?)"),
                );
            }
        }
        let expected_prev = match self.prev_hash {
            Some(h) => h,
            None => {
                if line.seq != 1 || line.prev != hex::encode([0u8; 32]) {
                    let msg = format!("the log starts at seq {}, not at seq 1: earlier records or files are missing", line.seq);
                    if self.opts.partial {
                        report.notes.push(format!("{} ({}): {msg} (--partial)", self.file, self.set.signer));
                    } else {
                        self.finding(report, FindingKind::MissingHead, Some(line.seq), msg);
                    }
                }
                return;
            }
        };
        if line.prev != hex::encode(expected_prev) {
            let before = self.last_seq.map_or("the previous line".into(), |s| format!("seq {s}"));
            let msg = format!("prev does not match the hash of the line before it ({before}): that line was altered, or lines were removed, inserted or reordered here");
            self.finding(report, FindingKind::BrokenLink, Some(line.seq), msg);
        }
        if let Some(last) = self.last_seq {
            if line.seq != last + 1 {
                let msg = format!("expected seq {}, found {} (records removed, reordered or inserted)", last + 1, line.seq);
                self.finding(report, FindingKind::SequenceGap, Some(line.seq), msg);
            }
        }
    }

    fn checkpoint(&mut self, line: &LogLine, signature_ok: bool, report: &mut Report) {
        let Some(cp) = &line.checkpoint else { return };
        self.summary.checkpoints += 1;
        self.keys_seen.insert(cp.audit_key.clone());
        let mut ok = true;
        if !signature_ok {
            self.finding(
                report,
                FindingKind::BadCheckpoint,
                Some(line.seq),
                "the checkpoint's audit-key signature does not verify (altered checkpoint or chain)".into(),
            );
            ok = false;
        }
        if !self.trusted.is_empty() && !self.trusted.contains(&cp.audit_key.to_lowercase()) {
            let msg = format!("signed by audit key {} which is not trusted for this signer", cp.audit_key);
            self.finding(report, FindingKind::UntrustedAuditKey, Some(line.seq), msg);
            ok = false;
        }
        if cp.records != self.summary.records && !(self.opts.partial && self.summary.seq_range.is_some_and(|(a, _)| a > 1)) {
            let msg = format!("the checkpoint counts {} records, the chain up to it holds {}", cp.records, self.summary.records);
            self.finding(report, FindingKind::RecordCount, Some(line.seq), msg);
            ok = false;
        }
        if ok {
            self.unattested = 0;
            self.summary.last_checkpoint_seq = Some(line.seq);
            self.last_was_stop = cp.reason == CheckpointReason::Stop;
        }
    }

    fn record(&mut self, line: &LogLine, sig: Option<Result<(), String>>, report: &mut Report) {
        self.summary.records += 1;
        self.unattested += 1;
        count(&mut report.summary, line);
        if let Some(Err(e)) = sig {
            self.finding(report, FindingKind::BadSignature, Some(line.seq), e);
        }
    }

    fn finish(mut self, report: &mut Report) {
        if self.trusted.is_empty() {
            let msg = "no trusted audit key: pass --audit-key, or keep <log>.audit-pub beside the log".to_string();
            self.line = 0;
            self.finding(report, FindingKind::NoAuditKey, None, msg);
        }
        if let Some((file, n)) = self.torn.take() {
            report.findings.push(Finding {
                kind: FindingKind::BadLine,
                signer: self.set.signer.clone(),
                file,
                line: n,
                seq: None,
                message: "the last line is not a valid record or checkpoint".into(),
            });
        }
        if self.unattested > 0 {
            let after = self.summary.last_checkpoint_seq.map_or("the start".into(), |s| format!("the last valid checkpoint (seq {s})"));
            let msg = format!("{} record(s) after {after} are not covered by a signed checkpoint: the tail was cut, or the signer is still running or stopped uncleanly", self.unattested);
            if self.opts.live {
                report.notes.push(format!("{} ({}): {msg} (--live)", self.file, self.set.signer));
            } else {
                self.finding(report, FindingKind::UnattestedTail, self.last_seq, msg);
            }
        } else if self.opts.sealed && !self.last_was_stop {
            self.finding(
                report,
                FindingKind::UnattestedTail,
                self.last_seq,
                "the log does not end with a stop checkpoint (--sealed): its tail may have been cut after a checkpoint".into(),
            );
        }
        self.summary.audit_keys = self.keys_seen.into_iter().collect();
        report.logs.push(self.summary);
    }
}

fn count(s: &mut Summary, line: &LogLine) {
    s.records += 1;
    *s.decisions.entry(line.outcome().into()).or_default() += 1;
    *s.clients.entry(line.client.clone()).or_default() += 1;
    s.time_range_ms = Some(s.time_range_ms.map_or((line.time_ms, line.time_ms), |(a, b)| (a.min(line.time_ms), b.max(line.time_ms))));
    if line.released() {
        let what = match (&line.duty, line.method.as_str()) {
            (Some(d), _) => d.kind().name(),
            (None, "vrfSign") => "vrf",
            _ => "unclaimed",
        };
        *s.signatures.entry(format!("{}/{what}", line.key_type)).or_default() += 1;
    }
    if line.outcome() == "refused" {
        *s.refusals.entry(refusal_class(line.reason.as_deref().unwrap_or_default()).into()).or_default() += 1;
    }
}

/// A stable class for a refusal reason.
pub fn refusal_class(reason: &str) -> &'static str {
    const CLASSES: [(&str, &str); 6] = [
        ("already claimed", "conflict"),
        ("low watermark", "below-watermark"),
        ("wall-clock slot", "slot-out-of-range"),
        ("holds no", "unknown-key"),
        ("chain", "wrong-chain"),
        ("seed", "unauthorised"),
    ];
    CLASSES.iter().find(|(needle, _)| reason.contains(needle)).map_or("policy", |(_, class)| class)
}
