//! The chain a signer serves: pinned in config, or (dev only) on first use.

use exclave_policies::ChainId;
use parking_lot::Mutex;
use std::path::PathBuf;

/// Why the dev chain pin could not be loaded: either stops the signer, since forgetting the
/// chain would let claims restart under another chain id.
#[derive(Debug, thiserror::Error)]
pub enum ChainPinError {
    /// The pin file holds no genesis hash.
    #[error("the dev chain pin {path} is corrupt; restore it or pass --chain")]
    Corrupt {
        /// The pin file.
        path: String,
    },
    /// The pin file exists but cannot be read.
    #[error("cannot read the dev chain pin {path}: {source}")]
    Read {
        /// The pin file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// Why a request's chain is refused.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// Not a 32-byte genesis hash.
    #[error("chain must be a 32-byte genesis hash, got {len} bytes")]
    BadLength {
        /// The length given.
        len: usize,
    },
    /// Another chain than the one this signer serves.
    #[error("chain {given} is not the chain this signer serves ({pinned})")]
    Mismatch {
        /// The request's chain.
        given: ChainId,
        /// The signer's.
        pinned: ChainId,
    },
    /// The dev pin could not be recorded: the request is refused.
    #[error("cannot record the dev chain pin {path}: {source}; nothing was signed")]
    PinWrite {
        /// The pin file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

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
    /// Dev pin, reading an earlier pin from `file` if present. A pin file that exists but does
    /// not hold a genesis hash stops the signer: forgetting the chain would let claims restart
    /// under another chain id.
    pub fn first_use(file: PathBuf) -> Result<Self, ChainPinError> {
        let pinned = match std::fs::read_to_string(&file) {
            Ok(s) => Some(s.trim().parse::<ChainId>().map_err(|_| ChainPinError::Corrupt { path: file.display().to_string() })?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => return Err(ChainPinError::Read { path: file.display().to_string(), source }),
        };
        Ok(ChainPin::FirstUse { file, pinned: Mutex::new(pinned) })
    }

    /// The pinned chain, if any.
    pub fn current(&self) -> Option<ChainId> {
        match self {
            ChainPin::Fixed(c) => Some(*c),
            ChainPin::FirstUse { pinned, .. } => *pinned.lock(),
        }
    }

    /// Check a request's chain against the pin. An unpinned dev signer accepts any chain here;
    /// [`ChainPin::pin`] fixes it once the request has passed every other check.
    pub fn check(&self, chain: &[u8]) -> Result<ChainId, ChainError> {
        let given: [u8; 32] = chain.try_into().map_err(|_| ChainError::BadLength { len: chain.len() })?;
        let given = ChainId(given);
        match self.current() {
            Some(pinned) if pinned != given => Err(ChainError::Mismatch { given, pinned }),
            _ => Ok(given),
        }
    }

    /// Pin a validated request's chain (dev first use): written durably (temporary file, fsync,
    /// rename) before anything is signed for it; a failure refuses the request.
    pub fn pin(&self, given: ChainId) -> Result<(), ChainError> {
        let ChainPin::FirstUse { file, pinned } = self else { return Ok(()) };
        let mut guard = pinned.lock();
        match *guard {
            Some(p) if p == given => Ok(()),
            Some(pinned) => Err(ChainError::Mismatch { given, pinned }),
            None => {
                exclave_durable::write_file(file, format!("{given}\n").as_bytes(), 0o644)
                    .map_err(|source| ChainError::PinWrite { path: file.display().to_string(), source })?;
                tracing::info!(chain = %given, "dev mode: chain pinned on first use");
                *guard = Some(given);
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_pin_is_set_only_by_pin_kept_across_restart_and_corruption_stops_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("chain");
        let pin = ChainPin::first_use(file.clone()).expect("no pin yet");
        assert_eq!(pin.check(&[1; 32]).expect("unpinned accepts"), ChainId([1; 32]));
        assert_eq!(pin.current(), None, "check alone does not pin");
        pin.pin(ChainId([2; 32])).expect("pin");
        assert!(matches!(pin.check(&[1; 32]).expect_err("pinned"), ChainError::Mismatch { .. }));
        let again = ChainPin::first_use(file.clone()).expect("reload");
        assert_eq!(again.current(), Some(ChainId([2; 32])));
        std::fs::write(&file, "garbage").expect("corrupt");
        assert!(ChainPin::first_use(file).is_err(), "a corrupt pin must stop the signer");
    }
}
