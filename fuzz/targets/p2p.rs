//! `p2p`: bytes as everything node/src/p2p/protocol.rs receives: a consensus gossip payload, a
//! transaction gossip payload, and a request or response read by the request-response codec
//! itself (with its size cap). Each decoded value goes on to the checks the node applies to it:
//! a proposal's block must match its digest, messages are verified and fed to replicas, gossiped
//! transactions go through the mempool's precheck, synced blocks through block sync's checks.

use consensus::Message;
use futures::{executor::block_on, io::Cursor};
use ledger::SignedTransaction;
use libp2p::request_response::Codec as _;
use node::{
    agreement::{Finding, compare},
    mempool::precheck,
    p2p::protocol::{CertifiedHeader, Codec, ConsensusGossip, REQUEST_PROTOCOL, Request, Response, TxGossip},
    verified::VerifiedCache,
};

use super::{Depth, block, consensus_message, decode_canonical, fixture::Fixture, transaction};

/// Most transactions one gossip message may carry (node/src/driver/admission.rs, private there).
const TX_GOSSIP_MAX: usize = 4096;

/// The request-response size cap of a default node (`network.max_message_bytes`).
const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// Runs the target on one input.
pub fn run(data: &[u8]) -> Depth {
    let depths = [
        decode_canonical::<ConsensusGossip>(data).map(consensus_gossip),
        decode_canonical::<TxGossip>(data).map(tx_gossip),
        read_request(data).map(request),
        read_response(data).map(response),
    ];
    depths.into_iter().flatten().max().unwrap_or(Depth::Undecodable)
}

fn read_request(data: &[u8]) -> Option<Request> {
    let mut codec = Codec { max_bytes: MAX_MESSAGE_BYTES };
    let request = block_on(codec.read_request(&REQUEST_PROTOCOL, &mut Cursor::new(data))).ok()?;
    assert_eq!(borsh::to_vec(&request).expect("encode"), data, "a request re-encodes to other bytes");
    Some(request)
}

fn read_response(data: &[u8]) -> Option<Response> {
    let mut codec = Codec { max_bytes: MAX_MESSAGE_BYTES };
    let response = block_on(codec.read_response(&REQUEST_PROTOCOL, &mut Cursor::new(data))).ok()?;
    assert_eq!(borsh::to_vec(&response).expect("encode"), data, "a response re-encodes to other bytes");
    Some(response)
}

/// node/src/driver/gossip.rs `on_consensus_gossip`: a proposal's block must be the one its
/// PRE-PREPARE or NEW-VIEW names, then the message is verified, then the block checked.
fn consensus_gossip(gossip: ConsensusGossip) -> Depth {
    match gossip {
        ConsensusGossip::Message(message) => message_depth(message),
        ConsensusGossip::Proposal { message, block } => {
            let digest = match &message {
                Message::PrePrepare(vote) => vote.vote.digest,
                Message::NewView { proposal, .. } => proposal.vote.digest,
                _ => return Depth::Rejected,
            };
            if digest != block.hash() || consensus_message::check(message).is_none() {
                return Depth::Rejected;
            }
            block::check_block(&block)
        }
    }
}

fn message_depth(message: Message) -> Depth {
    match consensus_message::check(message) {
        Some(_) => Depth::Accepted,
        None => Depth::Rejected,
    }
}

/// node/src/driver/admission.rs `run_tx_gossip`: at most [`TX_GOSSIP_MAX`] transactions, each
/// through the mempool's precheck, whose verdicts must match the ledger's own checks.
fn tx_gossip(TxGossip(transactions): TxGossip) -> Depth {
    if transactions.len() > TX_GOSSIP_MAX {
        return Depth::Rejected;
    }
    let fixture = Fixture::get();
    let params = &fixture.genesis.params;
    let verdicts = precheck(&fixture.chain_id, params, transactions.clone(), &VerifiedCache::new(0));
    assert_eq!(verdicts.len(), transactions.len(), "precheck gives one verdict per transaction");
    let mut all_valid = true;
    for (encoded, verdict) in transactions.iter().zip(&verdicts) {
        let ours = SignedTransaction::decode(encoded, params.max_tx_bytes as usize)
            .and_then(|transaction| transaction::check(&transaction, encoded));
        assert_eq!(ours.is_ok(), verdict.is_ok(), "the mempool and the ledger disagree on a gossiped transaction");
        all_valid &= ours.is_ok();
    }
    if all_valid { Depth::Accepted } else { Depth::Rejected }
}

/// What a node does with a request it can check without a network: a direct consensus message
/// is verified like gossip; the others are answered from the store.
fn request(request: Request) -> Depth {
    match request {
        Request::Consensus(message) => message_depth(*message),
        Request::Status | Request::Blocks { .. } | Request::Body(_) | Request::CertifiedHeads { .. } => Depth::Accepted,
    }
}

/// What block sync and proposal fetching do with a response.
fn response(response: Response) -> Depth {
    match response {
        Response::Blocks(blocks) => blocks.iter().map(block::check_certified).min().unwrap_or(Depth::Accepted),
        Response::Body(Some(proposed)) => block::check_block(&proposed),
        Response::Body(None) | Response::Status { .. } | Response::Received => Depth::Accepted,
        Response::CertifiedHeads { head, at } => {
            head.iter().chain(at.iter()).map(|theirs| certified_header(theirs)).min().unwrap_or(Depth::Accepted)
        }
    }
}

/// What peer agreement does with a peer's certified header. Only the fixture's keys ever
/// signed, and only its own blocks: a divergence would be a forged certificate.
fn certified_header(theirs: &CertifiedHeader) -> Depth {
    match compare(&Fixture::get().store, theirs) {
        Ok(Finding::Agreed { .. }) => Depth::Accepted,
        Ok(Finding::Diverged { .. }) => panic!("a certificate verified for a block nobody certified"),
        Ok(Finding::Skipped | Finding::Invalid { .. }) | Err(_) => Depth::Rejected,
    }
}
