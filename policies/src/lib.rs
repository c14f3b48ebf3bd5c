//! # exclave-policies
//!
//! The pure signing rules of Exclave. Given what a node asks a signer to sign, this crate
//! decodes the pre-image (a BABE pre-seal header, a GRANDPA vote, an I'm-online heartbeat,
//! a BEEFY commitment), re-derives the exact message from it, names the *duty* the signature
//! would fulfil and the *claim key* under which it must be recorded, and decides the verdict
//! against an existing claim: sign, same-data (return the stored signature) or refuse. It also
//! holds the rules of the active-node lease (which of a validator's nodes may author and vote).
//!
//! What this crate is **not**: it does no I/O, reads no clock (time is an argument), holds no
//! keys and talks to no store. The signer daemon does the atomic claim and the signing; this
//! crate only tells it what is allowed.
//!
//! ```
//! use exclave_policies::{classify, Crypto, SignContext, SignRequest, KeyType, Classification};
//! // An authority-discovery record is allowed but is not a claimed duty.
//! let req = SignRequest {
//!     key_type: KeyType::AUTHORITY_DISCOVERY,
//!     crypto: Crypto::Sr25519,
//!     message: b"protobuf record",
//!     context: &SignContext::None,
//!     prehashed: false,
//! };
//! assert!(matches!(classify(&req), Ok(Classification::Unclaimed(_))));
//! ```

mod babe;
mod beefy;
mod classify;
mod endpoint;
mod error;
mod grandpa;
mod heartbeat;
mod lease;
mod types;
mod verdict;

pub use babe::{check_vrf_bounds, decode_seal_header, slot_at, vrf_sign_data, SealedSlot, SlotBounds, VrfContext};
pub use beefy::decode_commitment;
pub use classify::{classify, Classification, SignContext, SignRequest, UnclaimedKind};
pub use endpoint::is_loopback_endpoint;
pub use error::PolicyError;
pub use grandpa::{decode_vote, GrandpaStage, GrandpaVote};
pub use heartbeat::{decode_heartbeat, Heartbeat};
pub use lease::{lease_active, lease_gated, lease_step, LeaseRecord, LeaseStep, LeaseTiming};
pub use types::{
    payload_hash, ChainId, ClaimKey, ClaimRecord, Crypto, Duty, DutyKind, KeyType, ParseChainIdError, Position, WatermarkKey, CLAIM_PREFIX,
    WATERMARK_PREFIX,
};
pub use verdict::{verdict, Refusal, Verdict};
