//! # exclave-signer
//!
//! The Exclave signer daemon and its operator CLI (`exclave`): the mutual-TLS JSON-RPC server,
//! the keys (Substrate keystore directory format), the claim-then-sign engine, the signing log
//! and the metrics endpoints.
//!
//! What this crate is **not**: the signing rules live in `exclave-policies`, the claim stores in
//! `exclave-claims`, the wire API in `exclave-protocol`. Nothing depends on this crate; it is a
//! library only so its tests and benchmarks can start a signer in-process.

pub mod audit;
pub mod chain;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod engine;
pub mod http_status;
pub mod interchange;
pub mod keystore_dir;
pub mod lease;
pub mod metrics;
pub mod rpc;
pub mod server;
pub mod sim;
pub mod signing_log;
pub mod tls;
