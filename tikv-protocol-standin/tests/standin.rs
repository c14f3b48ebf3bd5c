//! The real `tikv-client` against the stand-in: the calls the claim store makes work, and each
//! fault switch does what it says. (Listing uses `batch_scan`: the client's `scan` restarts at the
//! last region's empty end key and repeats or over-reads, against real TiKV as against this.)

use exclave_tikv_protocol_standin::StandIn;
use std::time::Duration;
use tikv_client::{Config, RawClient};

async fn client(standin: &StandIn, keyspace: Option<&str>) -> RawClient {
    let mut config = Config::default().with_timeout(Duration::from_millis(500));
    if let Some(keyspace) = keyspace {
        config = config.with_keyspace(keyspace);
    }
    let client = tokio::time::timeout(Duration::from_secs(10), RawClient::new_with_config(vec![standin.pd_endpoint()], config))
        .await
        .expect("client built in time")
        .expect("client built");
    client.with_atomic_for_cas()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cas_get_scan_work_through_the_real_client() {
    let standin = StandIn::start().await.expect("start");
    let c = client(&standin, None).await;
    assert_eq!(c.compare_and_swap(b"k1".to_vec(), None, b"v1".to_vec()).await.expect("cas"), (None, true));
    assert_eq!(c.compare_and_swap(b"k1".to_vec(), None, b"v2".to_vec()).await.expect("cas"), (Some(b"v1".to_vec()), false));
    assert_eq!(c.compare_and_swap(b"k1".to_vec(), Some(b"v1".to_vec()), b"v3".to_vec()).await.expect("cas"), (Some(b"v1".to_vec()), true));
    assert_eq!(c.get(b"k1".to_vec()).await.expect("get"), Some(b"v3".to_vec()));
    assert_eq!(c.get(b"absent".to_vec()).await.expect("get"), None);
    c.compare_and_swap(b"k2".to_vec(), None, b"x".to_vec()).await.expect("cas");
    c.compare_and_swap(b"l1".to_vec(), None, b"y".to_vec()).await.expect("cas");
    let keys: Vec<Vec<u8>> =
        c.batch_scan([b"k".to_vec()..b"l".to_vec()], 10).await.expect("scan").into_iter().map(|p| Vec::<u8>::from(p.0)).collect();
    assert_eq!(keys, vec![b"k1".to_vec(), b"k2".to_vec()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyspaces_keep_keys_apart() {
    let standin = StandIn::start().await.expect("start");
    let a = client(&standin, Some("alpha")).await;
    let b = client(&standin, Some("beta")).await;
    assert!(a.compare_and_swap(b"k".to_vec(), None, b"a".to_vec()).await.expect("cas").1);
    assert!(b.compare_and_swap(b"k".to_vec(), None, b"b".to_vec()).await.expect("cas").1);
    assert_eq!(a.get(b"k".to_vec()).await.expect("get"), Some(b"a".to_vec()));
    assert_eq!(standin.len(), 2, "two prefixed keys: {:?}", standin.snapshot().keys().collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_leader_is_retried_by_the_client() {
    let standin = StandIn::start().await.expect("start");
    let c = client(&standin, None).await;
    standin.faults().not_leader(2);
    assert_eq!(c.compare_and_swap(b"k".to_vec(), None, b"v".to_vec()).await.expect("cas"), (None, true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_reply_comes_back_as_our_own_value() {
    let standin = StandIn::start().await.expect("start");
    let c = client(&standin, None).await;
    standin.faults().drop_reply_after_apply(1);
    // The client retries after the transport error and finds its own value: not swapped.
    assert_eq!(c.compare_and_swap(b"k".to_vec(), None, b"mine".to_vec()).await.expect("cas"), (Some(b"mine".to_vec()), false));
    assert_eq!(standin.faults().cas_calls(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_store_never_answers_and_applies_nothing() {
    let standin = StandIn::start().await.expect("start");
    let c = client(&standin, None).await;
    standin.faults().freeze_store(true);
    let attempt = tokio::time::timeout(Duration::from_secs(2), c.compare_and_swap(b"k".to_vec(), None, b"v".to_vec())).await;
    assert!(attempt.is_err() || attempt.as_ref().is_ok_and(|r| r.is_err()), "{attempt:?}");
    assert!(standin.is_empty());
    standin.faults().freeze_store(false);
    assert_eq!(c.compare_and_swap(b"k".to_vec(), None, b"v".to_vec()).await.expect("cas"), (None, true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_pd_stops_a_client_from_being_built() {
    let standin = StandIn::start().await.expect("start");
    standin.faults().freeze_pd(true);
    let attempt =
        tokio::time::timeout(Duration::from_secs(1), RawClient::new_with_config(vec![standin.pd_endpoint()], Config::default())).await;
    assert!(attempt.is_err(), "a client was built against a frozen PD");
    standin.faults().freeze_pd(false);
    client(&standin, None).await;
}
