//! One line of the signing log, the same type for the signer that writes it and the verifier
//! that reads it: a record (a decision on a request) or a checkpoint.
//!
//! Serialised as one JSON object per line: `seq`, `prev`, then either `checkpoint` or the
//! record fields. Reading ignores unknown fields (the hash covers the bytes, not the schema) and
//! takes absent record fields as empty, so older logs still read.

use crate::checkpoint::Checkpoint;
use exclave_policies::Duty;
use serde::{Deserialize, Serialize};

/// What became of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Decision {
    /// Signed under a new claim (or unclaimed signing).
    Signed,
    /// The stored signature of an identical earlier claim was returned.
    SameData,
    /// Refused (conflict, policy, watermark, unknown key).
    Refused,
    /// No usable answer from the store, or an internal failure: nothing was signed.
    Error,
}

impl Decision {
    /// The name used in the log.
    pub fn name(self) -> &'static str {
        match self {
            Decision::Signed => "signed",
            Decision::SameData => "same-data",
            Decision::Refused => "refused",
            Decision::Error => "error",
        }
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One line: a record or a checkpoint. The writer sets `seq` and `prev`; everything else of a
/// record is filled by the signer's engine.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogLine {
    /// Sequence number (gap-free across files).
    pub seq: u64,
    /// blake2_256 of the previous line's bytes, hex (32 zero bytes for the first line).
    pub prev: String,
    /// Present on checkpoint lines (which carry no record fields).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<Checkpoint>,
    /// Unix milliseconds.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub time_ms: u64,
    /// The signer id.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub signer: String,
    /// The client identity (from its certificate).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub client: String,
    /// The chain (genesis hash, `0x` hex).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub chain: String,
    /// The RPC method (`sign`, `vrfSign`, `generateKey`, …).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub method: String,
    /// The key type.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub key_type: String,
    /// The public key, hex.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub public: String,
    /// The duty (claimed requests only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duty: Option<Duty>,
    /// The decision (every record has one; checkpoints have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
    /// blake2_256 of the message signed, hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_hash: Option<String>,
    /// The exact message, hex (so a verifier can check the signature).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The message is a 32-byte prehash (`ecdsa_sign_prehashed`, BEEFY votes).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub prehashed: bool,
    /// The pre-image the message was derived from (header, commitment or VRF inputs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preimage: Option<serde_json::Value>,
    /// The signature returned, hex (for `vrfSign`: the 32-byte pre-output then the 64-byte proof).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// Why it was refused or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Refusals of this client answered but not logged since its previous record (over its
    /// refused-request budget, `audit.refused_per_client_per_minute`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unlogged_refusals: Option<u64>,
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

    /// The bytes of this line as written (without its newline).
    pub fn encode(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
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

/// The link a line gives the next one: blake2_256 of its bytes (without the newline).
pub fn line_hash(bytes: &[u8]) -> [u8; 32] {
    sp_crypto_hashing::blake2_256(bytes)
}

/// Decode `0x`-optional hex.
pub fn unhex(s: &str) -> Result<Vec<u8>, String> {
    hex::decode(s.strip_prefix("0x").unwrap_or(s)).map_err(|e| format!("bad hex: {e}"))
}

/// Decode 32 bytes of `0x`-optional hex.
pub fn unhex32(s: &str) -> Result<[u8; 32], String> {
    unhex(s)?.try_into().map_err(|_| "expected 32 bytes".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::CheckpointReason;

    fn record() -> LogLine {
        LogLine {
            seq: 7,
            prev: hex::encode([1u8; 32]),
            time_ms: 1,
            signer: "s".into(),
            client: "alice-1".into(),
            chain: "0x42".into(),
            method: "sign".into(),
            key_type: "gran".into(),
            public: "00".into(),
            decision: Some(Decision::Signed),
            signature: Some("ab".into()),
            ..LogLine::default()
        }
    }

    #[test]
    fn a_record_reads_back_as_written() {
        let line = record();
        let bytes = line.encode().expect("encode");
        assert_eq!(LogLine::parse(&bytes).expect("parse"), line);
        let text = String::from_utf8(bytes).expect("utf8");
        assert!(text.starts_with(r#"{"seq":7,"prev":"#), "{text}");
        assert!(!text.contains("checkpoint"), "{text}");
    }

    #[test]
    fn a_checkpoint_line_carries_no_record_fields() {
        let cp = Checkpoint {
            signer: "s".into(),
            time_ms: 5,
            reason: CheckpointReason::Start,
            records: 0,
            audit_key: "aa".into(),
            signature: "bb".into(),
        };
        let line = LogLine { seq: 1, prev: hex::encode([0u8; 32]), checkpoint: Some(cp), ..LogLine::default() };
        let text = String::from_utf8(line.encode().expect("encode")).expect("utf8");
        let v: serde_json::Value = serde_json::from_str(&text).expect("json");
        let keys: Vec<&String> = v.as_object().expect("object").keys().collect();
        assert_eq!(keys, ["checkpoint", "prev", "seq"], "{text}");
        assert_eq!(LogLine::parse(text.as_bytes()).expect("parse"), line);
        assert_eq!(line.outcome(), "checkpoint");
        assert_eq!(line.signer(), "s");
    }

    #[test]
    fn a_line_that_is_neither_is_refused_by_name() {
        let err = LogLine::parse(br#"{"seq":1,"prev":"00"}"#).expect_err("neither");
        assert!(err.contains("neither a record"), "{err}");
        assert!(LogLine::parse(b"{\"seq\":1,\"pr").is_err());
    }
}
