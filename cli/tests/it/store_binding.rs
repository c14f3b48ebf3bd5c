//! A signing request bound to a claim store (`storeId`, sent by clients of several signers) is
//! claimed only in that store: a signer on another store refuses it (1009 `store-mismatch`)
//! before claiming, so the duty stays free; the right id, or none, is signed as usual.

use crate::common;

use crate::common::vote_request;
use exclave_claims::{embedded::EmbeddedStore, ClaimStore, WithDeadline};
use exclave_protocol::{ErrorKind, SignOutcome, SignRequest};
use std::{sync::Arc, time::Duration};

fn bound(req: SignRequest, id: &str) -> SignRequest {
    SignRequest { store_id: Some(id.into()), ..req }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_for_another_store_is_refused_before_the_claim() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn ClaimStore> =
        Arc::new(WithDeadline::new(EmbeddedStore::open(&dir.path().join("claims.redb")).expect("store"), Duration::from_secs(2)));
    let e = common::engine(dir.path(), "signer-a", store);
    let mine = e.store_id().await.expect("the store has an id");
    let other = "0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a";
    assert_ne!(mine, other);

    let refused = e.sign("alice-1", bound(vote_request(false, 1, 7), other)).await.expect_err("another store's request");
    assert_eq!(refused.kind(), ErrorKind::StoreMismatch, "{refused:?}");
    assert!(refused.to_string().contains(&mine) && refused.to_string().contains(other), "the refusal names both stores: {}", refused);

    // Nothing was claimed: a different vote for the same round is still free, then the claim
    // binds it whichever way the request comes.
    let signed = e.sign("alice-1", bound(vote_request(false, 2, 7), &mine)).await.expect("bound to this store");
    assert_eq!(signed.outcome, SignOutcome::Signed);
    let again = e.sign("alice-1", vote_request(false, 2, 7)).await.expect("unbound, identical");
    assert_eq!((again.outcome, again.signature), (SignOutcome::SameData, signed.signature));
    let conflict = e.sign("alice-1", bound(vote_request(false, 1, 7), &mine)).await.expect_err("the first vote, now conflicting");
    assert_eq!(conflict.kind(), ErrorKind::RefusedConflict);
}

/// Two signers on copies of one embedded `claims.redb` are two stores: they report different
/// store ids (the file's identity is part of it), so a node listing both never fails over
/// between them. The same file reopened keeps its id.
#[test]
fn copies_of_one_embedded_store_report_different_ids() {
    use common::{embedded_claims, rpc_client, Signer, TestConfig};
    use exclave_protocol::ExclaveApiClient;
    let dir = tempfile::tempdir().expect("tempdir");
    exclave_signer::tls::DevPki::ensure(dir.path()).expect("pki");
    common::import_key(&dir.path().join("keystore"), "gran", "//Alice");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let spawn = |id: &str, file: &str| {
        let cfg = TestConfig::new(dir.path(), id).own_log().claims(embedded_claims(&dir.path().join(file))).write();
        Signer::spawn(&["serve".into(), "--config".into(), cfg.display().to_string()], dir.path())
    };
    let store_id = |s: &Signer| rt.block_on(rpc_client(&s.rpc, &s.tls()).status()).expect("status").store_id;
    let mut first = spawn("signer-a", "a.redb");
    let original = store_id(&first);
    first.kill9();
    std::fs::copy(dir.path().join("a.redb"), dir.path().join("b.redb")).expect("copy the store file");
    let (a, b) = (spawn("signer-a", "a.redb"), spawn("signer-b", "b.redb"));
    let (ida, idb) = (store_id(&a), store_id(&b));
    assert_eq!(ida, original, "the same file keeps its id");
    assert_ne!(ida, idb, "a copy is another store");
    assert_eq!(ida.split('-').next(), idb.split('-').next(), "both carry the copied register; the file identity tells them apart");
}
