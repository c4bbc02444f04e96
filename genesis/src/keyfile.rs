use std::path::Path;

use consensus::{PublicKey, SigningKey};
use ledger::Address;
use serde::{Deserialize, Serialize};

use crate::{Error, document::write_new, io_error, parse_json};

/// A key file as stored on disk (JSON, mode 0600): the secret seed with the public key and
/// address it implies, so a mismatched or edited file is caught on load.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyFile {
    /// The ed25519 public key.
    pub public_key: PublicKey,
    /// The account address the key controls.
    pub address: Address,
    /// The 32-byte secret seed, 0x hex. Never share it.
    pub secret_key: String,
}

/// Writes a new key file with mode 0600; refuses to overwrite an existing one.
pub fn write_key(path: &Path, key: &SigningKey) -> Result<(), Error> {
    let file = KeyFile {
        public_key: key.public_key(),
        address: Address::of(&key.public_key()),
        secret_key: consensus::hex::encode(key.seed()),
    };
    let text = serde_json::to_string_pretty(&file).expect("a key file always serialises");
    write_new(path, format!("{text}\n").as_bytes(), 0o600)
}

/// Reads a key file, refusing one that other users can read or whose public key does not
/// match its secret.
pub fn load_key(path: &Path) -> Result<SigningKey, Error> {
    use std::os::unix::fs::PermissionsExt;
    let key_error = |message: String| Error::Key { path: path.to_path_buf(), message };
    let mode = std::fs::metadata(path).map_err(io_error(path))?.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(key_error(format!(
            "other users can access this secret key (mode {:o}); run `chmod 600 {}`",
            mode & 0o777,
            path.display()
        )));
    }
    let text = std::fs::read_to_string(path).map_err(io_error(path))?;
    let file: KeyFile = parse_json(path, &text)?;
    let seed = consensus::hex::decode_array::<32>(&file.secret_key)
        .map_err(|error| key_error(format!("secret_key: {error}")))?;
    let key = SigningKey::from_seed(seed);
    if key.public_key() != file.public_key {
        return Err(key_error("public_key does not match secret_key".to_string()));
    }
    if Address::of(&file.public_key) != file.address {
        return Err(key_error("address does not match public_key".to_string()));
    }
    Ok(key)
}
