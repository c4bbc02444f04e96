use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

/// Chain parameters, fixed by the genesis and stored in the state (so the state root commits to
/// them). Every node enforces the same limits, so a block valid on one is valid on all.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Most transactions in one block.
    pub max_block_txs: u32,
    /// Most bytes of encoded transactions in one block.
    pub max_block_bytes: u64,
    /// Most bytes of one encoded signed transaction.
    pub max_tx_bytes: u32,
    /// Most bytes of a record key.
    pub max_key_bytes: u32,
    /// Most bytes of a record value.
    pub max_value_bytes: u32,
    /// Blocks between the block that changes the validator set and the first height the new set
    /// certifies (at least 1), so every node knows a height's signers before it is proposed.
    pub validator_change_delay: u64,
    /// First view timeout in milliseconds; later views back off exponentially.
    pub view_timeout_ms: u64,
    /// Ceiling of the view timeout backoff in milliseconds.
    pub view_timeout_max_ms: u64,
    /// Fewest validators a `RemoveValidator` may leave: 4 by default, the smallest set that
    /// tolerates one Byzantine validator. A genesis may lower it (a one-node development chain).
    #[serde(default = "default_min_validators")]
    pub min_validators: u32,
}

fn default_min_validators() -> u32 {
    4
}

impl Default for Params {
    fn default() -> Self {
        Params {
            max_block_txs: 20_000,
            max_block_bytes: 8 * 1024 * 1024,
            max_tx_bytes: 64 * 1024,
            max_key_bytes: 256,
            max_value_bytes: 32 * 1024,
            validator_change_delay: 2,
            view_timeout_ms: 3_000,
            view_timeout_max_ms: 30_000,
            min_validators: default_min_validators(),
        }
    }
}

impl Params {
    /// Checks that the parameters are usable; names the first bad field.
    pub fn validate(&self) -> Result<(), String> {
        let checks: [(bool, &str); 8] = [
            (self.max_block_txs > 0, "max_block_txs must be at least 1"),
            (self.max_tx_bytes >= 256, "max_tx_bytes must be at least 256"),
            (self.max_block_bytes >= u64::from(self.max_tx_bytes), "max_block_bytes must be at least max_tx_bytes"),
            (self.max_key_bytes > 0, "max_key_bytes must be at least 1"),
            (self.max_value_bytes < self.max_tx_bytes, "max_value_bytes must be below max_tx_bytes"),
            (self.validator_change_delay >= 1, "validator_change_delay must be at least 1"),
            (
                self.view_timeout_ms > 0 && self.view_timeout_max_ms >= self.view_timeout_ms,
                "view_timeout_ms must be positive and at most view_timeout_max_ms",
            ),
            (self.min_validators >= 1, "min_validators must be at least 1"),
        ];
        match checks.into_iter().find(|(ok, _)| !ok) {
            Some((_, message)) => Err(message.to_string()),
            None => Ok(()),
        }
    }
}
