//! Stable error codes. Codes are outside JSON-RPC's reserved range (-32768..-32000); the
//! standard codes (-32700 parse error, -32600 invalid request, -32601 method not found, -32602
//! invalid params) still come from jsonrpsee itself for malformed requests.

#[cfg(feature = "rpc")]
use jsonrpsee::types::ErrorObjectOwned;
use serde::{Deserialize, Serialize};

/// The kind of an Exclave error, with its stable numeric code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// 1001: the duty is already claimed with a different payload.
    RefusedConflict,
    /// 1002: a signing rule refused the request (opaque bytes, hash mismatch, slot bounds, watermark, wrong chain).
    RefusedPolicy,
    /// 1003: the signer holds no such key.
    UnknownKey,
    /// 1004: the claim store did not give a usable answer in time; nothing was signed.
    StoreUnavailable,
    /// 1005: the caller is not allowed to do this.
    Unauthorised,
    /// 1006: the request is malformed.
    BadRequest,
    /// 1007: the signer failed internally; nothing was signed.
    Internal,
    /// 1008: another node of this validator holds the active-node lease; this one is standby.
    NotActive,
    /// 1009: the request names a claim store other than the signer's; nothing was signed.
    StoreMismatch,
}

impl ErrorKind {
    /// Every kind, in code order.
    pub const ALL: [ErrorKind; 9] = [
        ErrorKind::RefusedConflict,
        ErrorKind::RefusedPolicy,
        ErrorKind::UnknownKey,
        ErrorKind::StoreUnavailable,
        ErrorKind::Unauthorised,
        ErrorKind::BadRequest,
        ErrorKind::Internal,
        ErrorKind::NotActive,
        ErrorKind::StoreMismatch,
    ];

    /// The stable numeric code, written out per kind: a code is part of the API and never
    /// moves when a kind is added.
    pub fn code(self) -> i32 {
        match self {
            ErrorKind::RefusedConflict => 1001,
            ErrorKind::RefusedPolicy => 1002,
            ErrorKind::UnknownKey => 1003,
            ErrorKind::StoreUnavailable => 1004,
            ErrorKind::Unauthorised => 1005,
            ErrorKind::BadRequest => 1006,
            ErrorKind::Internal => 1007,
            ErrorKind::NotActive => 1008,
            ErrorKind::StoreMismatch => 1009,
        }
    }

    /// The kind for a code, if it is one of ours.
    pub fn from_code(code: i32) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.code() == code)
    }

    /// The kebab-case name (also a metrics label).
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::RefusedConflict => "refused-conflict",
            ErrorKind::RefusedPolicy => "refused-policy",
            ErrorKind::UnknownKey => "unknown-key",
            ErrorKind::StoreUnavailable => "store-unavailable",
            ErrorKind::Unauthorised => "unauthorised",
            ErrorKind::BadRequest => "bad-request",
            ErrorKind::Internal => "internal",
            ErrorKind::NotActive => "not-active",
            ErrorKind::StoreMismatch => "store-mismatch",
        }
    }
}

/// An Exclave error: a kind, a human message and optional structured data.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{} ({}): {message}", kind.name(), kind.code())]
pub struct ExclaveError {
    /// The kind.
    pub kind: ErrorKind,
    /// What went wrong, naming the problem.
    pub message: String,
    /// Structured detail (for a conflict: the existing claim).
    pub data: Option<serde_json::Value>,
}

impl ExclaveError {
    /// An error without data.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into(), data: None }
    }

    /// Recover an Exclave error from a JSON-RPC error object, if it carries one of our codes.
    #[cfg(feature = "rpc")]
    pub fn from_object(obj: &ErrorObjectOwned) -> Option<Self> {
        let kind = ErrorKind::from_code(obj.code())?;
        let data = obj.data().and_then(|d| serde_json::from_str(d.get()).ok());
        Some(Self { kind, message: obj.message().to_string(), data })
    }
}

#[cfg(feature = "rpc")]
impl From<ExclaveError> for ErrorObjectOwned {
    fn from(e: ExclaveError) -> Self {
        ErrorObjectOwned::owned(e.kind.code(), e.message, e.data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(feature = "rpc")]
    fn codes_are_stable_and_round_trip() {
        let codes: Vec<i32> = ErrorKind::ALL.iter().map(|k| k.code()).collect();
        assert_eq!(codes, vec![1001, 1002, 1003, 1004, 1005, 1006, 1007, 1008, 1009]);
        for kind in ErrorKind::ALL {
            let err = ExclaveError { kind, message: "m".into(), data: Some(serde_json::json!({"a": 1})) };
            let obj: ErrorObjectOwned = err.clone().into();
            assert_eq!(ExclaveError::from_object(&obj), Some(err));
        }
        assert_eq!(ErrorKind::from_code(-32602), None);
    }
}
