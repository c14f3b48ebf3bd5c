//! # exclave-protocol
//!
//! The versioned JSON-RPC API between Exclave's node-side keystore client
//! (`exclave-keystore-remote`) and the signer daemon: the method trait (a jsonrpsee `#[rpc]`
//! trait that generates both the server trait and the client), the serde wire types, and the
//! stable numeric error codes. `docs/api.md` documents every method with JSON examples. The
//! trait and the JSON-RPC error conversions are behind the `rpc` feature (on by default); the
//! wire types and error codes need no jsonrpsee.
//!
//! What this crate is **not**: it holds no signing rules (that is `exclave-policies`) and no
//! transport set-up (TLS lives in the signer and the client).

#[cfg(feature = "rpc")]
mod api;
mod bytes;
mod errors;
mod types;

#[cfg(feature = "rpc")]
pub use api::*;
pub use bytes::{Bytes, WireKeyType};
pub use errors::{ErrorKind, ExclaveError};
pub use types::{
    LeaseState, SignContext, SignOutcome, SignRequest, SignResponse, StatusResponse, VersionResponse, VrfRequest, VrfSignResponse,
    WireCrypto,
};

/// The protocol version this crate speaks; a signer refuses nothing on it yet, but reports it in
/// `exclave_version` so a client can tell an incompatible signer before it asks for a signature.
pub const PROTOCOL_VERSION: u32 = 3;
