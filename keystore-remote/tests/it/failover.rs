//! Which signer `Clients::call` sends a request to, in which order, and when it moves on. Every
//! case signs im-online heartbeats (`sr25519_sign("imon")`: no lease, no GRANDPA retry), and
//! asserts what each call returned and the order in which the fakes received their requests.

use crate::{
    assert_rows,
    fake_signer::{closed_url, Fake, KeystoreBuilder, Net, Reply, Silent, Status},
    Got, Want,
};
use exclave_protocol::WireCrypto;
use sp_core::{crypto::KeyTypeId, sr25519};
use sp_keystore::Keystore;
use std::time::{Duration, Instant};

const IMON: KeyTypeId = KeyTypeId(*b"imon");
/// A signer rests 500 ms after its first failure (`FIRST_REST`); wait a little longer.
const AFTER_REST: Duration = Duration::from_millis(550);

enum Spec {
    Fake {
        name: &'static str,
        status: Status,
        script: Vec<Reply>,
    },
    /// Binds and never accepts.
    Silent,
    /// Nobody listens: connection refused.
    Closed,
}

enum Step {
    /// Sign a heartbeat; expect this.
    Call(Want),
    /// Sign a heartbeat; expect this, within one attempt's timeout (no wait on a down signer).
    CallFast(Want),
    /// Change what a fake's `exclave_status` reports.
    SetStatus(&'static str, Status),
    /// Wait until every signer that failed so far is no longer resting.
    AfterRest,
    /// The store id the last `exclave_sign` request carried.
    SentStoreId(Option<&'static str>),
}

/// One fail-over scenario.
struct Case {
    name: &'static str,
    specs: Vec<Spec>,
    pin: Option<&'static str>,
    timeout: Duration,
    steps: Vec<Step>,
    track: &'static [&'static str],
    trace: Vec<&'static str>,
}

impl Case {
    fn new(name: &'static str) -> Self {
        Self {
            name,
            specs: Vec::new(),
            pin: None,
            timeout: Duration::from_millis(300),
            steps: Vec::new(),
            track: &["sign"],
            trace: Vec::new(),
        }
    }

    /// A fake reporting claim store `store`, answering `sign` from `script` (then `Ok`).
    fn fake(self, name: &'static str, store: &str, script: impl IntoIterator<Item = Reply>) -> Self {
        self.fake_status(name, Status::Store(store.into()), script)
    }

    fn fake_status(mut self, name: &'static str, status: Status, script: impl IntoIterator<Item = Reply>) -> Self {
        self.specs.push(Spec::Fake { name, status, script: script.into_iter().collect() });
        self
    }

    fn silent(mut self) -> Self {
        self.specs.push(Spec::Silent);
        self
    }

    fn closed(mut self) -> Self {
        self.specs.push(Spec::Closed);
        self
    }

    fn pin(mut self, id: &'static str) -> Self {
        self.pin = Some(id);
        self
    }

    fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    fn call(mut self, want: Want) -> Self {
        self.steps.push(Step::Call(want));
        self
    }

    fn call_fast(mut self, want: Want) -> Self {
        self.steps.push(Step::CallFast(want));
        self
    }

    fn set_status(mut self, name: &'static str, status: Status) -> Self {
        self.steps.push(Step::SetStatus(name, status));
        self
    }

    fn after_rest(mut self) -> Self {
        self.steps.push(Step::AfterRest);
        self
    }

    fn sent_store_id(mut self, id: Option<&'static str>) -> Self {
        self.steps.push(Step::SentStoreId(id));
        self
    }

    /// The journal to expect, `signer.method`, of the methods `track` names (default: `sign`).
    fn trace(mut self, track: &'static [&'static str], trace: &[&'static str]) -> Self {
        self.track = track;
        self.trace = trace.to_vec();
        self
    }

    fn signs(self, trace: &[&'static str]) -> Self {
        self.trace(&["sign"], trace)
    }

    fn run(&self) -> Result<(), String> {
        let net = Net::new();
        let mut fakes: Vec<(&'static str, Fake)> = Vec::new();
        let mut silent = Vec::new();
        let mut builder = KeystoreBuilder::new().timeout(self.timeout);
        for spec in &self.specs {
            let url = match spec {
                Spec::Fake { name, status, script } => {
                    let fake = net.signer(name).status(status.clone()).script(script.clone()).start();
                    let url = fake.url.clone();
                    fakes.push((name, fake));
                    url
                }
                Spec::Silent => {
                    silent.push(Silent::new());
                    silent.last().map(|s| s.url.clone()).expect("just pushed")
                }
                Spec::Closed => closed_url(),
            };
            builder = builder.url(&url);
        }
        if let Some(id) = self.pin {
            builder = builder.pin(id);
        }
        let ks = builder.build();
        let public = sr25519::Public::from_raw([0x11; 32]);
        for (i, step) in self.steps.iter().enumerate() {
            match step {
                Step::Call(want) | Step::CallFast(want) => {
                    let started = Instant::now();
                    let got = Got::of(ks.sr25519_sign(IMON, &public, &[i as u8; 16]), |s| s.0.to_vec());
                    let took = started.elapsed();
                    if !want.matches(&got, Some(WireCrypto::Sr25519)) {
                        return Err(format!("step {i}: returned {got:?}, expected {want:?}; journal {:?}", net.trace(self.track)));
                    }
                    if matches!(step, Step::CallFast(_)) && took >= self.timeout {
                        return Err(format!(
                            "step {i}: took {took:?}, expected under the {:?} timeout (no wait on a down signer)",
                            self.timeout
                        ));
                    }
                }
                Step::SetStatus(name, status) => {
                    let fake = fakes.iter().find(|(n, _)| n == name).map(|(_, f)| f).expect("a fake of this name");
                    fake.set_status(status.clone());
                }
                Step::AfterRest => std::thread::sleep(AFTER_REST),
                Step::SentStoreId(id) => {
                    let Some((_, last)) = net.sign_requests().pop() else {
                        return Err(format!("step {i}: no sign request was received"));
                    };
                    if last.store_id.as_deref() != *id {
                        return Err(format!("step {i}: the last sign request carried store id {:?}, expected {id:?}", last.store_id));
                    }
                }
            }
        }
        let trace = net.trace(self.track);
        if trace != self.trace {
            return Err(format!("the fakes received {trace:?}, expected {:?}", self.trace));
        }
        Ok(())
    }
}

fn run(what: &str, cases: Vec<Case>) {
    let failures: Vec<String> = cases.iter().filter_map(|c| c.run().err().map(|why| format!("{}: {why}", c.name))).collect();
    assert_rows(what, &failures);
}

use Reply::Hang;

#[test]
fn a_signer_that_does_not_answer_is_rested_and_the_next_tried() {
    run(
        "no answer",
        vec![
            Case::new("never accepts: the next signs, and the next call does not wait on it")
                .silent()
                .fake("b", "S", [])
                .pin("S")
                .call(Want::Sig("b"))
                .call_fast(Want::Sig("b"))
                .signs(&["b.sign", "b.sign"]),
            Case::new("accepts and never answers a sign: rested, then first again after its rest")
                .fake("a", "S", [Hang, Reply::Ok])
                .fake("b", "S", [])
                .pin("S")
                .call(Want::Sig("b"))
                .call_fast(Want::Sig("b"))
                .after_rest()
                .call(Want::Sig("a"))
                .signs(&["a.sign", "b.sign", "b.sign", "a.sign"]),
            Case::new("never answers exclave_status: never asked to sign, rested")
                .fake_status("a", Status::Hang, [])
                .fake("b", "S", [])
                .pin("S")
                .call(Want::Sig("b"))
                .call_fast(Want::Sig("b"))
                .trace(&["status", "sign"], &["a.status", "b.status", "b.sign", "b.sign"]),
            Case::new("connection refused: the next signs at once")
                .closed()
                .fake("b", "S", [])
                .pin("S")
                .call_fast(Want::Sig("b"))
                .call_fast(Want::Sig("b"))
                .signs(&["b.sign", "b.sign"]),
            Case::new("agreed (no pin), then the first stops answering")
                .fake("a", "S", [Reply::Ok, Hang])
                .fake("b", "S", [])
                .call(Want::Sig("a"))
                .call(Want::Sig("b"))
                .call_fast(Want::Sig("b"))
                .signs(&["a.sign", "a.sign", "b.sign", "b.sign"]),
            Case::new("every signer silent: unavailable").silent().silent().pin("S").call(Want::Unavailable).signs(&[]),
        ],
    );
}

#[test]
fn store_unavailable_and_unknown_key_move_to_the_next_signer() {
    run(
        "move on",
        vec![
            Case::new("1004, then the next signs; the first is not rested")
                .fake("a", "S", [Reply::code(1004)])
                .fake("b", "S", [])
                .pin("S")
                .call(Want::Sig("b"))
                .call(Want::Sig("a"))
                .signs(&["a.sign", "b.sign", "a.sign"]),
            Case::new("1003, then the next signs; the first is not rested")
                .fake("a", "S", [Reply::code(1003)])
                .fake("b", "S", [])
                .pin("S")
                .call(Want::Sig("b"))
                .call(Want::Sig("a"))
                .signs(&["a.sign", "b.sign", "a.sign"]),
            Case::new("1004, 1003, then the third signs")
                .fake("a", "S", [Reply::code(1004)])
                .fake("b", "S", [Reply::code(1003)])
                .fake("c", "S", [])
                .pin("S")
                .call(Want::Sig("c"))
                .signs(&["a.sign", "b.sign", "c.sign"]),
            Case::new("1004 from every signer: unavailable")
                .fake("a", "S", [Reply::code(1004)])
                .fake("b", "S", [Reply::code(1004)])
                .pin("S")
                .call(Want::Unavailable)
                .signs(&["a.sign", "b.sign"]),
            Case::new("1003 from every signer: no signature")
                .fake("a", "S", [Reply::code(1003)])
                .fake("b", "S", [Reply::code(1003)])
                .pin("S")
                .call(Want::NoSig)
                .signs(&["a.sign", "b.sign"]),
            // Mixed: a signer whose store was down may hold the key, so "unknown key" from another
            // does not end it as "no key" in either order (it did when 1003 came last).
            Case::new("1004 then 1003: unavailable (the first may hold the key)")
                .fake("a", "S", [Reply::code(1004)])
                .fake("b", "S", [Reply::code(1003)])
                .pin("S")
                .call(Want::Unavailable)
                .signs(&["a.sign", "b.sign"]),
            Case::new("1003 then 1004: unavailable")
                .fake("a", "S", [Reply::code(1003)])
                .fake("b", "S", [Reply::code(1004)])
                .pin("S")
                .call(Want::Unavailable)
                .signs(&["a.sign", "b.sign"]),
            Case::new("1003, then a signer that never answers: unavailable (it may hold the key)")
                .fake("a", "S", [Reply::code(1003)])
                .silent()
                .pin("S")
                .call(Want::Unavailable)
                .signs(&["a.sign"]),
            Case::new("one signer, 1004: unavailable, not re-sent")
                .fake("a", "S", [Reply::code(1004)])
                .call(Want::Unavailable)
                .signs(&["a.sign"]),
            Case::new("1009: the next signs; the first rests, then is checked again before its next use")
                .fake("a", "S", [Reply::code(1009)])
                .fake("b", "S", [])
                .pin("S")
                .call(Want::Sig("b"))
                .call_fast(Want::Sig("b"))
                .after_rest()
                .call(Want::Sig("a"))
                .trace(&["status", "sign"], &["a.status", "a.sign", "b.status", "b.sign", "b.sign", "a.status", "a.sign"]),
            Case::new("1009 from every signer: unavailable")
                .fake("a", "S", [Reply::code(1009)])
                .fake("b", "S", [Reply::code(1009)])
                .pin("S")
                .call(Want::Unavailable)
                .signs(&["a.sign", "b.sign"]),
        ],
    );
}

#[test]
fn any_other_answer_ends_the_call() {
    let cases = [
        ("1001 refused-conflict", 1001, Want::NoSig),
        ("1002 refused-policy", 1002, Want::NoSig),
        ("1005 unauthorised", 1005, Want::Other),
        ("1006 bad-request", 1006, Want::Invalid),
        ("1007 internal", 1007, Want::Other),
        ("1008 not-active", 1008, Want::NoSig),
    ]
    .into_iter()
    .map(|(name, code, want)| {
        Case::new(name)
            .fake("a", "S", [Reply::code(code)])
            .fake("b", "S", [])
            .pin("S")
            .call(want)
            // An answer counts as healthy: the first is asked first again.
            .call(Want::Sig("a"))
            .signs(&["a.sign", "a.sign"])
    })
    .collect();
    run("final answer", cases);
}

#[test]
fn healthy_signers_first_in_configured_order_then_rested_ones_soonest_back_first() {
    run(
        "order",
        vec![
            Case::new("all healthy: always the first")
                .fake("a", "S", [])
                .fake("b", "S", [])
                .fake("c", "S", [])
                .pin("S")
                .call(Want::Sig("a"))
                .call(Want::Sig("a"))
                .call(Want::Sig("a"))
                .signs(&["a.sign", "a.sign", "a.sign"]),
            // a and b time out (a first, so it is back first); c signs. Next call: c (healthy)
            // says 1004, then a (resting, back sooner than b) signs; b is not asked.
            Case::new("two rested after one healthy")
                .fake("a", "S", [Hang, Reply::Ok])
                .fake("b", "S", [Hang, Reply::Ok])
                .fake("c", "S", [Reply::Ok, Reply::code(1004)])
                .pin("S")
                .timeout(Duration::from_millis(200))
                .call(Want::Sig("c"))
                .call(Want::Sig("a"))
                .signs(&["a.sign", "b.sign", "c.sign", "c.sign", "a.sign"]),
        ],
    );
}

#[test]
fn claim_store_ids_decide_which_signers_are_used() {
    let not_ready = || Status::Store(String::new());
    run(
        "store id",
        vec![
            // Pinned.
            Case::new("pinned: a signer on another store is never used, also after its rest")
                .fake("a", "X", [])
                .fake("b", "S", [])
                .pin("S")
                .call(Want::Sig("b"))
                .call_fast(Want::Sig("b"))
                .after_rest()
                .call(Want::Sig("b"))
                .trace(&["status", "sign"], &["a.status", "b.status", "b.sign", "b.sign", "a.status", "b.sign"]),
            Case::new("pinned: a signer whose store has not answered is not used")
                .fake_status("a", not_ready(), [])
                .fake("b", "S", [])
                .pin("S")
                .call(Want::Sig("b"))
                .signs(&["b.sign"]),
            Case::new("pinned: every signer on another store: unavailable, nothing sent")
                .fake("a", "X", [])
                .fake("b", "X", [])
                .pin("S")
                .call(Want::Unavailable)
                .signs(&[]),
            Case::new("pinned: a silent first signer does not block the second")
                .silent()
                .fake("b", "S", [])
                .pin("S")
                .call(Want::Sig("b"))
                .sent_store_id(Some("S"))
                .signs(&["b.sign"]),
            Case::new("pinned: a silent second signer is not waited for")
                .fake("a", "S", [])
                .silent()
                .pin("S")
                .call_fast(Want::Sig("a"))
                .signs(&["a.sign"]),
            Case::new("pinned: a refused second signer is not waited for")
                .fake("a", "S", [])
                .closed()
                .pin("S")
                .call_fast(Want::Sig("a"))
                .signs(&["a.sign"]),
            // Not pinned: every configured signer must first report one and the same id.
            Case::new("unpinned: all on one store: used, requests carry its id")
                .fake("a", "S", [])
                .fake("b", "S", [])
                .call(Want::Sig("a"))
                .sent_store_id(Some("S"))
                .signs(&["a.sign"]),
            Case::new("unpinned: two stores: no signer used")
                .fake("a", "S", [])
                .fake("b", "X", [])
                .call(Want::Unavailable)
                .call(Want::Unavailable)
                .signs(&[]),
            Case::new("unpinned: one store not ready: none used until it reports the same id")
                .fake("a", "S", [])
                .fake_status("b", not_ready(), [])
                .call(Want::Unavailable)
                .set_status("b", Status::Store("S".into()))
                .call(Want::Sig("a"))
                .sent_store_id(Some("S"))
                .signs(&["a.sign"]),
            Case::new("unpinned: one signer's status never answers: none used until it does")
                .fake("a", "S", [])
                .fake_status("b", Status::Hang, [])
                .call(Want::Unavailable)
                .set_status("b", Status::Store("S".into()))
                .call(Want::Sig("a"))
                .signs(&["a.sign"]),
            Case::new("unpinned: a silent signer blocks all")
                .fake("a", "S", [])
                .silent()
                .call(Want::Unavailable)
                .call(Want::Unavailable)
                .signs(&[]),
            Case::new("unpinned: a refused signer blocks all").fake("a", "S", []).closed().call(Want::Unavailable).signs(&[]),
            Case::new("unpinned: the agreed id stays; a signer re-pointed since is not used again")
                .fake("a", "S", [Reply::Ok, Reply::code(1009)])
                .fake("b", "S", [])
                .call(Want::Sig("a"))
                .set_status("a", Status::Store("X".into()))
                .call(Want::Sig("b"))
                .after_rest()
                .call(Want::Sig("b"))
                .sent_store_id(Some("S"))
                .signs(&["a.sign", "a.sign", "b.sign", "b.sign"]),
            // One signer: no store id is checked or sent, even a pinned one.
            Case::new("one signer: its store id is neither checked nor sent, even when pinned")
                .fake("a", "X", [])
                .pin("S")
                .call(Want::Sig("a"))
                .sent_store_id(None)
                .trace(&["status", "sign"], &["a.sign"]),
        ],
    );
}
