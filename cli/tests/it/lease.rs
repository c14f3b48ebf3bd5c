//! The active-node lease at the engine: two nodes of one validator (alice-1, alice-2) through
//! one or two signers on one claim store. Only the holder is answered `hasKeys = true` and gets
//! BABE/GRANDPA signatures; the other is standby (1008, naming the holder) until the holder
//! stops renewing and the lease expires. Per-duty claims stay the last word: a former holder's
//! conflicting vote is refused, never signed.

use crate::common;

use crate::common::{seal_request, vote_request, CHAIN};
use exclave_claims::{embedded::EmbeddedStore, ClaimStore, WithDeadline};
use exclave_policies::{KeyType, LeaseTiming};
use exclave_protocol::{Bytes, ErrorKind, SignOutcome, VrfRequest, WireKeyType};
use exclave_signer::{engine::Engine, lease::LeaseSettings};
use std::{sync::Arc, time::Duration};

const TIMING: LeaseTiming = LeaseTiming { duration_ms: 600, renew_after_ms: 100 };

fn settings() -> Option<LeaseSettings> {
    Some(LeaseSettings { timing: TIMING, validator: "alice".into(), nodes: Vec::new(), groups: Vec::new() })
}

fn store(dir: &std::path::Path) -> Arc<dyn ClaimStore> {
    std::fs::create_dir_all(dir).expect("mkdir");
    Arc::new(WithDeadline::new(EmbeddedStore::open(&dir.join("claims.redb")).expect("store"), Duration::from_secs(2)))
}

fn gated_keys() -> Vec<(Bytes, WireKeyType)> {
    vec![(Bytes(common::alice(KeyType::BABE)), WireKeyType(*b"babe")), (Bytes(common::alice(KeyType::GRANDPA)), WireKeyType(*b"gran"))]
}

fn vrf_request() -> VrfRequest {
    VrfRequest {
        chain: Bytes(CHAIN.to_vec()),
        key_type: WireKeyType(*b"babe"),
        public: Bytes(common::alice(KeyType::BABE)),
        randomness: Bytes(vec![5; 32]),
        slot: common::current_slot(),
        epoch: 1,
    }
}

async fn wait_past_expiry() {
    tokio::time::sleep(Duration::from_millis(TIMING.duration_ms + 50)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_holder_is_active_and_the_standby_takes_over_after_expiry() {
    let dir = tempfile::tempdir().expect("tempdir");
    let e = common::engine_with_lease(dir.path(), "signer-a", store(dir.path()), settings());
    assert!(e.has_keys("alice-1", &gated_keys()).await, "the first node to ask takes the lease");
    assert!(!e.has_keys("alice-2", &gated_keys()).await, "the other node is standby");
    let imon = vec![(Bytes(common::alice(KeyType::IM_ONLINE)), WireKeyType(*b"imon"))];
    assert!(e.has_keys("alice-2", &imon).await, "heartbeat keys are not gated");

    let refused = e.sign("alice-2", vote_request(false, 1, 5)).await.expect_err("standby vote");
    assert_eq!(refused.kind(), ErrorKind::NotActive, "{refused:?}");
    assert!(refused.to_string().contains("alice-1"), "the refusal names the holder: {}", refused);
    let vrf = e.vrf_sign("alice-2", vrf_request()).await.expect_err("standby VRF");
    assert_eq!(vrf.kind(), ErrorKind::NotActive);
    assert_eq!(e.sign("alice-1", vote_request(false, 1, 5)).await.expect("holder votes").outcome, SignOutcome::Signed);

    // alice-1 stops renewing: after expiry alice-2's next request takes the lease (term 2).
    wait_past_expiry().await;
    let states = e.lease("alice-2", &gated_keys()).await.expect("lease");
    assert_eq!(states.len(), 1, "{states:?}");
    assert!(states[0].active && states[0].holder == "alice-2" && states[0].term == 2, "{states:?}");
    assert!(!e.has_keys("alice-1", &gated_keys()).await, "the old holder is standby now");

    // A former holder that still believes it is active gets refusals, and the duty it signed
    // stays its one signature: the new holder's different round-5 vote is a conflict.
    let conflict = e.sign("alice-2", vote_request(false, 2, 5)).await.expect_err("second round-5 prevote");
    assert_eq!(conflict.kind(), ErrorKind::RefusedConflict, "{conflict:?}");
    assert_eq!(e.sign("alice-2", vote_request(false, 2, 6)).await.expect("new holder votes").outcome, SignOutcome::Signed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewing_holder_keeps_the_lease_beyond_its_duration() {
    let dir = tempfile::tempdir().expect("tempdir");
    let e = common::engine_with_lease(dir.path(), "signer-a", store(dir.path()), settings());
    assert!(e.has_keys("alice-1", &gated_keys()).await);
    for _ in 0..15 {
        tokio::time::sleep(Duration::from_millis(TIMING.renew_after_ms)).await;
        let s = e.lease("alice-1", &gated_keys()).await.expect("renew");
        assert!(s[0].active && s[0].term == 1, "{s:?}");
        assert!(!e.has_keys("alice-2", &gated_keys()).await, "standby while the holder renews");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signers_sharing_a_store_see_one_holder_and_one_store_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    let shared = store(dir.path());
    let a = common::engine_with_lease(&dir.path().join("a"), "signer-a", shared.clone(), settings());
    let b = common::engine_with_lease(&dir.path().join("b"), "signer-b", shared.clone(), settings());
    assert!(a.has_keys("alice-1", &gated_keys()).await);
    assert!(!b.has_keys("alice-2", &gated_keys()).await, "signer-b sees alice-1's lease");
    assert!(b.has_keys("alice-1", &gated_keys()).await, "alice-1 fails over to signer-b and stays active");
    let seal = b.sign("alice-2", seal_request(common::current_slot(), 1)).await.expect_err("standby seal");
    assert_eq!(seal.kind(), ErrorKind::NotActive);
    let (ida, idb) = (a.store_id().await.expect("id a"), b.store_id().await.expect("id b"));
    assert_eq!(ida, idb, "one store, one id");
    assert_eq!(ida.len(), 32, "{ida}");

    wait_past_expiry().await;
    assert!(b.has_keys("alice-2", &gated_keys()).await, "takeover through signer-b");
    assert!(!a.has_keys("alice-1", &gated_keys()).await, "signer-a reads the new holder once its cache is stale");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_validators_own_nodes_may_hold_its_lease() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut lease = settings().expect("settings");
    lease.nodes = vec!["alice-1".into(), "alice-2".into()];
    let e = common::engine_with_lease(dir.path(), "signer-a", store(dir.path()), Some(lease));
    assert!(!e.has_keys("bob-1", &gated_keys()).await, "another validator's node never takes alice's lease");
    let refused = e.sign("bob-1", vote_request(false, 1, 5)).await.expect_err("not alice's node");
    assert_eq!(refused.kind(), ErrorKind::NotActive);
    assert!(refused.to_string().contains("not one of validator alice's nodes"), "{}", refused.to_string());
    assert!(e.lease("bob-1", &gated_keys()).await.expect("lease").is_empty(), "nothing to report or take");
    assert!(e.has_keys("alice-2", &gated_keys()).await, "alice's node takes the free lease");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn separate_stores_have_different_ids_and_a_disabled_lease_gates_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a: Engine = common::engine_with_lease(&dir.path().join("a"), "signer-a", store(&dir.path().join("a")), settings());
    let b: Engine = common::engine(&dir.path().join("b"), "signer-b", store(&dir.path().join("b")));
    assert_ne!(a.store_id().await, b.store_id().await);
    assert!(b.has_keys("alice-1", &gated_keys()).await && b.has_keys("alice-2", &gated_keys()).await);
    assert!(b.lease("alice-1", &gated_keys()).await.expect("lease").is_empty());
}
