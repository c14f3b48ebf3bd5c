//! The JSON-RPC listener: accept TCP, complete mutual TLS, and serve jsonrpsee over the TLS
//! stream with the client's identity attached to every request.

use crate::rpc::{ClientIdentity, Rpc};
use exclave_protocol::ExclaveApiServer;
use futures::FutureExt;
use jsonrpsee::server::{serve_with_graceful_shutdown, stop_channel, Methods, Server, StopHandle};
use std::{sync::Arc, time::Duration};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

/// How long a client has to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

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
}

impl RpcServer {
    /// Stop accepting and end connections.
    pub fn stop(&self) {
        let _ = self.stop.stop();
    }
}

/// Start serving `rpc` on `listener`.
pub fn start(listener: TcpListener, transport: Transport, rpc: Rpc, max_request_bytes: u32) -> RpcServer {
    let methods: Methods = rpc.into_rpc().into();
    let (stop_handle, server_handle) = stop_channel();
    let transport = Arc::new(transport);
    tokio::spawn(accept_loop(listener, transport, methods, stop_handle, max_request_bytes));
    RpcServer { stop: server_handle }
}

async fn accept_loop(listener: TcpListener, transport: Arc<Transport>, methods: Methods, stop: StopHandle, max: u32) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = stop.clone().shutdown() => return,
        };
        let (sock, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = sock.set_nodelay(true);
        let (transport, methods, stop) = (transport.clone(), methods.clone(), stop.clone());
        tokio::spawn(async move {
            if let Err(e) = connection(sock, &transport, methods, stop, max).await {
                tracing::info!(%peer, error = %e, "connection ended");
            }
        });
    }
}

async fn connection(sock: TcpStream, transport: &Transport, methods: Methods, stop: StopHandle, max: u32) -> Result<(), String> {
    match transport {
        Transport::Tls(config) => {
            let tls = tokio::time::timeout(HANDSHAKE_TIMEOUT, TlsAcceptor::from(config.clone()).accept(sock))
                .await
                .map_err(|_| "TLS handshake timed out".to_string())?
                .map_err(|e| format!("TLS handshake failed: {e}"))?;
            let cert = tls.get_ref().1.peer_certificates().and_then(|c| c.first()).ok_or("client sent no certificate")?;
            let identity = ClientIdentity(crate::tls::identity(cert));
            tracing::debug!(client = %identity.0, "client authenticated");
            serve(tls, identity, methods, stop, max).await.map_err(|e| e.to_string())
        }
        Transport::InsecurePlaintext => {
            let port = sock.peer_addr().map_err(|e| e.to_string())?.port();
            let identity = ClientIdentity(format!("insecure-plaintext-{port}"));
            serve(sock, identity, methods, stop, max).await.map_err(|e| e.to_string())
        }
    }
}

async fn serve<I>(io: I, identity: ClientIdentity, methods: Methods, stop: StopHandle, max: u32) -> Result<(), jsonrpsee::core::BoxError>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let svc =
        Server::builder().max_request_body_size(max).max_response_body_size(1024 * 1024).to_service_builder().build(methods, stop.clone());
    let svc = tower::service_fn(move |mut req: jsonrpsee::server::HttpRequest<hyper::body::Incoming>| {
        req.extensions_mut().insert(identity.clone());
        let mut svc = svc.clone();
        async move { tower::Service::call(&mut svc, req).await.map_err(|e| std::io::Error::other(e.to_string())) }.boxed()
    });
    serve_with_graceful_shutdown(io, svc, stop.shutdown()).await
}
