//! The RPC side: TLS client configuration, the private runtime, and calls with a deadline and
//! fail-over across the configured signers.

use crate::error::RemoteError;
use exclave_protocol::{ErrorKind, ExclaveApiClient, ExclaveError};
use jsonrpsee::{
    core::ClientError,
    http_client::{HttpClient, HttpClientBuilder},
};
use parking_lot::Mutex;
use rustls_pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
use std::{
    future::Future,
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

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
    /// Signer URLs (`https://host:port`), preferred in this order; a signer that does not
    /// answer is rested and the next one tried. Several signers must share one claim store
    /// (checked through `exclave_status`'s store id).
    pub urls: Vec<String>,
    /// The chain's genesis hash, sent with every signing request.
    pub chain: [u8; 32],
    /// Mutual-TLS files; `None` only for `http://` dev signers on loopback.
    pub tls: Option<TlsFiles>,
    /// Deadline for one attempt at one signer (a call tries each signer at most once).
    pub timeout: Duration,
    /// With several signers: the claim-store id they must all report (`exclave_status`). Without
    /// it, no signer is used until every configured signer has reported one and the same id.
    pub store_id: Option<String>,
}

/// One signer: its client and what the last calls taught about it.
struct Endpoint {
    url: String,
    client: HttpClient,
    health: Mutex<Health>,
}

#[derive(Default)]
struct Health {
    /// Failed attempts in a row.
    failures: u32,
    /// Tried only after every rested signer, until then.
    resting_until: Option<Instant>,
    /// Whether this signer reported the shared store id since its last failure.
    verified: bool,
}

/// The first pause after a failure; doubled per failure in a row, up to [`MAX_REST`].
const FIRST_REST: Duration = Duration::from_millis(500);
const MAX_REST: Duration = Duration::from_secs(30);

pub(crate) struct Clients {
    endpoints: Vec<Endpoint>,
    timeout: Duration,
    /// With several signers: the store id every one of them must report (configured, or agreed
    /// by all of them once).
    store_id: Mutex<Option<String>>,
}

/// How one attempt at one signer ended, short of a result.
enum Miss {
    /// The signer answered: the call ends with this.
    Answer(RemoteError),
    /// No usable answer: try the next signer.
    Next(String),
}

/// The mutual-TLS client configuration for `files` (ring provider, the CA as the only root).
pub fn tls_client_config(files: &TlsFiles) -> Result<rustls::ClientConfig, RemoteError> {
    let read = |p: &PathBuf| std::fs::read(p).map_err(|e| RemoteError::Config(format!("{}: {e}", p.display())));
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&read(&files.ca)?) {
        let cert = cert.map_err(|e| RemoteError::Config(format!("{}: {e}", files.ca.display())))?;
        roots.add(cert).map_err(|e| RemoteError::Config(format!("{}: {e}", files.ca.display())))?;
    }
    let chain: Vec<_> = CertificateDer::pem_slice_iter(&read(&files.cert)?)
        .collect::<Result<_, _>>()
        .map_err(|e| RemoteError::Config(format!("{}: {e}", files.cert.display())))?;
    let key = PrivateKeyDer::from_pem_slice(&zeroize::Zeroizing::new(read(&files.key)?)).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => RemoteError::Config(format!("{}: no private key", files.key.display())),
        other => RemoteError::Config(format!("{}: {other}", files.key.display())),
    })?;
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
        let tls = config.tls.as_ref().map(tls_client_config).transpose()?;
        let mut endpoints = Vec::new();
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
            endpoints.push(Endpoint { url: url.clone(), client, health: Mutex::default() });
        }
        Ok(Self { endpoints, timeout: config.timeout, store_id: Mutex::new(config.store_id.clone()) })
    }

    /// Send the call to one signer after another until one answers, healthy signers first (in
    /// the configured order), each attempt bounded by the timeout and all of them by
    /// [`Clients::total_deadline`]. An answer ends the call, except, with several signers, a
    /// signer's "store unavailable" (it signed nothing) or "unknown key", which move on;
    /// transport failures and timeouts move on and rest that signer. With several signers, a
    /// signer is used only while it reports the shared claim-store id: re-sending a request is
    /// safe only within one store (an identical request is then the same data, answered with the
    /// same signature).
    pub(crate) async fn call<T, F, Fut>(&self, f: F) -> Result<T, RemoteError>
    where
        F: Fn(HttpClient) -> Fut,
        Fut: Future<Output = Result<T, ClientError>>,
    {
        let deadline = Instant::now() + self.timeout * self.endpoints.len() as u32;
        self.ensure_agreement().await?;
        let mut misses = Vec::new();
        // "Unknown key" ends the call only if every signer said so: one that did not answer, was
        // on another store or whose store was down may hold the key, and the caller must see a
        // transient failure (a GRANDPA vote is then retried), whichever order the answers came in.
        let mut unknown_key = None;
        let mut unknown_answers = 0;
        for i in self.order() {
            let ep = &self.endpoints[i];
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                misses.push(format!("{}: not tried, the call's time was up", ep.url));
                continue;
            }
            // Made before the check, started after it (a future does nothing until polled).
            let request = f(ep.client.clone());
            let attempt = async {
                self.verify(ep).await?;
                request.await.map_err(|e| self.miss(&ep.url, e))
            };
            match tokio::time::timeout(left.min(self.timeout), attempt).await {
                Ok(Ok(v)) => {
                    ep.succeeded();
                    return Ok(v);
                }
                // Re-pointed at another claim store since it was checked: it signed nothing, and
                // is checked again before its next use.
                Ok(Err(Miss::Answer(RemoteError::Signer(e)))) if e.kind == ErrorKind::StoreMismatch => {
                    tracing::error!(signer = %ep.url, error = %e, "remote keystore: signer is on another claim store; not used until it reports the shared one");
                    ep.failed();
                    misses.push(format!("{}: {e}", ep.url));
                }
                // "Nothing signed" (store unavailable) or "no such key here": another signer may.
                Ok(Err(Miss::Answer(RemoteError::Signer(e))))
                    if matches!(e.kind, ErrorKind::StoreUnavailable | ErrorKind::UnknownKey) && self.endpoints.len() > 1 =>
                {
                    misses.push(format!("{}: {e}", ep.url));
                    if e.kind == ErrorKind::UnknownKey {
                        unknown_answers += 1;
                        unknown_key = Some(RemoteError::Signer(e));
                    }
                }
                Ok(Err(Miss::Answer(e))) => {
                    ep.succeeded();
                    return Err(e);
                }
                Ok(Err(Miss::Next(why))) => {
                    ep.failed();
                    misses.push(why);
                }
                Err(_) => {
                    ep.failed();
                    misses.push(format!("{}: no answer within {:?}", ep.url, left.min(self.timeout)));
                }
            }
        }
        Err(match unknown_key {
            Some(answer) if unknown_answers == self.endpoints.len() => answer,
            _ => RemoteError::Unreachable(misses.join("; ")),
        })
    }

    /// With several signers and no configured store id: until every configured signer has
    /// reported one and the same claim-store id, use none of them (fail closed). Two nodes that
    /// each reach only one of two signers on different stores would otherwise both sign.
    async fn ensure_agreement(&self) -> Result<(), RemoteError> {
        if self.endpoints.len() == 1 || self.store_id.lock().is_some() {
            return Ok(());
        }
        let asks = self.endpoints.iter().map(|ep| async move {
            tokio::time::timeout(self.timeout, self.reported_store_id(ep))
                .await
                .unwrap_or_else(|_| Err(format!("{}: no answer within {:?}", ep.url, self.timeout)))
        });
        let answers = futures::future::join_all(asks).await;
        let ids: Vec<&String> = answers.iter().filter_map(|a| a.as_ref().ok()).collect();
        let problems: Vec<&String> = answers.iter().filter_map(|a| a.as_ref().err()).collect();
        if problems.is_empty() && ids.windows(2).all(|w| w[0] == w[1]) {
            // Agreed once, never changed: a concurrent call that agreed on another id (the
            // signers were re-pointed in between) is refused rather than overwriting it.
            let mut agreed = self.store_id.lock();
            let id = ids.first().map(|id| (*id).clone());
            match agreed.as_ref() {
                None => *agreed = id,
                Some(current) if Some(current) == id.as_ref() => {}
                Some(current) => {
                    return Err(RemoteError::Unreachable(format!(
                        "the signers now report claim store {} but store {current} was agreed on; fail-over between stores could sign a duty twice",
                        id.unwrap_or_default()
                    )))
                }
            }
            return Ok(());
        }
        let why = if problems.is_empty() {
            let listed: Vec<String> = self.endpoints.iter().zip(&ids).map(|(ep, id)| format!("{} on {id}", ep.url)).collect();
            format!("the signers are on different claim stores ({}); fail-over between them could sign a duty twice", listed.join(", "))
        } else {
            problems.iter().map(|p| p.as_str()).collect::<Vec<_>>().join("; ")
        };
        tracing::error!("remote keystore: no signer is used until every configured signer reports the same claim-store id (or --remote-keystore-store-id is given): {why}");
        Err(RemoteError::Unreachable(format!("every configured signer must first report one claim-store id: {why}")))
    }

    /// Check every signer's store id again at its next use (the keep-alive calls this).
    pub(crate) fn reverify(&self) {
        for ep in &self.endpoints {
            ep.health.lock().verified = false;
        }
    }

    /// With several signers, the claim-store id they share (configured, or agreed once every
    /// signer reported it); signing requests carry it so that a signer re-pointed at another
    /// store since its last check refuses instead of signing. `None` with one signer.
    pub(crate) fn store_id(&self) -> Option<String> {
        if self.endpoints.len() == 1 {
            return None;
        }
        self.store_id.lock().clone()
    }

    /// How many signers are configured.
    pub(crate) fn len(&self) -> usize {
        self.endpoints.len()
    }

    fn miss(&self, url: &str, e: ClientError) -> Miss {
        match e {
            ClientError::Call(obj) => Miss::Answer(
                ExclaveError::from_object(&obj).map(RemoteError::Signer).unwrap_or_else(|| RemoteError::Protocol(format!("{url}: {obj}"))),
            ),
            ClientError::ParseError(e) => Miss::Answer(RemoteError::Protocol(format!("{url}: {e}"))),
            other => Miss::Next(format!("{url}: {other}")),
        }
    }

    /// Signer indices: rested ones in configured order, then resting ones, soonest back first.
    fn order(&self) -> Vec<usize> {
        let now = Instant::now();
        let mut order: Vec<(Option<Instant>, usize)> =
            self.endpoints.iter().enumerate().map(|(i, ep)| (ep.health.lock().resting_until.filter(|t| *t > now), i)).collect();
        order.sort();
        order.into_iter().map(|(_, i)| i).collect()
    }

    /// The claim-store id `ep` reports in `exclave_status`; an error names the signer and why.
    async fn reported_store_id(&self, ep: &Endpoint) -> Result<String, String> {
        match ep.client.status().await {
            Ok(s) if !s.store_id.is_empty() => Ok(s.store_id),
            Ok(_) => Err(format!("{}: its claim store has not answered yet (no store id)", ep.url)),
            Err(e) => Err(format!("{}: status: {e}", ep.url)),
        }
    }

    /// With several signers, check (again after every failure and every [`Clients::reverify`])
    /// that this one reports the store id every signer must share (configured, or agreed by all
    /// of them in [`Clients::ensure_agreement`]).
    async fn verify(&self, ep: &Endpoint) -> Result<(), Miss> {
        if self.endpoints.len() == 1 || ep.health.lock().verified {
            return Ok(());
        }
        let id = self.reported_store_id(ep).await.map_err(Miss::Next)?;
        let known = self.store_id.lock().clone();
        if known.as_deref() != Some(id.as_str()) {
            let why = format!(
                "{}: claim store {id} is not the store {} every signer must share; fail-over to it could sign a duty twice, so this signer is not used",
                ep.url,
                known.unwrap_or_default()
            );
            tracing::error!(signer = %ep.url, "{why}");
            return Err(Miss::Next(why));
        }
        ep.health.lock().verified = true;
        Ok(())
    }

    /// The longest a call may take across every signer.
    pub(crate) fn total_deadline(&self) -> Duration {
        self.timeout * self.endpoints.len() as u32 + Duration::from_secs(1)
    }
}

impl Endpoint {
    fn succeeded(&self) {
        let mut h = self.health.lock();
        h.failures = 0;
        h.resting_until = None;
    }

    fn failed(&self) {
        let mut h = self.health.lock();
        h.failures = h.failures.saturating_add(1);
        let rest = FIRST_REST.saturating_mul(1 << h.failures.min(7).saturating_sub(1)).min(MAX_REST);
        h.resting_until = Some(Instant::now() + rest);
        h.verified = false;
    }
}

/// Plain http only to a loopback address, decided by parsing the URL (not by its prefix).
fn is_loopback_http(url: &str) -> bool {
    url.starts_with("http://") && exclave_policies::is_loopback_endpoint(url)
}
