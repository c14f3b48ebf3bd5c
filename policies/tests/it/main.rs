//! The pure rules, case by case: one integration-test binary (a module per rule family), with
//! real encoded fixtures under `tests/fixtures/` and planted rule bugs the tables must catch.

mod common;

mod babe;
mod equivocation;
mod grandpa;
mod heartbeat_beefy;
mod verdict;
