use borsh::{BorshDeserialize, BorshSerialize};
use consensus::{Digest, PublicKey};

/// An account address: the first 20 bytes of sha3-256("stele/address/v1" ‖ public key).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, BorshSerialize, BorshDeserialize)]
pub struct Address(pub [u8; 20]);

impl Address {
    /// The address that an ed25519 public key controls.
    pub fn of(key: &PublicKey) -> Self {
        let digest = Digest::of_parts(&[b"stele/address/v1", key.as_ref()]);
        let mut bytes = [0u8; 20];
        bytes.copy_from_slice(&digest.as_bytes()[..20]);
        Address(bytes)
    }
}

impl AsRef<[u8]> for Address {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

consensus::impl_hex_text!(Address, 20, |bytes| Ok::<_, consensus::Error>(Address(bytes)));
