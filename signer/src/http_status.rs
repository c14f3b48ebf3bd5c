//! The plain-HTTP metrics listener: `/metrics` (Prometheus text), `/health` (process alive),
//! `/ready` (keys loaded and the claim store answers).

use crate::engine::Engine;
use http_body_util::Full;
use hyper::{body::Bytes, service::service_fn, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::registry::Registry;
use std::{convert::Infallible, sync::Arc, time::Duration};
use tokio::net::TcpListener;

/// A scraper has this long to send a request's headers (an idle connection is closed after it).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// A response is abandoned after this long (a `/ready` whose store does not answer).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serve the endpoints on `listener` until the process ends. A failed `accept` (out of file
/// descriptors) backs off, from 10 ms up to 1 s, instead of spinning.
pub async fn serve(listener: TcpListener, registry: Arc<Registry>, engine: Arc<Engine>) {
    let mut backoff = Duration::from_millis(10);
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => {
                backoff = Duration::from_millis(10);
                stream
            }
            Err(e) => {
                tracing::warn!(error = %e, pause = ?backoff, "metrics listener: accept failed; pausing");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let (registry, engine) = (registry.clone(), engine.clone());
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let (registry, engine) = (registry.clone(), engine.clone());
                async move {
                    match tokio::time::timeout(RESPONSE_TIMEOUT, respond(req, registry, engine)).await {
                        Ok(r) => r,
                        Err(_) => Ok(text(StatusCode::SERVICE_UNAVAILABLE, format!("no answer within {RESPONSE_TIMEOUT:?}\n"))),
                    }
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    Response::builder().status(status).body(Full::new(Bytes::from(body))).unwrap_or_default()
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
    Ok(text(status, body))
}
