//! Checkpoints: lines in the signing log signed with the signer's own audit key (ed25519).
//!
//! A checkpoint attests the whole chain up to it: it signs the signer id, its own sequence
//! number and `prev` (the hash of the line before it), and it is itself chained (the next line's
//! `prev` is its hash). Rewriting, deleting or reordering anything before a checkpoint therefore
//! breaks either a link or a checkpoint signature. The audit key is generated at first start
//! and kept beside the log: `<log>.audit-key` (the secret seed, mode 0600) and `<log>.audit-pub`
//! (the public key, hex). It signs checkpoints and nothing else.

use serde::{Deserialize, Serialize};
use sp_core::{ed25519, Pair as _};
use std::{
    fs,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
};
use zeroize::Zeroizing;

/// Why a checkpoint was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckpointReason {
    /// The log was opened (attests everything written before, including by a crashed run).
    Start,
    /// Enough records or time since the last checkpoint.
    Periodic,
    /// The last line of a file before rotation.
    Rotate,
    /// A clean shutdown.
    Stop,
}

impl CheckpointReason {
    /// The name in the log and in the signed checkpoint message.
    pub fn name(self) -> &'static str {
        match self {
            CheckpointReason::Start => "start",
            CheckpointReason::Periodic => "periodic",
            CheckpointReason::Rotate => "rotate",
            CheckpointReason::Stop => "stop",
        }
    }
}

/// The `checkpoint` object of a checkpoint line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Checkpoint {
    /// The signer id.
    pub signer: String,
    /// Unix milliseconds.
    pub time_ms: u64,
    /// Why it was written.
    pub reason: CheckpointReason,
    /// How many records (not checkpoints) the chain holds up to here, across files.
    pub records: u64,
    /// The audit public key (ed25519, hex).
    pub audit_key: String,
    /// The ed25519 signature of [`checkpoint_message`], hex.
    pub signature: String,
}

/// The exact bytes a checkpoint signs.
pub fn checkpoint_message(signer: &str, seq: u64, prev: &[u8; 32], time_ms: u64, reason: CheckpointReason, records: u64) -> Vec<u8> {
    let reason = reason.name();
    format!("exclave-audit-checkpoint/v1\n{signer}\n{seq}\n{}\n{time_ms}\n{reason}\n{records}", hex::encode(prev)).into_bytes()
}

/// Check a checkpoint's signature with the public key it names.
pub fn verify_checkpoint(cp: &Checkpoint, seq: u64, prev: &[u8; 32]) -> bool {
    let (Ok(public), Ok(sig)) = (hex::decode(&cp.audit_key), hex::decode(&cp.signature)) else { return false };
    let (Ok(public), Ok(sig)) = (ed25519::Public::try_from(public.as_slice()), ed25519::Signature::try_from(sig.as_slice())) else {
        return false;
    };
    let msg = checkpoint_message(&cp.signer, seq, prev, cp.time_ms, cp.reason, cp.records);
    ed25519::Pair::verify(&sig, msg, &public)
}

/// The audit key. Its `Debug` shows the public key only.
pub struct AuditKey {
    pair: ed25519::Pair,
}

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditKey").field("public", &self.public_hex()).finish_non_exhaustive()
    }
}

/// `<log>.audit-key`.
pub fn secret_path(log: &Path) -> PathBuf {
    sibling(log, "audit-key")
}

/// `<log>.audit-pub`.
pub fn public_path(log: &Path) -> PathBuf {
    sibling(log, "audit-pub")
}

fn sibling(log: &Path, ext: &str) -> PathBuf {
    let mut name = log.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{ext}"));
    log.with_file_name(name)
}

impl AuditKey {
    /// Load the audit key beside `log`, or generate it (0600) and write its public key.
    /// Returns the key and whether it was created now. A key file group or others may read is
    /// refused (`PermissionDenied`).
    pub fn load_or_create(log: &Path) -> std::io::Result<(Self, bool)> {
        Self::load_or_create_allowing(log, false)
    }

    /// [`AuditKey::load_or_create`]; with `allow_exposed` a key file group or others may read is
    /// loaded with a warning (`insecure_key_file_permissions`).
    pub fn load_or_create_allowing(log: &Path, allow_exposed: bool) -> std::io::Result<(Self, bool)> {
        let path = secret_path(log);
        match fs::read_to_string(&path) {
            Ok(text) => {
                let mode = fs::metadata(&path)?.permissions().mode() & 0o777;
                if mode & 0o077 != 0 && !allow_exposed {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::PermissionDenied,
                        format!("audit key {} has mode {mode:o}: group or others may read it; chmod 600 it (or, only where that cannot be done, set insecure_key_file_permissions = true)", path.display()),
                    ));
                }
                let text = Zeroizing::new(text);
                let seed = Zeroizing::new(hex::decode(text.trim()).map_err(|_| bad_key(&path))?);
                let pair = ed25519::Pair::from_seed_slice(&seed).map_err(|_| bad_key(&path))?;
                if mode & 0o077 != 0 {
                    tracing::warn!(path = %path.display(), "audit key readable by group or others, loaded because insecure_key_file_permissions is set");
                }
                Ok((Self { pair }, false))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let (pair, seed) = ed25519::Pair::generate();
                let seed = Zeroizing::new(hex::encode(seed));
                exclave_durable::write_file(&path, seed.as_bytes(), 0o600)?;
                let key = Self { pair };
                exclave_durable::write_file(&public_path(log), format!("{}\n", key.public_hex()).as_bytes(), 0o644)?;
                Ok((key, true))
            }
            Err(e) => Err(e),
        }
    }

    /// The public key, hex.
    pub fn public_hex(&self) -> String {
        hex::encode(self.pair.public().0)
    }

    /// Sign a checkpoint for the line numbered `seq` whose `prev` is `prev`.
    pub fn checkpoint(&self, signer: &str, seq: u64, prev: &[u8; 32], time_ms: u64, reason: CheckpointReason, records: u64) -> Checkpoint {
        let msg = checkpoint_message(signer, seq, prev, time_ms, reason, records);
        Checkpoint {
            signer: signer.into(),
            time_ms,
            reason,
            records,
            audit_key: self.public_hex(),
            signature: hex::encode(self.pair.sign(&msg).0),
        }
    }
}

fn bad_key(path: &Path) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{} does not hold a 32-byte hex ed25519 seed", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_created_0600_reloaded_and_checkpoints_verify() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("signing.log");
        let (key, created) = AuditKey::load_or_create(&log).expect("create");
        assert!(created);
        assert_eq!(fs::metadata(secret_path(&log)).expect("meta").permissions().mode() & 0o777, 0o600);
        assert_eq!(fs::read_to_string(public_path(&log)).expect("pub").trim(), key.public_hex());
        let (again, created) = AuditKey::load_or_create(&log).expect("reload");
        assert!(!created);
        assert_eq!(again.public_hex(), key.public_hex());
        assert!(!format!("{key:?}").contains(&fs::read_to_string(secret_path(&log)).expect("secret").trim().to_string()));

        let cp = key.checkpoint("signer-a", 7, &[1; 32], 5, CheckpointReason::Periodic, 6);
        assert!(verify_checkpoint(&cp, 7, &[1; 32]));
        assert!(!verify_checkpoint(&cp, 8, &[1; 32]), "another position");
        assert!(!verify_checkpoint(&cp, 7, &[2; 32]), "another chain head");
        assert!(!verify_checkpoint(&Checkpoint { signer: "signer-b".into(), ..cp.clone() }, 7, &[1; 32]));
        assert!(!verify_checkpoint(&Checkpoint { records: 5, ..cp }, 7, &[1; 32]));
    }

    #[test]
    fn an_exposed_audit_key_is_refused_unless_allowed() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("signing.log");
        let (key, _) = AuditKey::load_or_create(&log).expect("create");
        fs::set_permissions(secret_path(&log), fs::Permissions::from_mode(0o640)).expect("chmod");
        let err = AuditKey::load_or_create(&log).expect_err("exposed");
        assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied);
        assert!(err.to_string().contains("mode 640") && err.to_string().contains("chmod 600"), "{err}");
        let (again, _) = AuditKey::load_or_create_allowing(&log, true).expect("allowed");
        assert_eq!(again.public_hex(), key.public_hex());
    }

    #[test]
    fn reason_names_are_the_logged_names() {
        for r in [CheckpointReason::Start, CheckpointReason::Periodic, CheckpointReason::Rotate, CheckpointReason::Stop] {
            assert_eq!(serde_json::to_value(r).expect("json"), serde_json::Value::from(r.name()));
        }
    }
}
