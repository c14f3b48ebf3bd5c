//! # exclave-tikv-protocol-standin — TEST SUPPORT ONLY, not TiKV
//!
//! A stand-in for the **wire protocol** of a TiKV cluster: one loopback gRPC server that
//! answers the PD and TiKV calls the real `tikv-client` 0.4 raw client makes (PD `GetMembers`,
//! `GetRegion`, `GetRegionByID`, `ScanRegions`, `GetStore`, `GetAllStores`, `LoadKeyspace`;
//! TiKV `RawGet`, `RawBatchGet`, `RawPut`, `RawDelete`, `RawScan`, `RawBatchScan`, `RawCompareAndSwap`),
//! backed by one in-memory ordered map under one lock. The server code is generated at build
//! time from the `.proto` files inside the `tikv-client` crate's own source (see `build.rs`).
//!
//! It exists because no TiKV or PD server can be installed on the machines that build and test
//! Exclave. It lets the real client, with its real retries, region cache and error handling,
//! run against something, and it can misbehave on purpose ([`Faults`]): answer `NotLeader`,
//! apply a compare-and-swap and then drop the reply, freeze the store or PD (accept requests
//! and never answer them).
//!
//! What it is **not**: TiKV. It has one region on one store, no Raft, no persistence, no TTL,
//! no transactions, no TSO. A claim store that passes against it has shown it speaks the
//! protocol and handles the client's error paths; the same tests run against a real cluster
//! when `TIKV_PD_ADDRS` is set (see `claims/tests/tikv.rs`).

mod faults;
mod kv;
mod pd;
/// The generated protocol types and server traits (one module per protobuf package).
pub mod protos {
    include!(concat!(env!("OUT_DIR"), "/protos.rs"));
}

pub use faults::Faults;

use std::{collections::BTreeMap, net::SocketAddr, sync::Arc};
use tokio::{net::TcpListener, sync::oneshot};

/// The cluster id the stand-in reports.
pub const CLUSTER_ID: u64 = 0x0057_5441_4e44_494e; // "STANDIN" in ASCII; any non-zero id works

/// What the services share: the map, the fault switches and the server's own address.
pub(crate) struct State {
    pub(crate) map: parking_lot::Mutex<BTreeMap<Vec<u8>, Vec<u8>>>,
    pub(crate) keyspaces: parking_lot::Mutex<Vec<String>>,
    pub(crate) faults: Faults,
    pub(crate) addr: SocketAddr,
}

/// A running stand-in. Dropping it stops the server.
pub struct StandIn {
    state: Arc<State>,
    stop: Option<oneshot::Sender<()>>,
}

impl StandIn {
    /// Bind 127.0.0.1 on a free port and serve PD and TiKV on it (the store's address is the
    /// same port). Must be called inside a tokio runtime, which then runs the server.
    pub async fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            map: parking_lot::Mutex::new(BTreeMap::new()),
            keyspaces: parking_lot::Mutex::new(Vec::new()),
            faults: Faults::default(),
            addr,
        });
        let (stop, stopped) = oneshot::channel::<()>();
        let router = tonic::transport::Server::builder()
            .add_service(protos::pdpb::pd_server::PdServer::new(pd::PdService(state.clone())))
            .add_service(protos::keyspacepb::keyspace_server::KeyspaceServer::new(pd::PdService(state.clone())))
            .add_service(protos::tikvpb::tikv_server::TikvServer::new(kv::KvService(state.clone())));
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            if let Err(e) = router.serve_with_incoming_shutdown(incoming, shutdown).await {
                tracing::warn!(error = %e, "tikv protocol stand-in stopped");
            }
        });
        Ok(Self { state, stop: Some(stop) })
    }

    /// The PD endpoint to give a client (`127.0.0.1:<port>`).
    pub fn pd_endpoint(&self) -> String {
        self.state.addr.to_string()
    }

    /// The fault switches.
    pub fn faults(&self) -> &Faults {
        &self.state.faults
    }

    /// The number of keys stored (all keyspaces).
    pub fn len(&self) -> usize {
        self.state.map.lock().len()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A copy of the stored map (raw keys, keyspace prefixes included).
    pub fn snapshot(&self) -> BTreeMap<Vec<u8>, Vec<u8>> {
        self.state.map.lock().clone()
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
