//! The JSON-RPC API against a real node (one validator, real RocksDB): every method, each
//! error code, raw HTTP abuse, a WebSocket subscriber, the access rules (origin, host, submit
//! token), the response budget, and the `/health` and `/ready` probes ([`probes`]).

#[path = "../cluster/harness.rs"]
#[allow(dead_code)]
mod harness;
mod probes;

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
    post_as(address, &format!("Host: {address}\r\n"), body)
}

/// One raw HTTP request with these header lines (each ending in CRLF; `Host` among them).
fn post_as(address: SocketAddr, headers: &str, body: &[u8]) -> (u16, String) {
    let head = format!(
        "POST / HTTP/1.1\r\n{headers}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
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

/// SIGTERM runs [`stele::Node::shutdown`]: open subscriptions and `tx_submitAndWait` calls (which
/// may wait up to a minute) must not hold the node, and their clients must hear that it stopped.
#[test]
fn shutdown_is_prompt_with_subscriptions_and_waiting_calls_open() {
    run(LIMIT, || async {
        let (mut cluster, address) = single_node().await;
        let ws = WsClientBuilder::default()
            .request_timeout(Duration::from_secs(120))
            .build(format!("ws://{address}"))
            .await
            .expect("ws client");
        let mut subscription = ws.chain_subscribe_blocks().await.expect("subscribe");
        let http = HttpClientBuilder::default()
            .request_timeout(Duration::from_secs(120))
            .build(format!("http://{address}"))
            .expect("client");
        // Nonces far ahead of the faucet's: admitted as queued, never committed, so both calls
        // wait their full 60 s unless the node ends them.
        let waiting: Vec<SignedTransaction> = (0..2)
            .map(|gap| {
                let payload =
                    Payload::Transfer { to: Address::of(&SigningKey::from_seed([9; 32]).public_key()), amount: 1 };
                Transaction { chain_id: chain_id(), signer: cluster.faucet.public_key(), nonce: 10 + gap, payload }
                    .sign(&cluster.faucet)
            })
            .collect();
        let over_http = tokio::spawn({
            let (http, transaction) = (http.clone(), hex(&waiting[0]));
            async move { http.tx_submit_and_wait(transaction, Some(60_000)).await }
        });
        let ws = std::sync::Arc::new(ws);
        let over_ws = tokio::spawn({
            let (ws, transaction) = (ws.clone(), hex(&waiting[1]));
            async move { ws.tx_submit_and_wait(transaction, Some(60_000)).await }
        });
        for transaction in &waiting {
            let hash = transaction.hash();
            let mut pending = false;
            for _ in 0..100 {
                if http.tx_get(hash).await.expect("tx_get").status == TxState::Pending {
                    pending = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            assert!(pending, "the waiting call's transaction never reached the mempool");
        }
        assert!(!over_http.is_finished() && !over_ws.is_finished(), "a call ended before the shutdown");

        // Well under the calls' 60 s: the node gives its RPC server a 3 s grace.
        let stopped = tokio::time::timeout(Duration::from_secs(20), cluster.stop(0)).await;
        assert!(stopped.is_ok(), "the node did not stop within 20 s with calls open");

        fn ended<T>(what: &str) -> T {
            panic!("the {what} outlived the node")
        }
        let http_answer =
            tokio::time::timeout(Duration::from_secs(20), over_http).await.unwrap_or_else(|_| ended("HTTP call"));
        assert!(http_answer.expect("task").is_err(), "a waiting call answered success from a stopped node");
        let ws_answer =
            tokio::time::timeout(Duration::from_secs(20), over_ws).await.unwrap_or_else(|_| ended("WebSocket call"));
        assert!(ws_answer.expect("task").is_err(), "a waiting call answered success from a stopped node");
        // Blocks committed before the stop may still arrive; then the subscription must end.
        while let Some(Ok(_)) = tokio::time::timeout(Duration::from_secs(20), subscription.next())
            .await
            .unwrap_or_else(|_| ended("subscription"))
        {}
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
        let (answers, upgrades) = tokio::task::spawn_blocking(move || {
            let answers = [
                preflight(open, "http://allowed.test"),
                preflight(open, "http://evil.test"),
                preflight(closed, "http://allowed.test"),
            ];
            // By default no web page at all may open a WebSocket (CORS does not cover them).
            let upgrades = [
                status_of(closed, &upgrade(&closed.to_string(), Some("http://allowed.test"))),
                status_of(closed, &upgrade(&closed.to_string(), None)),
            ];
            (answers, upgrades)
        })
        .await
        .expect("task");
        assert!(answers[0].contains("access-control-allow-origin: http://allowed.test"), "{}", answers[0]);
        assert!(!answers[1].contains("access-control-allow-origin"), "{}", answers[1]);
        assert!(answers[1].starts_with("http/1.1 403"), "{}", answers[1]);
        // The default (no origins) sends no CORS headers at all.
        assert!(!answers[2].contains("access-control-allow-origin"), "{}", answers[2]);
        assert_eq!(upgrades, [403, 101]);
        cluster.stop_all().await;
    });
}

/// A WebSocket upgrade request with this `Host` and, if given, this `Origin` (as a browser sends).
fn upgrade(host: &str, origin: Option<&str>) -> String {
    let origin = origin.map(|origin| format!("Origin: {origin}\r\n")).unwrap_or_default();
    format!(
        "GET / HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{origin}\r\n"
    )
}

/// Sends a request head and returns the status of the answer, reading only the answer's head
/// (an upgraded connection stays open).
fn status_of(address: SocketAddr, head: &str) -> u16 {
    let mut stream = TcpStream::connect(address).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    stream.write_all(head.as_bytes()).expect("write");
    let mut answer = Vec::new();
    let mut byte = [0u8; 1];
    while !answer.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => answer.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&answer).split_whitespace().nth(1).and_then(|code| code.parse().ok()).unwrap_or(0)
}

#[test]
fn web_pages_get_403_unless_their_origin_and_host_are_allowed() {
    run(LIMIT, || async {
        let mut cluster = Cluster::generate(1);
        let mut config = cluster.config(0);
        config.rpc.cors_origins = vec!["http://allowed.test".to_string()];
        config.rpc.allowed_hosts = vec!["node.test".to_string()];
        cluster.start_with(0, config).await;
        let address = cluster.node(0).rpc_address;
        let port = address.port();
        let answers = tokio::task::spawn_blocking(move || {
            let call = br#"{"jsonrpc":"2.0","id":1,"method":"chain_status","params":[]}"#;
            let host = format!("127.0.0.1:{port}");
            let post_with = |headers: String| post_as(address, &headers, call).0;
            [
                // A page of another origin (or a sandboxed one) may not open a WebSocket...
                status_of(address, &upgrade(&host, Some("http://evil.example"))),
                status_of(address, &upgrade(&host, Some("null"))),
                // ...a page of an allowed origin may, and so may any client that is no browser.
                status_of(address, &upgrade(&host, Some("http://allowed.test"))),
                status_of(address, &upgrade(&host, None)),
                // DNS rebinding: the attacker's name re-pointed at 127.0.0.1 arrives as the host.
                status_of(address, &upgrade(&format!("evil.example:{port}"), None)),
                post_with(format!("Host: evil.example:{port}\r\n")),
                post_with(format!("Host: 127.0.0.1.evil.example:{port}\r\n")),
                // The address, localhost and the configured name pass.
                post_with(format!("Host: {host}\r\n")),
                post_with(format!("Host: localhost:{port}\r\n")),
                post_with(format!("Host: node.test:{port}\r\n")),
                // A cross-origin fetch: refused from another origin, served from the allowed one.
                post_with(format!("Host: {host}\r\nOrigin: http://evil.example\r\n")),
                post_with(format!("Host: {host}\r\nOrigin: http://allowed.test\r\n")),
            ]
        })
        .await
        .expect("task");
        assert_eq!(answers, [403, 403, 101, 101, 403, 403, 403, 200, 200, 200, 403, 200]);
        // Rust clients send no Origin: they work as before, over HTTP and WebSocket.
        let ws = WsClientBuilder::default().build(format!("ws://{address}")).await.expect("ws client");
        ws.chain_status().await.expect("chain_status over WebSocket");
        let http = HttpClientBuilder::default().build(format!("http://localhost:{port}")).expect("client");
        http.chain_status().await.expect("chain_status over HTTP");
        cluster.stop_all().await;
    });
}

/// The code and message of a JSON-RPC error.
fn refusal(result: Result<impl std::fmt::Debug, ClientError>) -> (i32, String) {
    match result {
        Err(ClientError::Call(error)) => (error.code(), error.message().to_string()),
        other => panic!("expected a JSON-RPC error, got {other:?}"),
    }
}

#[test]
fn with_a_submit_token_only_its_holders_submit_and_reads_stay_open() {
    run(LIMIT, || async {
        const TOKEN: &str = "s3cret-submit-token-0123456789";
        let mut cluster = Cluster::generate(1);
        std::fs::write(cluster.home(0).join("rpc.token"), format!("{TOKEN}\n")).expect("token file");
        let mut config = cluster.config(0);
        config.rpc.submit_token_file = Some("rpc.token".into());
        cluster.start_with(0, config).await;
        cluster.wait_height(1).await;
        let address = cluster.node(0).rpc_address;
        let url = format!("http://{address}");
        let holding = |token: &str| {
            let headers = rpc::access::bearer_headers(token).expect("headers");
            HttpClientBuilder::default().set_headers(headers).build(&url).expect("client")
        };
        let anonymous = HttpClientBuilder::default().build(&url).expect("client");

        // Reads need no token.
        anonymous.chain_status().await.expect("chain_status");
        // Submissions without it, or with another, are refused with a clear error, and admit nothing.
        let transfer = cluster.transfer(1);
        let (code, message) = refusal(anonymous.tx_submit(hex(&transfer)).await);
        assert_eq!(code, error::UNAUTHORIZED);
        assert!(message.contains("Authorization: Bearer"), "{message}");
        let (code, message) = refusal(holding("not-the-token-0123456789").tx_submit(hex(&transfer)).await);
        assert_eq!(code, error::UNAUTHORIZED);
        assert!(message.contains("another"), "{message}");
        let (code, _) = refusal(anonymous.tx_submit_and_wait(hex(&transfer), Some(1_000)).await);
        assert_eq!(code, error::UNAUTHORIZED);
        assert_eq!(anonymous.tx_get(transfer.hash()).await.expect("tx_get").status, TxState::Unknown);
        // In a batch the submission is refused and the read beside it answered.
        let batch = format!(
            r#"[{{"jsonrpc":"2.0","id":1,"method":"tx_submit","params":["{}"]}},{{"jsonrpc":"2.0","id":2,"method":"chain_status","params":[]}}]"#,
            hex(&transfer)
        );
        let (_, body) = tokio::task::spawn_blocking(move || post(address, batch.as_bytes())).await.expect("task");
        let responses: Vec<serde_json::Value> = serde_json::from_str(&body).expect("a JSON array");
        assert_eq!(responses[0]["error"]["code"], error::UNAUTHORIZED, "{body}");
        assert!(responses[1]["result"]["height"].is_u64(), "{body}");

        // With the token: admitted and committed.
        let authorized = holding(TOKEN);
        let waited = authorized.tx_submit_and_wait(hex(&transfer), Some(30_000)).await.expect("with the token");
        assert_eq!(waited.status, TxState::Committed);
        authorized.tx_submit(hex(&cluster.transfer(1))).await.expect("tx_submit with the token");
        // Over a WebSocket, the token of the upgrade request counts for every call.
        let headers = rpc::access::bearer_headers(TOKEN).expect("headers");
        let ws = WsClientBuilder::default().set_headers(headers).build(format!("ws://{address}")).await.expect("ws");
        ws.tx_submit(hex(&cluster.transfer(1))).await.expect("over WebSocket with the token");
        let ws_anonymous = WsClientBuilder::default().build(format!("ws://{address}")).await.expect("ws");
        assert_eq!(refusal(ws_anonymous.tx_submit(hex(&cluster.transfer(1))).await).0, error::UNAUTHORIZED);
        ws_anonymous.chain_status().await.expect("reads over WebSocket need no token");
        cluster.stop_all().await;
    });
}

#[test]
fn block_pages_and_batches_of_them_stay_within_the_response_budget() {
    run(LIMIT, || async {
        const MAX_RESPONSE_BYTES: u32 = 200_000;
        let mut cluster = Cluster::generate(1);
        let mut config = cluster.config(0);
        config.rpc.max_response_bytes = MAX_RESPONSE_BYTES;
        // One read at a time: every call below still completes, queued for the one permit.
        config.rpc.read_threads = 1;
        cluster.start_with(0, config).await;
        cluster.wait_height(1).await;
        let address = cluster.node(0).rpc_address;
        let client = HttpClientBuilder::default().build(format!("http://{address}")).expect("client");
        // Blocks of about 66 KB of JSON each: a 16 KiB record value, twice as hex.
        for index in 0..6u8 {
            let put = cluster.faucet_tx(Payload::PutRecord { key: vec![index], value: vec![index; 16 * 1024] });
            client.tx_submit_and_wait(hex(&put), Some(30_000)).await.expect("committed");
        }
        let head = client.chain_status().await.expect("chain_status").height;

        // One call: a shorter page rather than an error; paging on from the last height + 1
        // fetches the rest.
        let page = client.chain_get_blocks(1, head).await.expect("a page within the budget");
        assert!(!page.is_empty() && (page.len() as u64) < head, "{} of {head} blocks", page.len());
        let mut fetched = page.len() as u64;
        while fetched < head {
            let next = client.chain_get_blocks(fetched + 1, head).await.expect("the next page");
            assert_eq!(next.first().map(|block| block.header.height), Some(fetched + 1));
            fetched += next.len() as u64;
        }

        // A batch of 100 such calls shares one budget: 100 answers within the limit (pages while
        // the budget lasts, then -32008), not 100 full pages built before the limit applies.
        let call = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"chain_getBlocks","params":[1,{head}]}}"#);
        let batch = format!("[{}]", vec![call; 100].join(","));
        let (status, body) = tokio::task::spawn_blocking(move || post(address, batch.as_bytes())).await.expect("task");
        assert_eq!(status, 200);
        assert!(body.len() <= MAX_RESPONSE_BYTES as usize, "{} bytes", body.len());
        let responses: Vec<serde_json::Value> =
            serde_json::from_str(&body).expect("an array of answers, not one error for the whole batch");
        assert_eq!(responses.len(), 100);
        let pages = responses
            .iter()
            .filter(|response| response["result"].as_array().is_some_and(|page| !page.is_empty()))
            .count();
        let refused =
            responses.iter().filter(|response| response["error"]["code"] == error::RESPONSE_TOO_LARGE).count();
        assert!(pages >= 1 && refused >= 1 && pages + refused == 100, "{pages} pages, {refused} refused: {body:.500}");
        cluster.stop_all().await;
    });
}
