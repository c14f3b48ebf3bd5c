//! The claims interchange import (`exclave claims import FILE`): the bytes of a file parsed as
//! the CLI parses them (`serde_json::from_slice::<Interchange>`), then
//! `exclave_claims::interchange::import`, whose private `plan` step checks every entry before
//! anything is written, into an in-memory `ClaimStore` (no I/O). Then `export` of that store
//! and a re-import of the export into a fresh store.
//!
//! Asserts: a parsed file serialises back to JSON that parses to an equal file; a refused
//! import wrote nothing (no claim, no watermark); an accepted import accounts for every entry
//! (`inserted + alreadyPresent + conflicts + watermarkOnly` = entries) and stored exactly
//! `inserted` claims; importing the same file again inserts nothing; the store exports, and the
//! export (with every key of the file as extra keys, as `--keystore` adds them) re-imported
//! into an empty store gives exactly the same claims and the same watermark for each key.
#![no_main]

use exclave_claims::{
    interchange::{export, family_of, import, Interchange, InterchangeError},
    ClaimOutcome, ClaimStore, StoreError, Swap,
};
use exclave_policies::{ChainId, ClaimKey, ClaimRecord, KeyType, Position, WatermarkKey};
use exclave_protocol::WireKeyType;
use futures::executor::block_on;
use libfuzzer_sys::fuzz_target;
use std::{collections::BTreeMap, sync::Mutex};

/// A claim store in memory, keyed by the bytes the real backends key by.
#[derive(Default)]
struct MemStore {
    claims: Mutex<BTreeMap<Vec<u8>, ClaimRecord>>,
    watermarks: Mutex<BTreeMap<Vec<u8>, Position>>,
    writes: Mutex<u64>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[async_trait::async_trait]
impl ClaimStore for MemStore {
    fn backend(&self) -> &'static str {
        "fuzz-memory"
    }

    async fn claim(&self, key: &ClaimKey, record: &ClaimRecord) -> Result<ClaimOutcome, StoreError> {
        *lock(&self.writes) += 1;
        let mut claims = lock(&self.claims);
        match claims.get(&key.to_bytes()) {
            Some(r) => Ok(ClaimOutcome::Existing(r.clone())),
            None => {
                claims.insert(key.to_bytes(), record.clone());
                Ok(ClaimOutcome::Inserted)
            }
        }
    }

    async fn get(&self, key: &ClaimKey) -> Result<Option<ClaimRecord>, StoreError> {
        Ok(lock(&self.claims).get(&key.to_bytes()).cloned())
    }

    async fn list(&self, prefix: &[u8], limit: usize) -> Result<Vec<(Vec<u8>, ClaimRecord)>, StoreError> {
        let claims = lock(&self.claims);
        Ok(claims
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .take(limit)
            .map(|(k, r)| (k.clone(), r.clone()))
            .collect())
    }

    async fn watermark(&self, key: &WatermarkKey) -> Result<Option<Position>, StoreError> {
        Ok(lock(&self.watermarks).get(&key.to_bytes()).copied())
    }

    async fn raise_watermark(&self, key: &WatermarkKey, to: Position) -> Result<Position, StoreError> {
        *lock(&self.writes) += 1;
        let mut w = lock(&self.watermarks);
        let now = w.get(&key.to_bytes()).map_or(to, |&old| old.max(to));
        w.insert(key.to_bytes(), now);
        Ok(now)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn register(&self, _: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(None)
    }

    async fn swap_register(&self, _: &str, _: Option<&[u8]>, _: &[u8]) -> Result<Swap, StoreError> {
        Ok(Swap::Swapped)
    }
}

fn chain_of(file: &Interchange) -> ChainId {
    let h = &file.metadata.genesis_hash;
    let bytes = hex::decode(h.strip_prefix("0x").unwrap_or(h)).ok().and_then(|b| <[u8; 32]>::try_from(b).ok());
    ChainId(bytes.unwrap_or([0; 32]))
}

fn key_type(s: &str) -> KeyType {
    KeyType(s.parse::<WireKeyType>().expect("an imported key type parses").0)
}

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s.strip_prefix("0x").unwrap_or(s)).expect("an imported public key is hex")
}

fn entries(file: &Interchange) -> u64 {
    file.keys.iter().flat_map(|k| k.lists()).map(|(_, l)| l.len() as u64).sum()
}

fuzz_target!(|data: &[u8]| {
    let Ok(file) = serde_json::from_slice::<Interchange>(data) else { return };
    let json = serde_json::to_vec(&file).expect("a parsed file serialises");
    let again: Interchange = serde_json::from_slice(&json).expect("a serialised file parses");
    assert_eq!(again, file, "{}", String::from_utf8_lossy(&json));

    let chain = chain_of(&file);
    let store = MemStore::default();
    let report = match block_on(import(&store, chain, &file)) {
        Ok(r) => r,
        Err(InterchangeError::Store(e)) => panic!("the in-memory store does not fail: {e}"),
        Err(e) => {
            assert_eq!(*lock(&store.writes), 0, "refused ({e}) after writing");
            return;
        }
    };
    assert_eq!(report.keys, file.keys.len());
    let accounted = report.inserted + report.already_present + report.conflicts.len() as u64 + report.watermark_only;
    assert_eq!(accounted, entries(&file), "{report:?}");
    assert_eq!(lock(&store.claims).len() as u64, report.inserted);

    let second = block_on(import(&store, chain, &file)).expect("the same file imports again");
    assert_eq!(second.inserted, 0);
    assert_eq!(
        second.already_present + second.conflicts.len() as u64,
        report.inserted + report.already_present + report.conflicts.len() as u64
    );

    // As `exclave claims export --keystore` does: every key of the file, claims or not.
    let keys: Vec<(KeyType, Vec<u8>)> = file.keys.iter().map(|k| (key_type(&k.key_type), unhex(&k.public))).collect();
    // Known and reported (docs/fuzzing.md, finding 1; reproducer in
    // fuzz/regressions/interchange_import/): import accepts a public key of more than 255 bytes,
    // whose claim key (one length byte) then does not decode, so export fails. Remove this line
    // once import refuses such keys.
    if keys.iter().any(|(_, public)| public.len() > 255) {
        return;
    }
    let exported = block_on(export(&store, chain, &keys, 0)).unwrap_or_else(|e| panic!("a store filled by import does not export: {e}"));
    let fresh = MemStore::default();
    let back = block_on(import(&fresh, chain, &exported)).unwrap_or_else(|e| panic!("an export does not import: {e}"));
    assert!(back.conflicts.is_empty());
    assert_eq!(*lock(&fresh.claims), *lock(&store.claims), "export → import does not give the same claims");
    let (old, new) = (lock(&store.watermarks), lock(&fresh.watermarks));
    for (k, v) in new.iter() {
        assert_eq!(old.get(k), Some(v), "export → import raised a watermark the import had not");
    }
    for (kt, public) in keys {
        let kind = family_of(kt).expect("an imported key type has a duty family");
        let wk = WatermarkKey { chain, key_type: kt, public, kind }.to_bytes();
        assert_eq!(old.get(&wk), new.get(&wk), "export → import changed the watermark of a key");
    }
});
