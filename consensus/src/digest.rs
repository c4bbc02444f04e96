use borsh::{BorshDeserialize, BorshSerialize};
use sha3::{Digest as _, Sha3_256};

/// A sha3-256 digest: block hashes, transaction hashes, Merkle and state roots.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, BorshSerialize, BorshDeserialize)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// The all-zero digest, used as the previous hash of the genesis header.
    pub const ZERO: Digest = Digest([0; 32]);

    /// Hashes one byte string.
    pub fn of(bytes: &[u8]) -> Self {
        Digest(Sha3_256::digest(bytes).into())
    }

    /// Hashes the concatenation of several byte strings without copying them together.
    pub fn of_parts(parts: &[&[u8]]) -> Self {
        let mut hasher = Sha3_256::new();
        for part in parts {
            hasher.update(part);
        }
        Digest(hasher.finalize().into())
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl AsRef<[u8]> for Digest {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

crate::impl_hex_text!(Digest, 32, |bytes| Ok::<_, crate::Error>(Digest(bytes)));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha3_256_known_answer() {
        // FIPS 202 test vector for the empty string.
        assert_eq!(Digest::of(b"").to_string(), "0xa7ffc6f8bf1ed76651c14756a061d662f580ff4de43b49fa82d80a4b80f8434a");
        assert_eq!(Digest::of(b"ab"), Digest::of_parts(&[b"a", b"b"]));
    }

    #[test]
    fn text_round_trip_and_errors() {
        let digest = Digest::of(b"stele");
        assert_eq!(digest.to_string().parse::<Digest>(), Ok(digest));
        assert!("0x1234".parse::<Digest>().is_err());
        assert!("zz".parse::<Digest>().is_err());
        let json = serde_json::to_string(&digest).expect("serialize");
        assert_eq!(serde_json::from_str::<Digest>(&json).expect("deserialize"), digest);
    }
}
