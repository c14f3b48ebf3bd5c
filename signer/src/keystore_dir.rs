//! Keys: the Substrate keystore directory format, held in memory as key pairs.
//!
//! A key file is named `hex(key type) ++ hex(public)` and holds a JSON string: the secret URI,
//! seed or mnemonic phrase (what `LocalKeystore`, `author_insertKey` and `polkadot key insert`
//! write). Exclave reads such a directory as it is, so an operator can move a node's keystore to
//! the signer, and writes new keys the same way, created with mode 0600 and fsync'd. With
//! `[keystore_encryption]` the files are encrypted at rest ([`crate::at_rest`]).

use crate::at_rest::{self, AtRest, IDENTITY_FILE};
use exclave_policies::{Crypto, KeyType};
use sp_core::{ecdsa, ed25519, sr25519, Pair as _};
use std::{
    collections::BTreeMap,
    fs,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
};
use zeroize::Zeroizing;

/// A key pair of one of the supported schemes. Its `Debug` shows only the public key.
// Not boxed: a signer holds a handful of long-lived pairs, and boxing would only spread secret
// material over more heap allocations.
// Not `Clone`: the ring holds each pair once (`Arc`), requests use it by reference, so the
// secret is never copied per request.
#[allow(clippy::large_enum_variant)]
pub enum KeyPair {
    /// sr25519.
    Sr25519(sr25519::Pair),
    /// ed25519.
    Ed25519(ed25519::Pair),
    /// ecdsa.
    Ecdsa(ecdsa::Pair),
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPair").field("crypto", &self.crypto()).field("public", &hex::encode(self.public())).finish_non_exhaustive()
    }
}

impl KeyPair {
    /// The sr25519 pair, for VRF signing.
    pub fn as_sr25519(&self) -> Option<&sr25519::Pair> {
        match self {
            KeyPair::Sr25519(p) => Some(p),
            _ => None,
        }
    }

    /// Derive a pair of `crypto` from a secret URI (seed, phrase or `//Dev` path).
    pub fn from_suri(crypto: Crypto, suri: &str) -> Result<Self, KeyError> {
        Self::from_suri_with(crypto, suri, None)
    }

    /// [`KeyPair::from_suri`] with a keystore password, as Substrate's `LocalKeystore` derives
    /// the keys of a password-protected keystore.
    pub fn from_suri_with(crypto: Crypto, suri: &str, password: Option<&str>) -> Result<Self, KeyError> {
        let err = |e: sp_core::crypto::SecretStringError| KeyError::BadSecret { reason: secret_error_name(&e).into() };
        Ok(match crypto {
            Crypto::Sr25519 => KeyPair::Sr25519(sr25519::Pair::from_string(suri, password).map_err(err)?),
            Crypto::Ed25519 => KeyPair::Ed25519(ed25519::Pair::from_string(suri, password).map_err(err)?),
            Crypto::Ecdsa => KeyPair::Ecdsa(ecdsa::Pair::from_string(suri, password).map_err(err)?),
        })
    }

    /// A fresh random pair and its mnemonic phrase.
    pub fn generate(crypto: Crypto) -> (Self, Zeroizing<String>) {
        Self::generate_with(crypto, None)
    }

    /// [`KeyPair::generate`] with a keystore password.
    pub fn generate_with(crypto: Crypto, password: Option<&str>) -> (Self, Zeroizing<String>) {
        match crypto {
            Crypto::Sr25519 => {
                let (p, phrase, _) = sr25519::Pair::generate_with_phrase(password);
                (KeyPair::Sr25519(p), Zeroizing::new(phrase))
            }
            Crypto::Ed25519 => {
                let (p, phrase, _) = ed25519::Pair::generate_with_phrase(password);
                (KeyPair::Ed25519(p), Zeroizing::new(phrase))
            }
            Crypto::Ecdsa => {
                let (p, phrase, _) = ecdsa::Pair::generate_with_phrase(password);
                (KeyPair::Ecdsa(p), Zeroizing::new(phrase))
            }
        }
    }

    /// The scheme.
    pub fn crypto(&self) -> Crypto {
        match self {
            KeyPair::Sr25519(_) => Crypto::Sr25519,
            KeyPair::Ed25519(_) => Crypto::Ed25519,
            KeyPair::Ecdsa(_) => Crypto::Ecdsa,
        }
    }

    /// The raw public key.
    pub fn public(&self) -> Vec<u8> {
        match self {
            KeyPair::Sr25519(p) => p.public().0.to_vec(),
            KeyPair::Ed25519(p) => p.public().0.to_vec(),
            KeyPair::Ecdsa(p) => p.public().0.to_vec(),
        }
    }

    /// Sign `message` (for ecdsa `prehashed`, a 32-byte hash).
    pub fn sign(&self, message: &[u8], prehashed: bool) -> Result<Vec<u8>, KeyError> {
        Ok(match self {
            KeyPair::Sr25519(p) => p.sign(message).0.to_vec(),
            KeyPair::Ed25519(p) => p.sign(message).0.to_vec(),
            KeyPair::Ecdsa(p) if prehashed => {
                let hash: [u8; 32] = message.try_into().map_err(|_| KeyError::BadPrehash { len: message.len() })?;
                p.sign_prehashed(&hash).0.to_vec()
            }
            KeyPair::Ecdsa(p) => p.sign(message).0.to_vec(),
        })
    }
}

/// The kind of a secret-URI error, without its content: `SecretStringError::InvalidFormat`
/// carries a copy of the input, which must never reach an error message or a log.
fn secret_error_name(e: &sp_core::crypto::SecretStringError) -> &'static str {
    use sp_core::crypto::SecretStringError as E;
    match e {
        E::InvalidFormat(_) => "the secret URI is not well formed",
        E::InvalidPhrase => "the mnemonic phrase is invalid",
        E::InvalidPassword => "the password is invalid",
        E::InvalidSeed => "the seed is invalid",
        E::InvalidSeedLength => "the seed has the wrong length",
        E::InvalidPath => "the derivation path is invalid",
    }
}

/// Why a key operation failed. Never carries secret material.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A secret URI did not parse (its content is not repeated here).
    #[error("the secret does not derive a key: {reason}")]
    BadSecret {
        /// The parser's reason (no secret in it).
        reason: String,
    },
    /// The secret derives another public key than the one given.
    #[error("the secret derives public 0x{derived}, not the 0x{given} given")]
    PublicMismatch {
        /// What the secret derives.
        derived: String,
        /// What the caller claimed.
        given: String,
    },
    /// A prehashed message was not 32 bytes.
    #[error("a prehashed message must be 32 bytes, got {len}")]
    BadPrehash {
        /// The length given.
        len: usize,
    },
    /// The key type has no scheme Exclave supports.
    #[error("key type {0} is not supported")]
    Unsupported(KeyType),
    /// A key file group or others may read: refused unless `insecure_key_file_permissions`.
    #[error("key file {path} has mode {mode:o}: group or others may read the secret; chmod 600 it (or, only where that cannot be done, set insecure_key_file_permissions = true)")]
    Exposed {
        /// Which file.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
    /// The keystore passphrase does not open the keystore's identity.
    #[error("the keystore passphrase does not open {path}: {reason}")]
    Passphrase {
        /// The identity file.
        path: String,
        /// Why (no secret in it).
        reason: String,
    },
    /// A key file encrypted to another keystore's identity.
    #[error("key file {path} is encrypted to another keystore's identity (copied from another signer?)")]
    ForeignIdentity {
        /// Which file.
        path: String,
    },
    /// An encrypted key file, and no passphrase to open it.
    #[error("key file {path} is encrypted at rest: give the keystore passphrase ([keystore_encryption] in the config, --passphrase-file for `exclave keys`)")]
    Sealed {
        /// Which file.
        path: String,
    },
    /// A plaintext key file in a keystore whose files are encrypted.
    #[error("key file {path} is not encrypted, but keystore encryption is on: run `exclave keys encrypt --keystore {dir} --passphrase-file <file>` to encrypt it")]
    Unsealed {
        /// Which file.
        path: String,
        /// Its directory.
        dir: String,
    },
    /// Encryption asked for a keystore that holds plaintext keys and no identity yet.
    #[error("keystore {dir} holds plaintext key files and no {file}: run `exclave keys encrypt --keystore {dir} --passphrase-file <file>` first")]
    NotEncrypted {
        /// The directory.
        dir: String,
        /// The identity file's name.
        file: &'static str,
    },
    /// Filesystem trouble.
    #[error("keystore {path}: {source}")]
    Io {
        /// Which file or directory.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// The keys a signer holds, by key type and public key.
#[derive(Default, Debug)]
pub struct KeyRing {
    keys: BTreeMap<(KeyType, Vec<u8>), std::sync::Arc<KeyPair>>,
}

impl KeyRing {
    /// Look a key up.
    pub fn get(&self, key_type: KeyType, public: &[u8]) -> Option<&std::sync::Arc<KeyPair>> {
        self.keys.get(&(key_type, public.to_vec()))
    }

    /// Public keys of one key type (and scheme, if given), sorted.
    pub fn publics(&self, key_type: KeyType, crypto: Option<Crypto>) -> Vec<Vec<u8>> {
        self.keys
            .iter()
            .filter(|((kt, _), p)| *kt == key_type && crypto.is_none_or(|c| p.crypto() == c))
            .map(|((_, public), _)| public.clone())
            .collect()
    }

    /// Every (key type, public, scheme).
    pub fn list(&self) -> Vec<(KeyType, Vec<u8>, Crypto)> {
        self.keys.iter().map(|((kt, p), pair)| (*kt, p.clone(), pair.crypto())).collect()
    }

    /// How many keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// No keys at all.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Add a key (replacing an identical one).
    pub fn insert(&mut self, key_type: KeyType, pair: KeyPair) {
        self.keys.insert((key_type, pair.public()), std::sync::Arc::new(pair));
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io { path: path.display().to_string(), source }
}

/// A keystore directory on disk.
#[derive(Debug, Clone)]
pub struct KeystoreDir {
    dir: PathBuf,
    allow_exposed: bool,
    password: Option<Password>,
    at_rest: Option<std::sync::Arc<AtRest>>,
}

/// A keystore password (Substrate's `--password`): never printed.
#[derive(Clone)]
pub struct Password(Zeroizing<String>);

impl Password {
    /// Read a password file (mode 0600 unless `allow_exposed`), without its trailing newline.
    pub fn from_file(path: &Path, allow_exposed: bool) -> Result<Self, KeyError> {
        check_mode(path, allow_exposed)?;
        let text = Zeroizing::new(fs::read_to_string(path).map_err(io_err(path))?);
        let password = text.strip_suffix('\n').map(|t| t.strip_suffix('\r').unwrap_or(t)).unwrap_or(&text);
        if password.is_empty() {
            return Err(KeyError::Io {
                path: path.display().to_string(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, "the password file is empty"),
            });
        }
        Ok(Self(Zeroizing::new(password.to_owned())))
    }

    /// A password given directly (tests, tools).
    pub fn new(password: &str) -> Self {
        Self(Zeroizing::new(password.to_owned()))
    }

    /// A systemd credential (`LoadCredential=` / `LoadCredentialEncrypted=`): the file `name`
    /// in `$CREDENTIALS_DIRECTORY`.
    pub fn from_credential(name: &str, allow_exposed: bool) -> Result<Self, KeyError> {
        let dir = std::env::var_os("CREDENTIALS_DIRECTORY").ok_or_else(|| KeyError::Io {
            path: format!("credential {name}"),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "$CREDENTIALS_DIRECTORY is not set: systemd sets it for a unit with LoadCredential=",
            ),
        })?;
        Self::from_file(&Path::new(&dir).join(name), allow_exposed)
    }

    /// The text, for the crates that need it.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// What [`KeystoreDir::import_dir`] copied (key type, public key) and what it skipped.
pub type Imported = (Vec<(KeyType, Vec<u8>)>, Vec<Skipped>);

/// A file in the directory that was not loaded, and why.
#[derive(Debug)]
pub struct Skipped {
    /// The file name.
    pub file: String,
    /// Why it was skipped.
    pub reason: String,
}

impl KeystoreDir {
    /// Open (creating with mode 0700 if missing, durably: a power cut cannot take the
    /// directory, and the keys written into it, away) a keystore directory.
    pub fn open(dir: &Path) -> Result<Self, KeyError> {
        if !dir.exists() {
            exclave_durable::create_dir_all(dir, 0o700).map_err(io_err(dir))?;
        }
        warn_if_exposed(dir);
        Ok(Self { dir: dir.to_path_buf(), allow_exposed: false, password: None, at_rest: None })
    }

    /// Key files encrypted at rest with the identity that `passphrase` opens ([`crate::at_rest`]).
    /// A keystore without an identity gets one if it holds no plaintext key file yet (a new
    /// signer); otherwise it must be converted first (`exclave keys encrypt`).
    pub fn with_encryption(mut self, passphrase: Option<&Password>) -> Result<Self, KeyError> {
        let Some(passphrase) = passphrase else { return Ok(self) };
        let at_rest = match AtRest::open(&self.dir, passphrase)? {
            Some(at_rest) => at_rest,
            None if self.key_files()?.is_empty() => AtRest::create(&self.dir, passphrase)?,
            None => return Err(KeyError::NotEncrypted { dir: self.dir.display().to_string(), file: IDENTITY_FILE }),
        };
        self.at_rest = Some(std::sync::Arc::new(at_rest));
        Ok(self)
    }

    /// Encrypt every plaintext key file in place (each checked first: its secret must derive
    /// its name's public key), creating the identity if there is none. Each file is replaced
    /// atomically, so an interrupted run leaves every file whole and can be run again.
    /// Returns (files encrypted, files that were already).
    pub fn encrypt_all(mut self, passphrase: &Password) -> Result<(usize, usize), KeyError> {
        let at_rest = match AtRest::open(&self.dir, passphrase)? {
            Some(at_rest) => at_rest,
            None => AtRest::create(&self.dir, passphrase)?,
        };
        let plain = KeystoreDir { at_rest: None, ..self.clone() };
        self.at_rest = Some(std::sync::Arc::new(at_rest));
        let (mut done, mut already) = (0, 0);
        for (path, key_type, public) in self.key_files()? {
            if at_rest::is_sealed(&read_bytes(&path)?) {
                self.load_file(&path, key_type, &public)?;
                already += 1;
                continue;
            }
            let pair = plain.load_file(&path, key_type, &public)?;
            self.write(key_type, &pair, &plain.read_suri(&path)?)?;
            done += 1;
        }
        Ok((done, already))
    }

    /// Decrypt every key file in place (to move the keys back to a node); the identity file is
    /// left. Returns how many files were decrypted.
    pub fn decrypt_all(self, passphrase: &Password) -> Result<usize, KeyError> {
        let sealed = self.clone().with_encryption(Some(passphrase))?;
        let plain = KeystoreDir { at_rest: None, ..self };
        let mut done = 0;
        for (path, key_type, public) in sealed.key_files()? {
            if at_rest::is_sealed(&read_bytes(&path)?) {
                let pair = sealed.load_file(&path, key_type, &public)?;
                plain.write(key_type, &pair, &sealed.read_suri(&path)?)?;
                done += 1;
            }
        }
        Ok(done)
    }

    /// The files named like key files of a supported type, in name order.
    fn key_files(&self) -> Result<Vec<(PathBuf, KeyType, Vec<u8>)>, KeyError> {
        let mut entries: Vec<_> =
            fs::read_dir(&self.dir).map_err(io_err(&self.dir))?.collect::<Result<_, _>>().map_err(io_err(&self.dir))?;
        entries.sort_by_key(|e| e.file_name());
        Ok(entries
            .into_iter()
            .filter_map(|e| parse_file_name(&e.file_name().to_string_lossy()).ok().map(|(kt, p)| (e.path(), kt, p)))
            .collect())
    }

    /// Load key files that group or others may read (with a warning) instead of refusing them:
    /// `insecure_key_file_permissions`, for filesystems without Unix modes.
    pub fn allowing_exposed_files(mut self, allow: bool) -> Self {
        self.allow_exposed = allow;
        self
    }

    /// A password-protected Substrate keystore: every key is derived from its secret URI with
    /// this password (as `LocalKeystore` does), new ones too.
    pub fn with_password(mut self, password: Option<Password>) -> Self {
        self.password = password;
        self
    }

    /// Derive the pair of a secret URI as this keystore does (with its password, if any).
    pub fn derive(&self, crypto: Crypto, suri: &str) -> Result<KeyPair, KeyError> {
        KeyPair::from_suri_with(crypto, suri, self.password.as_ref().map(|p| p.0.as_str()))
    }

    /// A fresh pair for this keystore (with its password, if any) and its phrase.
    pub fn generate(&self, crypto: Crypto) -> (KeyPair, Zeroizing<String>) {
        KeyPair::generate_with(crypto, self.password.as_ref().map(|p| p.0.as_str()))
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Load every key file of a supported key type; report files skipped (other key types,
    /// unreadable names) without failing, and fail on a file whose secret is wrong.
    pub fn load(&self) -> Result<(KeyRing, Vec<Skipped>), KeyError> {
        let mut ring = KeyRing::default();
        let mut skipped = Vec::new();
        let mut entries: Vec<_> =
            fs::read_dir(&self.dir).map_err(io_err(&self.dir))?.collect::<Result<_, _>>().map_err(io_err(&self.dir))?;
        entries.sort_by_key(|e| e.file_name());
        let mut files = Vec::new();
        for entry in entries {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == IDENTITY_FILE {
                continue;
            }
            match parse_file_name(&name) {
                Ok((key_type, public)) => {
                    check_mode(&entry.path(), self.allow_exposed)?;
                    files.push((entry.path(), key_type, public));
                }
                Err(reason) => skipped.push(Skipped { file: name, reason }),
            }
        }
        // Deriving is the cost of loading (a mnemonic is stretched with PBKDF2): on every core,
        // the first failing file (in name order) decides the error.
        for (key_type, pair) in self.derive_all(&files)? {
            ring.insert(key_type, pair);
        }
        Ok((ring, skipped))
    }

    /// Load `files` on every available core; the pairs in the order of `files`.
    fn derive_all(&self, files: &[(PathBuf, KeyType, Vec<u8>)]) -> Result<Vec<(KeyType, KeyPair)>, KeyError> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 8);
        let chunk = files.len().div_ceil(threads).max(1);
        let results: Vec<Result<Vec<(KeyType, KeyPair)>, KeyError>> = std::thread::scope(|scope| {
            let workers: Vec<_> = files
                .chunks(chunk)
                .map(|part| {
                    scope.spawn(move || part.iter().map(|(path, kt, public)| Ok((*kt, self.load_file(path, *kt, public)?))).collect())
                })
                .collect();
            // A panic while deriving is a bug: it goes on as the panic it was.
            workers.into_iter().map(|w| w.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))).collect()
        });
        let mut pairs = Vec::with_capacity(files.len());
        for part in results {
            pairs.extend(part?);
        }
        Ok(pairs)
    }

    /// Copy every key of a Substrate keystore directory (a node's `chains/<chain>/keystore`)
    /// that Exclave signs for into this one, each checked first: its secret URI must derive its
    /// public key (with this keystore's password, the source's too). Other key types (`para`,
    /// `asgn`, …) stay where they are and are reported as skipped. The source is not changed.
    pub fn import_dir(&self, from: &Path) -> Result<Imported, KeyError> {
        let source = KeystoreDir { dir: from.to_path_buf(), allow_exposed: true, password: self.password.clone(), at_rest: None };
        let mut entries: Vec<_> = fs::read_dir(from).map_err(io_err(from))?.collect::<Result<_, _>>().map_err(io_err(from))?;
        entries.sort_by_key(|e| e.file_name());
        let (mut imported, mut skipped) = (Vec::new(), Vec::new());
        for entry in entries {
            let name = entry.file_name().to_string_lossy().into_owned();
            let (key_type, public) = match parse_file_name(&name) {
                Ok(parsed) => parsed,
                Err(reason) => {
                    skipped.push(Skipped { file: name, reason });
                    continue;
                }
            };
            let pair = source.load_file(&entry.path(), key_type, &public)?;
            self.write(key_type, &pair, &source.read_suri(&entry.path())?)?;
            imported.push((key_type, public));
        }
        Ok((imported, skipped))
    }

    fn load_file(&self, path: &Path, key_type: KeyType, public: &[u8]) -> Result<KeyPair, KeyError> {
        let crypto = key_type.crypto().ok_or(KeyError::Unsupported(key_type))?;
        let pair = self.derive(crypto, &self.read_suri(path)?)?;
        check_public(&pair, public).map_err(|e| match (e, &self.password) {
            (KeyError::PublicMismatch { derived, given }, None) => {
                KeyError::PublicMismatch { derived, given: format!("{given} (a password-protected keystore? set keystore_password_file)") }
            }
            (e, _) => e,
        })?;
        Ok(pair)
    }

    /// A key file's secret URI (decrypted when the keystore is encrypted at rest).
    fn read_suri(&self, path: &Path) -> Result<Zeroizing<String>, KeyError> {
        let raw = read_bytes(path)?;
        let text = match (&self.at_rest, at_rest::is_sealed(&raw)) {
            (Some(at_rest), true) => at_rest.unseal(&raw, path)?,
            (None, true) => return Err(KeyError::Sealed { path: path.display().to_string() }),
            (Some(_), false) => return Err(KeyError::Unsealed { path: path.display().to_string(), dir: self.dir.display().to_string() }),
            (None, false) => raw,
        };
        let not_json = |detail: String| KeyError::Io {
            path: path.display().to_string(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, detail),
        };
        Ok(Zeroizing::new(serde_json::from_slice(&text).map_err(|e| not_json(format!("not a JSON string: line {}", e.line())))?))
    }

    /// Write a key file for `pair` holding `suri` (encrypted when the keystore is): written to a 0600 temporary file, fsync'd,
    /// renamed over the final name and the directory fsync'd, so a crash never leaves a torn or
    /// empty key file, and an existing file is replaced with a 0600 one.
    pub fn write(&self, key_type: KeyType, pair: &KeyPair, suri: &str) -> Result<PathBuf, KeyError> {
        let name = format!("{}{}", hex::encode(key_type.0), hex::encode(pair.public()));
        let path = self.dir.join(&name);
        let body = Zeroizing::new(
            serde_json::to_string(suri).map_err(|e| KeyError::Io { path: path.display().to_string(), source: std::io::Error::other(e) })?,
        );
        let body = match &self.at_rest {
            Some(at_rest) => Zeroizing::new(at_rest.seal(body.as_bytes(), &path)?),
            None => Zeroizing::new(body.as_bytes().to_vec()),
        };
        exclave_durable::write_file(&path, &body, 0o600).map_err(io_err(&path))?;
        Ok(path)
    }
}

fn read_bytes(path: &Path) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    fs::read(path).map(Zeroizing::new).map_err(io_err(path))
}

/// Refuse a secret file that group or others may read (warn instead when `allow`).
pub fn check_mode(path: &Path, allow: bool) -> Result<(), KeyError> {
    let mode = fs::metadata(path).map_err(io_err(path))?.permissions().mode() & 0o777;
    if mode & 0o077 == 0 {
        return Ok(());
    }
    if allow {
        tracing::warn!(path = %path.display(), mode = format!("{mode:o}"), "key file readable by group or others, loaded because insecure_key_file_permissions is set");
        return Ok(());
    }
    Err(KeyError::Exposed { path: path.display().to_string(), mode })
}

fn warn_if_exposed(path: &Path) {
    if let Ok(meta) = fs::metadata(path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(path = %path.display(), mode = format!("{mode:o}"), "key material is readable by group or others; chmod go-rwx it");
        }
    }
}

/// Require a pair's public key to be `public`.
pub fn check_public(pair: &KeyPair, public: &[u8]) -> Result<(), KeyError> {
    if pair.public() != public {
        return Err(KeyError::PublicMismatch { derived: hex::encode(pair.public()), given: hex::encode(public) });
    }
    Ok(())
}

/// `hex(key type) ++ hex(public)` → (key type, public).
fn parse_file_name(name: &str) -> Result<(KeyType, Vec<u8>), String> {
    if name.starts_with('.') {
        return Err("a temporary or hidden file".into());
    }
    let bytes = hex::decode(name).map_err(|_| "not a hex key-file name".to_string())?;
    if bytes.len() < 5 {
        return Err("too short for a key-file name".into());
    }
    let key_type = KeyType([bytes[0], bytes[1], bytes[2], bytes[3]]);
    if key_type.crypto().is_none() {
        return Err(format!("key type {key_type} is not one Exclave signs for"));
    }
    Ok((key_type, bytes[4..].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_malformed_secret_is_not_repeated_in_the_error() {
        let secret = "bottom drive obey lake curtain smoke basket hold race lonely fit walk,";
        let err = KeyPair::from_suri(Crypto::Sr25519, secret).expect_err("malformed");
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains("bottom") && !shown.contains("lonely"), "secret leaked: {shown}");
    }

    #[test]
    fn a_password_protected_keystore_loads_only_with_its_password() {
        let dir = tempfile::tempdir().expect("tempdir");
        let protected = KeystoreDir::open(dir.path()).expect("open").with_password(Some(Password::new("correct horse")));
        let pair = protected.derive(Crypto::Ed25519, "//Alice").expect("pair");
        protected.write(KeyType::GRANDPA, &pair, "//Alice").expect("write");
        let (generated, phrase) = protected.generate(Crypto::Sr25519);
        protected.write(KeyType::BABE, &generated, &phrase).expect("write");
        let (ring, _) = protected.load().expect("with the password");
        assert_eq!(ring.len(), 2);
        assert!(ring.get(KeyType::GRANDPA, &pair.public()).is_some());
        assert_ne!(pair.public(), KeyPair::from_suri(Crypto::Ed25519, "//Alice").expect("plain").public());
        let err = KeystoreDir::open(dir.path()).expect("open").load().expect_err("without the password");
        assert!(err.to_string().contains("keystore_password_file"), "{err}");
        let wrong = KeystoreDir::open(dir.path()).expect("open").with_password(Some(Password::new("wrong")));
        assert!(matches!(wrong.load(), Err(KeyError::PublicMismatch { .. })));
        assert_eq!(format!("{:?}", Password::new("correct horse")), "Password(<redacted>)");
    }

    #[test]
    fn a_substrate_keystore_directory_is_imported_key_by_key() {
        let (node, signer) = (tempfile::tempdir().expect("node"), tempfile::tempdir().expect("signer"));
        let source = KeystoreDir::open(node.path()).expect("open");
        let gran = KeyPair::from_suri(Crypto::Ed25519, "//Alice").expect("pair");
        source.write(KeyType::GRANDPA, &gran, "//Alice").expect("gran");
        let para = KeyPair::from_suri(Crypto::Sr25519, "//Alice").expect("pair");
        let para_file = node.path().join(format!("{}{}", hex::encode(b"para"), hex::encode(para.public())));
        fs::write(&para_file, "\"//Alice\"").expect("para");
        let target = KeystoreDir::open(signer.path()).expect("open");
        let (imported, skipped) = target.import_dir(node.path()).expect("import");
        assert_eq!(imported, vec![(KeyType::GRANDPA, gran.public())]);
        assert_eq!(skipped.len(), 1, "para stays on the node: {skipped:?}");
        assert!(para_file.exists(), "the source is not changed");
        let (ring, _) = target.load().expect("load");
        assert!(ring.get(KeyType::GRANDPA, &gran.public()).is_some());
        // A file whose secret does not derive its name's public key stops the import.
        let liar = node.path().join(format!("{}{}", hex::encode(b"gran"), hex::encode([9u8; 32])));
        fs::write(&liar, "\"//Bob\"").expect("liar");
        assert!(matches!(target.import_dir(node.path()), Err(KeyError::PublicMismatch { .. })));
    }

    #[test]
    fn an_encrypted_keystore_keeps_no_secret_in_the_clear_and_loads_only_with_its_passphrase() {
        let (node, signer) = (tempfile::tempdir().expect("node"), tempfile::tempdir().expect("signer"));
        let pass = Password::new("a long random passphrase");
        let plain_node = KeystoreDir::open(node.path()).expect("open");
        let gran = KeyPair::from_suri(Crypto::Ed25519, "//Alice").expect("pair");
        plain_node.write(KeyType::GRANDPA, &gran, "//Alice").expect("gran");
        // A new (empty) keystore gets an identity; import-dir writes the keys encrypted.
        let sealed = KeystoreDir::open(signer.path()).expect("open").with_encryption(Some(&pass)).expect("encrypt");
        let (imported, _) = sealed.import_dir(node.path()).expect("import");
        let (babe, phrase) = sealed.generate(Crypto::Sr25519);
        let babe_file = sealed.write(KeyType::BABE, &babe, &phrase).expect("babe");
        for entry in fs::read_dir(signer.path()).expect("ls") {
            let text = fs::read_to_string(entry.expect("entry").path()).expect("read");
            assert!(at_rest::is_sealed(text.as_bytes()), "every file is sealed: {text}");
            assert!(!text.contains("Alice") && !text.contains(phrase.split(' ').next().expect("word")), "{text}");
        }
        let (ring, skipped) = sealed.load().expect("load");
        assert_eq!((ring.len(), imported.len()), (2, 1));
        assert!(skipped.is_empty(), "the identity file is not reported as a skipped key: {skipped:?}");
        assert!(ring.get(KeyType::BABE, &babe.public()).is_some() && ring.get(KeyType::GRANDPA, &gran.public()).is_some());
        // Without the passphrase, or with another, nothing loads, and the error names the file.
        let err = KeystoreDir::open(signer.path()).expect("open").load().expect_err("no passphrase");
        assert!(matches!(&err, KeyError::Sealed { .. }) && err.to_string().contains("[keystore_encryption]"), "{err}");
        let err = KeystoreDir::open(signer.path()).expect("open").with_encryption(Some(&Password::new("guess"))).expect_err("wrong");
        assert!(matches!(err, KeyError::Passphrase { .. }), "{err}");
        // A plaintext key file dropped into an encrypted keystore is refused, naming the fix.
        let stray = plain_node.path().join(fs::read_dir(node.path()).expect("ls").next().expect("one").expect("e").file_name());
        fs::copy(&stray, signer.path().join(stray.file_name().expect("name"))).expect("copy");
        let err = sealed.load().expect_err("plaintext in an encrypted keystore");
        assert!(matches!(&err, KeyError::Unsealed { .. }) && err.to_string().contains("exclave keys encrypt"), "{err}");
        // Converting: the stray file is encrypted, the others left; running again changes nothing.
        let dir = KeystoreDir::open(signer.path()).expect("open");
        assert_eq!(dir.clone().encrypt_all(&pass).expect("encrypt"), (1, 1));
        assert_eq!(dir.clone().encrypt_all(&pass).expect("again"), (0, 2));
        assert_eq!(sealed.load().expect("load").0.len(), 2);
        // And back, for a move to a node's plain keystore.
        assert_eq!(dir.clone().decrypt_all(&pass).expect("decrypt"), 2);
        assert_eq!(fs::read_to_string(&babe_file).expect("read"), serde_json::to_string(phrase.as_str()).expect("json"));
        assert_eq!(KeystoreDir::open(signer.path()).expect("open").load().expect("plain").0.len(), 2);
    }

    #[test]
    fn encryption_is_refused_for_a_plaintext_keystore_until_it_is_converted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let plain = KeystoreDir::open(dir.path()).expect("open");
        let pair = KeyPair::from_suri(Crypto::Ed25519, "//Alice").expect("pair");
        plain.write(KeyType::GRANDPA, &pair, "//Alice").expect("write");
        let pass = Password::new("passphrase");
        let err = plain.clone().with_encryption(Some(&pass)).expect_err("plaintext keys, no identity");
        assert!(matches!(err, KeyError::NotEncrypted { .. }) && err.to_string().contains("exclave keys encrypt"), "{err}");
        assert!(!dir.path().join(IDENTITY_FILE).exists(), "no identity made behind the operator's back");
        assert_eq!(plain.clone().encrypt_all(&pass).expect("convert"), (1, 0));
        let (ring, _) = plain.with_encryption(Some(&pass)).expect("encrypted").load().expect("load");
        assert_eq!(ring.len(), 1);
    }

    #[test]
    fn an_exposed_key_file_is_refused_unless_allowed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ks = KeystoreDir::open(dir.path()).expect("open");
        let pair = KeyPair::from_suri(Crypto::Ed25519, "//Alice").expect("pair");
        let path = ks.write(KeyType::GRANDPA, &pair, "//Alice").expect("write");
        for mode in [0o640, 0o604, 0o644] {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).expect("chmod");
            let err = ks.load().expect_err("exposed");
            assert!(matches!(&err, KeyError::Exposed { mode: m, .. } if *m == mode), "{err}");
            assert!(err.to_string().contains(&path.display().to_string()) && err.to_string().contains("chmod 600"), "{err}");
            let (ring, _) = ks.clone().allowing_exposed_files(true).load().expect("allowed");
            assert_eq!(ring.len(), 1);
        }
    }

    #[test]
    fn rewriting_a_key_replaces_an_exposed_file_with_a_0600_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ks = KeystoreDir::open(dir.path()).expect("open");
        let pair = KeyPair::from_suri(Crypto::Ed25519, "//Alice").expect("pair");
        let path = ks.write(KeyType::GRANDPA, &pair, "//Alice").expect("write");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
        let again = ks.write(KeyType::GRANDPA, &pair, "//Alice").expect("rewrite");
        assert_eq!(again, path);
        assert_eq!(fs::metadata(&path).expect("meta").permissions().mode() & 0o777, 0o600);
        let (ring, skipped) = ks.load().expect("load");
        assert_eq!((ring.len(), skipped.len()), (1, 0), "no temporary file left behind");
    }
}
