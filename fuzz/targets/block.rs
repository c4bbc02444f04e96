//! `block`: bytes as a `Block` (a proposal's body) and as a `CertifiedBlock` (what block sync
//! receives and the store keeps). A decoded certified block takes the path of every block from
//! outside (`ledger::validate::apply_certified_block`: link to the head, transaction root,
//! certificate against the set in force at its height, re-execution); a certificate that
//! verifies for anything but the fixture's own blocks would be a forgery.

use ledger::{
    Block, BlockReader, CertifiedBlock, MemStore, StateHistory,
    audit::audit_chain,
    validate::{self, apply_certified_block},
};

use super::{
    Depth, decode_canonical,
    fixture::{COMMITTED, Fixture},
    transaction,
};

/// Runs the target on one input.
pub fn run(data: &[u8]) -> Depth {
    let block = decode_canonical::<Block>(data).map(|block| check_block(&block));
    let certified = decode_canonical::<CertifiedBlock>(data).map(|certified| check_certified(&certified));
    block.into_iter().chain(certified).max().unwrap_or(Depth::Undecodable)
}

/// What a proposed block goes through before a validator votes for it: its transaction root,
/// its transactions, and (if it is for the next height) its link and re-execution.
pub fn check_block(block: &Block) -> Depth {
    let fixture = Fixture::get();
    let header = &block.header;
    assert_eq!(block.hash(), header.hash());
    assert_eq!(block.tx_hashes().len(), block.transactions.len());
    for transaction in &block.transactions {
        let _ = transaction::check(transaction, &transaction.encode());
    }
    let _ = rpc::types::Header::new(header, block.transactions.len());
    if validate::check_tx_root(block).is_err() {
        return Depth::Rejected;
    }
    let head = fixture.store.head().expect("the fixture has a head");
    if validate::check_link(&head, header).is_err() {
        return Depth::Rejected;
    }
    match validate::check_execution(&fixture.store, block, ledger::SignatureCheck::All) {
        Ok(execution) => {
            assert_eq!(execution.tx_hashes, block.tx_hashes());
            Depth::Accepted
        }
        Err(_) => Depth::Rejected,
    }
}

/// The checks block sync applies to a certified block, without committing it to the shared
/// fixture; a block that passes them all is committed to a replay of the fixture and audited.
pub fn check_certified(certified: &CertifiedBlock) -> Depth {
    let fixture = Fixture::get();
    let block = &certified.block;
    let height = block.header.height;
    let proposal = check_block(block);
    if height == 0 || height > COMMITTED + 1 {
        return Depth::Rejected;
    }
    let validators = fixture.store.validator_set_for(height).expect("the fixture knows every set up to head + 1");
    if validate::check_certificate(block, &certified.certificate, &validators).is_err() {
        return Depth::Rejected;
    }
    // Only the fixture's keys ever signed, and on this chain only its own blocks: a certificate
    // that verifies for another block of this chain is a forgery. (Certified blocks of an older
    // fixture's chain id, in the corpus from before a format change, were genuinely signed; the
    // link to the head refuses them.)
    if block.header.chain_id != fixture.chain_id {
        return Depth::Rejected;
    }
    let genuine = if height == COMMITTED + 1 {
        fixture.next.block.hash()
    } else {
        fixture.store.header(height).expect("read").expect("the fixture has every header").hash()
    };
    assert_eq!(block.hash(), genuine, "a certificate verified for a block nobody certified");
    if proposal != Depth::Accepted {
        return Depth::Rejected;
    }
    assert_eq!(block, &fixture.next.block, "a block other than the fixture's next one passed every check");
    // The real path end to end, on a store of its own: replay the fixture's chain, apply this
    // block, and audit the result from the genesis.
    let replica = MemStore::new(&fixture.genesis).expect("the fixture genesis is valid");
    for stored in &fixture.blocks {
        apply_certified_block(&replica, stored).expect("the fixture's blocks apply");
    }
    apply_certified_block(&replica, certified).expect("a block that passed every check applies");
    let report = audit_chain(&replica, &fixture.genesis, |_| {}).expect("the chain with the new block audits");
    assert_eq!(report.blocks, COMMITTED + 1);
    Depth::Accepted
}
