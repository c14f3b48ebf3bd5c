//! `exclave claims prune`: delete old claims without opening a gap. For every family it prunes,
//! it first raises the watermark to the highest position it will delete (durably), waits a
//! grace period, and only then deletes. The newest position of each family is never pruned, so
//! the family stays visible to `export` and a GRANDPA round in progress keeps its claims.

use super::{show_position, InterchangeError};
use crate::{list_all, PruneClaims};
use exclave_policies::{ChainId, ClaimKey, DutyKind, Position, WatermarkKey, CLAIM_PREFIX};
use serde::Serialize;
use std::{
    collections::{BTreeMap, HashMap},
    time::Duration,
};

/// A family's watermark key and its claims' positions and encoded keys.
type Family = (WatermarkKey, Vec<(Position, Vec<u8>)>);

/// What a prune did (or, with `dry_run`, would do).
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PruneReport {
    /// Claims examined.
    pub examined: u64,
    /// Claims deleted.
    pub deleted: u64,
    /// Watermarks raised before deleting: `keyType/0xpublic/family` → `a,b`.
    pub watermarks: BTreeMap<String, String>,
    /// Nothing was written.
    pub dry_run: bool,
}

/// Prune claims of `chain` below `below` (per family; families not named are kept).
pub async fn prune<S: PruneClaims + ?Sized>(
    store: &S,
    chain: ChainId,
    below: &HashMap<DutyKind, Position>,
    grace: Duration,
    dry_run: bool,
) -> Result<PruneReport, InterchangeError> {
    let mut prefix = CLAIM_PREFIX.to_vec();
    prefix.extend_from_slice(&chain.0);
    let claims = list_all(store, &prefix).await?;
    let mut families: BTreeMap<Vec<u8>, Family> = BTreeMap::new();
    for (raw, _) in &claims {
        let key = ClaimKey::from_bytes(raw).ok_or_else(|| InterchangeError::BadStoredKey(String::from_utf8_lossy(raw).into_owned()))?;
        let wk = key.watermark_key();
        families.entry(wk.to_bytes()).or_insert_with(|| (wk, Vec::new())).1.push((key.duty.position(), raw.clone()));
    }
    let mut report = PruneReport { examined: claims.len() as u64, dry_run, ..Default::default() };
    let mut doomed = Vec::new();
    for (wk, members) in families.into_values() {
        let Some(limit) = below.get(&wk.kind) else { continue };
        let newest = members.iter().map(|(p, _)| *p).max().unwrap_or_default();
        let go: Vec<_> = members.into_iter().filter(|(p, _)| p < limit && *p < newest).collect();
        let Some(mark) = go.iter().map(|(p, _)| *p).max() else { continue };
        let label = format!("{}/0x{}/{}", wk.key_type, hex::encode(&wk.public), wk.kind.name());
        let now = if dry_run { mark } else { store.raise_watermark(&wk, mark).await? };
        report.watermarks.insert(label, show_position(now));
        doomed.extend(go.into_iter().map(|(_, k)| k));
    }
    if dry_run || doomed.is_empty() {
        report.deleted = if dry_run { doomed.len() as u64 } else { 0 };
        return Ok(report);
    }
    // Signers running this version re-read the watermark after every fresh claim, so they
    // need no wait; the grace period covers requests already in flight in older signers.
    tokio::time::sleep(grace).await;
    for batch in doomed.chunks(1000) {
        store.delete_claims(batch).await?;
        report.deleted += batch.len() as u64;
    }
    Ok(report)
}
