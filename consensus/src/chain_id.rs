use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

/// The name of a network; every signature commits to it so nothing replays across chains.
///
/// 1 to 64 bytes of `[a-z0-9-]`, checked by [`ChainId::new`] and on decode.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, BorshSerialize, Serialize)]
#[serde(transparent)]
pub struct ChainId(String);

/// The longest chain id accepted, in bytes.
pub const CHAIN_ID_MAX_LEN: usize = 64;

impl ChainId {
    /// Checks and wraps a chain id.
    pub fn new(name: impl Into<String>) -> Result<Self, String> {
        let name = name.into();
        if name.is_empty() || name.len() > CHAIN_ID_MAX_LEN {
            return Err(format!("chain id must be 1 to {CHAIN_ID_MAX_LEN} bytes, got {}", name.len()));
        }
        if !name.bytes().all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-') {
            return Err(format!("chain id {name:?} may contain only a-z, 0-9 and '-'"));
        }
        Ok(ChainId(name))
    }

    /// The chain id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ChainId {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl BorshDeserialize for ChainId {
    fn deserialize_reader<R: std::io::Read>(reader: &mut R) -> std::io::Result<Self> {
        let name = String::deserialize_reader(reader)?;
        ChainId::new(name).map_err(std::io::Error::other)
    }
}

impl<'de> Deserialize<'de> for ChainId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        ChainId::new(<String as Deserialize>::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}
