//! The JSON-RPC API against a real node (one validator, real RocksDB): every method, each
//! error code, raw HTTP abuse, and a WebSocket subscriber.

#[path = "../cluster/harness.rs"]
#[allow(dead_code)]
mod harness;

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    time::Duration,
};

use consensus::{Digest, SigningKey};
use harness::{Cluster, chain_id, run};
use jsonrpsee::{core::client::Error as ClientError, http_client::HttpClientBuilder, ws_client::WsClientBuilder};
use ledger::{Address, Payload, SignedTransaction, Transaction};
use rpc::{
    api::{ProofTarget, SteleApiClient},
    error,
    types::{BlockId, Header, TxState, from_hex, to_hex},
};

const LIMIT: Duration = Duration::from_secs(120);

fn code(result: Result<impl std::fmt::Debug, ClientError>) -> i32 {
    match result {
        Err(ClientError::Call(error)) => error.code(),
        other => panic!("expected a JSON-RPC error, got {other:?}"),
    }
}

fn hex(transaction: &SignedTransaction) -> String {
    to_hex(&transaction.encode())
}

/// A node with a small mempool, so "full" is reachable.
async fn single_node() -> (Cluster, SocketAddr) {
    let mut cluster = Cluster::generate(1);
    let mut config = cluster.config(0);
    config.mempool.max_txs = 8;
    cluster.start_with(0, config).await;
    cluster.wait_height(1).await;
    let address = cluster.node(0).rpc_address;
    (cluster, address)
}

#[test]
fn every_method_and_error_code_against_a_real_node() {
    run(LIMIT, || async {
        let (mut cluster, address) = single_node().await;
        let client = HttpClientBuilder::default().build(format!("http://{address}")).expect("client");

        let status = client.chain_status().await.expect("chain_status");
        assert_eq!(status.chain_id, chain_id());
        assert_eq!(status.role, "validator");
        assert!(status.height >= 1);

        // Submit, submit and wait, get.
        let first = cluster.transfer(10);
        let first_hash = client.tx_submit(hex(&first)).await.expect("tx_submit");
        assert_eq!(first_hash, first.hash());
        let key = b"greeting".to_vec();
        let put = cluster.faucet_tx(Payload::PutRecord { key: key.clone(), value: b"hello".to_vec() });
        let waited = client.tx_submit_and_wait(hex(&put), Some(30_000)).await.expect("tx_submitAndWait");
        assert_eq!(waited.status, TxState::Committed);
        assert!(waited.receipt.as_ref().expect("receipt").success);
        let got = client.tx_get(first_hash).await.expect("tx_get");
        assert_eq!(got.status, TxState::Committed);
        assert_eq!(client.tx_get(Digest::of(b"nothing")).await.expect("tx_get").status, TxState::Unknown);

        // Blocks by height and hash, pages, validators.
        let height = waited.height.expect("height");
        let block = client.chain_get_block(BlockId::Height(height)).await.expect("chain_getBlock");
        assert!(block.transactions.iter().any(|tx| tx.hash == put.hash()));
        let by_hash = client.chain_get_block(BlockId::Hash(block.header.hash)).await.expect("by hash");
        assert_eq!(by_hash, block);
        assert_eq!(code(client.chain_get_block(BlockId::Height(1_000_000)).await), error::NOT_FOUND);
        assert_eq!(code(client.chain_get_block(BlockId::Height(0)).await), error::NOT_FOUND);
        let page = client.chain_get_blocks(1, height).await.expect("chain_getBlocks");
        assert_eq!(page.len() as u64, height);
        assert!(page.windows(2).all(|pair| pair[1].header.previous_hash == pair[0].header.hash));
        assert_eq!(code(client.chain_get_blocks(5, 1).await), error::INVALID_PARAMS);
        let validators = client.chain_get_validators(None).await.expect("chain_getValidators");
        assert_eq!((validators.validators.len(), validators.quorum), (1, 1));
        assert_eq!(code(client.chain_get_validators(Some(1_000_000)).await), error::NOT_FOUND);
        // A lone honest validator has seen no conflicting votes.
        assert!(client.chain_get_evidence().await.expect("chain_getEvidence").is_empty());

        // State now and in the past.
        let faucet = Address::of(&cluster.faucet.public_key());
        let account = client.state_get_account(faucet, None).await.expect("state_getAccount");
        assert_eq!(account.nonce, 2);
        let genesis_account = client.state_get_account(faucet, Some(0)).await.expect("at height 0");
        assert_eq!(genesis_account.balance, account.balance + 10);
        assert_eq!(code(client.state_get_account(faucet, Some(1_000_000)).await), error::NOT_FOUND);
        let record = client.state_get_record(to_hex(&key), None).await.expect("state_getRecord");
        assert_eq!(record.value.as_deref(), Some(to_hex(b"hello").as_str()));
        assert_eq!(client.state_get_record(to_hex(b"absent"), None).await.expect("absent").value, None);
        assert_eq!(code(client.state_get_record("0xzz".to_string(), None).await), error::INVALID_PARAMS);

        // A proof verifies against the certified state root, and not for another value.
        let proof = client.state_get_proof(ProofTarget::Record(to_hex(&key)), None).await.expect("state_getProof");
        let decoded: ledger::StateProof = borsh::from_slice(&from_hex(&proof.proof).expect("hex")).expect("proof");
        decoded.verify(&proof.header.state_root).expect("proof verifies");
        let certificate = proof.certificate.expect("certificate");
        let set = cluster.node(0).store.as_ref();
        let set = ledger::StateHistory::validator_set_for(set, proof.height).expect("set");
        certificate.verify(&chain_id(), &set, proof.height, &proof.header.hash).expect("certificate verifies");
        let mut forged = decoded;
        forged.value = Some(b"forged".to_vec());
        assert!(forged.verify(&proof.header.state_root).is_err());
        let absent = client
            .state_get_proof(ProofTarget::Account(Address::of(&SigningKey::from_seed([3; 32]).public_key())), None)
            .await
            .expect("absence proof");
        assert_eq!(absent.value, None);

        assert!(client.net_peers().await.expect("net_peers").is_empty());

        // A transaction proof bundle verifies from the genesis alone.
        let bundle = client.tx_get_proof(put.hash()).await.expect("tx_getProof");
        assert_eq!((bundle.height, bundle.tx_hash), (height, put.hash()));
        let proof = ledger::proof::TxProof::decode(&from_hex(&bundle.proof).expect("hex")).expect("decodes");
        let genesis = genesis::GenesisDocument::load(&cluster.network.genesis_path).expect("genesis");
        proof.verify(&genesis.to_ledger().expect("genesis")).expect("bundle verifies");
        assert_eq!(code(client.tx_get_proof(Digest::of(b"nothing")).await), error::NOT_FOUND);

        // Error codes of tx_submit, one per cause.
        assert_eq!(code(client.tx_submit("0xnot-hex".to_string()).await), error::MALFORMED_TRANSACTION);
        assert_eq!(code(client.tx_submit("0x00ff".to_string()).await), error::MALFORMED_TRANSACTION);
        let mut bad_signature = cluster.transfer(1);
        bad_signature.signature = cluster.faucet.sign(b"something else");
        assert_eq!(code(client.tx_submit(hex(&bad_signature)).await), error::BAD_SIGNATURE);
        cluster.faucet_nonce -= 1;
        let other_chain = Transaction {
            chain_id: consensus::ChainId::new("other").expect("chain"),
            signer: cluster.faucet.public_key(),
            nonce: cluster.faucet_nonce,
            payload: Payload::Transfer { to: faucet, amount: 1 },
        }
        .sign(&cluster.faucet);
        assert_eq!(code(client.tx_submit(hex(&other_chain)).await), error::WRONG_CHAIN);
        assert_eq!(code(client.tx_submit(hex(&first)).await), error::NONCE_TOO_LOW);
        let far = Transaction {
            chain_id: chain_id(),
            signer: cluster.faucet.public_key(),
            nonce: 1_000_000,
            payload: Payload::Transfer { to: faucet, amount: 1 },
        }
        .sign(&cluster.faucet);
        assert_eq!(code(client.tx_submit(hex(&far)).await), error::NONCE_TOO_HIGH);
        let stranger = SigningKey::from_seed([4; 32]);
        let no_role = Transaction {
            chain_id: chain_id(),
            signer: stranger.public_key(),
            nonce: 0,
            payload: Payload::Transfer { to: faucet, amount: 1 },
        }
        .sign(&stranger);
        assert_eq!(code(client.tx_submit(hex(&no_role)).await), error::PERMISSION_DENIED);
        let huge = cluster.faucet_tx(Payload::PutRecord { key: b"k".to_vec(), value: vec![0; 40_000] });
        assert_eq!(code(client.tx_submit(hex(&huge)).await), error::TOO_LARGE);
        cluster.faucet_nonce -= 1;
        // Transactions after a gap stay pending: one twice is already pending, and they fill the pool.
        let gapped: Vec<SignedTransaction> = (0..9)
            .map(|offset| {
                Transaction {
                    chain_id: chain_id(),
                    signer: cluster.faucet.public_key(),
                    nonce: cluster.faucet_nonce + 1 + offset,
                    payload: Payload::Transfer { to: faucet, amount: 1 },
                }
                .sign(&cluster.faucet)
            })
            .collect();
        client.tx_submit(hex(&gapped[0])).await.expect("gapped admitted");
        assert_eq!(client.tx_get(gapped[0].hash()).await.expect("tx_get").status, TxState::Pending);
        assert_eq!(code(client.tx_submit(hex(&gapped[0])).await), error::ALREADY_PENDING);
        assert_eq!(code(client.tx_submit_and_wait(hex(&gapped[1]), Some(300)).await), error::TIMEOUT);
        for transaction in &gapped[2..8] {
            client.tx_submit(hex(transaction)).await.expect("admitted");
        }
        assert_eq!(code(client.tx_submit(hex(&gapped[8])).await), error::MEMPOOL_FULL);
        cluster.stop_all().await;
    });
}

/// Sends raw bytes and returns the whole response text.
fn exchange(address: SocketAddr, head: &str, body: &[u8]) -> String {
    let mut stream = TcpStream::connect(address).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    stream.write_all(head.as_bytes()).expect("write");
    let _ = stream.write_all(body);
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response
}

/// One raw HTTP request; returns the status code and body.
fn post(address: SocketAddr, body: &[u8]) -> (u16, String) {
    let head = format!(
        "POST / HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let response = exchange(address, &head, body);
    let status = response.split_whitespace().nth(1).and_then(|code| code.parse().ok()).unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map(|(_, body)| body.to_string()).unwrap_or_default();
    (status, body)
}

#[test]
fn malformed_oversized_and_over_long_requests_get_errors_not_crashes() {
    run(LIMIT, || async {
        let (mut cluster, address) = single_node().await;
        let (_, body) = tokio::task::spawn_blocking(move || post(address, b"{not json")).await.expect("task");
        assert!(body.contains("-32700"), "parse error expected: {body}");
        let (_, body) = tokio::task::spawn_blocking(move || {
            post(address, br#"{"jsonrpc":"2.0","id":1,"method":"chain_getBlock","params":[{"x":1}]}"#)
        })
        .await
        .expect("task");
        assert!(body.contains("-32602"), "invalid params expected: {body}");
        let (_, body) = tokio::task::spawn_blocking(move || {
            post(address, br#"{"jsonrpc":"2.0","id":1,"method":"no_such_method","params":[]}"#)
        })
        .await
        .expect("task");
        assert!(body.contains("-32601"), "method not found expected: {body}");
        let huge_id = format!(r#"{{"jsonrpc":"2.0","id":{},"method":"chain_status","params":[]}}"#, "9".repeat(5000));
        let (status, body) =
            tokio::task::spawn_blocking(move || post(address, huge_id.as_bytes())).await.expect("task");
        // jsonrpsee answers an id it cannot represent with a bare `null` (not a JSON-RPC error
        // object); what matters here is that the server answers and keeps serving.
        assert_eq!(status, 200, "huge id: {body:?}");
        // Over the 2 MiB body limit.
        let oversized =
            format!(r#"{{"jsonrpc":"2.0","id":1,"method":"tx_submit","params":["0x{}"]}}"#, "00".repeat(1_100_000));
        let (status, body) =
            tokio::task::spawn_blocking(move || post(address, oversized.as_bytes())).await.expect("task");
        assert!(status == 413 || body.contains("-32007"), "oversized: {status} {body}");
        // Over the 100-call batch limit.
        let call = r#"{"jsonrpc":"2.0","id":1,"method":"chain_status","params":[]}"#;
        let batch = format!("[{}]", [call; 101].join(","));
        let (_, body) = tokio::task::spawn_blocking(move || post(address, batch.as_bytes())).await.expect("task");
        assert!(body.contains("-32010") && !body.contains("\"result\""), "batch over the limit: {body}");
        let batch = format!("[{}]", [call; 3].join(","));
        let (_, body) = tokio::task::spawn_blocking(move || post(address, batch.as_bytes())).await.expect("task");
        assert_eq!(body.matches("\"result\"").count(), 3, "a batch within the limit: {body}");
        // A batch's calls run together (one admission for its transfers), yet every response
        // answers its own call, in the order of the calls.
        let transfers: Vec<SignedTransaction> = (0..6).map(|amount| cluster.transfer(amount + 1)).collect();
        let mut calls: Vec<String> = transfers
            .iter()
            .enumerate()
            .map(|(index, tx)| {
                format!(r#"{{"jsonrpc":"2.0","id":{index},"method":"tx_submit","params":["{}"]}}"#, hex(tx))
            })
            .collect();
        calls.insert(2, r#"{"jsonrpc":"2.0","id":"bad","method":"tx_submit","params":["0x0102"]}"#.to_string());
        calls.insert(4, r#"{"jsonrpc":"2.0","id":"status","method":"chain_status","params":[]}"#.to_string());
        let batch = format!("[{}]", calls.join(","));
        let (_, body) = tokio::task::spawn_blocking(move || post(address, batch.as_bytes())).await.expect("task");
        let responses: Vec<serde_json::Value> = serde_json::from_str(&body).expect("a JSON array");
        assert_eq!(responses.len(), 8, "{body}");
        let mut transfer_index = 0;
        for (position, response) in responses.iter().enumerate() {
            match position {
                2 => assert!(response["id"] == "bad" && response["error"]["code"].is_i64(), "{response}"),
                4 => assert!(response["id"] == "status" && response["result"]["height"].is_u64(), "{response}"),
                _ => {
                    assert_eq!(response["id"], transfer_index, "responses keep the order of the calls");
                    assert_eq!(response["result"], transfers[transfer_index].hash().to_string(), "{response}");
                    transfer_index += 1;
                }
            }
        }
        // Still serving.
        let client = HttpClientBuilder::default().build(format!("http://{address}")).expect("client");
        client.chain_status().await.expect("still alive");
        cluster.stop_all().await;
    });
}

#[test]
fn a_websocket_subscriber_sees_every_committed_block_in_order() {
    run(LIMIT, || async {
        let (mut cluster, address) = single_node().await;
        let client = WsClientBuilder::default().build(format!("ws://{address}")).await.expect("ws client");
        let mut subscription = client.chain_subscribe_blocks().await.expect("subscribe");
        let http = HttpClientBuilder::default().build(format!("http://{address}")).expect("client");
        let mut last = None;
        for _ in 0..5 {
            let transaction = cluster.transfer(1);
            last = http.tx_submit_and_wait(hex(&transaction), None).await.expect("committed").height;
        }
        let last = last.expect("a height");
        let mut headers: Vec<Header> = Vec::new();
        while headers.last().is_none_or(|header| header.height < last) {
            let header = tokio::time::timeout(Duration::from_secs(30), subscription.next())
                .await
                .expect("a block within 30 s")
                .expect("subscription open")
                .expect("a header");
            headers.push(header);
        }
        assert!(headers.len() >= 5);
        assert!(headers.windows(2).all(|pair| pair[1].height == pair[0].height + 1), "gap or reorder in {headers:?}");
        assert!(headers.windows(2).all(|pair| pair[1].previous_hash == pair[0].hash));
        assert!(headers.iter().filter(|header| header.tx_count > 0).count() >= 1);
        cluster.stop_all().await;
    });
}

/// A CORS preflight from `origin`; returns the response text.
fn preflight(address: SocketAddr, origin: &str) -> String {
    let head = format!(
        "OPTIONS / HTTP/1.1\r\nHost: {address}\r\nOrigin: {origin}\r\nAccess-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: content-type\r\nConnection: close\r\n\r\n"
    );
    exchange(address, &head, b"").to_ascii_lowercase()
}

#[test]
fn cors_allows_only_the_configured_origins() {
    run(LIMIT, || async {
        let mut cluster = Cluster::generate(2);
        let mut config = cluster.config(0);
        config.rpc.cors_origins = vec!["http://allowed.test".to_string()];
        cluster.start_with(0, config).await;
        cluster.start(1).await;
        let (open, closed) = (cluster.node(0).rpc_address, cluster.node(1).rpc_address);
        let answers = tokio::task::spawn_blocking(move || {
            [
                preflight(open, "http://allowed.test"),
                preflight(open, "http://evil.test"),
                preflight(closed, "http://allowed.test"),
            ]
        })
        .await
        .expect("task");
        assert!(answers[0].contains("access-control-allow-origin: http://allowed.test"), "{}", answers[0]);
        assert!(!answers[1].contains("access-control-allow-origin"), "{}", answers[1]);
        // The default (no origins) sends no CORS headers at all.
        assert!(!answers[2].contains("access-control-allow-origin"), "{}", answers[2]);
        cluster.stop_all().await;
    });
}
