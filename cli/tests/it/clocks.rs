//! Signer clocks that disagree: two signers share one claim store (the TiKV wire-protocol
//! stand-in, NOT TiKV), one of them running under libfaketime (Debian's `faketime`) seconds ahead
//! or behind. The claims hold whatever the clocks say: every GRANDPA round and BABE slot gets
//! exactly one signature when two nodes race different payloads through the two signers. The
//! active-node lease keeps its expiry in wall-clock time, so a signer whose clock runs ahead sees
//! a lease expire early and hands it to the standby while the holder still renews through the
//! other signer: two nodes are then active, and the claims alone keep them from signing twice.
//! docs/reliability.md ("Clocks") states the assumption this shows.

use crate::common::*;
use exclave_protocol::{ErrorKind, ExclaveApiClient, ExclaveError, SignRequest};
use exclave_tikv_protocol_standin::StandIn;
use std::time::Duration;

const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/// A signer on `claims` whose wall clock is shifted by `skew` (`+5s`, `-5s`; monotonic time is
/// left alone, as the kernel's would be).
fn skewed_signer(dir: &std::path::Path, id: &str, claims: ClaimsConfig, lease: bool, skew: &str) -> Signer {
    assert!(std::path::Path::new(LIBFAKETIME).exists(), "{LIBFAKETIME} is missing: apt-get install faketime (scripts/test.sh does)");
    let mut cfg = TestConfig::new(dir, id).claims(claims).own_log();
    cfg.0.lease.enabled = lease;
    cfg.0.lease.duration_ms = 6000;
    cfg.0.lease.renew_ms = 1000;
    let args = ["serve".into(), "--config".into(), cfg.write().display().to_string()];
    let envs = [("LD_PRELOAD", LIBFAKETIME), ("FAKETIME", skew), ("FAKETIME_DONT_FAKE_MONOTONIC", "1"), ("FAKETIME_NO_CACHE", "1")];
    Signer::spawn_with_env(&args, dir, &envs)
}

/// The outcome of one request: signed, or the refusal's kind.
fn outcome(answer: Result<exclave_protocol::SignResponse, jsonrpsee::core::ClientError>) -> Result<(), ErrorKind> {
    match answer {
        Ok(_) => Ok(()),
        Err(jsonrpsee::core::ClientError::Call(obj)) => Err(ExclaveError::from_object(&obj).expect("an Exclave error").kind),
        Err(other) => panic!("transport failure: {other}"),
    }
}

/// Race `a` and `b` (different payloads for the same duty) through the two signers; exactly one
/// must be signed and the other refused as a conflict.
async fn race(to_a: &jsonrpsee::http_client::HttpClient, to_b: &jsonrpsee::http_client::HttpClient, a: SignRequest, b: SignRequest) {
    let (ra, rb) = tokio::join!(to_a.sign(a), to_b.sign(b));
    let got = (outcome(ra), outcome(rb));
    assert!(matches!(got, (Ok(()), Err(ErrorKind::RefusedConflict)) | (Err(ErrorKind::RefusedConflict), Ok(()))), "{got:?}");
}

#[test]
fn skewed_signer_clocks_never_give_a_duty_two_signatures() {
    for skew in ["+5s", "-5s"] {
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        let standin = rt.block_on(StandIn::start()).expect("stand-in");
        let dir = tempfile::tempdir().expect("tempdir");
        exclave_signer::tls::DevPki::ensure(dir.path()).expect("pki");
        for kt in ["gran", "babe"] {
            import_key(&dir.path().join("keystore"), kt, "//Alice");
        }
        let claims = || standin_claims(&standin.pd_endpoint(), 2000);
        let a = skewed_signer(dir.path(), "signer-a", claims(), false, "+0s");
        let b = skewed_signer(dir.path(), "signer-b", claims(), false, skew);
        let (to_a, to_b) = (a.client(), b.client());
        rt.block_on(async {
            for round in 1..=50 {
                race(&to_a, &to_b, vote_request(false, 1, round), vote_request(false, 2, round)).await;
            }
            // BABE seals for the slots around the real clock: both signers accept the slot (two
            // slots of drift at 6 s slots), the claim lets one through.
            let now = current_slot();
            for slot in now - 1..=now + 1 {
                race(&to_a, &to_b, seal_request(slot, 1), seal_request(slot, 2)).await;
            }
        });
        eprintln!("clock skew {skew}: 50 GRANDPA rounds and 3 BABE slots raced, one signature each");
    }
}

/// What the lease does when one signer's clock runs 10 s ahead: the standby, asking that signer,
/// is handed the lease while the holder still renews through the other; both nodes are then
/// active, and a vote both of them send for one round is still signed once.
#[test]
fn a_signer_clock_ahead_hands_the_lease_over_early_and_the_claims_still_hold() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let standin = rt.block_on(StandIn::start()).expect("stand-in");
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = exclave_signer::tls::DevPki::ensure_with_nodes(dir.path(), &["alice-1", "alice-2"]).expect("pki");
    import_key(&dir.path().join("keystore"), "gran", "//Alice");
    let claims = || standin_claims(&standin.pd_endpoint(), 2000);
    let a = skewed_signer(dir.path(), "signer-a", claims(), true, "+0s");
    let b = skewed_signer(dir.path(), "signer-b", claims(), true, "+10s");
    let node = |name: &str, signer: &Signer| {
        let (cert, key) = pki.node_files(name);
        rpc_client(&signer.rpc, &exclave_keystore_remote::TlsFiles { ca: pki.ca.clone(), cert, key })
    };
    let (alice_1, alice_2) = (node("alice-1", &a), node("alice-2", &b));
    let gran = vec![(exclave_protocol::Bytes(alice(exclave_policies::KeyType::GRANDPA)), exclave_protocol::WireKeyType(*b"gran"))];
    rt.block_on(async {
        let first = alice_1.lease(gran.clone()).await.expect("lease via signer-a");
        assert!(first.iter().all(|s| s.active), "alice-1 takes the free lease: {first:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(alice_1.lease(gran.clone()).await.expect("renew").iter().all(|s| s.active), "alice-1 renews");
        let second = alice_2.lease(gran.clone()).await.expect("lease via signer-b");
        let both_active = second.iter().all(|s| s.active);
        eprintln!("signer-b 10 s ahead: alice-2 active = {both_active} while alice-1 renews through signer-a: {second:?}");
        assert!(both_active, "expected the clock assumption to show: signer-b sees alice-1's lease as expired");
        // Both nodes believe they are active; they sign different votes for one round.
        race(&alice_1, &alice_2, vote_request(false, 1, 7), vote_request(false, 2, 7)).await;
    });
}
