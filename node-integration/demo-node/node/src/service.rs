//! The node's services: a stock BABE + GRANDPA + BEEFY (with the MMR gadget) + authority
//! discovery + offchain-worker full node, except that its keystore may be Exclave's remote
//! keystore, and that BEEFY's payload provider then notes every commitment it will sign. The
//! lines that differ from a stock node are marked `// Exclave:`.

use exclave_demo_runtime::{opaque::Block, RuntimeApi};
use exclave_node_integration::{
	BeefyCommitmentNoter, EpochVrfCandidates, RemoteKeystoreParams, SealContextEnvironment, SetIds,
};
use futures::{FutureExt, StreamExt};
use polkadot_sdk::{
	sc_consensus_beefy as beefy, sc_consensus_grandpa as grandpa, sp_consensus_beefy as beefy_primitives, *,
};
use beefy_primitives::{
	ecdsa_crypto::AuthorityId as BeefyId, BeefyApi, ConsensusLog, Payload, PayloadProvider, ValidatorSet,
	ValidatorSetId, BEEFY_ENGINE_ID,
};
use sc_client_api::{Backend, BlockchainEvents};
use sc_consensus::BlockImport;
use sc_consensus_babe::{BabeWorker, SlotProportion};
use sc_network::{Event, NetworkBackend, NetworkEventStream};
use sc_network_sync::SyncingService;
use sc_service::{error::Error as ServiceError, Configuration, TaskManager};
use sc_transaction_pool_api::OffchainTransactionPoolFactory;
use sp_api::ProvideRuntimeApi;
use sp_blockchain::HeaderBackend;
use sp_consensus::{Environment, Proposer};
use sp_consensus_babe::{inherents::InherentDataProvider as SlotInherent, BabeApi, SlotDuration};
use sp_inherents::CreateInherentDataProviders;
use sp_keystore::KeystorePtr;
use sp_runtime::{
	generic::OpaqueDigestItemId,
	traits::{Block as BlockT, Header as HeaderT},
};
use sp_timestamp::InherentDataProvider as TimestampInherent;
use std::{sync::Arc, time::Duration};

type FullClient =
	sc_service::TFullClient<Block, RuntimeApi, sc_executor::WasmExecutor<sp_io::SubstrateHostFunctions>>;
type FullBackend = sc_service::TFullBackend<Block>;
type FullSelectChain = sc_consensus::LongestChain<FullBackend, Block>;
type Hash = <Block as BlockT>::Hash;

/// Blocks between GRANDPA justifications kept in the database.
const GRANDPA_JUSTIFICATION_PERIOD: u32 = 512;

/// Slots either side of the wall-clock slot tried when matching a BABE VRF transcript.
const VRF_WINDOW_SLOTS: u64 = 2;

/// Least blocks between two BEEFY votes (session-start blocks are always voted on). Polkadot and
/// the kitchensink node use 8; the demo's 3 s blocks take 4, so a short run sees many votes.
const BEEFY_MIN_BLOCK_DELTA: u32 = 4;

/// Build and start the full node with the network backend chosen on the command line.
pub fn new_full(config: Configuration, remote: &RemoteKeystoreParams) -> Result<TaskManager, ServiceError> {
	match config.network.network_backend {
		sc_network::config::NetworkBackendType::Libp2p => {
			new_full_with::<sc_network::NetworkWorker<Block, Hash>>(config, remote)
		},
		sc_network::config::NetworkBackendType::Litep2p => {
			new_full_with::<sc_network::Litep2pNetworkBackend>(config, remote)
		},
	}
}

fn new_full_with<N: NetworkBackend<Block, Hash>>(
	config: Configuration,
	remote: &RemoteKeystoreParams,
) -> Result<TaskManager, ServiceError> {
	// MMR: optional. To force offchain indexing (pallet-mmr's leaves -> offchain DB) instead of
	// relying on `--enable-offchain-indexing true`, make the parameter `mut config` and uncomment
	// the next line. It must come before `new_full_parts`, which reads it into the client config.
	// config.offchain_worker.indexing_enabled = true;
	let executor = sc_service::new_wasm_executor(&config.executor);
	let (client, backend, keystore_container, mut task_manager) =
		sc_service::new_full_parts::<Block, RuntimeApi, _>(&config, None, executor, vec![])?;
	let client = Arc::new(client);
	let role = config.role;
	let registry = config.prometheus_registry().cloned();

	let remote_keystore = remote
		.enabled()
		.then(|| remote.build(client.chain_info().genesis_hash.0))
		.transpose()
		.map_err(|e| ServiceError::Application(e.into()))?;
	let keystore: KeystorePtr = match &remote_keystore {
		Some(signers) => remote
			.keystore(signers.clone(), keystore_container.keystore())
			.map_err(|e| ServiceError::Application(e.into()))?,
		None => keystore_container.keystore(),
	};

	let select_chain = sc_consensus::LongestChain::new(backend.clone());
	let transaction_pool = Arc::from(
		sc_transaction_pool::Builder::new(task_manager.spawn_essential_handle(), client.clone(), role.is_authority().into())
			.with_options(config.transaction_pool.clone())
			.with_prometheus(registry.as_ref())
			.build(),
	);
	let offchain_tx_pool = OffchainTransactionPoolFactory::new(transaction_pool.clone());

	let (grandpa_block_import, grandpa_link) = grandpa::block_import(
		client.clone(),
		GRANDPA_JUSTIFICATION_PERIOD,
		&(client.clone() as Arc<_>),
		select_chain.clone(),
		None,
	)?;
	// BEEFY: the import chain becomes BABE -> BEEFY -> GRANDPA -> client. BEEFY strips BEEFY
	// justifications from imported blocks before GRANDPA/the client see them. After the inner import
	// it verifies them against the runtime's validator set and sends them to the voter. GRANDPA stays
	// the justification import.
	let (beefy_block_import, beefy_voter_links, beefy_rpc_links) =
		beefy::beefy_block_import_and_links::<Block, _, _, _, BeefyId>(
			grandpa_block_import.clone(),
			backend.clone(),
			client.clone(),
			registry.clone(),
		);
	let babe_config = sc_consensus_babe::configuration(&*client)?;
	let slot_duration = babe_config.slot_duration();
	let (block_import, babe_link) = sc_consensus_babe::block_import(
		babe_config,
		beefy_block_import, // BEEFY: was `grandpa_block_import.clone()`
		client.clone(),
		slot_inherents(slot_duration),
		select_chain.clone(),
		offchain_tx_pool.clone(),
	)?;
	let (import_queue, babe_worker_handle) = sc_consensus_babe::import_queue(sc_consensus_babe::ImportQueueParams {
		link: babe_link.clone(),
		block_import: block_import.clone(),
		justification_import: Some(Box::new(grandpa_block_import)),
		client: client.clone(),
		slot_duration,
		spawner: &task_manager.spawn_essential_handle(),
		registry: registry.as_ref(),
		telemetry: None,
	})?;
	task_manager.spawn_handle().spawn("babe-worker-handle", None, async move {
		let _keep = babe_worker_handle;
		futures::future::pending::<()>().await
	});

	let metrics = N::register_notification_metrics(registry.as_ref());
	let mut net_config =
		sc_network::config::FullNetworkConfiguration::<Block, Hash, N>::new(&config.network, registry.clone());
	let genesis_hash = client.chain_info().genesis_hash;
	let grandpa_protocol_name = grandpa::protocol_standard_name(&genesis_hash, &config.chain_spec);
	let (grandpa_protocol_config, grandpa_notification_service) = grandpa::grandpa_peers_set_config::<_, N>(
		grandpa_protocol_name.clone(),
		metrics.clone(),
		net_config.peer_store_handle(),
	);
	net_config.add_notification_protocol(grandpa_protocol_config);

	// BEEFY: the vote gossip notification protocol ("/<genesis>/beefy/2") and the on-demand
	// justifications request-response protocol ("/<genesis>/beefy/justifications/1").
	let beefy_gossip_protocol_name = beefy::gossip_protocol_name(&genesis_hash, config.chain_spec.fork_id());
	let (beefy_notification_config, beefy_notification_service) =
		beefy::communication::beefy_peers_set_config::<Block, N>(
			beefy_gossip_protocol_name.clone(),
			metrics.clone(),
			net_config.peer_store_handle(),
		);
	net_config.add_notification_protocol(beefy_notification_config);
	let (beefy_justifs_handler, beefy_req_resp_config) =
		beefy::communication::request_response::BeefyJustifsRequestHandler::<Block, _>::new::<_, N>(
			&genesis_hash,
			config.chain_spec.fork_id(),
			client.clone(),
			registry.clone(),
		);
	net_config.add_request_response_protocol(beefy_req_resp_config);

	let (network, system_rpc_tx, tx_handler_controller, sync_service, _bitswap) =
		sc_service::build_network(sc_service::BuildNetworkParams {
			config: &config,
			net_config,
			client: client.clone(),
			transaction_pool: transaction_pool.clone(),
			spawn_handle: task_manager.spawn_handle(),
			spawn_essential_handle: task_manager.spawn_essential_handle(),
			import_queue,
			block_announce_validator_builder: None,
			warp_sync_config: None,
			block_relay: None,
			metrics,
			gap_sync_body_policy: None,
		})?;

	if config.offchain_worker.enabled {
		let offchain_workers = sc_offchain::OffchainWorkers::new(sc_offchain::OffchainWorkerOptions {
			runtime_api_provider: client.clone(),
			keystore: Some(keystore.clone()),
			offchain_db: backend.offchain_storage(),
			transaction_pool: Some(offchain_tx_pool.clone()),
			network_provider: Arc::new(network.clone()),
			is_validator: role.is_authority(),
			enable_http_requests: false,
			custom_extensions: |_| vec![],
		})?;
		task_manager.spawn_handle().spawn(
			"offchain-workers-runner",
			"offchain-work",
			offchain_workers.run(client.clone(), task_manager.spawn_handle()).boxed(),
		);
	}

	let force_authoring = config.force_authoring;
	let enable_grandpa = !config.disable_grandpa;
	let node_name = config.network.node_name.clone();
	// MMR: read before `config` moves into spawn_tasks.
	let offchain_indexing = config.offchain_worker.indexing_enabled;
	// AD: likewise.
	let auth_disc_public_addresses = config.network.public_addresses.clone();
	let auth_disc_publish_non_global_ips = config.network.allow_non_globals_in_dht;
	let auth_disc_cache_dir = config.network.net_config_path.clone();

	// BEEFY: the `beefy_*` RPCs (`beefy_getFinalizedHead`, `beefy_subscribeJustifications`).
	let rpc_builder = move |executor: Arc<dyn sp_core::traits::SpawnNamed>| {
		use sc_consensus_beefy_rpc::{Beefy, BeefyApiServer};
		let mut module = jsonrpsee::RpcModule::new(());
		let beefy_rpc = Beefy::<Block, BeefyId>::new(
			beefy_rpc_links.from_voter_justif_stream.clone(),
			beefy_rpc_links.from_voter_best_beefy_stream.clone(),
			executor,
		)
		.map_err(|e| ServiceError::Application(e.into()))?;
		module.merge(beefy_rpc.into_rpc()).map_err(|e| ServiceError::Application(e.into()))?;
		Ok::<_, ServiceError>(module)
	};

	sc_service::spawn_tasks(sc_service::SpawnTasksParams {
		config,
		client: client.clone(),
		backend: backend.clone(), // BEEFY/MMR: was `backend` (moved); both gadgets need it below
		task_manager: &mut task_manager,
		keystore: keystore.clone(),
		transaction_pool: transaction_pool.clone(),
		rpc_builder: Box::new(rpc_builder),
		network: network.clone(),
		system_rpc_tx,
		tx_handler_controller,
		sync_service: sync_service.clone(),
		telemetry: None,
		tracing_execute_block: None,
	})?;

	if let Some(remote) = &remote_keystore {
		let candidates = Arc::new(EpochVrfCandidates::new(slot_duration.as_millis(), VRF_WINDOW_SLOTS));
		remote.set_vrf_resolver(candidates.clone().resolver());
		task_manager.spawn_handle().spawn("exclave-babe-epochs", None, note_epochs(client.clone(), candidates));
	}

	// BEEFY: the voter runs on every node; only authorities get a keystore and vote. The payload is
	// the MMR root (header digest from DepositBeefyDigest, else `MmrApi::mmr_root`). With signers,
	// `BeefyCommitmentNoter` wraps it so that each commitment is noted before BEEFY signs its keccak.
	let mmr_root_provider = beefy_primitives::mmr::MmrRootProvider::<Block, FullClient>::new(client.clone());
	let payload_inner: Arc<dyn PayloadProvider<Block> + Send + Sync> = match &remote_keystore {
		Some(remote) => Arc::new(BeefyCommitmentNoter::new(
			mmr_root_provider,
			remote.clone(),
			beefy_set_ids(client.clone()),
		)),
		None => Arc::new(mmr_root_provider),
	};
	let beefy_network_params = beefy::BeefyNetworkParams {
		network: Arc::new(network.clone()),
		sync: sync_service.clone(),
		notification_service: beefy_notification_service,
		gossip_protocol_name: beefy_gossip_protocol_name,
		justifications_protocol_name: beefy_justifs_handler.protocol_name(),
		_phantom: core::marker::PhantomData::<Block>,
	};
	let beefy_params = beefy::BeefyParams {
		client: client.clone(),
		backend: backend.clone(),
		payload_provider: SharedPayloadProvider(payload_inner),
		runtime: client.clone(),
		// Exclave: BEEFY votes are signed through this keystore (ecdsa_sign_prehashed, "beef").
		key_store: role.is_authority().then(|| keystore.clone()),
		network_params: beefy_network_params,
		min_block_delta: BEEFY_MIN_BLOCK_DELTA,
		prometheus_registry: registry.clone(),
		links: beefy_voter_links,
		on_demand_justifications_handler: beefy_justifs_handler,
		is_authority: role.is_authority(),
	};
	// BEEFY is consensus: if the gadget ends (it only returns on an error) the node goes down, as in
	// kitchensink and Polkadot. Use `spawn_handle()` instead if you'd rather keep the node running.
	task_manager.spawn_essential_handle().spawn_blocking(
		"beefy-gadget",
		None,
		beefy::start_beefy_gadget::<_, _, _, _, _, _, _, BeefyId>(beefy_params),
	);

	// MMR: moves pallet-mmr's offchain leaves/nodes from fork-aware to canonical keys on finality and
	// prunes stale forks. It only has work to do when offchain indexing is on.
	if offchain_indexing {
		task_manager.spawn_essential_handle().spawn_blocking(
			"mmr-gadget",
			None,
			mmr_gadget::MmrGadget::<Block, _, _>::start(
				client.clone(),
				backend.clone(),
				sp_mmr_primitives::INDEXING_PREFIX.to_vec(),
			),
		);
	}

	// AD: authorities publish their addresses under their `audi` keys (signed through `keystore`, so
	// by the signers when remote) and look up the others. Other nodes run it as Discover: with libp2p
	// (`StoreInserts::FilterBoth`) and litep2p, a DHT PUT is only stored after this worker has
	// validated the record (DhtEvent::PutRecordRequest), so a node without the worker stores nobody's
	// records.
	let auth_disc_role = if role.is_authority() {
		sc_authority_discovery::Role::PublishAndDiscover(keystore.clone())
	} else {
		sc_authority_discovery::Role::Discover
	};
	let dht_event_stream = network.event_stream("authority-discovery").filter_map(|e| async move {
		match e {
			Event::Dht(e) => Some(e),
			_ => None,
		}
	});
	let (authority_discovery_worker, _authority_discovery_service) =
		sc_authority_discovery::new_worker_and_service_with_config(
			sc_authority_discovery::WorkerConfig {
				publish_non_global_ips: auth_disc_publish_non_global_ips,
				public_addresses: auth_disc_public_addresses,
				persisted_cache_directory: auth_disc_cache_dir,
				..Default::default()
			},
			client.clone(),
			Arc::new(network.clone()),
			Box::pin(dht_event_stream),
			auth_disc_role,
			registry.clone(),
			task_manager.spawn_handle(),
		);
	task_manager.spawn_handle().spawn(
		"authority-discovery-worker",
		Some("networking"),
		authority_discovery_worker.run(),
	);

	if role.is_authority() {
		let proposer = sc_basic_authorship::ProposerFactory::new(
			task_manager.spawn_handle(),
			client.clone(),
			transaction_pool.clone(),
			registry.as_ref(),
			None,
		);
		let babe = BabeAuthoring {
			keystore: keystore.clone(),
			client: client.clone(),
			select_chain,
			block_import,
			sync: sync_service.clone(),
			babe_link,
			slot_duration,
			force_authoring,
		};
		let worker = match &remote_keystore {
			Some(remote) => babe.start(SealContextEnvironment::new(proposer, remote.clone()))?,
			None => babe.start(proposer)?,
		};
		task_manager.spawn_essential_handle().spawn_blocking("babe-proposer", Some("block-authoring"), worker);
	}

	if enable_grandpa {
		let grandpa_config = grandpa::Config {
			gossip_duration: Duration::from_millis(333),
			justification_generation_period: GRANDPA_JUSTIFICATION_PERIOD,
			name: Some(node_name),
			observer_enabled: false,
			keystore: role.is_authority().then(|| keystore.clone()),
			local_role: role,
			telemetry: None,
			protocol_name: grandpa_protocol_name,
		};
		let voter = grandpa::run_grandpa_voter(grandpa::GrandpaParams {
			config: grandpa_config,
			link: grandpa_link,
			network,
			sync: sync_service,
			notification_service: grandpa_notification_service,
			voting_rule: grandpa::VotingRulesBuilder::default().build(),
			prometheus_registry: registry,
			shared_voter_state: grandpa::SharedVoterState::empty(),
			telemetry: None,
			offchain_tx_pool_factory: offchain_tx_pool,
		})?;
		task_manager.spawn_essential_handle().spawn_blocking("grandpa-voter", None, voter);
	}

	Ok(task_manager)
}

/// The inherents BABE authors and checks blocks with: the timestamp and the slot it falls in.
fn slot_inherents(
	slot_duration: SlotDuration,
) -> impl CreateInherentDataProviders<Block, (), InherentDataProviders = (SlotInherent, TimestampInherent)> + Clone {
	move |_, ()| async move {
		let timestamp = TimestampInherent::from_system_time();
		let slot = SlotInherent::from_timestamp_and_slot_duration(*timestamp, slot_duration);
		Ok::<_, Box<dyn std::error::Error + Send + Sync>>((slot, timestamp))
	}
}

/// Exclave: note the current and next BABE epoch at the best block and at every imported block.
async fn note_epochs(client: Arc<FullClient>, candidates: Arc<EpochVrfCandidates>) {
	let note = |at: Hash| {
		let api = client.runtime_api();
		for epoch in [api.current_epoch(at), api.next_epoch(at)].into_iter().flatten() {
			candidates.note_epoch(epoch.randomness, epoch.epoch_index);
		}
	};
	note(client.info().best_hash);
	let mut imported = client.import_notification_stream();
	while let Some(block) = imported.next().await {
		note(block.hash);
	}
}

/// Everything BABE block authoring needs except the proposer factory, which differs when the
/// keys are in Exclave.
struct BabeAuthoring<BI> {
	keystore: KeystorePtr,
	client: Arc<FullClient>,
	select_chain: FullSelectChain,
	block_import: BI,
	sync: Arc<SyncingService<Block>>,
	babe_link: sc_consensus_babe::BabeLink<Block>,
	slot_duration: SlotDuration,
	force_authoring: bool,
}

impl<BI> BabeAuthoring<BI>
where
	BI: BlockImport<Block, Error = sp_consensus::Error> + Send + Sync + 'static,
{
	fn start<E>(self, env: E) -> Result<BabeWorker<Block>, sp_consensus::Error>
	where
		E: Environment<Block, Error = sp_blockchain::Error> + Send + Sync + 'static,
		E::Proposer: Proposer<Block, Error = sp_blockchain::Error>,
	{
		sc_consensus_babe::start_babe(sc_consensus_babe::BabeParams {
			keystore: self.keystore,
			client: self.client,
			select_chain: self.select_chain,
			env,
			block_import: self.block_import,
			sync_oracle: self.sync.clone(),
			justification_sync_link: self.sync,
			create_inherent_data_providers: slot_inherents(self.slot_duration),
			force_authoring: self.force_authoring,
			backoff_authoring_blocks: Some(sc_consensus_slots::BackoffAuthoringOnFinalizedHeadLagging::default()),
			babe_link: self.babe_link,
			block_proposal_slot_portion: SlotProportion::new(0.5),
			max_block_proposal_slot_portion: None,
			telemetry: None,
		})
	}
}

/// BEEFY's payload provider, which must be `Clone`. The `Arc` lets the plain MMR-root provider and the
/// Exclave noter share one type, so `BeefyCommitmentNoter` needs no `Clone` impl.
#[derive(Clone)]
struct SharedPayloadProvider(Arc<dyn PayloadProvider<Block> + Send + Sync>);

impl PayloadProvider<Block> for SharedPayloadProvider {
	fn payload(&self, header: &<Block as BlockT>::Header) -> Option<Payload> {
		self.0.payload(header)
	}
}

/// Exclave: the BEEFY validator set id a vote on `header` carries. See section 3 for why this is
/// one id, the set active at that block.
fn beefy_set_ids(client: Arc<FullClient>) -> SetIds<Block> {
	Arc::new(move |header: &<Block as BlockT>::Header| beefy_set_id(&client, header).into_iter().collect())
}

/// The BEEFY set active at `header`, found the way sc-consensus-beefy's `expect_validator_set`
/// finds it: `BeefyApi::validator_set` at the block's state; else (state pruned, e.g. a lagging
/// voter's old session-start block) the `AuthoritiesChange` in its digest or an ancestor's.
fn beefy_set_id(client: &FullClient, header: &<Block as BlockT>::Header) -> Option<ValidatorSetId> {
	let mut header = header.clone();
	loop {
		if let Ok(Some(set)) = BeefyApi::<Block, BeefyId>::validator_set(&*client.runtime_api(), header.hash()) {
			return Some(set.id());
		}
		if let Some(set) = beefy_authorities_change(&header) {
			return Some(set.id());
		}
		if *header.number() == 0 {
			return None;
		}
		header = client.header(*header.parent_hash()).ok().flatten()?;
	}
}

/// The BEEFY `AuthoritiesChange` a header's digest announces (pallet-beefy deposits one, with the
/// new set and its new id, in the first block of every session).
fn beefy_authorities_change(header: &<Block as BlockT>::Header) -> Option<ValidatorSet<BeefyId>> {
	let id = OpaqueDigestItemId::Consensus(&BEEFY_ENGINE_ID);
	header.digest().convert_first(|item| match item.try_to::<ConsensusLog<BeefyId>>(id)? {
		ConsensusLog::AuthoritiesChange(set) => Some(set),
		_ => None,
	})
}
