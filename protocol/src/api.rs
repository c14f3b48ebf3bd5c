//! The method trait (jsonrpsee `#[rpc]`): the server trait the signer implements and the client
//! the node uses. Behind the `rpc` feature, so that crates needing only the wire types (the
//! audit verifier, the interchange format) build without jsonrpsee.

use crate::*;
use jsonrpsee::{core::RpcResult, proc_macros::rpc};

/// The Exclave signer API. Every method is under the `exclave_` namespace.
#[rpc(server, client, namespace = "exclave")]
pub trait ExclaveApi {
    /// Software and protocol version.
    #[method(name = "version")]
    async fn version(&self) -> RpcResult<VersionResponse>;

    /// Signer status: chain, claim store backend and readiness, key count, the caller's identity.
    #[method(name = "status", with_extensions)]
    async fn status(&self) -> RpcResult<StatusResponse>;

    /// Public keys of one key type and scheme.
    #[method(name = "publicKeys", with_extensions)]
    async fn public_keys(&self, key_type: WireKeyType, crypto: WireCrypto) -> RpcResult<Vec<Bytes>>;

    /// Raw public keys of one key type, every scheme (the `Keystore::keys` call).
    #[method(name = "keys", with_extensions)]
    async fn keys(&self, key_type: WireKeyType) -> RpcResult<Vec<Bytes>>;

    /// Whether the signer holds the private key of every `(public, key type)` pair.
    #[method(name = "hasKeys", with_extensions)]
    async fn has_keys(&self, keys: Vec<(Bytes, WireKeyType)>) -> RpcResult<bool>;

    /// Generate a key (random, or from a dev seed such as `//Alice` where the signer allows it).
    #[method(name = "generateKey", with_extensions)]
    async fn generate_key(&self, key_type: WireKeyType, crypto: WireCrypto, seed: Option<String>) -> RpcResult<Bytes>;

    /// Insert a key from a secret URI; `public` must match what the URI derives.
    #[method(name = "insertKey", with_extensions)]
    async fn insert_key(&self, key_type: WireKeyType, suri: String, public: Bytes) -> RpcResult<()>;

    /// Sign a message, claiming its duty first where the key type is protected.
    #[method(name = "sign", with_extensions)]
    async fn sign(&self, request: SignRequest) -> RpcResult<SignResponse>;

    /// A BABE VRF signature over the transcript the signer rebuilds from `(randomness, slot, epoch)`.
    #[method(name = "vrfSign", with_extensions)]
    async fn vrf_sign(&self, request: VrfRequest) -> RpcResult<VrfSignResponse>;

    /// The VRF pre-output for the same input (deterministic, no proof).
    #[method(name = "vrfPreOutput", with_extensions)]
    async fn vrf_pre_output(&self, request: VrfRequest) -> RpcResult<Bytes>;

    /// Take or renew, for the calling node, the active-node lease of each validator one of
    /// `keys` (the BABE and GRANDPA keys the node uses) belongs to, and report each lease. Nodes
    /// call it every `renewEveryMs`.
    #[method(name = "lease", with_extensions)]
    async fn lease(&self, keys: Vec<(Bytes, WireKeyType)>) -> RpcResult<Vec<LeaseState>>;
}
