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

/// With `[claims.tls]`, the TiKV client refuses what is not a TLS server of the configured CA: a
/// plaintext endpoint (the stand-in speaks plaintext gRPC) and a TLS server whose certificate
/// another CA signed. Every call fails within the deadline; nothing is claimed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_refuses_a_plaintext_or_wrong_ca_endpoint() {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = |name: &str| {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        (params.self_signed(&key).expect("CA"), key)
    };
    let issue = |(ca, ca_key): &(rcgen::Certificate, KeyPair), cn: &str| {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).expect("params");
        params.distinguished_name.push(DnType::CommonName, cn);
        (params.signed_by(&key, ca, ca_key).expect("cert").pem(), key.serialize_pem())
    };
    let (ours, theirs) = (ca("our CA"), ca("another CA"));
    let (client_cert, client_key) = issue(&ours, "signer-a");
    for (name, pem) in [("ca.pem", ours.0.pem()), ("client.pem", client_cert), ("client.key", client_key)] {
        std::fs::write(dir.path().join(name), pem).expect("write");
    }
    let tls = exclave_claims::tikv::TikvTls {
        ca: dir.path().join("ca.pem"),
        cert: dir.path().join("client.pem"),
        key: dir.path().join("client.key"),
    };
    // A TLS server with a certificate of another CA, that completes handshakes it can.
    let (server_cert, server_key) = issue(&theirs, "pd");
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(
            rustls_pki_types::CertificateDer::pem_slice_iter(server_cert.as_bytes()).collect::<Result<_, _>>().expect("cert"),
            rustls_pki_types::PrivateKeyDer::from_pem_slice(server_key.as_bytes()).expect("key"),
        )
        .expect("server config");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let wrong_ca = listener.local_addr().expect("addr").to_string();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move { drop(acceptor.accept(tcp).await) });
        }
    });
    use rustls_pki_types::pem::PemObject;
    let h = OnStandIn::start().await;
    for (what, endpoint) in [("plaintext stand-in", h.standin.pd_endpoint()), ("TLS server of another CA", wrong_ca)] {
        let mut config = TikvConfig::new([endpoint]);
        config.tls = Some(tls.clone());
        let store = open(config);
        let started = Instant::now();
        let err = store.ping().await.expect_err("ping answered");
        eprintln!("{what}: {err}");
        let (verdict, _) = claim_like_engine(&store, &key(1, 1), &conformance::record("a", b"x")).await;
        assert_eq!(verdict, Engine::Unavailable, "{what}");
        assert!(started.elapsed() < 3 * DEADLINE + MARGIN, "{what}: took {:?}", started.elapsed());
    }
    // Nothing reached the stand-in's map: its own plaintext client still claims round 1.
    assert_eq!(claim_like_engine(&h.open().await, &key(1, 1), &conformance::record("a", b"x")).await.0, Engine::Inserted);
}
