//! Integration tests of `exclave-keystore-remote` against scripted fake signers (plain HTTP on
//! loopback, no TLS).
//!
//! - `error_mapping`: docs/api.md's Errors table, "what the keystore client returns", per
//!   (code, key type, method); `has_keys` and `keys` on errors.
//! - `grandpa`: GRANDPA votes are retried identically while no signer could sign.
//! - `failover`: which signer `Clients::call` tries, in which order, and when it moves on.
//! - `config`: what `RemoteKeystore::new` refuses.
//! - `held_keys`: `has_keys` over 1,000 voters asks the signer only about keys it lists.

mod config;
mod error_mapping;
mod failover;
mod fake_signer;
mod grandpa;
mod held_keys;

use exclave_protocol::WireCrypto;
use fake_signer::signature_of;
use sp_keystore::Error;

/// What a `Keystore` signing method returned, by category.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Got {
    /// `Ok(Some(signature))`, the signature's bytes.
    Signed(Vec<u8>),
    /// `Ok(None)`.
    NoSig,
    /// `Err(ValidationError)`.
    Invalid,
    /// `Err(Unavailable)`.
    Unavailable,
    /// `Err(Other)`.
    Other,
    /// `Err(KeyNotSupported(key type))`.
    NotSupported([u8; 4]),
}

impl Got {
    pub(crate) fn of<T>(result: Result<Option<T>, Error>, bytes: impl FnOnce(T) -> Vec<u8>) -> Got {
        match result {
            Ok(Some(sig)) => Got::Signed(bytes(sig)),
            Ok(None) => Got::NoSig,
            Err(e) => Got::error(&e),
        }
    }

    pub(crate) fn error(e: &Error) -> Got {
        match e {
            Error::ValidationError(_) => Got::Invalid,
            Error::Unavailable => Got::Unavailable,
            Error::Other(_) => Got::Other,
            Error::KeyNotSupported(kt) => Got::NotSupported(kt.0),
        }
    }
}

/// What a table row expects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Want {
    /// `Ok(Some(_))` with the signature of the fake signer of this name.
    Sig(&'static str),
    /// `Ok(None)`.
    NoSig,
    /// `Err(ValidationError)`.
    Invalid,
    /// `Err(Unavailable)`.
    Unavailable,
    /// `Err(Other)`.
    Other,
}

impl Want {
    /// Whether `got` is this, for a signature of `crypto` (`None`: any signature bytes).
    pub(crate) fn matches(self, got: &Got, crypto: Option<WireCrypto>) -> bool {
        match (self, got) {
            (Want::Sig(signer), Got::Signed(bytes)) => crypto.is_none_or(|c| *bytes == signature_of(signer, c)),
            (Want::NoSig, Got::NoSig)
            | (Want::Invalid, Got::Invalid)
            | (Want::Unavailable, Got::Unavailable)
            | (Want::Other, Got::Other) => true,
            _ => false,
        }
    }
}

/// Panic listing every failed row, if any.
pub(crate) fn assert_rows(what: &str, failures: &[String]) {
    assert!(failures.is_empty(), "{} of the {what} rows failed:\n  {}", failures.len(), failures.join("\n  "));
}
