//! [`RoutingKeystore`]: one `Keystore` for a Polkadot or Kusama validator, sending each key type
//! either to the Exclave signers or to the node's own `LocalKeystore`.
//!
//! Polkadot's session keys are `gran, babe, para, asgn, audi, beef`. The consensus and
//! authority-discovery keys go to the signers, which claim every slot, round and vote. The
//! parachain keys cannot: approval voting and disputes take raw key pairs from the node's
//! `LocalKeystore` (the assignment VRF's extra transcript depends on its own output, which the
//! `Keystore` trait cannot express), so `para` and `asgn` (by default) stay in the local keystore
//! in the node's base path, where those subsystems look for them. A call for a local key type is
//! answered by the local keystore alone; every other call goes to the signers.
//!
//! What this is **not**: protection for the local keys. Parachain duties signed locally are not
//! claimed; docs/polkadot.md says what that means for a validator with several nodes.

use exclave_policies::KeyType;
use sp_core::{
    crypto::KeyTypeId,
    ecdsa, ed25519, sr25519,
    sr25519::vrf::{VrfInput, VrfPreOutput, VrfSignData, VrfSignature},
};
use sp_keystore::{Error, Keystore, KeystorePtr};

/// The key types a Polkadot validator keeps in its node by default: parachain validation
/// (`para`) and approval assignment (`asgn`).
pub const DEFAULT_LOCAL_KEY_TYPES: [KeyTypeId; 2] = [KeyTypeId(*b"para"), KeyTypeId(*b"asgn")];

/// Why a key type cannot stay local.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoutingError {
    /// A key type the signers protect with claims (or authority discovery, which must stay
    /// apart from them) was named as local: that would sign its duties unclaimed.
    #[error("key type '{0}' cannot stay local: the Exclave signers claim its duties (only key types such as para and asgn may)")]
    Protected(String),
    /// Not four ASCII characters.
    #[error("'{0}' is not a key type (four ASCII characters, such as para)")]
    Malformed(String),
}

/// Parse a key type named on the command line (`para`).
pub fn parse_key_type(name: &str) -> Result<KeyTypeId, RoutingError> {
    let bytes: [u8; 4] = name.as_bytes().try_into().map_err(|_| RoutingError::Malformed(name.into()))?;
    if !bytes.iter().all(u8::is_ascii_graphic) {
        return Err(RoutingError::Malformed(name.into()));
    }
    Ok(KeyTypeId(bytes))
}

/// Refuses the key types the signers protect with claims, and `audi`.
pub fn may_stay_local(kt: KeyTypeId) -> Result<(), RoutingError> {
    if KeyType(kt.0).is_protected() || kt.0 == *b"audi" {
        return Err(RoutingError::Protected(String::from_utf8_lossy(&kt.0).into_owned()));
    }
    Ok(())
}

/// A keystore that keeps `local` key types in the node and sends every other one to the signers.
pub struct RoutingKeystore {
    remote: KeystorePtr,
    local: KeystorePtr,
    local_types: Vec<KeyTypeId>,
}

impl RoutingKeystore {
    /// Route `local_types` to `local` (the node's `LocalKeystore`) and everything else to
    /// `remote` (the `RemoteKeystore`). Refuses a key type the signers protect or `audi`.
    pub fn new(remote: KeystorePtr, local: KeystorePtr, local_types: &[KeyTypeId]) -> Result<Self, RoutingError> {
        for kt in local_types {
            may_stay_local(*kt)?;
        }
        Ok(Self { remote, local, local_types: local_types.to_vec() })
    }

    /// Where calls for `kt` go.
    fn to(&self, kt: KeyTypeId) -> &dyn Keystore {
        if self.local_types.contains(&kt) {
            &*self.local
        } else {
            &*self.remote
        }
    }

    /// The key types kept in the node.
    pub fn local_types(&self) -> &[KeyTypeId] {
        &self.local_types
    }
}

impl Keystore for RoutingKeystore {
    fn sr25519_public_keys(&self, kt: KeyTypeId) -> Vec<sr25519::Public> {
        self.to(kt).sr25519_public_keys(kt)
    }

    fn sr25519_generate_new(&self, kt: KeyTypeId, seed: Option<&str>) -> Result<sr25519::Public, Error> {
        self.to(kt).sr25519_generate_new(kt, seed)
    }

    fn sr25519_sign(&self, kt: KeyTypeId, key: &sr25519::Public, msg: &[u8]) -> Result<Option<sr25519::Signature>, Error> {
        self.to(kt).sr25519_sign(kt, key, msg)
    }

    fn sr25519_vrf_sign(&self, kt: KeyTypeId, key: &sr25519::Public, data: &VrfSignData) -> Result<Option<VrfSignature>, Error> {
        self.to(kt).sr25519_vrf_sign(kt, key, data)
    }

    fn sr25519_vrf_pre_output(&self, kt: KeyTypeId, key: &sr25519::Public, input: &VrfInput) -> Result<Option<VrfPreOutput>, Error> {
        self.to(kt).sr25519_vrf_pre_output(kt, key, input)
    }

    fn ed25519_public_keys(&self, kt: KeyTypeId) -> Vec<ed25519::Public> {
        self.to(kt).ed25519_public_keys(kt)
    }

    fn ed25519_generate_new(&self, kt: KeyTypeId, seed: Option<&str>) -> Result<ed25519::Public, Error> {
        self.to(kt).ed25519_generate_new(kt, seed)
    }

    fn ed25519_sign(&self, kt: KeyTypeId, key: &ed25519::Public, msg: &[u8]) -> Result<Option<ed25519::Signature>, Error> {
        self.to(kt).ed25519_sign(kt, key, msg)
    }

    fn ecdsa_public_keys(&self, kt: KeyTypeId) -> Vec<ecdsa::Public> {
        self.to(kt).ecdsa_public_keys(kt)
    }

    fn ecdsa_generate_new(&self, kt: KeyTypeId, seed: Option<&str>) -> Result<ecdsa::Public, Error> {
        self.to(kt).ecdsa_generate_new(kt, seed)
    }

    fn ecdsa_sign(&self, kt: KeyTypeId, key: &ecdsa::Public, msg: &[u8]) -> Result<Option<ecdsa::Signature>, Error> {
        self.to(kt).ecdsa_sign(kt, key, msg)
    }

    fn ecdsa_sign_prehashed(&self, kt: KeyTypeId, key: &ecdsa::Public, msg: &[u8; 32]) -> Result<Option<ecdsa::Signature>, Error> {
        self.to(kt).ecdsa_sign_prehashed(kt, key, msg)
    }

    fn insert(&self, kt: KeyTypeId, suri: &str, public: &[u8]) -> Result<(), ()> {
        self.to(kt).insert(kt, suri, public)
    }

    fn keys(&self, kt: KeyTypeId) -> Result<Vec<Vec<u8>>, Error> {
        self.to(kt).keys(kt)
    }

    /// `true` only if each side holds its share: the local keystore the local key types, the
    /// signers (which also decide whether this node is the active one) the rest.
    fn has_keys(&self, public_keys: &[(Vec<u8>, KeyTypeId)]) -> bool {
        let (local, remote): (Vec<_>, Vec<_>) = public_keys.iter().cloned().partition(|(_, kt)| self.local_types.contains(kt));
        (local.is_empty() || self.local.has_keys(&local)) && (remote.is_empty() || self.remote.has_keys(&remote))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sp_keystore::testing::MemoryKeystore;
    use std::sync::Arc;

    #[test]
    fn protected_types_and_audi_cannot_stay_local() {
        let (remote, local): (KeystorePtr, KeystorePtr) = (Arc::new(MemoryKeystore::new()), Arc::new(MemoryKeystore::new()));
        for name in ["babe", "gran", "imon", "beef", "audi"] {
            let kt = parse_key_type(name).expect("a key type");
            let err = RoutingKeystore::new(remote.clone(), local.clone(), &[kt]).err();
            assert_eq!(err, Some(RoutingError::Protected(name.into())), "{name}");
        }
        assert!(RoutingKeystore::new(remote, local, &DEFAULT_LOCAL_KEY_TYPES).is_ok());
        assert_eq!(parse_key_type("parachain"), Err(RoutingError::Malformed("parachain".into())));
        assert_eq!(parse_key_type("pa a"), Err(RoutingError::Malformed("pa a".into())));
    }

    #[test]
    fn each_key_type_goes_to_its_side_and_has_keys_asks_both() {
        let (remote, local) = (Arc::new(MemoryKeystore::new()), Arc::new(MemoryKeystore::new()));
        let ks = RoutingKeystore::new(remote.clone(), local.clone(), &DEFAULT_LOCAL_KEY_TYPES).expect("router");
        let (para, babe) = (KeyTypeId(*b"para"), KeyTypeId(*b"babe"));
        let p = ks.sr25519_generate_new(para, None).expect("para");
        let b = ks.sr25519_generate_new(babe, None).expect("babe");
        assert_eq!((local.sr25519_public_keys(para), remote.sr25519_public_keys(para)), (vec![p], vec![]));
        assert_eq!((local.sr25519_public_keys(babe), remote.sr25519_public_keys(babe)), (vec![], vec![b]));
        assert!(ks.has_keys(&[(p.0.to_vec(), para), (b.0.to_vec(), babe)]));
        assert!(!ks.has_keys(&[(b.0.to_vec(), para)]), "the babe key is not a local para key");
        assert!(ks.sr25519_sign(para, &p, b"statement").expect("signs").is_some());
        assert_eq!(ks.sr25519_sign(babe, &p, b"x").expect("no such remote key"), None);
    }
}
