//! The client's error type, and its mapping into `sp_keystore::Error`.

use exclave_protocol::{ErrorKind, ExclaveError};

/// Why a remote keystore call failed.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// No signer answered (connection refused, TLS failure, timeout) on any configured URL.
    #[error("no Exclave signer answered: {0}")]
    Unreachable(String),
    /// A signer answered with an Exclave error.
    #[error("signer: {0}")]
    Signer(ExclaveError),
    /// A signer answered with something that is not the protocol (or a non-Exclave error).
    #[error("signer sent an invalid answer: {0}")]
    Protocol(String),
    /// The client could not be configured.
    #[error("remote keystore configuration: {0}")]
    Config(String),
}

impl RemoteError {
    /// Whether the signer refused (conflict, policy, unknown key, standby node) rather than failed.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            RemoteError::Signer(ExclaveError {
                kind: ErrorKind::RefusedConflict | ErrorKind::RefusedPolicy | ErrorKind::UnknownKey | ErrorKind::NotActive,
                ..
            })
        )
    }

    /// Whether no signer signed and a repeat may succeed: none answered, or the one that did
    /// could not reach its claim store (it signed nothing).
    pub fn is_transient(&self) -> bool {
        matches!(self, RemoteError::Unreachable(_) | RemoteError::Signer(ExclaveError { kind: ErrorKind::StoreUnavailable, .. }))
    }

    /// The `sp_keystore::Error` category for this error.
    pub fn into_keystore_error(self) -> sp_keystore::Error {
        use sp_keystore::Error as E;
        match self {
            RemoteError::Unreachable(m) => {
                tracing::warn!(error = %m, "remote keystore unreachable");
                E::Unavailable
            }
            RemoteError::Signer(e) => match e.kind {
                // Nothing was signed: the store did not answer, or it is not the agreed one.
                ErrorKind::StoreUnavailable | ErrorKind::StoreMismatch => E::Unavailable,
                ErrorKind::RefusedConflict | ErrorKind::RefusedPolicy | ErrorKind::BadRequest | ErrorKind::NotActive => {
                    E::ValidationError(e.to_string())
                }
                ErrorKind::UnknownKey => E::KeyNotSupported(sp_core::crypto::KeyTypeId(*b"????")),
                ErrorKind::Unauthorised | ErrorKind::Internal => E::Other(e.to_string()),
            },
            other => E::Other(other.to_string()),
        }
    }
}
