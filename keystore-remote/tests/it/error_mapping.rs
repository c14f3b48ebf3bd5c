//! docs/api.md's Errors table, column "the keystore client returns", row by row: one signer
//! answers one Exclave error, and the `Keystore` method the node calls for that key type returns
//! a category. Where the doc and the code disagree, the row asserts what the code does and says
//! so (see `DISAGREES`).

use crate::{
    assert_rows,
    fake_signer::{vrf_pair, Call, KeystoreBuilder, Net, Reply, CHAIN},
    Got, Want,
};
use exclave_keystore_remote::{RemoteKeystore, VrfContext};
use exclave_protocol::{Bytes, SignContext, SignRequest, VrfRequest, WireCrypto, WireKeyType};
use sp_core::{
    crypto::{KeyTypeId, VrfPublic},
    ecdsa, ed25519, sr25519, Pair,
};
use sp_keystore::Keystore;
use std::time::{Duration, Instant};

/// A `Keystore` method called with one key type, as the node calls it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Method {
    /// `sr25519_sign("babe")` of blake2_256 of a pre-seal header noted with `note_seal_header`.
    BabeSeal,
    /// `sr25519_sign("babe")` of a 32-byte message no header was noted for.
    BabeBare,
    /// `sr25519_vrf_sign("babe")` of a transcript noted with `note_vrf_candidates`.
    BabeVrf,
    /// `sr25519_vrf_pre_output("babe")` of the same transcript (not in the doc's column; BABE
    /// itself calls `sr25519_vrf_sign`).
    BabeVrfPreOutput,
    /// `ed25519_sign("gran")` of a 53-byte SCALE prevote.
    Gran,
    /// `sr25519_sign("imon")` of a 16-byte heartbeat.
    Imon,
    /// `ecdsa_sign_prehashed("beef")` of keccak_256 of a commitment noted with `note_beefy_commitment`.
    Beef,
    /// `sr25519_sign("audi")` of an authority-discovery record.
    Audi,
}

use Method::*;

/// The "code" of a row where the signer signs.
const OK: i32 = 0;

#[derive(Clone, Copy, Debug)]
struct Row {
    code: i32,
    method: Method,
    want: Want,
    /// GRANDPA's transient rows: the signer answers `code` twice and then signs; the client must
    /// send the identical request three times and return the signature (instead of `want`,
    /// which it would return only after `VOTE_RETRY_FOR`, 30 s, of failures).
    retried: bool,
}

const fn row(code: i32, method: Method, want: Want) -> Row {
    Row { code, method, want, retried: false }
}

/// A GRANDPA row whose final answer (`want`, after 30 s of identical retries) cannot be seen
/// quickly; asserted instead: retried identically, a later success returned.
const fn retried(code: i32, method: Method, want_after_30s: Want) -> Row {
    Row { code, method, want: want_after_30s, retried: true }
}

/// The table: docs/api.md's column, as the code behaves (disagreements marked `DISAGREES`).
const ROWS: &[Row] = &[
    // Success: the signature is returned (the harness works, the rows below can fail).
    row(OK, BabeSeal, Want::Sig("s")),
    row(OK, BabeBare, Want::Sig("s")),
    row(OK, BabeVrf, Want::Sig("s")),
    row(OK, BabeVrfPreOutput, Want::Sig("s")),
    row(OK, Gran, Want::Sig("s")),
    row(OK, Imon, Want::Sig("s")),
    row(OK, Beef, Want::Sig("s")),
    row(OK, Audi, Want::Sig("s")),
    // 1001 refused-conflict: `Ok(None)` for babe/imon/beef/audi, `Err(ValidationError)` for gran.
    row(1001, BabeSeal, Want::NoSig),
    row(1001, BabeBare, Want::NoSig),
    row(1001, BabeVrf, Want::NoSig),
    // DISAGREES with "Ok(None) for babe": the pre-output call maps refusals with
    // into_keystore_error (sr25519_vrf_sign answers Ok(None)).
    row(1001, BabeVrfPreOutput, Want::Invalid),
    row(1001, Gran, Want::Invalid),
    row(1001, Imon, Want::NoSig),
    row(1001, Beef, Want::NoSig),
    row(1001, Audi, Want::NoSig),
    // 1002 refused-policy: as above.
    row(1002, BabeSeal, Want::NoSig),
    row(1002, BabeBare, Want::NoSig),
    row(1002, BabeVrf, Want::NoSig),
    // DISAGREES with "Ok(None) for babe": the pre-output call maps refusals with
    // into_keystore_error (sr25519_vrf_sign answers Ok(None)).
    row(1002, BabeVrfPreOutput, Want::Invalid),
    row(1002, Gran, Want::Invalid),
    row(1002, Imon, Want::NoSig),
    row(1002, Beef, Want::NoSig),
    row(1002, Audi, Want::NoSig),
    // 1003 unknown-key: `Ok(None)`.
    row(1003, BabeSeal, Want::NoSig),
    row(1003, BabeBare, Want::NoSig),
    row(1003, BabeVrf, Want::NoSig),
    row(1003, BabeVrfPreOutput, Want::NoSig),
    row(1003, Gran, Want::NoSig),
    row(1003, Imon, Want::NoSig),
    row(1003, Beef, Want::NoSig),
    row(1003, Audi, Want::NoSig),
    // 1004 store-unavailable: `Err(Unavailable)`. DISAGREES for gran: the vote is retried,
    // identically, every 500 ms for 30 s first (a success in between is returned).
    row(1004, BabeSeal, Want::Unavailable),
    row(1004, BabeBare, Want::Unavailable),
    row(1004, BabeVrf, Want::Unavailable),
    row(1004, BabeVrfPreOutput, Want::Unavailable),
    retried(1004, Gran, Want::Unavailable),
    row(1004, Imon, Want::Unavailable),
    row(1004, Beef, Want::Unavailable),
    row(1004, Audi, Want::Unavailable),
    // 1005 unauthorised: `Err(Other)`.
    row(1005, BabeSeal, Want::Other),
    row(1005, BabeBare, Want::Other),
    row(1005, BabeVrf, Want::Other),
    row(1005, BabeVrfPreOutput, Want::Other),
    row(1005, Gran, Want::Other),
    row(1005, Imon, Want::Other),
    row(1005, Beef, Want::Other),
    row(1005, Audi, Want::Other),
    // 1006 bad-request: `Err(ValidationError)`.
    row(1006, BabeSeal, Want::Invalid),
    row(1006, BabeBare, Want::Invalid),
    row(1006, BabeVrf, Want::Invalid),
    row(1006, BabeVrfPreOutput, Want::Invalid),
    row(1006, Gran, Want::Invalid),
    row(1006, Imon, Want::Invalid),
    row(1006, Beef, Want::Invalid),
    row(1006, Audi, Want::Invalid),
    // 1007 internal: `Err(Other)`.
    row(1007, BabeSeal, Want::Other),
    row(1007, BabeBare, Want::Other),
    row(1007, BabeVrf, Want::Other),
    row(1007, BabeVrfPreOutput, Want::Other),
    row(1007, Gran, Want::Other),
    row(1007, Imon, Want::Other),
    row(1007, Beef, Want::Other),
    row(1007, Audi, Want::Other),
    // 1008 not-active: `Ok(None)` for babe, `Err(ValidationError)` for gran. The doc names only
    // babe and gran (the signer sends 1008 only for them); the code answers `Ok(None)` for
    // imon/beef/audi too.
    row(1008, BabeSeal, Want::NoSig),
    row(1008, BabeBare, Want::NoSig),
    row(1008, BabeVrf, Want::NoSig),
    row(1008, BabeVrfPreOutput, Want::NoSig),
    row(1008, Gran, Want::Invalid),
    row(1008, Imon, Want::NoSig),
    row(1008, Beef, Want::NoSig),
    row(1008, Audi, Want::NoSig),
    // 1009 store-mismatch: "not returned: the client tries the next signer". DISAGREES when
    // there is no next signer (one signer here; or every signer answers 1009, see failover): the
    // call ends "unreachable", so the caller gets `Err(Unavailable)`, and gran retries 30 s first.
    row(1009, BabeSeal, Want::Unavailable),
    row(1009, BabeBare, Want::Unavailable),
    row(1009, BabeVrf, Want::Unavailable),
    row(1009, BabeVrfPreOutput, Want::Unavailable),
    retried(1009, Gran, Want::Unavailable),
    row(1009, Imon, Want::Unavailable),
    row(1009, Beef, Want::Unavailable),
    row(1009, Audi, Want::Unavailable),
];

const BABE: KeyTypeId = KeyTypeId(*b"babe");
const GRAN: KeyTypeId = KeyTypeId(*b"gran");
const IMON: KeyTypeId = KeyTypeId(*b"imon");
const BEEF: KeyTypeId = KeyTypeId(*b"beef");
const AUDI: KeyTypeId = KeyTypeId(*b"audi");

const HEADER: &[u8] = &[0x01, 0x02, 0x03, 0x04, 0x05];
const COMMITMENT: &[u8] = &[0x04, 0x03, 0x02, 0x01];
const BARE: [u8; 32] = [0xc3; 32];
const HEARTBEAT: [u8; 16] = [0x11; 16];
const RECORD: &[u8] = b"an authority-discovery record";
const VRF: VrfContext = VrfContext { randomness: [5; 32], slot: 293_828_160, epoch: 3 };

fn sr_public() -> sr25519::Public {
    vrf_pair().public()
}

fn ed_public() -> ed25519::Public {
    ed25519::Public::from_raw([0x88; 32])
}

fn ecdsa_public() -> ecdsa::Public {
    ecdsa::Public::from_raw([0x02; 33])
}

/// A SCALE `(Prevote, round 5, set id 2)`: 53 bytes.
fn prevote() -> Vec<u8> {
    let mut m = vec![0u8];
    m.extend([0xaa; 32]);
    m.extend(7u32.to_le_bytes());
    m.extend(5u64.to_le_bytes());
    m.extend(2u64.to_le_bytes());
    m
}

impl Method {
    fn is_vrf(self) -> bool {
        matches!(self, BabeVrf | BabeVrfPreOutput)
    }

    fn crypto(self) -> WireCrypto {
        match self {
            Gran => WireCrypto::Ed25519,
            Beef => WireCrypto::Ecdsa,
            _ => WireCrypto::Sr25519,
        }
    }

    /// The journal's name of the request this method sends.
    fn wire_method(self) -> &'static str {
        match self {
            BabeVrf => "vrfSign",
            BabeVrfPreOutput => "vrfPreOutput",
            _ => "sign",
        }
    }

    /// Call the method as the node would (noting its context first).
    fn call(self, ks: &RemoteKeystore) -> Got {
        let bytes = |s: &[u8]| s.to_vec();
        match self {
            BabeSeal => {
                ks.note_seal_header(HEADER.to_vec());
                let msg = sp_crypto_hashing::blake2_256(HEADER);
                Got::of(ks.sr25519_sign(BABE, &sr_public(), &msg), |s| bytes(s.as_ref()))
            }
            BabeBare => Got::of(ks.sr25519_sign(BABE, &sr_public(), &BARE), |s| bytes(s.as_ref())),
            BabeVrf => {
                ks.note_vrf_candidates([VRF]);
                let data = exclave_policies::vrf_sign_data(&VRF);
                let got = ks.sr25519_vrf_sign(BABE, &sr_public(), &data);
                if let Ok(Some(sig)) = &got {
                    assert!(sr_public().vrf_verify(&data, sig), "the keystore returned a VRF signature that does not verify");
                }
                Got::of(got, |s| codec::Encode::encode(&s))
            }
            BabeVrfPreOutput => {
                ks.note_vrf_candidates([VRF]);
                let data = exclave_policies::vrf_sign_data(&VRF);
                Got::of(ks.sr25519_vrf_pre_output(BABE, &sr_public(), data.as_ref()), |p| codec::Encode::encode(&p))
            }
            Gran => Got::of(ks.ed25519_sign(GRAN, &ed_public(), &prevote()), |s| bytes(s.as_ref())),
            Imon => Got::of(ks.sr25519_sign(IMON, &sr_public(), &HEARTBEAT), |s| bytes(s.as_ref())),
            Beef => {
                ks.note_beefy_commitment(COMMITMENT.to_vec());
                let msg = sp_crypto_hashing::keccak_256(COMMITMENT);
                Got::of(ks.ecdsa_sign_prehashed(BEEF, &ecdsa_public(), &msg), |s| bytes(s.as_ref()))
            }
            Audi => Got::of(ks.sr25519_sign(AUDI, &sr_public(), RECORD), |s| bytes(s.as_ref())),
        }
    }

    /// The `exclave_sign` request the signer must receive.
    fn sign_request(self) -> SignRequest {
        let (kt, public, message, context, prehashed) = match self {
            BabeSeal => (
                BABE,
                sr_public().0.to_vec(),
                sp_crypto_hashing::blake2_256(HEADER).to_vec(),
                SignContext::BabeSeal { header: Bytes(HEADER.to_vec()) },
                false,
            ),
            BabeBare => (BABE, sr_public().0.to_vec(), BARE.to_vec(), SignContext::None, false),
            Gran => (GRAN, ed_public().0.to_vec(), prevote(), SignContext::None, false),
            Imon => (IMON, sr_public().0.to_vec(), HEARTBEAT.to_vec(), SignContext::None, false),
            Beef => (
                BEEF,
                ecdsa_public().0.to_vec(),
                sp_crypto_hashing::keccak_256(COMMITMENT).to_vec(),
                SignContext::BeefyCommitment { commitment: Bytes(COMMITMENT.to_vec()) },
                true,
            ),
            Audi => (AUDI, sr_public().0.to_vec(), RECORD.to_vec(), SignContext::None, false),
            BabeVrf | BabeVrfPreOutput => unreachable!("a VRF request is not an exclave_sign request"),
        };
        SignRequest {
            chain: Bytes(CHAIN.to_vec()),
            key_type: WireKeyType(kt.0),
            crypto: self.crypto(),
            public: Bytes(public),
            message: Bytes(message),
            context,
            prehashed,
            store_id: None,
        }
    }

    /// The `exclave_vrfSign` request the signer must receive.
    fn vrf_request() -> VrfRequest {
        VrfRequest {
            chain: Bytes(CHAIN.to_vec()),
            key_type: WireKeyType(BABE.0),
            public: Bytes(sr_public().0.to_vec()),
            randomness: Bytes(VRF.randomness.to_vec()),
            slot: VRF.slot,
            epoch: VRF.epoch,
        }
    }
}

/// Run one row against a fresh signer and keystore; `Err` says what was wrong.
fn run_row(net: &Net, row: Row) -> Result<(), String> {
    net.clear_journal();
    let reply = if row.code == OK { Reply::Ok } else { Reply::code(row.code) };
    let mut fake = net.signer("s").script(vec![reply; if row.retried { 2 } else { 1 }]);
    if row.method.is_vrf() {
        // The client asks no VRF of a key the signer's key list lacks.
        fake = fake.holds(&sr_public().0);
    }
    let fake = fake.start();
    let ks = KeystoreBuilder::new().url(&fake.url).build();
    let started = Instant::now();
    let got = row.method.call(&ks);
    let took = started.elapsed();
    drop(ks);

    let want = if row.retried { Want::Sig("s") } else { row.want };
    let crypto = (!row.method.is_vrf()).then(|| row.method.crypto());
    if !want.matches(&got, crypto) {
        return Err(format!("returned {got:?}, expected {want:?}"));
    }
    let attempts: Vec<Call> = net.journal().into_iter().filter(|c| c.method == row.method.wire_method()).collect();
    let expected_attempts = if row.retried { 3 } else { 1 };
    if attempts.len() != expected_attempts {
        return Err(format!("the signer received {} {} requests, expected {expected_attempts}", attempts.len(), row.method.wire_method()));
    }
    for attempt in &attempts {
        if row.method.is_vrf() {
            if attempt.vrf.as_ref() != Some(&Method::vrf_request()) {
                return Err(format!("vrfSign request {:?}, expected {:?}", attempt.vrf, Method::vrf_request()));
            }
        } else if attempt.sign.as_ref() != Some(&row.method.sign_request()) {
            return Err(format!("sign request {:?}, expected (every attempt identical) {:?}", attempt.sign, row.method.sign_request()));
        }
    }
    if row.retried {
        if took >= Duration::from_millis(1500) {
            return Err(format!("three attempts took {took:?}, expected under 1.5 s"));
        }
        if let Some(gap) = attempts.windows(2).map(|w| w[1].at - w[0].at).min().filter(|gap| *gap < Duration::from_millis(400)) {
            return Err(format!("attempts {gap:?} apart, expected a pause (VOTE_RETRY_EVERY, 500 ms) between them"));
        }
    }
    Ok(())
}

fn run(method: Method) {
    let rows: Vec<Row> = ROWS.iter().copied().filter(|r| r.method == method).collect();
    let codes: Vec<i32> = rows.iter().map(|r| r.code).collect();
    assert_eq!(codes, [OK, 1001, 1002, 1003, 1004, 1005, 1006, 1007, 1008, 1009], "{method:?}: one row per code");
    let net = Net::new();
    let failures: Vec<String> = rows.into_iter().filter_map(|row| run_row(&net, row).err().map(|why| format!("{row:?}: {why}"))).collect();
    assert_rows(&format!("{method:?}"), &failures);
}

#[test]
fn babe_seal_with_noted_header() {
    run(BabeSeal);
}

#[test]
fn babe_seal_without_noted_header() {
    run(BabeBare);
}

#[test]
fn babe_vrf_sign() {
    run(BabeVrf);
}

#[test]
fn babe_vrf_pre_output() {
    run(BabeVrfPreOutput);
}

#[test]
fn grandpa_vote() {
    run(Gran);
}

#[test]
fn im_online_heartbeat() {
    run(Imon);
}

#[test]
fn beefy_vote_prehashed() {
    run(Beef);
}

#[test]
fn authority_discovery_record() {
    run(Audi);
}

/// A VRF signature that does not verify against the node's own transcript is not handed to BABE.
#[test]
fn vrf_signature_from_another_key_is_rejected() {
    let net = Net::new();
    let fake = net.signer("s").holds(&sr_public().0).vrf_seed([8; 32]).start();
    let ks = KeystoreBuilder::new().url(&fake.url).build();
    assert_eq!(BabeVrf.call(&ks), Got::Invalid);
    assert_eq!(net.trace(&["vrfSign"]), ["s.vrfSign"]);
}

/// A VRF for a key the signer's key list lacks, or for a transcript whose inputs were not noted,
/// is answered `Ok(None)` without a `vrfSign` request.
#[test]
fn vrf_without_key_or_context_is_not_requested() {
    struct Case {
        name: &'static str,
        held: bool,
        noted: bool,
        want: Got,
        vrf_requests: usize,
    }
    let cases = [
        Case { name: "held, noted", held: true, noted: true, want: Got::Signed(Vec::new()), vrf_requests: 1 },
        Case { name: "not held", held: false, noted: true, want: Got::NoSig, vrf_requests: 0 },
        Case { name: "held, transcript not noted", held: true, noted: false, want: Got::NoSig, vrf_requests: 0 },
    ];
    let net = Net::new();
    let mut failures = Vec::new();
    for case in cases {
        net.clear_journal();
        let mut fake = net.signer("s");
        if case.held {
            fake = fake.holds(&sr_public().0);
        }
        let fake = fake.start();
        let ks = KeystoreBuilder::new().url(&fake.url).build();
        if case.noted {
            ks.note_vrf_candidates([VRF]);
        }
        let got = Got::of(ks.sr25519_vrf_sign(BABE, &sr_public(), &exclave_policies::vrf_sign_data(&VRF)), |_| Vec::new());
        let requests = net.trace(&["vrfSign"]).len();
        if got != case.want || requests != case.vrf_requests {
            failures.push(format!(
                "{}: returned {got:?} after {requests} vrfSign requests, expected {:?} after {}",
                case.name, case.want, case.vrf_requests
            ));
        }
    }
    assert_rows("VRF precondition", &failures);
}

/// For keys the signer lists, `has_keys` answers `false` when the call fails, whatever the
/// error, and the signer's answer when it succeeds.
#[test]
fn has_keys_is_false_on_every_error() {
    let mut rows: Vec<(String, Reply, bool, bool)> = vec![
        ("signer says true".into(), Reply::Ok, true, true),
        ("signer says false".into(), Reply::Ok, false, false),
        ("no answer".into(), Reply::Hang, true, false),
    ];
    rows.extend((1001..=1009).map(|code| (format!("{code}"), Reply::code(code), true, false)));
    let net = Net::new();
    let mut failures = Vec::new();
    for (name, reply, answer, want) in rows {
        net.clear_journal();
        let fake = net.signer("s").holds(&sr_public().0).holds(&ed_public().0).script([reply]).has_keys(answer).start();
        let ks = KeystoreBuilder::new().url(&fake.url).timeout(Duration::from_millis(300)).build();
        let got = ks.has_keys(&[(sr_public().0.to_vec(), BABE), (ed_public().0.to_vec(), GRAN)]);
        let asked = net.trace(&["hasKeys"]).len();
        if got != want || asked != 1 {
            failures.push(format!("{name}: answered {got} after {asked} hasKeys requests, expected {want} after 1"));
        }
    }
    assert_rows("has_keys", &failures);
}

/// `Keystore::keys` maps errors with `RemoteError::into_keystore_error` (the sign methods above
/// map most refusals to `Ok(None)` first). 1003 becomes `KeyNotSupported` naming the placeholder
/// key type `????`, not the key type asked for.
#[test]
fn keys_maps_errors_to_categories() {
    let rows: [(i32, Got); 10] = [
        (OK, Got::Signed(sr_public().0.to_vec())),
        (1001, Got::Invalid),
        (1002, Got::Invalid),
        (1003, Got::NotSupported(*b"????")),
        (1004, Got::Unavailable),
        (1005, Got::Other),
        (1006, Got::Invalid),
        (1007, Got::Other),
        (1008, Got::Invalid),
        (1009, Got::Unavailable),
    ];
    let net = Net::new();
    let mut failures = Vec::new();
    for (code, want) in rows {
        let reply = if code == OK { Reply::Ok } else { Reply::code(code) };
        let fake = net.signer("s").holds(&sr_public().0).keys_script([reply]).start();
        let ks = KeystoreBuilder::new().url(&fake.url).build();
        let got = match ks.keys(IMON) {
            Ok(keys) => Got::Signed(keys.concat()),
            Err(e) => Got::error(&e),
        };
        if got != want {
            failures.push(format!("{code}: returned {got:?}, expected {want:?}"));
        }
    }
    assert_rows("keys", &failures);
}
