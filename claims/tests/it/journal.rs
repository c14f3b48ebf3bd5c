//! Journaled mode of the embedded store: claims committed without an fsync of their own are
//! lost by a crash after the last durable commit, the journal mark says from which signing-log
//! record on, and a restore of those records' claims brings every one back.

use exclave_claims::{conformance, embedded::EmbeddedStore, ClaimOutcome, ClaimStore, StoreError};
use exclave_policies::{ChainId, ClaimKey, ClaimRecord, Duty};
use std::{
    process::Command,
    sync::{atomic::AtomicU64, Arc},
};

const CHILD_ENV: &str = "EXCLAVE_JOURNAL_CRASH_CHILD";
const CHAIN: ChainId = ChainId([5; 32]);
/// The child's stand-in signing log: claim `round` is logged at seq `FIRST_SEQ + round`.
const FIRST_SEQ: u64 = 1000;

fn claim(round: u64) -> (ClaimKey, ClaimRecord) {
    (conformance::key(CHAIN, Duty::Heartbeat { session_index: round as u32 }), conformance::record("child", &round.to_le_bytes()))
}

/// Child half of `a_crash_loses_only_what_the_journal_mark_says_and_restore_brings_it_back`:
/// claims 400 rounds journaled, moving the stand-in log's sequence number after each claim as
/// the signer's log does, with one explicit flush after round 199, then aborts.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "child process of a_crash_loses_only_what_the_journal_mark_says_and_restore_brings_it_back, which runs it"]
async fn journal_crash_child() {
    let path = std::env::var(CHILD_ENV).expect("run by the parent test");
    let seq = Arc::new(AtomicU64::new(FIRST_SEQ - 1));
    let (store, replay_after) = EmbeddedStore::open_journaled(std::path::Path::new(&path), seq.clone()).expect("open");
    assert_eq!(replay_after, None, "a new file has nothing to restore");
    store.restore(&[]).await.expect("nothing to restore");
    for round in 0..400u64 {
        let (k, r) = claim(round);
        assert_eq!(store.claim(&k, &r).await.expect("claim"), ClaimOutcome::Inserted);
        seq.store(FIRST_SEQ + round, std::sync::atomic::Ordering::SeqCst);
        if round == 199 {
            store.flush(false).await.expect("flush");
        }
    }
    println!("CLAIMED-ALL");
    std::process::abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_loses_only_what_the_journal_mark_says_and_restore_brings_it_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("claims.redb");
    let out = Command::new(std::env::current_exe().expect("exe"))
        .args(["--exact", "journal::journal_crash_child", "--ignored", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, &path)
        .output()
        .expect("spawn child");
    assert!(String::from_utf8_lossy(&out.stdout).contains("CLAIMED-ALL"), "child did not claim: {out:?}");

    // The offline tools refuse the file and say why.
    let err = EmbeddedStore::open(&path).err().expect("a file left open by a journaled signer is refused");
    assert!(matches!(&err, StoreError::Open { reason, .. } if reason.contains("did not stop cleanly")), "{err}");

    let seq = Arc::new(AtomicU64::new(0));
    let (store, replay_after) = EmbeddedStore::open_journaled(&path, seq.clone()).expect("reopen");
    let after = replay_after.expect("the file was not closed: the mark names where to restore from");
    assert!(after >= FIRST_SEQ + 199, "the flush after round 199 moved the mark to its record or later: {after}");
    // Every claim whose record is at or before the mark is in the file, without a restore.
    for round in 0..=(after - FIRST_SEQ).min(399) {
        let (k, r) = claim(round);
        assert_eq!(store.get(&k).await.expect("get"), Some(r), "claim {round} (record {}) is before the mark", FIRST_SEQ + round);
    }
    // The claims of the records after the mark, rebuilt from the log, are restored.
    let lost: Vec<_> = (0..400u64).filter(|r| FIRST_SEQ + r > after).map(claim).collect();
    let restored = store.restore(&lost).await.expect("restore");
    assert_eq!(restored.inserted + restored.present, lost.len());
    for round in 0..400u64 {
        let (k, r) = claim(round);
        assert_eq!(store.get(&k).await.expect("get"), Some(r), "claim {round} after the restore");
    }
    store.flush(true).await.expect("close");
    drop(store);
    reopen_plain(&path).await;
}

/// After a clean close the offline tools open the file again.
async fn reopen_plain(path: &std::path::Path) {
    for _ in 0..100 {
        match EmbeddedStore::open(path) {
            Ok(_) => return,
            Err(StoreError::Open { reason, .. }) if reason.contains("another process") => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await
            }
            Err(e) => panic!("a cleanly closed file must open: {e}"),
        }
    }
    panic!("{} did not reopen", path.display());
}

/// A log record that binds another payload than the stored claim is an error naming the claim;
/// the stored claim stays.
#[tokio::test]
async fn a_restore_that_contradicts_a_stored_claim_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("claims.redb");
    let (store, _) = EmbeddedStore::open_journaled(&path, Arc::new(AtomicU64::new(0))).expect("open");
    let (k, r) = claim(1);
    store.claim(&k, &r).await.expect("claim");
    let other = conformance::record("child", b"another payload");
    let err = store.restore(&[(k.clone(), other)]).await.expect_err("contradicting record");
    assert!(err.to_string().contains("another payload or signature"), "{err}");
    assert_eq!(store.get(&k).await.expect("get"), Some(r.clone()));
    let same = store.restore(&[(k, r)]).await.expect("the same claim again");
    assert_eq!((same.inserted, same.present), (0, 1));
}
