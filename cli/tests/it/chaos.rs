//! The chaos judge. K signer processes share one claim store (the TiKV wire-protocol stand-in,
//! which is not TiKV: see tikv-protocol-standin; or a real 3-member etcd cluster) and serve V
//! validators; each validator runs two simulated nodes (real `RemoteKeystore` clients, real
//! payloads) on a fast slot clock. One
//! signer runs without the active-node lease, so nodes that reach it both sign (a failed lease)
//! and only the per-duty claims stand between them and an equivocation. While
//! they run, faults are injected: kill -9 of signers (restarted on the same port), nodes killed
//! and restarted (building different blocks after a restart), clock jumps on nodes, duplicated
//! and reordered requests, and store faults: on the stand-in lost replies, NotLeader answers
//! and a frozen store; on etcd kill -9 of a member (restarted 2 s later) and the loss of quorum
//! (two members killed for 1.5 s).
//!
//! Every signature any node received is kept; every pair of different signatures for one duty
//! is checked with `sp_consensus_babe::check_equivocation_proof` and
//! `sp_consensus_grandpa::check_equivocation_proof` (heartbeats: one per session). Zero valid
//! proofs is the pass condition. Liveness is reported: the share of slots whose seal and votes
//! were signed, and the longest run of unsealed slots of any validator.
//!
//! `chaos_ci` (in the default test run) signs at least 20,000 duties on the stand-in and
//! `chaos_etcd_ci` 10,000 on etcd; `chaos_long` is the long mode (`scripts/chaos-long.sh`,
//! `CHAOS_DUTIES`, default 1,000,000; `CHAOS_STORE=etcd` for etcd), recorded in
//! docs/reliability.md. Simulated nodes are threads: a "killed" node stops between two requests
//! and drops its client (a request in flight completes at the signer, its reply is lost).

use crate::common::*;
use exclave_claims::etcd::local_cluster::LocalCluster;
use exclave_keystore_remote::TlsFiles;
use exclave_signer::tls::DevPki;
use exclave_sim::{
    judge::Judge,
    node::{NodeSpec, SimNode, ValidatorKeys},
};
use exclave_tikv_protocol_standin::StandIn;
use parking_lot::{Mutex, RwLock};
use std::{
    path::Path,
    sync::{
        atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

const SLOT_MS: u64 = 100;
const SIGNERS: usize = 3;
/// The judge checks every pair this often (in duties) during a run, and at the end.
const CHECKPOINT_EVERY: usize = 100_000;

struct Plan {
    store: StoreKind,
    validators: usize,
    duties: usize,
    max_time: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum StoreKind {
    StandIn,
    Etcd,
}

/// The claim store the signers share, and its faults.
enum ChaosStore {
    /// The TiKV wire-protocol stand-in (NOT TiKV), in this process.
    StandIn(StandIn),
    /// A real 3-member etcd cluster.
    Etcd(Mutex<LocalCluster>),
}

impl ChaosStore {
    fn start(kind: StoreKind, rt: &tokio::runtime::Runtime) -> Self {
        match kind {
            StoreKind::StandIn => ChaosStore::StandIn(rt.block_on(StandIn::start()).expect("stand-in")),
            StoreKind::Etcd => ChaosStore::Etcd(Mutex::new(LocalCluster::start(3))),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            ChaosStore::StandIn(_) => "the TiKV stand-in",
            ChaosStore::Etcd(_) => "a 3-member etcd",
        }
    }

    fn claims(&self) -> ClaimsConfig {
        match self {
            ChaosStore::StandIn(s) => standin_claims(&s.pd_endpoint(), 2000),
            ChaosStore::Etcd(c) => etcd_claims(&c.lock().endpoints(), 2000),
        }
    }

    /// Every 5 s: lost replies and NotLeader answers, or an etcd member killed (if all run).
    fn small_fault(&self, rng: &mut Lcg, f: &mut Injected, restarts: &mut Vec<(Instant, Restart)>) {
        match self {
            ChaosStore::StandIn(s) => {
                s.faults().drop_reply_after_apply(3);
                s.faults().not_leader(5);
                f.lost_replies += 3;
                f.not_leaders += 5;
            }
            ChaosStore::Etcd(c) => {
                let mut c = c.lock();
                if (0..c.len()).all(|i| c.pid(i).is_some()) {
                    let i = rng.next(c.len());
                    c.kill(i);
                    f.member_kills += 1;
                    restarts.push((Instant::now() + Duration::from_secs(2), Restart::Member(i)));
                }
            }
        }
    }

    /// Every 20 s: the store freezes for 0.8 s, or etcd loses its quorum for 1.5 s (every member
    /// but one killed; a member already down from [`Self::small_fault`] stays down).
    fn big_fault(&self, f: &mut Injected, restarts: &mut Vec<(Instant, Restart)>) {
        match self {
            ChaosStore::StandIn(s) => {
                s.faults().freeze_store(true);
                std::thread::sleep(Duration::from_millis(800));
                s.faults().freeze_store(false);
                f.store_freezes += 1;
            }
            ChaosStore::Etcd(c) => {
                let mut c = c.lock();
                let up: Vec<usize> = (0..c.len()).filter(|i| c.pid(*i).is_some()).collect();
                // One member left running: no quorum until the others are back.
                for &i in up.iter().skip(1) {
                    c.kill(i);
                    restarts.push((Instant::now() + Duration::from_millis(1500), Restart::Member(i)));
                }
                f.quorum_losses += 1;
            }
        }
    }

    fn restart_member(&self, i: usize) {
        if let ChaosStore::Etcd(c) = self {
            c.lock().restart(i);
        }
    }
}

fn now_ms() -> u64 {
    exclave_signer::clock::now_ms()
}

fn suri(v: usize) -> String {
    format!("//chaos//{v}")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// The `[lease]` table: one group per validator (a signer holds every validator's keys).
fn lease_table(validators: usize) -> LeaseConfig {
    let groups = (0..validators)
        .map(|v| {
            let k = ValidatorKeys::from_suri(&suri(v));
            LeaseGroup {
                name: format!("v{v}"),
                keys: vec![format!("0x{}", hex::encode(k.babe.0)), format!("0x{}", hex::encode(k.gran.0))],
                nodes: vec![format!("v{v}-a"), format!("v{v}-b")],
            }
        })
        .collect();
    LeaseConfig { duration_ms: 5 * SLOT_MS, renew_ms: SLOT_MS, groups, ..LeaseConfig::default() }
}

struct SignerSlot {
    config: std::path::PathBuf,
    rpc: std::net::SocketAddr,
    process: Mutex<Option<Signer>>,
}

fn start_signers(dir: &Path, plan: &Plan, claims: &ClaimsConfig) -> Vec<Arc<SignerSlot>> {
    let keystore = dir.join("keystore");
    for v in 0..plan.validators {
        for kt in ["babe", "gran", "imon"] {
            import_key(&keystore, kt, &suri(v));
        }
    }
    (0..SIGNERS)
        .map(|i| {
            let id = format!("signer-{i}");
            // The last signer runs without the lease: it stands for a lease that fails (clocks
            // apart, a partition), so both nodes of a validator get through and the claims alone
            // must keep every duty to one signature.
            let lease =
                if i + 1 == SIGNERS { LeaseConfig { enabled: false, ..LeaseConfig::default() } } else { lease_table(plan.validators) };
            let cfg = TestConfig::new(dir, &id).claims(claims.clone()).lease(lease).own_log().port(free_port()).slots(SLOT_MS, 30);
            let slot = Arc::new(SignerSlot { config: cfg.write(), rpc: cfg.0.listen.address, process: Mutex::new(None) });
            slot.start(dir);
            slot
        })
        .collect()
}

impl SignerSlot {
    fn start(&self, dir: &Path) {
        let s = Signer::spawn(&["serve".into(), "--config".into(), self.config.display().to_string()], dir);
        *self.process.lock() = Some(s);
    }

    fn url(&self) -> String {
        format!("https://{}", self.rpc)
    }
}

/// One simulated node and the knobs the fault scheduler turns.
struct NodeSlot {
    spec: Mutex<NodeSpec>,
    node: RwLock<Option<SimNode>>,
    clock_offset_slots: AtomicI64,
    duplicate_next: AtomicBool,
    reorder_next: AtomicBool,
    generation: AtomicU64,
}

struct Stats {
    slots_run: AtomicU64,
    slot_busy_ms: AtomicU64,
    refused: AtomicU64,
    failed: AtomicU64,
}

fn node_loop(n: &NodeSlot, judge: &Judge, stats: &Stats, stop: &AtomicBool) {
    let mut last = 0;
    while !stop.load(Ordering::Relaxed) {
        let now = now_ms() as i64 + n.clock_offset_slots.load(Ordering::Relaxed) * SLOT_MS as i64;
        let slot = (now.max(0) as u64) / SLOT_MS;
        if slot != last {
            last = slot;
            let guard = n.node.read();
            if let Some(node) = guard.as_ref() {
                let mut slots = vec![slot];
                if n.duplicate_next.swap(false, Ordering::Relaxed) {
                    slots.push(slot);
                }
                if n.reorder_next.swap(false, Ordering::Relaxed) {
                    slots.push(slot.saturating_sub(3));
                }
                for s in slots {
                    let t = Instant::now();
                    let r = node.run_slot(s, judge);
                    stats.slot_busy_ms.fetch_add(t.elapsed().as_millis() as u64, Ordering::Relaxed);
                    stats.slots_run.fetch_add(1, Ordering::Relaxed);
                    stats.refused.fetch_add(u64::from(r.refused), Ordering::Relaxed);
                    stats.failed.fetch_add(u64::from(r.failed), Ordering::Relaxed);
                }
            }
        }
        let next = (now_ms() / SLOT_MS + 1) * SLOT_MS;
        std::thread::sleep(Duration::from_millis(next.saturating_sub(now_ms()).max(1)));
    }
}

/// Stops the node threads when the scheduler ends, also by a panic.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// A deterministic pseudo-random sequence (no seed file to keep: the faults are a schedule).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

#[derive(Default, Debug)]
struct Injected {
    signer_kills: u32,
    node_kills: u32,
    lost_replies: u32,
    not_leaders: u32,
    store_freezes: u32,
    /// Single etcd members killed (quorum losses not counted here).
    member_kills: u32,
    /// Times every etcd member but one was down.
    quorum_losses: u32,
    clock_jumps: u32,
    duplicates: u32,
    reorders: u32,
}

fn inject(
    tick: u64,
    rng: &mut Lcg,
    signers: &[Arc<SignerSlot>],
    nodes: &[Arc<NodeSlot>],
    store: &ChaosStore,
    f: &mut Injected,
    restarts: &mut Vec<(Instant, Restart)>,
) {
    match tick % 10 {
        0 => {
            let s = &signers[rng.next(signers.len())];
            if let Some(mut p) = s.process.lock().take() {
                p.kill9();
                f.signer_kills += 1;
                restarts.push((Instant::now() + Duration::from_secs(2), Restart::Signer(s.clone())));
            }
        }
        2 | 7 => {
            let n = &nodes[rng.next(nodes.len())];
            // Not while the node is inside a request (a GRANDPA vote is retried for up to 30 s
            // while no store answers): the scheduler must not wait, or the store members and
            // signers it is to restart stay down.
            if n.node.try_write().and_then(|mut node| node.take()).is_some() {
                f.node_kills += 1;
                restarts.push((Instant::now() + Duration::from_millis(1500), Restart::Node(n.clone())));
            }
        }
        3 => store.small_fault(rng, f, restarts),
        5 if tick % 40 == 5 => store.big_fault(f, restarts),
        6 => {
            let n = &nodes[rng.next(nodes.len())];
            let jump = [-4i64, -1, 2, 40][rng.next(4)];
            n.clock_offset_slots.store(jump, Ordering::Relaxed);
            f.clock_jumps += 1;
            restarts.push((Instant::now() + Duration::from_millis(1000), Restart::Clock(n.clone())));
        }
        _ => {
            for _ in 0..3 {
                nodes[rng.next(nodes.len())].duplicate_next.store(true, Ordering::Relaxed);
                nodes[rng.next(nodes.len())].reorder_next.store(true, Ordering::Relaxed);
                f.duplicates += 1;
                f.reorders += 1;
            }
        }
    }
}

enum Restart {
    Signer(Arc<SignerSlot>),
    Node(Arc<NodeSlot>),
    Clock(Arc<NodeSlot>),
    /// An etcd member.
    Member(usize),
}

fn due_restarts(dir: &Path, store: &ChaosStore, restarts: &mut Vec<(Instant, Restart)>) {
    let now = Instant::now();
    let (due, later): (Vec<_>, Vec<_>) = std::mem::take(restarts).into_iter().partition(|(t, _)| *t <= now);
    *restarts = later;
    for (_, r) in due {
        match r {
            Restart::Signer(s) => s.start(dir),
            Restart::Node(n) => {
                // A restarted node builds different blocks and votes (another parent, a later view).
                let g = n.generation.fetch_add(1, Ordering::Relaxed) + 1;
                let mut spec = n.spec.lock().clone();
                spec.salt = spec.salt.wrapping_add((g as u8).wrapping_mul(16));
                *n.node.write() = Some(SimNode::start(spec).expect("restart node"));
            }
            Restart::Clock(n) => n.clock_offset_slots.store(0, Ordering::Relaxed),
            Restart::Member(i) => store.restart_member(i),
        }
    }
}

fn chaos(plan: Plan) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let store = ChaosStore::start(plan.store, &rt);
    let dir = tempfile::tempdir().expect("tempdir");
    let names: Vec<String> = (0..plan.validators).flat_map(|v| [format!("v{v}-a"), format!("v{v}-b")]).collect();
    let pki = DevPki::ensure_with_nodes(dir.path(), &names.iter().map(String::as_str).collect::<Vec<_>>()).expect("pki");
    let signers = start_signers(dir.path(), &plan, &store.claims());
    let urls: Vec<String> = signers.iter().map(|s| s.url()).collect();
    let nodes: Vec<Arc<NodeSlot>> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let (cert, key) = pki.node_files(name);
            let mut urls = urls.clone();
            urls.rotate_left(i % SIGNERS);
            let spec = NodeSpec {
                name: name.clone(),
                urls,
                tls: TlsFiles { ca: pki.ca.clone(), cert, key },
                chain: CHAIN,
                timeout: Duration::from_millis(700),
                salt: (i % 2) as u8 + 1,
                validator: i / 2,
                keys: ValidatorKeys::from_suri(&suri(i / 2)),
                session_slots: 50,
                store_id: None,
            };
            let node = SimNode::start(spec.clone()).expect("node");
            Arc::new(NodeSlot {
                spec: Mutex::new(spec),
                node: RwLock::new(Some(node)),
                clock_offset_slots: AtomicI64::new(0),
                duplicate_next: AtomicBool::new(false),
                reorder_next: AtomicBool::new(false),
                generation: AtomicU64::new(0),
            })
        })
        .collect();
    let judge = Judge::default();
    let stats =
        Stats { slots_run: AtomicU64::new(0), slot_busy_ms: AtomicU64::new(0), refused: AtomicU64::new(0), failed: AtomicU64::new(0) };
    let stop = AtomicBool::new(false);
    let started = Instant::now();
    let first_slot = now_ms() / SLOT_MS;
    let mut injected = Injected::default();
    std::thread::scope(|s| {
        for n in &nodes {
            let (judge, stats, stop) = (&judge, &stats, &stop);
            s.spawn(move || node_loop(n, judge, stats, stop));
        }
        let _stop_on_exit = StopOnDrop(&stop);
        let mut rng = Lcg(0x5eed);
        let mut restarts = Vec::new();
        let mut tick = 0u64;
        let mut last_report = Instant::now();
        let mut next_check = CHECKPOINT_EVERY;
        while judge.duties() < plan.duties && started.elapsed() < plan.max_time {
            std::thread::sleep(Duration::from_millis(500));
            tick += 1;
            inject(tick, &mut rng, &signers, &nodes, &store, &mut injected, &mut restarts);
            due_restarts(dir.path(), &store, &mut restarts);
            if last_report.elapsed() > Duration::from_secs(10) {
                eprintln!("chaos: {:>7} duties signed after {:>4.0} s", judge.duties(), started.elapsed().as_secs_f64());
                last_report = Instant::now();
            }
            if judge.duties() >= next_check {
                // A checkpoint of the judge's verdict, so a long run stopped early still says
                // what it had proven.
                let f = judge.findings();
                eprintln!(
                    "chaos: checkpoint at {} duties ({:.0} s): {} signatures, {} pairs checked, {} equivocations, {} duties with more than one signature",
                    f.duties,
                    started.elapsed().as_secs_f64(),
                    f.signatures,
                    f.pairs_checked,
                    f.equivocations.len(),
                    f.duties - f.exactly_one
                );
                next_check += CHECKPOINT_EVERY;
            }
        }
    });
    let elapsed = started.elapsed();
    let last_slot = now_ms() / SLOT_MS;
    let f = judge.findings();
    let (sealed_share, longest_gap) = liveness(&judge, plan.validators, first_slot + 10, last_slot.saturating_sub(2));
    eprintln!(
        "chaos: {} validators x 2 nodes, {SIGNERS} signers on {}, {SLOT_MS} ms slots, {:.0} s\n  duties signed {} ({:.0}/s), signatures received {}, duties with exactly one signature {} ({:.4}%)\n  pairs of different signatures checked {}, equivocations {}\n  slots sealed {:.2}%, longest run of unsealed slots {} ({} ms)\n  node slots run {} (mean {:.1} ms each), refusals {}, failures {}\n  faults: {:?}",
        plan.validators,
        store.name(),
        elapsed.as_secs_f64(),
        f.duties,
        f.duties as f64 / elapsed.as_secs_f64(),
        f.signatures,
        f.exactly_one,
        100.0 * f.exactly_one as f64 / f.duties.max(1) as f64,
        f.pairs_checked,
        f.equivocations.len(),
        100.0 * sealed_share,
        longest_gap,
        longest_gap * SLOT_MS,
        stats.slots_run.load(Ordering::Relaxed),
        stats.slot_busy_ms.load(Ordering::Relaxed) as f64 / stats.slots_run.load(Ordering::Relaxed).max(1) as f64,
        stats.refused.load(Ordering::Relaxed),
        stats.failed.load(Ordering::Relaxed),
        injected,
    );
    assert!(f.equivocations.is_empty(), "equivocations: {:#?}", f.equivocations);
    assert_eq!(f.exactly_one, f.duties, "every duty's signatures are one and the same");
    assert!(f.duties >= plan.duties, "only {} duties signed in {elapsed:?}", f.duties);
    let store_faults = match store {
        ChaosStore::StandIn(_) => injected.lost_replies > 0 && injected.store_freezes > 0,
        ChaosStore::Etcd(_) => injected.member_kills > 0 && injected.quorum_losses > 0,
    };
    assert!(injected.signer_kills > 0 && injected.node_kills > 0 && store_faults && injected.clock_jumps > 0, "{injected:?}");
}

/// The share of slots in `[from, to]` sealed by each validator, and the longest run of unsealed
/// slots of any validator.
fn liveness(judge: &Judge, validators: usize, from: u64, to: u64) -> (f64, u64) {
    let (mut sealed, mut longest) = (0u64, 0u64);
    for v in 0..validators {
        let slots: std::collections::BTreeSet<u64> = judge.sealed_slots(v).into_iter().filter(|s| (from..=to).contains(s)).collect();
        sealed += slots.len() as u64;
        let mut prev = from.saturating_sub(1);
        for s in slots.iter().chain(std::iter::once(&(to + 1))) {
            longest = longest.max(s - prev - 1);
            prev = *s;
        }
    }
    let total = (to.saturating_sub(from) + 1) * validators as u64;
    (sealed as f64 / total.max(1) as f64, longest)
}

#[test]
fn chaos_ci() {
    let duties = std::env::var("CHAOS_CI_DUTIES").ok().and_then(|d| d.parse().ok()).unwrap_or(20_000);
    chaos(Plan { store: StoreKind::StandIn, validators: 6, duties, max_time: Duration::from_secs(240) });
}

#[test]
fn chaos_etcd_ci() {
    let duties = std::env::var("CHAOS_ETCD_CI_DUTIES").ok().and_then(|d| d.parse().ok()).unwrap_or(10_000);
    chaos(Plan { store: StoreKind::Etcd, validators: 6, duties, max_time: Duration::from_secs(240) });
}

#[test]
#[ignore = "long mode: scripts/chaos-long.sh (CHAOS_DUTIES, default 1,000,000)"]
fn chaos_long() {
    let duties = std::env::var("CHAOS_DUTIES").ok().and_then(|d| d.parse().ok()).unwrap_or(1_000_000);
    let validators = std::env::var("CHAOS_VALIDATORS").ok().and_then(|d| d.parse().ok()).unwrap_or(12);
    let store = if std::env::var("CHAOS_STORE").as_deref() == Ok("etcd") { StoreKind::Etcd } else { StoreKind::StandIn };
    chaos(Plan { store, validators, duties, max_time: Duration::from_secs(6 * 3600) });
}
