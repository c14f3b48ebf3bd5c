//! The TiKV backend against the TiKV **wire-protocol stand-in** (`exclave-tikv-protocol-standin`:
//! a loopback gRPC server speaking PD's and TiKV's protocol over an in-memory map, NOT TiKV),
//! driven by the real `tikv-client`; and the same conformance suite against a **real TiKV
//! cluster** when `TIKV_PD_ADDRS` is set (`scripts/tikv-real-cluster.sh`). Without it those
//! tests are `#[ignore]`d, which nextest reports as skipped.
//!
//! The fault tests use the stand-in's switches (a real cluster has none) and check what the
//! signer relies on: never two winners for one key, a lost reply recognised as ours, and every
//! call answered within its deadline, whatever the store does.

use async_trait::async_trait;
use exclave_claims::{
    conformance::{
        self,
        engine::{assert_one_winner, claim_like_engine, key, stream, wait_for, Engine},
        Harness,
    },
    tikv::{TikvConfig, TikvStore},
    ClaimOutcome, ClaimStore, WithDeadline,
};
use exclave_tikv_protocol_standin::StandIn;
use std::{
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

/// The signer's default store deadline.
const DEADLINE: Duration = Duration::from_secs(2);
/// Scheduling slack on a busy 2-core machine, on top of the deadline.
const MARGIN: Duration = Duration::from_millis(500);

type Store = WithDeadline<TikvStore>;

fn open(config: TikvConfig) -> Store {
    let started = Instant::now();
    let store = TikvStore::new(&config).expect("config");
    assert!(started.elapsed() < Duration::from_millis(100), "preparing the store blocked");
    WithDeadline::new(store, DEADLINE)
}

struct OnStandIn {
    standin: StandIn,
}

impl OnStandIn {
    async fn start() -> Self {
        Self { standin: StandIn::start().await.expect("stand-in") }
    }

    fn config(&self) -> TikvConfig {
        let mut config = TikvConfig::new([self.standin.pd_endpoint()]);
        config.keyspace = Some("exclave".into());
        config
    }
}

#[async_trait]
impl Harness for OnStandIn {
    type Store = Store;

    async fn open(&self) -> Store {
        open(self.config())
    }
}

/// A real cluster: PD endpoints from `TIKV_PD_ADDRS` (comma-separated), keyspace from
/// `TIKV_KEYSPACE` (optional; API v1 raw keys without it).
struct RealCluster {
    config: TikvConfig,
}

impl RealCluster {
    fn from_env() -> Self {
        let addrs =
            std::env::var("TIKV_PD_ADDRS").expect("TIKV_PD_ADDRS must name the PD endpoints of a real TiKV cluster to run these tests");
        let mut config = TikvConfig::new(addrs.split(',').map(str::trim).filter(|a| !a.is_empty()));
        config.keyspace = std::env::var("TIKV_KEYSPACE").ok();
        Self { config }
    }
}

#[async_trait]
impl Harness for RealCluster {
    type Store = Store;

    async fn open(&self) -> Store {
        open(self.config.clone())
    }
}

mod standin {
    use super::OnStandIn;
    exclave_claims::conformance_tests!(OnStandIn::start().await);
}

mod real_cluster {
    use super::RealCluster;
    exclave_claims::conformance_tests!(
        ignore = "needs a real TiKV cluster: set TIKV_PD_ADDRS and run scripts/tikv-real-cluster.sh",
        RealCluster::from_env()
    );
}

/// NotLeader answers are retried inside the call: the claim is inserted, well within the deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_leader_is_retried() {
    let h = OnStandIn::start().await;
    let store = h.open().await;
    store.ping().await.expect("ping");
    h.standin.faults().not_leader(3);
    let mine = conformance::record("a", b"one");
    let (verdict, took) = claim_like_engine(&store, &key(1, 1), &mine).await;
    eprintln!("not_leader_is_retried: 3 NotLeader answers, claim decided in {took:?}");
    assert_eq!(verdict, Engine::Inserted);
    assert!(took < DEADLINE, "took {took:?}");
}

/// The claim is applied and its reply lost: the client's retry finds our own record, which the
/// store returns as `Existing(ours)`, i.e. same-data: the signer returns the same signature.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_reply_is_recognised_as_ours() {
    let h = OnStandIn::start().await;
    let store = h.open().await;
    store.ping().await.expect("ping");
    h.standin.faults().drop_reply_after_apply(1);
    let mine = conformance::record("a", b"one");
    let out = store.claim(&key(1, 1), &mine).await.expect("claim");
    assert_eq!(out, ClaimOutcome::Existing(mine.clone()));
    assert_eq!(claim_like_engine(&store, &key(1, 1), &mine).await.0, Engine::Ours);
    assert_eq!(h.standin.faults().cas_calls(), 3, "the applied attempt, the client's retry, the second claim");
    let other = conformance::record("b", b"two");
    assert_eq!(claim_like_engine(&store, &key(1, 1), &other).await.0, Engine::Lost(mine));
}

/// A frozen store: every claim is refused (unavailable, after a failed re-read) within the
/// deadline and nothing is stored; after the thaw claims succeed again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_store_refuses_within_deadline_then_resumes() {
    let h = OnStandIn::start().await;
    let store = h.open().await;
    store.ping().await.expect("ping");
    h.standin.faults().freeze_store(true);
    let mut slowest = Duration::ZERO;
    for round in 0..3 {
        let (verdict, took) = claim_like_engine(&store, &key(1, round), &conformance::record("a", b"x")).await;
        assert_eq!(verdict, Engine::Unavailable, "round {round}");
        // The claim and its re-read are each bounded by the deadline.
        assert!(took < 2 * DEADLINE + MARGIN, "round {round} took {took:?}");
        slowest = slowest.max(took);
    }
    assert!(h.standin.is_empty(), "a frozen store applied a claim");
    h.standin.faults().freeze_store(false);
    let thawed = Instant::now();
    let (verdict, took) = claim_like_engine(&store, &key(1, 0), &conformance::record("a", b"x")).await;
    eprintln!(
        "frozen_store: claim + re-read refused after at most {slowest:?}; first claim after the thaw: {verdict:?} in {took:?} ({:?} after the thaw)",
        thawed.elapsed()
    );
    assert_eq!(verdict, Engine::Inserted);
}

/// PD frozen before the store is first used: preparing the store does not block, every call
/// fails within the deadline; after the thaw the store recovers by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_pd_at_start_then_recovers() {
    let h = OnStandIn::start().await;
    h.standin.faults().freeze_pd(true);
    let store = h.open().await;
    for _ in 0..2 {
        let started = Instant::now();
        assert!(store.ping().await.is_err(), "ping answered with PD frozen");
        assert!(started.elapsed() < DEADLINE + MARGIN, "ping took {:?}", started.elapsed());
    }
    let (verdict, took) = claim_like_engine(&store, &key(1, 1), &conformance::record("a", b"x")).await;
    assert_eq!(verdict, Engine::Unavailable);
    assert!(took < 2 * DEADLINE + MARGIN, "claim took {took:?}");
    h.standin.faults().freeze_pd(false);
    let thawed = Instant::now();
    while store.ping().await.is_err() {
        assert!(thawed.elapsed() < Duration::from_secs(15), "no recovery 15 s after PD thawed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("frozen_pd: store answered {:?} after PD thawed", thawed.elapsed());
    assert_eq!(claim_like_engine(&store, &key(1, 1), &conformance::record("a", b"x")).await.0, Engine::Inserted);
}

/// Two claimers (two clients, as two signers) race for the same rounds while the stand-in
/// answers NotLeader, drops replies after applying and freezes for a moment, over and over:
/// never two winners, every win stored, claims go on after each fault.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_claimers_under_faults_never_win_twice() {
    let h = OnStandIn::start().await;
    let (stop, done) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)));
    let mut tasks = Vec::new();
    for me in ["signer-a", "signer-b"] {
        let store = h.open().await;
        tasks.push((me.to_string(), tokio::spawn(stream(store, me.into(), 1, stop.clone(), done.clone()))));
    }
    for cycle in 0..6u32 {
        wait_for(&done, 200 * (cycle as usize + 1)).await;
        match cycle % 3 {
            0 => h.standin.faults().not_leader(5),
            1 => h.standin.faults().drop_reply_after_apply(5),
            _ => {
                h.standin.faults().freeze_store(true);
                tokio::time::sleep(Duration::from_millis(700)).await;
                h.standin.faults().freeze_store(false);
            }
        }
    }
    let before = done.load(Ordering::Relaxed);
    wait_for(&done, before + 200).await;
    stop.store(true, Ordering::Relaxed);
    let mut results = Vec::new();
    for (me, task) in tasks {
        results.push((me, task.await.expect("stream")));
    }
    let store = h.open().await;
    let orphans = assert_one_winner(&store, 1, &results).await;
    let claims: usize = results.iter().map(|(_, rows)| rows.len()).sum();
    let unavailable = results.iter().flat_map(|(_, r)| r).filter(|r| r.verdict == Engine::Unavailable).count();
    let slowest = results.iter().flat_map(|(_, r)| r).map(|r| r.took).max().unwrap_or_default();
    eprintln!(
        "racing_claimers_under_faults: {claims} claims by 2 clients, {unavailable} unavailable, slowest {slowest:?}, {orphans} orphans"
    );
    assert!(slowest < 2 * DEADLINE + MARGIN, "a claim took {slowest:?}");
    for (me, rows) in &results {
        let tail = &rows[rows.len().saturating_sub(50)..];
        assert!(tail.iter().all(|r| r.verdict != Engine::Unavailable), "{me}: claims did not recover");
    }
}
