//! The VRF candidate resolver finds the inputs BABE built a transcript from, and nothing else.

use exclave_node_integration::EpochVrfCandidates;
use exclave_policies::VrfContext;

#[test]
fn resolves_noted_epochs_within_the_window_only() {
    let c = EpochVrfCandidates::new(6000, 2);
    let now_ms = 1_700_000_000_000u64;
    let slot = now_ms / 6000;
    let data = sp_consensus_babe::make_vrf_sign_data(&[3; 32], (slot + 1).into(), 10);
    assert_eq!(c.resolve(data.as_ref(), now_ms), None, "no epoch noted yet");
    c.note_epoch([9; 32], 9);
    c.note_epoch([3; 32], 10);
    assert_eq!(c.resolve(data.as_ref(), now_ms), Some(VrfContext { randomness: [3; 32], slot: slot + 1, epoch: 10 }));
    let far = sp_consensus_babe::make_vrf_sign_data(&[3; 32], (slot + 50).into(), 10);
    assert_eq!(c.resolve(far.as_ref(), now_ms), None, "outside the slot window");
    let other_epoch = sp_consensus_babe::make_vrf_sign_data(&[3; 32], slot.into(), 11);
    assert_eq!(c.resolve(other_epoch.as_ref(), now_ms), None, "epoch index is part of the transcript");
    for i in 0..10 {
        c.note_epoch([i; 32], 100 + u64::from(i));
    }
    assert_eq!(c.resolve(data.as_ref(), now_ms), None, "old epochs are forgotten");
}
