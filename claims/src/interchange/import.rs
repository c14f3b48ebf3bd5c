//! `exclave claims import`: watermarks first, then claims through the store's own
//! compare-and-swap, so importing beside running signers is safe (docs/claims.md).

use super::hex_field::{unhex, unhex32};
use super::{
    family_of,
    format::{Interchange, FORMAT, VERSION},
    show_position, InterchangeError,
};
use crate::{ClaimOutcome, ClaimStore};
use exclave_policies::{ChainId, ClaimKey, ClaimRecord, Duty, KeyType, Position, WatermarkKey};
use exclave_protocol::WireKeyType;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// A claim in the file that the store already holds with another payload (the store's is kept).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Conflict {
    /// `keyType/0xpublic`.
    pub key: String,
    /// The duty.
    pub duty: Duty,
    /// The store's claimer.
    pub stored_claimer: String,
    /// The store's payload hash.
    pub stored_payload_hash: String,
    /// The file's payload hash.
    pub file_payload_hash: String,
}

/// What an import did.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportReport {
    /// Keys in the file.
    pub keys: usize,
    /// Claims inserted.
    pub inserted: u64,
    /// Claims the store already held with the same payload.
    pub already_present: u64,
    /// Entries without a payload hash (they only raise the watermark).
    pub watermark_only: u64,
    /// Watermarks in force after the import: `keyType/0xpublic/family` → `a,b`.
    pub watermarks: BTreeMap<String, String>,
    /// Claims held by the store with another payload.
    pub conflicts: Vec<Conflict>,
}

struct Planned {
    label: String,
    watermarks: HashMap<WatermarkKey, Position>,
    claims: Vec<(ClaimKey, ClaimRecord)>,
    watermark_only: u64,
}

/// Check the file against `chain` and turn every entry into keys and records; nothing is
/// written if any entry is malformed.
fn plan(file: &Interchange, chain: ChainId) -> Result<Vec<Planned>, InterchangeError> {
    let m = &file.metadata;
    if m.format != FORMAT || m.version != VERSION {
        return Err(InterchangeError::Unsupported { format: m.format.clone(), version: m.version, expected: FORMAT });
    }
    let file_chain = unhex32(&m.genesis_hash).map_err(|e| InterchangeError::BadEntry { key: "metadata.genesisHash".into(), reason: e })?;
    if file_chain != chain.0 {
        return Err(InterchangeError::WrongChain { file: m.genesis_hash.clone(), expected: chain.to_string() });
    }
    let source = m.source.clone().unwrap_or_else(|| "unknown".into());
    file.keys.iter().map(|k| plan_key(k, chain, &source)).collect()
}

fn plan_key(k: &super::format::KeyHistory, chain: ChainId, source: &str) -> Result<Planned, InterchangeError> {
    let label = format!("{}/{}", k.key_type, k.public);
    let bad = |reason: String| InterchangeError::BadEntry { key: label.clone(), reason };
    let key_type = KeyType(k.key_type.parse::<WireKeyType>().map_err(|e| bad(e.to_string()))?.0);
    let family = family_of(key_type).ok_or_else(|| bad(format!("key type {key_type} has no claimed duties")))?;
    let public = unhex(&k.public).map_err(bad)?;
    // A key of another length would be stored under a claim key that does not decode (its
    // length is one byte), and could not be exported or pruned again (found by fuzzing).
    let want = match key_type.crypto() {
        Some(exclave_policies::Crypto::Ecdsa) => 33,
        _ => 32,
    };
    if public.len() != want {
        return Err(bad(format!("the public key is {} bytes; a {key_type} key is {want}", public.len())));
    }
    let wk = |kind| WatermarkKey { chain, key_type, public: public.clone(), kind };
    let mut p = Planned { label: label.clone(), watermarks: HashMap::new(), claims: Vec::new(), watermark_only: 0 };
    for (kind, pos) in k.watermarks.all() {
        if kind != family {
            return Err(bad(format!("a {kind:?} watermark does not belong to a {key_type} key")));
        }
        p.watermarks.insert(wk(kind), pos);
    }
    // The newest position of the family, and whether an entry there has no payload hash.
    let mut newest: Option<(Position, bool)> = None;
    for (list, entries) in k.lists() {
        for e in entries {
            let duty = e.duty(list).map_err(bad)?;
            if duty.kind() != family {
                return Err(bad(format!("{list:?} entries do not belong to a {key_type} key")));
            }
            let pos = duty.position();
            let unknown = e.payload_hash.is_none();
            newest = Some(match newest {
                Some((n, u)) if n > pos => (n, u),
                Some((n, u)) if n == pos => (n, u || unknown),
                _ => (pos, unknown),
            });
            let Some(hash) = &e.payload_hash else {
                p.watermark_only += 1;
                continue;
            };
            let record = ClaimRecord {
                claimer: e.claimer.clone().unwrap_or_else(|| format!("import/{source}")),
                payload_hash: unhex32(hash).map_err(bad)?,
                signature: e.signature.as_deref().map(unhex).transpose().map_err(bad)?.unwrap_or_default(),
                claimed_at_ms: e.claimed_at_ms.unwrap_or(0),
            };
            p.claims.push((ClaimKey { chain, key_type, public: public.clone(), duty }, record));
        }
    }
    if let Some((pos, unknown)) = newest {
        if let Some(mark) = claims_watermark(family, pos, unknown) {
            let w = p.watermarks.entry(wk(family)).or_insert(mark);
            *w = (*w).max(mark);
        }
    }
    Ok(p)
}

/// The watermark an imported history implies: its newest position, except for GRANDPA, where
/// the newest round may still be in progress (a stage not yet voted would be refused and the
/// node's voter would stop): there the round before it, unless a vote in the newest round has
/// no payload hash (then only the watermark can protect it, so the round itself is covered).
fn claims_watermark(family: exclave_policies::DutyKind, newest: Position, unknown_at_newest: bool) -> Option<Position> {
    match family {
        exclave_policies::DutyKind::GrandpaVote if !unknown_at_newest => {
            let (set_id, round) = newest;
            round.checked_sub(1).map(|r| (set_id, r))
        }
        _ => Some(newest),
    }
}

/// Import `file` into `store` for `chain`.
pub async fn import(store: &dyn ClaimStore, chain: ChainId, file: &Interchange) -> Result<ImportReport, InterchangeError> {
    let plans = plan(file, chain)?;
    let mut report = ImportReport { keys: plans.len(), ..Default::default() };
    // Watermarks first: from here on nothing at or below them gets a first signature, and a
    // signer racing with the claims below is refused by its own watermark re-read.
    for p in &plans {
        for (wk, pos) in &p.watermarks {
            let now = store.raise_watermark(wk, *pos).await?;
            report.watermarks.insert(format!("{}/{}", p.label, wk.kind.name()), show_position(now));
        }
    }
    for p in plans {
        report.watermark_only += p.watermark_only;
        for (key, record) in p.claims {
            match store.claim(&key, &record).await? {
                ClaimOutcome::Inserted => report.inserted += 1,
                ClaimOutcome::Existing(r) if r.payload_hash == record.payload_hash => report.already_present += 1,
                ClaimOutcome::Existing(r) => report.conflicts.push(Conflict {
                    key: p.label.clone(),
                    duty: key.duty,
                    stored_claimer: r.claimer,
                    stored_payload_hash: format!("0x{}", hex::encode(r.payload_hash)),
                    file_payload_hash: format!("0x{}", hex::encode(record.payload_hash)),
                }),
            }
        }
    }
    Ok(report)
}
