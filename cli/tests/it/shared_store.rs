//! Several signer processes on one replicated claim store: the TiKV wire-protocol stand-in
//! (`exclave-tikv-protocol-standin`, in this test process; NOT TiKV) and a real 3-member etcd
//! cluster. Two signers racing for the same 10,000 duties with different payloads give exactly
//! one signature per duty, and the loser's refusal names the winner; through a signer, the
//! stand-in's faults (NotLeader, lost reply, frozen store, frozen PD at start-up) end in the
//! same signature, a refusal within the deadline, or not-ready-then-recovered, never in a
//! second signature.

use crate::common::*;
use exclave_protocol::{Bytes, ErrorKind, ExclaveApiClient, ExclaveError, SignContext, SignRequest, WireCrypto, WireKeyType};
use exclave_tikv_protocol_standin::StandIn;
use futures::StreamExt;
use sp_core::{ed25519, Pair};
use std::time::{Duration, Instant};

/// The store deadline the test signers are configured with.
const DEADLINE: Duration = Duration::from_secs(2);
/// Scheduling slack on a busy 2-core machine.
const MARGIN: Duration = Duration::from_millis(700);

fn alice() -> ed25519::Public {
    ed25519::Pair::from_string("//Alice", None).expect("dev").public()
}

/// Signer processes sharing the stand-in's keyspace `exclave`.
fn tikv_claims(standin: &StandIn) -> ClaimsConfig {
    standin_claims(&standin.pd_endpoint(), DEADLINE.as_millis() as u64)
}

/// A GRANDPA precommit by alice in `round` of set 9, for the block `target`.
fn vote(round: u64, target: u8) -> SignRequest {
    SignRequest {
        chain: Bytes(CHAIN.to_vec()),
        key_type: WireKeyType(*b"gran"),
        crypto: WireCrypto::Ed25519,
        public: Bytes(alice().0.to_vec()),
        message: Bytes(grandpa_payload(true, target, 5, round, 9)),
        context: SignContext::None,
        prehashed: false,
        store_id: None,
    }
}

type Answer = Result<exclave_protocol::SignResponse, jsonrpsee::core::ClientError>;

fn exclave_error(answer: &Answer) -> Option<(ErrorKind, serde_json::Value)> {
    match answer {
        Err(jsonrpsee::core::ClientError::Call(obj)) => {
            let e = ExclaveError::from_object(obj)?;
            Some((e.kind, e.data.unwrap_or_default()))
        }
        _ => None,
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

/// Signers a and b each ask, concurrently, to sign their own precommit (different targets) for
/// the same `duties` rounds. Exactly one signature per round, valid for the winner's payload;
/// the other answer is a conflict naming the winner. Returns (wins of a, wins of b, time).
fn race(signers: &[Signer], duties: u64) -> (usize, usize, Duration) {
    let rt = runtime();
    // Several connections per signer, as several nodes would have (one client is one
    // connection at a time).
    let a: Vec<_> = (0..8).map(|_| signers[0].client()).collect();
    let b: Vec<_> = (0..8).map(|_| signers[1].client()).collect();
    let started = Instant::now();
    let results: Vec<(u64, Answer, Answer)> = rt.block_on(async {
        futures::stream::iter(1..=duties)
            .map(|round| {
                let i = (round % 8) as usize;
                let (a, b) = (a[i].clone(), b[i].clone());
                async move {
                    let (ra, rb) = tokio::join!(a.sign(vote(round, 1)), b.sign(vote(round, 2)));
                    (round, ra, rb)
                }
            })
            .buffer_unordered(32)
            .collect()
            .await
    });
    let took = started.elapsed();
    let (mut wins_a, mut wins_b) = (0, 0);
    for (round, ra, rb) in &results {
        let (winner, target, won, lost) = match (ra, rb) {
            (Ok(w), Err(_)) => ("signer-a", 1, w, rb),
            (Err(_), Ok(w)) => ("signer-b", 2, w, ra),
            (Ok(_), Ok(_)) => panic!("round {round}: both signers signed"),
            (Err(ea), Err(eb)) => panic!("round {round}: nobody signed: {ea} / {eb}"),
        };
        let sig = ed25519::Signature::try_from(won.signature.0.as_slice()).expect("64 bytes");
        assert!(ed25519::Pair::verify(&sig, grandpa_payload(true, target, 5, *round, 9), &alice()), "round {round}");
        let (kind, data) = exclave_error(lost).unwrap_or_else(|| panic!("round {round}: {lost:?}"));
        assert_eq!(kind, ErrorKind::RefusedConflict, "round {round}");
        let claimer = data["claimer"].as_str().unwrap_or_default();
        assert!(claimer.starts_with(&format!("{winner}/")), "round {round}: the refusal names {claimer}, not {winner}");
        if winner == "signer-a" {
            wins_a += 1;
        } else {
            wins_b += 1;
        }
    }
    assert_eq!(results.len() as u64, duties);
    (wins_a, wins_b, took)
}

#[test]
fn two_signers_race_for_10000_duties_on_the_tikv_standin() {
    let rt = runtime();
    let standin = rt.block_on(StandIn::start()).expect("stand-in");
    let dir = tempfile::tempdir().expect("tempdir");
    let signers = spawn_signers(dir.path(), &["signer-a", "signer-b"], &tikv_claims(&standin));
    let (a, b, took) = race(&signers, 10_000);
    eprintln!("tikv stand-in: 10000 duties, 20000 requests in {took:?}: signer-a won {a}, signer-b won {b}");
}

#[test]
fn two_signers_race_for_10000_duties_on_etcd() {
    let cluster = exclave_claims::etcd::local_cluster::LocalCluster::start(3);
    let claims = etcd_claims(&cluster.endpoints(), DEADLINE.as_millis() as u64);
    let dir = tempfile::tempdir().expect("tempdir");
    let signers = spawn_signers(dir.path(), &["signer-a", "signer-b"], &claims);
    let (a, b, took) = race(&signers, 10_000);
    eprintln!("etcd (3 members): 10000 duties, 20000 requests in {took:?}: signer-a won {a}, signer-b won {b}");
}

/// A signer configured with an etcd user and password file (`auth enable` on a real etcd)
/// signs; one whose password file holds a wrong password starts, and refuses to sign, naming the
/// refused user: nothing is signed without a claim.
#[test]
fn a_signer_authenticates_to_etcd_with_its_user_and_password_file() {
    let rt = runtime();
    let cluster = exclave_claims::etcd::local_cluster::LocalCluster::start(1);
    rt.block_on(cluster.enable_password_auth(&[("exclave-signer", "signer-password", true)]));
    let dir = tempfile::tempdir().expect("tempdir");
    let signers = spawn_signers_each(dir.path(), &["signer-a", "signer-b"], |id| {
        let password = dir.path().join(format!("{id}.etcd-password"));
        let text = if id == "signer-a" { "signer-password\n" } else { "wrong-password\n" };
        exclave_signer::tls::write_file(&password, text.as_bytes(), 0o600).expect("password file");
        let mut claims = etcd_claims(&cluster.endpoints(), DEADLINE.as_millis() as u64);
        claims.etcd_user = Some("exclave-signer".into());
        claims.etcd_password_file = Some(password);
        claims
    });
    let signed = rt.block_on(signers[0].client().sign(vote(1, 1)));
    assert!(signed.is_ok(), "not signed through an authenticated etcd: {signed:?}");
    let refused = rt.block_on(signers[1].client().sign(vote(2, 1)));
    let Err(jsonrpsee::core::ClientError::Call(obj)) = &refused else { panic!("signed with a refused etcd password: {refused:?}") };
    let e = ExclaveError::from_object(obj).expect("an Exclave error");
    assert_eq!(e.kind, ErrorKind::StoreUnavailable, "{e:?}");
    assert!(e.message.contains("refused user \"exclave-signer\""), "{}", e.message);
}

/// A runtime, the stand-in, and one signer process on it with a client.
struct OneSigner {
    rt: tokio::runtime::Runtime,
    standin: StandIn,
    client: jsonrpsee::http_client::HttpClient,
    _signers: Vec<Signer>,
    _dir: tempfile::TempDir,
}

fn one_signer_on_standin() -> OneSigner {
    let rt = runtime();
    let standin = rt.block_on(StandIn::start()).expect("stand-in");
    let dir = tempfile::tempdir().expect("tempdir");
    let signers = spawn_signers(dir.path(), &["signer-a"], &tikv_claims(&standin));
    let client = signers[0].client();
    OneSigner { rt, standin, client, _signers: signers, _dir: dir }
}

/// NotLeader retried; an applied claim whose reply was lost comes back as ours: the signer
/// returns the one signature (and again for the identical request), and refuses another payload.
#[test]
fn store_faults_through_a_signer_never_give_a_second_signature() {
    let OneSigner { rt, standin, client, _signers, _dir } = one_signer_on_standin();
    rt.block_on(async {
        standin.faults().not_leader(3);
        let first = client.sign(vote(1, 1)).await.expect("signed despite NotLeader");

        standin.faults().drop_reply_after_apply(1);
        let started = Instant::now();
        let lost = client.sign(vote(2, 1)).await.expect("a lost reply is ours");
        eprintln!("lost reply: answered in {:?} ({:?})", started.elapsed(), lost.outcome);
        let again = client.sign(vote(2, 1)).await.expect("same data");
        assert_eq!(again.signature, lost.signature, "the identical request gets the one signature");
        let conflict = client.sign(vote(2, 7)).await;
        assert_eq!(exclave_error(&conflict).map(|e| e.0), Some(ErrorKind::RefusedConflict));
        assert_ne!(first.signature, lost.signature);
    });
}

/// A frozen store: the signer refuses within its deadline (claim, then re-read) and signs
/// nothing; after the thaw the same request signs.
#[test]
fn frozen_store_is_refused_within_the_deadline_then_signing_resumes() {
    let OneSigner { rt, standin, client, _signers, _dir } = one_signer_on_standin();
    rt.block_on(async {
        client.sign(vote(1, 1)).await.expect("warm");
        standin.faults().freeze_store(true);
        let started = Instant::now();
        let refused = client.sign(vote(2, 1)).await;
        let took = started.elapsed();
        eprintln!("frozen store: refused in {took:?}: {:?}", exclave_error(&refused));
        assert_eq!(exclave_error(&refused).map(|e| e.0), Some(ErrorKind::StoreUnavailable), "{refused:?}");
        assert!(took < 2 * DEADLINE + MARGIN, "refusal took {took:?}");
        standin.faults().freeze_store(false);
        let signed = client.sign(vote(2, 1)).await.expect("signs after the thaw");
        assert_eq!(signed.outcome, exclave_protocol::SignOutcome::Signed, "nothing was claimed while frozen");
    });
}

/// PD frozen when the signer starts: it starts, listens, reports not ready and refuses; after
/// the thaw it becomes ready and signs, with nobody restarting it.
#[test]
fn frozen_pd_at_start_up_not_ready_then_recovers() {
    let rt = runtime();
    let standin = rt.block_on(StandIn::start()).expect("stand-in");
    standin.faults().freeze_pd(true);
    let dir = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    let signers = spawn_signers(dir.path(), &["signer-a"], &tikv_claims(&standin));
    eprintln!("frozen PD: signer listening {:?} after spawn", started.elapsed());
    let ready = format!("{}/ready", signers[0].metrics);
    let (status, body) = http_get(&ready);
    assert_eq!(status, 503, "{body}");
    let client = signers[0].client();
    let refused = rt.block_on(client.sign(vote(1, 1)));
    assert_eq!(exclave_error(&refused).map(|e| e.0), Some(ErrorKind::StoreUnavailable), "{refused:?}");
    standin.faults().freeze_pd(false);
    let thawed = Instant::now();
    while http_get(&ready).0 != 200 {
        assert!(thawed.elapsed() < Duration::from_secs(20), "not ready 20 s after PD thawed");
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!("frozen PD: ready {:?} after the thaw", thawed.elapsed());
    rt.block_on(client.sign(vote(1, 1))).expect("signs after recovery");
}

/// An operator raises a watermark on etcd beside a running signer (as `exclave claims import`
/// does): the signer's next request below it is refused, and nothing is written there, though
/// the signer had seen the family without a watermark (its claims check the watermark in the
/// claim's own etcd transaction); above it, signing goes on.
#[test]
fn a_watermark_raised_beside_a_running_signer_on_etcd_is_honoured_without_writing_below_it() {
    use exclave_claims::{etcd::EtcdConfig, ClaimStore};
    use exclave_policies::{ChainId, ClaimKey, Duty, GrandpaStage, KeyType};
    let rt = runtime();
    let cluster = exclave_claims::etcd::local_cluster::LocalCluster::start(1);
    let claims = etcd_claims(&cluster.endpoints(), DEADLINE.as_millis() as u64);
    let dir = tempfile::tempdir().expect("tempdir");
    let signers = spawn_signers(dir.path(), &["signer-a"], &claims);
    let client = signers[0].client();
    assert!(rt.block_on(client.sign(vote(5, 1))).is_ok(), "round 5, no watermark");
    let store = rt.block_on(exclave_claims::etcd::EtcdStore::connect(&EtcdConfig::new(cluster.endpoints()))).expect("store");
    let duty = |round| Duty::GrandpaVote { set_id: 9, round, stage: GrandpaStage::Precommit };
    let key = |round| ClaimKey { chain: ChainId(CHAIN), key_type: KeyType::GRANDPA, public: alice().0.to_vec(), duty: duty(round) };
    rt.block_on(store.raise_watermark(&key(10).watermark_key(), duty(10).position())).expect("raise");
    let refused = rt.block_on(client.sign(vote(7, 1)));
    let (kind, _) = exclave_error(&refused).unwrap_or_else(|| panic!("round 7 is below the watermark: {refused:?}"));
    assert_eq!(kind, ErrorKind::RefusedPolicy, "{refused:?}");
    assert_eq!(rt.block_on(store.get(&key(7))).expect("get"), None, "nothing is written below the watermark");
    assert!(rt.block_on(client.sign(vote(11, 1))).is_ok(), "round 11 is above it");
    assert!(rt.block_on(store.get(&key(11))).expect("get").is_some());
}
