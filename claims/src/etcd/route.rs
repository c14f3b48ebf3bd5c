//! One client per etcd member, and the retry loop that fails over between them.
//!
//! Why not etcd-client's own balanced channel over all endpoints: measured here, after a member
//! dies it keeps sending about a third of requests to it (each an instant connect error) and
//! never retries by itself, so a retry on the same channel lands on the dead member again at
//! random. With one client per member, an attempt that fails moves the call, and every later
//! call, to the next member: after one failure no call pays for a dead member again until the
//! live one fails too.
//!
//! With a user and password ([`EtcdConfig::user`]), a member's client authenticates lazily, at
//! its first attempt (inside that attempt's time), not at construction: a member down at start-up
//! fails its attempts like any dead member, and the call moves on. Tokens that expire are
//! renewed by the client (`auto_token_refresh`).

use super::{EtcdConfig, EtcdError};
use etcd_client::{Client, ConnectOptions, KvClient};
use std::{
    future::Future,
    sync::atomic::{AtomicUsize, Ordering},
    time::{Duration, Instant},
};

/// First pause after every member failed once; doubles up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(20);
const MAX_PAUSE: Duration = Duration::from_millis(200);

struct Member {
    endpoint: String,
    kv: KvClient,
    /// The client whose shared token the `kv` client sends (for password authentication).
    client: tokio::sync::Mutex<Client>,
    /// Whether the client holds a token (or needs none).
    authenticated: std::sync::atomic::AtomicBool,
}

/// The members, the one tried first, and the limits of a call.
pub(super) struct Members {
    members: Vec<Member>,
    preferred: AtomicUsize,
    attempt_timeout: Duration,
    retry_budget: Duration,
    user: Option<super::EtcdUser>,
}

impl Members {
    /// Build one client per endpoint. No network traffic: connections open on first use, so a
    /// dead member does not block construction; the whole is still bounded by
    /// `connect_timeout` per endpoint in case that ever changes.
    pub(super) async fn connect(config: &EtcdConfig) -> Result<Self, EtcdError> {
        if config.endpoints.is_empty() {
            return Err(EtcdError::NoEndpoints);
        }
        if config.attempt_timeout.is_zero() || config.retry_budget.is_zero() || config.connect_timeout.is_zero() {
            return Err(EtcdError::Config("timeouts must be greater than zero"));
        }
        let mut options = ConnectOptions::new()
            .with_connect_timeout(config.connect_timeout)
            .with_timeout(config.attempt_timeout)
            // A member that lost its leader refuses at once instead of waiting for one.
            .with_require_leader(true)
            .with_auto_token_refresh(true);
        if let Some(tls) = &config.tls {
            if let Some(plain) = config.endpoints.iter().find(|e| !e.starts_with("https://")) {
                return Err(EtcdError::Config(if plain.is_empty() {
                    "empty endpoint"
                } else {
                    "with TLS every endpoint must be https://"
                }));
            }
            options = options.with_tls(
                etcd_client::TlsOptions::new()
                    .ca_certificate(etcd_client::Certificate::from_pem(&tls.ca))
                    .identity(etcd_client::Identity::from_pem(&tls.cert, tls.key.as_slice())),
            );
        }
        let mut members = Vec::with_capacity(config.endpoints.len());
        for endpoint in &config.endpoints {
            let connect = Client::connect([endpoint.as_str()], Some(options.clone()));
            let client = tokio::time::timeout(config.connect_timeout, connect)
                .await
                .map_err(|_| EtcdError::ConnectTimeout { endpoint: endpoint.clone(), after: config.connect_timeout })?
                .map_err(|source| EtcdError::Endpoint { endpoint: endpoint.clone(), source })?;
            members.push(Member {
                endpoint: endpoint.clone(),
                kv: client.kv_client(),
                client: tokio::sync::Mutex::new(client),
                authenticated: std::sync::atomic::AtomicBool::new(config.user.is_none()),
            });
        }
        Ok(Self {
            members,
            preferred: AtomicUsize::new(0),
            attempt_timeout: config.attempt_timeout,
            retry_budget: config.retry_budget,
            user: config.user.clone(),
        })
    }

    /// Run `request` against the preferred member; on a transient error or an attempt timeout,
    /// against the next one, round after round, until it succeeds, fails for good, or the retry
    /// budget is spent. Callers only pass requests that are safe to repeat (see `claim`).
    pub(super) async fn call<T, F, Fut>(&self, mut request: F) -> Result<T, EtcdError>
    where
        F: FnMut(KvClient) -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        let start = Instant::now();
        let (mut attempts, mut pause, mut last) = (0u32, FIRST_PAUSE, None);
        loop {
            let first = self.preferred.load(Ordering::Relaxed);
            for step in 0..self.members.len() {
                let i = (first + step) % self.members.len();
                let Some(limit) = self.time_left(start) else {
                    return Err(self.exhausted(attempts, last));
                };
                attempts += 1;
                match self.attempt(i, limit, &mut request).await {
                    Ok(value) => return Ok(value),
                    Err(e) if !e.is_transient() => return Err(e),
                    Err(e) => {
                        tracing::debug!(endpoint = %self.members[i].endpoint, error = %e, "etcd attempt failed; next member");
                        last = Some(e);
                    }
                }
            }
            let Some(left) = self.time_left(start) else {
                return Err(self.exhausted(attempts, last));
            };
            tokio::time::sleep(pause.min(left)).await;
            pause = (pause * 2).min(MAX_PAUSE);
        }
    }

    async fn attempt<T, F, Fut>(&self, i: usize, limit: Duration, request: &mut F) -> Result<T, EtcdError>
    where
        F: FnMut(KvClient) -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        let member = &self.members[i];
        let result = match tokio::time::timeout(limit, async {
            self.authenticate(member).await?;
            request(member.kv.clone()).await.map_err(|source| EtcdError::Rpc { endpoint: member.endpoint.clone(), source })
        })
        .await
        {
            Ok(result) => result,
            Err(_) => Err(EtcdError::AttemptTimeout { endpoint: member.endpoint.clone(), after: limit }),
        };
        if result.is_err() {
            // Later calls start at the next member (unless another call already moved on).
            let next = (i + 1) % self.members.len();
            let _ = self.preferred.compare_exchange(i, next, Ordering::Relaxed, Ordering::Relaxed);
        }
        result
    }

    /// Get `member`'s client a token, once (a no-op without a user). A refused password is an
    /// error of its own, not transient: every member would refuse it.
    async fn authenticate(&self, member: &Member) -> Result<(), EtcdError> {
        let Some(user) = &self.user else { return Ok(()) };
        if member.authenticated.load(Ordering::Acquire) {
            return Ok(());
        }
        let mut client = member.client.lock().await;
        if member.authenticated.load(Ordering::Acquire) {
            return Ok(());
        }
        match client.update_user(Some((user.name.clone(), user.password.to_string()))).await {
            Ok(()) => {
                member.authenticated.store(true, Ordering::Release);
                Ok(())
            }
            Err(etcd_client::Error::GRpcStatus(status)) if status.code() == tonic::Code::InvalidArgument => {
                Err(EtcdError::Authentication {
                    endpoint: member.endpoint.clone(),
                    user: user.name.clone(),
                    reason: status.message().into(),
                })
            }
            Err(source) => Err(EtcdError::Rpc { endpoint: member.endpoint.clone(), source }),
        }
    }

    /// The time this attempt may take: the per-attempt timeout, cut to what the budget leaves.
    fn time_left(&self, start: Instant) -> Option<Duration> {
        let left = self.retry_budget.checked_sub(start.elapsed()).filter(|d| !d.is_zero())?;
        Some(left.min(self.attempt_timeout))
    }

    fn exhausted(&self, attempts: u32, last: Option<EtcdError>) -> EtcdError {
        let last = last.unwrap_or(EtcdError::AttemptTimeout {
            endpoint: self.members[self.preferred.load(Ordering::Relaxed)].endpoint.clone(),
            after: self.attempt_timeout,
        });
        EtcdError::Exhausted { budget: self.retry_budget, attempts, last: Box::new(last) }
    }
}
