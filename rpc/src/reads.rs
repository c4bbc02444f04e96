//! The store reads the handlers share, typed: a handler asks for a height, a block or an
//! account, never for raw state bytes, so the state's key layout and value encoding stay out of
//! the API's methods.
//!
//! Every function here blocks (RocksDB) and must run inside `LedgerApi::read`, on the blocking
//! pool, under a read permit. Failures are already JSON-RPC errors: a store failure is
//! "unavailable" (never the caller's fault), a height or block that does not exist is "not
//! found", as [`crate::error`] defines them.

use consensus::Height;
use ledger::{
    Address, BlockReader, CertifiedBlock, StateHistory,
    state::{keys, read_account},
    store::StateAfter,
};

use crate::{
    api::RpcResult,
    error::{not_found, unavailable},
};

/// The head's height.
pub(crate) fn head(store: &impl BlockReader) -> RpcResult<Height> {
    Ok(store.head().map_err(unavailable)?.height)
}

/// `height`, or the head; refuses heights above the head.
pub(crate) fn at(store: &impl BlockReader, height: Option<Height>) -> RpcResult<Height> {
    let head = head(store)?;
    match height {
        None => Ok(head),
        Some(height) if height <= head => Ok(height),
        Some(height) => Err(not_found(format!("height {height} is above the head {head}"))),
    }
}

/// The committed block at `height`; height 0 has a header but no block, so it is not found.
pub(crate) fn block_at(store: &impl BlockReader, height: Height) -> RpcResult<CertifiedBlock> {
    if height == 0 {
        return Err(not_found("height 0 is the genesis header; blocks start at 1"));
    }
    store.block(height).map_err(unavailable)?.ok_or_else(|| not_found(format!("no block at height {height}")))
}

/// The account of `address` after the block at `height` (a default, empty account if it was
/// never touched); `height` must be at most the head (see [`at`]). The ledger's own reader,
/// over the state of that height ([`StateAfter`]), decodes it.
pub(crate) fn account_at<S: StateHistory>(store: &S, address: &Address, height: Height) -> RpcResult<ledger::Account> {
    read_account(&StateAfter { store, height }, address).map_err(unavailable)
}

/// The value of record `key` after the block at `height`, if any. A record's value is the
/// caller's bytes, served as they are: nothing to decode, only the state key to build.
pub(crate) fn record_at(store: &impl StateHistory, key: &[u8], height: Height) -> RpcResult<Option<Vec<u8>>> {
    store.state_at(&keys::record(key), height).map_err(unavailable)
}

#[cfg(test)]
mod tests {
    use consensus::{ChainId, SigningKey};
    use ledger::{Genesis, GenesisAccount, MemStore, Params, Role, Roles, ValidatorInfo};

    use super::*;
    use crate::error;

    /// A store whose genesis funds one account (the validator's) with 7 units and `Transact`.
    fn store() -> (MemStore, Address) {
        let key = SigningKey::from_seed([1; 32]);
        let address = Address::of(&key.public_key());
        let genesis = Genesis {
            chain_id: ChainId::new("reads").expect("chain id"),
            genesis_time_ms: 1,
            validators: vec![ValidatorInfo { name: "v".into(), public_key: key.public_key(), peer_id: "p".into() }],
            accounts: vec![GenesisAccount { address, balance: 7, roles: vec![Role::Transact] }],
            params: Params::default(),
        };
        (MemStore::new(&genesis).expect("store"), address)
    }

    #[test]
    fn account_at_decodes_a_stored_account_and_defaults_an_untouched_one() {
        let (store, address) = store();
        let account = account_at(&store, &address, 0).expect("account");
        assert_eq!(account, ledger::Account { balance: 7, nonce: 0, roles: Roles::of(&[Role::Transact]) });
        let untouched = account_at(&store, &Address([9; 20]), 0).expect("untouched account");
        assert_eq!(untouched, ledger::Account::default());
    }

    #[test]
    fn heights_above_the_head_and_height_zero_are_not_found() {
        let (store, _) = store();
        assert_eq!(at(&store, None).expect("head"), 0);
        assert_eq!(at(&store, Some(1)).expect_err("above the head").code(), error::NOT_FOUND);
        assert_eq!(block_at(&store, 0).expect_err("no block 0").code(), error::NOT_FOUND);
        assert_eq!(record_at(&store, b"missing", 0).expect("record"), None);
    }
}
