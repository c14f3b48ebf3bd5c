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
    /// Dev pin, reading an earlier pin from `file` if present. A pin file that exists but does
    /// not hold a genesis hash stops the signer: forgetting the chain would let claims restart
    /// under another chain id.
    pub fn first_use(file: PathBuf) -> Result<Self, crate::config::ConfigError> {
        let pinned = match std::fs::read_to_string(&file) {
            Ok(s) => Some(ChainId(crate::config::parse_chain(s.trim()).map_err(|_| {
                crate::config::ConfigError::Invalid(format!("the dev chain pin {} is corrupt; restore it or pass --chain", file.display()))
            })?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(crate::config::ConfigError::Invalid(format!("cannot read the dev chain pin {}: {e}", file.display()))),
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
    pub fn check(&self, chain: &[u8]) -> Result<ChainId, ExclaveError> {
        let given: [u8; 32] = chain.try_into().map_err(|_| {
            ExclaveError::new(ErrorKind::BadRequest, format!("chain must be a 32-byte genesis hash, got {} bytes", chain.len()))
        })?;
        let given = ChainId(given);
        match self.current() {
            Some(pinned) if pinned != given => Err(mismatch(given, pinned)),
            _ => Ok(given),
        }
    }

    /// Pin a validated request's chain (dev first use): written durably (temporary file, fsync,
    /// rename) before anything is signed for it; a failure refuses the request.
    pub fn pin(&self, given: ChainId) -> Result<(), ExclaveError> {
        let ChainPin::FirstUse { file, pinned } = self else { return Ok(()) };
        let mut guard = pinned.lock();
        match *guard {
            Some(p) if p == given => Ok(()),
            Some(p) => Err(mismatch(given, p)),
            None => {
                write_durably(file, format!("{given}\n").as_bytes()).map_err(|e| {
                    ExclaveError::new(ErrorKind::Internal, format!("cannot record the dev chain pin {}: {e}; nothing was signed", file.display()))
                })?;
                tracing::info!(chain = %given, "dev mode: chain pinned on first use");
                *guard = Some(given);
                Ok(())
            }
        }
    }
}

fn mismatch(given: ChainId, pinned: ChainId) -> ExclaveError {
    ExclaveError::new(ErrorKind::RefusedPolicy, format!("chain {given} is not the chain this signer serves ({pinned})"))
}

fn write_durably(path: &std::path::Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(data)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
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
        assert_eq!(pin.check(&[1; 32]).expect_err("pinned").kind, ErrorKind::RefusedPolicy);
        let again = ChainPin::first_use(file.clone()).expect("reload");
        assert_eq!(again.current(), Some(ChainId([2; 32])));
        std::fs::write(&file, "garbage").expect("corrupt");
        assert!(ChainPin::first_use(file).is_err(), "a corrupt pin must stop the signer");
    }
}
