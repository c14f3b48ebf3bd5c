//! What the signer's engine makes of a claim, for fault tests of any backend: claim, and on
//! an error re-read, and count a win only on proof it is ours. Streams of such claims by
//! several claimers, and the check that matters after any fault: never two winners for one
//! key, every win stored, every loser shown the stored record.

use crate::{ClaimOutcome, ClaimStore};
use exclave_policies::{ChainId, ClaimKey, ClaimRecord, Duty, GrandpaStage};
use std::{
    collections::BTreeMap,
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

/// The claim key of GRANDPA round `round` (set 1, prevote) on the chain `[chain; 32]`.
pub fn key(chain: u8, round: u64) -> ClaimKey {
    super::key(ChainId([chain; 32]), Duty::GrandpaVote { set_id: 1, round, stage: GrandpaStage::Prevote })
}

/// What the signer's engine concludes from one claim: the store's answer, then on an error a
/// re-read, released only if the stored record is ours.
#[derive(Clone, Debug, PartialEq)]
pub enum Engine {
    /// `Inserted`.
    Inserted,
    /// `Existing(ours)`, directly or found by the re-read after an error.
    Ours,
    /// Someone else's record.
    Lost(ClaimRecord),
    /// An error, and the re-read found nothing or failed: nothing is signed.
    Unavailable,
}

/// Claim `k` for `mine` as the engine does; the verdict and how long claim and re-read took.
pub async fn claim_like_engine<S: ClaimStore>(store: &S, k: &ClaimKey, mine: &ClaimRecord) -> (Engine, Duration) {
    let started = Instant::now();
    let verdict = match store.claim(k, mine).await {
        Ok(ClaimOutcome::Inserted) => Engine::Inserted,
        Ok(ClaimOutcome::Existing(r)) if r == *mine => Engine::Ours,
        Ok(ClaimOutcome::Existing(r)) => Engine::Lost(r),
        Err(_) => match store.get(k).await {
            Ok(Some(r)) if r == *mine => Engine::Ours,
            Ok(Some(r)) => Engine::Lost(r),
            Ok(None) | Err(_) => Engine::Unavailable,
        },
    };
    (verdict, started.elapsed())
}

/// One claim of a stream.
pub struct Row {
    /// The round claimed.
    pub round: u64,
    /// When the claim was sent.
    pub started: Instant,
    /// The outcome.
    pub verdict: Engine,
    /// Claim, plus the re-read after an error.
    pub took: Duration,
}

/// One claimer's stream: claims rounds 0, 1, … of `chain` until `stop`, recording each round,
/// when its claim started, the verdict and how long claim and re-read took.
pub async fn stream<S: ClaimStore>(store: S, me: String, chain: u8, stop: Arc<AtomicBool>, done: Arc<AtomicUsize>) -> Vec<Row> {
    let mut out = Vec::new();
    for round in 0.. {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let mine = super::record(&me, format!("{me}-{round}").as_bytes());
        let started = Instant::now();
        let (verdict, took) = claim_like_engine(&store, &key(chain, round), &mine).await;
        out.push(Row { round, started, verdict, took });
        done.fetch_add(1, Ordering::Relaxed);
    }
    out
}

/// Never two winners for one key; every win is stored, and every loser saw the stored record.
pub async fn assert_one_winner<S: ClaimStore>(store: &S, chain: u8, results: &[(String, Vec<Row>)]) -> usize {
    let mut by_round: BTreeMap<u64, Vec<(&str, &Engine)>> = BTreeMap::new();
    for (me, rows) in results {
        for row in rows {
            by_round.entry(row.round).or_default().push((me, &row.verdict));
        }
    }
    let mut orphans = 0;
    for (round, verdicts) in &by_round {
        let stored = store.get(&key(chain, *round)).await.expect("read back");
        let winners: Vec<&str> = verdicts.iter().filter(|(_, v)| matches!(v, Engine::Inserted | Engine::Ours)).map(|(me, _)| *me).collect();
        assert!(winners.len() <= 1, "round {round}: two winners {winners:?}");
        if let Some(me) = winners.first() {
            let expected = super::record(me, format!("{me}-{round}").as_bytes());
            assert_eq!(stored.as_ref(), Some(&expected), "round {round}: {me}'s win is not what is stored");
        } else if stored.is_some() {
            orphans += 1; // An ambiguous claim committed after its re-read: nobody signed it.
        }
        for (me, v) in verdicts {
            if let Engine::Lost(r) = v {
                assert_eq!(stored.as_ref(), Some(r), "round {round}: {me} was shown a record that did not win");
            }
        }
    }
    orphans
}

/// Wait until `done` reaches `n` (polling every 10 ms).
pub async fn wait_for(done: &AtomicUsize, n: usize) {
    let start = Instant::now();
    while done.load(Ordering::Relaxed) < n {
        assert!(start.elapsed() < Duration::from_secs(60), "claims stalled at {}", done.load(Ordering::Relaxed));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
