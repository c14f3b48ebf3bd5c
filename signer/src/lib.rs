//! # exclave-signer
//!
//! The Exclave signer daemon's serving path: the mutual-TLS JSON-RPC server, the keys
//! (Substrate keystore directory format), the claim-then-sign engine, the active-node lease
//! keeper, the signing-log writer task and the metrics endpoints.
//!
//! What this crate is **not**: the signing rules live in `exclave-policies`, the claim stores
//! and the interchange format in `exclave-claims`, the wire API in `exclave-protocol`, the
//! signing-log format in `exclave-signing-log`, the verifier in `exclave-audit`, the demo and
//! simulator in `exclave-sim`, the command line in `exclave`. It does not depend on the node-side
//! client (`exclave-keystore-remote`). It is a library so that the CLI, the demo and tests can
//! start a signer in-process.

pub mod at_rest;
pub mod chain;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod engine;
pub mod grants;
pub mod hardening;
pub mod http_status;
pub mod journal;
pub mod keystore_dir;
pub mod lease;
pub mod metrics;
pub mod refusal_budget;
pub mod rpc;
pub mod server;
pub mod signing_log;
pub mod tls;
