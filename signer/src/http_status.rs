//! The plain-HTTP metrics listener: `/metrics` (Prometheus text), `/health` (process alive),
//! `/ready` (keys loaded and the claim store answers).

use crate::engine::Engine;
use http_body_util::Full;
use hyper::{body::Bytes, service::service_fn, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus_client::registry::Registry;
use std::{convert::Infallible, sync::Arc};
use tokio::net::TcpListener;

/// Serve the endpoints on `listener` until the process ends.
pub async fn serve(listener: TcpListener, registry: Arc<Registry>, engine: Arc<Engine>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let (registry, engine) = (registry.clone(), engine.clone());
        tokio::spawn(async move {
            let svc = service_fn(move |req| respond(req, registry.clone(), engine.clone()));
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
        });
    }
}

async fn respond(
    req: Request<hyper::body::Incoming>,
    registry: Arc<Registry>,
    engine: Arc<Engine>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, body) = match req.uri().path() {
        "/metrics" => {
            engine.observe_scrape();
            let mut text = String::new();
            match prometheus_client::encoding::text::encode(&mut text, &registry) {
                Ok(()) => (StatusCode::OK, text),
                Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
            }
        }
        "/health" => (StatusCode::OK, "ok\n".into()),
        "/ready" => match engine.readiness().await {
            Ok(()) => (StatusCode::OK, "ready\n".into()),
            Err(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {why}\n")),
        },
        _ => (StatusCode::NOT_FOUND, "not found: try /metrics, /health or /ready\n".into()),
    };
    Ok(Response::builder().status(status).body(Full::new(Bytes::from(body))).unwrap_or_default())
}
