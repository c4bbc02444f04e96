//! Valid inputs for every target, built from the fixture: the starting corpus from which
//! libFuzzer's mutations reach the deep checks. [`write`] puts them in `<dir>/<target>/`; two
//! callers: `cargo test --workspace --locked --test fuzz_corpus -- --ignored write_seed_corpus`,
//! and any fuzz binary started with `STELE_FUZZ_WRITE_SEEDS=<dir>` (no test build needed).

use std::path::Path;

use consensus::{
    Message, PreparedCertificate, Replica, SignedViewChange, SignedVote, ValidatorSet, View, ViewChange, Vote,
    VoteKind, VoteSignature,
};
use ledger::{Address, Payload, StateHistory, ValidatorInfo, proof::build_tx_proof, state::keys};
use node::p2p::protocol::{ConsensusGossip, Request, Response, TxGossip};

use super::fixture::{COMMITTED, Fixture};

/// Every seed, as (target name, input).
pub fn all() -> Vec<(&'static str, Vec<u8>)> {
    let mut seeds = Vec::new();
    seeds.extend(transactions().into_iter().map(|input| ("transaction", input)));
    seeds.extend(blocks().into_iter().map(|input| ("block", input)));
    seeds.extend(messages().iter().map(|message| ("consensus_message", message.encode())));
    seeds.extend(p2p().into_iter().map(|input| ("p2p", input)));
    seeds.extend(rpc_params().into_iter().map(|input| ("rpc_params", input.into_bytes())));
    seeds.extend(proofs().into_iter().map(|input| ("tx_proof", input)));
    seeds
}

/// Writes every seed to `<dir>/<target>/seed-<hash prefix>` (content-named, like libFuzzer's
/// files, so writing twice changes nothing).
pub fn write(dir: &Path) -> std::io::Result<usize> {
    let seeds = all();
    for (name, input) in &seeds {
        let target_dir = dir.join(name);
        std::fs::create_dir_all(&target_dir)?;
        let hash = consensus::Digest::of(input).to_string();
        std::fs::write(target_dir.join(format!("seed-{}", &hash[2..18])), input)?;
    }
    Ok(seeds.len())
}

/// For the fuzz binaries' init: if `STELE_FUZZ_WRITE_SEEDS` names a directory, writes the seeds
/// there and exits.
pub fn write_if_asked() {
    if let Some(dir) = std::env::var_os("STELE_FUZZ_WRITE_SEEDS") {
        match write(Path::new(&dir)) {
            Ok(count) => {
                eprintln!("wrote {count} seeds under {}", Path::new(&dir).display());
                std::process::exit(0);
            }
            Err(error) => {
                eprintln!("writing the seeds: {error}");
                std::process::exit(1);
            }
        }
    }
}

/// Every committed transaction, the next block's, one of each payload kind, and a few that
/// fail each check (another chain, a bad signature, an empty record key, a nonce far ahead).
fn transactions() -> Vec<Vec<u8>> {
    let fixture = Fixture::get();
    let faucet = &fixture.faucet;
    let user = Address::of(&fixture.user.public_key());
    let mut transactions: Vec<_> = fixture
        .blocks
        .iter()
        .chain(std::iter::once(&fixture.next))
        .flat_map(|certified| certified.block.transactions.clone())
        .collect();
    let newcomer = ValidatorInfo {
        name: "fuzz-new".to_string(),
        public_key: fixture.validator_keys[0].public_key(),
        peer_id: "12D3KooWFuzzNew".to_string(),
    };
    let payloads = [
        Payload::Transfer { to: user, amount: 1 },
        Payload::Mint { to: user, amount: u64::MAX },
        Payload::PutRecord { key: vec![0xab; 256], value: vec![1; 1024] },
        Payload::DeleteRecord { key: b"four".to_vec() },
        Payload::GrantRole { account: user, role: ledger::Role::Admin },
        Payload::RevokeRole { account: user, role: ledger::Role::Transact },
        Payload::AddValidator { validator: newcomer },
        Payload::RemoveValidator { public_key: fixture.validator_keys[4].public_key() },
        Payload::PutRecord { key: Vec::new(), value: Vec::new() },
    ];
    transactions.extend(payloads.into_iter().map(|payload| fixture.tx(faucet, 9, payload)));
    transactions.push(fixture.tx(faucet, 1 << 40, Payload::Transfer { to: user, amount: 1 }));
    let mut bad_signature = fixture.tx(faucet, 9, Payload::Transfer { to: user, amount: 2 });
    bad_signature.signature.0[7] ^= 1;
    transactions.push(bad_signature);
    let other_chain = ledger::Transaction {
        chain_id: consensus::ChainId::new("other-chain").expect("a valid chain id"),
        signer: faucet.public_key(),
        nonce: 9,
        payload: Payload::Transfer { to: user, amount: 3 },
    };
    transactions.push(other_chain.sign(faucet));
    transactions.iter().map(ledger::SignedTransaction::encode).collect()
}

/// Every block (bare and certified), the next one, and the next one under a certificate short of
/// a quorum.
fn blocks() -> Vec<Vec<u8>> {
    let fixture = Fixture::get();
    let mut inputs = Vec::new();
    for certified in fixture.blocks.iter().chain(std::iter::once(&fixture.next)) {
        inputs.push(borsh::to_vec(&certified.block).expect("encode"));
        inputs.push(borsh::to_vec(certified).expect("encode"));
    }
    let mut short = fixture.next.clone();
    short.certificate.signatures.truncate(fixture.next_validators.quorum() - 1);
    inputs.push(borsh::to_vec(&short).expect("encode"));
    inputs
}

fn vote(kind: VoteKind, view: View) -> Vote {
    let fixture = Fixture::get();
    Vote { kind, height: COMMITTED + 1, view, digest: fixture.next.block.hash() }
}

fn signed(vote: Vote, index: usize, validators: &ValidatorSet) -> SignedVote {
    let fixture = Fixture::get();
    let key = fixture.signing_key(&validators.members()[index]);
    SignedVote::sign(&fixture.chain_id, vote, index as u32, key)
}

fn view_change(view: View, prepared: Option<PreparedCertificate>, index: usize) -> SignedViewChange {
    let fixture = Fixture::get();
    let view_change = ViewChange { height: COMMITTED + 1, view, prepared };
    let key = fixture.signing_key(&fixture.next_validators.members()[index]);
    let signature = key.sign(&view_change.signing_bytes(&fixture.chain_id));
    SignedViewChange { view_change, validator: index as u32, signature }
}

/// A whole round of the next height (PRE-PREPARE, every PREPARE and COMMIT, VIEW-CHANGEs with
/// and without a prepared certificate, a NEW-VIEW), and the certificates of every height.
pub fn messages() -> Vec<Message> {
    let fixture = Fixture::get();
    let validators = &fixture.next_validators;
    let height = COMMITTED + 1;
    let leader = Replica::leader(validators, height, 0) as usize;
    let mut messages = vec![Message::PrePrepare(signed(vote(VoteKind::PrePrepare, 0), leader, validators))];
    for index in 0..validators.len() {
        messages.push(Message::Prepare(signed(vote(VoteKind::Prepare, 0), index, validators)));
        messages.push(Message::Commit(signed(vote(VoteKind::Commit, 0), index, validators)));
    }
    let prepare = vote(VoteKind::Prepare, 0);
    let prepared = PreparedCertificate {
        height,
        view: 0,
        digest: prepare.digest,
        signatures: (0..validators.quorum())
            .map(|index| VoteSignature {
                validator: index as u32,
                signature: signed(prepare, index, validators).signature,
            })
            .collect(),
    };
    let view_changes: Vec<SignedViewChange> =
        (0..validators.quorum()).map(|index| view_change(1, Some(prepared.clone()), index)).collect();
    messages.push(Message::ViewChange(view_changes[0].clone()));
    messages.push(Message::ViewChange(view_change(1, None, validators.len() - 1)));
    let next_leader = Replica::leader(validators, height, 1) as usize;
    messages.push(Message::NewView {
        proposal: signed(vote(VoteKind::PrePrepare, 1), next_leader, validators),
        view_changes,
    });
    messages.push(Message::Decided(fixture.next.certificate.clone()));
    messages.extend(fixture.blocks.iter().map(|certified| Message::Decided(certified.certificate.clone())));
    messages
}

/// Gossip and request-response payloads carrying the messages, transactions and blocks above.
fn p2p() -> Vec<Vec<u8>> {
    let fixture = Fixture::get();
    let messages = messages();
    let mut inputs: Vec<Vec<u8>> =
        messages.iter().take(3).map(|message| ConsensusGossip::Message(message.clone()).encode()).collect();
    inputs.push(
        ConsensusGossip::Proposal { message: messages[0].clone(), block: Box::new(fixture.next.block.clone()) }
            .encode(),
    );
    let new_view = messages.iter().find(|message| matches!(message, Message::NewView { .. })).expect("a NEW-VIEW");
    inputs.push(
        ConsensusGossip::Proposal { message: new_view.clone(), block: Box::new(fixture.next.block.clone()) }.encode(),
    );
    inputs.push(borsh::to_vec(&TxGossip(transactions())).expect("encode"));
    let next: Vec<Vec<u8>> = fixture.next.block.transactions.iter().map(ledger::SignedTransaction::encode).collect();
    inputs.push(borsh::to_vec(&TxGossip(next)).expect("encode"));
    let requests = [
        Request::Status,
        Request::Blocks { from: 1, count: 256 },
        Request::Body(fixture.next.block.hash()),
        Request::Consensus(Box::new(messages[1].clone())),
    ];
    inputs.extend(requests.iter().map(|request| borsh::to_vec(request).expect("encode")));
    let responses = [
        Response::Status { head: COMMITTED },
        Response::Blocks(fixture.blocks.clone()),
        Response::Blocks(vec![fixture.next.clone()]),
        Response::Body(Some(Box::new(fixture.next.block.clone()))),
        Response::Body(None),
        Response::Received,
    ];
    inputs.extend(responses.iter().map(|response| borsh::to_vec(response).expect("encode")));
    inputs
}

/// One call of every method, with valid params (by position and by name) and a few wrong ones.
fn rpc_params() -> Vec<String> {
    let fixture = Fixture::get();
    let block_hash = fixture.blocks[1].block.hash();
    let committed_tx = fixture.blocks[1].block.transactions[0].hash();
    let next_tx = consensus::hex::encode(fixture.next.block.transactions[1].encode());
    let faucet = Address::of(&fixture.faucet.public_key());
    let user = Address::of(&fixture.user.public_key());
    let record = consensus::hex::encode(b"four");
    [
        "chain_status\n[]".to_string(),
        "chain_getBlock\n[1]".to_string(),
        format!("chain_getBlock\n[\"{block_hash}\"]"),
        "chain_getBlock\n{\"block\":3}".to_string(),
        "chain_getBlock\n[0]".to_string(),
        "chain_getBlocks\n[1,4]".to_string(),
        "chain_getBlocks\n{\"from\":2,\"to\":18446744073709551615}".to_string(),
        "chain_getValidators\n[]".to_string(),
        "chain_getValidators\n[2]".to_string(),
        format!("tx_submit\n[\"{next_tx}\"]"),
        "tx_submit\n[\"0x00\"]".to_string(),
        format!("tx_submitAndWait\n[\"{next_tx}\", 10]"),
        format!("tx_get\n[\"{committed_tx}\"]"),
        format!("tx_getProof\n[\"{committed_tx}\"]"),
        format!("tx_getProof\n[\"{}\"]", fixture.blocks[3].block.transactions[1].hash()),
        format!("state_getAccount\n[\"{faucet}\"]"),
        format!("state_getAccount\n[\"{user}\", 2]"),
        format!("state_getRecord\n[\"{record}\", null]"),
        format!("state_getProof\n[{{\"account\":\"{user}\"}}, 3]"),
        format!("state_getProof\n[{{\"record\":\"{record}\"}}]"),
        "net_peers\n[]".to_string(),
        "chain_subscribeBlocks\n[]".to_string(),
        "chain_unsubscribeBlocks\n[\"0x1\"]".to_string(),
        "rpc.discover\n[]".to_string(),
        r#"{"jsonrpc":"2.0","id":7,"method":"chain_getBlocks","params":[2,3]}"#.to_string(),
    ]
    .into()
}

/// A transaction proof of every committed transaction (those of block 4 carry the validator
/// change of block 2) and state proofs of present and absent keys.
fn proofs() -> Vec<Vec<u8>> {
    let fixture = Fixture::get();
    let mut inputs: Vec<Vec<u8>> = fixture
        .blocks
        .iter()
        .flat_map(|certified| certified.block.transactions.iter().map(ledger::SignedTransaction::hash))
        .map(|hash| build_tx_proof(&fixture.store, &hash).expect("read").expect("committed").encode())
        .collect();
    let user = Address::of(&fixture.user.public_key());
    let state_keys = [keys::account(&user), keys::record(b"four"), keys::record(b"absent"), keys::PARAMS.to_vec()];
    for (index, key) in state_keys.iter().enumerate() {
        let proof = fixture.store.state_proof(key, 1 + index as u64 % COMMITTED).expect("a proof");
        inputs.push(borsh::to_vec(&proof).expect("encode"));
    }
    inputs
}
