//! Remember every proposed pre-seal header, so the BABE seal request can carry it.

use codec::Encode;
use exclave_keystore_remote::RemoteKeystore;
use futures::{future::BoxFuture, FutureExt, TryFutureExt};
use sp_consensus::{Environment, Proposal, ProposeArgs, Proposer};
use sp_runtime::traits::{Block as BlockT, Header as _};
use std::sync::Arc;

/// Wraps the proposer factory handed to BABE (`BabeParams.env`).
pub struct SealContextEnvironment<E> {
    inner: E,
    keystore: Arc<RemoteKeystore>,
}

impl<E> SealContextEnvironment<E> {
    /// Wrap `inner`; headers it proposes are noted in `keystore`.
    pub fn new(inner: E, keystore: Arc<RemoteKeystore>) -> Self {
        Self { inner, keystore }
    }
}

/// The proposer made by [`SealContextEnvironment`].
pub struct SealContextProposer<P> {
    inner: P,
    keystore: Arc<RemoteKeystore>,
}

impl<B: BlockT, E: Environment<B>> Environment<B> for SealContextEnvironment<E>
where
    E::CreateProposer: Send,
{
    type Proposer = SealContextProposer<E::Proposer>;
    type CreateProposer = BoxFuture<'static, Result<Self::Proposer, E::Error>>;
    type Error = E::Error;

    fn init(&mut self, parent_header: &B::Header) -> Self::CreateProposer {
        let keystore = self.keystore.clone();
        self.inner.init(parent_header).map_ok(move |inner| SealContextProposer { inner, keystore }).boxed()
    }
}

impl<B: BlockT, P: Proposer<B>> Proposer<B> for SealContextProposer<P> {
    type Error = P::Error;
    type Proposal = BoxFuture<'static, Result<Proposal<B>, P::Error>>;

    fn propose(self, args: ProposeArgs<B>) -> Self::Proposal {
        let keystore = self.keystore;
        self.inner
            .propose(args)
            .map_ok(move |proposal| {
                let header = proposal.block.header();
                tracing::debug!(number = ?header.number(), "noting the pre-seal header for the remote signer");
                keystore.note_seal_header(header.encode());
                proposal
            })
            .boxed()
    }
}
