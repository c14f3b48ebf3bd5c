//! The claim-then-sign engine: classify → (watermark) → sign in memory → claim durably →
//! release. No signature for a claimed duty leaves this module unless the store recorded, for
//! that duty, exactly the record this request made (or an identical earlier payload, whose
//! stored signature is returned instead).

use crate::{
    chain::ChainPin,
    clock::now_ms,
    grants::Operation,
    keystore_dir::{KeyPair, KeyRing, KeystoreDir},
    lease::{LeaseSettings, LeaseView, Leases},
    metrics::{ClientLabel, DeniedLabels, KeyLabels, Metrics, RequestLabels},
    signing_log::{Decision, LogLine, SigningLog},
};
use exclave_claims::{ClaimOutcome, ClaimStore, Guarded, WatermarkSeen};
use exclave_policies::{
    check_vrf_bounds, classify, lease_gated, payload_hash, verdict, ChainId, ClaimKey, ClaimRecord, Classification, Crypto, Duty, KeyType,
    PolicyError, Refusal, SlotBounds, UnclaimedKind, Verdict, VrfContext,
};
use exclave_protocol::{
    Bytes, ErrorKind, LeaseState, SignContext, SignOutcome, SignRequest, SignResponse, StatusResponse, VrfRequest, VrfSignResponse,
    WireCrypto, WireKeyType,
};
use parking_lot::RwLock;
use std::{sync::Arc, time::Instant};

/// What the engine needs besides its store, keys and log.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// This signer's id.
    pub signer_id: String,
    /// BABE slot bounds.
    pub bounds: SlotBounds,
    /// Allow `generateKey` with a seed (`//Alice`): dev only.
    pub insecure_dev_seeds: bool,
    /// The active-node lease; `None`: every node may ask for every duty (the claims still
    /// decide; a refused GRANDPA vote then stops the refused node).
    pub lease: Option<LeaseSettings>,
    /// The claim store's deadline (bounds lease decisions too).
    pub store_deadline: std::time::Duration,
    /// For an embedded store: its file's identity (device and inode), appended to the store id,
    /// so that two signers on copies of one `claims.redb` report different stores and a node
    /// never fails over between them. `None` for shared stores.
    pub store_instance: Option<String>,
    /// `/ready` fails while the signing log's filesystem has less free than this.
    pub log_min_free_bytes: u64,
    /// Who may do what (`[[clients]]`).
    pub grants: crate::grants::Grants,
    /// Refused requests logged per client per minute ([`crate::refusal_budget`]).
    pub refused_per_client_per_minute: u32,
}

/// The signer's core.
pub struct Engine {
    settings: EngineSettings,
    chain: ChainPin,
    keys: RwLock<KeyRing>,
    keystore: KeystoreDir,
    store: Arc<dyn ClaimStore>,
    log: SigningLog,
    metrics: Metrics,
    leases: Option<Leases>,
    store_id: parking_lot::Mutex<Option<(String, Instant)>>,
    refusals: crate::refusal_budget::RefusalBudget,
    /// Guarding stores (etcd): each duty family's watermark as the store last showed it. Only
    /// a lower bound of the store's (watermarks only rise); every claim checks it in the store.
    watermarks: parking_lot::Mutex<std::collections::HashMap<Vec<u8>, WatermarkSeen>>,
}

mod error;
pub use error::EngineError;

fn to_crypto(c: WireCrypto) -> Crypto {
    match c {
        WireCrypto::Sr25519 => Crypto::Sr25519,
        WireCrypto::Ed25519 => Crypto::Ed25519,
        WireCrypto::Ecdsa => Crypto::Ecdsa,
    }
}

fn to_context(c: &SignContext) -> exclave_policies::SignContext {
    match c {
        SignContext::None => exclave_policies::SignContext::None,
        SignContext::BabeSeal { header } => exclave_policies::SignContext::BabeSeal { header: header.0.clone() },
        SignContext::BeefyCommitment { commitment } => exclave_policies::SignContext::BeefyCommitment { commitment: commitment.0.clone() },
    }
}

/// What a signing request left for the log and metrics besides its result.
#[derive(Default)]
struct Trace {
    duty: Option<Duty>,
    duty_kind: &'static str,
    payload_hash: Option<[u8; 32]>,
    preimage: Option<serde_json::Value>,
}

impl Engine {
    /// Assemble an engine.
    pub fn new(
        settings: EngineSettings,
        chain: ChainPin,
        keystore: KeystoreDir,
        keys: KeyRing,
        store: Arc<dyn ClaimStore>,
        log: SigningLog,
        metrics: Metrics,
    ) -> Self {
        metrics.keys.set(keys.len() as i64);
        let leases = settings.lease.clone().map(|mut l| {
            if l.validator.is_empty() {
                l.validator = crate::lease::default_validator_name(&keys.publics(KeyType::BABE, None));
            }
            Leases::new(l, settings.store_deadline, settings.signer_id.clone(), store.clone(), metrics.clone())
        });
        let store_id = parking_lot::Mutex::new(None);
        let refusals = crate::refusal_budget::RefusalBudget::new(settings.refused_per_client_per_minute);
        let watermarks = parking_lot::Mutex::new(std::collections::HashMap::new());
        Self { settings, chain, keys: RwLock::new(keys), keystore, store, log, metrics, leases, store_id, refusals, watermarks }
    }

    /// Check `client`'s grant for `op` (on `key`); a refusal is logged and counted.
    fn grant(&self, client: &str, op: Operation, key: Option<(KeyType, &[u8])>) -> Result<(), EngineError> {
        let validator = match (key, &self.leases) {
            (Some((_, public)), Some(leases)) => leases.validator_of(public),
            _ => "",
        };
        self.settings.grants.check(client, op, key.map(|(kt, p)| (kt, p, validator))).map_err(|denied| {
            let label = if self.settings.grants.knows(client) { client.to_owned() } else { "unconfigured".into() };
            self.metrics.denied.get_or_create(&DeniedLabels { client: label, operation: op.name() }).inc();
            tracing::warn!(client, operation = op.name(), reason = %denied, "request not granted");
            EngineError::Denied(denied)
        })
    }

    /// Refuse a certificate other than the one pinned for its client name.
    pub fn check_certificate(&self, client: &str, sha256: &[u8; 32]) -> Result<(), EngineError> {
        self.settings.grants.check_certificate(client, sha256).map_err(|denied| {
            self.metrics.denied.get_or_create(&DeniedLabels { client: client.to_owned(), operation: "certificate" }).inc();
            EngineError::Denied(denied)
        })
    }

    fn pair(&self, key_type: KeyType, public: &[u8]) -> Result<Arc<KeyPair>, EngineError> {
        self.keys.read().get(key_type, public).cloned().ok_or_else(|| EngineError::UnknownKey { key_type, public: public.to_vec() })
    }

    /// Whether `public` is held under any protected key type.
    fn is_protected_key(&self, public: &[u8]) -> bool {
        let ring = self.keys.read();
        KeyType::SUPPORTED.iter().any(|kt| kt.is_protected() && ring.get(*kt, public).is_some())
    }

    fn claimer(&self, client: &str) -> String {
        format!("{}/{}", self.settings.signer_id, client)
    }

    /// `exclave_sign`.
    pub async fn sign(&self, client: &str, req: SignRequest) -> Result<SignResponse, EngineError> {
        let start = Instant::now();
        let mut trace = Trace { duty_kind: "-", ..Default::default() };
        let result = self.sign_inner(client, &req, &mut trace).await;
        let entry = LogLine {
            duty: trace.duty,
            payload_hash: Some(hex::encode(trace.payload_hash.unwrap_or_else(|| payload_hash(&req.message.0)))),
            message: Some(hex::encode(&req.message.0)),
            prehashed: req.prehashed,
            preimage: trace.preimage.take(),
            ..self.entry(client, "sign", &req.key_type.to_string(), &req.public)
        };
        let result = self.finish(entry, result, |r| Some(&r.signature), |r| r.outcome == SignOutcome::SameData).await;
        self.count("sign", req.key_type.to_string(), trace.duty_kind, &result, |r| r.outcome == SignOutcome::SameData);
        self.metrics.sign_seconds.observe(start.elapsed().as_secs_f64());
        result
    }

    async fn sign_inner(&self, client: &str, req: &SignRequest, trace: &mut Trace) -> Result<SignResponse, EngineError> {
        let key_type = KeyType(req.key_type.0);
        self.grant(client, Operation::Sign, Some((key_type, &req.public.0)))?;
        let chain = self.chain.check(&req.chain.0)?;
        let context = to_context(&req.context);
        trace.preimage = match &req.context {
            SignContext::None => None,
            other => serde_json::to_value(other).ok(),
        };
        let preq = exclave_policies::SignRequest {
            key_type,
            crypto: to_crypto(req.crypto),
            message: &req.message.0,
            context: &context,
            prehashed: req.prehashed,
        };
        let class = classify(&preq)?;
        let pair = self.pair(key_type, &req.public.0)?;
        trace.payload_hash = Some(payload_hash(&req.message.0));
        self.chain.pin(chain)?;
        match class {
            Classification::Unclaimed(UnclaimedKind::AuthorityDiscovery) if self.is_protected_key(&req.public.0) => {
                Err(EngineError::ProtectedKeyAsAudi)
            }
            Classification::Unclaimed(_) => {
                trace.duty_kind = "unclaimed";
                let signature = pair.sign(&req.message.0, req.prehashed).map_err(EngineError::KeyMaterial)?;
                Ok(SignResponse { signature: signature.into(), outcome: SignOutcome::Unclaimed })
            }
            Classification::Claimed(duty) => {
                trace.duty = Some(duty);
                trace.duty_kind = duty.kind().name();
                self.require_store(req.store_id.as_deref()).await?;
                self.require_active(client, key_type, &req.public.0).await?;
                let key = ClaimKey { chain, key_type, public: req.public.0.clone(), duty };
                self.claim_then_sign(client, key, &pair, &req.message.0, req.prehashed).await
            }
        }
    }

    /// The heart of the signer. See the module docs and docs/claims.md.
    async fn claim_then_sign(
        &self,
        client: &str,
        key: ClaimKey,
        pair: &KeyPair,
        message: &[u8],
        prehashed: bool,
    ) -> Result<SignResponse, EngineError> {
        if let Duty::BabeSeal { slot, .. } = key.duty {
            check_vrf_bounds(slot, now_ms(), &self.settings.bounds).map_err(EngineError::Refused)?;
        }
        if self.store.guards_claims() {
            return self.guarded_claim_then_sign(client, key, pair, message, prehashed).await;
        }
        let hash = payload_hash(message);
        let position = key.duty.position();
        let watermark = self
            .store
            .watermark(&key.watermark_key())
            .await
            .map_err(|source| EngineError::Store { what: "reading the watermark", source })?;
        if watermark.is_some_and(|w| position <= w) {
            let existing = self.store.get(&key).await.map_err(|source| EngineError::Store { what: "reading the claim", source })?;
            return conclude(verdict(existing.as_ref(), &hash, position, watermark));
        }
        let signature = pair.sign(message, prehashed).map_err(EngineError::KeyMaterial)?;
        let record = ClaimRecord { claimer: self.claimer(client), payload_hash: hash, signature, claimed_at_ms: now_ms() };
        let started = Instant::now();
        let outcome = self.store.claim(&key, &record).await;
        self.metrics.claim_seconds.observe(started.elapsed().as_secs_f64());
        let existing = match outcome {
            Ok(ClaimOutcome::Inserted) => None,
            // Our own record came back: the store applied our write and lost its reply.
            Ok(ClaimOutcome::Existing(rec)) if rec == record => None,
            Ok(ClaimOutcome::Existing(rec)) => Some(rec),
            // Nothing was written: not ambiguous, and nothing is signed.
            Err(source @ exclave_claims::StoreError::Encode { .. }) => {
                return Err(EngineError::Store { what: "encoding the claim", source })
            }
            Err(e) => self.reread_after_ambiguity(&key, &record, e).await?,
        };
        match existing {
            None => {
                self.recheck_watermark(&key, position).await?;
                Ok(SignResponse { signature: record.signature.into(), outcome: SignOutcome::Signed })
            }
            Some(rec) => conclude(verdict(Some(&rec), &hash, position, watermark)),
        }
    }

    /// [`Engine::claim_then_sign`] on a store that checks the watermark in the claim's own
    /// transaction (the embedded store, etcd): one round trip. The watermark the engine last saw for the family is
    /// checked by the store atomically with the insert, so a claim is only ever inserted above
    /// the watermark in force, and no re-read is needed; when the watermark moved, nothing was
    /// written and the engine decides again on the new one (docs/claims.md, "Watermarks").
    async fn guarded_claim_then_sign(
        &self,
        client: &str,
        key: ClaimKey,
        pair: &KeyPair,
        message: &[u8],
        prehashed: bool,
    ) -> Result<SignResponse, EngineError> {
        let hash = payload_hash(message);
        let position = key.duty.position();
        let family = key.watermark_key().to_bytes();
        let mut seen = self.watermarks.lock().get(&family).copied().unwrap_or_default();
        let mut record = None;
        for _ in 0..GUARDED_ATTEMPTS {
            if seen.position.is_some_and(|w| position <= w) {
                let existing = self.store.get(&key).await.map_err(|source| EngineError::Store { what: "reading the claim", source })?;
                return conclude(verdict(existing.as_ref(), &hash, position, seen.position));
            }
            let record = match &record {
                Some(r) => r,
                None => {
                    let signature = pair.sign(message, prehashed).map_err(EngineError::KeyMaterial)?;
                    record.insert(ClaimRecord { claimer: self.claimer(client), payload_hash: hash, signature, claimed_at_ms: now_ms() })
                }
            };
            let started = Instant::now();
            let outcome = self.store.claim_guarded(&key, record, seen).await;
            self.metrics.claim_seconds.observe(started.elapsed().as_secs_f64());
            let existing = match outcome {
                Ok(Guarded::WatermarkMoved(now)) => {
                    self.watermarks.lock().insert(family.clone(), now);
                    seen = now;
                    continue;
                }
                Ok(Guarded::Claimed(ClaimOutcome::Inserted)) => None,
                // Our own record: an earlier attempt's put, made under the same guard.
                Ok(Guarded::Claimed(ClaimOutcome::Existing(rec))) if rec == *record => None,
                Ok(Guarded::Claimed(ClaimOutcome::Existing(rec))) => Some(rec),
                Err(source @ exclave_claims::StoreError::Encode { .. }) => {
                    return Err(EngineError::Store { what: "encoding the claim", source })
                }
                Err(e) => match self.reread_after_ambiguity(&key, record, e).await? {
                    // Ours, but which attempt's guard held is unknown: re-read the watermark.
                    None => {
                        self.recheck_watermark(&key, position).await?;
                        None
                    }
                    Some(rec) => Some(rec),
                },
            };
            return match existing {
                None => Ok(SignResponse { signature: record.signature.clone().into(), outcome: SignOutcome::Signed }),
                Some(rec) => conclude(verdict(Some(&rec), &hash, position, seen.position)),
            };
        }
        Err(EngineError::Store {
            what: "claiming while the watermark kept moving",
            source: exclave_claims::StoreError::Unavailable {
                backend: self.store.backend(),
                reason: format!("the watermark changed on each of {GUARDED_ATTEMPTS} attempts"),
            },
        })
    }

    /// After a fresh claim, read the watermark again: an import or a prune may have raised it
    /// (and deleted claims below it) after the first read. Prune raises before it deletes, and
    /// the stores are linearizable, so a claim inserted after a deletion sees the raised
    /// watermark here and is never released (docs/claims.md, "Watermarks").
    async fn recheck_watermark(&self, key: &ClaimKey, position: exclave_policies::Position) -> Result<(), EngineError> {
        match self.store.watermark(&key.watermark_key()).await {
            Ok(Some(w)) if position <= w => {
                tracing::warn!(duty = %key.duty, ?position, watermark = ?w, "watermark raised during the claim; signature withheld");
                Err(EngineError::Refused(Refusal::BelowWatermark { position, watermark: w }))
            }
            Ok(_) => Ok(()),
            Err(source) => Err(EngineError::Store { what: "re-reading the watermark after the claim", source }),
        }
    }

    /// Unknown is no: after an error or deadline, re-read; the claim is ours only if the store
    /// holds exactly our record.
    async fn reread_after_ambiguity(
        &self,
        key: &ClaimKey,
        record: &ClaimRecord,
        e: exclave_claims::StoreError,
    ) -> Result<Option<ClaimRecord>, EngineError> {
        self.metrics.store_ambiguous.inc();
        tracing::warn!(duty = %key.duty, error = %e, "claim outcome unknown; re-reading");
        match self.store.get(key).await {
            Ok(Some(rec)) if rec == *record => Ok(None),
            Ok(Some(rec)) => Ok(Some(rec)),
            Ok(None) => Err(EngineError::Ambiguous { first: e, reread: None }),
            Err(e2) => Err(EngineError::Ambiguous { first: e, reread: Some(e2) }),
        }
    }

    /// `exclave_vrfSign`.
    pub async fn vrf_sign(&self, client: &str, req: VrfRequest) -> Result<VrfSignResponse, EngineError> {
        let start = Instant::now();
        let result = self.vrf_inner(client, &req).await.map(|sig| VrfSignResponse {
            pre_output: codec::Encode::encode(&sig.pre_output).into(),
            proof: codec::Encode::encode(&sig.proof).into(),
        });
        let entry =
            LogLine { preimage: serde_json::to_value(&req).ok(), ..self.entry(client, "vrfSign", &req.key_type.to_string(), &req.public) };
        // The log keeps pre-output ++ proof, so a verifier can check the VRF signature.
        let result = result.map(|r| {
            let both = Bytes([r.pre_output.0.as_slice(), r.proof.0.as_slice()].concat());
            (r, both)
        });
        let result = self.finish(entry, result, |(_, both)| Some(both), |_| false).await.map(|(r, _)| r);
        self.count("vrfSign", req.key_type.to_string(), "vrf", &result, |_| false);
        self.metrics.sign_seconds.observe(start.elapsed().as_secs_f64());
        result
    }

    /// `exclave_vrfPreOutput`.
    pub async fn vrf_pre_output(&self, client: &str, req: VrfRequest) -> Result<Bytes, EngineError> {
        use sp_core::crypto::VrfSecret;
        let (pair, ctx) = self.vrf_prepare(client, &req)?;
        self.require_active(client, KeyType(req.key_type.0), &req.public.0).await?;
        let data = exclave_policies::vrf_sign_data(&ctx);
        let pair = pair.as_sr25519().ok_or(EngineError::NotSr25519)?;
        Ok(codec::Encode::encode(&pair.vrf_pre_output(data.as_ref())).into())
    }

    async fn vrf_inner(&self, client: &str, req: &VrfRequest) -> Result<sp_core::sr25519::vrf::VrfSignature, EngineError> {
        use sp_core::crypto::VrfSecret;
        let (pair, ctx) = self.vrf_prepare(client, req)?;
        self.require_active(client, KeyType(req.key_type.0), &req.public.0).await?;
        let pair = pair.as_sr25519().ok_or(EngineError::NotSr25519)?;
        Ok(pair.vrf_sign(&exclave_policies::vrf_sign_data(&ctx)))
    }

    fn vrf_prepare(&self, client: &str, req: &VrfRequest) -> Result<(Arc<KeyPair>, VrfContext), EngineError> {
        let key_type = KeyType(req.key_type.0);
        self.grant(client, Operation::Vrf, Some((key_type, &req.public.0)))?;
        let chain = self.chain.check(&req.chain.0)?;
        if key_type != KeyType::BABE {
            return Err(EngineError::Policy(PolicyError::VrfNotAllowed { key_type }));
        }
        let randomness: [u8; 32] =
            req.randomness.0.clone().try_into().map_err(|_| EngineError::BadRandomness { len: req.randomness.0.len() })?;
        check_vrf_bounds(req.slot, now_ms(), &self.settings.bounds).map_err(EngineError::Refused)?;
        let pair = self.pair(key_type, &req.public.0)?;
        if pair.as_sr25519().is_none() {
            return Err(EngineError::NotSr25519);
        }
        self.chain.pin(chain)?;
        Ok((pair, VrfContext { randomness, slot: req.slot, epoch: req.epoch }))
    }

    /// Log the decision, and turn a log failure into an error: a reply never carries a signature
    /// that is not in the log.
    async fn finish<T>(
        &self,
        mut entry: LogLine,
        result: Result<T, EngineError>,
        signature: impl Fn(&T) -> Option<&Bytes>,
        same_data: impl Fn(&T) -> bool,
    ) -> Result<T, EngineError> {
        match &result {
            Ok(r) => {
                entry.decision = Some(if same_data(r) { Decision::SameData } else { Decision::Signed });
                entry.signature = signature(r).map(|s| hex::encode(&s.0));
            }
            Err(e) => {
                entry.decision = Some(match e.kind() {
                    ErrorKind::StoreUnavailable | ErrorKind::Internal => Decision::Error,
                    _ => Decision::Refused,
                });
                entry.reason = Some(e.to_string());
                // Nothing was released: the record keeps the message's hash (`payloadHash`), not
                // the message or its pre-image, so refused requests cannot fill the disk.
                entry.message = None;
                entry.preimage = None;
            }
        }
        let released = result.is_ok().then(|| KeyLabels { key_type: entry.key_type.clone(), key: format!("0x{}", entry.public) });
        if !self.budget(&mut entry) {
            return result;
        }
        if let Err(e) = self.log.append(entry).await {
            self.metrics.log_write_errors.inc();
            tracing::error!(error = %e, "signing log append failed; withholding the reply");
            return Err(EngineError::LogWithheld(e));
        }
        if let Some(labels) = released {
            self.metrics.key_last_signed.get_or_create(&labels).set(now_ms() as f64 / 1000.0);
        }
        result
    }

    /// Whether to log `entry`: a refusal over its client's budget is not logged (but counted);
    /// a logged record carries the count of its client's refusals not logged before it.
    fn budget(&self, entry: &mut LogLine) -> bool {
        let client = if self.settings.grants.knows(&entry.client) { entry.client.clone() } else { "unconfigured".into() };
        if entry.decision != Some(Decision::Refused) {
            entry.unlogged_refusals = self.refusals.take_unlogged(&client);
            return true;
        }
        match self.refusals.refused(&client, Instant::now()) {
            Some(unlogged) => {
                entry.unlogged_refusals = (unlogged > 0).then_some(unlogged);
                true
            }
            None => {
                let first = self.metrics.refusals_unlogged.get_or_create(&ClientLabel { client: client.clone() }).inc() == 0;
                if first {
                    tracing::warn!(client, "client over its refused-request budget: further refusals are answered but not logged");
                }
                false
            }
        }
    }

    fn entry(&self, client: &str, method: &'static str, key_type: &str, public: &Bytes) -> LogLine {
        LogLine {
            time_ms: now_ms(),
            signer: self.settings.signer_id.clone(),
            client: client.into(),
            chain: self.chain.current().map(|c| c.to_string()).unwrap_or_default(),
            method: method.into(),
            key_type: key_type.into(),
            public: hex::encode(&public.0),
            decision: Some(Decision::Error),
            ..LogLine::default()
        }
    }

    fn count<T>(&self, method: &'static str, key_type: String, duty: &'static str, r: &Result<T, EngineError>, same: impl Fn(&T) -> bool) {
        let outcome = match r {
            Ok(v) if same(v) => "same-data",
            Ok(_) => "signed",
            Err(e) => e.kind().name(),
        };
        // Clients choose the key type: unsupported ones share one label, so they cannot create series.
        let key_type =
            if key_type.parse::<WireKeyType>().is_ok_and(|k| KeyType(k.0).crypto().is_some()) { key_type } else { "other".into() };
        self.metrics.requests.get_or_create(&RequestLabels { method, key_type, duty, outcome }).inc();
    }

    /// `exclave_publicKeys` (with a scheme) and `exclave_keys`: the keys of `key_type` held and
    /// granted to `client`.
    pub fn public_keys(&self, client: &str, key_type: WireKeyType, crypto: Option<WireCrypto>) -> Result<Vec<Bytes>, EngineError> {
        self.grant(client, Operation::ListKeys, None)?;
        let kt = KeyType(key_type.0);
        let held = self.keys(key_type, crypto);
        Ok(held.into_iter().filter(|p| self.granted(client, Operation::ListKeys, kt, &p.0)).collect())
    }

    /// Every key of `key_type` (and scheme) the signer holds, whoever asks (the dev banner).
    pub fn keys(&self, key_type: WireKeyType, crypto: Option<WireCrypto>) -> Vec<Bytes> {
        self.keys.read().publics(KeyType(key_type.0), crypto.map(to_crypto)).into_iter().map(Bytes).collect()
    }

    /// Whether `client` may do `op` with this key (no refusal is counted: used to filter).
    fn granted(&self, client: &str, op: Operation, kt: KeyType, public: &[u8]) -> bool {
        let validator = self.leases.as_ref().map_or("", |l| l.validator_of(public));
        self.settings.grants.check(client, op, Some((kt, public, validator))).is_ok()
    }

    /// `exclave_hasKeys`: true only if every pair is held and, for BABE and GRANDPA keys, the
    /// asking node is its validator's active node.
    pub async fn has_keys(&self, client: &str, keys: &[(Bytes, WireKeyType)]) -> bool {
        if self.grant(client, Operation::HasKeys, None).is_err() {
            return false;
        }
        let held = {
            let ring = self.keys.read();
            keys.iter().all(|(public, kt)| {
                ring.get(KeyType(kt.0), &public.0).is_some() && self.granted(client, Operation::HasKeys, KeyType(kt.0), &public.0)
            })
        };
        if !held {
            return false;
        }
        for (public, kt) in keys {
            if let Err(e) = self.require_active(client, KeyType(kt.0), &public.0).await {
                tracing::debug!(client, key_type = %kt, error = %e, "hasKeys: false");
                return false;
            }
        }
        true
    }

    /// Refuse a BABE or GRANDPA duty unless `client` is its validator's active node.
    async fn require_active(&self, client: &str, key_type: KeyType, public: &[u8]) -> Result<(), EngineError> {
        let Some(leases) = &self.leases else { return Ok(()) };
        if !lease_gated(key_type) {
            return Ok(());
        }
        let validator = leases.validator_of(public);
        match leases.check(self.chain.current(), validator, client).await {
            Ok(LeaseView::Active(_)) => Ok(()),
            Ok(LeaseView::NotMember) => Err(EngineError::NotMember { client: client.into(), validator: validator.into() }),
            Ok(LeaseView::Standby(rec)) => Err(EngineError::Standby {
                client: client.into(),
                validator: validator.into(),
                expires_in_ms: rec.expires_at_ms.saturating_sub(now_ms()),
                holder: rec.holder,
                term: rec.term,
            }),
            Err(source) => Err(EngineError::LeaseUnconfirmed { validator: validator.into(), source }),
        }
    }

    /// `exclave_lease`: take or renew, for `client`, the lease of each validator one of `keys`
    /// (held, BABE or GRANDPA) belongs to.
    pub async fn lease(&self, client: &str, keys: &[(Bytes, WireKeyType)]) -> Result<Vec<LeaseState>, EngineError> {
        self.grant(client, Operation::Lease, None)?;
        let Some(leases) = &self.leases else { return Ok(Vec::new()) };
        let mut validators: Vec<String> = {
            let ring = self.keys.read();
            keys.iter()
                .filter(|(p, kt)| {
                    let kt = KeyType(kt.0);
                    lease_gated(kt) && ring.get(kt, &p.0).is_some() && self.granted(client, Operation::Lease, kt, &p.0)
                })
                .map(|(p, _)| leases.validator_of(&p.0).to_owned())
                .collect()
        };
        validators.sort();
        validators.dedup();
        let mut out = Vec::with_capacity(validators.len());
        for validator in validators {
            let view = leases
                .check(self.chain.current(), &validator, client)
                .await
                .map_err(|e| EngineError::LeaseUnavailable { validator: validator.clone(), source: e })?;
            let (active, rec) = match view {
                LeaseView::Active(r) => (true, r),
                LeaseView::Standby(r) => (false, r),
                LeaseView::NotMember => continue,
            };
            out.push(LeaseState {
                validator,
                holder: rec.holder,
                active,
                expires_in_ms: rec.expires_at_ms.saturating_sub(now_ms()),
                term: rec.term,
                renew_every_ms: leases.settings().timing.renew_after_ms,
            });
        }
        Ok(out)
    }

    /// `exclave_generateKey`.
    pub async fn generate_key(
        &self,
        client: &str,
        key_type: WireKeyType,
        crypto: WireCrypto,
        seed: Option<String>,
    ) -> Result<Bytes, EngineError> {
        // Zeroized on every path, refusals included.
        let seed = seed.map(zeroize::Zeroizing::new);
        self.grant(client, Operation::KeyManagement, None)?;
        let kt = self.key_type_for(key_type, crypto)?;
        let (pair, suri) = match seed {
            Some(_) if !self.settings.insecure_dev_seeds => {
                return Err(EngineError::DevSeedsOff);
            }
            Some(seed) => (self.keystore.derive(to_crypto(crypto), &seed).map_err(EngineError::KeyMaterial)?, seed),
            None => self.keystore.generate(to_crypto(crypto)),
        };
        self.store_key(client, "generateKey", kt, pair, &suri).await
    }

    /// `exclave_insertKey`.
    pub async fn insert_key(&self, client: &str, key_type: WireKeyType, suri: String, public: Bytes) -> Result<(), EngineError> {
        let suri = zeroize::Zeroizing::new(suri);
        self.grant(client, Operation::KeyManagement, None)?;
        let crypto =
            KeyType(key_type.0).crypto().ok_or(EngineError::Policy(PolicyError::UnsupportedKeyType { key_type: KeyType(key_type.0) }))?;
        let kt = KeyType(key_type.0);
        let pair = self.keystore.derive(crypto, &suri).map_err(EngineError::KeyMaterial)?;
        crate::keystore_dir::check_public(&pair, &public.0).map_err(EngineError::KeyMaterial)?;
        self.store_key(client, "insertKey", kt, pair, &suri).await.map(drop)
    }

    fn key_type_for(&self, key_type: WireKeyType, crypto: WireCrypto) -> Result<KeyType, EngineError> {
        let kt = KeyType(key_type.0);
        let expected = kt.crypto().ok_or(EngineError::Policy(PolicyError::UnsupportedKeyType { key_type: kt }))?;
        if expected != to_crypto(crypto) {
            return Err(EngineError::Policy(PolicyError::WrongCrypto { key_type: kt, expected, got: to_crypto(crypto) }));
        }
        Ok(kt)
    }

    async fn store_key(&self, client: &str, method: &'static str, kt: KeyType, pair: KeyPair, suri: &str) -> Result<Bytes, EngineError> {
        let public = pair.public();
        let result = self
            .keystore
            .write(kt, &pair, suri)
            .map(|_| {
                let mut ring = self.keys.write();
                ring.insert(kt, pair);
                self.metrics.keys.set(ring.len() as i64);
                Bytes(public.clone())
            })
            .map_err(EngineError::KeyWrite);
        let entry = self.entry(client, method, &kt.to_string(), &Bytes(public));
        self.finish(entry, result, |_| None, |_| false).await
    }

    /// `exclave_status`.
    pub async fn status(&self, client: &str) -> StatusResponse {
        let store_ready = self.store.ping().await.is_ok();
        let store_id = self.store_id().await.unwrap_or_default();
        StatusResponse {
            signer_id: self.settings.signer_id.clone(),
            chain: Bytes(self.chain.current().map(|c| c.0.to_vec()).unwrap_or_default()),
            store_backend: self.store.backend().into(),
            store_ready,
            keys: self.keys.read().len(),
            client: client.into(),
            store_id,
        }
    }

    /// The claim store's identity: a random id written into the store's `store-id` register by
    /// the first signer that opened it. Signers sharing a store report the same id. Read again
    /// every 10 s (a store emptied under a running signer gets a new id).
    pub async fn store_id(&self) -> Option<String> {
        if let Some((id, at)) = self.store_id.lock().clone() {
            if at.elapsed() < std::time::Duration::from_secs(10) {
                return Some(id);
            }
        }
        let id = read_or_create_store_id(self.store.as_ref()).await.ok()?;
        let id = match &self.settings.store_instance {
            Some(instance) => format!("{id}-{instance}"),
            None => id,
        };
        *self.store_id.lock() = Some((id.clone(), Instant::now()));
        Some(id)
    }

    /// A request bound to a claim store (`storeId`, sent by clients of several signers) is
    /// claimed only in that store: a signer re-pointed at another store since the client checked
    /// would otherwise sign a duty already claimed in the first.
    async fn require_store(&self, wanted: Option<&str>) -> Result<(), EngineError> {
        let Some(wanted) = wanted else { return Ok(()) };
        match self.store_id().await {
            Some(mine) if mine == wanted => Ok(()),
            Some(mine) => Err(EngineError::StoreMismatch { mine, wanted: wanted.into() }),
            None => Err(EngineError::StoreIdUnknown),
        }
    }

    /// Ready when keys are loaded, the signing log's disk has room and the store answers.
    pub async fn readiness(&self) -> Result<(), String> {
        if self.keys.read().is_empty() {
            return Err("no keys loaded".into());
        }
        if let Some((available, _)) = crate::metrics::log_disk(self.log.path()) {
            let min = self.settings.log_min_free_bytes;
            if available < min {
                return Err(format!(
                    "the signing log's disk has {available} bytes free, below audit.min_free_bytes = {min}: free space before it fills (a full disk withholds every signature)"
                ));
            }
        }
        if let Some(e) = self.log.failure() {
            return Err(format!("the signing log's last write failed ({e}): every signature is withheld until a write succeeds"));
        }
        self.store.ping().await.map_err(|e| e.to_string())
    }

    /// Write the signing log's closing checkpoint (clean shutdown).
    pub async fn seal_log(&self) -> Result<(), crate::signing_log::LogError> {
        self.log.seal().await
    }

    /// Refresh the metrics read at scrape time (the signing log's disk).
    pub fn observe_scrape(&self) {
        self.metrics.observe_log_disk(self.log.path());
    }

    /// The signing log's audit public key (hex).
    pub fn audit_key(&self) -> &str {
        self.log.audit_key()
    }

    /// The chain this engine serves, if pinned.
    pub fn chain(&self) -> Option<ChainId> {
        self.chain.current()
    }
}

async fn read_or_create_store_id(store: &dyn ClaimStore) -> Result<String, exclave_claims::StoreError> {
    if let Some(id) = store.register(STORE_ID_REGISTER).await? {
        return Ok(String::from_utf8_lossy(&id).into_owned());
    }
    let mine = hex::encode(rand::random::<[u8; 16]>());
    match store.swap_register(STORE_ID_REGISTER, None, mine.as_bytes()).await {
        Ok(exclave_claims::Swap::Swapped) => Ok(mine),
        Ok(exclave_claims::Swap::Current(Some(id))) => Ok(String::from_utf8_lossy(&id).into_owned()),
        // An outcome unknown or an incoherent answer: read what is there now.
        Ok(exclave_claims::Swap::Current(None)) | Err(_) => {
            store.register(STORE_ID_REGISTER).await?.map(|id| String::from_utf8_lossy(&id).into_owned()).ok_or(
                exclave_claims::StoreError::Unavailable { backend: store.backend(), reason: "the store id could not be created".into() },
            )
        }
    }
}

/// Attempts of a guarded claim whose watermark moved each time before it gives up (nothing is
/// written by a failed attempt).
const GUARDED_ATTEMPTS: usize = 4;

/// The register holding the store's identity.
pub const STORE_ID_REGISTER: &str = "store-id";

fn conclude(v: Verdict) -> Result<SignResponse, EngineError> {
    match v {
        Verdict::SameData { signature } => Ok(SignResponse { signature: signature.into(), outcome: SignOutcome::SameData }),
        Verdict::Refuse(r) => Err(EngineError::Refused(r)),
        // Only reachable with no existing claim, which callers never pass here.
        Verdict::Sign => Err(EngineError::VerdictWithoutClaim),
    }
}
