//! The RPC side: TLS client configuration, the private runtime, and calls with a deadline and
//! fail-over across the configured signers.

use crate::error::RemoteError;
use exclave_protocol::ExclaveError;
use jsonrpsee::{
    core::ClientError,
    http_client::{HttpClient, HttpClientBuilder},
};
use std::{future::Future, path::PathBuf, sync::Arc, time::Duration};

/// PEM files for mutual TLS.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// CA certificate that the signers' certificates chain to.
    pub ca: PathBuf,
    /// This node's client certificate.
    pub cert: PathBuf,
    /// This node's client key.
    pub key: PathBuf,
}

/// How to reach the signers.
#[derive(Debug, Clone)]
pub struct RemoteKeystoreConfig {
    /// Signer URLs (`https://host:port`), tried in order when one does not answer.
    pub urls: Vec<String>,
    /// The chain's genesis hash, sent with every signing request.
    pub chain: [u8; 32],
    /// Mutual-TLS files; `None` only for `http://` dev signers on loopback.
    pub tls: Option<TlsFiles>,
    /// Deadline for one request to one signer.
    pub timeout: Duration,
}

pub(crate) struct Clients {
    clients: Vec<(String, HttpClient)>,
    timeout: Duration,
}

/// The mutual-TLS client configuration for `files` (ring provider, the CA as the only root).
pub fn tls_client_config(files: &TlsFiles) -> Result<rustls::ClientConfig, RemoteError> {
    let read = |p: &PathBuf| std::fs::read(p).map_err(|e| RemoteError::Config(format!("{}: {e}", p.display())));
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut read(&files.ca)?.as_slice()) {
        let cert = cert.map_err(|e| RemoteError::Config(format!("{}: {e}", files.ca.display())))?;
        roots.add(cert).map_err(|e| RemoteError::Config(format!("{}: {e}", files.ca.display())))?;
    }
    let chain: Vec<_> = rustls_pemfile::certs(&mut read(&files.cert)?.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|e| RemoteError::Config(format!("{}: {e}", files.cert.display())))?;
    let key = rustls_pemfile::private_key(&mut read(&files.key)?.as_slice())
        .map_err(|e| RemoteError::Config(format!("{}: {e}", files.key.display())))?
        .ok_or_else(|| RemoteError::Config(format!("{}: no private key", files.key.display())))?;
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| RemoteError::Config(e.to_string()))?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(|e| RemoteError::Config(e.to_string()))
}

impl Clients {
    /// Build one client per URL (must run inside the private runtime).
    pub(crate) fn build(config: &RemoteKeystoreConfig) -> Result<Self, RemoteError> {
        if config.urls.is_empty() {
            return Err(RemoteError::Config("no signer URL given".into()));
        }
        // Failing over between signers re-sends a request that the first signer may already have
        // signed. That is only safe when every signer claims in one shared, replicated store;
        // with a store per signer the second would sign again (a fresh sr25519 seal: an
        // equivocation). Until signers can prove they share a store, one URL only.
        if config.urls.len() > 1 {
            return Err(RemoteError::Config(format!(
                "{} signer URLs given: fail-over between signers needs a shared replicated claim store, which this release does not offer; give exactly one",
                config.urls.len()
            )));
        }
        let tls = config.tls.as_ref().map(tls_client_config).transpose()?;
        let mut clients = Vec::new();
        for url in &config.urls {
            // No request logging: `insertKey` bodies carry secret URIs.
            let mut builder = HttpClientBuilder::default().request_timeout(config.timeout).set_max_logging_length(0);
            match (&tls, url.starts_with("https://")) {
                (Some(cfg), true) => builder = builder.with_custom_cert_store(cfg.clone()),
                (None, true) => return Err(RemoteError::Config(format!("{url}: https needs CA, client cert and key"))),
                (_, false) if !is_loopback_http(url) => {
                    return Err(RemoteError::Config(format!("{url}: plain http is only for dev signers on loopback")))
                }
                _ => {}
            }
            let client = builder.build(url).map_err(|e| RemoteError::Config(format!("{url}: {e}")))?;
            clients.push((url.clone(), client));
        }
        Ok(Self { clients, timeout: config.timeout })
    }

    /// Try each signer in turn until one answers. An answer (even an error object) ends the
    /// call; only transport failures and timeouts move on to the next signer. Safe only when the
    /// signers share one claim store (an identical request is then the same data), which is why
    /// [`Clients::build`] accepts a single URL in this release.
    pub(crate) async fn call<T, F, Fut>(&self, f: F) -> Result<T, RemoteError>
    where
        F: Fn(HttpClient) -> Fut,
        Fut: Future<Output = Result<T, ClientError>>,
    {
        let mut failures = Vec::new();
        for (url, client) in &self.clients {
            match tokio::time::timeout(self.timeout, f(client.clone())).await {
                Ok(Ok(v)) => return Ok(v),
                Ok(Err(ClientError::Call(obj))) => {
                    return Err(ExclaveError::from_object(&obj)
                        .map(RemoteError::Signer)
                        .unwrap_or_else(|| RemoteError::Protocol(format!("{url}: {obj}"))))
                }
                Ok(Err(ClientError::ParseError(e))) => return Err(RemoteError::Protocol(format!("{url}: {e}"))),
                Ok(Err(e)) => failures.push(format!("{url}: {e}")),
                Err(_) => failures.push(format!("{url}: no answer within {:?}", self.timeout)),
            }
        }
        Err(RemoteError::Unreachable(failures.join("; ")))
    }

    /// The longest a call may take across every signer.
    pub(crate) fn total_deadline(&self) -> Duration {
        self.timeout * self.clients.len() as u32 + Duration::from_secs(1)
    }
}

fn is_loopback_http(url: &str) -> bool {
    let rest = url.strip_prefix("http://").unwrap_or("");
    ["127.", "localhost:", "[::1]:"].iter().any(|p| rest.starts_with(p))
}
