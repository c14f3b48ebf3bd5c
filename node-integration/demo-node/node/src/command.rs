//! Parses the command line and runs the node or a subcommand.

use crate::{
	chain_spec,
	cli::{Cli, Subcommand},
	service,
};
use polkadot_sdk::{sc_cli, sc_service};
use sc_cli::SubstrateCli;

impl SubstrateCli for Cli {
	fn impl_name() -> String {
		"Exclave demo node".into()
	}
	fn impl_version() -> String {
		env!("CARGO_PKG_VERSION").into()
	}
	fn description() -> String {
		env!("CARGO_PKG_DESCRIPTION").into()
	}
	fn author() -> String {
		"Exclave".into()
	}
	fn support_url() -> String {
		"https://example.invalid/exclave".into()
	}
	fn copyright_start_year() -> i32 {
		2026
	}
	fn load_spec(&self, id: &str) -> Result<Box<dyn sc_service::ChainSpec>, String> {
		Ok(Box::new(match id {
			"dev" => chain_spec::dev()?,
			"" | "local" => chain_spec::local()?,
			"local4" => chain_spec::local4()?,
			path => chain_spec::ChainSpec::from_json_file(path.into())?,
		}))
	}
}

/// Run the command given on the command line.
pub fn run() -> sc_cli::Result<()> {
	let cli = Cli::from_args();
	match &cli.subcommand {
		Some(Subcommand::Key(cmd)) => cmd.run(&cli),
		Some(Subcommand::ExportChainSpec(cmd)) => cmd.run(cli.load_spec(&cmd.chain)?),
		Some(Subcommand::PurgeChain(cmd)) => {
			let runner = cli.create_runner(cmd)?;
			runner.sync_run(|config| cmd.run(config.database))
		},
		None => {
			let runner = cli.create_runner(&cli.run)?;
			runner.run_node_until_exit(|config| async move {
				service::new_full(config, &cli.remote_keystore).map_err(sc_cli::Error::Service)
			})
		},
	}
}
