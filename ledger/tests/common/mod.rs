//! A small chain for tests and benchmarks: four validators, a funded faucet with every role,
//! and helpers that build, certify and commit blocks through the real store.
#![allow(dead_code, missing_docs)]

use consensus::{ChainId, CommitCertificate, SigningKey};
use ledger::StateHistory;
use ledger::{
    Address, Block, BlockReader, BlockWriter, CertifiedBlock, Execution, Genesis, GenesisAccount, Params, Payload,
    RocksStore, Role, SignedTransaction, StoreOptions, Transaction, ValidatorInfo, build_block,
};

pub const FAUCET_BALANCE: u64 = 1_000_000_000_000;

pub struct TestChain {
    pub dir: tempfile::TempDir,
    pub genesis: Genesis,
    pub validators: Vec<SigningKey>,
    pub faucet: SigningKey,
    pub store: RocksStore,
    pub clock_ms: u64,
}

pub fn chain_id() -> ChainId {
    ChainId::new("stele-test").expect("chain id")
}

pub fn key(seed: u64) -> SigningKey {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    bytes[31] = 0x5e;
    SigningKey::from_seed(bytes)
}

pub fn validator_info(index: usize, key: &SigningKey) -> ValidatorInfo {
    ValidatorInfo {
        name: format!("validator-{index}"),
        public_key: key.public_key(),
        peer_id: format!("12D3KooWTestPeer{index}"),
    }
}

pub fn genesis(validators: &[SigningKey], faucet: &SigningKey, params: Params) -> Genesis {
    Genesis {
        chain_id: chain_id(),
        genesis_time_ms: 1_700_000_000_000,
        validators: validators.iter().enumerate().map(|(i, key)| validator_info(i, key)).collect(),
        accounts: vec![GenesisAccount {
            address: Address::of(&faucet.public_key()),
            balance: FAUCET_BALANCE,
            roles: Role::ALL.to_vec(),
        }],
        params,
    }
}

impl TestChain {
    pub fn new() -> Self {
        Self::with_params(Params::default(), StoreOptions::default())
    }

    pub fn with_params(params: Params, options: StoreOptions) -> Self {
        let validators: Vec<SigningKey> = (0..4).map(|i| key(1000 + i)).collect();
        let faucet = key(1);
        let genesis = genesis(&validators, &faucet, params);
        let dir = tempfile::tempdir().expect("temp dir");
        let store = RocksStore::open(&dir.path().join("data"), &genesis, options).expect("open store");
        let clock_ms = genesis.genesis_time_ms;
        TestChain { dir, genesis, validators, faucet, store, clock_ms }
    }

    /// Closes and reopens the store, as a restarted node would.
    pub fn reopen(self) -> Self {
        let TestChain { dir, genesis, validators, faucet, store, clock_ms } = self;
        drop(store);
        let store = RocksStore::open(&dir.path().join("data"), &genesis, StoreOptions::default()).expect("reopen");
        TestChain { dir, genesis, validators, faucet, store, clock_ms }
    }

    /// Builds the next block from `transactions` (executing them) without committing it.
    pub fn build(&mut self, transactions: Vec<SignedTransaction>) -> (Block, Execution) {
        self.clock_ms += 1_000;
        let head = self.store.head().expect("head");
        let proposer = self.validators[(head.height as usize + 1) % self.validators.len()].public_key();
        build_block(&self.store, &head, proposer, self.clock_ms, transactions, ledger::SignatureCheck::All)
            .expect("build block")
    }

    /// A certificate signed by the first `signers` validators of the set in force.
    pub fn certify(&self, block: &Block, signers: usize) -> CommitCertificate {
        let set = self.store.validator_set_for(block.header.height).expect("validator set");
        let keys: Vec<(u32, &SigningKey)> = set
            .members()
            .iter()
            .take(signers)
            .enumerate()
            .map(|(index, public)| {
                let key = self
                    .validators
                    .iter()
                    .find(|key| key.public_key() == *public)
                    .expect("test chain knows every validator key");
                (index as u32, key)
            })
            .collect();
        CommitCertificate::sign(&chain_id(), block.header.height, 0, block.hash(), &keys)
    }

    /// Builds, certifies (by a quorum) and commits the next block.
    pub fn commit(&mut self, transactions: Vec<SignedTransaction>) -> CertifiedBlock {
        let (block, execution) = self.build(transactions);
        let quorum = self.store.validator_set_for(block.header.height).expect("set").quorum();
        let certificate = self.certify(&block, quorum);
        self.store.commit(&block, &certificate, execution).expect("commit");
        CertifiedBlock { block, certificate }
    }

    pub fn nonce_of(&self, key: &SigningKey) -> u64 {
        account(&self.store, &Address::of(&key.public_key())).nonce
    }
}

pub fn account(store: &RocksStore, address: &Address) -> ledger::Account {
    use ledger::StateReader;
    store
        .latest(&ledger::state::keys::account(address))
        .expect("read")
        .map(|bytes| borsh::from_slice(&bytes).expect("account decodes"))
        .unwrap_or_default()
}

pub fn tx(signer: &SigningKey, nonce: u64, payload: Payload) -> SignedTransaction {
    Transaction { chain_id: chain_id(), signer: signer.public_key(), nonce, payload }.sign(signer)
}

pub fn transfer(signer: &SigningKey, nonce: u64, to: &SigningKey, amount: u64) -> SignedTransaction {
    tx(signer, nonce, Payload::Transfer { to: Address::of(&to.public_key()), amount })
}
