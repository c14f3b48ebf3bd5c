//! The command line: `exclave serve`, `exclave keys …`, `exclave audit …` and `exclave claims …`.

mod audit;
mod claims;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use exclave_policies::{ChainId, KeyType};
use exclave_signer::{
    config::{parse_chain, Config},
    daemon::{self, DaemonOptions, TransportOptions},
    keystore_dir::{KeystoreDir, Password},
};
use std::{io::Read, net::SocketAddr, path::PathBuf, time::Duration};

/// Exclave: a remote signer for Substrate validators that claims every duty before it signs.
#[derive(Debug, Parser)]
#[command(name = "exclave", version, about)]
pub struct Cli {
    /// Log as JSON lines instead of text.
    #[arg(long, global = true)]
    pub log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the signer.
    Serve(ServeArgs),
    /// Manage the keys in a keystore directory.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Verify and read signing logs (for security teams; needs no signer and no keys).
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Export, import and prune claim history (interchange format in docs/audit.md).
    #[command(subcommand)]
    Claims(claims::ClaimsCommand),
    /// A first run, no external services: two signers on one claim store, two simulated nodes
    /// of one validator, a failover, and an equivocation check (logs: set RUST_LOG).
    Demo(DemoArgs),
}

#[derive(Debug, Args)]
struct DemoArgs {
    /// Where the signers keep keys, logs and the claim store (default: a new temporary directory, kept).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Slots to run.
    #[arg(long, default_value_t = 48)]
    slots: u64,
    /// Slot duration in milliseconds (a real chain's is 6000).
    #[arg(long, default_value_t = 500)]
    slot_ms: u64,
    /// Serve each signer's Prometheus metrics on 127.0.0.1 (an OS-chosen port, written to
    /// `<dir>/<signer>/metrics.addr` and printed).
    #[arg(long)]
    metrics: bool,
}

impl Cli {
    /// The log filter when RUST_LOG is not set: the demo keeps its terminal for the live view.
    pub fn default_log_filter(&self) -> &'static str {
        if matches!(self.command, Command::Demo(_)) {
            "off"
        } else {
            "info"
        }
    }
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// The configuration file (strict TOML; see docs/operations.md).
    #[arg(short, long, required_unless_present = "dev", conflicts_with = "dev")]
    config: Option<PathBuf>,
    /// Development mode: loopback only, self-signed TLS, embedded store and //Alice keys under --data-dir.
    #[arg(long)]
    dev: bool,
    /// Dev: where keys, TLS files, the claim store and the signing log live.
    #[arg(long, default_value = "exclave-dev", requires = "dev")]
    data_dir: PathBuf,
    /// Dev: RPC listen address (loopback only).
    #[arg(long, default_value = "127.0.0.1:9955", requires = "dev")]
    listen: SocketAddr,
    /// Dev: metrics listen address.
    #[arg(long, default_value = "127.0.0.1:9956", requires = "dev")]
    metrics: SocketAddr,
    /// Dev: the chain's genesis hash; without it, the first chain a client names is pinned.
    #[arg(long, requires = "dev")]
    chain: Option<String>,
    /// Dev: serve plain HTTP instead of TLS (loopback only; never for real keys).
    #[arg(long, requires = "dev")]
    insecure_plaintext: bool,
    /// Dev: the chain's BABE slot duration in milliseconds (slot bounds are checked against it).
    #[arg(long, default_value_t = 6000, requires = "dev")]
    slot_duration_ms: u64,
    /// Dev: this signer's id, recorded in every claim.
    #[arg(long, default_value = "dev-signer", requires = "dev")]
    signer_id: String,
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// List the keys (public keys only).
    List(KeystoreArg),
    /// Generate a random key and store it (mode 0600).
    Generate {
        #[command(flatten)]
        keystore: KeystoreArg,
        /// Key type: babe, gran, imon, beef or audi.
        #[arg(long)]
        key_type: String,
    },
    /// Copy the keys Exclave signs for (babe, gran, imon, beef, audi) from a Substrate keystore
    /// directory (a node's `chains/<chain>/keystore`), each checked; other types are skipped.
    ImportDir {
        #[command(flatten)]
        keystore: KeystoreArg,
        /// The Substrate keystore directory to read (not changed).
        #[arg(long)]
        from: PathBuf,
    },
    /// Encrypt every key file at rest with the passphrase of --passphrase-file (creating the
    /// keystore's identity if it has none): each file is checked, then replaced atomically.
    Encrypt(KeystoreArg),
    /// Decrypt every key file (to move the keys back to a node's keystore).
    Decrypt(KeystoreArg),
    /// Import a secret URI, seed or phrase, read from standard input (never from the command line).
    Import {
        #[command(flatten)]
        keystore: KeystoreArg,
        /// Key type: babe, gran, imon, beef or audi.
        #[arg(long)]
        key_type: String,
    },
}

#[derive(Debug, Args)]
struct KeystoreArg {
    /// The keystore directory.
    #[arg(long)]
    keystore: PathBuf,
    /// For a password-protected Substrate keystore: the file holding its password (mode 0600).
    #[arg(long)]
    password_file: Option<PathBuf>,
    /// For a keystore encrypted at rest: the file holding its passphrase (mode 0600). With it,
    /// keys are written encrypted.
    #[arg(long)]
    passphrase_file: Option<PathBuf>,
}

impl KeystoreArg {
    fn open(&self) -> anyhow::Result<KeystoreDir> {
        Ok(self.open_plain()?.with_encryption(self.passphrase()?.as_ref())?)
    }

    /// The directory with its password, without opening its encryption.
    fn open_plain(&self) -> anyhow::Result<KeystoreDir> {
        let password = self.password_file.as_deref().map(|p| Password::from_file(p, false)).transpose()?;
        Ok(KeystoreDir::open(&self.keystore)?.with_password(password))
    }

    fn passphrase(&self) -> anyhow::Result<Option<Password>> {
        Ok(self.passphrase_file.as_deref().map(|p| Password::from_file(p, false)).transpose()?)
    }

    fn required_passphrase(&self) -> anyhow::Result<Password> {
        self.passphrase()?.context("--passphrase-file is required: the file holding the keystore passphrase")
    }
}

/// Set up `tracing` (RUST_LOG filters; `default` without it).
pub fn init_tracing(json: bool, default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| default.into());
    // Colours only on a terminal: a log written to a file or a pipe carries no ANSI codes.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Run a command; returns the process exit code.
pub async fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Serve(args) => serve(args).await.map(|()| 0),
        Command::Keys(cmd) => keys(cmd).map(|()| 0),
        Command::Audit(cmd) => tokio::task::spawn_blocking(move || audit::run(cmd)).await?,
        Command::Claims(cmd) => claims::run(cmd).await,
        Command::Demo(args) => tokio::task::spawn_blocking(move || demo(args)).await?,
    }
}

fn demo(args: DemoArgs) -> anyhow::Result<i32> {
    if args.slots < 40 || args.slot_ms < 200 {
        anyhow::bail!("--slots must be at least 40 and --slot-ms at least 200 (the demo kills a node at slot 12 and restarts it at 34)");
    }
    let dir = args.dir.unwrap_or_else(|| std::env::temp_dir().join(format!("exclave-demo-{}", std::process::id())));
    if dir.join("claims.redb").exists() {
        anyhow::bail!("{} already holds a demo's claim store; give a new --dir", dir.display());
    }
    let opts = exclave_sim::demo::DemoOptions {
        slots: args.slots,
        slot_ms: args.slot_ms,
        lease_ms: args.slot_ms,
        metrics: args.metrics,
        ..exclave_sim::demo::DemoOptions::new(dir)
    };
    let summary = exclave_sim::demo::run(&opts, &tokio::runtime::Handle::current(), &mut std::io::stdout().lock())?;
    Ok(if summary.passed() { 0 } else { 1 })
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    // Before any key or TLS key is read: no core dumps, memory locked where allowed.
    exclave_signer::hardening::harden_process();
    let opts = match &args.config {
        Some(path) => match Config::load(path) {
            Ok(c) => {
                for w in c.warnings() {
                    tracing::warn!(config = %path.display(), "{w}");
                }
                DaemonOptions::from_config(&c)?
            }
            Err(e) => {
                eprintln!("exclave: {e}");
                std::process::exit(64);
            }
        },
        None => {
            let chain = args.chain.as_deref().map(parse_chain).transpose()?.map(ChainId);
            let mut opts = DaemonOptions::dev(args.data_dir.clone(), args.listen, Some(args.metrics), chain, args.insecure_plaintext)?;
            opts.bounds.slot_duration_ms = args.slot_duration_ms.max(1);
            opts.signer_id = args.signer_id.clone();
            opts
        }
    };
    let dev = opts.dev;
    let d = daemon::start(opts.clone(), prometheus_client::registry::Registry::default()).await?;
    tracing::info!(rpc = %d.rpc_addr, metrics = ?d.metrics_addr, chain = ?d.engine.chain(), "exclave signer listening");
    let scheme = if matches!(opts.transport, TransportOptions::Tls { .. }) { "https" } else { "http" };
    let metrics = d.metrics_addr.map(|m| format!("http://{m}")).unwrap_or_else(|| "-".into());
    // A stable line for scripts and tests: where to connect.
    println!("listening: rpc={scheme}://{} metrics={metrics}", d.rpc_addr);
    println!("audit key: {} (signing log {})", d.engine.audit_key(), opts.signing_log.display());
    if dev {
        print_dev_banner(&opts, &d);
    }
    let signal = stop_signal().await?;
    tracing::info!(signal, "shutting down");
    d.stop();
    // Requests already being served finish (and are logged) before the closing checkpoint; a
    // store call is bounded by its deadline, so this waits seconds at most.
    let unfinished = d.drain(Duration::from_secs(15)).await;
    if unfinished > 0 {
        tracing::error!(unfinished, "requests still in flight at the closing checkpoint");
    }
    // A clean stop ends the log with a signed checkpoint, so a cut-off tail is detectable.
    if let Err(e) = d.engine.seal_log().await {
        tracing::error!(error = %e, "could not write the closing checkpoint");
    }
    // The embedded store's claims into its own file, and the file marked closed for the
    // offline tools (without it, the next start restores them from the signing log).
    if let Err(e) = d.close_store().await {
        tracing::error!(error = %e, "could not close the claim store cleanly");
    }
    Ok(())
}

/// Wait for SIGINT (ctrl-c) or SIGTERM (what systemd, `docker stop` and Kubernetes send): both
/// end in the same clean stop with the signing log's closing checkpoint.
async fn stop_signal() -> anyhow::Result<&'static str> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).context("installing the SIGTERM handler")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.map(|()| "SIGINT").context("waiting for ctrl-c"),
        _ = term.recv() => Ok("SIGTERM"),
    }
}

fn print_dev_banner(opts: &DaemonOptions, d: &daemon::Daemon) {
    let dir = opts.data_dir.clone().unwrap_or_default();
    println!("\nExclave dev signer ready (loopback only, //Alice keys, embedded claim store in {})", dir.display());
    println!("  keys:");
    for kt in KeyType::SUPPORTED {
        for public in d.engine.keys(exclave_protocol::WireKeyType(kt.0), None) {
            println!("    {kt}  {public:?}");
        }
    }
    match &opts.transport {
        TransportOptions::Tls { client_ca, .. } => {
            let tls = dir.join("tls");
            println!("  node flags:  --remote-keystore https://{} --remote-keystore-ca {} \\", d.rpc_addr, client_ca.display());
            println!(
                "               --remote-keystore-cert {} --remote-keystore-key {}",
                tls.join("client.pem").display(),
                tls.join("client.key").display()
            );
            println!(
                "  try it:      curl -s --cacert {ca} --cert {c} --key {k} https://{addr} -H 'content-type: application/json' \\",
                ca = client_ca.display(),
                c = tls.join("client.pem").display(),
                k = tls.join("client.key").display(),
                addr = d.rpc_addr
            );
            println!("               -d '{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"exclave_status\",\"params\":[]}}'");
            let (stranger, stranger_key) = (tls.join("stranger.pem"), tls.join("stranger.key"));
            if stranger.exists() {
                println!("  deny by default: the same CA also issued {} (CN dev-stranger), which no grant names;", stranger.display());
                println!(
                    "               the same curl with --cert {} --key {} and method exclave_keys (params [\"gran\"]) is refused (1005)",
                    stranger.display(),
                    stranger_key.display()
                );
            }
        }
        TransportOptions::InsecurePlaintext => {
            println!("  INSECURE plaintext RPC at http://{} (dev only)", d.rpc_addr);
        }
    }
    if let Some(m) = d.metrics_addr {
        println!("  metrics:     http://{m}/metrics  (also /health, /ready)");
    }
    println!("  signing log: {}\n  stop with ctrl-c\n", opts.signing_log.display());
}

fn parse_key_type(s: &str) -> anyhow::Result<KeyType> {
    let bytes: [u8; 4] = s.as_bytes().try_into().map_err(|_| anyhow::anyhow!("key type {s:?} must be 4 characters"))?;
    let kt = KeyType(bytes);
    if kt.crypto().is_none() {
        bail!("key type {kt} is not supported: use babe, gran, imon, beef or audi");
    }
    Ok(kt)
}

fn keys(cmd: KeysCommand) -> anyhow::Result<()> {
    match cmd {
        KeysCommand::List(k) => {
            let (ring, skipped) = k.open()?.load()?;
            for (kt, public, crypto) in ring.list() {
                println!("{kt}  {crypto:<7}  0x{}", hex::encode(public));
            }
            for s in skipped {
                eprintln!("skipped {}: {}", s.file, s.reason);
            }
        }
        KeysCommand::Generate { keystore, key_type } => {
            let kt = parse_key_type(&key_type)?;
            let dir = keystore.open()?;
            let (pair, phrase) = dir.generate(kt.crypto().context("unsupported key type")?);
            let path = dir.write(kt, &pair, &phrase)?;
            println!("{kt}  0x{}  written to {}", hex::encode(pair.public()), path.display());
        }
        KeysCommand::ImportDir { keystore, from } => {
            let (imported, skipped) = keystore.open()?.import_dir(&from)?;
            for (kt, public) in &imported {
                println!("{kt}  0x{}  imported", hex::encode(public));
            }
            for s in &skipped {
                eprintln!("skipped {}: {}", s.file, s.reason);
            }
            println!("{} keys imported from {}, {} files skipped", imported.len(), from.display(), skipped.len());
        }
        KeysCommand::Encrypt(k) => {
            let (done, already) = k.open_plain()?.encrypt_all(&k.required_passphrase()?)?;
            println!("{done} key files encrypted, {already} already encrypted, in {}", k.keystore.display());
        }
        KeysCommand::Decrypt(k) => {
            let done = k.open_plain()?.decrypt_all(&k.required_passphrase()?)?;
            println!("{done} key files decrypted in {}", k.keystore.display());
        }
        KeysCommand::Import { keystore, key_type } => {
            let kt = parse_key_type(&key_type)?;
            let mut suri = zeroize::Zeroizing::new(String::new());
            std::io::stdin().read_to_string(&mut suri).context("reading the secret from standard input")?;
            let suri = zeroize::Zeroizing::new(suri.trim().to_string());
            if suri.is_empty() {
                bail!("no secret on standard input: pipe the secret URI, seed or phrase in");
            }
            let dir = keystore.open()?;
            let pair = dir.derive(kt.crypto().context("unsupported key type")?, &suri)?;
            let path = dir.write(kt, &pair, &suri)?;
            println!("{kt}  0x{}  written to {}", hex::encode(pair.public()), path.display());
        }
    }
    Ok(())
}
