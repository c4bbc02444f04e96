use borsh::{BorshDeserialize, BorshSerialize};

use crate::{Digest, PublicKey};

/// Position of a validator in its [`ValidatorSet`]; certificates name signers by index.
pub type ValidatorIndex = u32;

/// The most validators a set may hold; bounds decoding and certificate sizes.
pub const VALIDATOR_SET_MAX: usize = 1024;

/// The ordered consensus keys of the validators in force at some height.
///
/// With `n` members it tolerates `f = (n - 1) / 3` Byzantine ones and needs a quorum of
/// `2n/3 + 1` (strictly more than two thirds), which is `2f + 1` when `n = 3f + 1`. Any two
/// quorums then share at least `f + 1` members, so at least one honest one (PBFT §4.2).
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize)]
pub struct ValidatorSet {
    members: Vec<PublicKey>,
}

/// Why a list of keys is not a validator set.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ValidatorSetError {
    /// No members.
    #[error("a validator set needs at least one member")]
    Empty,
    /// More than [`VALIDATOR_SET_MAX`] members.
    #[error("a validator set holds at most {VALIDATOR_SET_MAX} members, got {0}")]
    TooLarge(usize),
    /// The same key twice: the position of the second occurrence.
    #[error("validator {0} repeats the key of an earlier validator")]
    Duplicate(usize),
}

impl ValidatorSet {
    /// Builds a set, keeping the given order (leader rotation follows it).
    pub fn new(members: Vec<PublicKey>) -> Result<Self, ValidatorSetError> {
        if members.is_empty() {
            return Err(ValidatorSetError::Empty);
        }
        if members.len() > VALIDATOR_SET_MAX {
            return Err(ValidatorSetError::TooLarge(members.len()));
        }
        let mut seen = std::collections::HashSet::with_capacity(members.len());
        if let Some(duplicate) = members.iter().position(|key| !seen.insert(key.to_bytes())) {
            return Err(ValidatorSetError::Duplicate(duplicate));
        }
        Ok(ValidatorSet { members })
    }

    /// Number of validators, `n`.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Always false: a set has at least one member.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Byzantine validators tolerated, `f = (n - 1) / 3`.
    pub fn max_faulty(&self) -> usize {
        (self.len() - 1) / 3
    }

    /// Signatures needed for a certificate: strictly more than two thirds, `2f + 1` when
    /// `n = 3f + 1`.
    pub fn quorum(&self) -> usize {
        2 * self.len() / 3 + 1
    }

    /// The members in order.
    pub fn members(&self) -> &[PublicKey] {
        &self.members
    }

    /// The key at an index, if there is one.
    pub fn get(&self, index: ValidatorIndex) -> Option<&PublicKey> {
        self.members.get(index as usize)
    }

    /// The index of a key, if it is a member.
    pub fn index_of(&self, key: &PublicKey) -> Option<ValidatorIndex> {
        self.members.iter().position(|member| member == key).map(|index| index as ValidatorIndex)
    }

    /// A digest committing to the members and their order; block headers carry it.
    pub fn digest(&self) -> Digest {
        let encoded = borsh::to_vec(self).expect("encoding to a Vec cannot fail");
        Digest::of_parts(&[b"stele/validator-set/v1", &encoded])
    }
}

impl BorshDeserialize for ValidatorSet {
    fn deserialize_reader<R: std::io::Read>(reader: &mut R) -> std::io::Result<Self> {
        let members = Vec::<PublicKey>::deserialize_reader(reader)?;
        ValidatorSet::new(members).map_err(std::io::Error::other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SigningKey;

    fn set_of(n: u8) -> ValidatorSet {
        ValidatorSet::new((0..n).map(|i| SigningKey::from_seed([i; 32]).public_key()).collect()).expect("valid set")
    }

    #[test]
    fn quorum_is_two_f_plus_one_for_three_f_plus_one() {
        for f in 0..6u8 {
            let set = set_of(3 * f + 1);
            assert_eq!(set.max_faulty(), f as usize);
            assert_eq!(set.quorum(), 2 * f as usize + 1);
        }
    }

    #[test]
    fn any_two_quorums_share_an_honest_member() {
        for n in 1..40u8 {
            let set = set_of(n);
            let overlap = 2 * set.quorum() as isize - n as isize;
            assert!(overlap > set.max_faulty() as isize, "n = {n}");
            assert!(set.quorum() <= n as usize, "a quorum must be reachable, n = {n}");
        }
    }

    #[test]
    fn rejects_empty_and_duplicates() {
        assert_eq!(ValidatorSet::new(vec![]), Err(ValidatorSetError::Empty));
        let key = SigningKey::from_seed([1; 32]).public_key();
        assert_eq!(ValidatorSet::new(vec![key, key]), Err(ValidatorSetError::Duplicate(1)));
        let encoded = borsh::to_vec(&vec![key, key]).expect("encode");
        assert!(borsh::from_slice::<ValidatorSet>(&encoded).is_err());
    }

    #[test]
    fn digest_depends_on_order() {
        let a = SigningKey::from_seed([1; 32]).public_key();
        let b = SigningKey::from_seed([2; 32]).public_key();
        let ab = ValidatorSet::new(vec![a, b]).expect("set");
        let ba = ValidatorSet::new(vec![b, a]).expect("set");
        assert_ne!(ab.digest(), ba.digest());
    }
}
