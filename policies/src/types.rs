//! The vocabulary shared by the signer and the stores: key types, duties, claim keys and records.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A four-byte Substrate key type (`babe`, `gran`, …).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct KeyType(pub [u8; 4]);

impl KeyType {
    /// BABE block production (sr25519): seals and VRF slot claims.
    pub const BABE: KeyType = KeyType(*b"babe");
    /// GRANDPA finality votes (ed25519).
    pub const GRANDPA: KeyType = KeyType(*b"gran");
    /// I'm-online heartbeats (sr25519).
    pub const IM_ONLINE: KeyType = KeyType(*b"imon");
    /// BEEFY votes (ecdsa, prehashed keccak).
    pub const BEEFY: KeyType = KeyType(*b"beef");
    /// Authority discovery records (sr25519): signed, never claimed.
    pub const AUTHORITY_DISCOVERY: KeyType = KeyType(*b"audi");

    /// Every key type Exclave holds keys for.
    pub const SUPPORTED: [KeyType; 5] = [Self::BABE, Self::GRANDPA, Self::IM_ONLINE, Self::BEEFY, Self::AUTHORITY_DISCOVERY];

    /// The crypto scheme this key type uses on Substrate chains, `None` for unsupported types.
    pub fn crypto(self) -> Option<Crypto> {
        match &self.0 {
            b"babe" | b"imon" | b"audi" => Some(Crypto::Sr25519),
            b"gran" => Some(Crypto::Ed25519),
            b"beef" => Some(Crypto::Ecdsa),
            _ => None,
        }
    }

    /// Whether signatures with this key type fulfil a duty that must be claimed.
    pub fn is_protected(self) -> bool {
        matches!(&self.0, b"babe" | b"gran" | b"imon" | b"beef")
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match std::str::from_utf8(&self.0) {
            Ok(s) if self.0.iter().all(|b| b.is_ascii_graphic()) => f.write_str(s),
            _ => write!(f, "0x{}", hex::encode(self.0)),
        }
    }
}

impl fmt::Debug for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyType({self})")
    }
}

/// A signature scheme.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Crypto {
    /// Schnorr over Ristretto25519: randomised signatures and VRFs.
    Sr25519,
    /// Ed25519: deterministic signatures.
    Ed25519,
    /// ECDSA over secp256k1: deterministic (RFC 6979) signatures.
    Ecdsa,
}

impl Crypto {
    /// Whether two signatures over the same message differ (so a retry must reuse the stored one).
    pub fn is_randomised(self) -> bool {
        matches!(self, Crypto::Sr25519)
    }
}

impl fmt::Display for Crypto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Crypto::Sr25519 => "sr25519",
            Crypto::Ed25519 => "ed25519",
            Crypto::Ecdsa => "ecdsa",
        })
    }
}

/// The chain a claim belongs to: its genesis hash.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChainId(pub [u8; 32]);

impl fmt::Display for ChainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{}", hex::encode(self.0))
    }
}

impl fmt::Debug for ChainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChainId({self})")
    }
}

/// A string that is not a `0x`-prefixed 32-byte hex genesis hash.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("chain {input:?} is not a 0x-prefixed 32-byte hex genesis hash")]
pub struct ParseChainIdError {
    /// What was given.
    pub input: String,
}

impl std::str::FromStr for ChainId {
    type Err = ParseChainIdError;

    /// `0x` followed by 64 hex digits, as [`ChainId`]'s `Display` writes it.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ParseChainIdError { input: s.to_owned() };
        let bytes = hex::decode(s.strip_prefix("0x").ok_or_else(bad)?).map_err(|_| bad())?;
        bytes.try_into().map(ChainId).map_err(|_| bad())
    }
}

/// A validator duty that may be signed at most once (with one payload).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Duty {
    /// Sealing the block authored in a BABE slot.
    #[serde(rename_all = "camelCase")]
    BabeSeal {
        /// The slot.
        slot: u64,
        /// The authority index in the pre-digest (informational; not part of the key).
        authority_index: u32,
    },
    /// A GRANDPA vote of one stage in one round of one authority set.
    #[serde(rename_all = "camelCase")]
    GrandpaVote {
        /// The authority set id.
        set_id: u64,
        /// The round within that set.
        round: u64,
        /// Prevote, precommit or primary propose.
        stage: crate::GrandpaStage,
    },
    /// An I'm-online heartbeat for a session.
    #[serde(rename_all = "camelCase")]
    Heartbeat {
        /// The session index.
        session_index: u32,
    },
    /// A BEEFY vote for a block of a validator set.
    #[serde(rename_all = "camelCase")]
    BeefyVote {
        /// The BEEFY validator set id.
        set_id: u64,
        /// The block number voted on.
        block_number: u32,
    },
}

/// The family of a duty: watermarks are kept per family.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum DutyKind {
    /// BABE seals, ordered by slot.
    BabeSeal,
    /// GRANDPA votes, ordered by (set id, round).
    GrandpaVote,
    /// Heartbeats, ordered by session.
    Heartbeat,
    /// BEEFY votes, ordered by (set id, block).
    BeefyVote,
}

impl DutyKind {
    fn tag(self) -> u8 {
        match self {
            DutyKind::BabeSeal => 1,
            DutyKind::GrandpaVote => 2,
            DutyKind::Heartbeat => 3,
            DutyKind::BeefyVote => 4,
        }
    }

    fn from_tag(tag: u8) -> Option<Self> {
        Some(match tag {
            1 => DutyKind::BabeSeal,
            2 => DutyKind::GrandpaVote,
            3 => DutyKind::Heartbeat,
            4 => DutyKind::BeefyVote,
            _ => return None,
        })
    }

    /// A short stable name, used in metrics labels and logs.
    pub fn name(self) -> &'static str {
        match self {
            DutyKind::BabeSeal => "babe_seal",
            DutyKind::GrandpaVote => "grandpa_vote",
            DutyKind::Heartbeat => "heartbeat",
            DutyKind::BeefyVote => "beefy_vote",
        }
    }
}

/// Where a duty sits in its family's order; compared lexicographically.
pub type Position = (u64, u64);

impl Duty {
    /// The duty's family.
    pub fn kind(&self) -> DutyKind {
        match self {
            Duty::BabeSeal { .. } => DutyKind::BabeSeal,
            Duty::GrandpaVote { .. } => DutyKind::GrandpaVote,
            Duty::Heartbeat { .. } => DutyKind::Heartbeat,
            Duty::BeefyVote { .. } => DutyKind::BeefyVote,
        }
    }

    /// The duty's position in its family, for watermarks.
    pub fn position(&self) -> Position {
        match *self {
            Duty::BabeSeal { slot, .. } => (slot, 0),
            Duty::GrandpaVote { set_id, round, .. } => (set_id, round),
            Duty::Heartbeat { session_index } => (u64::from(session_index), 0),
            Duty::BeefyVote { set_id, block_number } => (set_id, u64::from(block_number)),
        }
    }

    /// The duty's coordinates as big-endian bytes (so keys sort by coordinate).
    fn coordinates(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(17);
        match *self {
            // The authority index is deliberately not part of the key: one slot, one seal.
            Duty::BabeSeal { slot, .. } => out.extend_from_slice(&slot.to_be_bytes()),
            Duty::GrandpaVote { set_id, round, stage } => {
                out.extend_from_slice(&set_id.to_be_bytes());
                out.extend_from_slice(&round.to_be_bytes());
                out.push(stage as u8);
            }
            Duty::Heartbeat { session_index } => out.extend_from_slice(&session_index.to_be_bytes()),
            Duty::BeefyVote { set_id, block_number } => {
                out.extend_from_slice(&set_id.to_be_bytes());
                out.extend_from_slice(&block_number.to_be_bytes());
            }
        }
        out
    }
}

impl fmt::Display for Duty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Duty::BabeSeal { slot, .. } => write!(f, "babe seal slot {slot}"),
            Duty::GrandpaVote { set_id, round, stage } => {
                write!(f, "grandpa {stage:?} set {set_id} round {round}")
            }
            Duty::Heartbeat { session_index } => write!(f, "heartbeat session {session_index}"),
            Duty::BeefyVote { set_id, block_number } => {
                write!(f, "beefy vote set {set_id} block {block_number}")
            }
        }
    }
}

/// Prefix of every claim key: lets a shared store keep Exclave's keys apart and versioned.
pub const CLAIM_PREFIX: &[u8] = b"exclave/claim/v1/";
/// Prefix of every watermark key.
pub const WATERMARK_PREFIX: &[u8] = b"exclave/watermark/v1/";

/// The key under which a duty is claimed: chain, key type, public key, duty coordinates.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct ClaimKey {
    /// The chain's genesis hash.
    pub chain: ChainId,
    /// The key type.
    pub key_type: KeyType,
    /// The raw public key.
    pub public: Vec<u8>,
    /// The duty.
    pub duty: Duty,
}

fn key_prefix(out: &mut Vec<u8>, chain: &ChainId, key_type: KeyType, public: &[u8], kind: DutyKind) {
    out.extend_from_slice(&chain.0);
    out.extend_from_slice(&key_type.0);
    // Public keys have fixed lengths per scheme, but a length byte keeps the encoding unambiguous.
    out.push(u8::try_from(public.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(public);
    out.push(kind.tag());
}

impl ClaimKey {
    /// The bytes stored: `CLAIM_PREFIX ++ genesis ++ key type ++ len ++ public ++ kind ++ coordinates`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = CLAIM_PREFIX.to_vec();
        key_prefix(&mut out, &self.chain, self.key_type, &self.public, self.duty.kind());
        out.extend_from_slice(&self.duty.coordinates());
        out
    }

    /// Decode [`ClaimKey::to_bytes`] (for listing and interchange). The BABE authority index
    /// is not in the key and comes back as 0. `None` for anything that is not exactly a key.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let rest = bytes.strip_prefix(CLAIM_PREFIX)?;
        let (chain, rest) = rest.split_first_chunk::<32>()?;
        let (key_type, rest) = rest.split_first_chunk::<4>()?;
        let (len, rest) = rest.split_first()?;
        let (public, rest) = rest.split_at_checked(usize::from(*len))?;
        let (kind, c) = rest.split_first()?;
        let be8 = |b: &[u8]| b.try_into().ok().map(u64::from_be_bytes);
        let be4 = |b: &[u8]| b.try_into().ok().map(u32::from_be_bytes);
        let duty = match (DutyKind::from_tag(*kind)?, c.len()) {
            (DutyKind::BabeSeal, 8) => Duty::BabeSeal { slot: be8(c)?, authority_index: 0 },
            (DutyKind::GrandpaVote, 17) => {
                let stage = match c[16] {
                    0 => crate::GrandpaStage::Prevote,
                    1 => crate::GrandpaStage::Precommit,
                    2 => crate::GrandpaStage::PrimaryPropose,
                    _ => return None,
                };
                Duty::GrandpaVote { set_id: be8(&c[..8])?, round: be8(&c[8..16])?, stage }
            }
            (DutyKind::Heartbeat, 4) => Duty::Heartbeat { session_index: be4(c)? },
            (DutyKind::BeefyVote, 12) => Duty::BeefyVote { set_id: be8(&c[..8])?, block_number: be4(&c[8..])? },
            _ => return None,
        };
        Some(ClaimKey { chain: ChainId(*chain), key_type: KeyType(*key_type), public: public.to_vec(), duty })
    }

    /// The watermark that governs this claim.
    pub fn watermark_key(&self) -> WatermarkKey {
        WatermarkKey { chain: self.chain, key_type: self.key_type, public: self.public.clone(), kind: self.duty.kind() }
    }
}

/// The key of a low watermark: nothing at or below it may be newly signed.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct WatermarkKey {
    /// The chain's genesis hash.
    pub chain: ChainId,
    /// The key type.
    pub key_type: KeyType,
    /// The raw public key.
    pub public: Vec<u8>,
    /// The duty family.
    pub kind: DutyKind,
}

impl WatermarkKey {
    /// The bytes stored: `WATERMARK_PREFIX ++ genesis ++ key type ++ len ++ public ++ kind`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = WATERMARK_PREFIX.to_vec();
        key_prefix(&mut out, &self.chain, self.key_type, &self.public, self.kind);
        out
    }
}

/// What a claim records: who claimed, a hash of exactly what is signed, the signature, when.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimRecord {
    /// The claimer: signer id and client identity, e.g. `signer-a/alice-1`.
    pub claimer: String,
    /// blake2_256 of the exact message signed.
    #[serde(with = "hex32")]
    pub payload_hash: [u8; 32],
    /// The signature released for this claim (always kept; required for randomised schemes).
    #[serde(with = "hexvec")]
    pub signature: Vec<u8>,
    /// Milliseconds since the Unix epoch when the claim was made.
    pub claimed_at_ms: u64,
}

impl fmt::Debug for ClaimRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClaimRecord")
            .field("claimer", &self.claimer)
            .field("payload_hash", &hex::encode(self.payload_hash))
            .field("signature", &hex::encode(&self.signature))
            .field("claimed_at_ms", &self.claimed_at_ms)
            .finish()
    }
}

/// blake2_256 of the exact bytes signed: what a claim binds.
pub fn payload_hash(message: &[u8]) -> [u8; 32] {
    sp_crypto_hashing::blake2_256(message)
}

mod hex32 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let s = String::deserialize(d)?;
        let v = hex::decode(s).map_err(serde::de::Error::custom)?;
        v.try_into().map_err(|_| serde::de::Error::custom("expected 32 bytes"))
    }
}

mod hexvec {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        hex::decode(String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}
