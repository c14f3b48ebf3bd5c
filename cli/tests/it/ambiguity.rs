//! Law 3, "unknown is no", at the engine: a claim store that applies a write and loses the
//! reply, fails without applying, or freezes. The engine re-reads and signs only when the
//! stored claim is exactly its own; otherwise it refuses with store-unavailable, within the
//! deadline, and signs again once the store recovers.

use crate::common::{grandpa_payload, CHAIN};
use async_trait::async_trait;
use exclave_claims::{embedded::EmbeddedStore, ClaimOutcome, ClaimStore, StoreError, WithDeadline};
use exclave_policies::{ChainId, ClaimKey, ClaimRecord, Position, SlotBounds, WatermarkKey};
use exclave_protocol::{Bytes, ErrorKind, SignContext, SignOutcome, SignRequest, WireCrypto, WireKeyType};
use exclave_signer::{
    chain::ChainPin,
    engine::{Engine, EngineSettings},
    keystore_dir::{KeyPair, KeyRing, KeystoreDir},
    metrics::Metrics,
    signing_log::SigningLog,
};
use parking_lot::Mutex;
use std::{
    sync::Arc,
    time::{Duration, Instant},
};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Fault {
    None,
    /// Apply the claim, then answer with an error (the reply was lost).
    ApplyThenFail,
    /// Answer with an error without applying.
    FailWithoutApply,
    /// Never answer any call.
    Freeze,
}

struct Faulty {
    inner: EmbeddedStore,
    fault: Arc<Mutex<Fault>>,
}

impl Faulty {
    fn fault(&self) -> Fault {
        *self.fault.lock()
    }

    async fn frozen(&self) {
        if self.fault() == Fault::Freeze {
            std::future::pending::<()>().await;
        }
    }
}

fn lost() -> StoreError {
    StoreError::Unavailable { backend: "faulty", reason: "reply lost".into() }
}

#[async_trait]
impl ClaimStore for Faulty {
    fn backend(&self) -> &'static str {
        "faulty"
    }
    async fn claim(&self, key: &ClaimKey, record: &ClaimRecord) -> Result<ClaimOutcome, StoreError> {
        self.frozen().await;
        match self.fault() {
            Fault::ApplyThenFail => {
                self.inner.claim(key, record).await?;
                Err(lost())
            }
            Fault::FailWithoutApply => Err(lost()),
            _ => self.inner.claim(key, record).await,
        }
    }
    // The engine's path on the embedded store and etcd: the same faults.
    fn guards_claims(&self) -> bool {
        true
    }
    async fn claim_guarded(
        &self,
        key: &ClaimKey,
        record: &ClaimRecord,
        seen: exclave_claims::WatermarkSeen,
    ) -> Result<exclave_claims::Guarded, StoreError> {
        self.frozen().await;
        match self.fault() {
            Fault::ApplyThenFail => {
                self.inner.claim_guarded(key, record, seen).await?;
                Err(lost())
            }
            Fault::FailWithoutApply => Err(lost()),
            _ => self.inner.claim_guarded(key, record, seen).await,
        }
    }
    async fn get(&self, key: &ClaimKey) -> Result<Option<ClaimRecord>, StoreError> {
        self.frozen().await;
        self.inner.get(key).await
    }
    async fn list(&self, prefix: &[u8], limit: usize) -> Result<Vec<(Vec<u8>, ClaimRecord)>, StoreError> {
        self.inner.list(prefix, limit).await
    }
    async fn watermark(&self, key: &WatermarkKey) -> Result<Option<Position>, StoreError> {
        self.frozen().await;
        self.inner.watermark(key).await
    }
    async fn raise_watermark(&self, key: &WatermarkKey, to: Position) -> Result<Position, StoreError> {
        self.inner.raise_watermark(key, to).await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.frozen().await;
        self.inner.ping().await
    }
    async fn register(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.register(name).await
    }
    async fn swap_register(&self, name: &str, expected: Option<&[u8]>, new: &[u8]) -> Result<exclave_claims::Swap, StoreError> {
        self.inner.swap_register(name, expected, new).await
    }
}

const DEADLINE: Duration = Duration::from_millis(300);

fn engine(dir: &std::path::Path) -> (Engine, Arc<Mutex<Fault>>) {
    let fault = Arc::new(Mutex::new(Fault::None));
    let faulty = Faulty { inner: EmbeddedStore::open(&dir.join("claims.redb")).expect("store"), fault: fault.clone() };
    let store = Arc::new(WithDeadline::new(faulty, DEADLINE));
    let mut ring = KeyRing::default();
    ring.insert(exclave_policies::KeyType::GRANDPA, KeyPair::from_suri(exclave_policies::Crypto::Ed25519, "//Alice").expect("key"));
    let settings = EngineSettings {
        store_instance: None,
        grants: exclave_signer::grants::Grants::insecure_allow_all(),
        log_min_free_bytes: 0,
        refused_per_client_per_minute: exclave_signer::config::default_refused_per_client_per_minute(),
        signer_id: "signer-a".into(),
        bounds: SlotBounds { slot_duration_ms: 6000, max_drift_slots: 2, genesis_slot: 0 },
        insecure_dev_seeds: false,
        lease: None,
        store_deadline: std::time::Duration::from_secs(2),
    };
    let engine = Engine::new(
        settings,
        ChainPin::Fixed(ChainId(CHAIN)),
        KeystoreDir::open(&dir.join("keystore")).expect("keystore"),
        ring,
        store,
        SigningLog::open(&dir.join("signing.log"), exclave_signer::signing_log::LogOptions::new("s")).expect("log"),
        Metrics::register(&mut prometheus_client::registry::Registry::default()),
    );
    (engine, fault)
}

fn vote(target: u8, round: u64) -> SignRequest {
    let public = sp_core::Pair::public(&<sp_core::ed25519::Pair as sp_core::Pair>::from_string("//Alice", None).expect("dev"));
    SignRequest {
        chain: Bytes(CHAIN.to_vec()),
        key_type: WireKeyType(*b"gran"),
        crypto: WireCrypto::Ed25519,
        public: Bytes(public.0.to_vec()),
        message: Bytes(grandpa_payload(false, target, 1, round, 1)),
        context: SignContext::None,
        prehashed: false,
        store_id: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_reply_after_apply_is_recognised_as_ours() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (engine, faulty) = engine(dir.path());
    *faulty.lock() = Fault::ApplyThenFail;
    let first = engine.sign("node", vote(1, 1)).await.expect("re-read proves the claim is ours");
    assert_eq!(first.outcome, SignOutcome::Signed);
    *faulty.lock() = Fault::None;
    let again = engine.sign("node", vote(1, 1)).await.expect("same data");
    assert_eq!((again.outcome, again.signature), (SignOutcome::SameData, first.signature));
    let err = engine.sign("node", vote(2, 1)).await.expect_err("conflict");
    assert_eq!(err.kind(), ErrorKind::RefusedConflict);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failure_without_apply_refuses_then_recovers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (engine, faulty) = engine(dir.path());
    *faulty.lock() = Fault::FailWithoutApply;
    let err = engine.sign("node", vote(1, 2)).await.expect_err("unknown is no");
    assert_eq!(err.kind(), ErrorKind::StoreUnavailable);
    assert!(err.to_string().contains("nothing was signed"), "{}", err.to_string());
    *faulty.lock() = Fault::None;
    assert_eq!(engine.sign("node", vote(1, 2)).await.expect("recovered").outcome, SignOutcome::Signed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_reply_with_someone_elses_claim_refuses() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (engine, faulty) = engine(dir.path());
    assert_eq!(engine.sign("node-1", vote(1, 3)).await.expect("first").outcome, SignOutcome::Signed);
    *faulty.lock() = Fault::ApplyThenFail;
    let err = engine.sign("node-2", vote(2, 3)).await.expect_err("the stored claim is node-1's");
    assert_eq!(err.kind(), ErrorKind::RefusedConflict);
    assert!(err.to_string().contains("signer-a/node-1"), "{}", err.to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_store_refuses_within_the_deadline_then_resumes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (engine, faulty) = engine(dir.path());
    *faulty.lock() = Fault::Freeze;
    let started = Instant::now();
    let err = engine.sign("node", vote(1, 4)).await.expect_err("frozen");
    let took = started.elapsed();
    assert_eq!(err.kind(), ErrorKind::StoreUnavailable);
    // One deadline for the watermark read; the claim is never reached.
    assert!(took < DEADLINE * 3, "refused after {took:?}");
    assert!(engine.readiness().await.is_err(), "not ready while the store is frozen");
    *faulty.lock() = Fault::None;
    assert_eq!(engine.sign("node", vote(1, 4)).await.expect("thawed").outcome, SignOutcome::Signed);
    assert!(engine.readiness().await.is_ok());
}
