//! # exclave-sim
//!
//! `exclave demo` ([`demo`]) and the simulated validator nodes it and the chaos test run: real `RemoteKeystore`
//! clients over TLS, asking for real BABE pre-seal headers, GRANDPA votes and I'm-online
//! heartbeats on a (fast) wall-clock slot schedule, and a judge that checks every pair of
//! signatures any node received for one duty with Substrate's own equivocation checkers.
//!
//! This crate holds both sides, signers in-process and node-side clients (`exclave-keystore-remote`),
//! so that the signer itself never depends on its own client.
//!
//! Not a node: no networking, no block import, no fork choice. What it reproduces is what the
//! keystore sees from one: which keys are asked for, when, with which pre-images.

pub mod authorities;
pub mod demo;
pub mod judge;
pub mod node;
pub mod payloads;
