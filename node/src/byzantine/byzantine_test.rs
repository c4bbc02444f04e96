//! The behaviours' parsing, the tampered body, and the wrapper's lies on a recording network over
//! a genesis `MemStore`: what each behaviour adds to an honest message, in order.

use std::{cell::RefCell, collections::HashSet, rc::Rc, sync::Arc};

use consensus::{ChainId, Digest, Message, Replica, SignedVote, SigningKey, Vote, VoteKind};
use ledger::{
    Address, Block, BlockReader, Genesis, GenesisAccount, MemStore, Params, Role, SignatureCheck, StateHistory,
    ValidatorInfo,
};
use libp2p::PeerId;

use super::*;
use crate::{
    driver::Network,
    p2p::{
        MessageId, NetworkEvent, Topic,
        protocol::{ConsensusGossip, Response},
    },
    sim::network::{Outgoing, SimNetwork},
};

#[test]
fn a_tampered_body_keeps_the_header_and_fails_the_body_check() {
    let outsider = SigningKey::from_seed([3; 32]);
    let header = ledger::BlockHeader {
        chain_id: chain_id(),
        height: 1,
        previous_hash: Digest::ZERO,
        timestamp_ms: 1,
        proposer: outsider.public_key(),
        tx_root: Digest::ZERO,
        receipts_root: Digest::ZERO,
        state_root: Digest::ZERO,
        validator_set_digest: Digest::ZERO,
    };
    let mut empty = Block { header, transactions: Vec::new() };
    empty.header.tx_root = empty.compute_tx_root();
    let once = tamper(&empty, &outsider);
    let twice = tamper(&once, &outsider);
    for (honest, tampered) in [(&empty, &once), (&once, &twice)] {
        assert_eq!(tampered.hash(), honest.hash());
        assert_ne!(tampered.transactions, honest.transactions);
    }
    // The header commits to its body through `tx_root` alone (`driver::body_cache`).
    assert_ne!(once.compute_tx_root(), once.header.tx_root);
}

#[test]
fn parses_behaviour_lists() {
    let parsed = parse(" double-vote, replay ,").expect("valid");
    assert_eq!(parsed, HashSet::from([Behaviour::DoubleVote, Behaviour::Replay]));
    assert_eq!(parse("all").expect("valid").len(), Behaviour::ALL.len());
    assert!(parse("").expect("valid").is_empty());
    let refused = parse("equivocate,lie").expect_err("unknown");
    assert!(refused.to_string().contains("\"lie\""), "{refused}");
    assert!(refused.to_string().contains("tamper-body"), "{refused}");
}

/// Four validators at genesis; the wrapper is validator 0's.
struct Setup {
    keys: Vec<SigningKey>,
    peers: Vec<PeerId>,
    store: Arc<MemStore>,
    outbox: Rc<RefCell<Vec<Outgoing>>>,
    byzantine: Byzantine<SimNetwork, MemStore>,
}

fn chain_id() -> ChainId {
    ChainId::new("byzantine").expect("chain id")
}

fn setup(behaviours: &[Behaviour]) -> Setup {
    let keys: Vec<SigningKey> = (0..4u8).map(|i| SigningKey::from_seed([i + 1; 32])).collect();
    let peers: Vec<PeerId> = (0..4u8)
        .map(|i| {
            let keypair = libp2p::identity::Keypair::ed25519_from_bytes([i + 101; 32]).expect("an ed25519 seed");
            keypair.public().to_peer_id()
        })
        .collect();
    let genesis = Genesis {
        chain_id: chain_id(),
        genesis_time_ms: 1_700_000_000_000,
        validators: keys
            .iter()
            .zip(&peers)
            .enumerate()
            .map(|(i, (key, peer))| ValidatorInfo {
                name: format!("v{i}"),
                public_key: key.public_key(),
                peer_id: peer.to_string(),
            })
            .collect(),
        accounts: vec![GenesisAccount {
            address: Address::of(&keys[0].public_key()),
            balance: 1_000,
            roles: vec![Role::Transact],
        }],
        params: Params::default(),
    };
    let store = Arc::new(MemStore::new(&genesis).expect("a genesis store"));
    let outbox = Rc::new(RefCell::new(Vec::new()));
    let network = SimNetwork { peer_id: peers[0], max_message_bytes: 1 << 20, outbox: outbox.clone() };
    let byzantine =
        Byzantine::new(network, store.clone(), chain_id(), keys[0].clone(), behaviours.iter().copied().collect());
    Setup { keys, peers, store, outbox, byzantine }
}

impl Setup {
    fn take(&self) -> Vec<Outgoing> {
        std::mem::take(&mut *self.outbox.borrow_mut())
    }

    /// A block for height 1 proposed by validator `index`.
    fn block(&self, index: usize) -> Block {
        let head = self.store.head().expect("head");
        let public_key = self.keys[index].public_key();
        let built = ledger::build_block(self.store.as_ref(), &head, public_key, head.timestamp_ms + 1, Vec::new(), {
            SignatureCheck::All
        });
        built.expect("a block").0
    }

    fn vote(&self, index: usize, kind: VoteKind, view: u64, digest: Digest) -> SignedVote {
        let vote = Vote { kind, height: 1, view, digest };
        SignedVote::sign(&chain_id(), vote, index as u32, &self.keys[index])
    }
}

fn gossip(outgoing: &Outgoing) -> Option<ConsensusGossip> {
    match outgoing {
        Outgoing::Publish(Topic::Consensus, data) => borsh::from_slice(data).ok(),
        _ => None,
    }
}

#[test]
fn double_vote_follows_each_prepare_with_a_conflicting_one_to_every_validator() {
    let setup = setup(&[Behaviour::DoubleVote]);
    let prepare = Message::Prepare(setup.vote(0, VoteKind::Prepare, 0, Digest::of(b"honest")));
    setup.byzantine.publish(Topic::Consensus, ConsensusGossip::Message(prepare.clone()).encode());
    let out = setup.take();
    assert_eq!(out.len(), 5, "{out:?}");
    assert_eq!(gossip(&out[0]), Some(ConsensusGossip::Message(prepare.clone())), "the honest gossip first");
    let Outgoing::Direct(_, Message::Prepare(conflicting)) = &out[1] else { panic!("{:?}", out[1]) };
    let Message::Prepare(honest) = &prepare else { unreachable!() };
    assert_eq!((conflicting.vote.height, conflicting.vote.view), (honest.vote.height, honest.vote.view));
    assert_ne!(conflicting.vote.digest, honest.vote.digest);
    let validators = setup.store.validator_set_for(1).expect("set");
    assert!(Message::Prepare(*conflicting).verify(&chain_id(), &validators).is_ok(), "signed by its own key");
    let directs: HashSet<PeerId> = out[1..4]
        .iter()
        .map(|outgoing| match outgoing {
            Outgoing::Direct(peer, _) => *peer,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(directs, setup.peers[1..].iter().copied().collect());
    assert_eq!(gossip(&out[4]), Some(ConsensusGossip::Message(Message::Prepare(*conflicting))));
    // Transactions and direct messages pass as they are.
    setup.byzantine.publish(Topic::Transactions, vec![1, 2, 3]);
    setup.byzantine.send_direct(setup.peers[1], prepare);
    assert_eq!(setup.take().len(), 2);
}

#[test]
fn tamper_body_serves_others_blocks_tampered_and_its_own_intact() {
    let setup = setup(&[Behaviour::TamperBody]);
    let others = setup.block(1);
    setup.byzantine.respond(7, Response::Body(Some(Box::new(others.clone()))));
    let own = setup.block(0);
    setup.byzantine.respond(8, Response::Body(Some(Box::new(own.clone()))));
    let out = setup.take();
    let [Outgoing::Respond(7, Response::Body(Some(tampered))), Outgoing::Respond(8, Response::Body(Some(intact)))] =
        out.as_slice()
    else {
        panic!("{out:?}")
    };
    assert_eq!(tampered.hash(), others.hash());
    assert_ne!(tampered.compute_tx_root(), tampered.header.tx_root);
    assert_eq!(**intact, own);
}

#[test]
fn tamper_body_regossips_the_leaders_proposal_only() {
    let setup = setup(&[Behaviour::TamperBody]);
    let validators = setup.store.validator_set_for(1).expect("set");
    let leader = Replica::leader(&validators, 1, 0) as usize;
    let not_leader = (leader + 1) % 4;
    let event = |index: usize| {
        let block = setup.block(index);
        let message = Message::PrePrepare(setup.vote(index, VoteKind::PrePrepare, 0, block.hash()));
        let data = ConsensusGossip::Proposal { message, block: Box::new(block) }.encode();
        let id = MessageId::new(&Digest::of(&data).0);
        NetworkEvent::Gossip { topic: Topic::Consensus, id, source: setup.peers[index], data }
    };
    assert!(setup.byzantine.observe(event(not_leader)).is_some(), "forwarded");
    assert!(setup.take().is_empty(), "no block of a validator that does not lead is re-gossiped");
    let NetworkEvent::Gossip { data, .. } = event(leader) else { unreachable!() };
    let Ok(ConsensusGossip::Proposal { message, block }) = borsh::from_slice(&data) else { unreachable!() };
    let forwarded = setup.byzantine.observe(event(leader));
    assert!(matches!(forwarded, Some(NetworkEvent::Gossip { data: ref same, .. }) if *same == data), "unchanged");
    let out = setup.take();
    let [regossiped] = out.as_slice() else { panic!("{out:?}") };
    let Some(ConsensusGossip::Proposal { message: signed, block: tampered }) = gossip(regossiped) else {
        panic!("{regossiped:?}")
    };
    assert_eq!(signed, message, "the leader's signed proposal");
    assert_eq!(tampered.hash(), block.hash());
    assert_ne!(tampered.transactions, block.transactions);
}

#[test]
fn equivocate_proposes_a_second_block_and_serves_it() {
    let setup = setup(&[Behaviour::Equivocate]);
    let honest = setup.block(0);
    let message = Message::PrePrepare(setup.vote(0, VoteKind::PrePrepare, 0, honest.hash()));
    let proposal = ConsensusGossip::Proposal { message, block: Box::new(honest.clone()) };
    setup.byzantine.publish(Topic::Consensus, proposal.encode());
    let out = setup.take();
    assert_eq!(out.len(), 5, "{out:?}");
    let Some(ConsensusGossip::Proposal { message: Message::PrePrepare(second), block }) = gossip(&out[4]) else {
        panic!("{:?}", out[4])
    };
    assert_eq!((second.vote.height, second.vote.view, second.validator), (1, 0, 0));
    assert_ne!(second.vote.digest, honest.hash());
    assert_eq!(second.vote.digest, block.hash());
    assert!(
        out[1..4]
            .iter()
            .all(|outgoing| matches!(outgoing, Outgoing::Direct(_, Message::PrePrepare(vote)) if vote == &second))
    );
    // A peer that got the second PRE-PREPARE alone fetches its body: answered by the tap.
    let wanted = |digest| NetworkEvent::BodyWanted { digest, channel: 5 };
    assert!(setup.byzantine.observe(wanted(block.hash())).is_none(), "answered, not forwarded");
    let out = setup.take();
    let [Outgoing::Respond(5, Response::Body(Some(served)))] = out.as_slice() else { panic!("{out:?}") };
    assert_eq!(served.hash(), block.hash());
    assert!(setup.byzantine.observe(wanted(honest.hash())).is_some(), "the driver serves its own proposal");
}
