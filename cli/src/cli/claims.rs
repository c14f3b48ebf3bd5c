//! `exclave claims export | import | prune`.

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use exclave_claims::interchange::{self, Interchange};
use exclave_claims::{
    embedded::EmbeddedStore,
    etcd::{EtcdConfig, EtcdStore},
    tikv::TikvStore,
    ClaimStore, WithDeadline,
};
use exclave_policies::{ChainId, DutyKind, KeyType, Position};
use exclave_signer::{
    clock::now_ms,
    config::{parse_chain, Backend, Config},
    keystore_dir::KeystoreDir,
};
use std::{collections::HashMap, io::Write, path::PathBuf, time::Duration};

/// Move protection history between stores, and prune it.
#[derive(Debug, Subcommand)]
pub enum ClaimsCommand {
    /// Write every claim and watermark of the chain as an interchange file (docs/audit.md).
    Export {
        #[command(flatten)]
        store: StoreArgs,
        /// Where to write (default: standard output).
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Also export the watermarks of every key in this keystore directory.
        #[arg(long)]
        keystore: Option<PathBuf>,
    },
    /// Import an interchange file: watermarks first, then claims by compare-and-swap. Exits 1
    /// if the store already holds a different payload for an imported duty.
    Import {
        /// The interchange file.
        file: PathBuf,
        #[command(flatten)]
        store: StoreArgs,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete claims below a position per family, raising the watermark first.
    Prune {
        #[command(flatten)]
        store: StoreArgs,
        /// `FAMILY=A[,B]`: prune claims strictly below (A,B); FAMILY is babe_seal (slot),
        /// grandpa_vote (set id, round), heartbeat (session) or beefy_vote (set id, block). Repeatable.
        #[arg(long, required = true, value_parser = parse_below)]
        below: Vec<(DutyKind, Position)>,
        /// Wait this long between raising watermarks and deleting (for in-flight requests of
        /// older signers).
        #[arg(long, default_value_t = 5000)]
        grace_ms: u64,
        /// Say what would be deleted; write nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// Which store and chain.
#[derive(Debug, Args)]
pub struct StoreArgs {
    /// A signer configuration file: its `[claims]` store and its chain.
    #[arg(short, long, conflicts_with_all = ["embedded", "etcd"])]
    config: Option<PathBuf>,
    /// An embedded store file (the signer using it must be stopped).
    #[arg(long, conflicts_with = "etcd")]
    embedded: Option<PathBuf>,
    /// etcd member URLs, comma-separated.
    #[arg(long, value_delimiter = ',')]
    etcd: Vec<String>,
    /// The chain's genesis hash (`0x…`); required without --config.
    #[arg(long)]
    chain: Option<String>,
    /// Deadline for every store call, in milliseconds.
    #[arg(long, default_value_t = 5000)]
    deadline_ms: u64,
}

enum Store {
    Embedded(WithDeadline<EmbeddedStore>),
    Etcd(WithDeadline<EtcdStore>),
    Tikv(WithDeadline<TikvStore>),
}

impl Store {
    fn dyn_store(&self) -> &dyn ClaimStore {
        match self {
            Store::Embedded(s) => s,
            Store::Etcd(s) => s,
            Store::Tikv(s) => s,
        }
    }
}

/// Open an embedded store for an offline command. With the signer's signing log (`--config`),
/// claims a crash left only in the log are restored first (and the file marked closed).
async fn open_embedded(path: &std::path::Path, log: Option<&std::path::Path>) -> anyhow::Result<EmbeddedStore> {
    if let Some(log) = log {
        let written = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let journaled = exclave_signer::daemon::open_embedded(path, log, written).await.with_context(|| {
            "the embedded store is single-process: stop the signer that uses it first (importing beside running signers needs a replicated store such as etcd)"
        })?;
        journaled.flush(true).await.context("closing the restored claim store")?;
    }
    // The journaled handle's writer thread lets the file go once its last handle is dropped.
    let mut tries = 0;
    loop {
        match EmbeddedStore::open(path) {
            Err(exclave_claims::StoreError::Open { reason, .. }) if reason.contains("another process") && log.is_some() && tries < 100 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            other => {
                return other.with_context(|| {
                    "the embedded store is single-process: stop the signer that uses it first (importing beside running signers needs a replicated store such as etcd)"
                })
            }
        }
    }
}

/// The store an invocation names, before it is opened.
enum Target {
    /// The file, and with `--config`, the signing log its newest claims may be in.
    Embedded(PathBuf, Option<PathBuf>),
    Etcd(Vec<String>),
    Tikv(exclave_claims::tikv::TikvConfig),
}

impl StoreArgs {
    async fn open(&self) -> anyhow::Result<(Store, ChainId)> {
        let deadline = Duration::from_millis(self.deadline_ms.max(1));
        let (target, config_chain) = match &self.config {
            Some(path) => {
                let c = Config::load(path)?;
                let target = match c.claims.backend {
                    Backend::Embedded => Target::Embedded(c.claims.path.clone().unwrap_or_default(), Some(c.signing_log.clone())),
                    Backend::Etcd => Target::Etcd(c.claims.endpoints.clone()),
                    Backend::Tikv => Target::Tikv(exclave_signer::daemon::tikv_config(&c.claims)),
                };
                (Some(target), Some(c.chain.clone()))
            }
            None => match (&self.embedded, self.etcd.is_empty()) {
                (Some(path), _) => (Some(Target::Embedded(path.clone(), None)), None),
                (None, false) => (Some(Target::Etcd(self.etcd.clone())), None),
                (None, true) => (None, None),
            },
        };
        let chain = match (config_chain, self.chain.clone()) {
            (Some(a), Some(b)) if !a.eq_ignore_ascii_case(&b) => bail!("--chain {b} differs from the config's chain {a}"),
            (Some(c), _) | (None, Some(c)) => ChainId(parse_chain(&c)?),
            (None, None) => bail!("name the chain with --chain 0x… (or use --config)"),
        };
        let store = match target {
            Some(Target::Embedded(path, log)) => Store::Embedded(WithDeadline::new(open_embedded(&path, log.as_deref()).await?, deadline)),
            Some(Target::Etcd(endpoints)) => {
                let mut cfg = EtcdConfig::new(endpoints);
                cfg.retry_budget = deadline * 9 / 10;
                let s = WithDeadline::new(EtcdStore::connect(&cfg).await?, deadline);
                s.ping().await.context("etcd does not answer")?;
                Store::Etcd(s)
            }
            Some(Target::Tikv(mut cfg)) => {
                cfg.call_timeout = deadline * 9 / 10;
                let s = WithDeadline::new(TikvStore::new(&cfg)?, deadline);
                s.ping().await.context("tikv does not answer")?;
                Store::Tikv(s)
            }
            None => bail!("name a store: --config, --embedded PATH or --etcd URL,…"),
        };
        Ok((store, chain))
    }
}

fn parse_below(s: &str) -> Result<(DutyKind, Position), String> {
    let (family, pos) = s.split_once('=').ok_or("expected FAMILY=A[,B]")?;
    let kind = match family {
        "babe_seal" => DutyKind::BabeSeal,
        "grandpa_vote" => DutyKind::GrandpaVote,
        "heartbeat" => DutyKind::Heartbeat,
        "beefy_vote" => DutyKind::BeefyVote,
        other => return Err(format!("unknown family {other:?}: babe_seal, grandpa_vote, heartbeat or beefy_vote")),
    };
    let num = |x: &str| x.trim().parse::<u64>().map_err(|e| format!("{x:?}: {e}"));
    let (a, b) = match pos.split_once(',') {
        Some((a, b)) => (num(a)?, num(b)?),
        None => (num(pos)?, 0),
    };
    Ok((kind, (a, b)))
}

/// Run a claims command; returns the exit code.
pub async fn run(cmd: ClaimsCommand) -> anyhow::Result<i32> {
    match cmd {
        ClaimsCommand::Export { store, output, keystore } => export(store, output, keystore).await,
        ClaimsCommand::Import { file, store, json } => import(file, store, json).await,
        ClaimsCommand::Prune { store, below, grace_ms, dry_run } => prune(store, below, grace_ms, dry_run).await,
    }
}

async fn export(args: StoreArgs, output: Option<PathBuf>, keystore: Option<PathBuf>) -> anyhow::Result<i32> {
    let (store, chain) = args.open().await?;
    let extra: Vec<(KeyType, Vec<u8>)> = match keystore {
        Some(dir) => KeystoreDir::open(&dir)?.load()?.0.list().into_iter().map(|(kt, p, _)| (kt, p)).collect(),
        None => Vec::new(),
    };
    let file = interchange::export(store.dyn_store(), chain, &extra, now_ms()).await?;
    let claims: usize = file.keys.iter().map(|k| k.lists().iter().map(|(_, l)| l.len()).sum::<usize>()).sum();
    let text = serde_json::to_vec_pretty(&file)?;
    match &output {
        Some(path) => write_file(path, &text).with_context(|| format!("writing {}", path.display()))?,
        None => std::io::stdout().lock().write_all(&text)?,
    }
    eprintln!(
        "exported {claims} claim(s) of {} key(s) for chain {chain}{}",
        file.keys.len(),
        output.map(|p| format!(" to {}", p.display())).unwrap_or_default()
    );
    Ok(0)
}

fn write_file(path: &std::path::Path, data: &[u8]) -> std::io::Result<()> {
    exclave_durable::write_file(path, &[data, b"\n"].concat(), 0o644)
}

async fn import(path: PathBuf, args: StoreArgs, json: bool) -> anyhow::Result<i32> {
    let text = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let file: Interchange = serde_json::from_slice(&text).with_context(|| format!("{} is not an interchange file", path.display()))?;
    let (store, chain) = args.open().await?;
    let report = interchange::import(store.dyn_store(), chain, &file).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "imported {} key(s): {} claim(s) inserted, {} already present, {} watermark-only entr(ies)",
            report.keys, report.inserted, report.already_present, report.watermark_only
        );
        for (k, w) in &report.watermarks {
            println!("  watermark {k} = {w}");
        }
        for c in &report.conflicts {
            println!(
                "CONFLICT {} {}: the store holds {} by {}, the file {}",
                c.key, c.duty, c.stored_payload_hash, c.stored_claimer, c.file_payload_hash
            );
        }
    }
    Ok(if report.conflicts.is_empty() { 0 } else { 1 })
}

async fn prune(args: StoreArgs, below: Vec<(DutyKind, Position)>, grace_ms: u64, dry_run: bool) -> anyhow::Result<i32> {
    let (store, chain) = args.open().await?;
    let Store::Embedded(store) = store else {
        bail!("the etcd and TiKV backends keep claims append-only and cannot delete them yet: prune is available for the embedded store");
    };
    let below: HashMap<DutyKind, Position> = below.into_iter().collect();
    let report = interchange::prune(&store, chain, &below, Duration::from_millis(grace_ms), dry_run).await?;
    for (k, w) in &report.watermarks {
        println!("  watermark {k} = {w}");
    }
    let verb = if dry_run { "would delete" } else { "deleted" };
    println!("{verb} {} of {} claim(s)", report.deleted, report.examined);
    Ok(0)
}
