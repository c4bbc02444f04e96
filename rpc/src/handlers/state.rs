//! The `state_*` methods: accounts and records at a height, and proofs of either against the
//! certified state root of that height. Values come typed from [`crate::reads`]; only the proof
//! is encoded here, for the wire.

use consensus::Height;
use ledger::{Address, BlockReader, Role, StateHistory, state::keys};

use super::LedgerApi;
use crate::{
    Backend,
    api::{ProofTarget, RpcResult},
    error::{invalid_params, not_found, unavailable},
    reads::{account_at, at, block_at, record_at},
    types::{Account, Header, Record, StateProof, from_hex, to_hex},
};

/// `state_getAccount`: the account at `height` (default: the head).
pub(super) async fn get_account<B: Backend>(
    api: &LedgerApi<B>,
    address: Address,
    height: Option<Height>,
) -> RpcResult<Account> {
    api.read(move |backend| {
        let store = backend.store();
        let height = at(store, height)?;
        let account = account_at(store, &address, height)?;
        Ok(Account {
            address,
            balance: account.balance,
            nonce: account.nonce,
            roles: Role::ALL.into_iter().filter(|role| account.roles.contains(*role)).collect(),
            height,
        })
    })
    .await
}

/// `state_getRecord`: the record `key` (0x-hex) at `height` (default: the head).
pub(super) async fn get_record<B: Backend>(
    api: &LedgerApi<B>,
    key: String,
    height: Option<Height>,
) -> RpcResult<Record> {
    api.read(move |backend| {
        let store = backend.store();
        let height = at(store, height)?;
        let key = from_hex(&key).map_err(|error| invalid_params(format!("key: {error}")))?;
        let value = record_at(store, &key, height)?;
        Ok(Record { key: to_hex(&key), value: value.as_deref().map(to_hex), height })
    })
    .await
}

/// `state_getProof`: a proof of an account or record (or its absence) at `height` (default:
/// the head), with the header and certificate it proves against. It names the raw state key
/// and value on purpose: they are what the client checks the proof with.
pub(super) async fn get_proof<B: Backend>(
    api: &LedgerApi<B>,
    target: ProofTarget,
    height: Option<Height>,
) -> RpcResult<StateProof> {
    api.read(move |backend| {
        let store = backend.store();
        let height = at(store, height)?;
        let state_key = match &target {
            ProofTarget::Account(address) => keys::account(address),
            ProofTarget::Record(key) => {
                keys::record(&from_hex(key).map_err(|error| invalid_params(format!("record: {error}")))?)
            }
        };
        let proof = store.state_proof(&state_key, height).map_err(unavailable)?;
        let header = store
            .header(height)
            .map_err(unavailable)?
            .ok_or_else(|| not_found(format!("no header at height {height}")))?;
        let certified = if height == 0 { None } else { Some(block_at(store, height)?) };
        Ok(StateProof {
            state_key: to_hex(&state_key),
            value: proof.value.as_deref().map(to_hex),
            height,
            header: Header::new(&header, certified.as_ref().map_or(0, |block| block.block.transactions.len())),
            certificate: certified.map(|block| block.certificate),
            proof: to_hex(&borsh::to_vec(&proof).map_err(unavailable)?),
        })
    })
    .await
}
