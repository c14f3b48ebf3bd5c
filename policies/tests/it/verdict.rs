//! The verdict rule: a readable case table (sign, same data with the stored signature, conflict
//! naming the claimer, empty signatures, low watermark), then a bounded exhaustive check: every
//! sequence of up to five events over two duties, three payloads and watermark raises, run
//! through a simulated atomic claim store exactly as a signer uses it, against a naive reference
//! model. The checker is itself checked: deliberately broken rules must be caught.

use exclave_policies::{payload_hash, verdict, ClaimRecord, Position, Refusal, Verdict};
use std::collections::HashMap;

fn record(payload: &[u8], signature: &[u8]) -> ClaimRecord {
    ClaimRecord {
        claimer: "signer-a/alice-1".into(),
        payload_hash: payload_hash(payload),
        signature: signature.to_vec(),
        claimed_at_ms: 1_700_000_000_000,
    }
}

fn conflict(payload: &[u8]) -> Verdict {
    Verdict::Refuse(Refusal::Conflict {
        claimer: "signer-a/alice-1".into(),
        payload_hash: hex::encode(payload_hash(payload)),
        claimed_at_ms: 1_700_000_000_000,
    })
}

fn below(position: Position, watermark: Position) -> Verdict {
    Verdict::Refuse(Refusal::BelowWatermark { position, watermark })
}

struct Case {
    name: &'static str,
    existing: Option<ClaimRecord>,
    candidate: &'static [u8],
    position: Position,
    watermark: Option<Position>,
    expect: Verdict,
}

#[test]
fn verdict_case_table() {
    let sig = vec![0x5e; 64];
    let same = || Verdict::SameData { signature: vec![0x5e; 64] };
    let a = || Some(record(b"A", &sig));
    let cases = [
        Case { name: "no claim", existing: None, candidate: b"A", position: (5, 0), watermark: None, expect: Verdict::Sign },
        Case {
            name: "no claim, above watermark",
            existing: None,
            candidate: b"A",
            position: (5, 0),
            watermark: Some((4, 0)),
            expect: Verdict::Sign,
        },
        Case {
            name: "no claim, at watermark",
            existing: None,
            candidate: b"A",
            position: (5, 0),
            watermark: Some((5, 0)),
            expect: below((5, 0), (5, 0)),
        },
        Case {
            name: "no claim, below watermark",
            existing: None,
            candidate: b"A",
            position: (5, 0),
            watermark: Some((9, 0)),
            expect: below((5, 0), (9, 0)),
        },
        Case {
            name: "no claim, watermark at zero",
            existing: None,
            candidate: b"A",
            position: (0, 0),
            watermark: Some((0, 0)),
            expect: below((0, 0), (0, 0)),
        },
        // Positions compare lexicographically: (set id, round).
        Case {
            name: "new set above an old set's high round",
            existing: None,
            candidate: b"A",
            position: (1, 1),
            watermark: Some((0, 1000)),
            expect: Verdict::Sign,
        },
        Case {
            name: "same set, next round",
            existing: None,
            candidate: b"A",
            position: (1, 6),
            watermark: Some((1, 5)),
            expect: Verdict::Sign,
        },
        Case {
            name: "same set, same round",
            existing: None,
            candidate: b"A",
            position: (1, 5),
            watermark: Some((1, 5)),
            expect: below((1, 5), (1, 5)),
        },
        Case {
            name: "old set, high round",
            existing: None,
            candidate: b"A",
            position: (0, 1000),
            watermark: Some((1, 0)),
            expect: below((0, 1000), (1, 0)),
        },
        // Same data: the stored signature, never a fresh one; the watermark does not block it.
        Case { name: "same payload", existing: a(), candidate: b"A", position: (5, 0), watermark: None, expect: same() },
        Case {
            name: "same payload, at watermark",
            existing: a(),
            candidate: b"A",
            position: (5, 0),
            watermark: Some((5, 0)),
            expect: same(),
        },
        Case {
            name: "same payload, below watermark",
            existing: a(),
            candidate: b"A",
            position: (5, 0),
            watermark: Some((50, 0)),
            expect: same(),
        },
        // A different payload is a conflict that names who holds the claim.
        Case { name: "different payload", existing: a(), candidate: b"B", position: (5, 0), watermark: None, expect: conflict(b"A") },
        Case {
            name: "different payload, above watermark",
            existing: a(),
            candidate: b"B",
            position: (5, 0),
            watermark: Some((1, 0)),
            expect: conflict(b"A"),
        },
        Case {
            name: "different payload, below watermark",
            existing: a(),
            candidate: b"B",
            position: (5, 0),
            watermark: Some((9, 0)),
            expect: conflict(b"A"),
        },
        // A record without a signature never matches.
        Case {
            name: "same payload, empty signature",
            existing: Some(record(b"A", &[])),
            candidate: b"A",
            position: (5, 0),
            watermark: None,
            expect: conflict(b"A"),
        },
        Case {
            name: "same payload, empty signature, below watermark",
            existing: Some(record(b"A", &[])),
            candidate: b"A",
            position: (5, 0),
            watermark: Some((9, 0)),
            expect: conflict(b"A"),
        },
        Case {
            name: "different payload, empty signature",
            existing: Some(record(b"A", &[])),
            candidate: b"B",
            position: (5, 0),
            watermark: None,
            expect: conflict(b"A"),
        },
    ];
    let mut failures = Vec::new();
    for case in &cases {
        let hash = payload_hash(case.candidate);
        let got = verdict(case.existing.as_ref(), &hash, case.position, case.watermark);
        if got != case.expect {
            failures.push(format!("{}: expected {:?}, got {:?}", case.name, case.expect, got));
        }
    }
    assert!(failures.is_empty(), "failing cases:\n{}", failures.join("\n"));
}

#[test]
fn conflict_display_names_claimer_and_hash() {
    let hash = payload_hash(b"B");
    let Verdict::Refuse(refusal) = verdict(Some(&record(b"A", &[1])), &hash, (1, 0), None) else {
        panic!("expected a refusal");
    };
    let text = refusal.to_string();
    assert!(text.contains("signer-a/alice-1"), "{text}");
    assert!(text.contains(&hex::encode(payload_hash(b"A"))), "{text}");
}

// ---------------------------------------------------------------------------------------------
// Bounded exhaustive check against a reference model

const DUTIES: usize = 2;
const PAYLOADS: usize = 3;
/// Duty `d` sits at position `(d + 1, 0)`; watermarks range over these and `(0, 0)`.
fn position(duty: usize) -> Position {
    (duty as u64 + 1, 0)
}

#[derive(Clone, Copy, Debug)]
enum Event {
    /// A request to sign `payload` for `duty`.
    Request { duty: usize, payload: usize },
    /// The store's low watermark is raised (never lowered) to this position.
    Raise(Position),
}

fn alphabet() -> Vec<Event> {
    let mut events = Vec::new();
    for duty in 0..DUTIES {
        for payload in 0..PAYLOADS {
            events.push(Event::Request { duty, payload });
        }
    }
    events.extend([Event::Raise(position(0)), Event::Raise(position(1))]);
    events
}

/// What the node gets back for a request.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Outcome {
    Released(Vec<u8>),
    Refused,
}

/// How the simulated signer drives the store; both are atomic in a real store.
#[derive(Clone, Copy, Debug)]
enum Flow {
    /// Read the claim, ask `verdict`; on `Sign`, insert-if-absent, then ask again on the winner.
    ReadThenClaim,
    /// If the watermark blocks, only same-data; else insert-if-absent, then `verdict` on the winner.
    ClaimThenRead,
}

type Rule = fn(Option<&ClaimRecord>, &[u8; 32], Position, Option<Position>) -> Verdict;

/// Every sr25519 signature is fresh: the step number makes each one unique.
fn fresh_signature(step: usize) -> Vec<u8> {
    format!("sig-{step}").into_bytes()
}

fn hash_of(duty: usize, payload: usize) -> [u8; 32] {
    payload_hash(&[duty as u8, payload as u8])
}

fn outcome(v: Verdict, fresh: &[u8]) -> Outcome {
    match v {
        // A signer that is told `Sign` after its claim releases the signature it just made.
        Verdict::Sign => Outcome::Released(fresh.to_vec()),
        Verdict::SameData { signature } => Outcome::Released(signature),
        Verdict::Refuse(_) => Outcome::Refused,
    }
}

/// The simulated signer: `rule` decides, a HashMap is the atomic store.
fn signer_step(
    rule: Rule,
    flow: Flow,
    store: &mut HashMap<usize, ClaimRecord>,
    watermark: Option<Position>,
    duty: usize,
    payload: usize,
    step: usize,
) -> Outcome {
    let hash = hash_of(duty, payload);
    let pos = position(duty);
    let fresh =
        ClaimRecord { claimer: format!("step-{step}"), payload_hash: hash, signature: fresh_signature(step), claimed_at_ms: step as u64 };
    let claim_then_ask = |store: &mut HashMap<usize, ClaimRecord>| {
        let winner = store.entry(duty).or_insert_with(|| fresh.clone());
        outcome(rule(Some(winner), &hash, pos, watermark), &fresh.signature)
    };
    match flow {
        Flow::ReadThenClaim => match rule(store.get(&duty), &hash, pos, watermark) {
            Verdict::Sign => claim_then_ask(store),
            other => outcome(other, &fresh.signature),
        },
        Flow::ClaimThenRead => {
            if watermark.is_some_and(|w| pos <= w) {
                outcome(rule(store.get(&duty), &hash, pos, watermark), &fresh.signature)
            } else {
                claim_then_ask(store)
            }
        }
    }
}

/// The naive reference: the first allowed request for a duty wins it forever.
fn reference_step(
    winners: &mut HashMap<usize, (usize, Vec<u8>)>,
    watermark: Option<Position>,
    duty: usize,
    payload: usize,
    step: usize,
) -> Outcome {
    match winners.get(&duty) {
        Some((p, sig)) if *p == payload => Outcome::Released(sig.clone()),
        Some(_) => Outcome::Refused,
        None if watermark.is_some_and(|w| position(duty) <= w) => Outcome::Refused,
        None => {
            winners.insert(duty, (payload, fresh_signature(step)));
            Outcome::Released(fresh_signature(step))
        }
    }
}

/// Counts of what the exploration saw, so a vacuous run cannot pass.
#[derive(Default, Debug)]
struct Coverage {
    sequences: usize,
    first_signatures: usize,
    repeats: usize,
    refusals: usize,
}

/// Run one sequence; `Err` describes the first broken invariant or divergence.
fn run(rule: Rule, flow: Flow, initial: Option<Position>, events: &[Event], cov: &mut Coverage) -> Result<(), String> {
    let mut store = HashMap::new();
    let mut winners = HashMap::new();
    let mut watermark = initial;
    // Every signature released: (duty, payload, signature).
    let mut released: Vec<(usize, usize, Vec<u8>)> = Vec::new();
    for (step, event) in events.iter().enumerate() {
        let (duty, payload) = match *event {
            Event::Raise(p) => {
                watermark = Some(watermark.map_or(p, |w| w.max(p)));
                continue;
            }
            Event::Request { duty, payload } => (duty, payload),
        };
        let got = signer_step(rule, flow, &mut store, watermark, duty, payload, step);
        let want = reference_step(&mut winners, watermark, duty, payload, step);
        if got != want {
            return Err(format!("step {step}: signer {got:?}, reference {want:?}"));
        }
        let Outcome::Released(sig) = got else {
            cov.refusals += 1;
            continue;
        };
        match released.iter().find(|(d, _, _)| *d == duty) {
            None => {
                cov.first_signatures += 1;
                if watermark.is_some_and(|w| position(duty) <= w) {
                    return Err(format!("step {step}: first signature for duty {duty} at or below watermark {watermark:?}"));
                }
            }
            Some((_, p, s)) => {
                cov.repeats += 1;
                if *p != payload {
                    return Err(format!("step {step}: duty {duty} signed payloads {p} and {payload}"));
                }
                if *s != sig {
                    return Err(format!("step {step}: payload {payload} of duty {duty} got two signatures"));
                }
            }
        }
        released.push((duty, payload, sig));
    }
    Ok(())
}

/// Every sequence of length 0..=`max_len` over the alphabet, for every initial watermark.
fn explore(rule: Rule, flow: Flow, max_len: usize) -> Result<Coverage, String> {
    let alphabet = alphabet();
    let mut cov = Coverage::default();
    for initial in [None, Some((0, 0)), Some(position(0)), Some(position(1))] {
        for len in 0..=max_len {
            let mut index = vec![0usize; len];
            loop {
                let events: Vec<Event> = index.iter().map(|&i| alphabet[i]).collect();
                cov.sequences += 1;
                run(rule, flow, initial, &events, &mut cov)
                    .map_err(|e| format!("{flow:?}, initial watermark {initial:?}, events {events:?}: {e}"))?;
                // Odometer increment; done when it wraps.
                let mut digit = 0;
                while digit < len && index[digit] + 1 == alphabet.len() {
                    index[digit] = 0;
                    digit += 1;
                }
                if digit == len {
                    break;
                }
                index[digit] += 1;
            }
        }
    }
    Ok(cov)
}

const MAX_LEN: usize = 5;

fn expected_sequences() -> usize {
    let n = alphabet().len();
    4 * (0..=MAX_LEN as u32).map(|k| n.pow(k)).sum::<usize>()
}

#[test]
fn exhaustive_against_reference_model() {
    for flow in [Flow::ReadThenClaim, Flow::ClaimThenRead] {
        let cov = explore(verdict, flow, MAX_LEN).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cov.sequences, expected_sequences(), "{flow:?}");
        assert!(cov.first_signatures > 0 && cov.repeats > 0 && cov.refusals > 0, "{flow:?}: {cov:?}");
    }
}

// The checker must be able to fail: each of these broken rules is caught.

fn always_sign(_: Option<&ClaimRecord>, _: &[u8; 32], _: Position, _: Option<Position>) -> Verdict {
    Verdict::Sign
}

fn ignores_watermark(existing: Option<&ClaimRecord>, hash: &[u8; 32], pos: Position, _: Option<Position>) -> Verdict {
    verdict(existing, hash, pos, None)
}

fn ignores_payload(existing: Option<&ClaimRecord>, hash: &[u8; 32], pos: Position, wm: Option<Position>) -> Verdict {
    match existing {
        Some(rec) => Verdict::SameData { signature: rec.signature.clone() },
        None => verdict(None, hash, pos, wm),
    }
}

fn watermark_exclusive(existing: Option<&ClaimRecord>, hash: &[u8; 32], pos: Position, wm: Option<Position>) -> Verdict {
    // An off-by-one: refuses only strictly below the watermark.
    verdict(existing, hash, pos, wm.map(|(a, b)| if b > 0 { (a, b - 1) } else { (a.wrapping_sub(1), u64::MAX) }))
}

fn watermark_blocks_same_data(existing: Option<&ClaimRecord>, hash: &[u8; 32], pos: Position, wm: Option<Position>) -> Verdict {
    match wm {
        Some(w) if pos <= w => Verdict::Refuse(Refusal::BelowWatermark { position: pos, watermark: w }),
        _ => verdict(existing, hash, pos, wm),
    }
}

#[test]
fn broken_rules_are_caught() {
    let broken: [(&str, Rule); 5] = [
        ("always sign", always_sign),
        ("ignores the watermark", ignores_watermark),
        ("ignores the payload", ignores_payload),
        ("watermark exclusive", watermark_exclusive),
        ("watermark blocks same data", watermark_blocks_same_data),
    ];
    for (name, rule) in broken {
        // Sequences of three already expose each of them in the read-then-claim flow.
        assert!(explore(rule, Flow::ReadThenClaim, 3).is_err(), "{name} was not caught");
    }
}

#[test]
fn chain_ids_parse_from_what_they_display_and_nothing_else() {
    use exclave_policies::ChainId;
    let id = ChainId([0xab; 32]);
    assert_eq!(id.to_string().parse::<ChainId>(), Ok(id));
    for bad in ["", "0x", "abab", &format!("0x{}", "ab".repeat(31)), &format!("0x{}", "ab".repeat(33)), &format!("0x{}zz", "ab".repeat(31))]
    {
        let err = bad.parse::<ChainId>().expect_err(bad);
        assert_eq!(err.input, bad);
        assert!(err.to_string().contains("32-byte hex genesis hash"), "{err}");
    }
}
