//! The `exclave` program end to end: one integration-test binary (on two cores every test
//! binary re-links the whole sp-* stack), a module per subject. `common` starts the real
//! binary in dev mode, connects node-side clients and builds real duty payloads.

mod common;

mod ambiguity;
mod audit;
mod authorities;
mod bad_input;
mod beefy_hook;
mod chaos;
mod cli;
mod clocks;
mod demo;
mod disk_faults;
mod e2e;
mod failover;
mod interchange;
mod keystore_conformance;
mod lease;
mod partitions;
mod permissions;
mod polkadot_keys;
mod power_loss;
mod race;
mod shared_store;
mod store_binding;
mod transport;
