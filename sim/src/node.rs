//! A simulated validator node: a real `RemoteKeystore` asking, slot by slot, for what a BABE,
//! GRANDPA and I'm-online node asks its keystore.

use super::{
    judge::{DutyId, Judge, Received},
    payloads::{babe_header, grandpa_payload, heartbeat, pre_hash},
};
use codec::Encode;
use exclave_keystore_remote::{RemoteError, RemoteKeystore, RemoteKeystoreConfig, TlsFiles, VrfContext};
use sp_core::{crypto::KeyTypeId, ed25519, sr25519};
use sp_keystore::Keystore;
use std::time::Duration;

const BABE: KeyTypeId = KeyTypeId(*b"babe");
const GRAN: KeyTypeId = KeyTypeId(*b"gran");
const IMON: KeyTypeId = KeyTypeId(*b"imon");
/// The epoch randomness of the simulated chain.
const RANDOMNESS: [u8; 32] = [7; 32];
/// Slots per epoch.
const EPOCH_SLOTS: u64 = 600;
/// The GRANDPA authority set.
const SET_ID: u64 = 1;

/// A validator's public keys.
#[derive(Clone, Debug)]
pub struct ValidatorKeys {
    /// BABE (sr25519).
    pub babe: sr25519::Public,
    /// GRANDPA (ed25519).
    pub gran: ed25519::Public,
    /// I'm-online (sr25519).
    pub imon: sr25519::Public,
}

impl ValidatorKeys {
    /// The keys of a secret URI (`//Alice`) for every key type.
    pub fn from_suri(suri: &str) -> Self {
        use sp_core::Pair;
        let sr = sr25519::Pair::from_string(suri, None).map(|p| p.public()).unwrap_or_default();
        let ed = ed25519::Pair::from_string(suri, None).map(|p| p.public()).unwrap_or_default();
        Self { babe: sr, gran: ed, imon: sr }
    }
}

/// How a node reaches its signers.
#[derive(Clone, Debug)]
pub struct NodeSpec {
    /// Node identity (its certificate's common name).
    pub name: String,
    /// Signer URLs, in the node's order of preference.
    pub urls: Vec<String>,
    /// Mutual-TLS files (CA, this node's certificate and key).
    pub tls: TlsFiles,
    /// Genesis hash.
    pub chain: [u8; 32],
    /// One attempt at one signer.
    pub timeout: Duration,
    /// Varies what this node builds (block parents, vote targets), as two real nodes would.
    pub salt: u8,
    /// The validator this node runs for (index in the run) and its keys.
    pub validator: usize,
    /// The validator's keys.
    pub keys: ValidatorKeys,
    /// A heartbeat every this many slots (a session).
    pub session_slots: u64,
    /// The claim-store id the node's signers must share (`--remote-keystore-store-id`). `None`:
    /// no signer is used until every configured signer has reported one and the same id.
    pub store_id: Option<String>,
}

/// What one slot brought a node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SlotReport {
    /// The node won the slot (VRF) and sealed a block.
    pub sealed: bool,
    /// The node voted (prevote and precommit) in the slot's round.
    pub voted: bool,
    /// The node's heartbeat was signed.
    pub heartbeat: bool,
    /// Requests refused (not active, conflicts).
    pub refused: u32,
    /// Requests that failed (no signer answered, store unavailable).
    pub failed: u32,
}

/// A simulated node.
pub struct SimNode {
    spec: NodeSpec,
    keystore: RemoteKeystore,
}

impl SimNode {
    /// Connect a node to its signers.
    pub fn start(spec: NodeSpec) -> Result<Self, RemoteError> {
        let keystore = RemoteKeystore::new(RemoteKeystoreConfig {
            urls: spec.urls.clone(),
            chain: spec.chain,
            tls: Some(spec.tls.clone()),
            timeout: spec.timeout,
            store_id: spec.store_id.clone(),
        })?;
        Ok(Self { spec, keystore })
    }

    /// The node's name.
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// Whether the last lease keep-alive said this node is active.
    pub fn believes_active(&self) -> bool {
        self.keystore.lease_states().iter().any(|s| s.active)
    }

    /// Do what a node does in `slot`: claim it by VRF and seal a block, vote in the slot's GRANDPA
    /// round, and send a heartbeat at a session's first slot. Every signature goes to `judge`.
    pub fn run_slot(&self, slot: u64, judge: &Judge) -> SlotReport {
        let mut report = SlotReport::default();
        self.seal(slot, judge, &mut report);
        self.vote(slot, judge, &mut report);
        if slot.is_multiple_of(self.spec.session_slots) {
            self.heartbeat(slot, judge, &mut report);
        }
        report
    }

    fn received(&self, duty: DutyId, public: Vec<u8>, message: Vec<u8>, signature: Vec<u8>) -> Received {
        Received { node: self.spec.name.clone(), validator: self.spec.validator, duty, public, message, header: None, signature }
    }

    fn seal(&self, slot: u64, judge: &Judge, report: &mut SlotReport) {
        let ctx = VrfContext { randomness: RANDOMNESS, slot, epoch: slot / EPOCH_SLOTS };
        self.keystore.note_vrf_candidates([ctx]);
        let data = exclave_policies::vrf_sign_data(&ctx);
        match self.keystore.sr25519_vrf_sign(BABE, &self.spec.keys.babe, &data) {
            Ok(Some(_)) => {}
            Ok(None) => return,
            Err(_) => return report.failed += 1,
        }
        let header = babe_header(slot, slot as u32, self.spec.salt);
        self.keystore.note_seal_header(header.encode());
        let hash = pre_hash(&header);
        match self.keystore.sr25519_sign(BABE, &self.spec.keys.babe, &hash) {
            Ok(Some(sig)) => {
                report.sealed = true;
                let mut r = self.received(DutyId::Seal { slot }, self.spec.keys.babe.0.to_vec(), hash.to_vec(), sig.0.to_vec());
                r.header = Some(header);
                judge.record(r);
            }
            Ok(None) => report.refused += 1,
            Err(_) => report.failed += 1,
        }
    }

    fn vote(&self, round: u64, judge: &Judge, report: &mut SlotReport) {
        if !self.keystore.has_keys(&[(self.spec.keys.gran.0.to_vec(), GRAN)]) {
            return;
        }
        let mut voted = true;
        for precommit in [false, true] {
            let message = grandpa_payload(precommit, self.spec.salt, round as u32, round, SET_ID);
            match self.keystore.ed25519_sign(GRAN, &self.spec.keys.gran, &message) {
                Ok(Some(sig)) => {
                    judge.record(self.received(DutyId::Vote { round, precommit }, self.spec.keys.gran.0.to_vec(), message, sig.0.to_vec()))
                }
                Ok(None) => voted = false,
                Err(sp_keystore::Error::Unavailable) => {
                    voted = false;
                    report.failed += 1;
                }
                Err(_) => {
                    voted = false;
                    report.refused += 1;
                }
            }
        }
        report.voted = voted;
    }

    fn heartbeat(&self, slot: u64, judge: &Judge, report: &mut SlotReport) {
        let session = (slot / self.spec.session_slots) as u32;
        let message = heartbeat(slot as u32 + u32::from(self.spec.salt), session);
        match self.keystore.sr25519_sign(IMON, &self.spec.keys.imon, &message) {
            Ok(Some(sig)) => {
                report.heartbeat = true;
                judge.record(self.received(DutyId::Heartbeat { session }, self.spec.keys.imon.0.to_vec(), message, sig.0.to_vec()));
            }
            Ok(None) => report.refused += 1,
            Err(_) => report.failed += 1,
        }
    }
}
