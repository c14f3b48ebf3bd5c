//! "Which of these is mine" costs round trips only for keys the signer lists: GRANDPA's
//! `has_keys` per voter over 1,000 voters, as `sc-consensus-grandpa`'s `local_authority_id`
//! asks, against a fake signer that journals every request. When the key list cannot be fetched,
//! every answer is `false` (the node neither authors nor votes) and the signer is not asked once
//! per voter.

use crate::fake_signer::{KeystoreBuilder, Net, Reply};
use exclave_protocol::ErrorKind;
use sp_core::crypto::KeyTypeId;
use sp_keystore::Keystore;
use std::time::Duration;

const GRAN: KeyTypeId = KeyTypeId(*b"gran");
const VOTERS: u16 = 1000;

fn voter(i: u16) -> Vec<u8> {
    let mut key = vec![0u8; 32];
    key[..2].copy_from_slice(&i.to_le_bytes());
    key
}

/// `local_authority_id`: the first voter `has_keys` answers `true` for.
fn local_authority(ks: &dyn Keystore) -> Option<u16> {
    (0..VOTERS).find(|i| ks.has_keys(&[(voter(*i), GRAN)]))
}

#[test]
fn only_listed_keys_are_asked_about() {
    struct Case {
        name: &'static str,
        holds: Option<u16>,
        signer_says: bool,
        want: Option<u16>,
        has_keys_requests: usize,
    }
    let cases = [
        Case { name: "holds the last voter", holds: Some(VOTERS - 1), signer_says: true, want: Some(VOTERS - 1), has_keys_requests: 1 },
        Case { name: "holds it, standby (signer says no)", holds: Some(VOTERS - 1), signer_says: false, want: None, has_keys_requests: 1 },
        Case { name: "holds none", holds: None, signer_says: true, want: None, has_keys_requests: 0 },
    ];
    let net = Net::new();
    let mut failures = Vec::new();
    for case in cases {
        net.clear_journal();
        let mut fake = net.signer("s").has_keys(case.signer_says);
        if let Some(i) = case.holds {
            fake = fake.holds(&voter(i));
        }
        let fake = fake.start();
        let ks = KeystoreBuilder::new().url(&fake.url).build();
        let got = local_authority(&ks);
        let (keys, asked) = (net.trace(&["keys"]).len(), net.trace(&["hasKeys"]).len());
        if got != case.want || keys != 1 || asked != case.has_keys_requests {
            failures.push(format!(
                "{}: found {got:?} after {keys} keys and {asked} hasKeys requests, expected {:?} after 1 and {}",
                case.name, case.want, case.has_keys_requests
            ));
        }
    }
    crate::assert_rows("held keys", &failures);
}

#[test]
fn an_unfetchable_key_list_answers_false_without_a_round_trip_per_voter() {
    let net = Net::new();
    for (name, failure) in [("refused", Reply::Refuse(ErrorKind::Unauthorised)), ("no answer", Reply::Hang)] {
        net.clear_journal();
        let fake = net.signer("s").holds(&voter(0)).keys_script([failure.clone(), failure]).start();
        let ks = KeystoreBuilder::new().url(&fake.url).timeout(Duration::from_millis(300)).build();
        assert_eq!(local_authority(&ks), None, "{name}: no voter is ours while the list cannot be fetched");
        assert_eq!(local_authority(&ks), None, "{name}: still none within the retry pause");
        assert_eq!(net.trace(&["keys"]).len(), 1, "{name}: one failed fetch for 2,000 has_keys calls");
        assert!(net.trace(&["hasKeys"]).is_empty(), "{name}: no hasKeys request");
        // After the pause the list is fetched again; the second scripted failure, then the list.
        std::thread::sleep(Duration::from_millis(1100));
        assert_eq!(local_authority(&ks), None, "{name}: the second fetch fails too");
        std::thread::sleep(Duration::from_millis(1100));
        assert_eq!(local_authority(&ks), Some(0), "{name}: found once the list is fetched");
        assert_eq!(net.trace(&["keys"]).len(), 3, "{name}");
        assert_eq!(net.trace(&["hasKeys"]).len(), 1, "{name}");
    }
}
