//! The SDK test vectors, `sdk/vectors.json`, checked against the Rust types.
//!
//! One file of vectors (key seed -> public key -> address; each payload kind -> signing bytes
//! -> signature -> encoding -> hash; public keys and signatures the ZIP-215 rule accepts or
//! refuses; Merkle roots and paths; transaction proof bundles with their genesis, valid and
//! tampered, with the verifier's reason) that this test checks against the Rust types and the
//! Python SDK's tests (`sdk/python/tests/test_vectors.py`) check against the SDK, so the two
//! encodings cannot drift apart silently.
//!
//! The vectors are deterministic. `STELE_UPDATE_VECTORS=1 cargo test --workspace --locked
//! --test sdk_vectors` rewrites the file; otherwise the test fails if the file and what the Rust
//! types produce disagree, naming the first JSON path that differs.
//!
//! It lives in `node` because only `node` links `ledger` (the proof-building chain of
//! `ledger/tests/common`), `genesis` (the genesis JSON), `rpc` (the JSON forms) and
//! `consensus`'s `hostile` signatures together.

#[path = "../../ledger/tests/common/mod.rs"]
mod common;

use common::{TestChain, key, transfer, tx};
use consensus::{Digest, PublicKey, Signature, SigningKey, hostile};
use genesis::{GenesisAccountEntry, GenesisDocument, GenesisValidatorEntry};
use ledger::{
    Address, Failure, Payload, Role, SignedTransaction, Transaction, ValidatorInfo, merkle,
    proof::{ProofError, TxProof, build_tx_proof},
};
use rpc::types::{TxProofBundle, from_hex, payload_json, to_hex};
use serde_json::{Value, json};

const FORMAT: &str = "stele-sdk-vectors/1";
const MESSAGE: &[u8] = b"stele sdk test vector";

fn vectors_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk/vectors.json")
}

fn hex_bytes(value: &Value) -> Vec<u8> {
    from_hex(value.as_str().expect("a hex string")).expect("valid hex")
}

fn array<const N: usize>(value: &Value) -> [u8; N] {
    hex_bytes(value).try_into().expect("the right length")
}

// --- generation ------------------------------------------------------------------------

fn key_vectors() -> Value {
    let mut rfc8032_seed = [0u8; 32];
    rfc8032_seed
        .copy_from_slice(&from_hex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60").expect("hex"));
    let seeds: Vec<(&str, [u8; 32])> = vec![
        ("zero", [0; 32]),
        ("ones", [0xff; 32]),
        ("rfc8032_test_1", rfc8032_seed),
        ("test_chain_faucet", *key(1).seed()),
        ("test_chain_validator_0", *key(1000).seed()),
    ];
    Value::Array(
        seeds
            .into_iter()
            .map(|(name, seed)| {
                let signing = SigningKey::from_seed(seed);
                json!({
                    "name": name,
                    "seed": to_hex(&seed),
                    "public_key": signing.public_key().to_string(),
                    "address": Address::of(&signing.public_key()).to_string(),
                })
            })
            .collect(),
    )
}

fn payloads() -> Vec<(&'static str, Payload)> {
    let to = Address::of(&key(7).public_key());
    let newcomer = ValidatorInfo {
        name: "validator-9".to_string(),
        public_key: key(2009).public_key(),
        peer_id: "12D3KooWTestPeer9".to_string(),
    };
    vec![
        ("transfer", Payload::Transfer { to, amount: 5 }),
        ("transfer_max_amount", Payload::Transfer { to, amount: u64::MAX }),
        ("mint", Payload::Mint { to, amount: 1_000_000 }),
        (
            "put_record",
            Payload::PutRecord { key: b"greeting".to_vec(), value: "hello, stele \u{2713}".as_bytes().to_vec() },
        ),
        ("put_record_empty_value", Payload::PutRecord { key: vec![0x00, 0xff], value: Vec::new() }),
        ("delete_record", Payload::DeleteRecord { key: b"greeting".to_vec() }),
        ("grant_role", Payload::GrantRole { account: to, role: Role::Write }),
        ("revoke_role", Payload::RevokeRole { account: to, role: Role::Mint }),
        ("add_validator", Payload::AddValidator { validator: newcomer }),
        ("remove_validator", Payload::RemoveValidator { public_key: key(1003).public_key() }),
    ]
}

fn transaction_vectors() -> Value {
    let signer = key(1);
    let nonces = [0u64, u64::MAX, 1, 2, 3, 4, 5, 6, 7, 8];
    Value::Array(
        payloads()
            .into_iter()
            .zip(nonces)
            .map(|((name, payload), nonce)| {
                let transaction =
                    Transaction { chain_id: common::chain_id(), signer: signer.public_key(), nonce, payload };
                let signing_bytes = transaction.signing_bytes();
                let signed = transaction.sign(&signer);
                json!({
                    "name": name,
                    "chain_id": common::chain_id().to_string(),
                    "seed": to_hex(&*signer.seed()),
                    "public_key": signer.public_key().to_string(),
                    "nonce": nonce,
                    "payload": payload_json(&signed.transaction.payload),
                    "signing_bytes": to_hex(&signing_bytes),
                    "signature": signed.signature.to_string(),
                    "encoding": to_hex(&signed.encode()),
                    "hash": signed.hash().to_string(),
                })
            })
            .collect(),
    )
}

/// The node's verdict on a public key: accepted, or which `KeyError` refuses it.
fn key_verdict(bytes: [u8; 32]) -> Value {
    match PublicKey::from_bytes(bytes) {
        Ok(_) => Value::Null,
        Err(consensus::KeyError::WeakPublicKey) => json!("weak"),
        Err(consensus::KeyError::NonCanonicalPublicKey) => json!("non_canonical"),
        Err(_) => json!("invalid"),
    }
}

/// 32 bytes encoding `y` (below 2^255) with the sign bit.
fn encode_y(y_plus: [u8; 32], sign: bool) -> [u8; 32] {
    let mut bytes = y_plus;
    if sign {
        bytes[31] |= 0x80;
    }
    bytes
}

/// p + small, little-endian (for small < 19 this is below 2^255: a non-canonical y).
fn p_plus(small: u8) -> [u8; 32] {
    let mut bytes = [0xff; 32];
    bytes[0] = 0xed;
    bytes[31] = 0x7f;
    let mut carry = u16::from(small);
    for byte in bytes.iter_mut() {
        let sum = u16::from(*byte) + carry;
        *byte = sum as u8;
        carry = sum >> 8;
    }
    bytes
}

fn public_key_vectors() -> Value {
    let mut cases: Vec<(String, [u8; 32])> = Vec::new();
    cases.push(("valid".into(), key(1).public_key().to_bytes()));
    for (index, point) in hostile::small_order_points().into_iter().enumerate() {
        cases.push((format!("small_order_{index}"), point));
    }
    let mut y2 = [0u8; 32];
    y2[0] = 2;
    cases.push(("off_curve_y_2".into(), y2));
    for small in 0..19u8 {
        for sign in [false, true] {
            cases.push((format!("y_p_plus_{small}_sign_{}", u8::from(sign)), encode_y(p_plus(small), sign)));
        }
    }
    let mut y_small = [0u8; 32];
    for y in 2..12u8 {
        y_small[0] = y;
        cases.push((format!("y_{y}"), y_small));
        cases.push((format!("y_{y}_sign_1"), encode_y(y_small, true)));
    }
    let mut identity_negative_zero = [0u8; 32];
    identity_negative_zero[0] = 1;
    cases.push(("identity_negative_zero".into(), encode_y(identity_negative_zero, true)));
    cases.push(("all_ones".into(), [0xff; 32]));
    Value::Array(
        cases
            .into_iter()
            .map(|(name, bytes)| json!({"name": name, "bytes": to_hex(&bytes), "rejected": key_verdict(bytes)}))
            .collect(),
    )
}

/// The node's verdict on (key, message, signature).
fn signature_verdict(key_bytes: [u8; 32], message: &[u8], signature: &Signature) -> bool {
    PublicKey::from_bytes(key_bytes).is_ok_and(|public| public.verify(message, signature).is_ok())
}

fn signature_vectors() -> Value {
    let signer = key(42);
    let public = signer.public_key().to_bytes();
    let good = signer.sign(MESSAGE);
    let mut cases: Vec<(String, [u8; 32], Vec<u8>, Signature)> = Vec::new();
    cases.push(("rfc8032".into(), public, MESSAGE.to_vec(), good));
    cases.push(("wrong_message".into(), public, b"another message".to_vec(), good));
    let mut flipped = good;
    flipped.0[40] ^= 0x01;
    cases.push(("s_bit_flipped".into(), public, MESSAGE.to_vec(), flipped));
    let mut r_flipped = good;
    r_flipped.0[3] ^= 0x01;
    cases.push(("r_bit_flipped".into(), public, MESSAGE.to_vec(), r_flipped));
    for torsion in 1..8 {
        let (key_bytes, signature) = hostile::sign_torsioned(&signer, MESSAGE, torsion, 0);
        cases.push((format!("r_plus_torsion_{torsion}"), key_bytes, MESSAGE.to_vec(), signature));
    }
    for (r_torsion, key_torsion) in [(0, 1), (3, 1), (0, 4), (5, 6)] {
        let (key_bytes, signature) = hostile::sign_torsioned(&signer, MESSAGE, r_torsion, key_torsion);
        cases.push((
            format!("key_plus_torsion_{key_torsion}_r_torsion_{r_torsion}"),
            key_bytes,
            MESSAGE.to_vec(),
            signature,
        ));
    }
    for y in [0u8, 1] {
        for sign in [false, true] {
            let signature = hostile::sign_with_non_canonical_r(&signer, MESSAGE, y, sign);
            cases.push((format!("r_non_canonical_y_{y}_sign_{}", u8::from(sign)), public, MESSAGE.to_vec(), signature));
        }
    }
    cases.push(("s_non_canonical_plus_l".into(), public, MESSAGE.to_vec(), hostile::with_non_canonical_s(good)));
    let mut high_bit = good;
    high_bit.0[63] |= 0x80;
    cases.push(("s_high_bit_set".into(), public, MESSAGE.to_vec(), high_bit));
    let mut off_curve_r = good;
    off_curve_r.0[..32].copy_from_slice(&{
        let mut y2 = [0u8; 32];
        y2[0] = 2;
        y2
    });
    cases.push(("r_off_curve".into(), public, MESSAGE.to_vec(), off_curve_r));
    // The identity as key, R the identity and s = 0 satisfy every equation; the node refuses
    // the key (small order), so the signature is refused too.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let mut trivial = Signature([0; 64]);
    trivial.0[..32].copy_from_slice(&identity);
    cases.push(("weak_key_identity_trivial_signature".into(), identity, MESSAGE.to_vec(), trivial));
    cases.push((
        "non_canonical_key".into(),
        encode_y(p_plus(1), false),
        MESSAGE.to_vec(),
        hostile::sign_with_non_canonical_r(&signer, MESSAGE, 1, false),
    ));
    Value::Array(
        cases
            .into_iter()
            .map(|(name, key_bytes, message, signature)| {
                json!({
                    "name": name,
                    "public_key": to_hex(&key_bytes),
                    "message": to_hex(&message),
                    "signature": signature.to_string(),
                    "valid": signature_verdict(key_bytes, &message, &signature),
                })
            })
            .collect(),
    )
}

fn merkle_items(count: u64) -> Vec<Digest> {
    (0..count).map(|index| Digest::of(&index.to_le_bytes())).collect()
}

fn merkle_vectors() -> Value {
    Value::Array(
        (0..8u64)
            .map(|count| {
                let items = merkle_items(count);
                let proofs: Vec<Value> = (0..items.len())
                    .map(|index| serde_json::to_value(merkle::prove(&items, index).expect("in range")).expect("json"))
                    .collect();
                json!({
                    "items": items.iter().map(ToString::to_string).collect::<Vec<_>>(),
                    "root": merkle::root(&items).to_string(),
                    "proofs": proofs,
                })
            })
            .collect(),
    )
}

/// The chain of ledger/tests/proof.rs: a validator added (block 1) and another removed (block
/// 4), the proven transfer in block 8 with a failed transaction beside it.
fn chain_with_changes() -> (TestChain, Digest, Digest) {
    let mut chain = TestChain::new();
    let faucet = chain.faucet.clone();
    let newcomer = key(2000);
    chain.validators.push(newcomer.clone());
    chain.commit(vec![tx(&faucet, 0, Payload::AddValidator { validator: common::validator_info(4, &newcomer) })]);
    chain.commit(vec![]);
    chain.commit(vec![transfer(&faucet, 1, &key(7), 1)]);
    let leaving = chain.validators[0].public_key();
    chain.commit(vec![tx(&faucet, 2, Payload::RemoveValidator { public_key: leaving })]);
    for nonce in 3..6 {
        chain.commit(vec![transfer(&faucet, nonce, &key(7), 1)]);
    }
    chain.validators.remove(0);
    let target = transfer(&faucet, 7, &key(8), 5);
    let hash = target.hash();
    // key(7) holds no role, so its transfer is included with a failed receipt.
    let failing = transfer(&key(7), 0, &key(9), 1);
    let failing_hash = failing.hash();
    chain.commit(vec![transfer(&faucet, 6, &key(9), 1), target, failing]);
    (chain, hash, failing_hash)
}

fn genesis_json(chain: &TestChain) -> Value {
    let genesis = &chain.genesis;
    let document = GenesisDocument {
        chain_id: genesis.chain_id.clone(),
        genesis_time: "2023-11-14T22:13:20Z".to_string(),
        validators: genesis
            .validators
            .iter()
            .map(|validator| GenesisValidatorEntry {
                name: validator.name.clone(),
                public_key: validator.public_key,
                peer_id: validator.peer_id.clone(),
            })
            .collect(),
        accounts: genesis
            .accounts
            .iter()
            .map(|account| GenesisAccountEntry {
                address: account.address,
                balance: account.balance,
                roles: account.roles.clone(),
            })
            .collect(),
        params: genesis.params.clone(),
    };
    assert_eq!(
        &document.to_ledger().expect("a valid genesis"),
        genesis,
        "the genesis JSON is the test chain's genesis"
    );
    serde_json::to_value(&document).expect("json")
}

fn bundle_json(proof: &TxProof) -> Value {
    let bundle = TxProofBundle {
        chain_id: proof.block.header.chain_id.clone(),
        tx_hash: proof.tx_hash(),
        height: proof.block.header.height,
        index: proof.included.tx_proof.index,
        validator_changes: proof.validator_changes.len(),
        proof: to_hex(&proof.encode()),
    };
    serde_json::to_value(&bundle).expect("json")
}

/// The signing key of the validator at `index` of the set certifying `height`.
fn signer_of(chain: &TestChain, proof: &TxProof, index: u32) -> SigningKey {
    let set = ledger::StateHistory::validator_set_for(&chain.store, proof.block.header.height).expect("set");
    let public = *set.get(index).expect("member");
    chain.validators.iter().find(|candidate| candidate.public_key() == public).expect("a known key").clone()
}

fn proof_vectors() -> Value {
    let (chain, hash, failing_hash) = chain_with_changes();
    let genesis = genesis_json(&chain);
    let proof = build_tx_proof(&chain.store, &hash).expect("read").expect("committed");
    let failing = build_tx_proof(&chain.store, &failing_hash).expect("read").expect("committed");
    assert!(failing.included.receipt.failure.is_some(), "the role-less transfer fails");
    let vote_bytes = proof.block.certificate.vote().signing_bytes(&chain.genesis.chain_id);
    let first_signer = proof.block.certificate.signatures[0].validator;
    let signer = signer_of(&chain, &proof, first_signer);

    let mut cases: Vec<(String, Value, Option<Value>)> = Vec::new();
    let mut add = |name: &str, bundle: Value| cases.push((name.to_string(), bundle, None));
    add("valid", bundle_json(&proof));
    add("valid_failed_transaction", bundle_json(&failing));
    let tampered = |change: &dyn Fn(&mut TxProof)| {
        let mut copy = proof.clone();
        change(&mut copy);
        bundle_json(&copy)
    };
    // ZIP-215: signatures the node accepts although libsodium and OpenSSL refuse them.
    add(
        "zip215_commit_signature_r_plus_torsion",
        tampered(&|p| {
            p.block.certificate.signatures[0].signature = hostile::sign_torsioned(&signer, &vote_bytes, 1, 0).1
        }),
    );
    add(
        "zip215_commit_signature_r_non_canonical",
        tampered(&|p| {
            p.block.certificate.signatures[0].signature =
                hostile::sign_with_non_canonical_r(&signer, &vote_bytes, 0, true)
        }),
    );
    add(
        "commit_signature_s_non_canonical",
        tampered(&|p| {
            let signature = p.block.certificate.signatures[0].signature;
            p.block.certificate.signatures[0].signature = hostile::with_non_canonical_s(signature);
        }),
    );
    add("commit_signature_flipped", tampered(&|p| p.block.certificate.signatures[0].signature.0[5] ^= 0x01));
    add("certificate_below_quorum", tampered(&|p| p.block.certificate.signatures.truncate(2)));
    add(
        "certificate_duplicate_signer",
        tampered(&|p| {
            let first = p.block.certificate.signatures[0];
            p.block.certificate.signatures[1] = first;
        }),
    );
    add("certificate_signer_not_member", tampered(&|p| p.block.certificate.signatures[0].validator = 9));
    add("certificate_wrong_height", tampered(&|p| p.block.certificate.height += 1));
    add("certificate_wrong_view", tampered(&|p| p.block.certificate.view += 1));
    add("header_state_root_changed", tampered(&|p| p.block.header.state_root.0[0] ^= 0x01));
    add(
        "change_block_signature_flipped",
        tampered(&|p| p.validator_changes[1].block.certificate.signatures[2].signature.0[0] ^= 0x80),
    );
    add("validator_change_missing_first", tampered(&|p| drop(p.validator_changes.remove(0))));
    add("validator_change_missing_last", tampered(&|p| drop(p.validator_changes.remove(1))));
    add("validator_changes_none", tampered(&|p| p.validator_changes.clear()));
    add("validator_changes_reordered", tampered(&|p| p.validator_changes.swap(0, 1)));
    add("validator_change_without_changes", tampered(&|p| p.validator_changes[0].changes.clear()));
    add(
        "transaction_amount_changed",
        tampered(&|p| {
            if let Payload::Transfer { amount, .. } = &mut p.included.transaction.transaction.payload {
                *amount += 1;
            }
        }),
    );
    add("transaction_signature_changed", tampered(&|p| p.included.transaction.signature.0[0] ^= 0x01));
    add("tx_path_sibling_flipped", tampered(&|p| p.included.tx_proof.siblings[0].0[0] ^= 0x01));
    add(
        "tx_path_sibling_missing",
        tampered(&|p| {
            p.included.tx_proof.siblings.pop();
        }),
    );
    add(
        "tx_path_relabelled",
        tampered(&|p| {
            p.included.tx_proof.index = 0;
            p.included.receipt_proof.index = 0;
        }),
    );
    add("receipt_failure_forged", tampered(&|p| p.included.receipt.failure = Some(Failure::BalanceOverflow)));
    add("receipt_for_another_transaction", tampered(&|p| p.included.receipt.tx_hash.0[0] ^= 0x01));
    add("receipt_path_moved", tampered(&|p| p.included.receipt_proof.total += 1));
    add("receipt_path_sibling_flipped", tampered(&|p| p.included.receipt_proof.siblings[0].0[31] ^= 0x01));
    let with_claim = |field: &str, value: Value| {
        let mut bundle = bundle_json(&proof);
        bundle[field] = value;
        bundle
    };
    add("claim_tx_hash", with_claim("tx_hash", json!(Digest::of(b"another").to_string())));
    add("claim_height", with_claim("height", json!(proof.block.header.height + 1)));
    add("claim_index", with_claim("index", json!(proof.included.tx_proof.index + 1)));
    add("claim_chain_id", with_claim("chain_id", json!("elsewhere")));
    let bytes = proof.encode();
    let with_bytes = |raw: &[u8]| with_claim("proof", json!(to_hex(raw)));
    add("proof_truncated", with_bytes(&bytes[..bytes.len() - 1]));
    add("proof_trailing_byte", with_bytes(&[bytes.as_slice(), &[0]].concat()));
    add("proof_not_hex", with_claim("proof", json!("0xzz")));
    // The block's proposer replaced by a small-order point: not a key the node decodes.
    let proposer_at = borsh::to_vec(&proof.validator_changes).expect("encode").len()
        + 4
        + proof.block.header.chain_id.as_str().len()
        + 8
        + 32
        + 8;
    assert_eq!(bytes[proposer_at..proposer_at + 32], proof.block.header.proposer.to_bytes());
    let mut weak_proposer = bytes.clone();
    weak_proposer[proposer_at..proposer_at + 32].copy_from_slice(&hostile::small_order_points()[1]);
    add("proof_small_order_proposer", with_bytes(&weak_proposer));
    let mut bad_option = bytes.clone();
    // The receipt's Option tag is the byte after its tx hash; the receipt follows the
    // transaction and its path. Set it to 2: not an Option.
    let receipt_at = bytes.len() - borsh::to_vec(&proof.included.receipt_proof).expect("encode").len() - 1;
    assert_eq!(bad_option[receipt_at], 0, "the receipt's Option tag (None)");
    bad_option[receipt_at] = 2;
    add("proof_bad_option_tag", with_bytes(&bad_option));

    let mut other_chain = genesis.clone();
    other_chain["chain_id"] = json!("elsewhere");
    cases.push(("genesis_other_chain".into(), bundle_json(&proof), Some(other_chain)));
    let mut other_validator = genesis.clone();
    other_validator["validators"][3]["public_key"] = json!(key(3000).public_key().to_string());
    cases.push(("genesis_other_validator".into(), bundle_json(&proof), Some(other_validator)));
    let mut reordered = genesis.clone();
    if let Some(validators) = reordered["validators"].as_array_mut() {
        validators.swap(0, 1);
    }
    cases.push(("genesis_validators_reordered".into(), bundle_json(&proof), Some(reordered)));
    let mut longer_delay = genesis.clone();
    longer_delay["params"]["validator_change_delay"] = json!(3);
    cases.push(("genesis_other_change_delay".into(), bundle_json(&proof), Some(longer_delay)));

    let cases: Vec<Value> = cases
        .into_iter()
        .map(|(name, bundle, genesis_override)| {
            let genesis_used = genesis_override.clone().unwrap_or_else(|| genesis.clone());
            let verdict = verify_bundle(&bundle, &genesis_used);
            let mut case = json!({
                "name": name,
                "bundle": bundle,
                "valid": verdict.is_ok(),
                "kind": verdict.as_ref().err().map(|(kind, _)| *kind),
                "reason": verdict.as_ref().err().map(|(_, reason)| reason.clone()),
            });
            if let Some(other) = genesis_override {
                case["genesis"] = other;
            }
            case
        })
        .collect();
    json!({"genesis": genesis, "cases": cases})
}

/// What `stele verify-proof` decides (node/src/cli/verify_proof.rs), with the error's kind.
fn verify_bundle(bundle: &Value, genesis: &Value) -> Result<(), (&'static str, String)> {
    let document: GenesisDocument =
        serde_json::from_value(genesis.clone()).map_err(|error| ("genesis", error.to_string()))?;
    let genesis = document.to_ledger().map_err(|error| ("genesis", error.to_string()))?;
    let bundle: TxProofBundle = serde_json::from_value(bundle.clone())
        .map_err(|error| ("undecodable", format!("not a proof bundle: {error}")))?;
    let bytes = from_hex(&bundle.proof).map_err(|error| ("undecodable", format!("proof: {error}")))?;
    let proof = TxProof::decode(&bytes).map_err(|error| ("undecodable", error.to_string()))?;
    let claims = [
        (proof.tx_hash() == bundle.tx_hash, "tx_hash"),
        (proof.block.header.height == bundle.height, "height"),
        (proof.block.header.chain_id == bundle.chain_id, "chain_id"),
        (proof.included.tx_proof.index == bundle.index, "index"),
    ];
    if let Some((_, field)) = claims.iter().find(|(holds, _)| !holds) {
        return Err(("claim", format!("the bundle's {field} does not match its proof")));
    }
    proof.verify(&genesis).map_err(|error| {
        let kind = match &error {
            ProofError::Undecodable(_) => "undecodable",
            ProofError::WrongChain { .. } => "wrong_chain",
            ProofError::Header { .. } => "header",
            ProofError::Inclusion { .. } => "inclusion",
            ProofError::Change { .. } => "change",
        };
        (kind, error.to_string())
    })
}

fn generate() -> Value {
    json!({
        "format": FORMAT,
        "about": "Stele SDK test vectors, generated by node/tests/sdk_vectors.rs from the Rust types \
                  (STELE_UPDATE_VECTORS=1 cargo test --workspace --locked --test sdk_vectors) and \
                  checked by it and by sdk/python/tests/test_vectors.py. Bytes are 0x-hex.",
        "keys": key_vectors(),
        "transactions": transaction_vectors(),
        "public_keys": public_key_vectors(),
        "signatures": signature_vectors(),
        "merkle": merkle_vectors(),
        "proofs": proof_vectors(),
    })
}

// --- independent checks of the file ------------------------------------------------------

fn check_keys(vectors: &Value) {
    for vector in vectors.as_array().expect("keys") {
        let signing = SigningKey::from_seed(array(&vector["seed"]));
        assert_eq!(json!(signing.public_key().to_string()), vector["public_key"], "{}", vector["name"]);
        assert_eq!(json!(Address::of(&signing.public_key()).to_string()), vector["address"], "{}", vector["name"]);
    }
}

fn check_transactions(vectors: &Value) {
    let names: Vec<&str> =
        vectors.as_array().expect("transactions").iter().filter_map(|v| v["name"].as_str()).collect();
    for kind in [
        "transfer",
        "mint",
        "put_record",
        "delete_record",
        "grant_role",
        "revoke_role",
        "add_validator",
        "remove_validator",
    ] {
        assert!(names.contains(&kind), "no vector for the {kind} payload");
    }
    for vector in vectors.as_array().expect("transactions") {
        let name = &vector["name"];
        let signed =
            SignedTransaction::decode(&hex_bytes(&vector["encoding"]), usize::MAX).expect("the encoding decodes");
        let signing = SigningKey::from_seed(array(&vector["seed"]));
        assert_eq!(signed.transaction.signer, signing.public_key(), "{name}");
        assert_eq!(json!(signed.transaction.chain_id.to_string()), vector["chain_id"], "{name}");
        assert_eq!(json!(signed.transaction.nonce), vector["nonce"], "{name}");
        assert_eq!(payload_json(&signed.transaction.payload), vector["payload"], "{name}");
        assert_eq!(
            to_hex(&signed.transaction.signing_bytes()),
            vector["signing_bytes"].as_str().expect("hex"),
            "{name}"
        );
        assert_eq!(signing.sign(&signed.transaction.signing_bytes()), signed.signature, "{name}");
        assert_eq!(json!(signed.signature.to_string()), vector["signature"], "{name}");
        assert_eq!(json!(signed.hash().to_string()), vector["hash"], "{name}");
        assert_eq!(to_hex(&signed.encode()), vector["encoding"].as_str().expect("hex"), "{name}");
        assert_eq!(signed.verify_signature(), Ok(()), "{name}");
    }
}

fn check_public_keys(vectors: &Value) {
    let verdicts: Vec<&Value> = vectors.as_array().expect("public keys").iter().map(|v| &v["rejected"]).collect();
    for kind in ["weak", "non_canonical", "invalid"] {
        assert!(verdicts.contains(&&json!(kind)), "no public key vector refused as {kind}");
    }
    for vector in vectors.as_array().expect("public keys") {
        assert_eq!(key_verdict(array(&vector["bytes"])), vector["rejected"], "{}", vector["name"]);
    }
}

fn check_signatures(vectors: &Value) {
    for vector in vectors.as_array().expect("signatures") {
        let signature = Signature(array(&vector["signature"]));
        let verdict = signature_verdict(array(&vector["public_key"]), &hex_bytes(&vector["message"]), &signature);
        assert_eq!(json!(verdict), vector["valid"], "{}", vector["name"]);
    }
}

fn check_merkle(vectors: &Value) {
    for vector in vectors.as_array().expect("merkle") {
        let items: Vec<Digest> =
            vector["items"].as_array().expect("items").iter().map(|item| Digest(array(item))).collect();
        let root = merkle::root(&items);
        assert_eq!(json!(root.to_string()), vector["root"]);
        for (index, proof) in vector["proofs"].as_array().expect("proofs").iter().enumerate() {
            let proof: merkle::InclusionProof = serde_json::from_value(proof.clone()).expect("a proof");
            assert!(proof.verify(&root, &items[index]), "leaf {index} of {}", items.len());
        }
    }
}

fn check_proofs(vectors: &Value) {
    let genesis = &vectors["genesis"];
    let cases = vectors["cases"].as_array().expect("cases");
    assert!(
        cases.iter().any(|case| case["valid"] == json!(true)) && cases.iter().any(|case| case["valid"] == json!(false))
    );
    for case in cases {
        let verdict = verify_bundle(&case["bundle"], case.get("genesis").unwrap_or(genesis));
        assert_eq!(json!(verdict.is_ok()), case["valid"], "{}: {verdict:?}", case["name"]);
        if let Err((kind, reason)) = verdict {
            assert_eq!(json!(kind), case["kind"], "{}", case["name"]);
            assert_eq!(json!(reason), case["reason"], "{}", case["name"]);
        }
    }
}

/// The first JSON path where `found` differs from `expected`.
fn first_difference(found: &Value, expected: &Value, path: String) -> Option<String> {
    match (found, expected) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            keys.into_iter().find_map(|key| match (a.get(key), b.get(key)) {
                (Some(x), Some(y)) => first_difference(x, y, format!("{path}.{key}")),
                _ => Some(format!("{path}.{key} (present on one side only)")),
            })
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            a.iter().zip(b).enumerate().find_map(|(index, (x, y))| first_difference(x, y, format!("{path}[{index}]")))
        }
        _ if found == expected => None,
        _ => Some(format!("{path}: the file has {found}, the Rust types give {expected}")),
    }
}

#[test]
fn sdk_vectors_match_the_rust_types() {
    let generated = generate();
    let path = vectors_path();
    if std::env::var("STELE_UPDATE_VECTORS").is_ok_and(|value| value == "1") {
        let text = serde_json::to_string_pretty(&generated).expect("json");
        std::fs::write(&path, format!("{text}\n")).expect("write sdk/vectors.json");
    }
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| {
        panic!(
            "{}: {error}; create it with STELE_UPDATE_VECTORS=1 cargo test --workspace --locked --test sdk_vectors",
            path.display()
        )
    });
    let file: Value = serde_json::from_str(&text).expect("sdk/vectors.json is JSON");
    assert_eq!(file["format"], json!(FORMAT));
    check_keys(&file["keys"]);
    check_transactions(&file["transactions"]);
    check_public_keys(&file["public_keys"]);
    check_signatures(&file["signatures"]);
    check_merkle(&file["merkle"]);
    check_proofs(&file["proofs"]);
    if let Some(difference) = first_difference(&file, &generated, String::new()) {
        panic!(
            "sdk/vectors.json no longer matches the Rust encoding at {difference}. If the change is intended, \
             regenerate it with STELE_UPDATE_VECTORS=1 cargo test --workspace --locked --test sdk_vectors and \
             run sdk/python/test.sh"
        );
    }
}

#[test]
fn the_vectors_cover_the_zip215_differences() {
    // Guards the generator: at least one signature the node accepts that a cofactorless,
    // canonical-R verifier (libsodium, OpenSSL) refuses, and the refusals ZIP-215 keeps.
    let vectors = signature_vectors();
    let verdict = |name: &str| {
        vectors.as_array().expect("signatures").iter().find(|vector| vector["name"] == json!(name)).expect("present")["valid"]
            .clone()
    };
    assert_eq!(verdict("r_plus_torsion_1"), json!(true));
    assert_eq!(verdict("r_non_canonical_y_0_sign_1"), json!(true));
    assert_eq!(verdict("s_non_canonical_plus_l"), json!(false));
    assert_eq!(verdict("weak_key_identity_trivial_signature"), json!(false));
}
