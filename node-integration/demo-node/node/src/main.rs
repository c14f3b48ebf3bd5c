//! The Exclave demo node: a BABE + GRANDPA + I'm-online node whose session keys may live in
//! Exclave signers (`--remote-keystore`) instead of its own keystore.

mod chain_spec;
mod cli;
mod command;
mod service;

fn main() -> polkadot_sdk::sc_cli::Result<()> {
	command::run()
}
