use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

/// A permission an account holds; each payload kind needs one (see `Payload::required_role`).
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[borsh(use_discriminant = true)]
#[serde(rename_all = "lowercase")]
#[repr(u8)]
pub enum Role {
    /// May transfer its own balance.
    Transact = 0,
    /// May create new balance.
    Mint = 1,
    /// May write and delete records.
    Write = 2,
    /// May grant and revoke roles and change the validator set.
    Admin = 3,
}

impl Role {
    /// Every role, in bit order.
    pub const ALL: [Role; 4] = [Role::Transact, Role::Mint, Role::Write, Role::Admin];

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(match self {
            Role::Transact => "transact",
            Role::Mint => "mint",
            Role::Write => "write",
            Role::Admin => "admin",
        })
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.to_string() == text)
            .ok_or_else(|| format!("unknown role {text:?} (expected transact, mint, write or admin)"))
    }
}

/// A set of roles, stored as one byte. Unknown bits are refused on decode.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Debug, BorshSerialize)]
pub struct Roles(u8);

impl Roles {
    /// No roles.
    pub const NONE: Roles = Roles(0);

    /// The set holding exactly these roles.
    pub fn of(roles: &[Role]) -> Self {
        Roles(roles.iter().fold(0, |bits, role| bits | role.bit()))
    }

    /// Whether the set holds a role.
    pub fn contains(self, role: Role) -> bool {
        self.0 & role.bit() != 0
    }

    /// The set with a role added.
    pub fn with(self, role: Role) -> Self {
        Roles(self.0 | role.bit())
    }

    /// The set with a role removed.
    pub fn without(self, role: Role) -> Self {
        Roles(self.0 & !role.bit())
    }

    /// The roles held, in bit order.
    pub fn to_vec(self) -> Vec<Role> {
        Role::ALL.into_iter().filter(|role| self.contains(*role)).collect()
    }
}

impl BorshDeserialize for Roles {
    fn deserialize_reader<R: std::io::Read>(reader: &mut R) -> std::io::Result<Self> {
        let bits = u8::deserialize_reader(reader)?;
        if bits & !Roles::of(&Role::ALL).0 != 0 {
            return Err(std::io::Error::other(format!("unknown role bits {bits:#010b}")));
        }
        Ok(Roles(bits))
    }
}
