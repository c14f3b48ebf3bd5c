//! # exclave-node-integration
//!
//! What a Substrate node's `service.rs` adds to keep its session keys in Exclave signers,
//! without forking polkadot-sdk:
//!
//! - [`RemoteKeystoreParams`]: the `--remote-keystore <URL>[,<URL>…]` options (clap `Args`), and
//!   [`RemoteKeystoreParams::build`], which gives the `RemoteKeystore` to pass as the
//!   `KeystorePtr` to BABE, GRANDPA, BEEFY, authority discovery, the offchain workers and the
//!   `author_*` RPCs in place of `keystore_container.keystore()`.
//! - [`RoutingKeystore`] ([`RemoteKeystoreParams::keystore`]): for Polkadot and Kusama, keeps
//!   the key types named by `--remote-keystore-local-types` (default `para`, `asgn`) in the
//!   node's own `LocalKeystore`, where approval voting and disputes read them, and sends every
//!   other key type to the signers.
//! - [`SealContextEnvironment`]: wraps the block proposer factory handed to BABE so that every
//!   proposed pre-seal header is noted in the keystore; the BABE seal request then carries it.
//! - [`BeefyCommitmentNoter`]: wraps BEEFY's payload provider so that every commitment BEEFY
//!   will sign is noted in the keystore; the vote request then carries it.
//! - [`EpochVrfCandidates`]: resolves BABE's opaque VRF transcripts into the
//!   `(randomness, slot, epoch)` they were built from, from the epochs the node notes.
//!
//! What this crate is **not**: it links no `sc-*` node crate (so the main workspace builds fast);
//! a node's own glue reads epochs from its BABE runtime API and feeds them in. The demo node
//! (`node-integration/demo-node`, its own workspace) is the worked example.

mod beefy;
mod params;
mod proposer;
mod routing;
mod vrf;

pub use beefy::{encoded_commitment, BeefyCommitmentNoter, SetIds};
pub use params::{NodeIntegrationError, RemoteKeystoreParams};
pub use proposer::{SealContextEnvironment, SealContextProposer};
pub use routing::{parse_key_type, RoutingError, RoutingKeystore, DEFAULT_LOCAL_KEY_TYPES};
pub use vrf::EpochVrfCandidates;
