//! Restoring the embedded store's newest claims from the signing log after a crash.
//!
//! In journaled mode (`exclave_claims::embedded`, module docs) a claim is made durable by the
//! signing-log record of the signature it released, not by an fsync of the store. Every record
//! that released a signature for a claimed duty (`signed` or `same-data`) names the chain, key,
//! duty, payload hash and signature, which is everything the claim binds. After a crash the
//! store names the log sequence number after which its file may lack claims; this module reads
//! the log from there and rebuilds them, for `EmbeddedStore::restore`.
//!
//! Not for: verifying the log (`exclave audit verify` does); a line that does not parse is
//! skipped here (a torn last line is the one a crash leaves), and the chain is not checked.

use exclave_policies::{ChainId, ClaimKey, ClaimRecord, KeyType};
use exclave_signing_log::{unhex, unhex32, writer::rotated_files, Decision, LogLine};
use std::{
    fs::File,
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
};

/// Why the claims could not be rebuilt: the signer does not start (they may have been released).
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// A log file could not be read.
    #[error("signing log {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The records after the store's mark are not all there.
    #[error(
        "the claim store's newest claims are in signing-log records after seq {after}, but {what}: restore the signing log's files (rotated ones included) before starting the signer"
    )]
    Missing {
        /// The store's journal mark.
        after: u64,
        /// What was found instead.
        what: String,
    },
    /// A record that released a signature does not name its claim completely.
    #[error("signing-log record seq {seq} released a signature but its claim cannot be rebuilt: {why}")]
    Record {
        /// The record's sequence number.
        seq: u64,
        /// What is missing or malformed.
        why: String,
    },
}

/// The claims of the records after `after`, and the last sequence number in the log.
pub fn claims_after(log: &Path, after: u64) -> Result<(Vec<(ClaimKey, ClaimRecord)>, u64), JournalError> {
    let files = files_from(log, after)?;
    let mut claims = Vec::new();
    let mut last = 0;
    for path in files {
        let io = |source| JournalError::Io { path: path.display().to_string(), source };
        let reader = BufReader::new(File::open(&path).map_err(io)?);
        for line in reader.split(b'\n') {
            let line = line.map_err(io)?;
            let Some(seq) = leading_seq(&line) else { continue };
            last = last.max(seq);
            if seq <= after {
                continue;
            }
            let Ok(record) = LogLine::parse(&line) else { continue };
            if let Some(claim) = claim_of(&record)? {
                claims.push(claim);
            }
        }
    }
    if last < after {
        return Err(JournalError::Missing { after, what: format!("{} ends at seq {last}", log.display()) });
    }
    Ok((claims, last))
}

/// The log's files that may hold records after `after`, oldest first.
fn files_from(log: &Path, after: u64) -> Result<Vec<PathBuf>, JournalError> {
    let io = |source| JournalError::Io { path: log.display().to_string(), source };
    let mut files: Vec<(u64, PathBuf)> = Vec::new();
    for path in rotated_files(log).map_err(io)? {
        let first = path.extension().and_then(|e| e.to_str()).and_then(|e| e.parse().ok()).unwrap_or(0);
        files.push((first, path));
    }
    if log.exists() {
        let first = first_seq(log)?.unwrap_or(u64::MAX);
        files.push((first, log.to_path_buf()));
    }
    // The newest file starting at or before the first record wanted, and every file after it.
    let start = files.iter().rposition(|(first, _)| *first <= after + 1);
    match start {
        Some(i) => Ok(files.into_iter().skip(i).map(|(_, p)| p).collect()),
        None if after == 0 => Ok(files.into_iter().map(|(_, p)| p).collect()),
        None => {
            let what = match files.first() {
                Some((first, path)) => format!("the oldest file, {}, starts at seq {first}", path.display()),
                None => format!("there is no file at {}", log.display()),
            };
            Err(JournalError::Missing { after, what })
        }
    }
}

fn first_seq(path: &Path) -> Result<Option<u64>, JournalError> {
    let io = |source| JournalError::Io { path: path.display().to_string(), source };
    let mut line = Vec::new();
    BufReader::new(File::open(path).map_err(io)?).read_until(b'\n', &mut line).map_err(io)?;
    Ok(leading_seq(&line))
}

/// `seq` of a line as the writer writes it (`{"seq":N,…`), without parsing the rest.
fn leading_seq(line: &[u8]) -> Option<u64> {
    let rest = line.strip_prefix(b"{\"seq\":")?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()
}

/// The claim a record released a signature under, if it did.
fn claim_of(r: &LogLine) -> Result<Option<(ClaimKey, ClaimRecord)>, JournalError> {
    let (Some(duty), Some(Decision::Signed | Decision::SameData)) = (r.duty, r.decision) else { return Ok(None) };
    let bad = |why: &str| JournalError::Record { seq: r.seq, why: why.into() };
    let chain = unhex32(&r.chain).map_err(|_| bad("the chain is not 32 bytes of hex"))?;
    let key_type: [u8; 4] = r.key_type.as_bytes().try_into().map_err(|_| bad("the key type is not four bytes"))?;
    let public = unhex(&r.public).map_err(|_| bad("the public key is not hex"))?;
    let payload_hash = unhex32(r.payload_hash.as_deref().unwrap_or_default()).map_err(|_| bad("no payload hash"))?;
    let signature = unhex(r.signature.as_deref().ok_or_else(|| bad("no signature"))?).map_err(|_| bad("the signature is not hex"))?;
    let key = ClaimKey { chain: ChainId(chain), key_type: KeyType(key_type), public, duty };
    let record = ClaimRecord { claimer: format!("{}/{}", r.signer, r.client), payload_hash, signature, claimed_at_ms: r.time_ms };
    Ok(Some((key, record)))
}

#[cfg(test)]
mod tests {
    use super::leading_seq;

    #[test]
    fn the_leading_seq_is_read_from_the_writers_layout_only() {
        let cases: [(&[u8], Option<u64>); 5] = [
            (b"{\"seq\":42,\"prev\":\"00\"}", Some(42)),
            (b"{\"seq\":0,", Some(0)),
            (b"{\"prev\":\"00\",\"seq\":42}", None),
            (b"{\"seq\":", None),
            (b"", None),
        ];
        for (line, want) in cases {
            assert_eq!(leading_seq(line), want, "{}", String::from_utf8_lossy(line));
        }
    }
}
