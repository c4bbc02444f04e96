//! The fixed world every target checks inputs against: a small in-memory chain (four validators,
//! then a fifth added by a transaction in block 2, certifying from block 4 on), built
//! deterministically with the real block builder, certificates and store. Built once per process.

use std::sync::OnceLock;

use consensus::{ChainId, CommitCertificate, Digest, Height, SigningKey, ValidatorSet};
use ledger::{
    Address, BlockReader, BlockWriter, CertifiedBlock, Genesis, GenesisAccount, MemStore, Params, Payload, Role,
    SignedTransaction, StateHistory, Transaction, ValidatorInfo, build_block,
};

/// Blocks committed in the fixture's store; the next block (height `COMMITTED + 1`) is built and
/// certified but not committed, so it is the one valid "next block" input.
pub const COMMITTED: Height = 4;

/// The fixed chain.
pub struct Fixture {
    /// Its chain id.
    pub chain_id: ChainId,
    /// Its genesis.
    pub genesis: Genesis,
    /// Every validator key that ever signs (the genesis four, then the added fifth).
    pub validator_keys: Vec<SigningKey>,
    /// The account holding every role.
    pub faucet: SigningKey,
    /// An account with a few roles granted on chain.
    pub user: SigningKey,
    /// The store with blocks 1 to [`COMMITTED`].
    pub store: MemStore,
    /// Blocks 1 to [`COMMITTED`], as stored.
    pub blocks: Vec<CertifiedBlock>,
    /// The valid, certified, uncommitted block at `COMMITTED + 1`.
    pub next: CertifiedBlock,
    /// The set that certifies the next block (five validators).
    pub next_validators: ValidatorSet,
}

fn key(seed: u8) -> SigningKey {
    let mut bytes = [seed; 32];
    bytes[0] = 0xf2;
    SigningKey::from_seed(bytes)
}

fn validator_info(index: usize, key: &SigningKey) -> ValidatorInfo {
    ValidatorInfo {
        name: format!("fuzz-{index}"),
        public_key: key.public_key(),
        peer_id: format!("12D3KooWFuzz{index}"),
    }
}

impl Fixture {
    /// The fixture, built on first use.
    pub fn get() -> &'static Fixture {
        static FIXTURE: OnceLock<Fixture> = OnceLock::new();
        FIXTURE.get_or_init(Fixture::build)
    }

    /// A transaction of the fixture's chain, signed by `signer`.
    pub fn tx(&self, signer: &SigningKey, nonce: u64, payload: Payload) -> SignedTransaction {
        tx(&self.chain_id, signer, nonce, payload)
    }

    /// A commit certificate for `digest` at `height` signed by the first `signers` members of
    /// `validators` (all fixture keys).
    pub fn certify(
        &self,
        validators: &ValidatorSet,
        height: Height,
        view: u64,
        digest: Digest,
        signers: usize,
    ) -> CommitCertificate {
        certify(&self.chain_id, &self.validator_keys, validators, height, view, digest, signers)
    }

    /// The key of a validator public key the fixture knows.
    pub fn signing_key(&self, public: &consensus::PublicKey) -> &SigningKey {
        signing_key(&self.validator_keys, public)
    }

    fn build() -> Fixture {
        // Bumped with each chain format change (v2: Merkle roots commit to their leaf count), so
        // certified blocks of an older fixture in the corpus, genuinely signed by these same
        // keys, never count as a forgery of this one's blocks.
        let chain_id = ChainId::new("stele-fuzz-v2").expect("a valid chain id");
        let validator_keys: Vec<SigningKey> = (1..=5).map(key).collect();
        let faucet = key(100);
        let user = key(101);
        let genesis = Genesis {
            chain_id: chain_id.clone(),
            genesis_time_ms: 1_700_000_000_000,
            validators: validator_keys[..4].iter().enumerate().map(|(i, key)| validator_info(i, key)).collect(),
            accounts: vec![GenesisAccount {
                address: Address::of(&faucet.public_key()),
                balance: 1_000_000_000,
                roles: Role::ALL.to_vec(),
            }],
            params: Params::default(),
        };
        let store = MemStore::new(&genesis).expect("the fixture genesis is valid");
        let user_address = Address::of(&user.public_key());
        let faucet_address = Address::of(&faucet.public_key());
        let t = |signer: &SigningKey, nonce: u64, payload: Payload| tx(&chain_id, signer, nonce, payload);
        let bodies: Vec<Vec<SignedTransaction>> = vec![
            vec![
                t(&faucet, 0, Payload::Transfer { to: user_address, amount: 5_000 }),
                t(&faucet, 1, Payload::GrantRole { account: user_address, role: Role::Transact }),
                t(&faucet, 2, Payload::GrantRole { account: user_address, role: Role::Write }),
                t(&faucet, 3, Payload::PutRecord { key: b"greeting".to_vec(), value: b"hello".to_vec() }),
            ],
            vec![
                t(&faucet, 4, Payload::AddValidator { validator: validator_info(4, &validator_keys[4]) }),
                t(&user, 0, Payload::PutRecord { key: b"user".to_vec(), value: vec![7; 40] }),
                t(&faucet, 5, Payload::Mint { to: user_address, amount: 77 }),
            ],
            vec![
                t(&user, 1, Payload::Transfer { to: faucet_address, amount: 10 }),
                // Fails (more than the balance) but is valid: a failed receipt in the chain.
                t(&user, 2, Payload::Transfer { to: faucet_address, amount: 1 << 40 }),
                t(&faucet, 6, Payload::DeleteRecord { key: b"greeting".to_vec() }),
                t(&faucet, 7, Payload::RevokeRole { account: user_address, role: Role::Write }),
            ],
            // The first block the five-validator set certifies.
            vec![
                t(&user, 3, Payload::Transfer { to: faucet_address, amount: 3 }),
                t(&faucet, 8, Payload::PutRecord { key: b"four".to_vec(), value: b"4".to_vec() }),
            ],
        ];
        let mut blocks = Vec::new();
        for body in bodies {
            let certified = build_next(&chain_id, &validator_keys, &store, body);
            let execution = ledger::validate::check_execution(&store, &certified.block, ledger::SignatureCheck::All)
                .expect("the fixture's blocks execute");
            store.commit(&certified.block, &certified.certificate, execution).expect("the fixture commits");
            blocks.push(certified);
        }
        let next = build_next(
            &chain_id,
            &validator_keys,
            &store,
            vec![
                t(&user, 4, Payload::Transfer { to: faucet_address, amount: 1 }),
                t(&faucet, 9, Payload::PutRecord { key: b"next".to_vec(), value: b"block".to_vec() }),
            ],
        );
        let next_validators = store.validator_set_for(COMMITTED + 1).expect("the next height's set is known");
        Fixture { chain_id, genesis, validator_keys, faucet, user, store, blocks, next, next_validators }
    }
}

fn tx(chain_id: &ChainId, signer: &SigningKey, nonce: u64, payload: Payload) -> SignedTransaction {
    Transaction { chain_id: chain_id.clone(), signer: signer.public_key(), nonce, payload }.sign(signer)
}

fn signing_key<'a>(keys: &'a [SigningKey], public: &consensus::PublicKey) -> &'a SigningKey {
    keys.iter().find(|key| key.public_key() == *public).expect("the fixture knows every validator key")
}

fn certify(
    chain_id: &ChainId,
    keys: &[SigningKey],
    validators: &ValidatorSet,
    height: Height,
    view: u64,
    digest: Digest,
    signers: usize,
) -> CommitCertificate {
    let signers: Vec<(u32, &SigningKey)> = validators
        .members()
        .iter()
        .take(signers)
        .enumerate()
        .map(|(index, public)| (index as u32, signing_key(keys, public)))
        .collect();
    CommitCertificate::sign(chain_id, height, view, digest, &signers)
}

/// Builds and certifies (by a quorum of the set in force) the block after the head.
fn build_next(
    chain_id: &ChainId,
    keys: &[SigningKey],
    store: &MemStore,
    transactions: Vec<SignedTransaction>,
) -> CertifiedBlock {
    let head = store.head().expect("the store has a head");
    let height = head.height + 1;
    let validators = store.validator_set_for(height).expect("the next height's set is known");
    let proposer = validators.members()[(height as usize) % validators.len()];
    let (block, _) =
        build_block(store, &head, proposer, head.timestamp_ms + 1_000, transactions, ledger::SignatureCheck::All)
            .expect("the fixture's block builds");
    let certificate = certify(chain_id, keys, &validators, height, 0, block.hash(), validators.quorum());
    CertifiedBlock { block, certificate }
}
