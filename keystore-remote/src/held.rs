//! The keys the signers hold, per key type, as a list cached on the node.
//!
//! Consensus asks "which of these authorities is mine" by trying every authority: BABE asks for a
//! VRF signature once per authority of the epoch in every slot, GRANDPA calls `has_keys` once per
//! voter at every round start, BEEFY once per validator on every vote. With 1,000 authorities a
//! round trip each would cost seconds. Keys missing from this list are answered on the node, so
//! those loops cost round trips only for the keys the signers hold (and one list fetch per key
//! type every [`HELD_KEYS_TTL`]).
//!
//! When the list cannot be fetched, every key of that type counts as not held for
//! [`HELD_KEYS_RETRY`] before the next fetch: the node neither authors nor votes (safe), and a
//! signer that does not answer is not asked once per authority.

use crate::error::RemoteError;
use parking_lot::Mutex;
use sp_core::crypto::KeyTypeId;
use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};

/// How long a fetched list is trusted before it is fetched again.
pub(crate) const HELD_KEYS_TTL: Duration = Duration::from_secs(30);
/// How long after a failed fetch the list is not asked for again (every key counts as not held).
pub(crate) const HELD_KEYS_RETRY: Duration = Duration::from_secs(1);

/// Whether the signers hold a key, as far as the node knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Held {
    /// In the signers' list: the signer decides the rest (lease, claims).
    Yes,
    /// Not in the signers' list.
    No,
    /// The list could not be fetched recently: treat as not held.
    Unknown,
}

enum Entry {
    Known { at: Instant, keys: HashSet<Vec<u8>> },
    Failed { at: Instant },
}

impl Entry {
    fn fresh(&self, now: Instant) -> bool {
        match self {
            Entry::Known { at, .. } => now.duration_since(*at) < HELD_KEYS_TTL,
            Entry::Failed { at } => now.duration_since(*at) < HELD_KEYS_RETRY,
        }
    }

    fn answer(&self, public: &[u8]) -> Held {
        match self {
            Entry::Known { keys, .. } if keys.contains(public) => Held::Yes,
            Entry::Known { .. } => Held::No,
            Entry::Failed { .. } => Held::Unknown,
        }
    }
}

/// The cached lists, one per key type.
#[derive(Default)]
pub(crate) struct HeldKeys {
    entries: Mutex<HashMap<KeyTypeId, Entry>>,
    /// One fetch at a time: threads that find the list stale together wait for one answer.
    fetching: Mutex<()>,
}

impl HeldKeys {
    /// Whether `public` is held under `kt`, fetching the list with `fetch` when it is stale.
    pub(crate) fn lookup(&self, kt: KeyTypeId, public: &[u8], fetch: impl FnOnce() -> Result<Vec<Vec<u8>>, RemoteError>) -> Held {
        if let Some(held) = self.cached(kt, public) {
            return held;
        }
        let _one_fetch = self.fetching.lock();
        if let Some(held) = self.cached(kt, public) {
            return held;
        }
        let entry = match fetch() {
            Ok(keys) => Entry::Known { at: Instant::now(), keys: keys.into_iter().collect() },
            Err(e) => {
                tracing::warn!(key_type = ?kt, error = %e, retry_in = ?HELD_KEYS_RETRY, "remote keystore: the signers' key list could not be fetched; until it can, no key of this type counts as held (the node neither authors nor votes with it)");
                Entry::Failed { at: Instant::now() }
            }
        };
        let held = entry.answer(public);
        self.entries.lock().insert(kt, entry);
        held
    }

    /// Forget the list of `kt` (a key was generated or inserted).
    pub(crate) fn forget(&self, kt: KeyTypeId) {
        self.entries.lock().remove(&kt);
    }

    fn cached(&self, kt: KeyTypeId, public: &[u8]) -> Option<Held> {
        let entries = self.entries.lock();
        entries.get(&kt).filter(|e| e.fresh(Instant::now())).map(|e| e.answer(public))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    const BABE: KeyTypeId = KeyTypeId(*b"babe");
    const GRAN: KeyTypeId = KeyTypeId(*b"gran");

    #[test]
    fn one_fetch_answers_every_key_of_its_type() {
        let held = HeldKeys::default();
        let fetches = Cell::new(0);
        let fetch = || {
            fetches.set(fetches.get() + 1);
            Ok(vec![vec![1u8; 32]])
        };
        let answers: Vec<Held> = (0u8..=255).map(|b| held.lookup(BABE, &[b; 32], fetch)).collect();
        assert_eq!(fetches.get(), 1, "one list fetch for 256 lookups");
        assert_eq!(answers.iter().filter(|h| **h == Held::Yes).count(), 1);
        assert_eq!(answers[1], Held::Yes);
        assert_eq!(held.lookup(GRAN, &[1; 32], fetch), Held::Yes, "another key type has a list of its own");
        assert_eq!(fetches.get(), 2);
    }

    #[test]
    fn a_failed_fetch_answers_unknown_without_asking_again_until_the_retry() {
        let held = HeldKeys::default();
        let fetches = Cell::new(0);
        let failing = || {
            fetches.set(fetches.get() + 1);
            Err(RemoteError::Unreachable("down".into()))
        };
        for b in 0u8..100 {
            assert_eq!(held.lookup(BABE, &[b; 32], failing), Held::Unknown);
        }
        assert_eq!(fetches.get(), 1, "one failed fetch, then no more until the retry time");
        held.forget(BABE);
        assert_eq!(held.lookup(BABE, &[1; 32], || Ok(vec![vec![1u8; 32]])), Held::Yes, "forgotten: fetched again");
    }
}
