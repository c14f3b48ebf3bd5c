//! The etcd backend's errors, and how they map into [`StoreError`].

use crate::StoreError;
use std::time::Duration;

const BACKEND: &str = "etcd";

/// Why an etcd call gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    /// The configuration lists no endpoint.
    #[error("no etcd endpoint configured")]
    NoEndpoints,
    /// A configured value is unusable.
    #[error("invalid etcd configuration: {0}")]
    Config(&'static str),
    /// The client for an endpoint could not be built (bad address).
    #[error("etcd endpoint {endpoint}: {source}")]
    Endpoint {
        /// The endpoint as configured.
        endpoint: String,
        /// The client's reason.
        source: etcd_client::Error,
    },
    /// Building the client for an endpoint did not finish in time.
    #[error("etcd endpoint {endpoint}: building the client took more than {after:?}")]
    ConnectTimeout {
        /// The endpoint as configured.
        endpoint: String,
        /// The limit.
        after: Duration,
    },
    /// A request failed (transport error, or an error status from the member).
    #[error("etcd endpoint {endpoint}: {source}")]
    Rpc {
        /// The member asked.
        endpoint: String,
        /// The client's error.
        source: etcd_client::Error,
    },
    /// The member refused the configured user's password.
    #[error("etcd endpoint {endpoint} refused user {user:?}: {reason} (check claims.etcd_user and the password file)")]
    Authentication {
        /// The member asked.
        endpoint: String,
        /// The etcd user.
        user: String,
        /// etcd's message.
        reason: String,
    },
    /// A request did not answer within the per-attempt timeout.
    #[error("etcd endpoint {endpoint} did not answer within {after:?}")]
    AttemptTimeout {
        /// The member asked.
        endpoint: String,
        /// The per-attempt timeout.
        after: Duration,
    },
    /// Every attempt of a call failed and the call's retry budget is spent.
    #[error("etcd: no member answered within {budget:?} ({attempts} attempts); last: {last}")]
    Exhausted {
        /// The retry budget.
        budget: Duration,
        /// How many attempts were made.
        attempts: u32,
        /// The last attempt's error.
        last: Box<EtcdError>,
    },
    /// The claim transaction's compare failed, yet it returned no record.
    #[error("etcd: the claim of {key} lost its compare but the key holds no record")]
    MissingRecord {
        /// The key, lossily printed.
        key: String,
    },
    /// A stored watermark does not decode.
    #[error("etcd: the watermark under {key} is corrupt: {reason}")]
    BadWatermark {
        /// The key, lossily printed.
        key: String,
        /// The decoder's reason.
        reason: String,
    },
    /// Raising a watermark lost its compare-and-swap too many times in a row.
    #[error("etcd: raising the watermark {key} lost {attempts} compare-and-swaps in a row")]
    Contended {
        /// The key, lossily printed.
        key: String,
        /// How many attempts were made.
        attempts: u32,
    },
}

impl EtcdError {
    /// Whether another attempt (on this or another member) may succeed. Errors that say the
    /// request itself is wrong (bad argument, permission, full database) are final.
    pub(crate) fn is_transient(&self) -> bool {
        match self {
            Self::AttemptTimeout { .. } => true,
            Self::Rpc { source, .. } => match source {
                etcd_client::Error::TransportError(_) | etcd_client::Error::IoError(_) => true,
                etcd_client::Error::GRpcStatus(status) => matches!(
                    status.code(),
                    tonic::Code::Unavailable
                        | tonic::Code::DeadlineExceeded
                        | tonic::Code::Unknown
                        | tonic::Code::Cancelled
                        | tonic::Code::Aborted
                ),
                _ => false,
            },
            _ => false,
        }
    }

    /// Map into the trait's error, naming the call `op`.
    pub fn into_store(self, op: &'static str) -> StoreError {
        match self {
            Self::Exhausted { budget, ref last, .. } if matches!(**last, Self::AttemptTimeout { .. }) => {
                StoreError::Deadline { backend: BACKEND, op, deadline: budget }
            }
            Self::AttemptTimeout { after, .. } => StoreError::Deadline { backend: BACKEND, op, deadline: after },
            Self::MissingRecord { key } => StoreError::Corrupt { key, reason: "claim compare failed, no record".into() },
            Self::BadWatermark { key, reason } => StoreError::Corrupt { key, reason },
            other => StoreError::Unavailable { backend: BACKEND, reason: other.to_string() },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: tonic::Code) -> EtcdError {
        EtcdError::Rpc { endpoint: "m0".into(), source: etcd_client::Error::GRpcStatus(tonic::Status::new(code, "x")) }
    }

    fn timeout() -> EtcdError {
        EtcdError::AttemptTimeout { endpoint: "m0".into(), after: Duration::from_millis(500) }
    }

    #[test]
    fn transient_errors_are_retried_and_request_errors_are_final() {
        let cases = [
            (status(tonic::Code::Unavailable), true), // no leader, leader changed, connect refused
            (status(tonic::Code::DeadlineExceeded), true),
            (timeout(), true),
            (status(tonic::Code::InvalidArgument), false),
            (status(tonic::Code::PermissionDenied), false),
            (status(tonic::Code::ResourceExhausted), false), // database space exceeded
            (EtcdError::MissingRecord { key: "k".into() }, false),
            (EtcdError::Authentication { endpoint: "m0".into(), user: "u".into(), reason: "wrong password".into() }, false),
        ];
        for (error, transient) in cases {
            assert_eq!(error.is_transient(), transient, "{error}");
        }
    }

    #[test]
    fn maps_into_the_trait_categories() {
        let exhausted = |last| EtcdError::Exhausted { budget: Duration::from_secs(2), attempts: 3, last: Box::new(last) };
        assert!(matches!(exhausted(timeout()).into_store("claim"), StoreError::Deadline { op: "claim", .. }));
        assert!(matches!(exhausted(status(tonic::Code::Unavailable)).into_store("claim"), StoreError::Unavailable { backend: "etcd", .. }));
        assert!(matches!(EtcdError::MissingRecord { key: "k".into() }.into_store("claim"), StoreError::Corrupt { .. }));
        let bad = EtcdError::BadWatermark { key: "w".into(), reason: "r".into() };
        assert!(matches!(bad.into_store("watermark"), StoreError::Corrupt { .. }));
    }
}
