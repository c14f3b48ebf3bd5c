//! The `--remote-keystore` command-line options.

use crate::routing::{may_stay_local, parse_key_type, RoutingError, RoutingKeystore};
use exclave_keystore_remote::{RemoteKeystore, RemoteKeystoreConfig, TlsFiles};
use sp_keystore::KeystorePtr;
use std::{path::PathBuf, sync::Arc, time::Duration};

/// Options a node adds to its CLI (`#[command(flatten)]`).
#[derive(Debug, Clone, clap::Args)]
pub struct RemoteKeystoreParams {
    /// Exclave signer URL(s), comma-separated, tried in order (`https://host:port`). With this
    /// set the node holds no key: every signature is made, and claimed, by a signer.
    #[arg(long = "remote-keystore", value_name = "URL", value_delimiter = ',')]
    pub remote_keystore: Vec<String>,
    /// CA certificate (PEM) that the signers' certificates chain to.
    #[arg(long = "remote-keystore-ca", value_name = "PEM")]
    pub ca: Option<PathBuf>,
    /// This node's client certificate (PEM); its common name is the node's identity.
    #[arg(long = "remote-keystore-cert", value_name = "PEM")]
    pub cert: Option<PathBuf>,
    /// This node's client key (PEM, mode 0600).
    #[arg(long = "remote-keystore-key", value_name = "PEM")]
    pub key: Option<PathBuf>,
    /// Deadline for one request to one signer, in milliseconds.
    #[arg(long = "remote-keystore-timeout-ms", value_name = "MS", default_value_t = 2000)]
    pub timeout_ms: u64,
    /// With several signers: the claim-store id they must all report (`storeId` of
    /// `exclave_status`). Without it, no signer is used until all of them reported one id.
    #[arg(long = "remote-keystore-store-id", value_name = "ID")]
    pub store_id: Option<String>,
    /// Key types kept in the node's own keystore (its base path) instead of the signers,
    /// comma-separated, or `none`. Polkadot's approval voting and disputes read `para` and `asgn`
    /// key pairs from the local keystore, so they stay local by default; their duties are not
    /// claimed (docs/polkadot.md). Key types the signers protect (babe, gran, imon, beef) and
    /// audi cannot be named.
    #[arg(long = "remote-keystore-local-types", value_name = "TYPES", value_delimiter = ',', default_value = "para,asgn")]
    pub local_types: Vec<String>,
}

/// The command line's defaults: no signer, a 2 s timeout, `para` and `asgn` local.
impl Default for RemoteKeystoreParams {
    fn default() -> Self {
        Self {
            remote_keystore: Vec::new(),
            ca: None,
            cert: None,
            key: None,
            timeout_ms: 2000,
            store_id: None,
            local_types: vec!["para".into(), "asgn".into()],
        }
    }
}

/// Why the remote keystore could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum NodeIntegrationError {
    /// https URLs need all three TLS files.
    #[error("--remote-keystore with https needs --remote-keystore-ca, --remote-keystore-cert and --remote-keystore-key")]
    MissingTls,
    /// The client could not be built.
    #[error(transparent)]
    Remote(#[from] exclave_keystore_remote::RemoteError),
    /// `--remote-keystore-local-types` names a key type that cannot stay local.
    #[error("--remote-keystore-local-types: {0}")]
    Routing(#[from] RoutingError),
}

impl RemoteKeystoreParams {
    /// Whether a remote keystore was asked for.
    pub fn enabled(&self) -> bool {
        !self.remote_keystore.is_empty()
    }

    /// The client configuration for a chain with this genesis hash.
    pub fn config(&self, genesis_hash: [u8; 32]) -> Result<RemoteKeystoreConfig, NodeIntegrationError> {
        let tls = match (&self.ca, &self.cert, &self.key) {
            (Some(ca), Some(cert), Some(key)) => Some(TlsFiles { ca: ca.clone(), cert: cert.clone(), key: key.clone() }),
            (None, None, None) if !self.remote_keystore.iter().any(|u| u.starts_with("https://")) => None,
            _ => return Err(NodeIntegrationError::MissingTls),
        };
        Ok(RemoteKeystoreConfig {
            urls: self.remote_keystore.clone(),
            chain: genesis_hash,
            tls,
            timeout: Duration::from_millis(self.timeout_ms),
            store_id: self.store_id.clone(),
        })
    }

    /// Build the client of the signers (keep it: its `note_*` methods feed BABE's and BEEFY's
    /// context to the signers).
    pub fn build(&self, genesis_hash: [u8; 32]) -> Result<Arc<RemoteKeystore>, NodeIntegrationError> {
        Ok(Arc::new(RemoteKeystore::new(self.config(genesis_hash)?)?))
    }

    /// The key types `--remote-keystore-local-types` keeps in the node.
    pub fn local_key_types(&self) -> Result<Vec<sp_core::crypto::KeyTypeId>, NodeIntegrationError> {
        if self.local_types.iter().any(|t| t == "none") {
            return Ok(Vec::new());
        }
        let parse = |t: &String| parse_key_type(t.trim()).and_then(|kt| may_stay_local(kt).map(|()| kt));
        Ok(self.local_types.iter().map(parse).collect::<Result<_, _>>()?)
    }

    /// The keystore to pass everywhere a `KeystorePtr` goes: the local key types to `local` (the
    /// node's `LocalKeystore`, `keystore_container.local_keystore()`), the rest to `remote`.
    pub fn keystore(&self, remote: Arc<RemoteKeystore>, local: KeystorePtr) -> Result<KeystorePtr, NodeIntegrationError> {
        Ok(Arc::new(RoutingKeystore::new(remote, local, &self.local_key_types()?)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        remote: RemoteKeystoreParams,
    }

    #[test]
    fn parses_urls_and_requires_tls_files_for_https() {
        let cli = Cli::parse_from(["node", "--remote-keystore", "https://a:1,https://b:2", "--remote-keystore-ca", "ca.pem"]);
        assert_eq!(cli.remote.remote_keystore, vec!["https://a:1", "https://b:2"]);
        assert!(matches!(cli.remote.config([0; 32]), Err(NodeIntegrationError::MissingTls)));
        let cli = Cli::parse_from([
            "node",
            "--remote-keystore",
            "https://a:1",
            "--remote-keystore-ca",
            "ca",
            "--remote-keystore-cert",
            "c",
            "--remote-keystore-key",
            "k",
        ]);
        let cfg = cli.remote.config([7; 32]).expect("config");
        assert_eq!((cfg.chain, cfg.timeout), ([7; 32], Duration::from_millis(2000)));
        assert!(cfg.tls.is_some());
        assert!(!Cli::parse_from(["node"]).remote.enabled());
    }

    #[test]
    fn local_key_types_default_to_para_and_asgn() {
        let kt = |s: &[u8; 4]| sp_core::crypto::KeyTypeId(*s);
        let local = |args: &[&str]| Cli::parse_from([&["node"], args].concat()).remote.local_key_types().map_err(|e| e.to_string());
        assert_eq!(local(&[]), Ok(vec![kt(b"para"), kt(b"asgn")]));
        let defaults = RemoteKeystoreParams::default();
        assert_eq!(defaults.local_key_types().expect("the defaults parse"), vec![kt(b"para"), kt(b"asgn")]);
        assert_eq!(defaults.timeout_ms, 2000);
        assert_eq!(local(&["--remote-keystore-local-types", "none"]), Ok(vec![]));
        assert_eq!(local(&["--remote-keystore-local-types", "para"]), Ok(vec![kt(b"para")]));
        let err = local(&["--remote-keystore-local-types", "para,gran"]).expect_err("gran is protected");
        assert!(err.contains("'gran' cannot stay local"), "{err}");
    }
}
