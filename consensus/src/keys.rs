//! Keys and signatures, and THE rule deciding whether a signature is valid.
//!
//! Validity must be a function of the bytes alone: the same (key, message, signature) must get
//! the same verdict on every node, in every run, alone or in any batch. ed25519-dalek's
//! `verify_strict` and its batch equation disagree on signatures whose R carries a small-torsion
//! component (the batch passes about half of the layouts), so Stele verifies with the ZIP-215
//! rules (cofactored equation `[8][s]B = [8]R + [8][k]A`, s canonical, any point encoding of R),
//! through ed25519-zebra, whose batch and single checks accept exactly the same signatures.
//! ed25519-dalek still makes keys and signs (RFC 8032: its signatures verify under ZIP-215).

use borsh::{BorshDeserialize, BorshSerialize};
use ed25519_dalek::Signer as _;
use ed25519_zebra::VerificationKey;
use zeroize::Zeroizing;

/// A key or signature that was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    /// The bytes are not a point on the curve.
    #[error("not a valid ed25519 public key")]
    InvalidPublicKey,
    /// A small-order key, which would let one signature verify for many messages.
    #[error("weak (small-order) ed25519 public key")]
    WeakPublicKey,
    /// A point encoded with y >= p: one key would have two encodings, hence two addresses.
    #[error("non-canonical ed25519 public key encoding")]
    NonCanonicalPublicKey,
    /// The signature does not verify for this key and message.
    #[error("signature does not verify")]
    BadSignature,
    /// The operating system's random number generator failed.
    #[error("no randomness available: {0}")]
    Randomness(String),
}

/// An ed25519 public key: a validator's consensus key or an account's signing key.
///
/// Always a valid, non-weak point: [`PublicKey::from_bytes`] and borsh decoding check it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(VerificationKey);

impl std::hash::Hash for PublicKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.as_ref().hash(state);
    }
}

impl PublicKey {
    /// Parses and checks 32 bytes: a point on the curve, canonically encoded, not of small order.
    ///
    /// Decompressing a point costs about as much as a fifth of a signature check, and the same
    /// signers recur block after block, so each thread remembers up to 16,384 parsed keys.
    pub fn from_bytes(bytes: [u8; 32]) -> Result<Self, KeyError> {
        thread_local! {
            static PARSED: std::cell::RefCell<std::collections::HashMap<[u8; 32], VerificationKey>> =
                std::cell::RefCell::new(std::collections::HashMap::new());
        }
        const PARSED_MAX: usize = 1 << 14; // about 2 MiB per thread
        if let Some(key) = PARSED.with(|parsed| parsed.borrow().get(&bytes).copied()) {
            return Ok(PublicKey(key));
        }
        let point = ed25519_dalek::VerifyingKey::from_bytes(&bytes).map_err(|_| KeyError::InvalidPublicKey)?;
        if point.is_weak() {
            return Err(KeyError::WeakPublicKey);
        }
        if point.to_edwards().compress().to_bytes() != bytes {
            return Err(KeyError::NonCanonicalPublicKey);
        }
        let key = VerificationKey::try_from(bytes).map_err(|_| KeyError::InvalidPublicKey)?;
        PARSED.with(|parsed| {
            let mut parsed = parsed.borrow_mut();
            if parsed.len() >= PARSED_MAX {
                parsed.clear();
            }
            parsed.insert(bytes, key);
        });
        Ok(PublicKey(key))
    }

    /// The 32 encoded bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.into()
    }

    /// Verifies one signature under the ZIP-215 rules: the verdict [`verify_batch`] gives too.
    pub fn verify(&self, message: &[u8], signature: &Signature) -> Result<(), KeyError> {
        self.0.verify(&signature.to_ed25519(), message).map_err(|_| KeyError::BadSignature)
    }
}

impl AsRef<[u8]> for PublicKey {
    fn as_ref(&self) -> &[u8] {
        self.0.as_ref()
    }
}

impl PartialOrd for PublicKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for PublicKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.as_ref().cmp(other.0.as_ref())
    }
}

impl BorshSerialize for PublicKey {
    fn serialize<W: std::io::Write>(&self, writer: &mut W) -> std::io::Result<()> {
        writer.write_all(self.0.as_ref())
    }
}

impl BorshDeserialize for PublicKey {
    fn deserialize_reader<R: std::io::Read>(reader: &mut R) -> std::io::Result<Self> {
        let bytes = <[u8; 32]>::deserialize_reader(reader)?;
        PublicKey::from_bytes(bytes).map_err(std::io::Error::other)
    }
}

crate::impl_hex_text!(PublicKey, 32, |bytes| PublicKey::from_bytes(bytes).map_err(crate::Error::from));

/// An ed25519 signature (64 bytes). Any bytes decode; only verification tells if it is good.
#[derive(Clone, Copy, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize)]
pub struct Signature(pub [u8; 64]);

impl Signature {
    fn to_ed25519(self) -> ed25519_zebra::Signature {
        ed25519_zebra::Signature::from_bytes(&self.0)
    }
}

impl AsRef<[u8]> for Signature {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

crate::impl_hex_text!(Signature, 64, |bytes| Ok::<_, crate::Error>(Signature(bytes)));

/// A secret ed25519 key. Signing is deterministic (RFC 8032), so the consensus core may sign its
/// own votes without any randomness. The secret is zeroed on drop.
#[derive(Clone)]
pub struct SigningKey(ed25519_dalek::SigningKey);

impl SigningKey {
    /// A fresh key from the operating system's random number generator.
    pub fn generate() -> Result<Self, KeyError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|error| KeyError::Randomness(error.to_string()))?;
        Ok(Self::from_seed(seed))
    }

    /// The key for a 32-byte seed (the secret as stored in key files).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        let seed = Zeroizing::new(seed);
        SigningKey(ed25519_dalek::SigningKey::from_bytes(&seed))
    }

    /// The 32-byte seed, zeroed when the caller drops it. Handle with care: this is the secret.
    pub fn seed(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_bytes())
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        let bytes = self.0.verifying_key().to_bytes();
        // A key derived from a seed is a prime-order point, canonically encoded.
        PublicKey::from_bytes(bytes).expect("a key derived from a seed is valid")
    }

    /// Signs a message.
    pub fn sign(&self, message: &[u8]) -> Signature {
        Signature(self.0.sign(message).to_bytes())
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "SigningKey({})", self.public_key())
    }
}

/// The first signature in a batch that does not verify.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone, Copy)]
#[error("signature {index} of the batch does not verify")]
pub struct BatchError {
    /// Position of the bad signature in the batch.
    pub index: usize,
}

/// Verifies many signatures at once (about 2x faster per signature than one by one).
///
/// The verdict is exactly [`PublicKey::verify`]'s for every signature, whatever the batch holds
/// or its order: the batch equation is the cofactored ZIP-215 one, which every individually valid
/// signature satisfies. Its random coefficients come from a hash of the whole batch, so a run is
/// reproducible; a batch holding a bad signature passes only with probability 2^-128. On failure
/// the signatures are checked one at a time to name the first bad one.
pub fn verify_batch(messages: &[&[u8]], signatures: &[Signature], keys: &[PublicKey]) -> Result<(), BatchError> {
    assert!(
        messages.len() == signatures.len() && signatures.len() == keys.len(),
        "verify_batch needs one message and one key per signature"
    );
    match messages.len() {
        0 => return Ok(()),
        1 => return keys[0].verify(messages[0], &signatures[0]).map_err(|_| BatchError { index: 0 }),
        _ => {}
    }
    let mut batch = ed25519_zebra::batch::Verifier::new();
    for ((message, signature), key) in messages.iter().zip(signatures).zip(keys) {
        batch.queue((ed25519_zebra::VerificationKeyBytes::from(key.to_bytes()), signature.to_ed25519(), message));
    }
    if batch.verify(BatchCoefficients::new(messages, signatures, keys)).is_ok() {
        return Ok(());
    }
    match (0..messages.len()).find(|&index| keys[index].verify(messages[index], &signatures[index]).is_err()) {
        Some(index) => Err(BatchError { index }),
        // Cannot happen (each valid signature satisfies the batch equation); the single check is
        // the rule, so it decides.
        None => Ok(()),
    }
}

/// The batch equation's random coefficients, derived from the batch itself (Fiat-Shamir): a
/// SHA3-256 counter stream over a digest of every key, signature and message. An attacker would
/// have to find a batch whose own hash makes a bad signature cancel out, a 2^128 search.
struct BatchCoefficients {
    seed: [u8; 32],
    counter: u64,
    block: [u8; 32],
    used: usize,
}

impl BatchCoefficients {
    fn new(messages: &[&[u8]], signatures: &[Signature], keys: &[PublicKey]) -> Self {
        use sha3::Digest as _;
        let mut transcript = sha3::Sha3_256::new();
        transcript.update(b"stele/verify_batch/v1");
        for ((message, signature), key) in messages.iter().zip(signatures).zip(keys) {
            transcript.update(key.to_bytes());
            transcript.update(signature.0);
            transcript.update((message.len() as u64).to_le_bytes());
            transcript.update(message);
        }
        BatchCoefficients { seed: transcript.finalize().into(), counter: 0, block: [0; 32], used: 32 }
    }
}

impl rand_core::TryRng for BatchCoefficients {
    type Error = std::convert::Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut bytes = [0u8; 4];
        self.try_fill_bytes(&mut bytes)?;
        Ok(u32::from_le_bytes(bytes))
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut bytes = [0u8; 8];
        self.try_fill_bytes(&mut bytes)?;
        Ok(u64::from_le_bytes(bytes))
    }

    fn try_fill_bytes(&mut self, destination: &mut [u8]) -> Result<(), Self::Error> {
        use sha3::Digest as _;
        for byte in destination {
            if self.used == self.block.len() {
                let mut hasher = sha3::Sha3_256::new();
                hasher.update(self.seed);
                hasher.update(self.counter.to_le_bytes());
                self.block = hasher.finalize().into();
                self.counter += 1;
                self.used = 0;
            }
            *byte = self.block[self.used];
            self.used += 1;
        }
        Ok(())
    }
}

impl rand_core::TryCryptoRng for BatchCoefficients {}

#[cfg(all(test, feature = "hostile"))]
#[path = "keys_test.rs"]
mod differential_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_and_reject_tampering() {
        let key = SigningKey::from_seed([7; 32]);
        let signature = key.sign(b"message");
        assert_eq!(key.public_key().verify(b"message", &signature), Ok(()));
        assert_eq!(key.public_key().verify(b"messagf", &signature), Err(KeyError::BadSignature));
        let mut flipped = signature;
        flipped.0[3] ^= 1;
        assert_eq!(key.public_key().verify(b"message", &flipped), Err(KeyError::BadSignature));
    }

    #[test]
    fn public_key_decoding_rejects_invalid_and_weak_points() {
        // The identity point (small order) encodes as 1 followed by zeros.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(PublicKey::from_bytes(identity), Err(KeyError::WeakPublicKey));
        assert!(borsh::from_slice::<PublicKey>(&identity).is_err());
        // y = 2 is not on the curve.
        let mut off_curve = [0u8; 32];
        off_curve[0] = 2;
        assert_eq!(PublicKey::from_bytes(off_curve), Err(KeyError::InvalidPublicKey));
    }

    #[test]
    fn batch_names_the_bad_signature() {
        let keys: Vec<SigningKey> = (0..5u8).map(|i| SigningKey::from_seed([i; 32])).collect();
        let messages: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; 10]).collect();
        let mut signatures: Vec<Signature> = keys.iter().zip(&messages).map(|(k, m)| k.sign(m)).collect();
        let publics: Vec<PublicKey> = keys.iter().map(SigningKey::public_key).collect();
        let refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
        assert_eq!(verify_batch(&refs, &signatures, &publics), Ok(()));
        signatures[3].0[10] ^= 0x40;
        assert_eq!(verify_batch(&refs, &signatures, &publics), Err(BatchError { index: 3 }));
    }

    #[test]
    fn key_text_round_trip() {
        let public = SigningKey::from_seed([9; 32]).public_key();
        assert_eq!(public.to_string().parse::<PublicKey>(), Ok(public));
    }
}
