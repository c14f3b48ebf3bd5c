//! Per-client permissions, deny by default (client × key × operation, as Dirk grants them): the
//! `[[clients]]` tables of the config, checked before every request. A client is named by its
//! certificate's common name and, optionally, pinned to one certificate by its SHA-256
//! fingerprint. Anything not granted is refused with a reason naming the client and the grant
//! it lacks.
//!
//! Pure rules: no I/O. Which validator a key belongs to comes from the lease settings.

use exclave_policies::KeyType;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};

/// What a client may be granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    /// `exclave_sign` (per key type, see `key_types`).
    Sign,
    /// `exclave_vrfSign`, `exclave_vrfPreOutput`.
    Vrf,
    /// `exclave_hasKeys` (answers `false` for keys not granted).
    HasKeys,
    /// `exclave_lease`: take or renew the active-node lease of the granted keys' validators.
    Lease,
    /// `exclave_keys`, `exclave_publicKeys` (list only granted keys).
    ListKeys,
    /// `exclave_generateKey`, `exclave_insertKey`, proofs of possession: only with
    /// `key_management = true`, never by default.
    KeyManagement,
}

impl Operation {
    /// The name used in configs and refusals.
    pub fn name(self) -> &'static str {
        match self {
            Operation::Sign => "sign",
            Operation::Vrf => "vrf",
            Operation::HasKeys => "has_keys",
            Operation::Lease => "lease",
            Operation::ListKeys => "list_keys",
            Operation::KeyManagement => "key_management",
        }
    }
}

/// The operations a `[[clients]]` entry gets when it names none: everything a node does, not key
/// management.
pub fn default_operations() -> Vec<Operation> {
    vec![Operation::Sign, Operation::Vrf, Operation::HasKeys, Operation::Lease, Operation::ListKeys]
}

/// One `[[clients]]` table.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// The client certificate's common name (`alice-1`).
    pub name: String,
    /// Optional: the SHA-256 fingerprint (hex) of the one certificate this client may use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Public keys (`0x…` hex) the client may use, or `"*"` for every key the signer holds.
    #[serde(default)]
    pub keys: Vec<String>,
    /// Validators (lease names: `[lease] validator` or `[[lease.groups]] name`) whose keys the
    /// client may use.
    #[serde(default)]
    pub validators: Vec<String>,
    /// Operations granted (default: sign, vrf, has_keys, lease, list_keys).
    #[serde(default = "default_operations")]
    pub operations: Vec<Operation>,
    /// Key types the client may sign with (default: every type).
    #[serde(default)]
    pub key_types: Vec<String>,
    /// Generate and insert keys (`author_rotateKeys`, `author_insertKey`); off by default.
    #[serde(default)]
    pub key_management: bool,
}

/// Why a `[[clients]]` table is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrantError {
    /// No `[[clients]]` table at all.
    #[error("no [[clients]] section: every client would be refused; grant each node its keys (docs/security.md)")]
    NoClients,
    /// A malformed or repeated entry.
    #[error("[[clients]] {name:?}: {why}")]
    Invalid {
        /// The entry's name.
        name: String,
        /// What is wrong.
        why: String,
    },
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// The client is in no `[[clients]]` table.
    #[error("client {client:?} is not in the signer's [[clients]]: nothing is granted to it")]
    UnknownClient {
        /// The client.
        client: String,
    },
    /// The certificate is not the pinned one.
    #[error("client {client:?} presented a certificate whose SHA-256 is not the one pinned in its [[clients]] entry")]
    WrongCertificate {
        /// The client.
        client: String,
    },
    /// The operation, key type or key is not granted.
    #[error("client {client:?} is not granted {what}")]
    NotGranted {
        /// The client.
        client: String,
        /// The missing grant, spelled as in the config.
        what: String,
    },
}

/// One client's grant, parsed.
#[derive(Debug, Clone)]
struct Grant {
    sha256: Option<[u8; 32]>,
    all_keys: bool,
    keys: BTreeSet<Vec<u8>>,
    validators: BTreeSet<String>,
    operations: BTreeSet<Operation>,
    key_types: Option<BTreeSet<KeyType>>,
}

/// Every client's grant.
#[derive(Debug, Clone, Default)]
pub struct Grants {
    clients: HashMap<String, Grant>,
    allow_all: bool,
    /// `--dev --insecure-plaintext`: clients without a certificate (named
    /// `insecure-plaintext-<port>`) get the dev client's grant.
    plaintext_as: Option<String>,
}

/// The name plaintext dev clients go by, followed by their port.
pub const PLAINTEXT_PREFIX: &str = "insecure-plaintext-";

impl Grants {
    /// Parse the `[[clients]]` tables; `known_validators` are the lease's validator names.
    pub fn from_config(clients: &[ClientConfig], known_validators: &[String]) -> Result<Self, GrantError> {
        if clients.is_empty() {
            return Err(GrantError::NoClients);
        }
        let mut parsed = HashMap::new();
        for c in clients {
            let invalid = |why: String| GrantError::Invalid { name: c.name.clone(), why };
            if !crate::tls::valid_client_name(&c.name) {
                return Err(invalid("a client name is 1 to 64 of A-Z a-z 0-9 . _ - (a certificate's common name)".into()));
            }
            let grant = parse(c, known_validators).map_err(invalid)?;
            if parsed.insert(c.name.clone(), grant).is_some() {
                return Err(invalid("named twice".into()));
            }
        }
        Ok(Self { clients: parsed, allow_all: false, plaintext_as: None })
    }

    /// Every key and operation, key management included, for each of `names` (`--dev`).
    pub fn everything_for(names: &[&str]) -> Self {
        let grant = Grant {
            sha256: None,
            all_keys: true,
            keys: BTreeSet::new(),
            validators: BTreeSet::new(),
            operations: [default_operations(), vec![Operation::KeyManagement]].concat().into_iter().collect(),
            key_types: None,
        };
        Self { clients: names.iter().map(|n| ((*n).to_string(), grant.clone())).collect(), allow_all: false, plaintext_as: None }
    }

    /// `--dev --insecure-plaintext` (loopback only): clients without a certificate get `name`'s
    /// grant.
    pub fn with_plaintext_clients_as(mut self, name: &str) -> Self {
        self.plaintext_as = Some(name.into());
        self
    }

    fn grant_of(&self, client: &str) -> Option<&Grant> {
        match &self.plaintext_as {
            Some(dev) if client.starts_with(PLAINTEXT_PREFIX) => self.clients.get(dev),
            _ => self.clients.get(client),
        }
    }

    /// Every client may do everything: only for engines built in-process by tests and tools,
    /// never from a config.
    pub fn insecure_allow_all() -> Self {
        Self { clients: HashMap::new(), allow_all: true, plaintext_as: None }
    }

    /// Whether `client` is configured (for metric labels).
    pub fn knows(&self, client: &str) -> bool {
        self.clients.contains_key(client)
    }

    /// Whether `client` may do `op` at all (before any key is looked at).
    pub fn may(&self, client: &str, op: Operation) -> bool {
        self.check(client, op, None).is_ok()
    }

    /// Check a certificate against the client's pin, if it has one.
    pub fn check_certificate(&self, client: &str, sha256: &[u8; 32]) -> Result<(), Denied> {
        match self.clients.get(client) {
            Some(Grant { sha256: Some(pin), .. }) if pin != sha256 => Err(Denied::WrongCertificate { client: client.into() }),
            _ => Ok(()),
        }
    }

    /// May `client` do `op` (with the key `key`, of `validator`, if the operation names one)?
    pub fn check(&self, client: &str, op: Operation, key: Option<(KeyType, &[u8], &str)>) -> Result<(), Denied> {
        if self.allow_all {
            return Ok(());
        }
        let grant = self.grant_of(client).ok_or_else(|| Denied::UnknownClient { client: client.into() })?;
        let denied = |what: String| Denied::NotGranted { client: client.into(), what };
        if !grant.operations.contains(&op) {
            return Err(denied(format!("operation {:?}", op.name())));
        }
        let Some((kt, public, validator)) = key else { return Ok(()) };
        if op == Operation::Sign && grant.key_types.as_ref().is_some_and(|t| !t.contains(&kt)) {
            return Err(denied(format!("signing with {kt} keys (key_types)")));
        }
        if grant.all_keys || grant.keys.contains(public) || grant.validators.contains(validator) {
            return Ok(());
        }
        Err(denied(format!("the {kt} key 0x{} (keys or validators)", hex::encode(public))))
    }
}

fn parse(c: &ClientConfig, known_validators: &[String]) -> Result<Grant, String> {
    let sha256 = c
        .sha256
        .as_deref()
        .map(|h| {
            hex::decode(h.trim_start_matches("0x").replace(':', ""))
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .ok_or_else(|| format!("sha256 {h:?} is not 32 bytes of hex"))
        })
        .transpose()?;
    let mut keys = BTreeSet::new();
    let mut all_keys = false;
    for k in &c.keys {
        if k == "*" {
            all_keys = true;
            continue;
        }
        keys.insert(hex::decode(k.trim_start_matches("0x")).map_err(|_| format!("key {k:?} is neither \"*\" nor 0x-hex"))?);
    }
    for v in &c.validators {
        if !known_validators.contains(v) {
            return Err(format!("validator {v:?} is not a lease validator ([lease] validator or [[lease.groups]] name)"));
        }
    }
    if !all_keys && keys.is_empty() && c.validators.is_empty() {
        return Err("grants no key: give keys = [\"0x…\"] (or \"*\") or validators = [\"…\"]".into());
    }
    let mut operations: BTreeSet<Operation> = c.operations.iter().copied().collect();
    if operations.contains(&Operation::KeyManagement) {
        return Err("key management is granted with key_management = true, not in operations".into());
    }
    if c.key_management {
        operations.insert(Operation::KeyManagement);
    }
    let key_types = if c.key_types.is_empty() {
        None
    } else {
        let parse_kt = |t: &String| t.parse::<exclave_protocol::WireKeyType>().map(|w| KeyType(w.0)).map_err(|_| format!("key type {t:?}"));
        Some(c.key_types.iter().map(parse_kt).collect::<Result<_, _>>()?)
    };
    Ok(Grant { sha256, all_keys, keys, validators: c.validators.iter().cloned().collect(), operations, key_types })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE: [u8; 32] = [0xa1; 32];
    const BOB: [u8; 32] = [0xb0; 32];

    fn client(name: &str) -> ClientConfig {
        ClientConfig {
            name: name.into(),
            sha256: None,
            keys: Vec::new(),
            validators: Vec::new(),
            operations: default_operations(),
            key_types: Vec::new(),
            key_management: false,
        }
    }

    fn grants() -> Grants {
        let alice_1 = ClientConfig { keys: vec![format!("0x{}", hex::encode(ALICE))], ..client("alice-1") };
        let bob_1 = ClientConfig { validators: vec!["bob".into()], key_types: vec!["gran".into()], ..client("bob-1") };
        let monitor =
            ClientConfig { keys: vec!["*".into()], operations: vec![Operation::ListKeys, Operation::HasKeys], ..client("monitor") };
        let ops = ClientConfig {
            keys: vec!["*".into()],
            operations: vec![],
            key_management: true,
            sha256: Some("11".repeat(32)),
            ..client("ops")
        };
        Grants::from_config(&[alice_1, bob_1, monitor, ops], &["alice".into(), "bob".into()]).expect("valid")
    }

    #[test]
    fn each_client_gets_exactly_its_grant() {
        let g = grants();
        let gran = KeyType::GRANDPA;
        let babe = KeyType::BABE;
        // (client, operation, key and its validator, allowed or a piece of the refusal)
        type Row<'a> = (&'a str, Operation, Option<(KeyType, [u8; 32], &'a str)>, Result<(), &'a str>);
        let rows: [Row; 14] = [
            ("alice-1", Operation::Sign, Some((gran, ALICE, "alice")), Ok(())),
            ("alice-1", Operation::Sign, Some((gran, BOB, "bob")), Err("the gran key")),
            ("alice-1", Operation::Lease, Some((babe, ALICE, "alice")), Ok(())),
            ("alice-1", Operation::KeyManagement, None, Err("operation \"key_management\"")),
            ("bob-1", Operation::Sign, Some((gran, BOB, "bob")), Ok(())),
            ("bob-1", Operation::Sign, Some((babe, BOB, "bob")), Err("signing with babe keys")),
            ("bob-1", Operation::Vrf, Some((babe, BOB, "bob")), Ok(())),
            ("bob-1", Operation::Sign, Some((gran, ALICE, "alice")), Err("the gran key")),
            ("monitor", Operation::ListKeys, Some((gran, BOB, "bob")), Ok(())),
            ("monitor", Operation::Sign, Some((gran, BOB, "bob")), Err("operation \"sign\"")),
            ("ops", Operation::KeyManagement, None, Ok(())),
            ("ops", Operation::Sign, Some((gran, ALICE, "alice")), Err("operation \"sign\"")),
            ("stranger", Operation::HasKeys, Some((gran, ALICE, "alice")), Err("not in the signer's [[clients]]")),
            ("stranger", Operation::ListKeys, None, Err("not in the signer's [[clients]]")),
        ];
        for (client, op, key, want) in rows {
            let got = g.check(client, op, key.as_ref().map(|(kt, k, v)| (*kt, &k[..], *v)));
            match (want, &got) {
                (Ok(()), Ok(())) => {}
                (Err(needle), Err(e)) => assert!(e.to_string().contains(needle) && e.to_string().contains(client), "{client} {op:?}: {e}"),
                _ => panic!("{client} {op:?}: got {got:?}, wanted {want:?}"),
            }
        }
        assert_eq!(g.check_certificate("ops", &[0x11; 32]), Ok(()));
        assert!(matches!(g.check_certificate("ops", &[0x12; 32]), Err(Denied::WrongCertificate { .. })));
        assert_eq!(g.check_certificate("alice-1", &[0x12; 32]), Ok(()), "no pin: any certificate with the name");
    }

    #[test]
    fn configs_that_grant_nothing_or_too_much_are_refused() {
        let v = ["alice".to_string()];
        let star = |c: ClientConfig| ClientConfig { keys: vec!["*".into()], ..c };
        let cases: [(Vec<ClientConfig>, &str); 7] = [
            (vec![], "no [[clients]] section"),
            (vec![client("alice-1")], "grants no key"),
            (vec![star(client("a\"b"))], "a client name is"),
            (vec![star(client("alice-1")), star(client("alice-1"))], "named twice"),
            (vec![ClientConfig { validators: vec!["carol".into()], ..client("alice-1") }], "not a lease validator"),
            (vec![ClientConfig { operations: vec![Operation::KeyManagement], ..star(client("alice-1")) }], "key_management = true"),
            (vec![ClientConfig { sha256: Some("abcd".into()), ..star(client("alice-1")) }], "not 32 bytes"),
        ];
        for (clients, needle) in cases {
            let err = Grants::from_config(&clients, &v).expect_err(needle).to_string();
            assert!(err.contains(needle), "{err}");
        }
    }
}
