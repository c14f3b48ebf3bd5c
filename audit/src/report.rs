//! What `audit verify` found: findings, equivocations and a summary; printed for people or as JSON.

use super::equivocation::Equivocation;
use serde::Serialize;
use std::collections::BTreeMap;

/// The kinds of findings. Any finding makes `exclave audit verify` exit non-zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingKind {
    /// A line's `prev` is not the hash of the line before it (altered, removed, inserted or
    /// reordered lines).
    BrokenLink,
    /// A sequence number is not the previous one plus one.
    SequenceGap,
    /// A line that is not a valid record or checkpoint.
    BadLine,
    /// The file ends inside a line.
    TruncatedLine,
    /// A record or checkpoint names another signer than the log's.
    ForeignSigner,
    /// A checkpoint's signature does not verify.
    BadCheckpoint,
    /// A checkpoint signed by a key that is not trusted for this signer.
    UntrustedAuditKey,
    /// A checkpoint's record count disagrees with the chain.
    RecordCount,
    /// Records after the last checkpoint (a cut tail, or a signer still running / crashed).
    UnattestedTail,
    /// The log does not start at the first record (earlier files missing).
    MissingHead,
    /// A released signature that does not verify, or whose message does not rebuild.
    BadSignature,
    /// No trusted audit key for a signer.
    NoAuditKey,
}

/// One finding, naming where it is.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// What.
    pub kind: FindingKind,
    /// The log's signer.
    pub signer: String,
    /// The file.
    pub file: String,
    /// 1-based line in the file (0 when about the whole log).
    pub line: u64,
    /// The sequence number, when the line has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// A sentence for people.
    pub message: String,
}

/// One signer's log.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogSummary {
    /// The signer.
    pub signer: String,
    /// Files, in chain order.
    pub files: Vec<String>,
    /// Records (not checkpoints).
    pub records: u64,
    /// Checkpoints.
    pub checkpoints: u64,
    /// The last valid checkpoint's sequence number.
    pub last_checkpoint_seq: Option<u64>,
    /// The first and last sequence numbers.
    pub seq_range: Option<(u64, u64)>,
    /// Audit keys seen in its checkpoints.
    pub audit_keys: Vec<String>,
}

/// Counts across every log.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Records.
    pub records: u64,
    /// Released signatures (signed + same-data) by `keyType/duty`.
    pub signatures: BTreeMap<String, u64>,
    /// Records by decision.
    pub decisions: BTreeMap<String, u64>,
    /// Refusals by reason class (the text before the first ':' or '(').
    pub refusals: BTreeMap<String, u64>,
    /// Records by client.
    pub clients: BTreeMap<String, u64>,
    /// Earliest and latest record time (unix ms).
    pub time_range_ms: Option<(u64, u64)>,
}

/// The whole result.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// True when there are no findings and no equivocations.
    pub ok: bool,
    /// Per-signer logs.
    pub logs: Vec<LogSummary>,
    /// Integrity and signature findings, in file order.
    pub findings: Vec<Finding>,
    /// Conflicting signatures for one duty.
    pub equivocations: Vec<Equivocation>,
    /// Things worth knowing that are not findings (skipped files, crash artefacts).
    pub notes: Vec<String>,
    /// Counts.
    pub summary: Summary,
}

impl Report {
    /// Print for people.
    pub fn print_human(&self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        let s = &self.summary;
        writeln!(out, "{} signer log(s), {} records", self.logs.len(), s.records)?;
        for l in &self.logs {
            writeln!(
                out,
                "  {:<20} {:>10} records {:>7} checkpoints  seq {:?}  files {}",
                l.signer,
                l.records,
                l.checkpoints,
                l.seq_range,
                l.files.len()
            )?;
        }
        if let Some((a, b)) = s.time_range_ms {
            writeln!(out, "time: {a} .. {b} (unix ms)")?;
        }
        table(out, "signatures (keyType/duty)", &s.signatures)?;
        table(out, "decisions", &s.decisions)?;
        table(out, "refusals", &s.refusals)?;
        table(out, "clients", &s.clients)?;
        for n in &self.notes {
            writeln!(out, "note: {n}")?;
        }
        for f in &self.findings {
            let seq = f.seq.map(|s| format!(" seq {s}")).unwrap_or_default();
            writeln!(out, "FINDING {:?} [{}] {}:{}{seq}: {}", f.kind, f.signer, f.file, f.line, f.message)?;
        }
        for e in &self.equivocations {
            e.print_human(out)?;
        }
        let verdict = if self.ok {
            "OK: no findings, no equivocations".to_string()
        } else {
            format!("FAILED: {} finding(s), {} equivocation(s)", self.findings.len(), self.equivocations.len())
        };
        writeln!(out, "{verdict}")
    }
}

fn table(out: &mut impl std::io::Write, title: &str, rows: &BTreeMap<String, u64>) -> std::io::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    writeln!(out, "{title}:")?;
    for (k, v) in rows {
        writeln!(out, "  {k:<40} {v:>10}")?;
    }
    Ok(())
}
