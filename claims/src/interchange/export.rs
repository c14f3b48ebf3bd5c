//! `exclave claims export`: every claim and watermark of one chain, as an interchange file.

use super::{
    family_of,
    format::{Dec, Entry, Interchange, KeyHistory, Metadata, FORMAT, VERSION},
    InterchangeError,
};
use crate::{list_all, ClaimStore};
use exclave_policies::{ChainId, ClaimKey, KeyType, WatermarkKey, CLAIM_PREFIX};
use std::collections::BTreeMap;

/// Export the claims of `chain`, and the watermarks of every key that has claims or is in
/// `extra_keys` (keys whose claims were all pruned or never made).
pub async fn export(
    store: &dyn ClaimStore,
    chain: ChainId,
    extra_keys: &[(KeyType, Vec<u8>)],
    now_ms: u64,
) -> Result<Interchange, InterchangeError> {
    let mut prefix = CLAIM_PREFIX.to_vec();
    prefix.extend_from_slice(&chain.0);
    let claims = list_all(store, &prefix).await?;
    let mut keys: BTreeMap<(KeyType, Vec<u8>), KeyHistory> = BTreeMap::new();
    let history = |kt: KeyType, public: &[u8]| KeyHistory {
        key_type: kt.to_string(),
        public: format!("0x{}", hex::encode(public)),
        watermarks: Default::default(),
        babe_slots: Vec::new(),
        grandpa_votes: Vec::new(),
        sessions: Vec::new(),
        beefy_blocks: Vec::new(),
    };
    for (raw, record) in claims {
        let key = ClaimKey::from_bytes(&raw).ok_or_else(|| InterchangeError::BadStoredKey(String::from_utf8_lossy(&raw).into_owned()))?;
        let (list, mut entry) = Entry::for_duty(key.duty);
        entry.payload_hash = Some(format!("0x{}", hex::encode(record.payload_hash)));
        entry.signature = (!record.signature.is_empty()).then(|| format!("0x{}", hex::encode(&record.signature)));
        entry.claimer = Some(record.claimer);
        entry.claimed_at_ms = Some(record.claimed_at_ms);
        keys.entry((key.key_type, key.public.clone())).or_insert_with(|| history(key.key_type, &key.public)).list_mut(list).push(entry);
    }
    for (kt, public) in extra_keys {
        // Keys without claimed duties (`audi`) have no history; an entry would make the file
        // one that import refuses (found by fuzzing).
        if family_of(*kt).is_none() {
            continue;
        }
        keys.entry((*kt, public.clone())).or_insert_with(|| history(*kt, public));
    }
    for ((kt, public), h) in keys.iter_mut() {
        let Some(kind) = family_of(*kt) else { continue };
        let wk = WatermarkKey { chain, key_type: *kt, public: public.clone(), kind };
        if let Some((a, b)) = store.watermark(&wk).await? {
            *h.watermarks.get_mut(kind) = Some([Dec(a), Dec(b)]);
        }
    }
    let metadata = Metadata {
        format: FORMAT.into(),
        version: VERSION,
        genesis_hash: chain.to_string(),
        exported_at_ms: Some(now_ms),
        source: Some(store.backend().into()),
    };
    Ok(Interchange { metadata, keys: keys.into_values().collect() })
}
