//! `tx_proof`: bytes as a transaction proof (`TxProof::decode`, what `stele verify-proof` reads
//! from a file someone handed over) verified against the fixture's genesis, and as a state proof
//! (what `state_getProof` serves) verified against every certified state root. A proof that
//! verifies must prove something true of the fixture's chain.

use ledger::{BlockReader, StateHistory, StateProof, proof::TxProof};

use super::{Depth, fixture::Fixture};

/// Runs the target on one input.
pub fn run(data: &[u8]) -> Depth {
    let tx_proof = TxProof::decode(data).ok().map(|proof| check_tx_proof(data, &proof));
    let state_proof = borsh::from_slice::<StateProof>(data).ok().map(|proof| check_state_proof(&proof));
    tx_proof.into_iter().chain(state_proof).max().unwrap_or(Depth::Undecodable)
}

fn check_tx_proof(data: &[u8], proof: &TxProof) -> Depth {
    let fixture = Fixture::get();
    assert_eq!(proof.encode(), data, "a decoded transaction proof re-encodes to other bytes");
    if proof.verify(&fixture.genesis).is_err() {
        return Depth::Rejected;
    }
    let location = fixture.store.tx_location(&proof.tx_hash()).expect("read");
    let location = location.expect("a proof verified for a transaction the chain never committed");
    assert_eq!(location.height, proof.block.header.height, "a proof verified for the wrong height");
    // Not checked: the claimed position. The Merkle root does not commit to the leaf count, so a
    // proof may claim another (index, total) for a transaction the block does hold (fuzz/README.md,
    // "Known weaknesses"); what is checked is that the transaction and its receipt are the chain's.
    let receipts = fixture.store.receipts(location.height).expect("read").expect("the fixture has receipts");
    assert_eq!(
        receipts.get(location.index as usize),
        Some(&proof.included.receipt),
        "a proof verified with a receipt the chain does not hold"
    );
    Depth::Accepted
}

fn check_state_proof(proof: &StateProof) -> Depth {
    let fixture = Fixture::get();
    let head = fixture.store.head().expect("the fixture has a head").height;
    let mut depth = Depth::Rejected;
    for height in 0..=head {
        let header = fixture.store.header(height).expect("read").expect("the fixture has every header");
        if proof.verify(&header.state_root).is_ok() {
            let stored = fixture.store.state_at(&proof.key, height).expect("read");
            assert_eq!(stored, proof.value, "a state proof verified for a value the state does not hold");
            depth = Depth::Accepted;
        }
    }
    depth
}
