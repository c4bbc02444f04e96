use std::path::Path;

use consensus::{PublicKey, SigningKey};
use ledger::Address;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

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

impl Drop for KeyFile {
    /// The hex secret does not outlive the file's parsing or writing.
    fn drop(&mut self) {
        self.secret_key.zeroize();
    }
}

/// Writes a new key file with mode 0600; refuses to overwrite an existing one.
pub fn write_key(path: &Path, key: &SigningKey) -> Result<(), Error> {
    let file = KeyFile {
        public_key: key.public_key(),
        address: Address::of(&key.public_key()),
        secret_key: encode_secret(&key.seed()),
    };
    let mut text = Zeroizing::new(serde_json::to_string_pretty(&file).expect("a key file always serialises"));
    text.push('\n');
    write_new(path, text.as_bytes(), 0o600)
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
    let text = Zeroizing::new(std::fs::read_to_string(path).map_err(io_error(path))?);
    let file: KeyFile = parse_json(path, &text)?;
    let seed = decode_secret(&file.secret_key).map_err(|error| key_error(format!("secret_key: {error}")))?;
    let key = SigningKey::from_seed(*seed);
    if key.public_key() != file.public_key {
        return Err(key_error("public_key does not match secret_key".to_string()));
    }
    if Address::of(&file.public_key) != file.address {
        return Err(key_error("address does not match public_key".to_string()));
    }
    Ok(key)
}

/// The seed as 0x hex, built in place so no unzeroed copy of the secret is left behind.
fn encode_secret(seed: &[u8; 32]) -> String {
    let mut digits = Zeroizing::new([0u8; 64]);
    ::hex::encode_to_slice(seed, digits.as_mut()).expect("64 digits for 32 bytes");
    let mut text = String::with_capacity(66);
    text.push_str("0x");
    text.extend(digits.iter().map(|&digit| char::from(digit)));
    text
}

/// Decodes the hex seed (with or without 0x) straight into zeroed-on-drop memory.
fn decode_secret(text: &str) -> Result<Zeroizing<[u8; 32]>, consensus::hex::HexError> {
    let digits = text.strip_prefix("0x").unwrap_or(text);
    if digits.len() != 64 {
        return Err(consensus::hex::HexError::Length { expected: 32, actual: digits.len() / 2 });
    }
    let mut seed = Zeroizing::new([0u8; 32]);
    ::hex::decode_to_slice(digits, seed.as_mut())
        .map_err(|error| consensus::hex::HexError::Invalid(error.to_string()))?;
    Ok(seed)
}

#[cfg(test)]
mod secret_tests {
    use super::*;

    #[test]
    fn secret_hex_round_trips_and_refuses_bad_input() {
        let seed = [0xab; 32];
        let text = encode_secret(&seed);
        assert_eq!(text, consensus::hex::encode(seed));
        assert_eq!(*decode_secret(&text).expect("decodes"), seed);
        assert_eq!(*decode_secret(&text[2..]).expect("decodes without 0x"), seed);
        assert!(matches!(decode_secret("0x12"), Err(consensus::hex::HexError::Length { expected: 32, actual: 1 })));
        let bad = format!("0x{}", "zz".repeat(32));
        assert!(matches!(decode_secret(&bad), Err(consensus::hex::HexError::Invalid(_))));
    }
}
