//! `exclave audit show`: the records of one or many logs, filtered, as a table or JSON lines.
//! It reads; it does not verify (that is `audit verify`).

use super::{files::collect, io_err, AuditError};
use exclave_policies::Duty;
use exclave_signing_log::LogLine;
use std::{
    io::{BufRead, BufReader, Write},
    path::PathBuf,
};

/// Which records to show. Every filter that is set must match.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Public key (hex, `0x` optional).
    pub public: Option<String>,
    /// Key type (`babe`, `gran`, …).
    pub key_type: Option<String>,
    /// Duty kind (`babe_seal`, `grandpa_vote`, `heartbeat`, `beefy_vote`) or `vrf` / `unclaimed`.
    pub duty: Option<String>,
    /// Inclusive range of the duty's main coordinate: slot, round, session or block.
    pub coordinate: Option<(u64, u64)>,
    /// GRANDPA / BEEFY set id.
    pub set_id: Option<u64>,
    /// Inclusive time range, unix ms.
    pub time_ms: Option<(u64, u64)>,
    /// Client identity.
    pub client: Option<String>,
    /// Outcome: `signed`, `same-data`, `refused`, `error`.
    pub outcome: Option<String>,
    /// Include checkpoint lines.
    pub checkpoints: bool,
}

/// The duty kind name a record is filed under.
fn duty_name(line: &LogLine) -> &'static str {
    match (&line.duty, line.method.as_str()) {
        (Some(d), _) => d.kind().name(),
        (None, "vrfSign") => "vrf",
        _ => "unclaimed",
    }
}

/// The main coordinate and the set id of a duty.
fn coordinates(line: &LogLine) -> (Option<u64>, Option<u64>) {
    match line.duty {
        Some(Duty::BabeSeal { slot, .. }) => (Some(slot), None),
        Some(Duty::GrandpaVote { set_id, round, .. }) => (Some(round), Some(set_id)),
        Some(Duty::Heartbeat { session_index }) => (Some(u64::from(session_index)), None),
        Some(Duty::BeefyVote { set_id, block_number }) => (Some(u64::from(block_number)), Some(set_id)),
        None => (line.preimage.as_ref().and_then(|p| p.get("slot")).and_then(serde_json::Value::as_u64), None),
    }
}

impl Filter {
    /// Whether `line` passes.
    pub fn matches(&self, line: &LogLine) -> bool {
        if line.checkpoint.is_some() {
            return self.checkpoints;
        }
        let norm = |s: &str| s.trim_start_matches("0x").to_lowercase();
        let in_range = |v: Option<u64>, r: Option<(u64, u64)>| r.is_none_or(|(a, b)| v.is_some_and(|v| a <= v && v <= b));
        let (coord, set_id) = coordinates(line);
        self.public.as_deref().is_none_or(|p| norm(p) == norm(&line.public))
            && self.key_type.as_deref().is_none_or(|k| k == line.key_type)
            && self.duty.as_deref().is_none_or(|d| d == duty_name(line))
            && in_range(coord, self.coordinate)
            && self.set_id.is_none_or(|s| set_id == Some(s))
            && in_range(Some(line.time_ms), self.time_ms)
            && self.client.as_deref().is_none_or(|c| c == line.client)
            && self.outcome.as_deref().is_none_or(|o| o == line.outcome())
    }
}

/// Print the matching lines of every log under `inputs`: a table, or the raw JSON lines.
/// Returns how many matched.
pub fn show(inputs: &[PathBuf], filter: &Filter, json: bool, out: &mut impl Write) -> Result<u64, AuditError> {
    let (sets, _) = collect(inputs)?;
    let w = |e: std::io::Error| AuditError::Io { path: "stdout".into(), source: e };
    if !json {
        writeln!(
            out,
            "{:<13} {:<12} {:>8} {:<14} {:<9} {:<5} {:<18} {:<34} {:<10} detail",
            "time_ms", "signer", "seq", "client", "method", "key", "public", "duty", "outcome"
        )
        .map_err(w)?;
    }
    let mut n = 0;
    for path in sets.iter().flat_map(|s| &s.files) {
        let reader = BufReader::new(std::fs::File::open(path).map_err(io_err(path))?);
        for raw in reader.split(b'\n') {
            let raw = raw.map_err(io_err(path))?;
            let Ok(line) = LogLine::parse(&raw) else { continue };
            if !filter.matches(&line) {
                continue;
            }
            n += 1;
            if json {
                out.write_all(&raw).and_then(|()| out.write_all(b"\n")).map_err(w)?;
            } else {
                row(out, &line).map_err(w)?;
            }
        }
    }
    Ok(n)
}

fn row(out: &mut impl Write, l: &LogLine) -> std::io::Result<()> {
    if let Some(cp) = &l.checkpoint {
        return writeln!(
            out,
            "{:<13} {:<12} {:>8} checkpoint ({:?}, {} records, key {})",
            cp.time_ms, cp.signer, l.seq, cp.reason, cp.records, cp.audit_key
        );
    }
    let public = if l.public.len() > 16 { format!("{}…", &l.public[..16]) } else { l.public.clone() };
    let duty = l.duty.map(|d| d.to_string()).unwrap_or_else(|| duty_name(l).into());
    let detail = l
        .reason
        .clone()
        .unwrap_or_else(|| l.payload_hash.as_deref().map(|h| format!("payload 0x{}", &h[..h.len().min(16)])).unwrap_or_default());
    writeln!(
        out,
        "{:<13} {:<12} {:>8} {:<14} {:<9} {:<5} {:<18} {:<34} {:<10} {detail}",
        l.time_ms,
        l.signer,
        l.seq,
        l.client,
        l.method,
        l.key_type,
        public,
        duty,
        l.outcome()
    )
}
