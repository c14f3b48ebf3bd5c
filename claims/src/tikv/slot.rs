//! The lazily built, replaceable `RawClient`: one background build at a time, never awaited by
//! a caller for longer than its own call timeout.

use super::TikvConfig;
use futures::{future::Shared, FutureExt};
use std::{future::Future, pin::Pin, sync::Arc};
use tikv_client::{Config, RawClient};

type Build = Shared<Pin<Box<dyn Future<Output = Result<Arc<RawClient>, String>> + Send>>>;

enum State {
    Empty,
    Building { generation: u64, build: Build },
    Ready(Arc<RawClient>),
}

/// Holds the current client, or the build in progress.
pub(super) struct ClientSlot {
    config: TikvConfig,
    state: parking_lot::Mutex<(u64, State)>,
}

impl ClientSlot {
    pub(super) fn new(config: TikvConfig) -> Self {
        Self { config, state: parking_lot::Mutex::new((0, State::Empty)) }
    }

    /// The current client, or the result of the build in progress (starting one if none is).
    pub(super) async fn client(&self) -> Result<Arc<RawClient>, String> {
        let (generation, build) = {
            let mut guard = self.state.lock();
            let (counter, state) = &mut *guard;
            match state {
                State::Ready(client) => return Ok(client.clone()),
                State::Building { generation, build } => (*generation, build.clone()),
                State::Empty => {
                    *counter += 1;
                    let build = spawn_build(self.config.clone());
                    *state = State::Building { generation: *counter, build: build.clone() };
                    (*counter, build)
                }
            }
        };
        let result = build.await;
        let mut guard = self.state.lock();
        if matches!(&guard.1, State::Building { generation: g, .. } if *g == generation) {
            guard.1 = match &result {
                Ok(client) => State::Ready(client.clone()),
                Err(_) => State::Empty,
            };
        }
        result
    }

    /// Forget the current client (after a failure): the next call builds a new one. A build in
    /// progress is kept.
    pub(super) fn discard(&self) {
        let mut guard = self.state.lock();
        if matches!(guard.1, State::Ready(_)) {
            guard.1 = State::Empty;
        }
    }
}

/// Builds a client on a task of its own, so it goes on when the caller that started it gives
/// up, bounded by the connect timeout.
fn spawn_build(config: TikvConfig) -> Build {
    let task = tokio::spawn(async move {
        let mut client_config = Config::default().with_timeout(config.request_timeout);
        if let Some(tls) = &config.tls {
            client_config = client_config.with_security(&tls.ca, &tls.cert, &tls.key);
        }
        if let Some(keyspace) = &config.keyspace {
            client_config = client_config.with_keyspace(keyspace);
        }
        let build = RawClient::new_with_config(config.pd_endpoints.clone(), client_config);
        match tokio::time::timeout(config.connect_timeout, build).await {
            Ok(Ok(client)) => Ok(Arc::new(client.with_atomic_for_cas())),
            Ok(Err(e)) => Err(format!("building the client: {e}")),
            Err(_) => Err(format!(
                "building the client: PD ({}) did not answer within {:?}",
                config.pd_endpoints.join(","),
                config.connect_timeout
            )),
        }
    });
    let joined: Pin<Box<dyn Future<Output = Result<Arc<RawClient>, String>> + Send>> =
        Box::pin(task.map(|r| r.unwrap_or_else(|e| Err(format!("building the client: task failed: {e}")))));
    joined.shared()
}
