//! `exclave audit verify` end to end: the input is written as a signing log file (beside the
//! audit public key of the signer that wrote the seed logs, `fuzz/seeds/audit_verify/`) and
//! `exclave_audit::verify` reads it: file discovery, the hash chain and sequence, checkpoint
//! signatures and record counts, every released signature re-checked from its pre-image, and
//! the equivocation index, whose conflicts are re-read from the file and turned into Substrate
//! equivocation proofs. The file lives in one temporary directory for the whole run.
//!
//! Asserts: no panic; the only error is "not a signing log" (the first line is not a record or
//! checkpoint); a report names exactly one log; and a clean report (`ok`) agrees with a naive
//! reference reading of the file: every line parses, the first is seq 1 with a zero `prev`,
//! each next line has seq + 1 and `prev` = blake2_256 of the line before, and the last line is
//! a checkpoint.
#![no_main]

use exclave_audit::{verify, AuditError, VerifyOptions};
use exclave_signing_log::{line_hash, LogLine};
use libfuzzer_sys::fuzz_target;
use std::{path::PathBuf, sync::OnceLock};

/// The audit public key of the dev signer that wrote the seed logs.
const SEED_AUDIT_KEY: &str = "6e07415291f18eef4d28e54c84df3ecfd1245b50808c6ebd78715528fafbd050";

fn log_path() -> &'static PathBuf {
    static DIR: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("signing.log.audit-pub"), format!("{SEED_AUDIT_KEY}\n")).expect("audit-pub");
        let log = dir.path().join("signing.log");
        (dir, log)
    })
    .1
}

/// The naive reading of a clean log.
fn reference_ok(data: &[u8]) -> Result<(), String> {
    let body = data.strip_suffix(b"\n").unwrap_or(data);
    let mut prev: Option<(&[u8], LogLine)> = None;
    for bytes in body.split(|b| *b == b'\n') {
        let line = LogLine::parse(bytes)?;
        match &prev {
            None if line.seq != 1 || line.prev != hex::encode([0u8; 32]) => return Err("does not start at seq 1".into()),
            Some((pb, pl)) if line.seq != pl.seq + 1 || line.prev != hex::encode(line_hash(pb)) => {
                return Err(format!("seq {} does not follow seq {}", line.seq, pl.seq))
            }
            _ => {}
        }
        prev = Some((bytes, line));
    }
    match prev {
        Some((_, l)) if l.checkpoint.is_some() => Ok(()),
        _ => Err("does not end with a checkpoint".into()),
    }
}

fuzz_target!(|data: &[u8]| {
    let log = log_path();
    std::fs::write(log, data).expect("write the log");
    let opts = VerifyOptions { inputs: vec![log.clone()], jobs: 1, ..Default::default() };
    match verify(&opts) {
        Ok(report) => {
            assert_eq!(report.logs.len(), 1, "one file, one signer");
            if report.ok {
                if let Err(e) = reference_ok(data) {
                    panic!("verify reports a clean log that {e}");
                }
            }
        }
        Err(AuditError::Usage(m)) if m.ends_with("is not a signing log (its first line is not a record)") => {}
        Err(AuditError::NoLogs(_)) if data.is_empty() => {}
        Err(e) => panic!("verify failed: {e}"),
    }
});
