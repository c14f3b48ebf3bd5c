//! Several signers in one client: `RemoteKeystore` with a list of signer URLs fails over to the
//! next signer when one stops answering, but only between signers that report the same claim
//! store id (re-sending a request is safe only within one store), and every signing request
//! carries that id, so a signer re-pointed at another store between checks refuses it.

use crate::common::*;
use exclave_keystore_remote::{RemoteKeystore, RemoteKeystoreConfig};
use exclave_tikv_protocol_standin::StandIn;
use sp_core::{crypto::KeyTypeId, ed25519, Pair};
use sp_keystore::Keystore;
use std::time::{Duration, Instant};

const GRAN: KeyTypeId = KeyTypeId(*b"gran");
const TIMEOUT: Duration = Duration::from_secs(2);

fn alice() -> ed25519::Public {
    ed25519::Pair::from_string("//Alice", None).expect("dev").public()
}

fn config(signers: &[Signer]) -> RemoteKeystoreConfig {
    RemoteKeystoreConfig {
        urls: signers.iter().map(|s| s.rpc.clone()).collect(),
        chain: CHAIN,
        tls: Some(signers[0].tls()),
        timeout: TIMEOUT,
        store_id: None,
    }
}

fn keystore(signers: &[Signer]) -> RemoteKeystore {
    RemoteKeystore::new(config(signers)).expect("remote keystore")
}

fn vote_with(ks: &RemoteKeystore, round: u64, target: u8) -> Option<ed25519::Signature> {
    ks.ed25519_sign(GRAN, &alice(), &grandpa_payload(true, target, 10, round, 9)).ok().flatten()
}

/// The records of the signing log of the signer `id` started by `spawn_signers` in `dir`.
fn log_of(dir: &std::path::Path, id: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join(format!("{id}.log")))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("log line is JSON"))
        .collect()
}

fn vote(ks: &RemoteKeystore, round: u64, target: u8) -> Option<ed25519::Signature> {
    ks.ed25519_sign(GRAN, &alice(), &grandpa_payload(true, target, 10, round, 9)).expect("vote")
}

/// signer-a and signer-b on one TiKV stand-in (in this process; NOT TiKV).
struct StandInPair {
    _standin: StandIn,
    dir: tempfile::TempDir,
    claims: ClaimsConfig,
}

impl StandInPair {
    fn start(rt: &tokio::runtime::Runtime) -> Self {
        let standin = rt.block_on(StandIn::start()).expect("stand-in");
        let claims = standin_claims(&standin.pd_endpoint(), 2000);
        Self { _standin: standin, dir: tempfile::tempdir().expect("tempdir"), claims }
    }

    fn spawn(&self) -> Vec<Signer> {
        spawn_signers(self.dir.path(), &["signer-a", "signer-b"], &self.claims)
    }
}

#[test]
fn a_client_fails_over_between_signers_sharing_a_store() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let shared = StandInPair::start(&rt);
    let (dir, mut signers) = (&shared.dir, shared.spawn());
    let ks = keystore(&signers);
    let first = vote(&ks, 1, 1).expect("signed through signer-a");
    signers[0].kill9();
    let started = Instant::now();
    let second = vote(&ks, 2, 1).expect("signed through signer-b");
    let took = started.elapsed();
    assert!(took < TIMEOUT, "fail-over after a refused connection took {took:?}");
    assert_eq!(vote(&ks, 1, 1), Some(first), "the identical round-1 vote from signer-b is the stored signature");
    let conflict = ks.ed25519_sign(GRAN, &alice(), &grandpa_payload(true, 2, 10, 1, 9)).expect_err("a different round-1 vote");
    assert!(conflict.to_string().contains("refused-conflict"), "signer-b refuses it: one store, one claim ({conflict})");
    assert_ne!(first, second);
    let b_log = log_of(dir.path(), "signer-b");
    assert!(b_log.iter().any(|r| r["decision"] == "signed"), "signer-b signed round 2");
    assert!(b_log.iter().any(|r| r["decision"] == "same-data"), "signer-b answered round 1 from the claim");
}

#[test]
fn signers_on_different_stores_are_never_used_unless_one_store_is_pinned() {
    let dir = tempfile::tempdir().expect("tempdir");
    let signers = spawn_signers_each(dir.path(), &["signer-a", "signer-b"], |id| embedded_claims(&dir.path().join(format!("{id}.redb"))));
    // Both answer, from two stores: re-sending from one to the other could sign a duty twice,
    // so the client uses neither.
    let ks = keystore(&signers);
    assert!(ks.ed25519_public_keys(GRAN).is_empty(), "no signer may be used");
    assert!(ks.keys(GRAN).is_err(), "every call fails while the stores disagree");
    for id in ["signer-a", "signer-b"] {
        assert!(log_of(dir.path(), id).iter().all(|r| r["method"] != "sign"), "no request reached {id}");
    }
    // Pinning signer-b's store: only signer-b is used, although signer-a comes first.
    let status = tokio::runtime::Runtime::new().expect("rt").block_on(async {
        use exclave_protocol::ExclaveApiClient;
        rpc_client(&signers[1].rpc, &signers[1].tls()).status().await.expect("status")
    });
    let pinned = RemoteKeystore::new(RemoteKeystoreConfig { store_id: Some(status.store_id), ..config(&signers) }).expect("keystore");
    assert!(vote_with(&pinned, 1, 1).is_some(), "signed through signer-b");
    assert!(log_of(dir.path(), "signer-a").iter().all(|r| r["method"] != "sign"), "signer-a, on the other store, was not used");
    assert!(log_of(dir.path(), "signer-b").iter().any(|r| r["method"] == "sign"), "signer-b signed");
}

#[test]
fn a_signer_re_pointed_at_another_store_refuses_the_bound_request_and_the_client_moves_on() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let shared = StandInPair::start(&rt);
    let (dir, mut signers) = (&shared.dir, shared.spawn());
    let ks = keystore(&signers);
    // The client re-checks every signer's store id 10 s after it starts: until then only the id
    // in the request can stop signer-a (this set-up takes a few seconds at most).
    let created = Instant::now();
    assert!(vote_with(&ks, 1, 1).is_some(), "signed through signer-a on the shared store");
    // The vote made the client's lease keep-alive start: its first `exclave_lease` call comes
    // within 100 ms, the next 5 s later. Had that first call met signer-a down, the client would
    // rest signer-a and check its store id again before using it, and the request's own check
    // (under test here) would never be reached: wait for it before the kill.
    let waited = Instant::now();
    while signers[0].rpc_calls("lease") == 0 {
        assert!(waited.elapsed() < Duration::from_secs(5), "the client's lease keep-alive never called signer-a");
        std::thread::sleep(Duration::from_millis(20));
    }
    let lease_called = Instant::now();
    // signer-a comes back on the same port with a store of its own, before the client's next
    // store-id check (every 10 s): only the id in the request stops it.
    let port = signers[0].port();
    signers[0].kill9();
    let cfg = TestConfig::new(dir.path(), "signer-a").own_log().port(port).claims(embedded_claims(&dir.path().join("own.redb"))).write();
    signers[0] = Signer::spawn(&["serve".into(), "--config".into(), cfg.display().to_string()], dir.path());
    let setup = created.elapsed();
    assert!(setup < Duration::from_secs(9), "the re-pointed signer took {setup:?} to start: the client's 10 s store-id re-check may come first, so this run cannot show the request's own check");
    let since_lease = lease_called.elapsed();
    assert!(since_lease < Duration::from_millis(4500), "the re-pointed signer took {since_lease:?} to start: the keep-alive's next lease call (5 s) may have found signer-a down, so this run cannot show the request's own check");
    let second = vote_with(&ks, 1, 2);
    assert_eq!(second, None, "a different round-1 vote is refused by signer-b's claim, never signed by signer-a");
    let a_log = log_of(dir.path(), "signer-a");
    let mismatch: Vec<_> =
        a_log.iter().filter(|r| r["reason"].as_str().is_some_and(|m| m.contains("not") && m.contains("as the request requires"))).collect();
    assert!(!mismatch.is_empty(), "signer-a refused the request bound to the shared store: {a_log:?}");
    assert!(mismatch.iter().all(|r| r["decision"] == "refused"), "{mismatch:?}");
    assert_eq!(a_log.iter().filter(|r| r["decision"] == "signed").count(), 1, "signer-a signed only round 1, before it was re-pointed");
    let b_log = log_of(dir.path(), "signer-b");
    assert!(b_log.iter().any(|r| r["decision"] == "refused" && r["method"] == "sign"), "signer-b refused the conflicting vote: {b_log:?}");
    assert!(vote_with(&ks, 2, 1).is_some(), "round 2 is signed through signer-b");
}
