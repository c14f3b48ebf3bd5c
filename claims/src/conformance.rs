//! The conformance suite every claim-store backend passes.
//!
//! A backend's test file implements [`Harness`] and expands [`conformance_tests!`], which
//! generates one `#[tokio::test]` per case, so a failing case is named in the test report.
//! Each case uses a fresh random chain id, so the suite can run against a shared, long-lived
//! cluster (etcd, TiKV) without cases seeing each other's claims.

pub mod engine;

use crate::{ClaimOutcome, ClaimStore, Guarded, Swap, WatermarkSeen};
use async_trait::async_trait;
use exclave_policies::{payload_hash, ChainId, ClaimKey, ClaimRecord, Duty, DutyKind, GrandpaStage, KeyType, WatermarkKey};
use std::{
    collections::hash_map::RandomState,
    hash::{BuildHasher, Hasher},
    sync::Arc,
};

/// How the suite opens a backend.
#[async_trait]
pub trait Harness: Send + Sync {
    /// The store under test.
    type Store: ClaimStore;
    /// Open a store. Opening again after `close` must see the same data.
    async fn open(&self) -> Self::Store;
    /// Drop a store the way a crash would leave it (no clean shutdown where the backend allows).
    async fn close(&self, store: Self::Store) {
        drop(store);
    }
}

fn random_chain() -> ChainId {
    let mut out = [0u8; 32];
    for chunk in out.chunks_mut(8) {
        let mut h = RandomState::new().build_hasher();
        h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
        chunk.copy_from_slice(&h.finish().to_le_bytes());
    }
    ChainId(out)
}

/// A claim key for `duty` under a fresh chain.
pub fn key(chain: ChainId, duty: Duty) -> ClaimKey {
    ClaimKey { chain, key_type: KeyType::GRANDPA, public: vec![7u8; 32], duty }
}

/// A record for `payload` by `claimer`.
pub fn record(claimer: &str, payload: &[u8]) -> ClaimRecord {
    ClaimRecord {
        claimer: claimer.into(),
        payload_hash: payload_hash(payload),
        signature: payload_hash(claimer.as_bytes()).to_vec(),
        claimed_at_ms: 1,
    }
}

fn vote(round: u64) -> Duty {
    Duty::GrandpaVote { set_id: 3, round, stage: GrandpaStage::Prevote }
}

/// The first claim of a key is inserted and can be read back.
pub async fn first_wins<H: Harness>(h: &H) {
    let store = h.open().await;
    let k = key(random_chain(), vote(1));
    let r = record("a", b"one");
    assert_eq!(store.claim(&k, &r).await.expect("claim"), ClaimOutcome::Inserted);
    assert_eq!(store.get(&k).await.expect("get"), Some(r));
}

/// Claiming again with the same record returns it as existing (the lost-reply case).
pub async fn same_data<H: Harness>(h: &H) {
    let store = h.open().await;
    let k = key(random_chain(), vote(2));
    let r = record("a", b"one");
    store.claim(&k, &r).await.expect("claim");
    assert_eq!(store.claim(&k, &r).await.expect("claim"), ClaimOutcome::Existing(r));
}

/// A second, different claim gets the first record back and changes nothing.
pub async fn conflict<H: Harness>(h: &H) {
    let store = h.open().await;
    let k = key(random_chain(), vote(3));
    let first = record("a", b"one");
    store.claim(&k, &first).await.expect("claim");
    let out = store.claim(&k, &record("b", b"two")).await.expect("claim");
    assert_eq!(out, ClaimOutcome::Existing(first.clone()));
    assert_eq!(store.get(&k).await.expect("get"), Some(first));
}

/// Keys differing only in a coordinate, stage or public key are independent.
pub async fn independent_keys<H: Harness>(h: &H) {
    let store = h.open().await;
    let chain = random_chain();
    let mut keys = vec![key(chain, vote(1)), key(chain, vote(2))];
    keys.push(key(chain, Duty::GrandpaVote { set_id: 3, round: 1, stage: GrandpaStage::Precommit }));
    keys.push(ClaimKey { public: vec![8u8; 32], ..key(chain, vote(1)) });
    for k in &keys {
        assert_eq!(store.claim(k, &record("a", b"x")).await.expect("claim"), ClaimOutcome::Inserted);
    }
}

/// 32 concurrent claimers of one duty with different payloads: exactly one wins, and every
/// loser is shown the winner's record.
pub async fn concurrent_claimers<H: Harness>(h: &H) {
    let store = Arc::new(h.open().await);
    let k = key(random_chain(), vote(4));
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let (store, k) = (store.clone(), k.clone());
            tokio::spawn(async move {
                let r = record(&format!("claimer-{i}"), format!("payload-{i}").as_bytes());
                (r.clone(), store.claim(&k, &r).await.expect("claim"))
            })
        })
        .collect();
    let mut winners = Vec::new();
    let mut seen = Vec::new();
    for t in tasks {
        let (mine, out) = t.await.expect("task");
        match out {
            ClaimOutcome::Inserted => winners.push(mine),
            ClaimOutcome::Existing(rec) => seen.push(rec),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one of 32 concurrent claimers must win");
    assert!(seen.iter().all(|r| *r == winners[0]), "every loser must see the winner's record");
    assert_eq!(store.get(&k).await.expect("get").as_ref(), Some(&winners[0]));
}

/// A guarded claim (stores with `guards_claims`) is inserted only while the family's watermark
/// is as seen, and writes nothing when it moved, returning it; an existing record comes back
/// whatever the watermark. A store without the guard refuses the call and writes nothing.
pub async fn guarded_claims<H: Harness>(h: &H) {
    let store = h.open().await;
    let chain = random_chain();
    let (k5, k7, k11) = (key(chain, vote(5)), key(chain, vote(7)), key(chain, vote(11)));
    let r = record("a", b"one");
    if !store.guards_claims() {
        assert!(store.claim_guarded(&k5, &r, WatermarkSeen::default()).await.is_err(), "{}: not guarded, refused", store.backend());
        assert_eq!(store.get(&k5).await.expect("get"), None);
        return;
    }
    let none = WatermarkSeen::default();
    assert_eq!(store.claim_guarded(&k5, &r, none).await.expect("claim"), Guarded::Claimed(ClaimOutcome::Inserted));
    store.raise_watermark(&k5.watermark_key(), (3, 10)).await.expect("raise");
    let moved = match store.claim_guarded(&k7, &r, none).await.expect("claim") {
        Guarded::WatermarkMoved(now) => now,
        other => panic!("the watermark moved: {other:?}"),
    };
    assert_eq!(moved.position, Some((3, 10)));
    assert_eq!(store.get(&k7).await.expect("get"), None, "nothing written when the watermark moved");
    // An existing record comes back even on a stale guard.
    assert_eq!(
        store.claim_guarded(&k5, &record("b", b"two"), none).await.expect("claim"),
        Guarded::Claimed(ClaimOutcome::Existing(r.clone()))
    );
    assert_eq!(store.claim_guarded(&k11, &r, moved).await.expect("claim"), Guarded::Claimed(ClaimOutcome::Inserted));
    assert_eq!(store.get(&k11).await.expect("get"), Some(r));
}

/// Claims survive closing (crash-style) and reopening the store.
pub async fn reopen_keeps_claims<H: Harness>(h: &H) {
    let chain = random_chain();
    let store = h.open().await;
    for round in 0..50 {
        store.claim(&key(chain, vote(round)), &record("a", &round.to_le_bytes())).await.expect("claim");
    }
    h.close(store).await;
    let store = h.open().await;
    for round in 0..50 {
        let got = store.get(&key(chain, vote(round))).await.expect("get");
        assert_eq!(got, Some(record("a", &round.to_le_bytes())), "round {round} lost on reopen");
    }
}

/// Listing by prefix returns the chain's claims in coordinate order.
pub async fn list_by_prefix<H: Harness>(h: &H) {
    let store = h.open().await;
    let chain = random_chain();
    for round in [300u64, 2, 70_000] {
        store.claim(&key(chain, vote(round)), &record("a", b"x")).await.expect("claim");
    }
    let mut prefix = exclave_policies::CLAIM_PREFIX.to_vec();
    prefix.extend_from_slice(&chain.0);
    let listed = store.list(&prefix, 10).await.expect("list");
    let expected: Vec<Vec<u8>> = [2u64, 300, 70_000].iter().map(|r| key(chain, vote(*r)).to_bytes()).collect();
    assert_eq!(listed.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(), expected);
    assert_eq!(store.list(&prefix, 2).await.expect("list").len(), 2);
}

/// Watermarks only ever rise.
pub async fn watermarks_only_rise<H: Harness>(h: &H) {
    let store = h.open().await;
    let wk = WatermarkKey { chain: random_chain(), key_type: KeyType::BABE, public: vec![1; 32], kind: DutyKind::BabeSeal };
    assert_eq!(store.watermark(&wk).await.expect("read"), None);
    assert_eq!(store.raise_watermark(&wk, (10, 0)).await.expect("raise"), (10, 0));
    assert_eq!(store.raise_watermark(&wk, (5, 0)).await.expect("raise"), (10, 0));
    assert_eq!(store.raise_watermark(&wk, (12, 1)).await.expect("raise"), (12, 1));
    assert_eq!(store.watermark(&wk).await.expect("read"), Some((12, 1)));
}

/// A register changes only when it holds exactly the expected value; a failed swap changes
/// nothing and shows what the register holds.
pub async fn registers_compare_and_swap<H: Harness>(h: &H) {
    let store = h.open().await;
    let name = format!("conformance-{}", hex_of(&random_chain().0[..8]));
    assert_eq!(store.register(&name).await.expect("read"), None);
    assert_eq!(store.swap_register(&name, None, b"one").await.expect("swap"), Swap::Swapped);
    assert_eq!(store.swap_register(&name, None, b"two").await.expect("swap"), Swap::Current(Some(b"one".to_vec())));
    assert_eq!(store.swap_register(&name, Some(b"zero"), b"two").await.expect("swap"), Swap::Current(Some(b"one".to_vec())));
    assert_eq!(store.swap_register(&name, Some(b"one"), b"two").await.expect("swap"), Swap::Swapped);
    assert_eq!(store.register(&name).await.expect("read"), Some(b"two".to_vec()));
    h.close(store).await;
    let store = h.open().await;
    assert_eq!(store.register(&name).await.expect("read after reopen"), Some(b"two".to_vec()));
}

/// 32 concurrent swaps from the same expected value: exactly one succeeds, every other sees
/// the winner's value.
pub async fn concurrent_register_swaps<H: Harness>(h: &H) {
    let store = Arc::new(h.open().await);
    let name = format!("conformance-{}", hex_of(&random_chain().0[..8]));
    store.swap_register(&name, None, b"start").await.expect("swap");
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let (store, name) = (store.clone(), name.clone());
            tokio::spawn(async move {
                let mine = format!("holder-{i}").into_bytes();
                (mine.clone(), store.swap_register(&name, Some(b"start"), &mine).await.expect("swap"))
            })
        })
        .collect();
    let (mut winners, mut seen) = (Vec::new(), Vec::new());
    for t in tasks {
        match t.await.expect("task") {
            (mine, Swap::Swapped) => winners.push(mine),
            (_, Swap::Current(current)) => seen.push(current),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one of 32 concurrent swaps must succeed");
    assert!(seen.iter().all(|c| c.as_ref() == Some(&winners[0])), "every loser must see the winner's value");
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Generates one test per conformance case for a harness expression. With a leading
/// `ignore = "reason",` every generated test is `#[ignore]`d with that reason (for a suite that
/// needs a server the environment must name, run with `--run-ignored`).
#[macro_export]
macro_rules! conformance_tests {
    (ignore = $reason:literal, $harness:expr) => {
        $crate::conformance_tests!(@cases [#[ignore = $reason]] $harness);
    };
    ($harness:expr) => {
        $crate::conformance_tests!(@cases [] $harness);
    };
    (@cases $attrs:tt $harness:expr) => {
        $crate::conformance_tests!(@each $attrs $harness; first_wins, same_data, conflict, independent_keys,
            concurrent_claimers, reopen_keeps_claims, list_by_prefix, watermarks_only_rise,
            registers_compare_and_swap, concurrent_register_swaps, guarded_claims);
    };
    (@each $attrs:tt $harness:expr; $($case:ident),*) => {
        $( $crate::conformance_tests!(@one $attrs $harness; $case); )*
    };
    (@one [$(#[$attr:meta])*] $harness:expr; $case:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        $(#[$attr])*
        async fn $case() {
            let harness = $harness;
            $crate::conformance::$case(&harness).await;
        }
    };
}
