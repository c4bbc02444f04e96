//! How a Stele network begins: the `genesis.json` document, key files, generating every file
//! an n-validator network needs in one place, and assembling a genesis from the public
//! validator entries of separate operators.
//!
//! Depends on `ledger` (whose [`ledger::Genesis`] is the canonical content this JSON maps to)
//! and `consensus` (keys). Never on networking or RPC.
//!
//! Invariants: the genesis hash is computed from the canonical borsh form, so reformatting the
//! JSON never changes it; key files are created with mode 0600 and never overwritten.

mod build;
mod document;
mod entry;
mod keyfile;
mod network;
mod peer_id;

pub use build::{BuiltGenesis, GenesisPlan, build_genesis};
pub use document::{GenesisAccountEntry, GenesisDocument, GenesisValidatorEntry};
pub use entry::{ENTRY_FORMAT, ValidatorEntry};
pub use keyfile::{KeyFile, load_key, write_key};
pub use network::{GeneratedNetwork, GeneratedNode, NetworkSpec, files, generate_network};
pub use peer_id::peer_id_of;

/// Everything that can go wrong reading or writing genesis and key files.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file is not valid JSON of the expected shape; `field` is the JSON path.
    #[error("{path}: {field}: {message}")]
    Parse {
        /// The file.
        path: std::path::PathBuf,
        /// JSON path of the offending field (`.` for the document).
        field: String,
        /// What is wrong.
        message: String,
    },
    /// A field holds a value the ledger cannot use.
    #[error("{field}: {message}")]
    Invalid {
        /// Name of the field, as in the JSON (`validators[1].peer_id`).
        field: String,
        /// What is wrong.
        message: String,
    },
    /// A key file that must not be used as it is.
    #[error("{path}: {message}")]
    Key {
        /// The key file.
        path: std::path::PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A file that would be overwritten.
    #[error("{0} already exists; refusing to overwrite it")]
    Exists(std::path::PathBuf),
    /// A file given as a validator entry that is not one, or one made for another chain.
    #[error("{path}: {message}")]
    Foreign {
        /// The file.
        path: std::path::PathBuf,
        /// What it is instead.
        message: String,
    },
    /// Two validator entries share a name, consensus key or peer id.
    #[error("{first} and {second} have the same {what} ({value}): each validator needs its own")]
    Duplicate {
        /// What they share.
        what: &'static str,
        /// The shared value.
        value: String,
        /// The earlier entry.
        first: std::path::PathBuf,
        /// The later one.
        second: std::path::PathBuf,
    },
    /// Fewer validators than the genesis requires.
    #[error(
        "{count} validator(s), but params.min_validators is {min} (4 tolerate one faulty validator); \
         add validators or lower min_validators"
    )]
    TooFewValidators {
        /// Validators given.
        count: usize,
        /// `params.min_validators`.
        min: u32,
    },
}

pub(crate) fn invalid(field: impl Into<String>, message: impl std::fmt::Display) -> Error {
    Error::Invalid { field: field.into(), message: message.to_string() }
}

pub(crate) fn io_error(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io { path: path.to_path_buf(), source }
}

/// Parses JSON, naming the path of the field that fails (`validators[2].public_key`).
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(path: &std::path::Path, text: &str) -> Result<T, Error> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|error| Error::Parse {
        path: path.to_path_buf(),
        field: error.path().to_string(),
        message: error.into_inner().to_string(),
    })
}
