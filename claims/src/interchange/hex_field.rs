//! Hex fields of an interchange file (`0x` optional).

/// Decode `0x`-optional hex.
pub fn unhex(s: &str) -> Result<Vec<u8>, String> {
    hex::decode(s.strip_prefix("0x").unwrap_or(s)).map_err(|e| format!("bad hex: {e}"))
}

/// Decode 32 bytes of `0x`-optional hex.
pub fn unhex32(s: &str) -> Result<[u8; 32], String> {
    unhex(s)?.try_into().map_err(|_| "expected 32 bytes".to_string())
}
