//! etcd password authentication against a REAL etcd (one member on loopback) with `auth enable`:
//! the signer's user, whose role grants only the `exclave/` prefix, claims; a wrong password is
//! refused at once by name, no user and a user without the role are refused; and a member that
//! is down when the store is built stops nothing (each member authenticates at its first
//! attempt, not at connect).

use exclave_claims::{
    etcd::{local_cluster::LocalCluster, EtcdConfig, EtcdStore, EtcdUser},
    ClaimOutcome, ClaimStore,
};
use exclave_policies::{ChainId, ClaimKey, ClaimRecord, Duty, GrandpaStage, KeyType};
use std::time::{Duration, Instant};

fn claim_key(round: u64) -> ClaimKey {
    ClaimKey {
        chain: ChainId([0x43; 32]),
        key_type: KeyType::GRANDPA,
        public: vec![7; 32],
        duty: Duty::GrandpaVote { set_id: 1, round, stage: GrandpaStage::Prevote },
    }
}

fn record() -> ClaimRecord {
    ClaimRecord { claimer: "signer-a/alice-1".into(), payload_hash: [1; 32], signature: vec![2; 64], claimed_at_ms: 1 }
}

fn config(endpoints: Vec<String>, user: Option<(&str, &str)>) -> EtcdConfig {
    let user = user.map(|(name, password)| EtcdUser { name: name.into(), password: password.to_string().into() });
    EtcdConfig { user, ..EtcdConfig::new(endpoints) }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_authentication_admits_the_signer_user_only() {
    let cluster = LocalCluster::start(1);
    let endpoint = cluster.endpoints()[0].clone();
    cluster.enable_password_auth(&[("exclave-signer", "signer-password", true), ("intruder", "intruder-password", false)]).await;

    // A dead member listed first: the store is built and claims through the live one.
    let dead = format!("http://127.0.0.1:{}", std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port());
    let store = EtcdStore::connect(&config(vec![dead, endpoint.clone()], Some(("exclave-signer", "signer-password"))))
        .await
        .expect("built with a member down");
    assert_eq!(store.claim(&claim_key(1), &record()).await.expect("claim"), ClaimOutcome::Inserted);
    assert_eq!(store.claim(&claim_key(1), &record()).await.expect("again"), ClaimOutcome::Existing(record()));
    assert_eq!(store.get(&claim_key(1)).await.expect("read"), Some(record()));

    // A wrong password is refused at once (not retried until the budget is spent), by name.
    let wrong = EtcdStore::connect(&config(vec![endpoint.clone()], Some(("exclave-signer", "guess")))).await.expect("built");
    let started = Instant::now();
    let refused = wrong.claim(&claim_key(2), &record()).await.expect_err("a wrong password claimed");
    assert!(refused.to_string().contains("refused user \"exclave-signer\""), "{refused}");
    assert!(started.elapsed() < Duration::from_millis(1500), "retried a refused password: {:?}", started.elapsed());
    // No user at all, and a user whose password is right but who has no role.
    let anonymous = EtcdStore::connect(&config(vec![endpoint.clone()], None)).await.expect("built");
    assert!(anonymous.claim(&claim_key(2), &record()).await.is_err(), "an unauthenticated client claimed");
    let intruder = EtcdStore::connect(&config(vec![endpoint.clone()], Some(("intruder", "intruder-password")))).await.expect("built");
    let denied = intruder.claim(&claim_key(2), &record()).await.expect_err("a user without the role claimed");
    assert!(denied.to_string().to_lowercase().contains("permission"), "{denied}");
    // Nothing above took round 2.
    assert_eq!(store.claim(&claim_key(2), &record()).await.expect("claim"), ClaimOutcome::Inserted);
    assert!(!format!("{:?}", config(vec![endpoint], Some(("exclave-signer", "signer-password")))).contains("signer-password"));
}
