//! Hex-encoded bytes and key types on the wire.

use serde::{de::Error as _, Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Bytes as a `0x`-prefixed hex string.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Bytes(pub Vec<u8>);

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{}", hex::encode(&self.0))
    }
}

impl From<Vec<u8>> for Bytes {
    fn from(v: Vec<u8>) -> Self {
        Bytes(v)
    }
}

impl From<&[u8]> for Bytes {
    fn from(v: &[u8]) -> Self {
        Bytes(v.to_vec())
    }
}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("0x{}", hex::encode(&self.0)))
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let digits = s.strip_prefix("0x").ok_or_else(|| D::Error::custom("bytes must be a 0x-prefixed hex string"))?;
        hex::decode(digits).map(Bytes).map_err(|e| D::Error::custom(format!("bad hex: {e}")))
    }
}

/// A four-byte key type: `"babe"` on the wire, or `"0x62616265"` for non-ASCII ids.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct WireKeyType(pub [u8; 4]);

impl fmt::Debug for WireKeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for WireKeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.iter().all(|b| b.is_ascii_alphanumeric()) {
            f.write_str(std::str::from_utf8(&self.0).unwrap_or_default())
        } else {
            write!(f, "0x{}", hex::encode(self.0))
        }
    }
}

impl std::str::FromStr for WireKeyType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bytes = match s.strip_prefix("0x") {
            Some(h) => hex::decode(h).map_err(|e| format!("key type {s:?}: {e}"))?,
            None => s.as_bytes().to_vec(),
        };
        let arr: [u8; 4] = bytes.try_into().map_err(|_| format!("key type {s:?} is not 4 bytes"))?;
        Ok(WireKeyType(arr))
    }
}

impl Serialize for WireKeyType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for WireKeyType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(D::Error::custom)
    }
}
