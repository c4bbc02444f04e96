//! A chain in memory for the network's tests: `blocks` empty, uncertified blocks (the network
//! never verifies what it serves), with a count of the reads running at once.

use std::{
    sync::atomic::{AtomicUsize, Ordering},
    time::Duration,
};

use consensus::{ChainId, CommitCertificate, Digest, Height, SigningKey};
use ledger::{Block, BlockHeader, BlockReader, CertifiedBlock, Receipt, StoreError, TxLocation};

/// A chain of `blocks` empty blocks in memory; counts the reads running at once.
pub(super) struct Chain {
    pub(super) blocks: Vec<CertifiedBlock>,
    running: AtomicUsize,
    pub(super) most_running: AtomicUsize,
    read_pause: Duration,
}

impl Chain {
    pub(super) fn new(blocks: Height, read_pause: Duration) -> Self {
        let chain_id = ChainId::new("serve-test").expect("chain id");
        let proposer = SigningKey::from_seed([7; 32]).public_key();
        let blocks = (1..=blocks)
            .map(|height| {
                let header = BlockHeader {
                    chain_id: chain_id.clone(),
                    height,
                    previous_hash: Digest::ZERO,
                    timestamp_ms: height,
                    proposer,
                    tx_root: Digest::ZERO,
                    receipts_root: Digest::ZERO,
                    state_root: Digest::ZERO,
                    validator_set_digest: Digest::ZERO,
                };
                let block = Block { header, transactions: Vec::new() };
                let certificate = CommitCertificate {
                    chain_id: chain_id.clone(),
                    height,
                    view: 0,
                    digest: block.hash(),
                    signatures: Vec::new(),
                };
                CertifiedBlock { block, certificate }
            })
            .collect();
        Chain { blocks, running: AtomicUsize::new(0), most_running: AtomicUsize::new(0), read_pause }
    }

    pub(super) fn block_size(&self) -> usize {
        borsh::object_length(&self.blocks[0]).expect("size")
    }
}

impl BlockReader for Chain {
    fn head(&self) -> Result<BlockHeader, StoreError> {
        self.blocks.last().map(|last| last.block.header.clone()).ok_or(StoreError::MissingHead { height: 0 })
    }
    fn header(&self, height: Height) -> Result<Option<BlockHeader>, StoreError> {
        Ok(self.block(height)?.map(|certified| certified.block.header))
    }
    fn block(&self, height: Height) -> Result<Option<CertifiedBlock>, StoreError> {
        let running = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_running.fetch_max(running, Ordering::SeqCst);
        // Long enough for reads to overlap if nothing bounds them.
        std::thread::sleep(self.read_pause);
        self.running.fetch_sub(1, Ordering::SeqCst);
        Ok(usize::try_from(height).ok().and_then(|height| self.blocks.get(height.checked_sub(1)?)).cloned())
    }
    fn receipts(&self, _: Height) -> Result<Option<Vec<Receipt>>, StoreError> {
        Ok(None)
    }
    fn height_of(&self, _: &Digest) -> Result<Option<Height>, StoreError> {
        Ok(None)
    }
    fn tx_location(&self, _: &Digest) -> Result<Option<TxLocation>, StoreError> {
        Ok(None)
    }
}
