//! The JSON-RPC listener: accept TCP, complete mutual TLS, and serve jsonrpsee (HTTP only: no
//! WebSocket upgrade) over the TLS stream with the client's identity attached to every request.
//!
//! Limits that keep it up under abuse ([`ServerLimits`]): a global and a per-address connection
//! cap (a connection over either is closed at once), a handshake deadline, a cap on JSON-RPC
//! batch length, and a bound on requests in flight: over it a request is answered `503
//! overloaded` at once instead of queueing (the node's keystore then tries its next signer).
//! A request has `request_timeout` from its headers to its answer (a body dripped byte by byte
//! is cut), and a connection with no request being served for `idle_timeout` is closed: an idle
//! kept-alive connection, or one whose headers are dripped and never complete (HTTP/1.1 and
//! HTTP/2 alike). `accept` errors (out of file descriptors) back off instead of spinning. Every
//! refusal is counted in `exclave_transport_refusals_total{reason}`.

use crate::{
    metrics::{Metrics, ReasonLabel},
    rpc::{ClientIdentity, Rpc},
};
use exclave_protocol::ExclaveApiServer;
use futures::FutureExt;
use jsonrpsee::server::{stop_channel, BatchRequestConfig, HttpBody, HttpResponse, Methods, Server, StopHandle};
use parking_lot::Mutex;
use std::{collections::HashMap, net::IpAddr, sync::Arc, time::Duration};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::Semaphore,
};
use tokio_rustls::TlsAcceptor;

/// Limits of the RPC listener.
#[derive(Debug, Clone)]
pub struct ServerLimits {
    /// Largest request body, bytes.
    pub max_request_bytes: u32,
    /// Connections open at once, from all clients.
    pub max_connections: usize,
    /// Connections open at once from one IP address.
    pub max_connections_per_address: usize,
    /// Requests being served at once; more are answered `503 overloaded`.
    pub max_concurrent_requests: usize,
    /// Longest JSON-RPC batch.
    pub max_batch: u32,
    /// Time a client has to complete the TLS handshake.
    pub handshake_timeout: Duration,
    /// Time from a request's headers to its answer, reading the body included: a body dripped
    /// byte by byte is cut here (`408`, connection closed).
    pub request_timeout: Duration,
    /// Time a connection may stay with no request being served (idle kept-alive, or headers
    /// not yet complete) before it is closed.
    pub idle_timeout: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            max_request_bytes: 256 * 1024,
            max_connections: 256,
            max_connections_per_address: 32,
            max_concurrent_requests: 128,
            max_batch: 16,
            handshake_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(15),
        }
    }
}

/// How connections are secured.
pub enum Transport {
    /// Mutual TLS: the only mode outside `--dev`.
    Tls(Arc<rustls::ServerConfig>),
    /// Plain HTTP, dev only, loopback only (checked by the caller).
    InsecurePlaintext,
}

/// A running RPC server; dropping it does not stop it, `stop` does.
pub struct RpcServer {
    stop: jsonrpsee::server::ServerHandle,
    in_flight: Arc<Semaphore>,
    max_in_flight: usize,
}

impl RpcServer {
    /// Stop accepting and end connections (requests in flight go on: see [`RpcServer::drain`]).
    pub fn stop(&self) {
        let _ = self.stop.stop();
    }

    /// Wait until no request is in flight, at most `limit`; how many still were at the end.
    pub async fn drain(&self, limit: std::time::Duration) -> usize {
        let all = u32::try_from(self.max_in_flight).unwrap_or(u32::MAX);
        match tokio::time::timeout(limit, self.in_flight.acquire_many(all)).await {
            Ok(Ok(_all_free)) => 0,
            _ => self.max_in_flight.saturating_sub(self.in_flight.available_permits()),
        }
    }
}

/// What every connection shares.
struct Shared {
    transport: Transport,
    methods: Methods,
    limits: ServerLimits,
    metrics: Metrics,
    gate: Gate,
    in_flight: Arc<Semaphore>,
}

impl Shared {
    fn refuse(&self, reason: &'static str) {
        self.metrics.transport_refusals.get_or_create(&ReasonLabel { reason }).inc();
    }
}

/// Start serving `rpc` on `listener`.
pub fn start(listener: TcpListener, transport: Transport, rpc: Rpc, limits: ServerLimits, metrics: Metrics) -> RpcServer {
    let methods: Methods = rpc.into_rpc().into();
    let (stop_handle, server_handle) = stop_channel();
    let in_flight = Arc::new(Semaphore::new(limits.max_concurrent_requests));
    let max_in_flight = limits.max_concurrent_requests;
    let shared = Arc::new(Shared {
        transport,
        methods,
        gate: Gate::new(limits.max_connections, limits.max_connections_per_address),
        in_flight: in_flight.clone(),
        limits,
        metrics,
    });
    tokio::spawn(accept_loop(listener, shared, stop_handle));
    RpcServer { stop: server_handle, in_flight, max_in_flight }
}

/// The first pause after a failed `accept`, doubled per failure in a row up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(10);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, stop: StopHandle) {
    let mut backoff = FIRST_BACKOFF;
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = stop.clone().shutdown() => return,
        };
        let (sock, peer) = match accepted {
            Ok(a) => {
                backoff = FIRST_BACKOFF;
                a
            }
            Err(e) => {
                tracing::warn!(error = %e, pause = ?backoff, "accept failed (out of file descriptors?); pausing");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        let admitted = match shared.gate.admit(peer.ip()) {
            Ok(a) => a,
            Err(reason) => {
                tracing::debug!(%peer, reason, "connection refused");
                shared.refuse(reason);
                continue;
            }
        };
        let _ = sock.set_nodelay(true);
        let (shared, stop) = (shared.clone(), stop.clone());
        tokio::spawn(async move {
            shared.metrics.connections_open.inc();
            if let Err(e) = connection(sock, &shared, stop).await {
                tracing::info!(%peer, error = %e, "connection ended");
            }
            shared.metrics.connections_open.dec();
            drop(admitted);
        });
    }
}

async fn connection(sock: TcpStream, shared: &Shared, stop: StopHandle) -> Result<(), String> {
    match &shared.transport {
        Transport::Tls(config) => {
            let handshake = tokio::time::timeout(shared.limits.handshake_timeout, TlsAcceptor::from(config.clone()).accept(sock)).await;
            let tls = match handshake {
                Err(_) => {
                    shared.refuse("handshake-timeout");
                    return Err(format!("TLS handshake not done within {:?}", shared.limits.handshake_timeout));
                }
                Ok(Err(e)) => {
                    shared.refuse("handshake-failed");
                    return Err(format!("TLS handshake failed: {e}"));
                }
                Ok(Ok(tls)) => tls,
            };
            let cert = tls.get_ref().1.peer_certificates().and_then(|c| c.first()).ok_or("client sent no certificate")?;
            let identity = match crate::tls::client_identity(cert) {
                Ok(name) => ClientIdentity { name, sha256: Some(sp_crypto_hashing::sha2_256(cert.as_ref())) },
                Err(refusal) => {
                    shared.refuse(refusal.label());
                    tracing::warn!(reason = %refusal, "client certificate refused");
                    return Err(refusal.to_string());
                }
            };
            tracing::debug!(client = %identity.name, "client authenticated");
            serve(tls, identity, shared, stop).await.map_err(|e| e.to_string())
        }
        Transport::InsecurePlaintext => {
            let port = sock.peer_addr().map_err(|e| e.to_string())?.port();
            let identity = ClientIdentity { name: format!("{}{port}", crate::grants::PLAINTEXT_PREFIX), sha256: None };
            serve(sock, identity, shared, stop).await.map_err(|e| e.to_string())
        }
    }
}

async fn serve<I>(io: I, identity: ClientIdentity, shared: &Shared, stop: StopHandle) -> Result<(), jsonrpsee::core::BoxError>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let limits = &shared.limits;
    let svc = Server::builder()
        .max_request_body_size(limits.max_request_bytes)
        .max_response_body_size(1024 * 1024)
        .set_batch_request_config(BatchRequestConfig::Limit(limits.max_batch))
        .http_only()
        .to_service_builder()
        .build(shared.methods.clone(), stop.clone());
    let (in_flight, metrics, max, deadline) =
        (shared.in_flight.clone(), shared.metrics.clone(), limits.max_concurrent_requests, limits.request_timeout);
    let activity = Arc::new(Activity::new());
    let served = activity.clone();
    let svc = tower::service_fn(move |mut req: jsonrpsee::server::HttpRequest<hyper::body::Incoming>| {
        req.extensions_mut().insert(identity.clone());
        let mut svc = svc.clone();
        let permit = in_flight.clone().try_acquire_owned();
        let metrics = metrics.clone();
        let serving = served.begin();
        async move {
            let _serving = serving;
            let Ok(_permit) = permit else {
                metrics.transport_refusals.get_or_create(&ReasonLabel { reason: "overloaded" }).inc();
                return Ok(overloaded(max));
            };
            match tokio::time::timeout(deadline, tower::Service::call(&mut svc, req)).await {
                Ok(answer) => answer.map_err(|e| std::io::Error::other(e.to_string())),
                Err(_) => {
                    metrics.transport_refusals.get_or_create(&ReasonLabel { reason: "request-timeout" }).inc();
                    Ok(timed_out(deadline))
                }
            }
        }
        .boxed()
    });
    let builder = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
    let conn = builder.serve_connection(hyper_util::rt::TokioIo::new(io), hyper_util::service::TowerToHyperService::new(svc));
    let stopped = stop.shutdown();
    tokio::pin!(conn, stopped);
    loop {
        tokio::select! {
            done = conn.as_mut() => return done,
            () = &mut stopped => {
                conn.as_mut().graceful_shutdown();
                return conn.await;
            }
            () = tokio::time::sleep_until(activity.idle_deadline(limits.idle_timeout)) => {
                if activity.idle_for().is_some_and(|idle| idle >= limits.idle_timeout) {
                    // Nothing is being served: closing loses no request. A graceful end first
                    // (HTTP/2 clients get a GOAWAY and reconnect cleanly), then the socket.
                    shared.refuse("idle-timeout");
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(IDLE_GOODBYE, conn.as_mut()).await;
                    return Ok(());
                }
            }
        }
    }
}

/// How long an idle connection's graceful end may take before the socket is dropped.
const IDLE_GOODBYE: Duration = Duration::from_secs(1);

/// What a connection is doing: requests being served, and since when it has served none.
struct Activity {
    state: Mutex<(usize, tokio::time::Instant)>,
}

/// One request being served; dropping it (answered, or abandoned) ends it.
struct Serving(Arc<Activity>);

impl Activity {
    fn new() -> Self {
        Self { state: Mutex::new((0, tokio::time::Instant::now())) }
    }

    fn begin(self: &Arc<Self>) -> Serving {
        self.state.lock().0 += 1;
        Serving(self.clone())
    }

    /// How long no request has been served; `None` while one is.
    fn idle_for(&self) -> Option<Duration> {
        let (serving, since) = *self.state.lock();
        (serving == 0).then(|| since.elapsed())
    }

    /// When to look again: `idle` after the last answer, or `idle` from now while serving.
    fn idle_deadline(&self, idle: Duration) -> tokio::time::Instant {
        let (serving, since) = *self.state.lock();
        if serving == 0 {
            since + idle
        } else {
            tokio::time::Instant::now() + idle
        }
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let mut state = self.0.state.lock();
        state.0 -= 1;
        state.1 = tokio::time::Instant::now();
    }
}

/// `503`: too many requests in flight; nothing was done.
fn overloaded(max: usize) -> HttpResponse<HttpBody> {
    let mut response = HttpResponse::new(HttpBody::from(format!(
        "overloaded: {max} requests are in flight on this signer; nothing was done, try another signer or again later\n"
    )));
    *response.status_mut() = hyper::StatusCode::SERVICE_UNAVAILABLE;
    response
}

/// `408`: the request (body included) was not read and answered in time; the connection closes.
/// Whatever the request was, nothing was released: a claim made before the deadline keeps its
/// signature for the identical request.
fn timed_out(deadline: Duration) -> HttpResponse<HttpBody> {
    let mut response = HttpResponse::new(HttpBody::from(format!("request not completed within {deadline:?}; connection closed\n")));
    *response.status_mut() = hyper::StatusCode::REQUEST_TIMEOUT;
    response.headers_mut().insert(hyper::header::CONNECTION, hyper::header::HeaderValue::from_static("close"));
    response
}

/// The connection caps: one count for all, one per IP address.
struct Gate {
    max: usize,
    per_address: usize,
    open: Arc<Mutex<(usize, HashMap<IpAddr, usize>)>>,
}

/// One admitted connection; dropping it frees its place.
struct Admitted {
    ip: IpAddr,
    open: Arc<Mutex<(usize, HashMap<IpAddr, usize>)>>,
}

impl Gate {
    fn new(max: usize, per_address: usize) -> Self {
        Self { max, per_address, open: Arc::default() }
    }

    fn admit(&self, ip: IpAddr) -> Result<Admitted, &'static str> {
        let mut open = self.open.lock();
        if open.0 >= self.max {
            return Err("connection-limit");
        }
        let from_ip = open.1.entry(ip).or_insert(0);
        if *from_ip >= self.per_address {
            return Err("address-limit");
        }
        *from_ip += 1;
        open.0 += 1;
        Ok(Admitted { ip, open: self.open.clone() })
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut open = self.open.lock();
        open.0 = open.0.saturating_sub(1);
        if let Some(n) = open.1.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.1.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gate_caps_per_address_and_in_all_and_frees_on_drop() {
        let gate = Gate::new(3, 2);
        let (a, b, c): (IpAddr, IpAddr, IpAddr) =
            ("127.0.0.1".parse().expect("ip"), "127.0.0.2".parse().expect("ip"), "127.0.0.3".parse().expect("ip"));
        let a1 = gate.admit(a).expect("first from a");
        let _a2 = gate.admit(a).expect("second from a");
        assert_eq!(gate.admit(a).err(), Some("address-limit"));
        let _b1 = gate.admit(b).expect("first from b");
        assert_eq!(gate.admit(c).err(), Some("connection-limit"));
        drop(a1);
        assert!(gate.admit(c).is_ok(), "a freed place is taken again");
        assert_eq!(gate.open.lock().1.get(&c), None, "the dropped admission freed c's count");
    }
}
