//! The public validator entry an operator's `stele init` writes and sends to whoever assembles
//! the genesis: name, consensus key, peer id and p2p address, signed by both of the node's keys
//! so an entry edited or corrupted on its way (a mistyped key, another node's peer id) is caught
//! before it goes into a genesis. It holds no secret.

use std::path::Path;

use consensus::{ChainId, PublicKey, Signature, SigningKey};
use ledger::ValidatorInfo;
use serde::{Deserialize, Serialize};

use crate::{Error, GenesisValidatorEntry, document::write_new, io_error, parse_json, peer_id::node_key_of};

/// The `format` every entry names; another value is refused (a future or foreign format).
pub const ENTRY_FORMAT: &str = "stele-validator-entry/1";

/// Domain of the entry signatures: they can never be mistaken for a vote or a transaction.
const SIGNING_DOMAIN: &[u8] = b"stele/validator-entry/v1";

/// A validator entry (`validator.public.json`).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidatorEntry {
    /// Always [`ENTRY_FORMAT`].
    pub format: String,
    /// The chain it was made for, if the operator named one; a genesis of another chain refuses it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain_id: Option<ChainId>,
    /// The validator's name, unique in the genesis.
    pub name: String,
    /// Its consensus key.
    pub public_key: PublicKey,
    /// The libp2p peer id of its node key.
    pub peer_id: String,
    /// What other nodes dial (a multiaddr without `/p2p/`): the external address, else `listen`.
    pub address: String,
    /// The consensus key's signature over every field above.
    pub signature: Signature,
    /// The node key's signature over the same: the peer id is this node's.
    pub node_signature: Signature,
}

impl ValidatorEntry {
    /// A signed entry for the node whose keys these are.
    pub fn new(
        name: &str,
        chain_id: Option<ChainId>,
        validator_key: &SigningKey,
        node_key: &SigningKey,
        address: &str,
    ) -> Result<Self, Error> {
        let mut entry = ValidatorEntry {
            format: ENTRY_FORMAT.to_string(),
            chain_id,
            name: name.to_string(),
            public_key: validator_key.public_key(),
            peer_id: crate::peer_id_of(&node_key.public_key()),
            address: address.to_string(),
            signature: Signature([0; 64]),
            node_signature: Signature([0; 64]),
        };
        let message = entry.signing_bytes();
        entry.signature = validator_key.sign(&message);
        entry.node_signature = node_key.sign(&message);
        entry.check().map_err(|(field, message)| crate::invalid(field, message))?;
        Ok(entry)
    }

    /// Reads and checks an entry; the error names the file and the field.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(io_error(path))?;
        let foreign = |message: String| Error::Foreign { path: path.to_path_buf(), message };
        // Before the typed parse, so a wrong file gets a useful message (and a secret key file
        // sent by mistake is recognised without its secret ever being printed).
        let value: serde_json::Value = serde_json::from_str(&text)
            .map_err(|error| foreign(format!("not a validator entry: not JSON ({error})")))?;
        if value.get("secret_key").is_some() {
            return Err(foreign(format!(
                "this is a SECRET key file, not a validator entry: never send it to anyone; \
                 send the {} that `stele init` wrote beside it",
                crate::files::VALIDATOR_ENTRY
            )));
        }
        match value.get("format").and_then(serde_json::Value::as_str) {
            Some(ENTRY_FORMAT) => {}
            Some(other) => return Err(foreign(format!("format {other:?} is not {ENTRY_FORMAT:?}"))),
            None => {
                return Err(foreign(format!(
                    "not a validator entry (no \"format\": {ENTRY_FORMAT:?}); `stele init` writes one as \
                     HOME/{}",
                    crate::files::VALIDATOR_ENTRY
                )));
            }
        }
        let entry: ValidatorEntry = parse_json(path, &text)?;
        entry.check().map_err(|(field, message)| Error::Parse {
            path: path.to_path_buf(),
            field: field.to_string(),
            message,
        })?;
        Ok(entry)
    }

    /// Writes the entry as pretty JSON, mode 0644 (it is public); refuses an existing file.
    pub fn save(&self, path: &Path) -> Result<(), Error> {
        let text = serde_json::to_string_pretty(self).expect("an entry always serialises");
        write_new(path, format!("{text}\n").as_bytes(), 0o644)
    }

    /// The multiaddr peers dial, with the peer id: what goes in `network.bootstrap`.
    pub fn p2p_address(&self) -> String {
        format!("{}/p2p/{}", self.address, self.peer_id)
    }

    /// The validator as the genesis lists it.
    pub fn to_genesis(&self) -> GenesisValidatorEntry {
        GenesisValidatorEntry { name: self.name.clone(), public_key: self.public_key, peer_id: self.peer_id.clone() }
    }

    /// What the signatures cover: the domain and every field, each prefixed with its length
    /// (u32 little-endian), so no two different entries sign the same bytes.
    fn signing_bytes(&self) -> Vec<u8> {
        let chain_id = self.chain_id.as_ref().map_or("", ChainId::as_str);
        let parts: [&[u8]; 6] = [
            SIGNING_DOMAIN,
            chain_id.as_bytes(),
            self.name.as_bytes(),
            self.public_key.as_ref(),
            self.peer_id.as_bytes(),
            self.address.as_bytes(),
        ];
        let mut bytes = Vec::with_capacity(parts.iter().map(|part| 4 + part.len()).sum());
        for part in parts {
            bytes.extend_from_slice(&(part.len() as u32).to_le_bytes());
            bytes.extend_from_slice(part);
        }
        bytes
    }

    /// Every check but the format's; `(field, what is wrong)`.
    fn check(&self) -> Result<(), (&'static str, String)> {
        ValidatorInfo { name: self.name.clone(), public_key: self.public_key, peer_id: self.peer_id.clone() }
            .validate()
            .map_err(|message| (if message.starts_with("peer_id") { "peer_id" } else { "name" }, message))?;
        let node_key = node_key_of(&self.peer_id)
            .ok_or_else(|| ("peer_id", format!("{} is not the peer id of an ed25519 node key", self.peer_id)))?;
        if !self.address.starts_with('/') || self.address.contains("/p2p/") {
            return Err((
                "address",
                format!("{:?} must be a multiaddr such as /ip4/203.0.113.7/tcp/26656 (without /p2p/)", self.address),
            ));
        }
        let message = self.signing_bytes();
        self.public_key.verify(&message, &self.signature).map_err(|_| {
            ("signature", "does not verify with public_key: the entry was changed after `stele init` wrote it".into())
        })?;
        node_key.verify(&message, &self.node_signature).map_err(|_| {
            (
                "node_signature",
                "does not verify with the key of peer_id: the entry was changed after `stele init` wrote it".into(),
            )
        })?;
        Ok(())
    }
}
