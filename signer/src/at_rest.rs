//! Key files encrypted at rest, with [age](https://age-encryption.org) (the `age` crate): no
//! cryptography of our own.
//!
//! The keystore directory holds one age identity (an X25519 key), itself encrypted with the
//! operator's passphrase (age's scrypt recipient) in [`IDENTITY_FILE`]. Each key file holds its
//! JSON secret URI encrypted to that identity, ASCII-armored; its name stays
//! `hex(key type) ++ hex(public)`: which keys a signer holds is not secret. Start-up pays one scrypt
//! (for the identity), then one X25519 agreement per key file: 10,000 keys stay fast.
//!
//! What this protects: key files copied off the host, backups, a disk that leaves the data
//! centre. What it does not: root on a running host (who can read the passphrase file or the
//! signer's memory).

use crate::keystore_dir::{KeyError, Password};
use age::secrecy::{ExposeSecret, SecretString};
use std::{path::Path, str::FromStr};
use zeroize::Zeroizing;

/// The passphrase-protected identity in a keystore directory (hidden: never taken for a key).
pub const IDENTITY_FILE: &str = ".exclave-identity.age";

/// scrypt work factor (log2 N) for the identity: 128 MiB and a few tenths of a second here, paid
/// once per start. A random passphrase (a systemd credential) matters more than the factor.
const WORK_FACTOR: u8 = 17;
/// The largest factor accepted when opening an identity (age's own tools may write stronger).
const MAX_WORK_FACTOR: u8 = 20;

/// The start of an armored age file.
const ARMOR_BEGIN: &[u8] = b"-----BEGIN AGE ENCRYPTED FILE-----";
/// The start of a binary age file.
const BINARY_BEGIN: &[u8] = b"age-encryption.org/";

/// The keystore's identity, opened with its passphrase.
pub struct AtRest {
    identity: age::x25519::Identity,
}

impl std::fmt::Debug for AtRest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AtRest").field("recipient", &self.identity.to_public().to_string()).finish()
    }
}

/// Whether a key file's content is age-encrypted (armored or binary).
pub fn is_sealed(content: &[u8]) -> bool {
    let trimmed = content.trim_ascii_start();
    trimmed.starts_with(ARMOR_BEGIN) || trimmed.starts_with(BINARY_BEGIN)
}

fn passphrase_error(path: &Path, reason: impl Into<String>) -> KeyError {
    KeyError::Passphrase { path: path.display().to_string(), reason: reason.into() }
}

impl AtRest {
    /// Open the identity of keystore `dir` with `passphrase`; `None` when the directory has none.
    pub fn open(dir: &Path, passphrase: &Password) -> Result<Option<Self>, KeyError> {
        let path = dir.join(IDENTITY_FILE);
        let sealed = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(KeyError::Io { path: path.display().to_string(), source }),
        };
        let mut unlock = age::scrypt::Identity::new(SecretString::from(passphrase.expose().to_owned()));
        unlock.set_max_work_factor(MAX_WORK_FACTOR);
        let plain = Zeroizing::new(age::decrypt(&unlock, &sealed).map_err(|e| match e {
            age::DecryptError::NoMatchingKeys | age::DecryptError::DecryptionFailed | age::DecryptError::KeyDecryptionFailed => {
                passphrase_error(&path, "the passphrase is wrong")
            }
            age::DecryptError::ExcessiveWork { required, .. } => {
                passphrase_error(&path, format!("its scrypt work factor {required} exceeds the {MAX_WORK_FACTOR} accepted"))
            }
            other => passphrase_error(&path, format!("not an age file sealed with a passphrase ({other})")),
        })?);
        let text = std::str::from_utf8(&plain).map_err(|_| passphrase_error(&path, "it does not hold an age identity"))?;
        let identity =
            age::x25519::Identity::from_str(text.trim()).map_err(|_| passphrase_error(&path, "it does not hold an age identity"))?;
        Ok(Some(Self { identity }))
    }

    /// A new identity for keystore `dir`, written to [`IDENTITY_FILE`] (0600, fsync'd) sealed
    /// with `passphrase`. Refuses to replace an existing one.
    pub fn create(dir: &Path, passphrase: &Password) -> Result<Self, KeyError> {
        let path = dir.join(IDENTITY_FILE);
        if path.exists() {
            return Err(KeyError::Io {
                path: path.display().to_string(),
                source: std::io::Error::new(std::io::ErrorKind::AlreadyExists, "a keystore identity exists already"),
            });
        }
        let identity = age::x25519::Identity::generate();
        let mut lock = age::scrypt::Recipient::new(SecretString::from(passphrase.expose().to_owned()));
        lock.set_work_factor(WORK_FACTOR);
        let secret = identity.to_string();
        let sealed = age::encrypt_and_armor(&lock, secret.expose_secret().as_bytes())
            .map_err(|e| KeyError::Io { path: path.display().to_string(), source: std::io::Error::other(e.to_string()) })?;
        exclave_durable::write_file(&path, sealed.as_bytes(), 0o600)
            .map_err(|source| KeyError::Io { path: path.display().to_string(), source })?;
        Ok(Self { identity })
    }

    /// Encrypt a key file's content (armored).
    pub fn seal(&self, plain: &[u8], path: &Path) -> Result<Vec<u8>, KeyError> {
        age::encrypt_and_armor(&self.identity.to_public(), plain)
            .map(String::into_bytes)
            .map_err(|e| KeyError::Io { path: path.display().to_string(), source: std::io::Error::other(e.to_string()) })
    }

    /// Decrypt a key file's content.
    pub fn unseal(&self, sealed: &[u8], path: &Path) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        age::decrypt(&self.identity, sealed).map(Zeroizing::new).map_err(|e| match e {
            age::DecryptError::NoMatchingKeys => KeyError::ForeignIdentity { path: path.display().to_string() },
            other => KeyError::Io {
                path: path.display().to_string(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, format!("cannot decrypt: {other}")),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_identity_opens_only_with_its_passphrase() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pass = Password::new("correct horse battery staple");
        assert!(AtRest::open(dir.path(), &pass).expect("none yet").is_none());
        let made = AtRest::create(dir.path(), &pass).expect("create");
        assert!(AtRest::create(dir.path(), &pass).is_err(), "an identity is never replaced");
        let sealed = made.seal(b"\"//Alice\"", dir.path()).expect("seal");
        assert!(is_sealed(&sealed) && !String::from_utf8_lossy(&sealed).contains("Alice"));
        let opened = AtRest::open(dir.path(), &pass).expect("open").expect("some");
        assert_eq!(&opened.unseal(&sealed, dir.path()).expect("unseal")[..], b"\"//Alice\"");
        let err = AtRest::open(dir.path(), &Password::new("wrong")).expect_err("wrong passphrase");
        assert!(err.to_string().contains("passphrase is wrong") && err.to_string().contains(IDENTITY_FILE), "{err}");
        let other = AtRest::create(tempfile::tempdir().expect("other").path(), &pass).expect("other");
        assert!(matches!(other.unseal(&sealed, dir.path()), Err(KeyError::ForeignIdentity { .. })));
        let identity = std::fs::read_to_string(dir.path().join(IDENTITY_FILE)).expect("read");
        assert!(!identity.contains("AGE-SECRET-KEY"), "the identity is sealed on disk");
        assert!(!format!("{opened:?}").contains("AGE-SECRET-KEY"), "Debug shows only the recipient");
    }

    #[test]
    fn sealed_content_is_recognised() {
        for (content, sealed) in [
            (&b"\"//Alice\""[..], false),
            (b"-----BEGIN AGE ENCRYPTED FILE-----\nYWdl\n", true),
            (b"\n-----BEGIN AGE ENCRYPTED FILE-----\n", true),
            (b"age-encryption.org/v1\n-> X25519", true),
            (b"", false),
        ] {
            assert_eq!(is_sealed(content), sealed, "{}", String::from_utf8_lossy(content));
        }
    }
}
