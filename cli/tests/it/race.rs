//! The Horcrux lesson: many concurrent requests for one duty, over separate TLS connections,
//! yield exactly one signature; identical concurrent requests all get that one signature.

use crate::common::*;
use sp_core::{crypto::KeyTypeId, ed25519, sr25519, Pair};
use sp_keystore::Keystore;
use std::sync::Arc;

#[test]
fn sixty_four_racing_clients_one_signature_per_duty() {
    let dir = tempfile::tempdir().expect("tempdir");
    let signer = Signer::start(dir.path(), 0);
    let alice_ed = ed25519::Pair::from_string("//Alice", None).expect("dev").public();
    let stores: Vec<_> = (0..8).map(|_| signer.keystore()).collect();
    for round in 1..=5u64 {
        let barrier = Arc::new(std::sync::Barrier::new(64));
        let handles: Vec<_> = (0..64u8)
            .map(|i| {
                let (ks, barrier) = (stores[i as usize % 8].clone(), barrier.clone());
                std::thread::spawn(move || {
                    let msg = grandpa_payload(false, i, 100, round, 1);
                    barrier.wait();
                    ks.ed25519_sign(KeyTypeId(*b"gran"), &alice_ed, &msg).ok().flatten().map(|s| (i, s))
                })
            })
            .collect();
        let winners: Vec<_> = handles.into_iter().filter_map(|h| h.join().expect("thread")).collect();
        assert_eq!(winners.len(), 1, "round {round}: exactly one of 64 different prevotes is signed, got {}", winners.len());
        let (i, sig) = &winners[0];
        assert!(ed25519::Pair::verify(sig, grandpa_payload(false, *i, 100, round, 1), &alice_ed));
    }

    let alice_sr = sr25519::Pair::from_string("//Alice", None).expect("dev").public();
    let hb = heartbeat(5, 77);
    let handles: Vec<_> = (0..32)
        .map(|i| {
            let (ks, hb) = (stores[i % 8].clone(), hb.clone());
            std::thread::spawn(move || ks.sr25519_sign(KeyTypeId(*b"imon"), &alice_sr, &hb).expect("sign").expect("signed"))
        })
        .collect();
    let sigs: Vec<_> = handles.into_iter().map(|h| h.join().expect("thread")).collect();
    assert!(sigs.iter().all(|s| *s == sigs[0]), "identical concurrent heartbeats must all get the one stored signature");
}
