//! The TiKV side: raw reads and writes on the one in-memory map, each under its one lock (so a
//! compare-and-swap is atomic, as TiKV's per-key latch makes it), with the fault switches
//! applied first.

use crate::{
    pd::{leader_peer, REGION_ID},
    protos::{errorpb, kvrpcpb, tikvpb::tikv_server::Tikv},
    State,
};
use std::{ops::Bound, sync::Arc};
use tonic::{Request, Response, Status};

pub(crate) struct KvService(pub(crate) Arc<State>);

/// A `NotLeader` region error naming the (only) peer as leader, so the client retries at once.
fn not_leader() -> errorpb::Error {
    errorpb::Error {
        message: "stand-in: not leader (injected)".into(),
        not_leader: Some(errorpb::NotLeader { region_id: REGION_ID, leader: Some(leader_peer()) }),
        ..Default::default()
    }
}

impl KvService {
    /// Applies the freeze and NotLeader switches: `Some(error)` answers the request with it.
    async fn gate(&self) -> Option<errorpb::Error> {
        self.0.faults.gate_store().await;
        self.0.faults.take_not_leader().then(not_leader)
    }
}

/// One range of a scan: `[start, end)` (an empty `end` is unbounded), at most `limit` pairs;
/// a reverse scan walks down from below `start` to `end`, as TiKV's raw scan does.
struct Range<'a> {
    start: &'a [u8],
    end: &'a [u8],
    limit: u32,
    key_only: bool,
    reverse: bool,
}

type Map = std::collections::BTreeMap<Vec<u8>, Vec<u8>>;

fn scan(map: &Map, r: &Range<'_>) -> Vec<kvrpcpb::KvPair> {
    let limit = usize::try_from(r.limit).unwrap_or(usize::MAX);
    let open_end = |end: &[u8], inclusive: bool| match (end.is_empty(), inclusive) {
        (true, _) => Bound::Unbounded,
        (false, true) => Bound::Included(end.to_vec()),
        (false, false) => Bound::Excluded(end.to_vec()),
    };
    let pair = |(k, v): (&Vec<u8>, &Vec<u8>)| kvrpcpb::KvPair {
        key: k.clone(),
        value: if r.key_only { Vec::new() } else { v.clone() },
        ..Default::default()
    };
    if r.reverse {
        let range = map.range((open_end(r.end, true), Bound::Excluded(r.start.to_vec())));
        return range.rev().take(limit).map(pair).collect();
    }
    map.range((Bound::Included(r.start.to_vec()), open_end(r.end, false))).take(limit).map(pair).collect()
}

#[tonic::async_trait]
impl Tikv for KvService {
    async fn raw_get(&self, request: Request<kvrpcpb::RawGetRequest>) -> Result<Response<kvrpcpb::RawGetResponse>, Status> {
        if let Some(region_error) = self.gate().await {
            return Ok(Response::new(kvrpcpb::RawGetResponse { region_error: Some(region_error), ..Default::default() }));
        }
        let value = self.0.map.lock().get(&request.get_ref().key).cloned();
        Ok(Response::new(kvrpcpb::RawGetResponse { not_found: value.is_none(), value: value.unwrap_or_default(), ..Default::default() }))
    }

    async fn raw_batch_get(&self, request: Request<kvrpcpb::RawBatchGetRequest>) -> Result<Response<kvrpcpb::RawBatchGetResponse>, Status> {
        if let Some(region_error) = self.gate().await {
            return Ok(Response::new(kvrpcpb::RawBatchGetResponse { region_error: Some(region_error), ..Default::default() }));
        }
        let map = self.0.map.lock();
        let pairs = request
            .get_ref()
            .keys
            .iter()
            .filter_map(|k| map.get(k).map(|v| kvrpcpb::KvPair { key: k.clone(), value: v.clone(), ..Default::default() }))
            .collect();
        Ok(Response::new(kvrpcpb::RawBatchGetResponse { pairs, ..Default::default() }))
    }

    async fn raw_put(&self, request: Request<kvrpcpb::RawPutRequest>) -> Result<Response<kvrpcpb::RawPutResponse>, Status> {
        if let Some(region_error) = self.gate().await {
            return Ok(Response::new(kvrpcpb::RawPutResponse { region_error: Some(region_error), ..Default::default() }));
        }
        let request = request.into_inner();
        self.0.map.lock().insert(request.key, request.value);
        Ok(Response::new(kvrpcpb::RawPutResponse::default()))
    }

    async fn raw_delete(&self, request: Request<kvrpcpb::RawDeleteRequest>) -> Result<Response<kvrpcpb::RawDeleteResponse>, Status> {
        if let Some(region_error) = self.gate().await {
            return Ok(Response::new(kvrpcpb::RawDeleteResponse { region_error: Some(region_error), ..Default::default() }));
        }
        self.0.map.lock().remove(&request.get_ref().key);
        Ok(Response::new(kvrpcpb::RawDeleteResponse::default()))
    }

    async fn raw_scan(&self, request: Request<kvrpcpb::RawScanRequest>) -> Result<Response<kvrpcpb::RawScanResponse>, Status> {
        if let Some(region_error) = self.gate().await {
            return Ok(Response::new(kvrpcpb::RawScanResponse { region_error: Some(region_error), ..Default::default() }));
        }
        let q = request.get_ref();
        let range = Range { start: &q.start_key, end: &q.end_key, limit: q.limit, key_only: q.key_only, reverse: q.reverse };
        let kvs = scan(&self.0.map.lock(), &range);
        Ok(Response::new(kvrpcpb::RawScanResponse { kvs, ..Default::default() }))
    }

    async fn raw_batch_scan(
        &self,
        request: Request<kvrpcpb::RawBatchScanRequest>,
    ) -> Result<Response<kvrpcpb::RawBatchScanResponse>, Status> {
        if let Some(region_error) = self.gate().await {
            return Ok(Response::new(kvrpcpb::RawBatchScanResponse { region_error: Some(region_error), ..Default::default() }));
        }
        let q = request.get_ref();
        let map = self.0.map.lock();
        let kvs = q
            .ranges
            .iter()
            .flat_map(|kr| {
                let range = Range { start: &kr.start_key, end: &kr.end_key, limit: q.each_limit, key_only: q.key_only, reverse: q.reverse };
                scan(&map, &range)
            })
            .collect();
        Ok(Response::new(kvrpcpb::RawBatchScanResponse { kvs, ..Default::default() }))
    }

    async fn raw_compare_and_swap(&self, request: Request<kvrpcpb::RawCasRequest>) -> Result<Response<kvrpcpb::RawCasResponse>, Status> {
        if let Some(region_error) = self.gate().await {
            return Ok(Response::new(kvrpcpb::RawCasResponse { region_error: Some(region_error), ..Default::default() }));
        }
        let request = request.into_inner();
        self.0.faults.count_cas();
        let response = {
            let mut map = self.0.map.lock();
            let previous = map.get(&request.key).cloned();
            let matches = match &previous {
                None => request.previous_not_exist,
                Some(v) => !request.previous_not_exist && *v == request.previous_value,
            };
            if matches {
                map.insert(request.key, request.value);
            }
            kvrpcpb::RawCasResponse {
                succeed: matches,
                previous_not_exist: previous.is_none(),
                previous_value: previous.unwrap_or_default(),
                ..Default::default()
            }
        };
        if self.0.faults.take_drop_reply() {
            return Err(Status::unavailable("stand-in: reply dropped after the write was applied (injected)"));
        }
        Ok(Response::new(response))
    }
}
