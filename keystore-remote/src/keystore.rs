//! `RemoteKeystore`: the `sp_keystore::Keystore` implementation.

use crate::{
    cache::Bounded,
    client::{Clients, RemoteKeystoreConfig},
    error::RemoteError,
    held::{Held, HeldKeys},
};
use exclave_policies::{vrf_sign_data, VrfContext};
use exclave_protocol::{Bytes, ErrorKind, ExclaveApiClient, LeaseState, SignContext, SignRequest, VrfRequest, WireCrypto, WireKeyType};
use parking_lot::{Mutex, RwLock};
use sp_core::{
    crypto::{KeyTypeId, VrfPublic},
    ecdsa, ed25519, sr25519,
    sr25519::vrf::{VrfInput, VrfPreOutput, VrfSignData, VrfSignature},
};
use sp_keystore::{Error, Keystore};
use std::{
    future::Future,
    sync::Arc,
    time::{Duration, Instant},
};

/// Resolves a VRF input the candidate cache does not know into the inputs it was built from.
pub type VrfResolver = Arc<dyn Fn(&VrfInput) -> Option<VrfContext> + Send + Sync>;

/// How many pre-seal headers, commitments and VRF candidates are remembered.
const CONTEXT_CAPACITY: usize = 4096;

/// A keystore whose keys live in Exclave signers.
pub struct RemoteKeystore {
    runtime: Option<tokio::runtime::Runtime>,
    clients: Arc<Clients>,
    chain: [u8; 32],
    seals: Mutex<Bounded<[u8; 32], Vec<u8>>>,
    commitments: Mutex<Bounded<[u8; 32], Vec<u8>>>,
    vrf: Mutex<Bounded<[u8; 32], VrfContext>>,
    resolver: RwLock<Option<VrfResolver>>,
    held: HeldKeys,
    lease: Arc<Mutex<Vec<LeaseState>>>,
    interest: crate::lease::Interest,
}

/// A fingerprint of a VRF input's transcript: a challenge drawn from a clone of it.
pub fn vrf_fingerprint(input: &VrfInput) -> [u8; 32] {
    let mut transcript = input.0.clone();
    let mut out = [0u8; 32];
    transcript.challenge_bytes(b"exclave-vrf-fingerprint", &mut out);
    out
}

fn key_type(kt: KeyTypeId) -> WireKeyType {
    WireKeyType(kt.0)
}

/// Key types whose refusals the node treats as "cannot sign" (skip the slot, log a warning).
fn refusal_is_soft(kt: KeyTypeId) -> bool {
    matches!(&kt.0, b"babe" | b"imon" | b"beef" | b"audi")
}

/// GRANDPA ends its voter, an essential task, when a vote cannot be signed: the whole node shuts
/// down. So a vote that no signer could answer (unreachable, or its claim store unavailable:
/// nothing was signed) is retried, identically, for this long. A repeat is safe: a signer that
/// did sign the first attempt answers the repeat with the stored signature.
const VOTE_RETRY_FOR: Duration = Duration::from_secs(30);
/// Pause between two attempts at a vote.
const VOTE_RETRY_EVERY: Duration = Duration::from_millis(500);

fn failure_is_fatal(kt: KeyTypeId) -> bool {
    kt.0 == *b"gran"
}

impl RemoteKeystore {
    /// Start the private runtime and build one client per signer URL.
    pub fn new(config: RemoteKeystoreConfig) -> Result<Self, RemoteError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("exclave-keystore")
            .enable_all()
            .build()
            .map_err(|e| RemoteError::Config(format!("starting the keystore runtime: {e}")))?;
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let cfg = config.clone();
        runtime.spawn(async move {
            let _ = tx.send(Clients::build(&cfg));
        });
        let built = rx.recv().unwrap_or_else(|_| Err(RemoteError::Config("client set-up was dropped".into())));
        let clients = match built {
            Ok(clients) => clients,
            Err(e) => {
                // Dropping a runtime inside the node's async context panics: shut it down aside.
                runtime.shutdown_background();
                return Err(e);
            }
        };
        let clients = Arc::new(clients);
        let lease = Arc::new(Mutex::new(Vec::new()));
        let interest = crate::lease::Interest::default();
        runtime.spawn(crate::lease::keepalive(clients.clone(), interest.clone(), lease.clone()));
        Ok(Self {
            runtime: Some(runtime),
            clients,
            chain: config.chain,
            seals: Mutex::new(Bounded::new(CONTEXT_CAPACITY)),
            commitments: Mutex::new(Bounded::new(CONTEXT_CAPACITY)),
            vrf: Mutex::new(Bounded::new(CONTEXT_CAPACITY)),
            resolver: RwLock::new(None),
            held: HeldKeys::default(),
            lease,
            interest,
        })
    }

    /// The active-node leases as the last `exclave_lease` call reported them (renewed in the
    /// background every `renewEveryMs`): whether this node is active for each validator whose
    /// keys the signers hold. Empty until the first answer, or when the signers run no lease.
    pub fn lease_states(&self) -> Vec<LeaseState> {
        self.lease.lock().clone()
    }

    /// Remember a SCALE pre-seal header, so that signing its blake2_256 hash with a `babe` key
    /// carries the header to the signer.
    pub fn note_seal_header(&self, header: Vec<u8>) {
        let hash = sp_crypto_hashing::blake2_256(&header);
        self.seals.lock().insert(hash, header);
    }

    /// Remember a SCALE BEEFY commitment, so that `ecdsa_sign_prehashed` of its keccak_256
    /// carries it to the signer.
    pub fn note_beefy_commitment(&self, commitment: Vec<u8>) {
        let hash = sp_crypto_hashing::keccak_256(&commitment);
        self.commitments.lock().insert(hash, commitment);
    }

    /// Remember the inputs of BABE VRF transcripts the node may ask to sign.
    pub fn note_vrf_candidates(&self, candidates: impl IntoIterator<Item = VrfContext>) {
        let mut vrf = self.vrf.lock();
        for ctx in candidates {
            vrf.insert(vrf_fingerprint(vrf_sign_data(&ctx).as_ref()), ctx);
        }
    }

    /// Install a resolver consulted when a VRF input is not among the noted candidates.
    pub fn set_vrf_resolver(&self, resolver: VrfResolver) {
        *self.resolver.write() = Some(resolver);
    }

    /// Whether the signers hold `public` under `kt`, from their key list cached on the node
    /// (`crate::held`): keys they do not hold are answered here, without a round trip, so
    /// BABE's VRF per authority and GRANDPA's and BEEFY's `has_keys` per voter cost round trips
    /// only for held keys. `Unknown` (the list could not be fetched) counts as not held.
    fn holds(&self, kt: KeyTypeId, public: &[u8]) -> Held {
        self.held.lookup(kt, public, || {
            self.rpc(move |c| async move { c.keys(key_type(kt)).await }).map(|keys| keys.into_iter().map(|b| b.0).collect())
        })
    }

    /// Remember that the node asked about a BABE or GRANDPA key the signers hold (for the lease
    /// keep-alive).
    fn note_interest(&self, kt: KeyTypeId, public: &[u8]) {
        if crate::lease::gated(kt.0) && self.holds(kt, public) == Held::Yes {
            crate::lease::note_interest(&self.interest, kt.0, public);
        }
    }

    fn forget_held(&self, kt: KeyTypeId) {
        self.held.forget(kt);
    }

    fn resolve_vrf(&self, input: &VrfInput) -> Option<VrfContext> {
        let hit = self.vrf.lock().get(&vrf_fingerprint(input));
        hit.or_else(|| self.resolver.read().as_ref().and_then(|r| r(input)))
    }

    fn rpc<T, F, Fut>(&self, f: F) -> Result<T, RemoteError>
    where
        T: Send + 'static,
        F: Fn(jsonrpsee::http_client::HttpClient) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, jsonrpsee::core::ClientError>> + Send,
    {
        let clients = self.clients.clone();
        let deadline = clients.total_deadline();
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let Some(rt) = &self.runtime else { return Err(RemoteError::Config("keystore runtime stopped".into())) };
        rt.spawn(async move {
            let _ = tx.send(clients.call(f).await);
        });
        rx.recv_timeout(deadline + Duration::from_millis(100))
            .unwrap_or_else(|_| Err(RemoteError::Unreachable(format!("no answer within {deadline:?}"))))
    }

    fn publics(&self, kt: KeyTypeId, crypto: WireCrypto) -> Vec<Vec<u8>> {
        match self.rpc(move |c| async move { c.public_keys(key_type(kt), crypto).await }) {
            Ok(keys) => keys.into_iter().map(|b| b.0).collect(),
            Err(e) => {
                tracing::warn!(key_type = ?kt, error = %e, "remote keystore: listing keys failed");
                Vec::new()
            }
        }
    }

    fn generate(&self, kt: KeyTypeId, crypto: WireCrypto, seed: Option<&str>) -> Result<Vec<u8>, Error> {
        if self.clients.len() > 1 {
            // A key generated in one signer would be missing from the others (and a retry after a
            // timeout could make a second one): with several signers, keys are imported into each.
            return Err(Error::Other(
                "key generation (author_rotateKeys) is refused with several signers: generate the keys once and import them into every signer (exclave keys import)".into(),
            ));
        }
        self.forget_held(kt);
        let seed = seed.map(str::to_owned);
        self.rpc(move |c| {
            let seed = seed.clone();
            async move { c.generate_key(key_type(kt), crypto, seed).await }
        })
        .map(|b| b.0)
        .map_err(RemoteError::into_keystore_error)
    }

    fn sign(
        &self,
        kt: KeyTypeId,
        crypto: WireCrypto,
        public: &[u8],
        msg: &[u8],
        context: SignContext,
        prehashed: bool,
    ) -> Result<Option<Vec<u8>>, Error> {
        self.note_interest(kt, public);
        let request = SignRequest {
            chain: Bytes(self.chain.to_vec()),
            key_type: key_type(kt),
            crypto,
            public: Bytes(public.to_vec()),
            message: Bytes(msg.to_vec()),
            context,
            prehashed,
            store_id: None,
        };
        let retry_until = Instant::now() + VOTE_RETRY_FOR;
        let result = loop {
            let request = request.clone();
            let clients = self.clients.clone();
            match self.rpc(move |c| {
                // Bound to the store every signer was checked to share (set before any attempt).
                let request = SignRequest { store_id: clients.store_id(), ..request.clone() };
                async move { c.sign(request).await }
            }) {
                Err(e) if failure_is_fatal(kt) && e.is_transient() && Instant::now() < retry_until => {
                    tracing::warn!(key_type = ?kt, error = %e, "no signer could sign a GRANDPA vote; retrying the identical request");
                    std::thread::sleep(VOTE_RETRY_EVERY);
                }
                other => break other,
            }
        };
        match result {
            Ok(resp) => Ok(Some(resp.signature.0)),
            Err(RemoteError::Signer(e)) if e.kind == ErrorKind::UnknownKey => Ok(None),
            Err(RemoteError::Signer(e)) if e.kind == ErrorKind::NotActive && refusal_is_soft(kt) => {
                tracing::debug!(key_type = ?kt, error = %e, "standby node: not signing");
                Ok(None)
            }
            Err(e) if e.is_refusal() && refusal_is_soft(kt) => {
                tracing::warn!(key_type = ?kt, error = %e, "Exclave refused to sign");
                Ok(None)
            }
            Err(e) => {
                tracing::error!(key_type = ?kt, error = %e, "remote signing failed");
                Err(e.into_keystore_error())
            }
        }
    }

    fn vrf_request(&self, kt: KeyTypeId, public: &sr25519::Public, input: &VrfInput) -> Option<VrfRequest> {
        if self.holds(kt, &public.0) != Held::Yes {
            return None;
        }
        self.note_interest(kt, &public.0);
        let Some(ctx) = self.resolve_vrf(input) else {
            tracing::warn!(key_type = ?kt, "no VRF context matches this transcript: not claiming the slot");
            return None;
        };
        Some(VrfRequest {
            chain: Bytes(self.chain.to_vec()),
            key_type: key_type(kt),
            public: Bytes(public.0.to_vec()),
            randomness: Bytes(ctx.randomness.to_vec()),
            slot: ctx.slot,
            epoch: ctx.epoch,
        })
    }
}

impl Drop for RemoteKeystore {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

fn sig<T: for<'a> TryFrom<&'a [u8]>>(bytes: Option<Vec<u8>>) -> Result<Option<T>, Error> {
    bytes.map(|b| T::try_from(b.as_slice()).map_err(|_| Error::Other(format!("signer returned a {}-byte signature", b.len())))).transpose()
}

fn public<T: for<'a> TryFrom<&'a [u8]>>(bytes: Vec<u8>) -> Result<T, Error> {
    T::try_from(bytes.as_slice()).map_err(|_| Error::Other(format!("signer returned a {}-byte public key", bytes.len())))
}

impl Keystore for RemoteKeystore {
    fn sr25519_public_keys(&self, kt: KeyTypeId) -> Vec<sr25519::Public> {
        self.publics(kt, WireCrypto::Sr25519).into_iter().filter_map(|b| public(b).ok()).collect()
    }

    fn sr25519_generate_new(&self, kt: KeyTypeId, seed: Option<&str>) -> Result<sr25519::Public, Error> {
        public(self.generate(kt, WireCrypto::Sr25519, seed)?)
    }

    fn sr25519_sign(&self, kt: KeyTypeId, key: &sr25519::Public, msg: &[u8]) -> Result<Option<sr25519::Signature>, Error> {
        let header = <[u8; 32]>::try_from(msg).ok().filter(|_| kt.0 == *b"babe").and_then(|h| self.seals.lock().get(&h));
        let context = header.map_or(SignContext::None, |h| SignContext::BabeSeal { header: Bytes(h) });
        sig(self.sign(kt, WireCrypto::Sr25519, &key.0, msg, context, false)?)
    }

    fn sr25519_vrf_sign(&self, kt: KeyTypeId, key: &sr25519::Public, data: &VrfSignData) -> Result<Option<VrfSignature>, Error> {
        let Some(request) = self.vrf_request(kt, key, data.as_ref()) else { return Ok(None) };
        let resp = match self.rpc(move |c| {
            let request = request.clone();
            async move { c.vrf_sign(request).await }
        }) {
            Ok(r) => r,
            Err(RemoteError::Signer(e)) if matches!(e.kind, ErrorKind::UnknownKey | ErrorKind::NotActive) => return Ok(None),
            Err(e) if e.is_refusal() => {
                tracing::warn!(error = %e, "Exclave refused a VRF signature");
                return Ok(None);
            }
            Err(e) => return Err(e.into_keystore_error()),
        };
        let bytes = [resp.pre_output.0, resp.proof.0].concat();
        let signature = <VrfSignature as codec::Decode>::decode(&mut bytes.as_slice())
            .map_err(|e| Error::Other(format!("signer returned an undecodable VRF signature: {e}")))?;
        if !key.vrf_verify(data, &signature) {
            return Err(Error::ValidationError("the signer's VRF signature does not verify against the node's transcript".into()));
        }
        Ok(Some(signature))
    }

    fn sr25519_vrf_pre_output(&self, kt: KeyTypeId, key: &sr25519::Public, input: &VrfInput) -> Result<Option<VrfPreOutput>, Error> {
        let Some(request) = self.vrf_request(kt, key, input) else { return Ok(None) };
        match self.rpc(move |c| {
            let request = request.clone();
            async move { c.vrf_pre_output(request).await }
        }) {
            Ok(b) => <VrfPreOutput as codec::Decode>::decode(&mut b.0.as_slice())
                .map(Some)
                .map_err(|e| Error::Other(format!("signer returned an undecodable pre-output: {e}"))),
            Err(RemoteError::Signer(e)) if matches!(e.kind, ErrorKind::UnknownKey | ErrorKind::NotActive) => Ok(None),
            Err(e) => Err(e.into_keystore_error()),
        }
    }

    fn ed25519_public_keys(&self, kt: KeyTypeId) -> Vec<ed25519::Public> {
        self.publics(kt, WireCrypto::Ed25519).into_iter().filter_map(|b| public(b).ok()).collect()
    }

    fn ed25519_generate_new(&self, kt: KeyTypeId, seed: Option<&str>) -> Result<ed25519::Public, Error> {
        public(self.generate(kt, WireCrypto::Ed25519, seed)?)
    }

    fn ed25519_sign(&self, kt: KeyTypeId, key: &ed25519::Public, msg: &[u8]) -> Result<Option<ed25519::Signature>, Error> {
        sig(self.sign(kt, WireCrypto::Ed25519, &key.0, msg, SignContext::None, false)?)
    }

    fn ecdsa_public_keys(&self, kt: KeyTypeId) -> Vec<ecdsa::Public> {
        self.publics(kt, WireCrypto::Ecdsa).into_iter().filter_map(|b| public(b).ok()).collect()
    }

    fn ecdsa_generate_new(&self, kt: KeyTypeId, seed: Option<&str>) -> Result<ecdsa::Public, Error> {
        public(self.generate(kt, WireCrypto::Ecdsa, seed)?)
    }

    fn ecdsa_sign(&self, kt: KeyTypeId, key: &ecdsa::Public, msg: &[u8]) -> Result<Option<ecdsa::Signature>, Error> {
        sig(self.sign(kt, WireCrypto::Ecdsa, &key.0, msg, SignContext::None, false)?)
    }

    fn ecdsa_sign_prehashed(&self, kt: KeyTypeId, key: &ecdsa::Public, msg: &[u8; 32]) -> Result<Option<ecdsa::Signature>, Error> {
        let commitment = self.commitments.lock().get(msg);
        let context = commitment.map_or(SignContext::None, |c| SignContext::BeefyCommitment { commitment: Bytes(c) });
        sig(self.sign(kt, WireCrypto::Ecdsa, &key.0, msg, context, true)?)
    }

    fn insert(&self, kt: KeyTypeId, suri: &str, public: &[u8]) -> Result<(), ()> {
        if self.clients.len() > 1 {
            tracing::error!(key_type = ?kt, "remote keystore: author_insertKey is refused with several signers: import the key into every signer (exclave keys import)");
            return Err(());
        }
        self.forget_held(kt);
        let (suri, public) = (zeroize::Zeroizing::new(suri.to_owned()), Bytes(public.to_vec()));
        self.rpc(move |c| {
            let (suri, public) = (suri.to_string(), public.clone());
            async move { c.insert_key(key_type(kt), suri, public).await }
        })
        .map_err(|e| tracing::error!(key_type = ?kt, error = %e, "remote keystore: insert failed"))
    }

    fn keys(&self, kt: KeyTypeId) -> Result<Vec<Vec<u8>>, Error> {
        self.rpc(move |c| async move { c.keys(key_type(kt)).await })
            .map(|k| k.into_iter().map(|b| b.0).collect())
            .map_err(RemoteError::into_keystore_error)
    }

    /// `true` only if the signers hold every key and the signer says so (for BABE and GRANDPA
    /// keys: this node is its validator's active node). A key missing from the signers' key list
    /// is answered `false` here, without a round trip (GRANDPA and BEEFY ask once per voter); so
    /// is every key while that list cannot be fetched.
    fn has_keys(&self, public_keys: &[(Vec<u8>, KeyTypeId)]) -> bool {
        if let Some((public, kt)) = public_keys.iter().find(|(public, kt)| self.holds(*kt, public) != Held::Yes) {
            tracing::trace!(key_type = ?kt, public = %hex::encode(public), "has_keys: not held by the signers");
            return false;
        }
        if public_keys.is_empty() {
            return true;
        }
        for (public, kt) in public_keys {
            self.note_interest(*kt, public);
        }
        let keys: Vec<(Bytes, WireKeyType)> = public_keys.iter().map(|(p, kt)| (Bytes(p.clone()), key_type(*kt))).collect();
        self.rpc(move |c| {
            let keys = keys.clone();
            async move { c.has_keys(keys).await }
        })
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "remote keystore: has_keys failed; answering false");
            false
        })
    }
}
