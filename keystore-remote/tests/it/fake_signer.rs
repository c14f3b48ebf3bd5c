//! A scripted Exclave signer over plain HTTP on 127.0.0.1:0, and a builder for the
//! `RemoteKeystore` under test.
//!
//! Every request a fake receives is written, in arrival order, to a journal shared by all the
//! fakes of one [`Net`], so a test can assert which signer was asked what, and in which order.
//! `exclave_sign`, `exclave_vrfSign`, `exclave_vrfPreOutput` and `exclave_hasKeys` answer from
//! the signer's script (then from its default reply, `Ok` unless changed); `exclave_keys`
//! answers from its own script, then with the keys the fake is told it holds; `exclave_status`
//! reports the configured claim-store id (or never answers); `exclave_lease` reports no lease.

use codec::Encode;
use exclave_keystore_remote::{RemoteKeystore, RemoteKeystoreConfig, TlsFiles, VrfContext};
use exclave_protocol::{
    Bytes, ErrorKind, ExclaveApiServer, ExclaveError, LeaseState, SignOutcome, SignRequest, SignResponse, StatusResponse, VersionResponse,
    VrfRequest, VrfSignResponse, WireCrypto, WireKeyType, PROTOCOL_VERSION,
};
use jsonrpsee::{
    core::{async_trait, RpcResult},
    server::{Server, ServerHandle},
    types::ErrorObjectOwned,
    Extensions,
};
use parking_lot::Mutex;
use sp_core::{crypto::VrfSecret, sr25519, Pair};
use std::{
    collections::VecDeque,
    sync::Arc,
    time::{Duration, Instant},
};

/// The chain every keystore and fake in these tests serves.
pub(crate) const CHAIN: [u8; 32] = [0x42; 32];

/// How a fake answers one scripted request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Reply {
    /// Succeed (a signature of the right length made of the signer's tag byte; a real VRF
    /// signature; `true` for `hasKeys`; the held keys for `keys`).
    Ok,
    /// Answer with this Exclave error.
    Refuse(ErrorKind),
    /// Accept the request and never answer it.
    Hang,
}

impl Reply {
    /// The error reply for one of docs/api.md's numeric codes.
    pub(crate) fn code(code: i32) -> Reply {
        Reply::Refuse(ErrorKind::from_code(code).expect("an Exclave error code (1001..=1009)"))
    }
}

/// What `exclave_status` answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    /// This claim-store id (empty: the store has not answered yet).
    Store(String),
    /// Never answer.
    Hang,
}

/// One request as a fake received it.
#[derive(Clone, Debug)]
pub(crate) struct Call {
    /// The fake's name.
    pub signer: &'static str,
    /// The method, without the `exclave_` prefix.
    pub method: &'static str,
    /// For `sign`: the request.
    pub sign: Option<SignRequest>,
    /// For `vrfSign` / `vrfPreOutput`: the request.
    pub vrf: Option<VrfRequest>,
    /// When it arrived.
    pub at: Instant,
}

type Journal = Arc<Mutex<Vec<Call>>>;

struct State {
    name: &'static str,
    script: Mutex<VecDeque<Reply>>,
    default: Mutex<Reply>,
    keys_script: Mutex<VecDeque<Reply>>,
    status: Mutex<Status>,
    held: Vec<Vec<u8>>,
    has_keys: bool,
    vrf_pair: sr25519::Pair,
    journal: Journal,
}

impl State {
    fn log(&self, method: &'static str, sign: Option<SignRequest>, vrf: Option<VrfRequest>) {
        self.journal.lock().push(Call { signer: self.name, method, sign, vrf, at: Instant::now() });
    }

    fn next(&self) -> Reply {
        let scripted = self.script.lock().pop_front();
        scripted.unwrap_or_else(|| self.default.lock().clone())
    }

    /// The signature a fake named `name` returns for `crypto`.
    fn signature(&self, crypto: WireCrypto) -> Vec<u8> {
        signature_of(self.name, crypto)
    }
}

/// The bytes the fake named `name` signs with: its first letter, repeated.
pub(crate) fn signature_of(name: &str, crypto: WireCrypto) -> Vec<u8> {
    let len = if crypto == WireCrypto::Ecdsa { 65 } else { 64 };
    vec![name.as_bytes()[0]; len]
}

async fn answer<T>(reply: Reply, ok: impl FnOnce() -> RpcResult<T>) -> RpcResult<T> {
    match reply {
        Reply::Ok => ok(),
        Reply::Refuse(kind) => Err(ErrorObjectOwned::from(ExclaveError::new(kind, format!("scripted {}", kind.name())))),
        Reply::Hang => std::future::pending().await,
    }
}

fn refused(kind: ErrorKind, what: &str) -> ErrorObjectOwned {
    ExclaveError::new(kind, what).into()
}

struct Rpc(Arc<State>);

impl Rpc {
    fn vrf(&self, request: &VrfRequest) -> RpcResult<sr25519::vrf::VrfSignature> {
        let randomness = <[u8; 32]>::try_from(request.randomness.0.as_slice())
            .map_err(|_| refused(ErrorKind::BadRequest, "randomness is not 32 bytes"))?;
        let ctx = VrfContext { randomness, slot: request.slot, epoch: request.epoch };
        Ok(self.0.vrf_pair.vrf_sign(&exclave_policies::vrf_sign_data(&ctx)))
    }
}

#[async_trait]
impl ExclaveApiServer for Rpc {
    async fn version(&self) -> RpcResult<VersionResponse> {
        Ok(VersionResponse { version: "fake".into(), protocol: PROTOCOL_VERSION })
    }

    async fn status(&self, _: &Extensions) -> RpcResult<StatusResponse> {
        self.0.log("status", None, None);
        let status = self.0.status.lock().clone();
        let Status::Store(store_id) = status else { return std::future::pending().await };
        Ok(StatusResponse {
            signer_id: self.0.name.into(),
            chain: Bytes(CHAIN.to_vec()),
            store_backend: "fake".into(),
            store_ready: !store_id.is_empty(),
            keys: self.0.held.len(),
            client: "node".into(),
            store_id,
        })
    }

    async fn public_keys(&self, _: &Extensions, _: WireKeyType, _: WireCrypto) -> RpcResult<Vec<Bytes>> {
        self.0.log("publicKeys", None, None);
        Ok(self.0.held.iter().cloned().map(Bytes).collect())
    }

    async fn keys(&self, _: &Extensions, _: WireKeyType) -> RpcResult<Vec<Bytes>> {
        self.0.log("keys", None, None);
        let reply = self.0.keys_script.lock().pop_front().unwrap_or(Reply::Ok);
        answer(reply, || Ok(self.0.held.iter().cloned().map(Bytes).collect())).await
    }

    async fn has_keys(&self, _: &Extensions, _: Vec<(Bytes, WireKeyType)>) -> RpcResult<bool> {
        self.0.log("hasKeys", None, None);
        answer(self.0.next(), || Ok(self.0.has_keys)).await
    }

    async fn generate_key(&self, _: &Extensions, _: WireKeyType, _: WireCrypto, _: Option<String>) -> RpcResult<Bytes> {
        self.0.log("generateKey", None, None);
        Err(refused(ErrorKind::Unauthorised, "the fake generates no keys"))
    }

    async fn insert_key(&self, _: &Extensions, _: WireKeyType, _: String, _: Bytes) -> RpcResult<()> {
        self.0.log("insertKey", None, None);
        Err(refused(ErrorKind::Unauthorised, "the fake inserts no keys"))
    }

    async fn sign(&self, _: &Extensions, request: SignRequest) -> RpcResult<SignResponse> {
        let crypto = request.crypto;
        self.0.log("sign", Some(request), None);
        answer(self.0.next(), || Ok(SignResponse { signature: Bytes(self.0.signature(crypto)), outcome: SignOutcome::Signed })).await
    }

    async fn vrf_sign(&self, _: &Extensions, request: VrfRequest) -> RpcResult<VrfSignResponse> {
        self.0.log("vrfSign", None, Some(request.clone()));
        answer(self.0.next(), || {
            let sig = self.vrf(&request)?;
            Ok(VrfSignResponse { pre_output: Bytes(sig.pre_output.encode()), proof: Bytes(sig.proof.encode()) })
        })
        .await
    }

    async fn vrf_pre_output(&self, _: &Extensions, request: VrfRequest) -> RpcResult<Bytes> {
        self.0.log("vrfPreOutput", None, Some(request.clone()));
        answer(self.0.next(), || Ok(Bytes(self.vrf(&request)?.pre_output.encode()))).await
    }

    async fn lease(&self, _: &Extensions, _: Vec<(Bytes, WireKeyType)>) -> RpcResult<Vec<LeaseState>> {
        self.0.log("lease", None, None);
        Ok(Vec::new())
    }
}

/// The fakes of one test: a tokio runtime of their own (the keystore under test must be built
/// and called outside any async context) and their shared journal.
pub(crate) struct Net {
    runtime: tokio::runtime::Runtime,
    journal: Journal,
}

impl Net {
    pub(crate) fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("fake-signers")
            .enable_all()
            .build()
            .expect("a runtime for the fake signers");
        Self { runtime, journal: Journal::default() }
    }

    /// Start describing a fake signer called `name` (its first letter is its signature byte).
    pub(crate) fn signer(&self, name: &'static str) -> FakeBuilder<'_> {
        FakeBuilder {
            net: self,
            name,
            script: Vec::new(),
            keys_script: Vec::new(),
            status: Status::Store(String::new()),
            held: Vec::new(),
            has_keys: true,
            vrf_seed: [7; 32],
        }
    }

    /// Every request every fake of this net received, in arrival order.
    pub(crate) fn journal(&self) -> Vec<Call> {
        self.journal.lock().clone()
    }

    /// `signer.method` for each journaled call whose method is in `methods`, in order.
    pub(crate) fn trace(&self, methods: &[&str]) -> Vec<String> {
        self.journal().iter().filter(|c| methods.contains(&c.method)).map(|c| format!("{}.{}", c.signer, c.method)).collect()
    }

    /// The `exclave_sign` requests received, in order.
    pub(crate) fn sign_requests(&self) -> Vec<(&'static str, SignRequest)> {
        self.journal().into_iter().filter_map(|c| Some((c.signer, c.sign?))).collect()
    }

    /// Forget what was received so far.
    pub(crate) fn clear_journal(&self) {
        self.journal.lock().clear();
    }
}

/// A fake signer's set-up.
pub(crate) struct FakeBuilder<'n> {
    net: &'n Net,
    name: &'static str,
    script: Vec<Reply>,
    keys_script: Vec<Reply>,
    status: Status,
    held: Vec<Vec<u8>>,
    has_keys: bool,
    vrf_seed: [u8; 32],
}

impl FakeBuilder<'_> {
    /// The claim-store id `exclave_status` reports (default: empty, the store has not answered).
    pub(crate) fn store(mut self, id: &str) -> Self {
        self.status = Status::Store(id.into());
        self
    }

    /// What `exclave_status` answers.
    pub(crate) fn status(mut self, status: Status) -> Self {
        self.status = status;
        self
    }

    /// Answers to `sign`, `vrfSign`, `vrfPreOutput` and `hasKeys`, in order (then `Ok`).
    pub(crate) fn script(mut self, replies: impl IntoIterator<Item = Reply>) -> Self {
        self.script = replies.into_iter().collect();
        self
    }

    /// Answers to `keys`, in order (then the held keys).
    pub(crate) fn keys_script(mut self, replies: impl IntoIterator<Item = Reply>) -> Self {
        self.keys_script = replies.into_iter().collect();
        self
    }

    /// A public key this signer lists in `keys` and `publicKeys`.
    pub(crate) fn holds(mut self, public: &[u8]) -> Self {
        self.held.push(public.to_vec());
        self
    }

    /// What a successful `hasKeys` answers (default `true`).
    pub(crate) fn has_keys(mut self, answer: bool) -> Self {
        self.has_keys = answer;
        self
    }

    /// The seed of the sr25519 key the fake makes VRF signatures with (default: [`vrf_pair`]'s).
    pub(crate) fn vrf_seed(mut self, seed: [u8; 32]) -> Self {
        self.vrf_seed = seed;
        self
    }

    pub(crate) fn start(self) -> Fake {
        let state = Arc::new(State {
            name: self.name,
            script: Mutex::new(self.script.into()),
            default: Mutex::new(Reply::Ok),
            keys_script: Mutex::new(self.keys_script.into()),
            status: Mutex::new(self.status),
            held: self.held,
            has_keys: self.has_keys,
            vrf_pair: sr25519::Pair::from_seed(&self.vrf_seed),
            journal: self.net.journal.clone(),
        });
        let rpc = Rpc(state.clone());
        let (url, handle) = self.net.runtime.block_on(async move {
            let server = Server::builder().build("127.0.0.1:0").await.expect("bind a fake signer on 127.0.0.1:0");
            let addr = server.local_addr().expect("the fake signer's address");
            (format!("http://{addr}"), server.start(rpc.into_rpc()))
        });
        Fake { url, state, handle }
    }
}

/// The sr25519 key pair fakes make VRF signatures with unless told otherwise.
pub(crate) fn vrf_pair() -> sr25519::Pair {
    sr25519::Pair::from_seed(&[7; 32])
}

/// A running fake signer (stopped when dropped).
pub(crate) struct Fake {
    pub url: String,
    state: Arc<State>,
    handle: ServerHandle,
}

impl Fake {
    /// The reply once the script is used up.
    pub(crate) fn set_default(&self, reply: Reply) {
        *self.state.default.lock() = reply;
    }

    /// Change what `exclave_status` answers.
    pub(crate) fn set_status(&self, status: Status) {
        *self.state.status.lock() = status;
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        let _ = self.handle.stop();
    }
}

/// A signer that does not answer: a bound TCP listener that never accepts (the kernel completes
/// the handshake into its backlog, and then nothing).
pub(crate) struct Silent {
    pub url: String,
    _listener: std::net::TcpListener,
}

impl Silent {
    pub(crate) fn new() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a silent listener on 127.0.0.1:0");
        let url = format!("http://{}", listener.local_addr().expect("the silent listener's address"));
        Self { url, _listener: listener }
    }
}

/// The URL of a loopback port nobody listens on (connection refused).
pub(crate) fn closed_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a port to close");
    let addr = listener.local_addr().expect("the port's address");
    drop(listener);
    format!("http://{addr}")
}

/// The `RemoteKeystore` under test.
pub(crate) struct KeystoreBuilder {
    config: RemoteKeystoreConfig,
}

impl KeystoreBuilder {
    /// No signers yet, a 2 s timeout, no TLS, no pinned store id.
    pub(crate) fn new() -> Self {
        Self { config: RemoteKeystoreConfig { urls: Vec::new(), chain: CHAIN, tls: None, timeout: Duration::from_secs(2), store_id: None } }
    }

    /// Add a signer URL (preferred in the order added).
    pub(crate) fn url(mut self, url: &str) -> Self {
        self.config.urls.push(url.into());
        self
    }

    /// The deadline for one attempt at one signer.
    pub(crate) fn timeout(mut self, timeout: Duration) -> Self {
        self.config.timeout = timeout;
        self
    }

    /// Pin the claim-store id every signer must report.
    pub(crate) fn pin(mut self, store_id: &str) -> Self {
        self.config.store_id = Some(store_id.into());
        self
    }

    /// Mutual-TLS files.
    pub(crate) fn tls(mut self, files: TlsFiles) -> Self {
        self.config.tls = Some(files);
        self
    }

    pub(crate) fn try_build(self) -> Result<RemoteKeystore, exclave_keystore_remote::RemoteError> {
        RemoteKeystore::new(self.config)
    }

    pub(crate) fn build(self) -> RemoteKeystore {
        self.try_build().expect("a keystore for the fake signers")
    }
}
