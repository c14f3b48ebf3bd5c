//! # exclave-signing-log
//!
//! The signing log's format, in one place for the signer that writes it and the verifier that
//! reads it: one JSON line per decision ([`LogLine`]), each carrying the hash of the line before
//! it, with periodic checkpoints signed by the signer's audit key ([`checkpoint`]), and the
//! synchronous chain writer ([`writer::ChainWriter`]) that appends, fdatasyncs, checkpoints and
//! rotates.
//!
//! `prev` is blake2_256 of the previous line's bytes (without its newline); the first line of a
//! new log has `prev` = 32 zero bytes. Checkpoint lines are chained like records and written at
//! start, every [`LogOptions::checkpoint_every`] records or [`LogOptions::checkpoint_interval`],
//! before a rotation and at a clean stop. Rotation renames the active file to
//! `<log>.<first seq>` and the chain continues in a new file. The format and the verifier
//! (`exclave audit verify`, crate `exclave-audit`) are described in docs/audit.md.
//!
//! What this crate is **not**: a server or a task (the signer runs the writer on a thread of
//! its own and talks to it through a channel), and not the verifier (`exclave-audit`).

pub mod checkpoint;
pub mod line;
pub mod writer;

pub use line::{line_hash, unhex, unhex32, Decision, LogLine};
use std::time::Duration;

/// How the log writes checkpoints and rotates.
#[derive(Clone, Debug)]
pub struct LogOptions {
    /// The signer id named in checkpoints.
    pub signer_id: String,
    /// A checkpoint after this many records.
    pub checkpoint_every: u64,
    /// A checkpoint at most this long after an unattested record.
    pub checkpoint_interval: Duration,
    /// Rotate the active file once it is this large.
    pub rotate_bytes: u64,
    /// Load an audit key file that group or others may read (`insecure_key_file_permissions`).
    pub allow_exposed_key: bool,
}

impl LogOptions {
    /// Defaults: a checkpoint every 1000 records or 10 s, rotation at 256 MiB.
    pub fn new(signer_id: impl Into<String>) -> Self {
        Self {
            signer_id: signer_id.into(),
            checkpoint_every: 1000,
            checkpoint_interval: Duration::from_secs(10),
            rotate_bytes: 256 << 20,
            allow_exposed_key: false,
        }
    }
}

/// Milliseconds since the Unix epoch (checkpoint times).
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}
