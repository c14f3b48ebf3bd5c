//! Simulated validator nodes for `exclave demo` and the chaos test: real `RemoteKeystore`
//! clients over TLS, asking for real BABE pre-seal headers, GRANDPA votes and I'm-online
//! heartbeats on a (fast) wall-clock slot schedule, and a judge that checks every pair of
//! signatures any node received for one duty with Substrate's own equivocation checkers.
//!
//! Not a node: no networking, no block import, no fork choice. What it reproduces is what the
//! keystore sees from one: which keys are asked for, when, with which pre-images.

pub mod judge;
pub mod node;
pub mod payloads;
