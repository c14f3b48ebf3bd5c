//! The conformance suite and crash tests against the embedded (redb) store.

use async_trait::async_trait;
use exclave_claims::{
    conformance::{self, Harness},
    embedded::EmbeddedStore,
    ClaimOutcome, ClaimStore, StoreError, WithDeadline,
};
use std::{path::PathBuf, process::Command, time::Duration};

struct Embedded {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Embedded {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("claims.redb");
        Self { _dir: dir, path }
    }
}

#[async_trait]
impl Harness for Embedded {
    type Store = WithDeadline<EmbeddedStore>;

    async fn open(&self) -> Self::Store {
        // redb's writer thread holds the file until its channel closes: retry briefly on reopen.
        for _ in 0..100 {
            match EmbeddedStore::open(&self.path) {
                Ok(s) => return WithDeadline::new(s, Duration::from_secs(5)),
                Err(StoreError::Open { .. }) => tokio::time::sleep(Duration::from_millis(20)).await,
                Err(e) => panic!("open: {e}"),
            }
        }
        panic!("store at {} did not reopen", self.path.display());
    }
}

exclave_claims::conformance_tests!(Embedded::new());

/// A second open of the same file is refused with a message that names the cause.
#[tokio::test]
async fn second_open_is_refused() {
    let h = Embedded::new();
    let _first = EmbeddedStore::open(&h.path).expect("open");
    let err = EmbeddedStore::open(&h.path).err().expect("second open must fail");
    assert!(err.to_string().contains("another process"), "{err}");
}

const CHILD_ENV: &str = "EXCLAVE_CLAIMS_CRASH_CHILD";

/// Child half of `abort_after_claims_keeps_them`: claims 200 rounds, then aborts (no destructors,
/// no clean shutdown: what kill -9 leaves).
#[tokio::test(flavor = "multi_thread")]
#[ignore = "child process of abort_after_claims_keeps_them, which runs it"]
async fn crash_child() {
    let path = std::env::var(CHILD_ENV).expect("run by abort_after_claims_keeps_them");
    let store = EmbeddedStore::open(std::path::Path::new(&path)).expect("open");
    let chain = exclave_policies::ChainId([9; 32]);
    for round in 0..200u64 {
        let k = conformance::key(chain, exclave_policies::Duty::Heartbeat { session_index: round as u32 });
        let out = store.claim(&k, &conformance::record("child", &round.to_le_bytes())).await.expect("claim");
        assert_eq!(out, ClaimOutcome::Inserted);
    }
    println!("CLAIMED-ALL");
    std::process::abort();
}

/// Every claim answered `Inserted` before an abort is there after reopening.
#[tokio::test(flavor = "multi_thread")]
async fn abort_after_claims_keeps_them() {
    let h = Embedded::new();
    let out = Command::new(std::env::current_exe().expect("exe"))
        .args(["--exact", "embedded::crash_child", "--ignored", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, &h.path)
        .output()
        .expect("spawn child");
    assert!(String::from_utf8_lossy(&out.stdout).contains("CLAIMED-ALL"), "child did not claim: {out:?}");
    assert!(!out.status.success(), "child must have aborted");
    let store = h.open().await;
    let chain = exclave_policies::ChainId([9; 32]);
    for round in 0..200u64 {
        let k = conformance::key(chain, exclave_policies::Duty::Heartbeat { session_index: round as u32 });
        assert!(store.get(&k).await.expect("get").is_some(), "claim {round} lost by the crash");
    }
}
