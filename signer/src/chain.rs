//! The chain a signer serves: pinned in config, or (dev only) on first use.

use exclave_policies::ChainId;
use exclave_protocol::{ErrorKind, ExclaveError};
use parking_lot::Mutex;
use std::path::PathBuf;

/// How the signer knows its chain.
pub enum ChainPin {
    /// Configured genesis hash.
    Fixed(ChainId),
    /// Dev mode without `--chain`: the first genesis hash a client sends is pinned, and written
    /// to `file` so a restart keeps it.
    FirstUse {
        /// Where the pin is kept.
        file: PathBuf,
        /// The pin, once set.
        pinned: Mutex<Option<ChainId>>,
    },
}

impl ChainPin {
    /// Dev pin, reading an earlier pin from `file` if present.
    pub fn first_use(file: PathBuf) -> Self {
        let pinned = std::fs::read_to_string(&file)
            .ok()
            .and_then(|s| crate::config::parse_chain(s.trim()).ok())
            .map(ChainId);
        ChainPin::FirstUse { file, pinned: Mutex::new(pinned) }
    }

    /// The pinned chain, if any.
    pub fn current(&self) -> Option<ChainId> {
        match self {
            ChainPin::Fixed(c) => Some(*c),
            ChainPin::FirstUse { pinned, .. } => *pinned.lock(),
        }
    }

    /// Check a request's chain against the pin.
    pub fn check(&self, chain: &[u8]) -> Result<ChainId, ExclaveError> {
        let given: [u8; 32] = chain.try_into().map_err(|_| {
            ExclaveError::new(ErrorKind::BadRequest, format!("chain must be a 32-byte genesis hash, got {} bytes", chain.len()))
        })?;
        let given = ChainId(given);
        let pinned = match self {
            ChainPin::Fixed(c) => *c,
            ChainPin::FirstUse { file, pinned } => {
                let mut guard = pinned.lock();
                *guard.get_or_insert_with(|| {
                    if let Err(e) = std::fs::write(file, format!("{given}\n")) {
                        tracing::warn!(error = %e, "could not record the dev chain pin");
                    }
                    tracing::info!(chain = %given, "dev mode: chain pinned on first use");
                    given
                })
            }
        };
        if pinned != given {
            return Err(ExclaveError::new(
                ErrorKind::RefusedPolicy,
                format!("chain {given} is not the chain this signer serves ({pinned})"),
            ));
        }
        Ok(pinned)
    }
}
