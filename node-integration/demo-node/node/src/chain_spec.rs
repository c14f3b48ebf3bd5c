//! The `dev` (Alice alone), `local` (Alice, Bob, Charlie) and `local4` (Alice, Bob, Charlie, Dave)
//! chains.

use exclave_demo_runtime::{
	AccountId, BabeConfig, BalancesConfig, RuntimeGenesisConfig, SessionConfig, SessionKeys, SudoConfig,
	BABE_GENESIS_EPOCH_CONFIG, UNIT, WASM_BINARY,
};
use polkadot_sdk::{
	sc_chain_spec::{ChainType, NoExtension},
	sc_service,
	sp_core::{ecdsa, ed25519, sr25519, Pair},
};

/// The demo chain's spec type.
pub type ChainSpec = sc_service::GenericChainSpec<NoExtension>;

/// Single-validator development chain: Alice.
pub fn dev() -> Result<ChainSpec, String> {
	spec("Exclave demo (dev)", "dev", ChainType::Development, &["Alice"])
}

/// Three-validator local chain: Alice, Bob and Charlie.
pub fn local() -> Result<ChainSpec, String> {
	spec("Exclave demo (local)", "local_testnet", ChainType::Local, &["Alice", "Bob", "Charlie"])
}

/// Four-validator local chain: Alice, Bob, Charlie and Dave. GRANDPA finalizes with 2f + 1 of
/// 3f + 1 voters, so this is the smallest set that keeps finalizing while one voter sits out a
/// round (as a standby node taking over mid-round does); `local`'s three tolerate none.
pub fn local4() -> Result<ChainSpec, String> {
	spec("Exclave demo (local4)", "local4_testnet", ChainType::Local, &["Alice", "Bob", "Charlie", "Dave"])
}

fn spec(name: &str, id: &str, chain_type: ChainType, validators: &[&str]) -> Result<ChainSpec, String> {
	let wasm = WASM_BINARY.ok_or("the runtime's wasm blob was not built")?;
	Ok(ChainSpec::builder(wasm, None)
		.with_name(name)
		.with_id(id)
		.with_chain_type(chain_type)
		.with_genesis_config(genesis(validators))
		.build())
}

fn sr(name: &str) -> sr25519::Public {
	sr25519::Pair::from_string(&format!("//{name}"), None).expect("static seed").public()
}

fn ed(name: &str) -> ed25519::Public {
	ed25519::Pair::from_string(&format!("//{name}"), None).expect("static seed").public()
}

fn ec(name: &str) -> ecdsa::Public {
	ecdsa::Pair::from_string(&format!("//{name}"), None).expect("static seed").public()
}

/// A validator's session keys, derived from `//<name>`: babe and imon sr25519, gran ed25519,
/// beef ecdsa; audi sr25519 from `//<name>//audi`, since an Exclave signer will not sign
/// authority-discovery records with a key that is also a protected (babe, imon) key. The dev
/// signer (`exclave serve --dev`) holds exactly these for Alice. (`--bob` and the like make an
/// audi key from `//Bob`, which is not in this spec: such a node discovers but does not publish.)
fn session_keys(name: &str) -> SessionKeys {
	SessionKeys {
		babe: sr(name).into(),
		grandpa: ed(name).into(),
		im_online: sr(name).into(),
		authority_discovery: sr(&format!("{name}//audi")).into(),
		beefy: ec(name).into(),
	}
}

fn genesis(validators: &[&str]) -> serde_json::Value {
	let account = |name: &str| AccountId::from(sr(name));
	let endowed = ["Alice", "Bob", "Charlie", "Dave", "Eve", "Ferdie"];
	let config = RuntimeGenesisConfig {
		balances: BalancesConfig {
			balances: endowed.iter().map(|n| (account(n), 1_000_000 * UNIT)).collect(),
			..Default::default()
		},
		babe: BabeConfig { epoch_config: BABE_GENESIS_EPOCH_CONFIG, ..Default::default() },
		// BABE, GRANDPA, I'm-online, authority discovery and BEEFY take their authorities from
		// the session keys; BEEFY starts at block 1 (its genesis default).
		session: SessionConfig {
			keys: validators.iter().map(|n| (account(n), account(n), session_keys(n))).collect(),
			..Default::default()
		},
		sudo: SudoConfig { key: Some(account("Alice")) },
		..Default::default()
	};
	serde_json::to_value(config).expect("the genesis config serialises")
}
