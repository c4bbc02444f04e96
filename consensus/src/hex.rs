//! `0x`-prefixed hex, the one text form Stele uses for bytes (digests, keys, signatures,
//! addresses and encoded transactions).

/// A hex string that could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HexError {
    /// Not valid hex digits.
    #[error("invalid hex: {0}")]
    Invalid(String),
    /// Valid hex of the wrong length.
    #[error("expected {expected} bytes of hex, got {actual}")]
    Length {
        /// Bytes expected.
        expected: usize,
        /// Bytes found.
        actual: usize,
    },
}

/// Encodes bytes as `0x`-prefixed lowercase hex.
pub fn encode(bytes: impl AsRef<[u8]>) -> String {
    format!("0x{}", ::hex::encode(bytes))
}

/// Decodes hex with or without a `0x` prefix.
pub fn decode(text: &str) -> Result<Vec<u8>, HexError> {
    let digits = text.strip_prefix("0x").unwrap_or(text);
    ::hex::decode(digits).map_err(|error| HexError::Invalid(error.to_string()))
}

/// Decodes hex of exactly `N` bytes.
pub fn decode_array<const N: usize>(text: &str) -> Result<[u8; N], HexError> {
    let bytes = decode(text)?;
    let actual = bytes.len();
    bytes.try_into().map_err(|_| HexError::Length { expected: N, actual })
}

/// Implements `Display` (0x hex), `Debug`, `FromStr` and hex-string serde for a newtype whose
/// bytes are reachable with `as_ref()` and which is built by `TryFrom<[u8; N]>`-like logic in
/// `$from`.
#[macro_export]
macro_rules! impl_hex_text {
    ($type:ty, $len:expr, $from:expr) => {
        impl ::core::fmt::Display for $type {
            fn fmt(&self, formatter: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                formatter.write_str(&$crate::hex::encode(self.as_ref()))
            }
        }
        impl ::core::fmt::Debug for $type {
            fn fmt(&self, formatter: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                write!(formatter, "{}({})", stringify!($type), self)
            }
        }
        impl ::core::str::FromStr for $type {
            type Err = $crate::Error;
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                let bytes = $crate::hex::decode_array::<$len>(text)?;
                let from_bytes = $from;
                from_bytes(bytes)
            }
        }
        impl ::serde::Serialize for $type {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.to_string())
            }
        }
        impl<'de> ::serde::Deserialize<'de> for $type {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <String as ::serde::Deserialize>::deserialize(deserializer)?;
                text.parse().map_err(::serde::de::Error::custom)
            }
        }
    };
}
