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

use crate::common::{netns::Host, *};
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

pub(crate) const SLOT_MS: u64 = 100;
const SIGNERS: usize = 3;
/// The judge checks every pair this often (in duties) during a run, and at the end.
const CHECKPOINT_EVERY: usize = 100_000;

pub(crate) struct Plan {
    pub store: StoreKind,
    pub validators: usize,
    pub duties: usize,
    pub max_time: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum StoreKind {
    StandIn,
    Etcd,
}

/// The claim store the signers share, and its faults.
pub(crate) enum ChaosStore {
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
            ChaosStore::Etcd(c) if c.lock().endpoints()[0].contains("127.0.0.1") => "a 3-member etcd",
            ChaosStore::Etcd(_) => "a 3-member etcd, each member and signer a test host of its own",
        }
    }

    fn claims(&self) -> ClaimsConfig {
        match self {
            ChaosStore::StandIn(s) => standin_claims(&s.pd_endpoint(), 2000),
            ChaosStore::Etcd(c) => {
                let mut claims = etcd_claims(&c.lock().endpoints(), 2000);
                // Test hosts on a bridge of the test's own: a private network.
                claims.insecure_plaintext_etcd = !claims.endpoints[0].contains("127.0.0.1");
                claims
            }
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

pub(crate) struct SignerSlot {
    config: std::path::PathBuf,
    /// The address it listens on.
    rpc: std::net::SocketAddr,
    /// A command prefix the signer runs under (`ip netns exec <ns>`), or none.
    wrapper: Vec<String>,
    process: Mutex<Option<Signer>>,
}

/// Where the signers run and how each node reaches them.
pub(crate) enum Placement {
    /// On 127.0.0.1, free ports; every node reaches signer `j` at the same URL.
    Loopback,
    /// Signer `j` in test host `hosts[j]`, listening on port 8443 of all its addresses; node `i`
    /// reaches it at `hosts[j].addrs[1 + i]` (an address of its own, so one node can be cut
    /// from one signer).
    Hosts(Vec<Host>),
}

impl Placement {
    fn listen(&self) -> std::net::SocketAddr {
        match self {
            Placement::Loopback => std::net::SocketAddr::from(([127, 0, 0, 1], free_port())),
            Placement::Hosts(_) => std::net::SocketAddr::from(([0, 0, 0, 0], 8443)),
        }
    }

    fn wrapper(&self, j: usize) -> Vec<String> {
        match self {
            Placement::Loopback => Vec::new(),
            Placement::Hosts(hosts) => hosts[j].exec_prefix(),
        }
    }

    /// The server certificate's extra names: every address of every host.
    fn server_names(&self) -> Vec<String> {
        match self {
            Placement::Loopback => Vec::new(),
            Placement::Hosts(hosts) => hosts.iter().flat_map(|h| h.addrs.iter().map(|a| a.to_string())).collect(),
        }
    }

    /// Node `i`'s URL of signer `j`.
    fn url(&self, signers: &[Arc<SignerSlot>], i: usize, j: usize) -> String {
        match self {
            Placement::Loopback => format!("https://{}", signers[j].rpc),
            Placement::Hosts(hosts) => format!("https://{}:8443", hosts[j].addrs[1 + i]),
        }
    }
}

fn start_signers(dir: &Path, plan: &Plan, claims: &ClaimsConfig, placement: &Placement) -> Vec<Arc<SignerSlot>> {
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
            let mut cfg = TestConfig::new(dir, &id).claims(claims.clone()).lease(lease).own_log().slots(SLOT_MS, 30);
            cfg.0.listen.address = placement.listen();
            let slot = Arc::new(SignerSlot {
                config: cfg.write(),
                rpc: cfg.0.listen.address,
                wrapper: placement.wrapper(i),
                process: Mutex::new(None),
            });
            slot.start(dir);
            slot
        })
        .collect()
}

impl SignerSlot {
    fn start(&self, dir: &Path) {
        let args = ["serve".into(), "--config".into(), self.config.display().to_string()];
        let s = if self.wrapper.is_empty() {
            Signer::spawn(&args, dir)
        } else {
            Signer::spawn_under(&self.wrapper.iter().map(String::as_str).collect::<Vec<_>>(), &args, dir)
        };
        *self.process.lock() = Some(s);
    }
}

/// One simulated node and the knobs the fault scheduler turns.
pub(crate) struct NodeSlot {
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
pub(crate) struct Lcg(pub u64);

impl Lcg {
    pub fn next(&mut self, n: usize) -> usize {
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
            duplicate_and_reorder(rng, nodes);
            f.duplicates += 3;
            f.reorders += 3;
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

/// What the harness hands a fault scheduler on each tick (every 500 ms).
pub(crate) struct Ctx<'a> {
    pub dir: &'a Path,
    pub signers: &'a [Arc<SignerSlot>],
    pub nodes: &'a [Arc<NodeSlot>],
    pub store: &'a ChaosStore,
    pub judge: &'a Judge,
    pub started: Instant,
}

impl Ctx<'_> {
    /// The current slot (the nodes' clock without their jumps).
    pub fn slot(&self) -> u64 {
        now_ms() / SLOT_MS
    }
}

/// Injects faults while the nodes run, and says when the run is over.
pub(crate) trait Scheduler {
    /// Called every 500 ms.
    fn tick(&mut self, tick: u64, ctx: &Ctx);
    /// Whether the run is over.
    fn done(&self, ctx: &Ctx) -> bool;
    /// What was injected, for the summary.
    fn injected(&self) -> String;
    /// Whether every kind of fault the run is about was injected at least once.
    fn covered(&self) -> bool;
}

/// The random schedule of `chaos_ci`, `chaos_etcd_ci` and `chaos_long`: kills, store faults,
/// clock jumps, duplicates and reorders, until `duties` are signed or `max_time` passes.
struct RandomFaults {
    duties: usize,
    max_time: Duration,
    rng: Lcg,
    injected: Injected,
    restarts: Vec<(Instant, Restart)>,
}

impl Scheduler for RandomFaults {
    fn tick(&mut self, tick: u64, ctx: &Ctx) {
        inject(tick, &mut self.rng, ctx.signers, ctx.nodes, ctx.store, &mut self.injected, &mut self.restarts);
        due_restarts(ctx.dir, ctx.store, &mut self.restarts);
    }

    fn done(&self, ctx: &Ctx) -> bool {
        ctx.judge.duties() >= self.duties || ctx.started.elapsed() >= self.max_time
    }

    fn injected(&self) -> String {
        format!("{:?}", self.injected)
    }

    fn covered(&self) -> bool {
        let f = &self.injected;
        f.signer_kills > 0
            && f.node_kills > 0
            && f.clock_jumps > 0
            && (f.lost_replies > 0 && f.store_freezes > 0 || f.member_kills > 0 && f.quorum_losses > 0)
    }
}

/// Duplicated and reordered requests on three random nodes (the load every schedule keeps up).
pub(crate) fn duplicate_and_reorder(rng: &mut Lcg, nodes: &[Arc<NodeSlot>]) {
    for _ in 0..3 {
        nodes[rng.next(nodes.len())].duplicate_next.store(true, Ordering::Relaxed);
        nodes[rng.next(nodes.len())].reorder_next.store(true, Ordering::Relaxed);
    }
}

fn chaos(plan: Plan) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let store = ChaosStore::start(plan.store, &rt);
    let scheduler = RandomFaults {
        duties: plan.duties,
        max_time: plan.max_time,
        rng: Lcg(0x5eed),
        injected: Injected::default(),
        restarts: Vec::new(),
    };
    let f = run(&plan, &store, &Placement::Loopback, scheduler);
    assert!(f.duties >= plan.duties, "only {} duties signed", f.duties);
}

fn new_node(name: &str, i: usize, urls: Vec<String>, pki: &DevPki) -> Arc<NodeSlot> {
    let (cert, key) = pki.node_files(name);
    let spec = NodeSpec {
        name: name.to_string(),
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
}

/// Start the signers (placed by `placement`) on `store` and two nodes per validator, run them
/// under `scheduler` until it is done, print the summary, and assert that no duty got two
/// different signatures and that the scheduler covered its faults.
pub(crate) fn run(plan: &Plan, store: &ChaosStore, placement: &Placement, mut scheduler: impl Scheduler) -> exclave_sim::judge::Findings {
    let dir = tempfile::tempdir().expect("tempdir");
    let names: Vec<String> = (0..plan.validators).flat_map(|v| [format!("v{v}-a"), format!("v{v}-b")]).collect();
    let node_names: Vec<&str> = names.iter().map(String::as_str).collect();
    let pki = DevPki::ensure_with_nodes_at(dir.path(), &node_names, &placement.server_names()).expect("pki");
    let signers = start_signers(dir.path(), plan, &store.claims(), placement);
    let nodes: Vec<Arc<NodeSlot>> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let mut order: Vec<usize> = (0..SIGNERS).collect();
            order.rotate_left(i % SIGNERS);
            new_node(name, i, order.into_iter().map(|j| placement.url(&signers, i, j)).collect(), &pki)
        })
        .collect();
    let judge = Judge::default();
    let stats =
        Stats { slots_run: AtomicU64::new(0), slot_busy_ms: AtomicU64::new(0), refused: AtomicU64::new(0), failed: AtomicU64::new(0) };
    let stop = AtomicBool::new(false);
    let started = Instant::now();
    let first_slot = now_ms() / SLOT_MS;
    let ctx = Ctx { dir: dir.path(), signers: &signers, nodes: &nodes, store, judge: &judge, started };
    std::thread::scope(|s| {
        for n in &nodes {
            let (judge, stats, stop) = (&judge, &stats, &stop);
            s.spawn(move || node_loop(n, judge, stats, stop));
        }
        let _stop_on_exit = StopOnDrop(&stop);
        let mut tick = 0u64;
        let mut last_report = Instant::now();
        let mut next_check = CHECKPOINT_EVERY;
        while !scheduler.done(&ctx) {
            std::thread::sleep(Duration::from_millis(500));
            tick += 1;
            scheduler.tick(tick, &ctx);
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
        "chaos: {} validators x 2 nodes, {SIGNERS} signers on {}, {SLOT_MS} ms slots, {:.0} s\n  duties signed {} ({:.0}/s), signatures received {}, duties with exactly one signature {} ({:.4}%)\n  pairs of different signatures checked {}, equivocations {}\n  slots sealed {:.2}%, longest run of unsealed slots {} ({} ms)\n  node slots run {} (mean {:.1} ms each), refusals {}, failures {}\n  faults: {}",
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
        scheduler.injected(),
    );
    assert!(f.equivocations.is_empty(), "equivocations: {:#?}", f.equivocations);
    assert_eq!(f.exactly_one, f.duties, "every duty's signatures are one and the same");
    assert!(scheduler.covered(), "not every fault was injected: {}", scheduler.injected());
    f
}

/// The share of slots in `[from, to]` sealed by each validator, and the longest run of unsealed
/// slots of any validator.
pub(crate) fn liveness(judge: &Judge, validators: usize, from: u64, to: u64) -> (f64, u64) {
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
