//! The JSON-RPC request path of the signer: an HTTP body handed to jsonrpsee's server service
//! built as `signer/src/server.rs` builds it (HTTP only, batches of at most 16, 256 KiB
//! requests, 1 MiB responses), dispatching to `exclave_protocol::ExclaveApiServer` — the same
//! generated method table and parameter parsing the signer runs — with a stub behind it
//! instead of the engine (no keys, no claim store). The bytes are also deserialised straight
//! into the wire types a method takes (`SignRequest`, `VrfRequest`, the `(public, keyType)`
//! pairs).
//!
//! Asserts: no panic; the answer is HTTP 200 with an empty body or JSON-RPC 2.0 JSON (an object
//! or an array of objects, each with exactly one of `result` and `error`), or HTTP 400 with one
//! parse error (-32700) for a body that is no JSON object or array; the number of
//! `result`s is exactly the number of method calls the stub received (no method runs without
//! an answer, no answer without its method); every request value a method received, and every
//! wire value deserialised directly, serialises back to JSON that deserialises to an equal
//! value.
#![no_main]

use exclave_protocol::{
    Bytes, ExclaveApiServer, LeaseState, SignOutcome, SignRequest, SignResponse, StatusResponse, VersionResponse, VrfRequest,
    VrfSignResponse, WireCrypto, WireKeyType, PROTOCOL_VERSION,
};
use http_body_util::BodyExt;
use jsonrpsee::{
    core::{async_trait, RpcResult},
    server::{stop_channel, BatchRequestConfig, HttpBody, Methods, Server, ServerHandle, StopHandle},
    Extensions,
};
use libfuzzer_sys::fuzz_target;
use serde::{de::DeserializeOwned, Serialize};
use serde_json::Value;
use std::sync::{
    atomic::{AtomicUsize, Ordering},
    OnceLock,
};

/// Method calls the stub received in the current input.
static CALLS: AtomicUsize = AtomicUsize::new(0);

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(v: &T) {
    let json = serde_json::to_string(v).expect("a wire value serialises");
    let back: T = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{v:?} serialised as {json} does not read back: {e}"));
    assert_eq!(&back, v, "{json}");
}

fn called() {
    CALLS.fetch_add(1, Ordering::SeqCst);
}

/// The methods, answering without an engine.
struct Stub;

#[async_trait]
impl ExclaveApiServer for Stub {
    async fn version(&self) -> RpcResult<VersionResponse> {
        called();
        Ok(VersionResponse { version: "fuzz".into(), protocol: PROTOCOL_VERSION })
    }

    async fn status(&self, _: &Extensions) -> RpcResult<StatusResponse> {
        called();
        Ok(StatusResponse {
            signer_id: "fuzz".into(),
            chain: Bytes(vec![0; 32]),
            store_backend: "none".into(),
            store_ready: true,
            keys: 0,
            client: "fuzz".into(),
            store_id: String::new(),
        })
    }

    async fn public_keys(&self, _: &Extensions, key_type: WireKeyType, crypto: WireCrypto) -> RpcResult<Vec<Bytes>> {
        called();
        round_trip(&(key_type, crypto));
        Ok(vec![])
    }

    async fn keys(&self, _: &Extensions, key_type: WireKeyType) -> RpcResult<Vec<Bytes>> {
        called();
        round_trip(&key_type);
        Ok(vec![])
    }

    async fn has_keys(&self, _: &Extensions, keys: Vec<(Bytes, WireKeyType)>) -> RpcResult<bool> {
        called();
        round_trip(&keys);
        Ok(false)
    }

    async fn generate_key(&self, _: &Extensions, key_type: WireKeyType, crypto: WireCrypto, seed: Option<String>) -> RpcResult<Bytes> {
        called();
        round_trip(&(key_type, crypto, seed));
        Ok(Bytes(vec![]))
    }

    async fn insert_key(&self, _: &Extensions, key_type: WireKeyType, suri: String, public: Bytes) -> RpcResult<()> {
        called();
        round_trip(&(key_type, suri, public));
        Ok(())
    }

    async fn sign(&self, _: &Extensions, request: SignRequest) -> RpcResult<SignResponse> {
        called();
        round_trip(&request);
        Ok(SignResponse { signature: Bytes(vec![]), outcome: SignOutcome::Unclaimed })
    }

    async fn vrf_sign(&self, _: &Extensions, request: VrfRequest) -> RpcResult<VrfSignResponse> {
        called();
        round_trip(&request);
        Ok(VrfSignResponse { pre_output: Bytes(vec![]), proof: Bytes(vec![]) })
    }

    async fn vrf_pre_output(&self, _: &Extensions, request: VrfRequest) -> RpcResult<Bytes> {
        called();
        round_trip(&request);
        Ok(Bytes(vec![]))
    }

    async fn lease(&self, _: &Extensions, keys: Vec<(Bytes, WireKeyType)>) -> RpcResult<Vec<LeaseState>> {
        called();
        round_trip(&keys);
        Ok(vec![])
    }
}

struct State {
    rt: tokio::runtime::Runtime,
    methods: Methods,
    stop: StopHandle,
    _server: ServerHandle,
}

fn state() -> &'static State {
    static STATE: OnceLock<State> = OnceLock::new();
    STATE.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let (stop, server) = stop_channel();
        State { rt, methods: Stub.into_rpc().into(), stop, _server: server }
    })
}

/// Direct deserialisation into the wire types a method takes.
fn wire_types(data: &[u8]) {
    if let Ok(r) = serde_json::from_slice::<SignRequest>(data) {
        round_trip(&r);
    }
    if let Ok(r) = serde_json::from_slice::<VrfRequest>(data) {
        round_trip(&r);
    }
    if let Ok(r) = serde_json::from_slice::<Vec<(Bytes, WireKeyType)>>(data) {
        round_trip(&r);
    }
}

/// The JSON-RPC answers in a response body: one object, or a batch.
fn answers(body: &[u8]) -> Vec<Value> {
    if body.is_empty() {
        return vec![];
    }
    let v: Value =
        serde_json::from_slice(body).unwrap_or_else(|e| panic!("the answer is not JSON ({e}): {}", String::from_utf8_lossy(body)));
    let all = match v {
        Value::Array(a) => a,
        other => vec![other],
    };
    for a in &all {
        assert_eq!(a.get("jsonrpc"), Some(&Value::from("2.0")), "{a}");
        assert!(a.get("result").is_some() != a.get("error").is_some(), "neither or both of result and error: {a}");
    }
    all
}

fuzz_target!(|data: &[u8]| {
    wire_types(data);
    let st = state();
    // As signer/src/server.rs `serve` builds it (with the default ServerLimits).
    let svc = Server::builder()
        .max_request_body_size(256 * 1024)
        .max_response_body_size(1024 * 1024)
        .set_batch_request_config(BatchRequestConfig::Limit(16))
        .http_only()
        .to_service_builder()
        .build(st.methods.clone(), st.stop.clone());
    let req = http::Request::builder()
        .method("POST")
        .uri("/")
        .header("content-type", "application/json")
        .body(HttpBody::from(data.to_vec()))
        .expect("request");
    CALLS.store(0, Ordering::SeqCst);
    let (status, body) = st.rt.block_on(async move {
        let resp = tower::ServiceExt::oneshot(svc, req).await.expect("the service answers");
        let status = resp.status();
        (status, resp.into_body().collect().await.expect("body").to_bytes())
    });
    let answers = answers(&body);
    if status == http::StatusCode::BAD_REQUEST {
        // A body that is not a JSON object or array at all (jsonrpsee's `read_body`).
        assert_eq!(answers.len(), 1, "{}", String::from_utf8_lossy(&body));
        assert_eq!(answers[0]["error"]["code"], Value::from(-32700), "{}", String::from_utf8_lossy(&body));
    } else {
        assert_eq!(status, http::StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    }
    let results = answers.iter().filter(|a| a.get("result").is_some()).count();
    assert_eq!(results, CALLS.load(Ordering::SeqCst), "results vs method calls: {}", String::from_utf8_lossy(&body));
});
