//! `exclave audit verify` and `exclave audit show`.

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use exclave_audit::{self as audit, show::Filter, VerifyOptions};
use std::{io::Write, path::PathBuf};

/// Audit signing logs without trusting the signer.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Verify logs: chain, checkpoints, signatures, equivocations across signers. Exits 1 on any finding.
    Verify(VerifyArgs),
    /// Show records, filtered: a table, or JSON lines with --json.
    Show(Box<ShowArgs>),
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Log files or directories (rotated files included), of one or many signers.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// A trusted audit public key (hex), optionally for one signer: `SIGNER=HEX`. Repeatable.
    /// Without it, the `<log>.audit-pub` files beside each log are trusted.
    #[arg(long = "audit-key")]
    audit_keys: Vec<String>,
    /// The newest file is still being written: records after its last checkpoint are a note.
    #[arg(long, conflicts_with = "sealed")]
    live: bool,
    /// Require each log to end with a stop checkpoint (the signer was stopped cleanly).
    #[arg(long)]
    sealed: bool,
    /// Logs may start after seq 1 (older files removed by retention).
    #[arg(long)]
    partial: bool,
    /// Threads for hashing and signature checks (0 = all cores).
    #[arg(long, default_value_t = 0)]
    jobs: usize,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
    /// No progress on stderr.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Log files or directories.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Public key (hex).
    #[arg(long)]
    key: Option<String>,
    /// Key type: babe, gran, imon, beef, audi.
    #[arg(long)]
    key_type: Option<String>,
    /// Duty kind: babe_seal, grandpa_vote, heartbeat, beefy_vote, vrf, unclaimed.
    #[arg(long)]
    duty: Option<String>,
    /// BABE slots `A..B` (or one slot); implies --duty babe_seal unless --duty vrf.
    #[arg(long, value_parser = parse_range)]
    slot: Option<(u64, u64)>,
    /// GRANDPA rounds `A..B`; implies --duty grandpa_vote.
    #[arg(long, value_parser = parse_range)]
    round: Option<(u64, u64)>,
    /// I'm-online sessions `A..B`; implies --duty heartbeat.
    #[arg(long, value_parser = parse_range)]
    session: Option<(u64, u64)>,
    /// BEEFY blocks `A..B`; implies --duty beefy_vote.
    #[arg(long, value_parser = parse_range)]
    block: Option<(u64, u64)>,
    /// GRANDPA or BEEFY set id.
    #[arg(long)]
    set_id: Option<u64>,
    /// From this time: unix milliseconds or `YYYY-MM-DDTHH:MM:SSZ`.
    #[arg(long, value_parser = parse_time)]
    since: Option<u64>,
    /// Until this time (inclusive).
    #[arg(long, value_parser = parse_time)]
    until: Option<u64>,
    /// Client identity.
    #[arg(long)]
    client: Option<String>,
    /// Outcome: signed, same-data, refused, error.
    #[arg(long)]
    outcome: Option<String>,
    /// Include checkpoint lines.
    #[arg(long)]
    checkpoints: bool,
    /// JSON lines (the log's own lines) instead of a table.
    #[arg(long)]
    json: bool,
}

/// Run an audit command; returns the process exit code.
pub fn run(cmd: AuditCommand) -> anyhow::Result<i32> {
    match cmd {
        AuditCommand::Verify(a) => verify(a),
        AuditCommand::Show(a) => show(*a),
    }
}

fn verify(a: VerifyArgs) -> anyhow::Result<i32> {
    let audit_keys = a
        .audit_keys
        .iter()
        .map(|k| match k.split_once('=') {
            Some((signer, key)) => (Some(signer.to_string()), key.to_string()),
            None => (None, k.clone()),
        })
        .collect();
    let opts =
        VerifyOptions { inputs: a.paths, audit_keys, live: a.live, sealed: a.sealed, partial: a.partial, jobs: a.jobs, progress: !a.quiet };
    let report = audit::verify(&opts)?;
    let mut out = std::io::stdout().lock();
    if a.json {
        serde_json::to_writer_pretty(&mut out, &report).context("writing the report")?;
        writeln!(out)?;
    } else {
        report.print_human(&mut out)?;
    }
    Ok(if report.ok { 0 } else { 1 })
}

fn show(a: ShowArgs) -> anyhow::Result<i32> {
    let implied = [(a.slot, "babe_seal"), (a.round, "grandpa_vote"), (a.session, "heartbeat"), (a.block, "beefy_vote")];
    let given: Vec<_> = implied.iter().filter(|(r, _)| r.is_some()).collect();
    if given.len() > 1 {
        bail!("give at most one of --slot, --round, --session, --block");
    }
    let coordinate = given.first().and_then(|(r, _)| *r);
    let duty = a.duty.or_else(|| given.first().map(|(_, d)| d.to_string()));
    let time_ms = (a.since.is_some() || a.until.is_some()).then(|| (a.since.unwrap_or(0), a.until.unwrap_or(u64::MAX)));
    let filter = Filter {
        public: a.key,
        key_type: a.key_type,
        duty,
        coordinate,
        set_id: a.set_id,
        time_ms,
        client: a.client,
        outcome: a.outcome,
        checkpoints: a.checkpoints,
    };
    let n = audit::show::show(&a.paths, &filter, a.json, &mut std::io::stdout().lock())?;
    if !a.json {
        eprintln!("{n} record(s)");
    }
    Ok(0)
}

fn parse_range(s: &str) -> Result<(u64, u64), String> {
    let num = |x: &str| x.trim().parse::<u64>().map_err(|e| format!("{x:?}: {e}"));
    match s.split_once("..") {
        Some((a, b)) => {
            let a = if a.is_empty() { 0 } else { num(a)? };
            let b = if b.is_empty() { u64::MAX } else { num(b.trim_start_matches('='))? };
            if a > b {
                Err(format!("empty range {s}"))
            } else {
                Ok((a, b))
            }
        }
        None => num(s).map(|n| (n, n)),
    }
}

/// Unix milliseconds, or a UTC time `YYYY-MM-DDTHH:MM:SS[.mmm]Z`.
pub fn parse_time(s: &str) -> Result<u64, String> {
    if let Ok(ms) = s.parse::<u64>() {
        return Ok(ms);
    }
    let bad = || format!("{s:?} is neither unix milliseconds nor YYYY-MM-DDTHH:MM:SSZ");
    let body = s.strip_suffix('Z').ok_or_else(bad)?;
    let (date, time) = body.split_once('T').ok_or_else(bad)?;
    let n = |x: &str| x.parse::<i64>().map_err(|_| bad());
    let d: Vec<&str> = date.split('-').collect();
    let (time, frac) = time.split_once('.').unwrap_or((time, "0"));
    let t: Vec<&str> = time.split(':').collect();
    if d.len() != 3 || t.len() != 3 {
        return Err(bad());
    }
    let days = days_from_civil(n(d[0])?, n(d[1])?, n(d[2])?);
    let secs = days * 86_400 + n(t[0])? * 3600 + n(t[1])? * 60 + n(t[2])?;
    let ms = format!("{frac:0<3}")[..3].parse::<i64>().map_err(|_| bad())?;
    u64::try_from(secs * 1000 + ms).map_err(|_| bad())
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_ranges() {
        assert_eq!(parse_time("1700000000123"), Ok(1_700_000_000_123));
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(parse_time("2023-11-14T22:13:20Z"), Ok(1_700_000_000_000));
        assert_eq!(parse_time("2024-02-29T00:00:01.5Z"), Ok(1_709_164_801_500));
        assert!(parse_time("yesterday").is_err());
        assert_eq!(parse_range("5..10"), Ok((5, 10)));
        assert_eq!(parse_range("7"), Ok((7, 7)));
        assert_eq!(parse_range("..3"), Ok((0, 3)));
        assert!(parse_range("9..2").is_err());
    }
}
