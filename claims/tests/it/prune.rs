//! `list_all` (a whole prefix through `ClaimStore::list`'s limited pages) and `PruneClaims`
//! on the embedded store, through `WithDeadline`.

use exclave_claims::{conformance, embedded::EmbeddedStore, list_all, prune::PAGE, ClaimStore, PruneClaims, WithDeadline};
use exclave_policies::{ChainId, ClaimKey, Duty, GrandpaStage, CLAIM_PREFIX};
use std::time::Duration;

fn key(chain: ChainId, round: u64, stage: GrandpaStage) -> ClaimKey {
    conformance::key(chain, Duty::GrandpaVote { set_id: round / 700, round, stage })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_all_pages_past_the_limit_and_delete_removes_exactly_the_keys_given() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = WithDeadline::new(EmbeddedStore::open(&dir.path().join("c.redb")).expect("open"), Duration::from_secs(5));
    let (chain, other) = (ChainId([1; 32]), ChainId([2; 32]));
    let mut expected = Vec::new();
    // More than two pages, spread over several set ids and both stages.
    for round in 0..(PAGE as u64 * 2 + 300) {
        let stage = if round % 2 == 0 { GrandpaStage::Prevote } else { GrandpaStage::Precommit };
        let k = key(chain, round, stage);
        store.claim(&k, &conformance::record("a", &round.to_le_bytes())).await.expect("claim");
        expected.push(k.to_bytes());
    }
    store.claim(&key(other, 1, GrandpaStage::Prevote), &conformance::record("a", b"x")).await.expect("claim");
    expected.sort();
    let prefix = [CLAIM_PREFIX, &chain.0].concat();
    let listed: Vec<Vec<u8>> = list_all(&store, &prefix).await.expect("list").into_iter().map(|(k, _)| k).collect();
    assert_eq!(listed, expected, "every claim of the chain, in key order, none of the other chain");

    let doomed: Vec<Vec<u8>> = expected[..10].to_vec();
    store.delete_claims(&doomed).await.expect("delete");
    store.delete_claims(&doomed).await.expect("deleting absent keys is fine");
    let left = list_all(&store, &prefix).await.expect("list");
    assert_eq!(left.len(), expected.len() - 10);
    assert_eq!(left[0].0, expected[10]);
    assert!(store.get(&ClaimKey::from_bytes(&expected[0]).expect("key")).await.expect("get").is_none());
}
