//! The PD side: one member (this server), one store (this server), one region covering every
//! key, keyspaces numbered in the order they are first loaded.

use crate::{
    protos::{
        keyspacepb::{self, keyspace_server::Keyspace},
        metapb,
        pdpb::{self, pd_server::Pd},
    },
    State, CLUSTER_ID,
};
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// The only store's id, region id and the leader peer's id.
pub(crate) const STORE_ID: u64 = 1;
pub(crate) const REGION_ID: u64 = 2;
pub(crate) const PEER_ID: u64 = 3;

pub(crate) struct PdService(pub(crate) Arc<State>);

fn header() -> Option<pdpb::ResponseHeader> {
    Some(pdpb::ResponseHeader { cluster_id: CLUSTER_ID, error: None })
}

pub(crate) fn leader_peer() -> metapb::Peer {
    metapb::Peer { id: PEER_ID, store_id: STORE_ID, ..Default::default() }
}

fn region() -> metapb::Region {
    metapb::Region {
        id: REGION_ID,
        start_key: Vec::new(),
        end_key: Vec::new(),
        region_epoch: Some(metapb::RegionEpoch { conf_ver: 1, version: 1 }),
        peers: vec![leader_peer()],
        ..Default::default()
    }
}

impl PdService {
    fn member(&self) -> pdpb::Member {
        let url = format!("http://{}", self.0.addr);
        pdpb::Member { name: "standin-pd".into(), member_id: 1, peer_urls: vec![url.clone()], client_urls: vec![url], ..Default::default() }
    }

    fn store(&self) -> metapb::Store {
        metapb::Store { id: STORE_ID, address: self.0.addr.to_string(), ..Default::default() }
    }

    fn region_response(&self) -> pdpb::GetRegionResponse {
        pdpb::GetRegionResponse { header: header(), region: Some(region()), leader: Some(leader_peer()), ..Default::default() }
    }
}

#[tonic::async_trait]
impl Pd for PdService {
    async fn get_members(&self, _: Request<pdpb::GetMembersRequest>) -> Result<Response<pdpb::GetMembersResponse>, Status> {
        self.0.faults.gate_pd().await;
        let me = self.member();
        Ok(Response::new(pdpb::GetMembersResponse {
            header: header(),
            members: vec![me.clone()],
            leader: Some(me.clone()),
            etcd_leader: Some(me),
            ..Default::default()
        }))
    }

    async fn get_region(&self, _: Request<pdpb::GetRegionRequest>) -> Result<Response<pdpb::GetRegionResponse>, Status> {
        self.0.faults.gate_pd().await;
        Ok(Response::new(self.region_response()))
    }

    async fn get_region_by_id(&self, request: Request<pdpb::GetRegionByIdRequest>) -> Result<Response<pdpb::GetRegionResponse>, Status> {
        self.0.faults.gate_pd().await;
        if request.get_ref().region_id != REGION_ID {
            return Ok(Response::new(pdpb::GetRegionResponse { header: header(), ..Default::default() }));
        }
        Ok(Response::new(self.region_response()))
    }

    async fn scan_regions(&self, _: Request<pdpb::ScanRegionsRequest>) -> Result<Response<pdpb::ScanRegionsResponse>, Status> {
        self.0.faults.gate_pd().await;
        Ok(Response::new(pdpb::ScanRegionsResponse {
            header: header(),
            region_metas: vec![region()],
            leaders: vec![leader_peer()],
            regions: vec![pdpb::Region { region: Some(region()), leader: Some(leader_peer()), ..Default::default() }],
        }))
    }

    async fn get_store(&self, _: Request<pdpb::GetStoreRequest>) -> Result<Response<pdpb::GetStoreResponse>, Status> {
        self.0.faults.gate_pd().await;
        Ok(Response::new(pdpb::GetStoreResponse { header: header(), store: Some(self.store()), stats: None }))
    }

    async fn get_all_stores(&self, _: Request<pdpb::GetAllStoresRequest>) -> Result<Response<pdpb::GetAllStoresResponse>, Status> {
        self.0.faults.gate_pd().await;
        Ok(Response::new(pdpb::GetAllStoresResponse { header: header(), stores: vec![self.store()] }))
    }
}

#[tonic::async_trait]
impl Keyspace for PdService {
    async fn load_keyspace(
        &self,
        request: Request<keyspacepb::LoadKeyspaceRequest>,
    ) -> Result<Response<keyspacepb::LoadKeyspaceResponse>, Status> {
        self.0.faults.gate_pd().await;
        let name = request.into_inner().name;
        let id = {
            let mut names = self.0.keyspaces.lock();
            let index = names.iter().position(|n| *n == name).unwrap_or_else(|| {
                names.push(name.clone());
                names.len() - 1
            });
            u32::try_from(index + 1).map_err(|_| Status::resource_exhausted("too many keyspaces"))?
        };
        let meta = keyspacepb::KeyspaceMeta { id, name, state: keyspacepb::KeyspaceState::Enabled as i32, ..Default::default() };
        Ok(Response::new(keyspacepb::LoadKeyspaceResponse { header: header(), keyspace: Some(meta) }))
    }
}
