//! The node's services: a stock BABE + GRANDPA + offchain-worker full node, except that its
//! keystore may be Exclave's remote keystore. The lines that differ from a stock node are
//! marked `// Exclave:`.

use exclave_demo_runtime::{opaque::Block, RuntimeApi};
use exclave_node_integration::{EpochVrfCandidates, RemoteKeystoreParams, SealContextEnvironment};
use futures::{FutureExt, StreamExt};
use polkadot_sdk::{sc_consensus_grandpa as grandpa, *};
use sc_client_api::{Backend, BlockchainEvents};
use sc_consensus::BlockImport;
use sc_consensus_babe::{BabeWorker, SlotProportion};
use sc_network::NetworkBackend;
use sc_network_sync::SyncingService;
use sc_service::{error::Error as ServiceError, Configuration, TaskManager};
use sc_transaction_pool_api::OffchainTransactionPoolFactory;
use sp_api::ProvideRuntimeApi;
use sp_blockchain::HeaderBackend;
use sp_consensus::{Environment, Proposer};
use sp_consensus_babe::{inherents::InherentDataProvider as SlotInherent, BabeApi, SlotDuration};
use sp_inherents::CreateInherentDataProviders;
use sp_keystore::KeystorePtr;
use sp_runtime::traits::Block as BlockT;
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
	let executor = sc_service::new_wasm_executor(&config.executor);
	let (client, backend, keystore_container, mut task_manager) =
		sc_service::new_full_parts::<Block, RuntimeApi, _>(&config, None, executor, vec![])?;
	let client = Arc::new(client);
	let role = config.role;
	let registry = config.prometheus_registry().cloned();

	// Exclave: with --remote-keystore the keys live in Exclave signers, which claim every slot,
	// round and session before signing. The key types of --remote-keystore-local-types (default
	// para, asgn: none on this chain) stay in the node's own keystore, as a Polkadot node's
	// approval voting needs. Without --remote-keystore, the local keystore.
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
	let babe_config = sc_consensus_babe::configuration(&*client)?;
	let slot_duration = babe_config.slot_duration();
	let (block_import, babe_link) = sc_consensus_babe::block_import(
		babe_config,
		grandpa_block_import.clone(),
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
	// The essential `babe-worker` task ends (and takes the node down) once this handle drops.
	task_manager.spawn_handle().spawn("babe-worker-handle", None, async move {
		let _keep = babe_worker_handle;
		futures::future::pending::<()>().await
	});

	let metrics = N::register_notification_metrics(registry.as_ref());
	let mut net_config =
		sc_network::config::FullNetworkConfiguration::<Block, Hash, N>::new(&config.network, registry.clone());
	let grandpa_protocol_name = grandpa::protocol_standard_name(&client.chain_info().genesis_hash, &config.chain_spec);
	let (grandpa_protocol_config, grandpa_notification_service) = grandpa::grandpa_peers_set_config::<_, N>(
		grandpa_protocol_name.clone(),
		metrics.clone(),
		net_config.peer_store_handle(),
	);
	net_config.add_notification_protocol(grandpa_protocol_config);

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
			// Exclave: I'm-online heartbeats are signed through this keystore.
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
	sc_service::spawn_tasks(sc_service::SpawnTasksParams {
		config,
		client: client.clone(),
		backend,
		task_manager: &mut task_manager,
		// Exclave: the author_* RPCs (rotateKeys, insertKey, hasKey) and the `--alice` style
		// dev keys made at start go to the signers.
		keystore: keystore.clone(),
		transaction_pool: transaction_pool.clone(),
		rpc_builder: Box::new(|_| Ok(jsonrpsee::RpcModule::new(()))),
		network: network.clone(),
		system_rpc_tx,
		tx_handler_controller,
		sync_service: sync_service.clone(),
		telemetry: None,
		tracing_execute_block: None,
	})?;

	if let Some(remote) = &remote_keystore {
		// Exclave: BABE hands the keystore opaque VRF transcripts; the signer needs the
		// (randomness, slot, epoch) each was built from. Note every epoch the chain announces
		// and match transcripts against them, for slots near the wall clock.
		let candidates = Arc::new(EpochVrfCandidates::new(slot_duration.as_millis(), VRF_WINDOW_SLOTS));
		remote.set_vrf_resolver(candidates.clone().resolver());
		task_manager.spawn_handle().spawn("exclave-babe-epochs", None, note_epochs(client.clone(), candidates));
	}

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
			// Exclave: note each proposed pre-seal header, so the seal request can carry it.
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
			// Exclave: prevotes, precommits and primary proposals are signed through this keystore.
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
