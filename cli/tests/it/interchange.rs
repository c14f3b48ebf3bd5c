//! Interchange and pruning against real stores: a history made by a real engine is exported,
//! imported into a fresh embedded store, into a fresh real 3-member etcd cluster and into the
//! TiKV wire-protocol stand-in (not TiKV; `exclave-tikv-protocol-standin`), and
//! exported again; every claim and watermark survives, a request below an imported watermark
//! is refused, the same data still gets its stored signature, and a file for another chain is
//! refused. Pruning raises watermarks before it deletes, and the engine's watermark re-read
//! closes the race between a prune and a claim in flight (an interleaving driven by a store
//! wrapper).

use crate::common;

use crate::common::{current_slot, heartbeat, request, seal_request, vote_request, CHAIN};
use async_trait::async_trait;
use exclave_claims::interchange::{self, format::Dec, Interchange, InterchangeError};
use exclave_claims::{
    embedded::EmbeddedStore,
    etcd::{local_cluster::LocalCluster, EtcdConfig, EtcdStore},
    ClaimOutcome, ClaimStore, PruneClaims, StoreError, WithDeadline,
};
use exclave_policies::{ChainId, ClaimKey, ClaimRecord, Duty, DutyKind, GrandpaStage, KeyType, Position, WatermarkKey};
use exclave_protocol::{ErrorKind, SignContext, SignOutcome, SignResponse};
use exclave_signer::engine::Engine;
use parking_lot::Mutex;
use std::{collections::HashMap, path::Path, sync::Arc, time::Duration};

fn embedded(path: &Path) -> Arc<WithDeadline<EmbeddedStore>> {
    Arc::new(WithDeadline::new(EmbeddedStore::open(path).expect("store"), Duration::from_secs(2)))
}

/// A history: a seal, GRANDPA rounds 1..=4 (both stages) and round 5 (prevote only, still in
/// progress), two heartbeats; and a heartbeat watermark set by hand.
/// The slot `make_history` sealed (a test makes one history, so one slot per test process).
static SEAL_SLOT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

async fn make_history(dir: &Path) -> (Interchange, HashMap<&'static str, SignResponse>) {
    let store = embedded(&dir.join("a.redb"));
    let e = common::engine(&dir.join("a"), "signer-a", store.clone());
    let mut sigs = HashMap::new();
    let slot = current_slot();
    sigs.insert("seal", e.sign("node-1", seal_request(slot, 1)).await.expect("seal"));
    SEAL_SLOT.store(slot, std::sync::atomic::Ordering::SeqCst);
    for round in 1..=4 {
        e.sign("node-1", vote_request(false, 1, round)).await.expect("prevote");
        e.sign("node-1", vote_request(true, 1, round)).await.expect("precommit");
    }
    sigs.insert("prevote5", e.sign("node-1", vote_request(false, 1, 5)).await.expect("prevote 5"));
    for session in [3, 4] {
        e.sign("node-1", request(KeyType::IM_ONLINE, heartbeat(9, session), SignContext::None, false)).await.expect("heartbeat");
    }
    let wk = WatermarkKey {
        chain: ChainId(CHAIN),
        key_type: KeyType::IM_ONLINE,
        public: common::alice(KeyType::IM_ONLINE),
        kind: DutyKind::Heartbeat,
    };
    store.raise_watermark(&wk, (2, 0)).await.expect("raise");
    (interchange::export(store.as_ref(), ChainId(CHAIN), &[], 1).await.expect("export"), sigs)
}

fn claims_of(file: &Interchange) -> Vec<String> {
    let mut out: Vec<String> =
        file.keys.iter().flat_map(|k| k.lists().into_iter().flat_map(|(_, l)| l.iter().map(|e| format!("{}{e:?}", k.public)))).collect();
    out.sort();
    out
}

fn marks(file: &Interchange) -> HashMap<String, Vec<(DutyKind, Position)>> {
    file.keys.iter().map(|k| (format!("{}/{}", k.key_type, k.public), k.watermarks.all())).collect()
}

/// Import `file` into `store`, export again, and check claims and watermarks; then sign on it.
async fn round_trip(file: &Interchange, sigs: &HashMap<&'static str, SignResponse>, store: Arc<dyn ClaimStore>, dir: &Path) {
    let report = interchange::import(store.as_ref(), ChainId(CHAIN), file).await.expect("import");
    assert!(report.conflicts.is_empty(), "{report:?}");
    assert_eq!(report.inserted, 1 + 9 + 2);
    let back = interchange::export(store.as_ref(), ChainId(CHAIN), &[], 2).await.expect("export");
    assert_eq!(claims_of(&back), claims_of(file), "every claim survives");
    let (before, after) = (marks(file), marks(&back));
    let gran = format!("gran/0x{}", hex::encode(common::alice(KeyType::GRANDPA)));
    let imon = format!("imon/0x{}", hex::encode(common::alice(KeyType::IM_ONLINE)));
    assert_eq!(before[&imon], vec![(DutyKind::Heartbeat, (2, 0))]);
    assert_eq!(after[&imon], vec![(DutyKind::Heartbeat, (4, 0))], "raised to the newest imported session");
    assert_eq!(after[&gran], vec![(DutyKind::GrandpaVote, (1, 4))], "the round before the newest: round 5 may be in progress");
    // Importing again changes nothing.
    let again = interchange::import(store.as_ref(), ChainId(CHAIN), file).await.expect("import again");
    assert_eq!((again.inserted, again.already_present), (0, 12));

    let e: Engine = common::engine(dir, "signer-b", store);
    let refused = e.sign("node-2", vote_request(false, 2, 3)).await.expect_err("below the imported watermark");
    assert_eq!(refused.kind(), ErrorKind::RefusedConflict, "{refused:?}");
    let refused = e.sign("node-2", vote_request(false, 2, 0)).await.expect_err("below, never claimed");
    assert!(refused.to_string().contains("watermark"), "{refused:?}");
    let same = e.sign("node-2", vote_request(false, 1, 5)).await.expect("same data");
    assert_eq!((same.outcome, same.signature.clone()), (SignOutcome::SameData, sigs["prevote5"].signature.clone()));
    // The same seal (same slot) is same-data, or refused once the slot is out of the drift bounds.
    let seal = e.sign("node-2", seal_request(SEAL_SLOT.load(std::sync::atomic::Ordering::SeqCst), 1)).await;
    if let Ok(seal) = seal {
        assert_eq!(seal.signature, sigs["seal"].signature, "the sr25519 seal is the stored one");
    }
    assert_eq!(e.sign("node-2", vote_request(true, 1, 5)).await.expect("precommit of round 5").outcome, SignOutcome::Signed);
    let hb = e.sign("node-2", request(KeyType::IM_ONLINE, heartbeat(9, 4), SignContext::None, false)).await.expect("same heartbeat");
    assert_eq!(hb.outcome, SignOutcome::SameData);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_import_round_trip_into_a_fresh_embedded_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (file, sigs) = make_history(dir.path()).await;
    let json = serde_json::to_string(&file).expect("json");
    assert!(json.contains("\"round\":\"5\""), "64-bit numbers are strings: {json}");
    let file: Interchange = serde_json::from_str(&json).expect("parses back");
    round_trip(&file, &sigs, embedded(&dir.path().join("b.redb")), &dir.path().join("b")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_import_round_trip_into_a_fresh_etcd_cluster() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (file, sigs) = make_history(dir.path()).await;
    let cluster = LocalCluster::start(3);
    let store = WithDeadline::new(EtcdStore::connect(&EtcdConfig::new(cluster.endpoints())).await.expect("etcd"), Duration::from_secs(2));
    round_trip(&file, &sigs, Arc::new(store), &dir.path().join("b")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_import_round_trip_into_the_tikv_standin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (file, sigs) = make_history(dir.path()).await;
    let standin = exclave_tikv_protocol_standin::StandIn::start().await.expect("stand-in");
    let config = exclave_claims::tikv::TikvConfig::new([standin.pd_endpoint()]);
    let store = WithDeadline::new(exclave_claims::tikv::TikvStore::new(&config).expect("tikv"), Duration::from_secs(2));
    round_trip(&file, &sigs, Arc::new(store), &dir.path().join("b")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_refuses_another_chain_and_bad_files_before_writing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (file, _) = make_history(dir.path()).await;
    let store = embedded(&dir.path().join("b.redb"));
    let err = interchange::import(store.as_ref(), ChainId([9; 32]), &file).await.expect_err("another chain");
    assert!(matches!(err, InterchangeError::WrongChain { .. }), "{err}");
    let mut bad = file.clone();
    bad.keys[0].grandpa_votes.push(Default::default());
    bad.keys[0].babe_slots.push(exclave_claims::interchange::format::Entry { slot: Some(Dec(1)), ..Default::default() });
    let err = interchange::import(store.as_ref(), ChainId(CHAIN), &bad).await.expect_err("bad entry");
    assert!(matches!(err, InterchangeError::BadEntry { .. }), "{err}");
    // A public key of the wrong length, and a watermark of another family, refused by name.
    let mut long_key = file.clone();
    long_key.keys[0].public = format!("0x{}", "ab".repeat(256));
    let err = interchange::import(store.as_ref(), ChainId(CHAIN), &long_key).await.expect_err("a 256-byte key");
    assert!(err.to_string().contains("the public key is 256 bytes"), "{err}");
    let mut odd_mark = file.clone();
    let gran = odd_mark.keys.iter_mut().find(|k| k.key_type == "gran").expect("a gran key");
    *gran.watermarks.get_mut(DutyKind::BabeSeal) = Some([Dec(1), Dec(0)]);
    let err = interchange::import(store.as_ref(), ChainId(CHAIN), &odd_mark).await.expect_err("a seal watermark on gran");
    assert!(err.to_string().contains("does not belong to a gran key"), "{err}");
    let mut newer = file.clone();
    newer.metadata.version = 2;
    assert!(matches!(interchange::import(store.as_ref(), ChainId(CHAIN), &newer).await, Err(InterchangeError::Unsupported { .. })));
    assert!(interchange::export(store.as_ref(), ChainId(CHAIN), &[], 0).await.expect("export").keys.is_empty(), "nothing written");
    // `export --keystore` lists every key of the keystore; an `audi` key has no duties and gets
    // no entry (with one, import refused the whole file).
    let extra = [(KeyType::AUTHORITY_DISCOVERY, vec![7u8; 32]), (KeyType::GRANDPA, vec![8u8; 32])];
    let exported = interchange::export(store.as_ref(), ChainId(CHAIN), &extra, 0).await.expect("export");
    assert_eq!(exported.keys.iter().map(|k| k.key_type.as_str()).collect::<Vec<_>>(), vec!["gran"]);
    interchange::import(store.as_ref(), ChainId(CHAIN), &exported).await.expect("an export with --keystore imports");
    assert!(
        serde_json::from_str::<Interchange>(&serde_json::to_string(&file).expect("json").replace("\"keys\"", "\"extra\":1,\"keys\""))
            .is_err(),
        "unknown fields are errors"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_reports_a_conflict_and_keeps_the_stores_claim() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (file, _) = make_history(dir.path()).await;
    let store = embedded(&dir.path().join("b.redb"));
    let e = common::engine(&dir.path().join("b"), "signer-b", store.clone());
    e.sign("node-2", vote_request(false, 7, 2)).await.expect("b signs round 2 differently");
    let report = interchange::import(store.as_ref(), ChainId(CHAIN), &file).await.expect("import");
    assert_eq!(report.conflicts.len(), 1, "{report:?}");
    assert_eq!(report.conflicts[0].stored_claimer, "signer-b/node-2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_raises_the_watermark_before_deleting_and_keeps_the_newest_round() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = embedded(&dir.path().join("a.redb"));
    let e = common::engine(&dir.path().join("a"), "signer-a", store.clone());
    for round in 1..=4 {
        e.sign("node-1", vote_request(false, 1, round)).await.expect("prevote");
    }
    let below = HashMap::from([(DutyKind::GrandpaVote, (1, 100))]);
    let dry = interchange::prune(store.as_ref(), ChainId(CHAIN), &below, Duration::ZERO, true).await.expect("dry run");
    assert_eq!((dry.deleted, dry.examined), (3, 4));
    assert_eq!(
        interchange::export(store.as_ref(), ChainId(CHAIN), &[], 0).await.expect("export").keys[0].grandpa_votes.len(),
        4,
        "a dry run writes nothing"
    );
    let report = interchange::prune(store.as_ref(), ChainId(CHAIN), &below, Duration::ZERO, false).await.expect("prune");
    assert_eq!(report.deleted, 3);
    let after = interchange::export(store.as_ref(), ChainId(CHAIN), &[], 0).await.expect("export");
    assert_eq!(after.keys[0].grandpa_votes.len(), 1, "the newest round is kept");
    assert_eq!(after.keys[0].watermarks.all(), vec![(DutyKind::GrandpaVote, (1, 3))]);
    let err = e.sign("node-1", vote_request(false, 2, 2)).await.expect_err("a pruned round, other data");
    assert!(err.to_string().contains("watermark"), "{err:?}");
    assert_eq!(e.sign("node-1", vote_request(true, 1, 4)).await.expect("the newest round continues").outcome, SignOutcome::Signed);
}

/// A store that runs a prune (raise the watermark, delete the old claim) at the worst moment:
/// after the engine read the watermark, just before its claim reaches the store.
struct PruneDuringClaim {
    inner: Arc<WithDeadline<EmbeddedStore>>,
    pending: Mutex<Option<(WatermarkKey, Position, Vec<u8>)>>,
    /// Offer the embedded store's guarded claim (the engine's one-step path) or hide it (the
    /// read, claim, re-read path other stores take).
    guard: bool,
}

impl PruneDuringClaim {
    async fn prune_now(&self) -> Result<(), StoreError> {
        let prune = self.pending.lock().take();
        if let Some((wk, to, doomed)) = prune {
            self.inner.raise_watermark(&wk, to).await?;
            self.inner.delete_claims(&[doomed]).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl ClaimStore for PruneDuringClaim {
    fn backend(&self) -> &'static str {
        "prune-during-claim"
    }
    async fn claim(&self, key: &ClaimKey, record: &ClaimRecord) -> Result<ClaimOutcome, StoreError> {
        self.prune_now().await?;
        self.inner.claim(key, record).await
    }
    fn guards_claims(&self) -> bool {
        self.guard
    }
    async fn claim_guarded(
        &self,
        key: &ClaimKey,
        record: &ClaimRecord,
        seen: exclave_claims::WatermarkSeen,
    ) -> Result<exclave_claims::Guarded, StoreError> {
        self.prune_now().await?;
        self.inner.claim_guarded(key, record, seen).await
    }
    async fn get(&self, key: &ClaimKey) -> Result<Option<ClaimRecord>, StoreError> {
        self.inner.get(key).await
    }
    async fn list(&self, prefix: &[u8], limit: usize) -> Result<Vec<(Vec<u8>, ClaimRecord)>, StoreError> {
        self.inner.list(prefix, limit).await
    }
    async fn watermark(&self, key: &WatermarkKey) -> Result<Option<Position>, StoreError> {
        self.inner.watermark(key).await
    }
    async fn raise_watermark(&self, key: &WatermarkKey, to: Position) -> Result<Position, StoreError> {
        self.inner.raise_watermark(key, to).await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }
    async fn register(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.register(name).await
    }
    async fn swap_register(&self, name: &str, expected: Option<&[u8]>, new: &[u8]) -> Result<exclave_claims::Swap, StoreError> {
        self.inner.swap_register(name, expected, new).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_racing_a_prune_is_refused_by_the_watermark_re_read() {
    let (inner, key, err) = claim_racing_a_prune(false).await;
    assert_eq!(err.kind(), ErrorKind::RefusedPolicy, "{err:?}");
    assert!(err.to_string().contains("watermark"), "{err:?}");
    assert!(inner.get(&key).await.expect("get").is_some_and(|r| r.claimer == "signer-a/node-2"), "the claim was inserted (and withheld)");
}

/// The same race on the guarded path (the embedded store and etcd): the store checks the
/// watermark the engine last saw in the claim's own transaction, finds it raised, and writes
/// nothing; the engine then refuses on the new watermark.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_racing_a_prune_is_refused_by_the_guard_and_writes_nothing() {
    let (inner, key, err) = claim_racing_a_prune(true).await;
    assert_eq!(err.kind(), ErrorKind::RefusedPolicy, "{err:?}");
    assert!(err.to_string().contains("watermark"), "{err:?}");
    assert_eq!(inner.get(&key).await.expect("get"), None, "nothing is written below the raised watermark");
}

/// Round 5 signed by node-1; then node-2 asks for another round-5 prevote while a prune (raise
/// to round 5, delete the round-5 claim) runs inside its claim call, the worst interleaving.
async fn claim_racing_a_prune(guard: bool) -> (Arc<WithDeadline<EmbeddedStore>>, ClaimKey, exclave_signer::engine::EngineError) {
    let dir = tempfile::tempdir().expect("tempdir");
    let inner = embedded(&dir.path().join("a.redb"));
    let store = Arc::new(PruneDuringClaim { inner: inner.clone(), pending: Mutex::new(None), guard });
    let e = common::engine(&dir.path().join("a"), "signer-a", store.clone());
    let first = e.sign("node-1", vote_request(false, 1, 5)).await.expect("round 5 prevote");
    assert_eq!(first.outcome, SignOutcome::Signed);
    let duty = Duty::GrandpaVote { set_id: 1, round: 5, stage: GrandpaStage::Prevote };
    let key = ClaimKey { chain: ChainId(CHAIN), key_type: KeyType::GRANDPA, public: common::alice(KeyType::GRANDPA), duty };
    *store.pending.lock() = Some((key.watermark_key(), (1, 5), key.to_bytes()));
    // The engine reads no watermark (or has none cached), signs, and its claim lands after the
    // prune deleted the round-5 claim. Only the re-read (or the guard) stands between this and
    // a second, conflicting round-5 prevote.
    let err = e.sign("node-2", vote_request(false, 2, 5)).await.expect_err("must not be released");
    assert!(store.pending.lock().is_none(), "the prune ran inside the claim");
    (inner, key, err)
}

fn exclave(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_exclave")).args(args).output().expect("run exclave")
}

/// The CLI end to end: export from one embedded store, import into another, refuse another
/// chain, and a dry-run prune; exit codes and messages as documented in docs/audit.md.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_cli_export_import_prune() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b, file) = (dir.path().join("a.redb"), dir.path().join("b.redb"), dir.path().join("claims.json"));
    {
        let store = embedded(&a);
        let e = common::engine(&dir.path().join("a"), "signer-a", store.clone());
        for round in 1..=3 {
            e.sign("node-1", vote_request(false, 1, round)).await.expect("prevote");
        }
    }
    let chain = format!("0x{}", hex::encode(CHAIN));
    let (a, b, file) = (a.to_str().expect("utf8"), b.to_str().expect("utf8"), file.to_str().expect("utf8"));
    // The engine's store may take a moment to release its file lock.
    let mut out = exclave(&["claims", "export", "--embedded", a, "--chain", &chain, "-o", file]);
    for _ in 0..50 {
        if out.status.success() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        out = exclave(&["claims", "export", "--embedded", a, "--chain", &chain, "-o", file]);
    }
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("exported 3 claim(s) of 1 key(s)"));
    let wrong = exclave(&["claims", "import", file, "--embedded", b, "--chain", &format!("0x{}", hex::encode([9u8; 32]))]);
    assert_eq!(wrong.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("refusing to import"), "{}", String::from_utf8_lossy(&wrong.stderr));
    let ok = exclave(&["claims", "import", file, "--embedded", b, "--chain", &chain]);
    assert_eq!(ok.status.code(), Some(0), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("3 claim(s) inserted"), "{}", String::from_utf8_lossy(&ok.stdout));
    let dry = exclave(&["claims", "prune", "--embedded", b, "--chain", &chain, "--below", "grandpa_vote=1,3", "--dry-run"]);
    assert!(String::from_utf8_lossy(&dry.stdout).contains("would delete 2 of 3 claim(s)"), "{}", String::from_utf8_lossy(&dry.stdout));
}
