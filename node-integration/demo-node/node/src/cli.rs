//! Command-line: the standard `sc-cli` node options plus `--remote-keystore`.

use exclave_node_integration::RemoteKeystoreParams;
use polkadot_sdk::sc_cli;

/// The demo node's command line.
#[derive(Debug, clap::Parser)]
pub struct Cli {
	#[command(subcommand)]
	pub subcommand: Option<Subcommand>,

	#[command(flatten)]
	pub run: sc_cli::RunCmd,

	// Exclave: `--remote-keystore <URL>` and its TLS files.
	#[command(flatten)]
	pub remote_keystore: RemoteKeystoreParams,
}

/// Utility subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Subcommand {
	/// Key management (e.g. `key generate-node-key`).
	#[command(subcommand)]
	Key(sc_cli::KeySubcommand),
	/// Print a chain spec (`--chain dev|local|local4`) as JSON.
	ExportChainSpec(sc_cli::ExportChainSpecCmd),
	/// Remove the whole chain database.
	PurgeChain(sc_cli::PurgeChainCmd),
}
