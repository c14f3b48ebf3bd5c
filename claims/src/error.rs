//! The claim stores' error type.

use std::time::Duration;

/// Why a claim-store call did not give an answer. Every error on `claim` is *ambiguous*: the
/// claim may or may not have been recorded, so the caller must re-read before it decides.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The call did not finish within its deadline.
    #[error("claim store ({backend}): {op} did not answer within {deadline:?}")]
    Deadline {
        /// Backend name.
        backend: &'static str,
        /// The call.
        op: &'static str,
        /// The deadline.
        deadline: Duration,
    },
    /// The store cannot be reached or refused the call.
    #[error("claim store ({backend}) unavailable: {reason}")]
    Unavailable {
        /// Backend name.
        backend: &'static str,
        /// What went wrong.
        reason: String,
    },
    /// A stored record does not decode.
    #[error("claim store: the record under {key} is corrupt: {reason}")]
    Corrupt {
        /// The key, lossily printed.
        key: String,
        /// The decoder's reason.
        reason: String,
    },
    /// A value could not be encoded; nothing was written.
    #[error("claim store: cannot encode the {what}: {reason}; nothing was written")]
    Encode {
        /// What was being encoded.
        what: &'static str,
        /// The encoder's reason.
        reason: String,
    },
    /// The store could not be opened.
    #[error("claim store: cannot open {path}: {reason}")]
    Open {
        /// Where.
        path: String,
        /// Why.
        reason: String,
    },
}
