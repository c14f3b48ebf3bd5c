//! Network partitions on real network namespaces, under the chaos load and the judge.
//!
//! The three etcd members and the three signers each run in a network namespace of their own
//! (a test host, `common::netns`), joined by veth links to one bridge; the simulated nodes run
//! in the test process and reach signer `j` at an address of their own on it, so one node can be
//! cut from one signer. Faults are nftables rules in the hosts' namespaces. One after the other,
//! each held for a while and then healed:
//!
//! - the etcd leader isolated (every packet on its link dropped);
//! - a 2/1 split, the leader and one signer on the minority side;
//! - a signer cut from every store member;
//! - every node `-a` cut from the signer it prefers;
//! - asymmetric loss: 30% of the packets the etcd leader sends, dropped at random;
//! - asymmetric loss: 30% of the packets one signer sends.
//!
//! Through all of it the nodes race for duties as in `chaos` (one signer without the lease,
//! duplicated and reordered requests), and every pair of signatures for one duty goes to
//! Substrate's equivocation checkers. Reported per fault: duties signed while it held, the share
//! of slots sealed and the longest run of unsealed slots (how long duties went unsigned); the
//! test asserts zero equivocations, that each fault's rules dropped packets (a rule that matched
//! nothing would prove nothing), and that duties were still signed while each fault held (every
//! fault leaves a quorum and a signer reachable).
//!
//! This kernel has no `sch_netem`, so fixed delays are not injected (see `common::netns`).
//! `partitions_ci` runs each fault once (about two minutes, in the default test command);
//! `partitions_long` (`scripts/partitions-long.sh`, `PARTITION_ROUNDS`, default 20, about 30
//! minutes) repeats the list. Needs root, iproute2 and nftables; the namespaces go away when the test ends, also when
//! it fails.

use crate::{
    chaos::{duplicate_and_reorder, liveness, run, ChaosStore, Ctx, Lcg, Plan, Scheduler, StoreKind, SLOT_MS},
    common::netns::{Fault, Host, Net},
};
use exclave_claims::etcd::local_cluster::LocalCluster;
use parking_lot::Mutex;
use std::time::{Duration, Instant};

const VALIDATORS: usize = 6;
const HOLD: Duration = Duration::from_secs(8);
const SETTLE: Duration = Duration::from_secs(5);

/// The test hosts.
#[derive(Clone)]
struct Hosts {
    members: Vec<Host>,
    signers: Vec<Host>,
}

impl Hosts {
    /// Make them: member `i` at `10.<net>.1.<1+i>`; signer `j` at `10.<net>.2.<1+j>` and, for
    /// node `n`, at `10.<net>.<10+j>.<1+n>`.
    fn new(net: &mut Net) -> Self {
        let members = (0..3u8).map(|i| net.host(&format!("m{i}"), &[net.addr(1, 1 + i)])).collect();
        let signers = (0..3u8)
            .map(|j| {
                let addrs: Vec<_> =
                    std::iter::once(net.addr(2, 1 + j)).chain((0..2 * VALIDATORS as u8).map(|n| net.addr(10 + j, 1 + n))).collect();
                net.host(&format!("s{j}"), &addrs)
            })
            .collect();
        Self { members, signers }
    }
}

/// The primary address of each host.
fn primaries<'a>(hosts: impl IntoIterator<Item = &'a Host>) -> Vec<std::net::Ipv4Addr> {
    hosts.into_iter().map(|h| h.addrs[0]).collect()
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    LeaderIsolated,
    SplitTwoOne,
    SignerCutFromStore,
    NodesCutFromASigner,
    LeaderSendLoss,
    SignerSendLoss,
}

const KINDS: [Kind; 6] = [
    Kind::LeaderIsolated,
    Kind::SplitTwoOne,
    Kind::SignerCutFromStore,
    Kind::NodesCutFromASigner,
    Kind::LeaderSendLoss,
    Kind::SignerSendLoss,
];

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::LeaderIsolated => "etcd leader isolated",
            Kind::SplitTwoOne => "2/1 split: the leader and signer-2 apart from 2 members, signer-0 and signer-1",
            Kind::SignerCutFromStore => "signer-0 cut from every etcd member",
            Kind::NodesCutFromASigner => "each -a node cut from the signer it prefers",
            Kind::LeaderSendLoss => "30% of what the etcd leader sends lost",
            Kind::SignerSendLoss => "30% of what signer-1 sends lost",
        }
    }

    /// The rules to put on which hosts, given the current leader.
    fn faults(self, hosts: &Hosts, leader: usize) -> Vec<(Host, Fault)> {
        let m = &hosts.members;
        let s = &hosts.signers;
        match self {
            Kind::LeaderIsolated => vec![(m[leader].clone(), Fault { isolate: true, ..Fault::default() })],
            Kind::SplitTwoOne => {
                let minority = vec![m[leader].clone(), s[2].clone()];
                let majority: Vec<Host> =
                    m.iter().enumerate().filter(|(i, _)| *i != leader).map(|(_, h)| h.clone()).chain(s[..2].iter().cloned()).collect();
                let cut = |side: &[Host], other: &[Host]| -> Vec<(Host, Fault)> {
                    side.iter().map(|h| (h.clone(), Fault { cut: primaries(other), ..Fault::default() })).collect()
                };
                [cut(&minority, &majority), cut(&majority, &minority)].concat()
            }
            Kind::SignerCutFromStore => vec![(s[0].clone(), Fault { cut: primaries(m), ..Fault::default() })],
            Kind::NodesCutFromASigner => {
                // Node n prefers signer n % 3 (its URLs are rotated by n); the -a nodes are even.
                let mut faults: Vec<(Host, Fault)> = s.iter().map(|h| (h.clone(), Fault::default())).collect();
                for n in (0..2 * VALIDATORS).step_by(2) {
                    let j = n % s.len();
                    faults[j].1.refuse_to.push(s[j].addrs[1 + n]);
                }
                faults
            }
            Kind::LeaderSendLoss => vec![(m[leader].clone(), Fault { lose_sent_percent: 30, ..Fault::default() })],
            Kind::SignerSendLoss => vec![(s[1].clone(), Fault { lose_sent_percent: 30, ..Fault::default() })],
        }
    }
}

/// What one fault did.
struct Report {
    kind: Kind,
    leader: usize,
    duties_held: usize,
    /// Packets the fault's rules dropped while it held.
    dropped: u64,
    sealed_share: f64,
    longest_gap_slots: u64,
    equivocations: usize,
}

enum Phase {
    WarmUp,
    Holding { since: Instant, from_slot: u64, duties: usize, leader: usize, hosts: Vec<Host> },
    Settling { since: Instant, from_slot: u64, duties_held: usize, dropped: u64, leader: usize },
    Done,
}

struct Partitions {
    hosts: Hosts,
    schedule: Vec<Kind>,
    next: usize,
    phase: Phase,
    reports: Vec<Report>,
    rng: Lcg,
    rt: tokio::runtime::Runtime,
    max_time: Duration,
}

impl Partitions {
    fn leader(&self, ctx: &Ctx) -> usize {
        let ChaosStore::Etcd(cluster) = ctx.store else { panic!("partitions run on etcd") };
        let cluster = cluster.lock();
        // Right after a heal the members may still be electing: ask again, for 10 s at most.
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(l)) = self.rt.block_on(async { tokio::time::timeout_at(deadline.into(), cluster.leader()).await }) {
                return l;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        panic!("no etcd leader known\n{}", cluster.logs())
    }
}

impl Scheduler for Partitions {
    fn tick(&mut self, _tick: u64, ctx: &Ctx) {
        duplicate_and_reorder(&mut self.rng, ctx.nodes);
        let now = Instant::now();
        self.phase = match std::mem::replace(&mut self.phase, Phase::WarmUp) {
            Phase::WarmUp if ctx.judge.duties() >= 300 || ctx.started.elapsed() > Duration::from_secs(20) => self.start_next(ctx),
            Phase::Holding { since, from_slot, duties, leader, hosts } if now - since >= HOLD => {
                // What the rules dropped: a fault that matched nothing would prove nothing.
                let dropped = hosts.iter().map(Host::dropped).sum();
                for h in &hosts {
                    h.heal();
                }
                let duties_held = ctx.judge.duties() - duties;
                let name = self.schedule[self.next - 1].name();
                eprintln!("partitions: healed {name} ({duties_held} duties signed, {dropped} packets dropped while it held)");
                Phase::Settling { since: now, from_slot, duties_held, dropped, leader }
            }
            Phase::Settling { since, from_slot, duties_held, dropped, leader } if now - since >= SETTLE => {
                let (sealed_share, longest_gap_slots) = liveness(ctx.judge, VALIDATORS, from_slot, ctx.slot().saturating_sub(2));
                self.reports.push(Report {
                    kind: self.schedule[self.next - 1],
                    leader,
                    duties_held,
                    dropped,
                    sealed_share,
                    longest_gap_slots,
                    equivocations: ctx.judge.findings().equivocations.len(),
                });
                self.start_next(ctx)
            }
            phase => phase,
        };
    }

    fn done(&self, ctx: &Ctx) -> bool {
        self.done_all() || ctx.started.elapsed() > self.max_time
    }

    fn injected(&self) -> String {
        let mut out = String::from(
            "\n  | fault | leader | packets dropped | duties signed while held | slots sealed | longest unsealed run | equivocations so far |",
        );
        for r in &self.reports {
            out += &format!(
                "\n  | {} | m{} | {} | {} | {:.1}% | {} slots ({} ms) | {} |",
                r.kind.name(),
                r.leader,
                r.dropped,
                r.duties_held,
                100.0 * r.sealed_share,
                r.longest_gap_slots,
                r.longest_gap_slots * SLOT_MS,
                r.equivocations
            );
        }
        out
    }

    fn covered(&self) -> bool {
        self.done_all() && self.reports.iter().all(|r| r.duties_held > 0 && r.dropped > 0)
    }
}

impl Partitions {
    fn done_all(&self) -> bool {
        self.reports.len() == self.schedule.len()
    }

    /// Put the next fault on (the phase it starts), or end (every fault reported).
    fn start_next(&mut self, ctx: &Ctx) -> Phase {
        let Some(kind) = self.schedule.get(self.next).copied() else { return Phase::Done };
        self.next += 1;
        let leader = self.leader(ctx);
        let faults = kind.faults(&self.hosts, leader);
        eprintln!("partitions: {} (leader m{leader}) after {:.0} s", kind.name(), ctx.started.elapsed().as_secs_f64());
        for (host, fault) in &faults {
            host.fault(fault);
        }
        let hosts = faults.into_iter().map(|(h, _)| h).collect();
        Phase::Holding { since: Instant::now(), from_slot: ctx.slot(), duties: ctx.judge.duties(), leader, hosts }
    }
}

fn partitions(rounds: usize) {
    let mut net = Net::new();
    let hosts = Hosts::new(&mut net);
    let members: Vec<(String, Vec<String>)> = hosts.members.iter().map(|h| (h.addrs[0].to_string(), h.exec_prefix())).collect();
    let store = ChaosStore::Etcd(Mutex::new(LocalCluster::start_on(&members)));
    let schedule: Vec<Kind> = (0..rounds).flat_map(|_| KINDS).collect();
    let max_time = Duration::from_secs(60) + (HOLD + SETTLE + Duration::from_secs(5)) * schedule.len() as u32;
    let plan = Plan { store: StoreKind::Etcd, validators: VALIDATORS, duties: 0, max_time };
    let scheduler = Partitions {
        hosts: hosts.clone(),
        schedule,
        next: 0,
        phase: Phase::WarmUp,
        reports: Vec::new(),
        rng: Lcg(0x9a47),
        rt: tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime"),
        max_time,
    };
    let placement = crate::chaos::Placement::Hosts(hosts.signers.clone());
    run(&plan, &store, &placement, scheduler);
    // The members stop before their namespaces go (with `net`, last).
    drop(store);
}

#[test]
fn partitions_ci() {
    partitions(1);
}

#[test]
#[ignore = "long mode: scripts/partitions-long.sh (PARTITION_ROUNDS, default 20)"]
fn partitions_long() {
    let rounds = std::env::var("PARTITION_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(20);
    partitions(rounds);
}
