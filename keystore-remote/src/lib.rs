//! # exclave-keystore-remote
//!
//! [`RemoteKeystore`]: an implementation of `sp_keystore::Keystore` that holds no keys. Every
//! call goes over mutual-TLS JSON-RPC to one of a list of Exclave signers, which claim each
//! duty before signing. A node passes it, as its `KeystorePtr`, to BABE, GRANDPA, BEEFY,
//! authority discovery, the offchain workers and the `author_*` RPCs.
//!
//! The keystore trait is synchronous and is called from inside the node's tokio runtime, so the
//! RPC clients live on a runtime of their own (one thread, owned by this value); a call hands
//! its request to that runtime and waits on a channel, with a deadline. It never calls
//! `Handle::block_on`.
//!
//! Context the signer needs and the trait cannot carry is supplied through this type's own
//! API: [`RemoteKeystore::note_seal_header`] (the BABE pre-seal header, looked up by its hash
//! when the seal is signed), [`RemoteKeystore::note_beefy_commitment`] and
//! [`RemoteKeystore::note_vrf_candidates`] (the `(randomness, slot, epoch)` a BABE VRF
//! transcript was built from, matched by the transcript's fingerprint).
//!
//! What this crate is **not**: it enforces nothing. Safety lives in the signer; this client only
//! forwards, checks returned VRF proofs, and maps refusals into what the node expects.

mod cache;
mod client;
mod error;
mod held;
mod keystore;
mod lease;

pub use client::{tls_client_config, RemoteKeystoreConfig, TlsFiles};
pub use error::RemoteError;
pub use exclave_policies::VrfContext;
pub use keystore::{vrf_fingerprint, RemoteKeystore, VrfResolver};
