//! The interchange file: versioned JSON, one object per public key.
//!
//! ```json
//! { "metadata": { "format": "exclave-claims-interchange", "version": 1,
//!                 "genesisHash": "0x…", "exportedAtMs": 1700000000000, "source": "embedded" },
//!   "keys": [ { "keyType": "gran", "public": "0x…",
//!               "watermarks": { "grandpaVote": ["5", "9"] },
//!               "grandpaVotes": [ { "setId": "5", "round": "10", "stage": "prevote",
//!                                   "payloadHash": "0x…", "signature": "0x…",
//!                                   "claimer": "signer-a/node-1", "claimedAtMs": 1700000000000 } ] } ] }
//! ```
//!
//! As in EIP-3076, 64-bit numbers (slots, set ids, rounds, watermarks) are decimal strings so
//! JavaScript tools do not round them; 32-bit ones (sessions, BEEFY blocks) are numbers. Lists:
//! `babeSlots` (`slot`), `grandpaVotes` (`setId`, `round`, `stage`), `sessions` (`session`),
//! `beefyBlocks` (`setId`, `block`). `payloadHash` (blake2_256 of the message signed) and the
//! rest are optional: without a payload hash an entry only raises the watermark. Unknown fields
//! are errors.

use exclave_policies::{Duty, GrandpaStage, Position};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The format name in the metadata.
pub const FORMAT: &str = "exclave-claims-interchange";
/// The version this build writes and reads.
pub const VERSION: u32 = 1;

/// The whole file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Interchange {
    /// What, which version, which chain.
    pub metadata: Metadata,
    /// One entry per (key type, public key).
    pub keys: Vec<KeyHistory>,
}

/// File metadata.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Metadata {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`VERSION`].
    pub version: u32,
    /// The chain's genesis hash, `0x` hex.
    pub genesis_hash: String,
    /// When it was exported (unix ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exported_at_ms: Option<u64>,
    /// Where from (backend name, or another tool).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// A u64 written as a decimal string (numbers are accepted on input).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dec(pub u64);

impl Serialize for Dec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.to_string())
    }
}

impl<'de> Deserialize<'de> for Dec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            S(String),
            N(u64),
        }
        match Either::deserialize(d)? {
            Either::N(n) => Ok(Dec(n)),
            Either::S(s) => s.parse().map(Dec).map_err(|_| serde::de::Error::custom(format!("{s:?} is not a decimal u64"))),
        }
    }
}

/// Low watermarks by family, each `[a, b]` as in the claim model (docs/claims.md).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Watermarks {
    /// BABE seals: `[slot, 0]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub babe_seal: Option<[Dec; 2]>,
    /// GRANDPA votes: `[set id, round]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grandpa_vote: Option<[Dec; 2]>,
    /// Heartbeats: `[session, 0]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat: Option<[Dec; 2]>,
    /// BEEFY votes: `[set id, block]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beefy_vote: Option<[Dec; 2]>,
}

/// One key's history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyHistory {
    /// `babe`, `gran`, `imon` or `beef`.
    pub key_type: String,
    /// The public key, `0x` hex.
    pub public: String,
    /// Low watermarks.
    #[serde(default, skip_serializing_if = "is_default")]
    pub watermarks: Watermarks,
    /// BABE seals.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub babe_slots: Vec<Entry>,
    /// GRANDPA votes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grandpa_votes: Vec<Entry>,
    /// I'm-online sessions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sessions: Vec<Entry>,
    /// BEEFY votes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub beefy_blocks: Vec<Entry>,
}

fn is_default(w: &Watermarks) -> bool {
    *w == Watermarks::default()
}

/// One signed duty: its coordinates (which ones depends on the list) and what was signed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Entry {
    /// BABE slot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<Dec>,
    /// GRANDPA or BEEFY set id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_id: Option<Dec>,
    /// GRANDPA round.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub round: Option<Dec>,
    /// GRANDPA stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<GrandpaStage>,
    /// Session index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<u32>,
    /// BEEFY block number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block: Option<u32>,
    /// blake2_256 of the message signed, `0x` hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_hash: Option<String>,
    /// The signature released, `0x` hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// Who claimed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimer: Option<String>,
    /// When (unix ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_at_ms: Option<u64>,
}

/// Which list an entry is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum List {
    /// `babeSlots`.
    BabeSlots,
    /// `grandpaVotes`.
    GrandpaVotes,
    /// `sessions`.
    Sessions,
    /// `beefyBlocks`.
    BeefyBlocks,
}

impl Entry {
    /// The coordinates of an entry of `list` as a duty, or what is missing or extra.
    pub fn duty(&self, list: List) -> Result<Duty, String> {
        let given = [
            self.slot.is_some(),
            self.set_id.is_some(),
            self.round.is_some(),
            self.stage.is_some(),
            self.session.is_some(),
            self.block.is_some(),
        ];
        let (duty, wants) = match list {
            List::BabeSlots => {
                (self.slot.map(|s| Duty::BabeSeal { slot: s.0, authority_index: 0 }), [true, false, false, false, false, false])
            }
            List::GrandpaVotes => (
                match (self.set_id, self.round, self.stage) {
                    (Some(s), Some(r), Some(stage)) => Some(Duty::GrandpaVote { set_id: s.0, round: r.0, stage }),
                    _ => None,
                },
                [false, true, true, true, false, false],
            ),
            List::Sessions => {
                (self.session.map(|session_index| Duty::Heartbeat { session_index }), [false, false, false, false, true, false])
            }
            List::BeefyBlocks => (
                match (self.set_id, self.block) {
                    (Some(s), Some(block_number)) => Some(Duty::BeefyVote { set_id: s.0, block_number }),
                    _ => None,
                },
                [false, true, false, false, false, true],
            ),
        };
        match duty {
            Some(d) if given == wants => Ok(d),
            _ => Err(format!("a {list:?} entry needs exactly {} (got {self:?})", needs(list))),
        }
    }

    /// An entry for `duty` (the record fields are filled by the caller).
    pub fn for_duty(duty: Duty) -> (List, Self) {
        match duty {
            Duty::BabeSeal { slot, .. } => (List::BabeSlots, Entry { slot: Some(Dec(slot)), ..Default::default() }),
            Duty::GrandpaVote { set_id, round, stage } => {
                (List::GrandpaVotes, Entry { set_id: Some(Dec(set_id)), round: Some(Dec(round)), stage: Some(stage), ..Default::default() })
            }
            Duty::Heartbeat { session_index } => (List::Sessions, Entry { session: Some(session_index), ..Default::default() }),
            Duty::BeefyVote { set_id, block_number } => {
                (List::BeefyBlocks, Entry { set_id: Some(Dec(set_id)), block: Some(block_number), ..Default::default() })
            }
        }
    }
}

fn needs(list: List) -> &'static str {
    match list {
        List::BabeSlots => "slot",
        List::GrandpaVotes => "setId, round and stage",
        List::Sessions => "session",
        List::BeefyBlocks => "setId and block",
    }
}

impl KeyHistory {
    /// The entries by list.
    pub fn lists(&self) -> [(List, &Vec<Entry>); 4] {
        [
            (List::BabeSlots, &self.babe_slots),
            (List::GrandpaVotes, &self.grandpa_votes),
            (List::Sessions, &self.sessions),
            (List::BeefyBlocks, &self.beefy_blocks),
        ]
    }

    /// The list for `list`, mutably.
    pub fn list_mut(&mut self, list: List) -> &mut Vec<Entry> {
        match list {
            List::BabeSlots => &mut self.babe_slots,
            List::GrandpaVotes => &mut self.grandpa_votes,
            List::Sessions => &mut self.sessions,
            List::BeefyBlocks => &mut self.beefy_blocks,
        }
    }
}

impl Watermarks {
    /// The watermark slot of a family.
    pub fn get_mut(&mut self, kind: exclave_policies::DutyKind) -> &mut Option<[Dec; 2]> {
        use exclave_policies::DutyKind::*;
        match kind {
            BabeSeal => &mut self.babe_seal,
            GrandpaVote => &mut self.grandpa_vote,
            Heartbeat => &mut self.heartbeat,
            BeefyVote => &mut self.beefy_vote,
        }
    }

    /// Every watermark set, by family.
    pub fn all(&self) -> Vec<(exclave_policies::DutyKind, Position)> {
        use exclave_policies::DutyKind::*;
        [(BabeSeal, self.babe_seal), (GrandpaVote, self.grandpa_vote), (Heartbeat, self.heartbeat), (BeefyVote, self.beefy_vote)]
            .into_iter()
            .filter_map(|(k, w)| w.map(|[a, b]| (k, (a.0, b.0))))
            .collect()
    }
}
