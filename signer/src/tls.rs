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

/// Read the private key in a PEM file; warn when others can read it.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let meta = std::fs::metadata(path).map_err(io(path))?;
    if meta.permissions().mode() & 0o077 != 0 {
        tracing::warn!(path = %path.display(), mode = format!("{:o}", meta.permissions().mode() & 0o777), "TLS key is readable by group or others; chmod 600 it");
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

/// A server configuration that requires a client certificate chaining to `client_ca`.
pub fn server_config(cert: &Path, key: &Path, client_ca: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let mut roots = RootCertStore::empty();
    for ca in load_certs(client_ca)? {
        roots.add(ca).map_err(|e| TlsError::Config(format!("client CA {}: {e}", client_ca.display())))?;
    }
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider()).build().map_err(|e| TlsError::Config(e.to_string()))?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(load_certs(cert)?, load_key(key)?)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A client's identity: its certificate's common name, or a fingerprint when it has none.
pub fn identity(cert: &CertificateDer<'_>) -> String {
    let cn = x509_parser::parse_x509_certificate(cert.as_ref())
        .ok()
        .and_then(|(_, c)| c.subject().iter_common_name().next().and_then(|cn| cn.as_str().ok()).map(str::to_owned));
    cn.filter(|s| !s.is_empty() && !s.contains('/'))
        .unwrap_or_else(|| format!("cert-{}", hex::encode(sp_crypto_hashing::blake2_128(cert.as_ref()))))
}

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
        let tls = dir.join("tls");
        let pki = Self {
            ca: tls.join("ca.pem"),
            server_cert: tls.join("server.pem"),
            server_key: tls.join("server.key"),
            client_cert: tls.join("client.pem"),
            client_key: tls.join("client.key"),
        };
        if !pki.ca.exists() {
            std::fs::create_dir_all(&tls).map_err(io(&tls))?;
            pki.generate(&[&["dev-node"], nodes].concat())?;
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

    fn generate(&self, clients: &[&str]) -> Result<(), TlsError> {
        let cfg = |e: rcgen::Error| TlsError::Config(e.to_string());
        let ca_key = rcgen::KeyPair::generate().map_err(cfg)?;
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(cfg)?;
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(rcgen::DnType::CommonName, "Exclave dev CA");
        let ca = ca_params.self_signed(&ca_key).map_err(cfg)?;
        let leaf = |cn: &str, sans: Vec<String>| -> Result<(String, String), TlsError> {
            let key = rcgen::KeyPair::generate().map_err(cfg)?;
            let mut params = rcgen::CertificateParams::new(sans).map_err(cfg)?;
            params.distinguished_name.push(rcgen::DnType::CommonName, cn);
            let cert = params.signed_by(&key, &ca, &ca_key).map_err(cfg)?;
            Ok((cert.pem(), key.serialize_pem()))
        };
        let (server_pem, server_key) = leaf("exclave-dev-signer", vec!["localhost".into(), "127.0.0.1".into(), "::1".into()])?;
        let (client_pem, client_key) = leaf(clients[0], vec![])?;
        write_file(&self.ca, ca.pem().as_bytes(), 0o644)?;
        write_file(&self.server_cert, server_pem.as_bytes(), 0o644)?;
        write_file(&self.server_key, server_key.as_bytes(), 0o600)?;
        write_file(&self.client_cert, client_pem.as_bytes(), 0o644)?;
        write_file(&self.client_key, client_key.as_bytes(), 0o600)?;
        for node in &clients[1..] {
            let (pem, key) = leaf(node, vec![])?;
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
