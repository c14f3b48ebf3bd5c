//! The JSON-RPC methods: a thin layer from `exclave-protocol`'s trait to the engine.

use crate::{
    engine::{Engine, EngineError},
    metrics::{MethodLabel, Metrics},
};
use exclave_protocol::{
    Bytes, ErrorKind, ExclaveApiServer, ExclaveError, LeaseState, SignRequest, SignResponse, StatusResponse, VersionResponse, VrfRequest,
    VrfSignResponse, WireCrypto, WireKeyType, PROTOCOL_VERSION,
};
use jsonrpsee::types::ErrorObjectOwned;
use jsonrpsee::{
    core::{async_trait, RpcResult},
    Extensions,
};
use std::sync::Arc;

/// The identity of the client on a connection, put into every request's extensions by the
/// server.
#[derive(Clone, Debug)]
pub struct ClientIdentity {
    /// Its certificate's common name (`[[clients]] name`).
    pub name: String,
    /// SHA-256 of its certificate (checked against a `sha256` pin); `None` in plaintext dev mode.
    pub sha256: Option<[u8; 32]>,
}

/// The wire form of an engine error: its category's stable code, its message and its data. As
/// `sc-keystore` maps its errors into the keystore trait's categories, the engine's precise
/// errors are mapped here into the protocol's.
impl From<EngineError> for ExclaveError {
    fn from(e: EngineError) -> Self {
        ExclaveError { kind: e.kind(), message: e.to_string(), data: e.data() }
    }
}

impl From<EngineError> for ErrorObjectOwned {
    fn from(e: EngineError) -> Self {
        ExclaveError::from(e).into()
    }
}

/// The RPC handler.
pub struct Rpc {
    engine: Arc<Engine>,
    metrics: Metrics,
}

impl Rpc {
    /// Wrap an engine; every call is counted in `metrics` (`exclave_rpc_calls_total`).
    pub fn new(engine: Arc<Engine>, metrics: Metrics) -> Self {
        Self { engine, metrics }
    }

    /// The authenticated client of a call to `method` (its certificate checked against its
    /// pin, if it has one), counted.
    fn client<'e>(&self, ext: &'e Extensions, method: &'static str) -> Result<&'e str, ExclaveError> {
        let identity = ext
            .get::<ClientIdentity>()
            .ok_or_else(|| ExclaveError::new(ErrorKind::Unauthorised, "no authenticated client identity on this connection"))?;
        self.metrics.rpc_calls.get_or_create(&MethodLabel { method }).inc();
        if let Some(sha256) = &identity.sha256 {
            self.engine.check_certificate(&identity.name, sha256)?;
        }
        Ok(identity.name.as_str())
    }
}

#[async_trait]
impl ExclaveApiServer for Rpc {
    async fn version(&self) -> RpcResult<VersionResponse> {
        Ok(VersionResponse { version: env!("CARGO_PKG_VERSION").into(), protocol: PROTOCOL_VERSION })
    }

    async fn status(&self, ext: &Extensions) -> RpcResult<StatusResponse> {
        Ok(self.engine.status(self.client(ext, "status")?).await)
    }

    async fn public_keys(&self, ext: &Extensions, key_type: WireKeyType, crypto: WireCrypto) -> RpcResult<Vec<Bytes>> {
        Ok(self.engine.public_keys(self.client(ext, "publicKeys")?, key_type, Some(crypto))?)
    }

    async fn keys(&self, ext: &Extensions, key_type: WireKeyType) -> RpcResult<Vec<Bytes>> {
        Ok(self.engine.public_keys(self.client(ext, "keys")?, key_type, None)?)
    }

    async fn has_keys(&self, ext: &Extensions, keys: Vec<(Bytes, WireKeyType)>) -> RpcResult<bool> {
        Ok(self.engine.has_keys(self.client(ext, "hasKeys")?, &keys).await)
    }

    async fn generate_key(&self, ext: &Extensions, key_type: WireKeyType, crypto: WireCrypto, seed: Option<String>) -> RpcResult<Bytes> {
        Ok(self.engine.generate_key(self.client(ext, "generateKey")?, key_type, crypto, seed).await?)
    }

    async fn insert_key(&self, ext: &Extensions, key_type: WireKeyType, suri: String, public: Bytes) -> RpcResult<()> {
        Ok(self.engine.insert_key(self.client(ext, "insertKey")?, key_type, suri, public).await?)
    }

    async fn sign(&self, ext: &Extensions, request: SignRequest) -> RpcResult<SignResponse> {
        Ok(self.engine.sign(self.client(ext, "sign")?, request).await?)
    }

    async fn vrf_sign(&self, ext: &Extensions, request: VrfRequest) -> RpcResult<VrfSignResponse> {
        Ok(self.engine.vrf_sign(self.client(ext, "vrfSign")?, request).await?)
    }

    async fn vrf_pre_output(&self, ext: &Extensions, request: VrfRequest) -> RpcResult<Bytes> {
        Ok(self.engine.vrf_pre_output(self.client(ext, "vrfPreOutput")?, request).await?)
    }

    async fn lease(&self, ext: &Extensions, keys: Vec<(Bytes, WireKeyType)>) -> RpcResult<Vec<LeaseState>> {
        Ok(self.engine.lease(self.client(ext, "lease")?, &keys).await?)
    }
}
