//! TLS: the server's mutual-TLS configuration, client identities from certificates, and the
//! self-signed dev PKI that `exclave serve --dev` creates.

use rustls::{server::WebPkiClientVerifier, RootCertStore, ServerConfig};
use rustls_pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
use std::{
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    sync::Arc,
};

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or written.
    #[error("TLS file {path}: {source}")]
    Io {
        /// Which file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A PEM file held nothing usable.
    #[error("TLS file {path}: {what}")]
    Pem {
        /// Which file.
        path: String,
        /// What was missing.
        what: String,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Config(String),
    /// A private key group or others may read.
    #[error("TLS key {path} has mode {mode:o}: group or others may read it; chmod 600 it (or, only where that cannot be done, set insecure_key_file_permissions = true)")]
    Exposed {
        /// Which file.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TlsError + '_ {
    move |source| TlsError::Io { path: path.display().to_string(), source }
}

/// The ring crypto provider, used everywhere (no aws-lc build needed).
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Read every certificate in a PEM file.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let data = std::fs::read(path).map_err(io(path))?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&data)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Pem { path: path.display().to_string(), what: e.to_string() })?;
    if certs.is_empty() {
        return Err(TlsError::Pem { path: path.display().to_string(), what: "no CERTIFICATE block".into() });
    }
    Ok(certs)
}

/// Read the private key in a PEM file; refuse it when group or others may read it, unless
/// `allow_exposed` (`insecure_key_file_permissions`).
pub fn load_key(path: &Path, allow_exposed: bool) -> Result<PrivateKeyDer<'static>, TlsError> {
    let mode = std::fs::metadata(path).map_err(io(path))?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        if !allow_exposed {
            return Err(TlsError::Exposed { path: path.display().to_string(), mode });
        }
        tracing::warn!(path = %path.display(), mode = format!("{mode:o}"), "TLS key readable by group or others, loaded because insecure_key_file_permissions is set");
    }
    let data = zeroize::Zeroizing::new(std::fs::read(path).map_err(io(path))?);
    PrivateKeyDer::from_pem_slice(&data).map_err(|e| TlsError::Pem {
        path: path.display().to_string(),
        what: match e {
            rustls_pki_types::pem::Error::NoItemsFound => "no PRIVATE KEY block".into(),
            other => other.to_string(),
        },
    })
}

/// The mutual-TLS files of the RPC listener.
#[derive(Debug, Clone, Copy)]
pub struct ServerFiles<'a> {
    /// The server's certificate chain (PEM).
    pub cert: &'a Path,
    /// The server's key (PEM, mode 0600).
    pub key: &'a Path,
    /// The CA client certificates must chain to.
    pub client_ca: &'a Path,
    /// Revoked client certificates (PEM `X509 CRL`s of that CA), if any.
    pub crl: Option<&'a Path>,
}

/// Read every certificate revocation list in a PEM file.
pub fn load_crls(path: &Path) -> Result<Vec<rustls_pki_types::CertificateRevocationListDer<'static>>, TlsError> {
    let data = std::fs::read(path).map_err(io(path))?;
    let crls: Vec<_> = rustls_pki_types::CertificateRevocationListDer::pem_slice_iter(&data)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Pem { path: path.display().to_string(), what: e.to_string() })?;
    if crls.is_empty() {
        return Err(TlsError::Pem { path: path.display().to_string(), what: "no X509 CRL block".into() });
    }
    Ok(crls)
}

/// A server configuration that requires a client certificate chaining to `client_ca` and not
/// revoked by `crl`; the key file is refused when group or others may read it, unless
/// `allow_exposed_key`.
pub fn server_config(files: ServerFiles<'_>, allow_exposed_key: bool) -> Result<Arc<ServerConfig>, TlsError> {
    let ServerFiles { cert, key, client_ca, crl } = files;
    let mut roots = RootCertStore::empty();
    for ca in load_certs(client_ca)? {
        roots.add(ca).map_err(|e| TlsError::Config(format!("client CA {}: {e}", client_ca.display())))?;
    }
    let mut builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider());
    if let Some(crl) = crl {
        // A client certificate the CRL's issuer did not issue has an unknown status: refused.
        builder = builder.with_crls(load_crls(crl)?).only_check_end_entity_revocation();
    }
    let verifier = builder.build().map_err(|e| TlsError::Config(e.to_string()))?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(load_certs(cert)?, load_key(key, allow_exposed_key)?)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Why a client certificate that chains to the CA is still refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientCertRefusal {
    /// The certificate does not parse.
    #[error("the client certificate does not parse: {0}")]
    Unparsable(String),
    /// No extended key usage, or one without client authentication (a server certificate).
    #[error("the client certificate is not for client authentication (extendedKeyUsage must include clientAuth)")]
    NotClientAuth,
    /// The common name has characters that could not go safely into logs, metric labels and
    /// claims.
    #[error("the client certificate's common name {0:?} is not 1 to 64 of A-Z a-z 0-9 . _ - (starting with a letter or digit)")]
    BadName(String),
}

impl ClientCertRefusal {
    /// A short label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            ClientCertRefusal::Unparsable(_) => "client-cert-unparsable",
            ClientCertRefusal::NotClientAuth => "client-cert-not-client-auth",
            ClientCertRefusal::BadName(_) => "client-cert-bad-name",
        }
    }
}

/// Whether a common name may name a client: 1 to 64 of `A-Z a-z 0-9 . _ -`, starting with a
/// letter or digit (safe in logs, metric labels and claim records).
pub fn valid_client_name(name: &str) -> bool {
    let b = name.as_bytes();
    (1..=64).contains(&b.len())
        && b[0].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
}

/// A client's identity: its certificate's common name (checked by [`valid_client_name`]), or
/// `cert-<fingerprint>` when it has none. The certificate must carry the client-authentication
/// extended key usage, so a server certificate from the same CA cannot act as a client.
pub fn client_identity(cert: &CertificateDer<'_>) -> Result<String, ClientCertRefusal> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).map_err(|e| ClientCertRefusal::Unparsable(e.to_string()))?;
    let eku = parsed.extended_key_usage().map_err(|e| ClientCertRefusal::Unparsable(e.to_string()))?;
    if !eku.is_some_and(|e| e.value.client_auth || e.value.any) {
        return Err(ClientCertRefusal::NotClientAuth);
    }
    let cn = parsed
        .subject()
        .iter_common_name()
        .next()
        .map(|cn| cn.as_str().map(str::to_owned).map_err(|_| String::from_utf8_lossy(cn.as_slice()).into_owned()));
    match cn {
        None => Ok(format!("cert-{}", hex::encode(sp_crypto_hashing::blake2_128(cert.as_ref())))),
        Some(Ok(name)) if valid_client_name(&name) => Ok(name),
        Some(Ok(name) | Err(name)) => Err(ClientCertRefusal::BadName(name)),
    }
}

/// The dev node's client certificate name: `--dev` grants it everything.
pub const DEV_CLIENT: &str = "dev-node";
/// A second dev client certificate that no grant names: every request with it is refused.
pub const DEV_STRANGER: &str = "dev-stranger";

/// Paths of the dev PKI files.
#[derive(Debug, Clone)]
pub struct DevPki {
    /// CA certificate (trust anchor for both sides).
    pub ca: PathBuf,
    /// Server certificate.
    pub server_cert: PathBuf,
    /// Server key.
    pub server_key: PathBuf,
    /// Client certificate (CN `dev-node`).
    pub client_cert: PathBuf,
    /// Client key.
    pub client_key: PathBuf,
    /// A client certificate of the same CA that no grant names (CN `dev-stranger`).
    pub stranger_cert: PathBuf,
    /// Its key.
    pub stranger_key: PathBuf,
}

impl DevPki {
    /// The dev PKI under `dir/tls`, created if missing.
    pub fn ensure(dir: &Path) -> Result<Self, TlsError> {
        Self::ensure_with_nodes(dir, &[])
    }

    /// [`DevPki::ensure`], plus one client certificate per node name (CN = the name, the node's
    /// identity at the signer) at [`DevPki::node_files`]. Node certificates can only be issued
    /// with a new PKI (the dev CA key is not kept).
    pub fn ensure_with_nodes(dir: &Path, nodes: &[&str]) -> Result<Self, TlsError> {
        Self::ensure_with_nodes_at(dir, nodes, &[])
    }

    /// [`DevPki::ensure_with_nodes`] for signers that are also reached at `addresses` (IP
    /// addresses or DNS names, added to the server certificate's names beside loopback's).
    /// Only a new PKI gets them: an existing one is used as it is.
    pub fn ensure_with_nodes_at(dir: &Path, nodes: &[&str], addresses: &[String]) -> Result<Self, TlsError> {
        let tls = dir.join("tls");
        let pki = Self {
            ca: tls.join("ca.pem"),
            server_cert: tls.join("server.pem"),
            server_key: tls.join("server.key"),
            client_cert: tls.join("client.pem"),
            client_key: tls.join("client.key"),
            stranger_cert: tls.join("stranger.pem"),
            stranger_key: tls.join("stranger.key"),
        };
        if !pki.ca.exists() {
            exclave_durable::create_dir_all(&tls, 0o700).map_err(io(&tls))?;
            pki.generate(&[&[DEV_CLIENT], nodes].concat(), addresses)?;
        }
        for node in nodes {
            let (cert, _) = pki.node_files(node);
            if !cert.exists() {
                return Err(TlsError::Config(format!(
                    "{} is missing and the dev CA key is not kept: remove {} to start a new dev PKI",
                    cert.display(),
                    tls.display()
                )));
            }
        }
        Ok(pki)
    }

    /// Certificate and key of a node issued by [`DevPki::ensure_with_nodes`].
    pub fn node_files(&self, node: &str) -> (PathBuf, PathBuf) {
        let dir = self.ca.parent().unwrap_or(Path::new("."));
        (dir.join(format!("node-{node}.pem")), dir.join(format!("node-{node}.key")))
    }

    fn generate(&self, clients: &[&str], addresses: &[String]) -> Result<(), TlsError> {
        let cfg = |e: rcgen::Error| TlsError::Config(e.to_string());
        let ca_key = rcgen::KeyPair::generate().map_err(cfg)?;
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(cfg)?;
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(rcgen::DnType::CommonName, "Exclave dev CA");
        let ca = ca_params.self_signed(&ca_key).map_err(cfg)?;
        // Each certificate says what it is for: the server's cannot authenticate a client.
        let leaf = |cn: &str, sans: Vec<String>, usage: rcgen::ExtendedKeyUsagePurpose| -> Result<(String, String), TlsError> {
            let key = rcgen::KeyPair::generate().map_err(cfg)?;
            let mut params = rcgen::CertificateParams::new(sans).map_err(cfg)?;
            params.distinguished_name.push(rcgen::DnType::CommonName, cn);
            params.extended_key_usages = vec![usage];
            let cert = params.signed_by(&key, &ca, &ca_key).map_err(cfg)?;
            Ok((cert.pem(), key.serialize_pem()))
        };
        use rcgen::ExtendedKeyUsagePurpose::{ClientAuth, ServerAuth};
        let server_names = [&["localhost".to_string(), "127.0.0.1".into(), "::1".into()], addresses].concat();
        let (server_pem, server_key) = leaf("exclave-dev-signer", server_names, ServerAuth)?;
        let (client_pem, client_key) = leaf(clients[0], vec![], ClientAuth)?;
        write_file(&self.ca, ca.pem().as_bytes(), 0o644)?;
        write_file(&self.server_cert, server_pem.as_bytes(), 0o644)?;
        write_file(&self.server_key, server_key.as_bytes(), 0o600)?;
        write_file(&self.client_cert, client_pem.as_bytes(), 0o644)?;
        write_file(&self.client_key, client_key.as_bytes(), 0o600)?;
        let (stranger_pem, stranger_key) = leaf(DEV_STRANGER, vec![], ClientAuth)?;
        write_file(&self.stranger_cert, stranger_pem.as_bytes(), 0o644)?;
        write_file(&self.stranger_key, stranger_key.as_bytes(), 0o600)?;
        for node in &clients[1..] {
            let (pem, key) = leaf(node, vec![], ClientAuth)?;
            let (cert_path, key_path) = self.node_files(node);
            write_file(&cert_path, pem.as_bytes(), 0o644)?;
            write_file(&key_path, key.as_bytes(), 0o600)?;
        }
        Ok(())
    }
}

/// Write `data` to `path` with `mode` (set at creation), durably.
pub fn write_file(path: &Path, data: &[u8], mode: u32) -> Result<(), TlsError> {
    exclave_durable::write_file(path, data, mode).map_err(io(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(cn: Option<&str>, usage: Option<rcgen::ExtendedKeyUsagePurpose>) -> CertificateDer<'static> {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name = rcgen::DistinguishedName::new();
        if let Some(cn) = cn {
            params.distinguished_name.push(rcgen::DnType::CommonName, cn);
        }
        params.extended_key_usages = usage.into_iter().collect();
        params.self_signed(&key).expect("cert").der().clone()
    }

    #[test]
    fn client_certificates_need_client_auth_and_a_safe_name() {
        use rcgen::ExtendedKeyUsagePurpose::{Any, ClientAuth, ServerAuth};
        // (what, common name, extended key usage, identity or refusal label)
        type Case<'a> = (&'a str, Option<&'a str>, Option<rcgen::ExtendedKeyUsagePurpose>, Result<&'a str, &'a str>);
        let cases: [Case; 9] = [
            ("node certificate", Some("alice-1"), Some(ClientAuth), Ok("alice-1")),
            ("any usage", Some("alice.2_b"), Some(Any), Ok("alice.2_b")),
            ("server certificate", Some("signer-a"), Some(ServerAuth), Err("client-cert-not-client-auth")),
            ("no extended key usage", Some("alice-1"), None, Err("client-cert-not-client-auth")),
            ("quote in the name", Some("a\"b"), Some(ClientAuth), Err("client-cert-bad-name")),
            ("newline in the name", Some("a\nexclave_keys 9"), Some(ClientAuth), Err("client-cert-bad-name")),
            ("slash in the name", Some("a/b"), Some(ClientAuth), Err("client-cert-bad-name")),
            ("65 characters", Some(&"a".repeat(65)), Some(ClientAuth), Err("client-cert-bad-name")),
            ("leading dash", Some("-a"), Some(ClientAuth), Err("client-cert-bad-name")),
        ];
        for (what, cn, usage, want) in cases {
            let got = client_identity(&cert(cn, usage));
            match (want, &got) {
                (Ok(name), Ok(id)) => assert_eq!(id, name, "{what}"),
                (Err(label), Err(e)) => assert_eq!(e.label(), label, "{what}: {e}"),
                _ => panic!("{what}: got {got:?}, wanted {want:?}"),
            }
        }
        let anonymous = client_identity(&cert(None, Some(ClientAuth))).expect("no CN");
        assert!(anonymous.starts_with("cert-") && valid_client_name(&anonymous), "{anonymous}");
    }

    #[test]
    fn dev_certificates_carry_their_usage() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pki = DevPki::ensure_with_nodes(dir.path(), &["alice-1"]).expect("pki");
        let first = |p: &Path| load_certs(p).expect("cert").remove(0);
        assert_eq!(client_identity(&first(&pki.client_cert)), Ok("dev-node".into()));
        assert_eq!(client_identity(&first(&pki.node_files("alice-1").0)), Ok("alice-1".into()));
        assert_eq!(client_identity(&first(&pki.server_cert)), Err(ClientCertRefusal::NotClientAuth), "the server certificate is no client");
    }
}
