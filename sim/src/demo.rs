//! `exclave demo`: a newcomer's first run, no external services. Two signers (signer-a,
//! signer-b) in this process share one embedded claim store; two simulated nodes of one
//! validator (alice-1, alice-2) drive real `RemoteKeystore` clients over mutual TLS with real
//! BABE pre-seal headers, GRANDPA votes and heartbeats on a fast wall-clock slot schedule.
//! Part-way the active node is killed, then the signer the survivor prefers is stopped, then the
//! killed node comes back. A live line per slot shows who signed what; the summary counts
//! duties, signatures, refusals and the slots lost at failover, checks every pair of
//! signatures with Substrate's equivocation checkers, and verifies both signing logs.

use crate::{
    judge::Judge,
    node::{NodeSpec, SimNode, SlotReport, ValidatorKeys},
};
use exclave_audit::{self as audit, VerifyOptions};
use exclave_claims::{embedded::EmbeddedStore, WithDeadline};
use exclave_keystore_remote::TlsFiles;
use exclave_policies::{ChainId, LeaseTiming, SlotBounds};
use exclave_signer::{
    clock::now_ms,
    daemon::{self, Daemon, DaemonOptions, SharedStore, StoreOptions, TransportOptions},
    lease::LeaseSettings,
    signing_log::LogOptions,
    tls::DevPki,
};
use std::{io::Write, path::PathBuf, sync::Arc, time::Duration};

/// The demo chain's genesis hash.
pub const DEMO_CHAIN: [u8; 32] = *b"exclave-demo-chain-genesis-hash!";

/// What to run.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// Where signers keep keys, logs and the store (created; kept for inspection).
    pub dir: PathBuf,
    /// Slots to run.
    pub slots: u64,
    /// Slot duration (the signers' BABE slot duration too).
    pub slot_ms: u64,
    /// The active-node lease lasts this long after a renewal.
    pub lease_ms: u64,
    /// Slot (from the start) at which the active node is killed.
    pub kill_node_at: u64,
    /// Slot at which the survivor's preferred signer is stopped.
    pub stop_signer_at: u64,
    /// Slot at which the killed node restarts.
    pub restart_node_at: u64,
    /// Serve each signer's metrics on 127.0.0.1 (port chosen by the OS, written to
    /// `<dir>/<signer>/metrics.addr`).
    pub metrics: bool,
}

impl DemoOptions {
    /// The default run: 48 slots of 500 ms, a lease of one slot.
    pub fn new(dir: PathBuf) -> Self {
        Self { dir, slots: 48, slot_ms: 500, lease_ms: 500, kill_node_at: 12, stop_signer_at: 26, restart_node_at: 34, metrics: false }
    }
}

/// Why the demo could not run.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// A signer could not start.
    #[error("starting a signer: {0}")]
    Daemon(#[from] daemon::DaemonError),
    /// The claim store could not be opened.
    #[error("opening the shared claim store: {0}")]
    Store(#[from] exclave_claims::StoreError),
    /// The dev PKI could not be created.
    #[error("creating the demo PKI: {0}")]
    Tls(#[from] exclave_signer::tls::TlsError),
    /// A node could not start.
    #[error("starting a simulated node: {0}")]
    Node(#[from] exclave_keystore_remote::RemoteError),
    /// Writing the live view failed.
    #[error("writing output: {0}")]
    Io(#[from] std::io::Error),
    /// The signing logs could not be read.
    #[error("verifying the signing logs: {0}")]
    Audit(#[from] audit::AuditError),
}

/// The run's outcome.
#[derive(Clone, Debug, Default)]
pub struct DemoSummary {
    /// Slots run.
    pub slots: u64,
    /// Duties with a signature.
    pub duties: usize,
    /// Signatures received by nodes.
    pub signatures: usize,
    /// Requests refused.
    pub refused: u32,
    /// Requests that failed.
    pub failed: u32,
    /// Slots from the kill to the first seal by another node (1 = the next slot was sealed).
    pub failover_slots: Option<u64>,
    /// Slots without a seal, over the run.
    pub unsealed_slots: u64,
    /// Equivocations found by the judge.
    pub equivocations: Vec<String>,
    /// Pairs of signatures for one duty that were checked.
    pub pairs_checked: usize,
    /// Whether `exclave audit verify` found the signing logs intact.
    pub logs_ok: bool,
    /// Records in the signing logs.
    pub log_records: u64,
}

impl DemoSummary {
    /// The demo passes: no equivocation, intact logs, a failover that happened.
    pub fn passed(&self) -> bool {
        self.equivocations.is_empty() && self.logs_ok && self.failover_slots.is_some()
    }
}

const NODES: [&str; 2] = ["alice-1", "alice-2"];
const SIGNERS: [&str; 2] = ["signer-a", "signer-b"];

struct Cluster {
    daemons: Vec<Daemon>,
    pki: DevPki,
    urls: Vec<String>,
    /// The claim-store id both signers report, pinned in the nodes as an operator pins it.
    store_id: Option<String>,
    stopped: std::cell::Cell<Option<usize>>,
}

fn start_signers(opts: &DemoOptions, rt: &tokio::runtime::Handle) -> Result<Cluster, DemoError> {
    let pki = DevPki::ensure_with_nodes(&opts.dir, &NODES)?;
    let store = Arc::new(WithDeadline::new(EmbeddedStore::open(&opts.dir.join("claims.redb"))?, Duration::from_secs(2)));
    let mut daemons = Vec::new();
    for id in SIGNERS {
        let data_dir = opts.dir.join(id);
        let o = DaemonOptions {
            dev: true,
            signer_id: id.into(),
            chain: Some(ChainId(DEMO_CHAIN)),
            keystore_dir: data_dir.join("keystore"),
            signing_log: data_dir.join("signing.log"),
            log_options: LogOptions::new(id),
            store: StoreOptions::Shared(SharedStore(store.clone())),
            store_deadline: Duration::from_secs(2),
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            transport: TransportOptions::Tls {
                cert: pki.server_cert.clone(),
                key: pki.server_key.clone(),
                client_ca: pki.ca.clone(),
                crl: None,
            },
            metrics: opts.metrics.then(|| std::net::SocketAddr::from(([127, 0, 0, 1], 0))),
            bounds: SlotBounds { slot_duration_ms: opts.slot_ms, max_drift_slots: 2, genesis_slot: 0 },
            limits: exclave_signer::server::ServerLimits::default(),
            lease: Some(LeaseSettings {
                timing: LeaseTiming { duration_ms: opts.lease_ms, renew_after_ms: (opts.lease_ms / 5).max(20) },
                validator: "alice".into(),
                nodes: NODES.iter().map(|n| (*n).to_string()).collect(),
                groups: Vec::new(),
            }),
            data_dir: Some(data_dir),
            insecure_key_file_permissions: false,
            log_min_free_bytes: exclave_signer::config::default_min_free_bytes(),
            refused_per_client_per_minute: exclave_signer::config::default_refused_per_client_per_minute(),
            grants: exclave_signer::grants::Grants::everything_for(&NODES),
            keystore_password: None,
            keystore_passphrase: None,
        };
        let d = rt.block_on(daemon::start(o, prometheus_client::registry::Registry::default()))?;
        if let Some(addr) = d.metrics_addr {
            std::fs::write(opts.dir.join(id).join("metrics.addr"), format!("{addr}\n"))?;
        }
        daemons.push(d);
    }
    let urls = daemons.iter().map(|d| format!("https://{}", d.rpc_addr)).collect();
    let store_id = rt.block_on(daemons[0].engine.store_id());
    Ok(Cluster { daemons, pki, urls, store_id, stopped: std::cell::Cell::new(None) })
}

fn node_spec(cluster: &Cluster, i: usize) -> NodeSpec {
    let (cert, key) = cluster.pki.node_files(NODES[i]);
    let mut urls = cluster.urls.clone();
    if i == 1 {
        urls.reverse(); // alice-2 prefers signer-b
    }
    NodeSpec {
        name: NODES[i].into(),
        urls,
        tls: TlsFiles { ca: cluster.pki.ca.clone(), cert, key },
        chain: DEMO_CHAIN,
        timeout: Duration::from_millis(1000),
        salt: i as u8 + 1,
        validator: 0,
        keys: ValidatorKeys::from_suri("//Alice"),
        session_slots: 10,
        // Pinned, as docs/operations.md tells operators: a node that (re)starts while one of its
        // signers is down still uses the other. Without it the node waits, failing closed, until
        // every configured signer has reported the store id, and cannot stand by.
        store_id: cluster.store_id.clone(),
    }
}

fn sleep_until_ms(t: u64) {
    let now = now_ms();
    if t > now {
        std::thread::sleep(Duration::from_millis(t - now));
    }
}

/// Run the demo, writing the live view to `out`. Signers run on `rt`.
pub fn run(opts: &DemoOptions, rt: &tokio::runtime::Handle, out: &mut impl Write) -> Result<DemoSummary, DemoError> {
    std::fs::create_dir_all(&opts.dir)?;
    let cluster = start_signers(opts, rt)?;
    writeln!(out, "Exclave demo: validator alice, nodes alice-1 and alice-2, signers signer-a and signer-b on one claim store")?;
    writeln!(
        out,
        "  {} slots of {} ms, active-node lease {} ms; files in {}",
        opts.slots,
        opts.slot_ms,
        opts.lease_ms,
        opts.dir.display()
    )?;
    writeln!(
        out,
        "  slot {}: kill the active node; slot {}: stop the survivor's signer; slot {}: restart the killed node",
        opts.kill_node_at, opts.stop_signer_at, opts.restart_node_at
    )?;
    for (id, d) in SIGNERS.iter().zip(&cluster.daemons) {
        if let Some(addr) = d.metrics_addr {
            writeln!(out, "  {id} metrics: http://{addr}/metrics")?;
        }
    }
    writeln!(out)?;
    let judge = Judge::default();
    let mut nodes: Vec<Option<SimNode>> =
        (0..NODES.len()).map(|i| SimNode::start(node_spec(&cluster, i)).map(Some)).collect::<Result<_, _>>()?;
    // Let the keep-alives settle who is active before the first slot.
    std::thread::sleep(Duration::from_millis(opts.lease_ms.min(300)));
    let first = now_ms() / opts.slot_ms + 1;
    let mut summary = DemoSummary { slots: opts.slots, ..DemoSummary::default() };
    let mut killed: Option<(usize, u64)> = None;
    writeln!(out, "Each slot: a node asks for a BABE slot claim (VRF) and a seal, votes (prevote, precommit) if hasKeys says it may, and every 10 slots sends a heartbeat.")?;
    writeln!(out, "{:>5}  {:<26} {:<26} signers", "slot", NODES[0], NODES[1])?;
    for i in 0..opts.slots {
        let slot = first + i;
        sleep_until_ms(slot * opts.slot_ms);
        events(opts, i, slot, &cluster, &mut nodes, &mut killed, out)?;
        let reports = run_slot(&nodes, slot, &judge);
        let sealed = reports.iter().flatten().any(|r| r.sealed);
        if !sealed {
            summary.unsealed_slots += 1;
        }
        if let (Some((_, at)), true, None) = (killed, sealed, summary.failover_slots) {
            summary.failover_slots = Some(slot - at);
        }
        for r in reports.iter().flatten() {
            summary.refused += r.refused;
            summary.failed += r.failed;
        }
        live_line(out, i, &nodes, &reports, &cluster)?;
    }
    drop(nodes);
    finish(&cluster, &judge, opts, rt, &mut summary, out)?;
    Ok(summary)
}

fn events(
    opts: &DemoOptions,
    i: u64,
    slot: u64,
    cluster: &Cluster,
    nodes: &mut [Option<SimNode>],
    killed: &mut Option<(usize, u64)>,
    out: &mut impl Write,
) -> Result<(), DemoError> {
    if i == opts.kill_node_at {
        let active = nodes.iter().position(|n| n.as_ref().is_some_and(SimNode::believes_active)).unwrap_or(0);
        nodes[active] = None;
        *killed = Some((active, slot));
        writeln!(out, "  >> slot {i}: {} (the active node) is killed", NODES[active])?;
    }
    if i == opts.stop_signer_at {
        let survivor = killed.map_or(1, |(k, _)| 1 - k);
        let preferred = survivor; // alice-1 prefers signer-a, alice-2 signer-b
        cluster.daemons[preferred].stop();
        cluster.stopped.set(Some(preferred));
        writeln!(out, "  >> slot {i}: {} (the signer {} prefers) is stopped", SIGNERS[preferred], NODES[survivor])?;
    }
    if i == opts.restart_node_at {
        if let Some((k, _)) = *killed {
            nodes[k] = Some(SimNode::start(node_spec(cluster, k))?);
            writeln!(out, "  >> slot {i}: {} restarts", NODES[k])?;
        }
    }
    Ok(())
}

fn run_slot(nodes: &[Option<SimNode>], slot: u64, judge: &Judge) -> Vec<Option<SlotReport>> {
    std::thread::scope(|s| {
        let handles: Vec<_> = nodes.iter().map(|n| n.as_ref().map(|n| s.spawn(move || n.run_slot(slot, judge)))).collect();
        handles.into_iter().map(|h| h.and_then(|h| h.join().ok())).collect()
    })
}

fn live_line(
    out: &mut impl Write,
    slot: u64,
    nodes: &[Option<SimNode>],
    reports: &[Option<SlotReport>],
    cluster: &Cluster,
) -> std::io::Result<()> {
    let cell = |i: usize| match (&nodes[i], reports[i]) {
        (None, _) | (_, None) => "(down)".to_string(),
        (Some(_), Some(r)) => {
            let role = if r.sealed || r.voted { "ACTIVE " } else { "standby" };
            let mut did = Vec::new();
            if r.sealed {
                did.push("seal");
            }
            if r.voted {
                did.push("votes");
            }
            if r.heartbeat {
                did.push("hb");
            }
            if r.refused > 0 {
                did.push("refused");
            }
            if r.failed > 0 {
                did.push("FAILED");
            }
            format!("{role} {}", did.join(" "))
        }
    };
    let signers: Vec<String> = SIGNERS
        .iter()
        .enumerate()
        .map(|(i, id)| if cluster.stopped.get() == Some(i) { format!("{id} DOWN") } else { (*id).to_string() })
        .collect();
    writeln!(out, "{slot:>5}  {:<26} {:<26} {}", cell(0), cell(1), signers.join(", "))?;
    out.flush()
}

fn finish(
    cluster: &Cluster,
    judge: &Judge,
    opts: &DemoOptions,
    rt: &tokio::runtime::Handle,
    s: &mut DemoSummary,
    out: &mut impl Write,
) -> Result<(), DemoError> {
    let f = judge.findings();
    (s.duties, s.signatures, s.pairs_checked, s.equivocations) = (f.duties, f.signatures, f.pairs_checked, f.equivocations.clone());
    for d in &cluster.daemons {
        if let Err(e) = rt.block_on(d.engine.seal_log()) {
            writeln!(out, "  sealing a signing log failed: {e}")?;
        }
    }
    let inputs = SIGNERS.iter().map(|id| opts.dir.join(id).join("signing.log")).collect();
    let report = audit::verify(&VerifyOptions { inputs, ..VerifyOptions::default() })?;
    s.logs_ok = report.ok;
    s.log_records = report.summary.records;
    writeln!(out, "\nSummary")?;
    writeln!(out, "  slots                  {} of {} ms; {} without a seal", s.slots, opts.slot_ms, s.unsealed_slots)?;
    writeln!(out, "  duties signed          {} (seals, prevotes, precommits, heartbeats)", s.duties)?;
    writeln!(out, "  signatures received    {}", s.signatures)?;
    writeln!(out, "  refusals               {} (standby nodes, the second heartbeat of a session); failures {}", s.refused, s.failed)?;
    match s.failover_slots {
        Some(n) => writeln!(out, "  failover               the first seal by the standby came {n} slot(s) after the kill")?,
        None => writeln!(out, "  failover               NONE: no node sealed after the kill")?,
    }
    writeln!(out, "  equivocations          {} ({} pairs of different signatures for one duty checked with sp_consensus_babe/grandpa::check_equivocation_proof)", s.equivocations.len(), s.pairs_checked)?;
    for e in &s.equivocations {
        writeln!(out, "    {e}")?;
    }
    let verdict = if s.logs_ok { "intact" } else { "FINDINGS" };
    writeln!(
        out,
        "  signing logs           {verdict}: {} records in 2 logs (exclave audit verify {}/signer-*/signing.log)",
        s.log_records,
        opts.dir.display()
    )?;
    if !report.ok {
        report.print_human(out)?;
    }
    writeln!(out, "\n{}", if s.passed() { "PASS" } else { "FAIL" })?;
    Ok(())
}
