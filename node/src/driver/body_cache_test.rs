use consensus::{ChainId, SigningKey};
use ledger::{Address, BlockHeader, Payload, SignedTransaction, Transaction, merkle};

use super::*;

fn key(seed: u8) -> SigningKey {
    SigningKey::from_seed([seed; 32])
}

fn transfer(nonce: u64) -> SignedTransaction {
    let chain_id = ChainId::new("table").expect("chain id");
    let payload = Payload::Transfer { to: Address([7; 20]), amount: 1 };
    Transaction { chain_id, signer: key(9).public_key(), nonce, payload }.sign(&key(9))
}

/// A block for height 1 by `proposer`, told apart by `timestamp_ms`, whose header commits to
/// its body.
fn block(proposer: u8, timestamp_ms: u64, transactions: Vec<SignedTransaction>) -> Block {
    let tx_root = merkle::root(&transactions.iter().map(SignedTransaction::hash).collect::<Vec<_>>());
    let header = BlockHeader {
        chain_id: ChainId::new("table").expect("chain id"),
        height: 1,
        previous_hash: Digest::ZERO,
        timestamp_ms,
        proposer: key(proposer).public_key(),
        tx_root,
        receipts_root: Digest::ZERO,
        state_root: Digest::ZERO,
        validator_set_digest: Digest::ZERO,
    };
    Block { header, transactions }
}

#[test]
fn a_body_is_kept_only_if_its_header_commits_to_it() {
    let honest = block(1, 10, vec![transfer(0), transfer(1), transfer(2)]);
    assert_eq!(body_matches_header(&honest), Ok(()));
    assert_eq!(body_matches_header(&block(1, 10, Vec::new())), Ok(()));
    let mut dropped = honest.clone();
    dropped.transactions.pop();
    let mut added = honest.clone();
    added.transactions.push(transfer(3));
    let mut reordered = honest.clone();
    reordered.transactions.swap(0, 1);
    let mut replaced = honest.clone();
    replaced.transactions[1] = transfer(7);
    let mut resigned = honest.clone();
    resigned.transactions[2].signature.0[0] ^= 1;
    let mut emptied = honest.clone();
    emptied.transactions.clear();
    for tampered in [dropped, added, reordered, replaced, resigned, emptied] {
        // Same header, so the same identity: only the body check tells them apart.
        assert_eq!(tampered.hash(), honest.hash());
        let refused = body_matches_header(&tampered);
        assert!(
            matches!(refused, Err(BodyMismatch::TxRoot { height: 1, header, .. }) if header == honest.header.tx_root),
            "{refused:?}"
        );
    }
}

#[test]
fn unasked_proposals_are_bounded_by_view_and_by_proposer() {
    let mut table = BodyCache::default();
    let leader = key(1).public_key();
    // A leader of views far ahead (it leads one in every n) cannot park blocks for them.
    assert_eq!(
        table.insert_unasked(block(1, 1, Vec::new()), 1, VIEWS_AHEAD + 1, 0, Some(&leader)),
        Err(Refused::TooFarAhead { view: VIEWS_AHEAD + 1, current: 0 })
    );
    assert_eq!(table.insert_unasked(block(1, 2, Vec::new()), 1, 0, 0, Some(&leader)), Ok(()));
    assert_eq!(table.insert_unasked(block(1, 3, Vec::new()), 1, VIEWS_AHEAD, 0, Some(&leader)), Ok(()));
    // Its share is full, in any view, while another proposer still has room.
    assert_eq!(
        table.insert_unasked(block(1, 4, Vec::new()), 1, 1, 0, Some(&leader)),
        Err(Refused::ProposerFull { proposer: 1 })
    );
    // A fresh proposal's header must name the leader that signed it; a NEW-VIEW re-proposing a
    // prepared value carries a block of an earlier view's leader.
    assert_eq!(
        table.insert_unasked(block(3, 5, Vec::new()), 2, 1, 0, Some(&key(2).public_key())),
        Err(Refused::NotTheProposer)
    );
    assert_eq!(table.insert_unasked(block(3, 6, Vec::new()), 2, 1, 0, None), Ok(()));
    // The window moves with this node's view.
    assert_eq!(table.insert_unasked(block(4, 7, Vec::new()), 4, 5, 3, Some(&key(4).public_key())), Ok(()));
    assert_eq!(table.len(), 4);
    // A duplicate is no new entry and no refusal.
    assert_eq!(table.insert_unasked(block(1, 2, Vec::new()), 1, 0, 0, Some(&leader)), Ok(()));
    assert_eq!(table.len(), 4);
}

#[test]
fn a_full_table_refuses_unasked_bodies_but_makes_room_for_awaited_ones() {
    let mut table = BodyCache::default();
    let mut timestamp = 0;
    let mut next = |proposer: u8| {
        timestamp += 1;
        block(proposer, timestamp, Vec::new())
    };
    for proposer in 0..(BODIES_MAX / BODIES_PER_PROPOSER) as u8 {
        for _ in 0..BODIES_PER_PROPOSER {
            let key = key(proposer).public_key();
            assert_eq!(table.insert_unasked(next(proposer), u32::from(proposer), 0, 0, Some(&key)), Ok(()));
        }
    }
    assert_eq!(table.len(), BODIES_MAX);
    let newcomer = next(100);
    assert_eq!(table.insert_unasked(newcomer, 100, 0, 0, Some(&key(100).public_key())), Err(Refused::Full));
    // A refused body goes first, then the oldest unchecked one.
    let refused = block(2, 5, Vec::new()).hash();
    table.get_mut(&refused).expect("kept").verdict = Some(false);
    let oldest = block(0, 1, Vec::new()).hash();
    let awaited = next(101);
    let awaited_digest = awaited.hash();
    table.insert_awaited(awaited);
    assert!(table.contains(&awaited_digest) && !table.contains(&refused) && table.contains(&oldest));
    table.insert_awaited(next(102));
    assert!(!table.contains(&oldest));
    assert_eq!(table.len(), BODIES_MAX);

    // Waited-for bodies fill it: unasked ones never push them out; one more waited-for body
    // pushes out the oldest of them (fetched again if the height needs it).
    let mut table = BodyCache::default();
    let mut awaited = Vec::new();
    for _ in 0..BODIES_MAX {
        let block = next(5);
        awaited.push(block.hash());
        table.insert_awaited(block);
    }
    assert_eq!(table.insert_unasked(next(6), 6, 0, 0, Some(&key(6).public_key())), Err(Refused::Full));
    assert!(awaited.iter().all(|digest| table.contains(digest)));
    table.insert_awaited(next(7));
    assert!(!table.contains(&awaited[0]) && awaited[1..].iter().all(|digest| table.contains(digest)));
    assert_eq!(table.len(), BODIES_MAX);
}
