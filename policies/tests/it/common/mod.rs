//! Builders shared by the integration tests: real Substrate encodings built with the
//! sp-consensus crates, owned requests, and a name for every `PolicyError` variant so case
//! tables can say which refusal they expect.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use codec::Encode;
use exclave_policies::{ChainId, Crypto, KeyType, PolicyError, SignContext, SignRequest};
use sp_consensus_babe::{
    digests::{PreDigest, PrimaryPreDigest, SecondaryPlainPreDigest, SecondaryVRFPreDigest},
    make_vrf_sign_data, Slot, BABE_ENGINE_ID,
};
use sp_core::{crypto::VrfSecret, sr25519, Pair, H256};
use sp_runtime::{
    generic::{Digest, DigestItem},
    traits::BlakeTwo256,
};

/// The header type of Polkadot-like chains: u32 block numbers, blake2 hashing.
pub type Header = sp_runtime::generic::Header<u32, BlakeTwo256>;

/// A test chain's genesis hash.
pub const CHAIN: ChainId = ChainId([0xc0; 32]);

/// A signing request that owns its bytes; `req()` borrows it as the crate's `SignRequest`.
#[derive(Clone, Debug)]
pub struct OwnedRequest {
    pub key_type: KeyType,
    pub crypto: Crypto,
    pub message: Vec<u8>,
    pub context: SignContext,
    pub prehashed: bool,
}

impl OwnedRequest {
    /// A request without context, not prehashed, with the key type's own crypto.
    pub fn plain(key_type: KeyType, message: Vec<u8>) -> Self {
        let crypto = key_type.crypto().unwrap_or(Crypto::Sr25519);
        OwnedRequest { key_type, crypto, message, context: SignContext::None, prehashed: false }
    }

    /// A BABE seal request: the message is blake2_256 of the SCALE header, sent as context.
    pub fn seal(header: &Header) -> Self {
        let bytes = header.encode();
        OwnedRequest {
            key_type: KeyType::BABE,
            crypto: Crypto::Sr25519,
            message: sp_crypto_hashing::blake2_256(&bytes).to_vec(),
            context: SignContext::BabeSeal { header: bytes },
            prehashed: false,
        }
    }

    pub fn with_crypto(mut self, crypto: Crypto) -> Self {
        self.crypto = crypto;
        self
    }

    pub fn with_message(mut self, message: Vec<u8>) -> Self {
        self.message = message;
        self
    }

    pub fn with_context(mut self, context: SignContext) -> Self {
        self.context = context;
        self
    }

    pub fn prehashed(mut self) -> Self {
        self.prehashed = true;
        self
    }

    pub fn req(&self) -> SignRequest<'_> {
        SignRequest {
            key_type: self.key_type,
            crypto: self.crypto,
            message: &self.message,
            context: &self.context,
            prehashed: self.prehashed,
        }
    }
}

/// The name of a `PolicyError` variant. The match is exhaustive on purpose: a new variant must
/// be named here before any test compiles.
pub fn variant(e: &PolicyError) -> &'static str {
    match e {
        PolicyError::UnsupportedKeyType { .. } => "UnsupportedKeyType",
        PolicyError::WrongCrypto { .. } => "WrongCrypto",
        PolicyError::MissingSealHeader => "MissingSealHeader",
        PolicyError::BadHeader { .. } => "BadHeader",
        PolicyError::NoBabePreDigest => "NoBabePreDigest",
        PolicyError::MultipleBabePreDigests => "MultipleBabePreDigests",
        PolicyError::AlreadySealed => "AlreadySealed",
        PolicyError::HeaderHashMismatch { .. } => "HeaderHashMismatch",
        PolicyError::BadVote { .. } => "BadVote",
        PolicyError::BadHeartbeat { .. } => "BadHeartbeat",
        PolicyError::MissingCommitment => "MissingCommitment",
        PolicyError::BadCommitment { .. } => "BadCommitment",
        PolicyError::CommitmentHashMismatch { .. } => "CommitmentHashMismatch",
        PolicyError::VrfNotAllowed { .. } => "VrfNotAllowed",
        PolicyError::Unrecognised { .. } => "Unrecognised",
    }
}

/// A deterministic sr25519 pair for building real VRF signatures in pre-digests.
pub fn vrf_pair() -> sr25519::Pair {
    sr25519::Pair::from_seed(&[7u8; 32])
}

/// A real BABE VRF signature over `(randomness, slot, epoch)`.
fn vrf_signature(pair: &sr25519::Pair, slot: u64) -> sr25519::vrf::VrfSignature {
    pair.vrf_sign(&make_vrf_sign_data(&[9u8; 32], Slot::from(slot), 0))
}

/// A primary pre-digest with a real VRF signature by `pair`.
pub fn primary(pair: &sr25519::Pair, authority_index: u32, slot: u64) -> PreDigest {
    PreDigest::Primary(PrimaryPreDigest { authority_index, slot: Slot::from(slot), vrf_signature: vrf_signature(pair, slot) })
}

/// A secondary plain pre-digest (no VRF; fully deterministic).
pub fn secondary_plain(authority_index: u32, slot: u64) -> PreDigest {
    PreDigest::SecondaryPlain(SecondaryPlainPreDigest { authority_index, slot: Slot::from(slot) })
}

/// A secondary VRF pre-digest with a real VRF signature by `pair`.
pub fn secondary_vrf(pair: &sr25519::Pair, authority_index: u32, slot: u64) -> PreDigest {
    PreDigest::SecondaryVRF(SecondaryVRFPreDigest { authority_index, slot: Slot::from(slot), vrf_signature: vrf_signature(pair, slot) })
}

/// The `PreRuntime(BABE, pre_digest)` digest item, exactly as a BABE author writes it.
pub fn babe_item(pre: &PreDigest) -> DigestItem {
    DigestItem::PreRuntime(BABE_ENGINE_ID, pre.encode())
}

/// A header with the given digest items; `variant` changes the parent hash so two headers with
/// the same digest differ.
pub fn header_with(number: u32, variant: u8, logs: Vec<DigestItem>) -> Header {
    Header {
        parent_hash: H256::repeat_byte(variant),
        number,
        state_root: H256::repeat_byte(0x22),
        extrinsics_root: H256::repeat_byte(0x33),
        digest: Digest { logs },
    }
}

/// A pre-seal header carrying only the BABE pre-digest.
pub fn pre_header(number: u32, variant: u8, pre: &PreDigest) -> Header {
    header_with(number, variant, vec![babe_item(pre)])
}

/// Read a fixture under `tests/fixtures/`, a hex string (whitespace and `#` comment lines ignored).
pub fn fixture_hex(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
    let text = std::fs::read_to_string(&path).expect("fixture exists");
    let hex: String =
        text.lines().filter(|l| !l.trim_start().starts_with('#')).flat_map(|l| l.chars()).filter(|c| !c.is_whitespace()).collect();
    hex::decode(hex.trim_start_matches("0x")).expect("fixture is hex")
}

/// A tiny deterministic PRNG (xorshift64*), so shuffles are reproducible without a rand dependency.
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> Self {
        XorShift(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A value in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Fisher-Yates shuffle.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}

/// Run a table of `(name, request, expected refusal variant)`; report every failing case at once.
pub fn check_refusals(table: Vec<(&str, OwnedRequest, &str)>) {
    let mut failures = Vec::new();
    for (name, request, expect) in table {
        match exclave_policies::classify(&request.req()) {
            Err(e) if variant(&e) == expect => {}
            other => failures.push(format!("{name}: expected {expect}, got {other:?}")),
        }
    }
    assert!(failures.is_empty(), "failing cases:\n{}", failures.join("\n"));
}
