//! # exclave-audit
//!
//! Auditing signing logs without trusting the signer: `exclave audit verify` and `audit show`.
//!
//! [`verify()`] reads one or many signers' logs (files or directories, rotated files included)
//! and checks, for each signer: the hash chain and sequence across files, every checkpoint's
//! audit-key signature and record count, that the tail is covered by a checkpoint; for each
//! record: that the message rebuilds from the recorded pre-image (the same decoders the signer
//! uses) and that the signature verifies against the public key. Across all logs it reports two
//! signatures for one duty with different payloads as an equivocation, with the matching
//! Substrate equivocation proof (SCALE, checked by the runtime's own checker). [`show`] filters
//! records for people. The log format and threat model are in docs/audit.md.
//!
//! This crate is for security teams and is built and reviewed on its own: it depends on the
//! signing-log format (`exclave-signing-log`), the pure rules (`exclave-policies`), the wire
//! types (`exclave-protocol` without its JSON-RPC feature) and Substrate's primitives, and on no
//! server, RPC framework, TLS stack or claim store of ours: a verifier is not built from the
//! daemon it is meant to distrust. (`cargo tree -p exclave-audit` shows tokio and hyper only
//! under `sp-trie`, which Substrate's consensus primitives pull in with `std`.)
//!
//! Not for: fixing logs, or proving that a signature is *absent* from a log whose host (and
//! audit key) is compromised: see the threat model.

pub mod equivocation;
pub mod files;
pub mod report;
pub mod show;
pub mod sigcheck;
pub mod verify;

pub use report::{Finding, FindingKind, Report};
pub use verify::{verify, VerifyOptions};

/// Why an audit could not run (findings are not errors: they are in the [`Report`]).
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// A file or directory could not be read.
    #[error("{path}: {source}")]
    Io {
        /// Where.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Nothing to audit.
    #[error("no signing log found in {0}")]
    NoLogs(String),
    /// A bad argument.
    #[error("{0}")]
    Usage(String),
}

pub(crate) fn io_err(path: &std::path::Path) -> impl Fn(std::io::Error) -> AuditError + '_ {
    move |source| AuditError::Io { path: path.display().to_string(), source }
}
