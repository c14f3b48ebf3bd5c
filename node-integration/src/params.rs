//! The `--remote-keystore` command-line options.

use exclave_keystore_remote::{RemoteKeystore, RemoteKeystoreConfig, TlsFiles};
use std::{path::PathBuf, sync::Arc, time::Duration};

/// Options a node adds to its CLI (`#[command(flatten)]`).
#[derive(Debug, Clone, Default, clap::Args)]
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

    /// Build the keystore to pass everywhere a `KeystorePtr` goes.
    pub fn build(&self, genesis_hash: [u8; 32]) -> Result<Arc<RemoteKeystore>, NodeIntegrationError> {
        Ok(Arc::new(RemoteKeystore::new(self.config(genesis_hash)?)?))
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
}
