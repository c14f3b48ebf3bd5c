//! Reading a signing log line by line, as `exclave audit verify` does for each line
//! (audit/src/verify.rs `process`): `exclave_signing_log::LogLine::parse`, then for a
//! checkpoint `checkpoint::verify_checkpoint`, for a record that released a signature
//! `exclave_audit::sigcheck::check` (which re-decodes the recorded pre-image with the signer's
//! own `classify` and verifies the signature), and the refusal classifier.
//!
//! The input is split on `\n` like a log file.
//!
//! Asserts: no panic; a line that parses is a record (with a decision) or a checkpoint; it
//! encodes (as the writer writes it) to bytes that parse back to an equal line and re-encode to
//! the same bytes (for a pre-image holding floats: equal but for the pre-image).
#![no_main]

use exclave_audit::{sigcheck, verify::refusal_class};
use exclave_signing_log::{checkpoint::verify_checkpoint, unhex32, LogLine};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fn has_float(v: &Value) -> bool {
    match v {
        Value::Number(n) => n.is_f64(),
        Value::Array(a) => a.iter().any(has_float),
        Value::Object(o) => o.values().any(has_float),
        _ => false,
    }
}

fuzz_target!(|data: &[u8]| {
    for bytes in data.split(|b| *b == b'\n') {
        let Ok(line) = LogLine::parse(bytes) else { continue };
        assert!(line.checkpoint.is_some() || line.decision.is_some());
        let encoded = line.encode().expect("a parsed line encodes");
        let back = LogLine::parse(&encoded).unwrap_or_else(|e| panic!("{} does not parse back: {e}", String::from_utf8_lossy(&encoded)));
        if line.preimage.as_ref().is_some_and(has_float) {
            // serde_json (without `float_roundtrip`) may read a float 1 ULP off; the writer
            // records only integers and strings, and the verifier hashes the bytes as read.
            let strip = |l: &LogLine| LogLine { preimage: None, ..l.clone() };
            assert_eq!(strip(&back), strip(&line), "{}", String::from_utf8_lossy(&encoded));
        } else {
            assert_eq!(back, line, "{}", String::from_utf8_lossy(&encoded));
            assert_eq!(back.encode().expect("encodes"), encoded, "encoding is not stable");
        }
        if let Some(cp) = &line.checkpoint {
            if let Ok(prev) = unhex32(&line.prev) {
                let _ = verify_checkpoint(cp, line.seq, &prev);
            }
        } else if line.released() {
            let _ = sigcheck::check(&line);
        }
        let _ = (line.outcome(), line.signer(), refusal_class(line.reason.as_deref().unwrap_or_default()));
    }
});
