//! `exclave`: the signer daemon and operator CLI.

mod cli;

use anyhow::Context;
use clap::Parser;

fn main() -> anyhow::Result<()> {
    let args = cli::Cli::parse();
    cli::init_tracing(args.log_json, args.default_log_filter());
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the tokio runtime")?;
    let code = runtime.block_on(cli::run(args))?;
    drop(runtime);
    std::process::exit(code)
}
