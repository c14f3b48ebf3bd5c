//! A Polkadot validator's session keys (`gran, babe, para, asgn, audi, beef`) through the node
//! integration's `RoutingKeystore`: `author_rotateKeys` makes the parachain keys in the node's
//! own `LocalKeystore` (where approval voting and disputes read them) and every other key in the
//! signer, in the runtime's order; `author_hasSessionKeys` asks both sides.

use crate::common::*;
use exclave_node_integration::{RoutingKeystore, DEFAULT_LOCAL_KEY_TYPES};
use sp_core::crypto::KeyTypeId;
use sp_keystore::{Keystore, KeystorePtr};
use std::sync::Arc;

#[derive(Clone, Copy, Debug)]
enum Crypto {
    Sr25519,
    Ed25519,
    Ecdsa,
}

/// Polkadot's `SessionKeys`, in field order, with each key's scheme.
const POLKADOT_SESSION_KEYS: [(&[u8; 4], Crypto); 6] = [
    (b"gran", Crypto::Ed25519),
    (b"babe", Crypto::Sr25519),
    (b"para", Crypto::Sr25519),
    (b"asgn", Crypto::Sr25519),
    (b"audi", Crypto::Sr25519),
    (b"beef", Crypto::Ecdsa),
];

/// What `SessionKeys::generate(None)` asks of the keystore: one new key per field, in order.
fn rotate_keys(ks: &dyn Keystore) -> Vec<(Vec<u8>, KeyTypeId)> {
    POLKADOT_SESSION_KEYS
        .iter()
        .map(|(kt, crypto)| {
            let kt = KeyTypeId(**kt);
            let public = match crypto {
                Crypto::Sr25519 => ks.sr25519_generate_new(kt, None).map(|p| p.0.to_vec()),
                Crypto::Ed25519 => ks.ed25519_generate_new(kt, None).map(|p| p.0.to_vec()),
                Crypto::Ecdsa => ks.ecdsa_generate_new(kt, None).map(|p| p.0.to_vec()),
            };
            (public.unwrap_or_else(|e| panic!("generating the {kt:?} key: {e}")), kt)
        })
        .collect()
}

#[test]
fn polkadot_session_keys_split_between_the_node_and_the_signer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let signer = Signer::start(dir.path(), 0);
    let base_path = tempfile::tempdir().expect("the node's keystore directory");
    let local: KeystorePtr = Arc::new(sc_keystore::LocalKeystore::open(base_path.path(), None).expect("local keystore"));
    let ks = RoutingKeystore::new(signer.keystore(), local.clone(), &DEFAULT_LOCAL_KEY_TYPES).expect("router");

    let session = rotate_keys(&ks);
    let observer = signer.keystore();
    for (public, kt) in &session {
        let in_node = local.keys(*kt).expect("local keys").contains(public);
        let in_signer = observer.keys(*kt).expect("signer keys").contains(public);
        let local_type = DEFAULT_LOCAL_KEY_TYPES.contains(kt);
        assert_eq!((in_node, in_signer), (local_type, !local_type), "{kt:?}: in the node {in_node}, in the signer {in_signer}");
    }
    let on_disk = std::fs::read_dir(base_path.path()).expect("read the keystore directory").count();
    assert_eq!(on_disk, 2, "the para and asgn key files are in the node's keystore directory");
    assert!(ks.has_keys(&session), "author_hasSessionKeys: every key is held by its side");
    let mut wrong_side = session.clone();
    wrong_side[2].1 = KeyTypeId(*b"babe");
    assert!(!ks.has_keys(&wrong_side), "the para key is not a signer babe key");

    // A parachain statement is signed in the node: the signer sees no request for it.
    let (para, para_kt) = (&session[2].0, session[2].1);
    let before = signer.rpc_calls("sign");
    let public = sp_core::sr25519::Public::from_raw(para.as_slice().try_into().expect("32 bytes"));
    let sig = ks.sr25519_sign(para_kt, &public, b"a backing statement").expect("signed locally").expect("a signature");
    assert!(<sp_core::sr25519::Pair as sp_core::Pair>::verify(&sig, b"a backing statement", &public), "the local signature verifies");
    assert_eq!(signer.rpc_calls("sign"), before, "no request reached the signer");
}
