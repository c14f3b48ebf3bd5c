//! A signing-log line as the verifier reads it.

use crate::signing_log::{checkpoint::Checkpoint, Decision};
use exclave_policies::Duty;
use serde::Deserialize;

/// One line: a record or a checkpoint. Unknown fields are ignored (the hash covers the bytes).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogLine {
    /// Sequence number.
    pub seq: u64,
    /// Hash of the previous line, hex.
    pub prev: String,
    /// Present on checkpoint lines.
    #[serde(default)]
    pub checkpoint: Option<Checkpoint>,
    /// Unix ms.
    #[serde(default)]
    pub time_ms: u64,
    /// Signer id.
    #[serde(default)]
    pub signer: String,
    /// Client identity.
    #[serde(default)]
    pub client: String,
    /// Chain, `0x` hex.
    #[serde(default)]
    pub chain: String,
    /// RPC method.
    #[serde(default)]
    pub method: String,
    /// Key type.
    #[serde(default)]
    pub key_type: String,
    /// Public key, hex.
    #[serde(default)]
    pub public: String,
    /// Duty, for claimed requests.
    #[serde(default)]
    pub duty: Option<Duty>,
    /// Decision.
    #[serde(default)]
    pub decision: Option<Decision>,
    /// Payload hash, hex.
    #[serde(default)]
    pub payload_hash: Option<String>,
    /// Message, hex.
    #[serde(default)]
    pub message: Option<String>,
    /// Prehashed (ecdsa) message.
    #[serde(default)]
    pub prehashed: bool,
    /// Pre-image (sign context or VRF inputs).
    #[serde(default)]
    pub preimage: Option<serde_json::Value>,
    /// Signature, hex.
    #[serde(default)]
    pub signature: Option<String>,
    /// Refusal or error reason.
    #[serde(default)]
    pub reason: Option<String>,
}

impl LogLine {
    /// Parse one line (without its newline).
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let line: Self = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if line.checkpoint.is_none() && line.decision.is_none() {
            return Err("neither a record (no decision) nor a checkpoint".into());
        }
        Ok(line)
    }

    /// The signer the line names (record or checkpoint).
    pub fn signer(&self) -> &str {
        self.checkpoint.as_ref().map_or(&self.signer, |c| &c.signer)
    }

    /// Whether the line is a signature the signer released (signed or same-data, with a signature).
    pub fn released(&self) -> bool {
        matches!(self.decision, Some(Decision::Signed | Decision::SameData)) && self.signature.is_some()
    }

    /// The decision's name, `checkpoint` for checkpoints.
    pub fn outcome(&self) -> &'static str {
        self.decision.map_or("checkpoint", Decision::name)
    }
}

/// Decode `0x`-optional hex.
pub fn unhex(s: &str) -> Result<Vec<u8>, String> {
    hex::decode(s.strip_prefix("0x").unwrap_or(s)).map_err(|e| format!("bad hex: {e}"))
}

/// Decode 32 bytes of `0x`-optional hex.
pub fn unhex32(s: &str) -> Result<[u8; 32], String> {
    unhex(s)?.try_into().map_err(|_| "expected 32 bytes".to_string())
}
