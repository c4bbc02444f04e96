//! The flood behind `stele bench --flood` and the flood test: many concurrent HTTP and WebSocket
//! connections (more than `rpc.max_connections`), bodies over `rpc.max_request_bytes` (declared
//! and chunked), batches over `rpc.max_batch`, malformed JSON, bodies trickled in too slowly,
//! idle connections, WebSockets asking for more subscriptions than allowed, and a mempool flood of
//! valid-looking transfers from accounts that hold the transact role but no balance, half of them
//! at future nonces (so they wait behind a gap).
//!
//! Every answer is recorded by kind of request, as `"<HTTP status> <JSON-RPC code>"` (or what
//! went wrong at the socket), so a caller can check that each abuse got its documented refusal.
//! Bad requests are written as raw HTTP/1.1 over TCP: a client library would refuse to send them.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use consensus::{ChainId, Digest, SigningKey};
use jsonrpsee::{
    core::{
        client::{ClientT, Error as ClientError, SubscriptionClientT},
        params::BatchRequestBuilder,
    },
    http_client::HttpClientBuilder,
    rpc_params,
    ws_client::WsClientBuilder,
};
use ledger::{Address, Payload, Role, Transaction};
use rpc::{
    api::SteleApiClient,
    types::{TxState, to_hex},
};
use serde::Serialize;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::Error;

/// What to flood one node with.
#[derive(Clone, Debug)]
pub struct FloodSpec {
    /// The flooded node's JSON-RPC URL (`http://127.0.0.1:PORT`).
    pub rpc: String,
    /// How long the flood lasts.
    pub duration: Duration,
    /// Concurrent raw HTTP connections sending bad requests (kinds take turns across them).
    pub http_connections: usize,
    /// TCP connections opened and left idle (closed by the node after `rpc.idle_timeout`).
    pub idle_connections: usize,
    /// WebSocket connections, each subscribing one more time than allowed.
    pub ws_connections: usize,
    /// The node's `rpc.max_request_bytes` (bodies are made larger).
    pub max_request_bytes: usize,
    /// The node's `rpc.max_batch` (batches are made longer).
    pub max_batch: usize,
    /// The node's `rpc.max_subscriptions_per_connection`.
    pub max_subscriptions: usize,
    /// The mempool flood, if any.
    pub mempool: Option<MempoolFlood>,
}

/// A flood of valid-looking transactions.
#[derive(Clone, Debug)]
pub struct MempoolFlood {
    /// A key with the admin role: grants the transact role to the flooding accounts (before the
    /// flood, not timed).
    pub funder: SigningKey,
    /// Flooding accounts (transact role, no balance); at least `in_flight`.
    pub accounts: u64,
    /// Transactions per `tx_submit` batch (at most `rpc.max_batch`).
    pub batch: usize,
    /// Batches in flight at once.
    pub in_flight: usize,
}

/// What the flood sent and how the node answered.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct FloodReport {
    /// How long it ran, in seconds.
    pub seconds: f64,
    /// Per kind of request, each answer (`"413 -32007"`, `"429"`, `"reset"`) and how often.
    pub answers: BTreeMap<String, BTreeMap<String, u64>>,
    /// Transactions offered by the mempool flood (signed fresh as fast as the node answers,
    /// refused executable ones offered again: compare with `mempool.max_txs`).
    pub mempool_offered: u64,
    /// Of those, admitted.
    pub mempool_admitted: u64,
    /// Of those, refused, by JSON-RPC code (`"1008"` is mempool full).
    pub mempool_refused: BTreeMap<String, u64>,
}

impl FloodReport {
    /// How often requests of `kind` got `answer`.
    pub fn count(&self, kind: &str, answer: &str) -> u64 {
        self.answers.get(kind).and_then(|answers| answers.get(answer)).copied().unwrap_or(0)
    }
}

/// The kinds of bad HTTP request, in the order connections take them.
pub const HTTP_KINDS: [&str; 6] =
    ["oversized", "oversized_chunked", "long_batch", "malformed", "not_json", "slow_body"];

type Answers = Arc<Mutex<BTreeMap<String, BTreeMap<String, u64>>>>;

/// The mempool flood's running totals: offered, admitted, refused by code.
type Totals = Arc<Mutex<(u64, u64, BTreeMap<String, u64>)>>;

fn record(answers: &Answers, kind: &str, answer: String) {
    if let Ok(mut answers) = answers.lock() {
        *answers.entry(kind.to_string()).or_default().entry(answer).or_default() += 1;
    }
}

fn launch_error(what: impl std::fmt::Display) -> Error {
    Error::Launch(what.to_string())
}

/// `host:port` of an `http://host:port` URL.
fn authority(url: &str) -> Result<String, Error> {
    let rest = url.strip_prefix("http://").ok_or_else(|| launch_error(format!("{url}: expected http://host:port")))?;
    Ok(rest.trim_end_matches('/').to_string())
}

/// A response read off a raw connection.
struct Response {
    status: u16,
    body: Vec<u8>,
    /// The server will close the connection (or did).
    closing: bool,
}

/// The label of an answer: the status and, for a JSON-RPC error object, its code.
fn label(response: &Response) -> String {
    match serde_json::from_slice::<serde_json::Value>(&response.body) {
        Ok(serde_json::Value::Array(items)) => format!("{} array of {}", response.status, items.len()),
        Ok(value) => match value.get("error").and_then(|error| error.get("code")) {
            Some(code) => format!("{} {code}", response.status),
            None if value.get("result").is_some() => format!("{} result", response.status),
            None => response.status.to_string(),
        },
        Err(_) => response.status.to_string(),
    }
}

fn io_label(error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe => "reset".to_string(),
        std::io::ErrorKind::UnexpectedEof => "closed".to_string(),
        std::io::ErrorKind::TimedOut => "timeout".to_string(),
        kind => format!("io {kind}"),
    }
}

/// Reads one HTTP/1.1 response (headers, then `content-length` bytes of body, or to the end).
async fn read_response(reader: &mut (impl AsyncReadExt + Unpin)) -> std::io::Result<Response> {
    let mut buffer = Vec::with_capacity(1024);
    let mut chunk = [0u8; 8192];
    let header_end = loop {
        if let Some(at) = buffer.windows(4).position(|window| window == b"\r\n\r\n") {
            break at + 4;
        }
        let read = reader.read(&mut chunk).await?;
        if read == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buffer.extend_from_slice(&chunk[..read]);
        if buffer.len() > 64 * 1024 {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "response head too long"));
        }
    };
    let head = String::from_utf8_lossy(&buffer[..header_end]).to_ascii_lowercase();
    let status = head.split_whitespace().nth(1).and_then(|code| code.parse().ok()).unwrap_or(0);
    let header = |name: &str| {
        head.lines().find_map(|line| line.strip_prefix(name).map(|value| value.trim().trim_start_matches(':').trim()))
    };
    let length: Option<usize> = header("content-length").and_then(|value| value.parse().ok());
    let closing = header("connection").is_some_and(|value| value == "close");
    let mut body = buffer[header_end..].to_vec();
    match length {
        Some(length) => {
            while body.len() < length {
                let read = reader.read(&mut chunk).await?;
                if read == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..read]);
            }
            body.truncate(length);
        }
        None => {
            reader.read_to_end(&mut body).await?;
        }
    }
    Ok(Response { status, body, closing: closing || length.is_none() })
}

fn post_head(host: &str, length: Option<usize>, close: bool) -> String {
    let length = match length {
        Some(length) => format!("content-length: {length}\r\n"),
        None => "transfer-encoding: chunked\r\n".to_string(),
    };
    let connection = if close { "connection: close\r\n" } else { "" };
    format!("POST / HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\n{length}{connection}\r\n")
}

/// One request on a fresh connection, written while the answer is read (a server that answers
/// before the body is all sent is still heard). `pause` slows the body down to a trickle.
async fn one_shot(host: &str, request: Vec<Vec<u8>>, pause: Option<Duration>, timeout: Duration) -> String {
    let stream = match tokio::time::timeout(timeout, TcpStream::connect(host)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => return format!("connect {}", io_label(&error)),
        Err(_) => return "connect timeout".to_string(),
    };
    let (mut reader, mut writer) = stream.into_split();
    let writing = tokio::spawn(async move {
        for piece in request {
            if writer.write_all(&piece).await.is_err() {
                break;
            }
            if let Some(pause) = pause {
                tokio::time::sleep(pause).await;
            }
        }
        // Kept open (a dropped half would half-close the connection) until aborted below.
        std::future::pending::<()>().await;
    });
    let answer = match tokio::time::timeout(timeout, read_response(&mut reader)).await {
        Ok(Ok(response)) => label(&response),
        Ok(Err(error)) => io_label(&error),
        Err(_) => "timeout".to_string(),
    };
    writing.abort();
    answer
}

/// One connection's loop: requests of `kind` until `deadline`. Requests the node answers and
/// keeps the connection for (malformed JSON, long batches) reuse it, as a real client would.
async fn http_abuser(host: String, kind: &'static str, spec: Arc<FloodSpec>, deadline: Instant, answers: Answers) {
    let over = spec.max_request_bytes + 1024;
    let timeout = Duration::from_secs(30);
    let mut kept: Option<TcpStream> = None;
    while Instant::now() < deadline {
        let answer = match kind {
            "oversized" => {
                // Declared too large: refused from the head alone, so the body is never sent.
                one_shot(&host, vec![post_head(&host, Some(over), true).into_bytes()], None, timeout).await
            }
            "oversized_chunked" => {
                // No length to refuse up front: the node must stop reading at the limit. The
                // body starts like a call (a body that does not is refused at its first bytes).
                let mut pieces = vec![post_head(&host, None, true).into_bytes()];
                let start = br#"{"jsonrpc":"2.0","id":1,"method":"tx_submit","params":["0x"#;
                let chunk = |data: &[u8]| [format!("{:x}\r\n", data.len()).as_bytes(), data, b"\r\n"].concat();
                pieces.push(chunk(start));
                let zeros = chunk(&[b'0'; 64 * 1024]);
                pieces.extend(std::iter::repeat_n(zeros, over.div_ceil(64 * 1024)));
                pieces.push(chunk(br#""]}"#));
                pieces.push(b"0\r\n\r\n".to_vec());
                one_shot(&host, pieces, None, timeout).await
            }
            "slow_body" => {
                // Promises 1 KiB, sends 16 bytes a second: the node must give up on it.
                let mut body = vec![b' '; 1024];
                body[0] = b'{';
                let mut pieces = vec![post_head(&host, Some(body.len()), true).into_bytes()];
                pieces.extend(body.chunks(16).map(<[u8]>::to_vec));
                let slow = deadline.saturating_duration_since(Instant::now()) + timeout;
                one_shot(&host, pieces, Some(Duration::from_secs(1)), slow).await
            }
            _ => {
                let body = match kind {
                    "long_batch" => {
                        let calls: Vec<String> = (0..=spec.max_batch)
                            .map(|id| format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"chain_status"}}"#))
                            .collect();
                        format!("[{}]", calls.join(","))
                    }
                    // Starts like JSON, is not.
                    "malformed" => r#"{"jsonrpc":"2.0","id":1,"method":"chain_status","params":[}"#.to_string(),
                    _ => "this is not JSON at all".to_string(),
                };
                let stream = match kept.take() {
                    Some(stream) => Ok(stream),
                    None => TcpStream::connect(host.as_str()).await,
                };
                match stream {
                    Err(error) => format!("connect {}", io_label(&error)),
                    Ok(mut stream) => {
                        let mut request = post_head(&host, Some(body.len()), false).into_bytes();
                        request.extend_from_slice(body.as_bytes());
                        let exchange = async {
                            stream.write_all(&request).await?;
                            read_response(&mut stream).await
                        };
                        match tokio::time::timeout(timeout, exchange).await {
                            Ok(Ok(response)) => {
                                if !response.closing {
                                    kept = Some(stream);
                                }
                                label(&response)
                            }
                            Ok(Err(error)) => io_label(&error),
                            Err(_) => "timeout".to_string(),
                        }
                    }
                }
            }
        };
        record(&answers, kind, answer);
    }
}

/// Opens a connection and sends nothing, until the node closes it or the flood ends; again.
async fn idle_holder(host: String, deadline: Instant, answers: Answers) {
    while Instant::now() < deadline {
        let mut stream = match TcpStream::connect(host.as_str()).await {
            Ok(stream) => stream,
            Err(error) => {
                record(&answers, "idle", format!("connect {}", io_label(&error)));
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let remaining = deadline.saturating_duration_since(Instant::now());
        let answer = match tokio::time::timeout(remaining, read_response(&mut stream)).await {
            Ok(Ok(response)) => label(&response),
            // The node closed it without a word: the idle timeout.
            Ok(Err(error)) if error.kind() == std::io::ErrorKind::UnexpectedEof => "closed idle".to_string(),
            Ok(Err(error)) => io_label(&error),
            Err(_) => "held".to_string(),
        };
        let refused = answer.starts_with("429");
        record(&answers, "idle", answer);
        if refused {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// A WebSocket that subscribes one more time than allowed, then calls `chain_status` until the
/// flood ends.
async fn ws_user(url: String, spec: Arc<FloodSpec>, deadline: Instant, answers: Answers) {
    while Instant::now() < deadline {
        let client = match WsClientBuilder::default().request_timeout(Duration::from_secs(30)).build(&url).await {
            Ok(client) => client,
            Err(error) => {
                let answer =
                    if error.to_string().contains("429") { "429".to_string() } else { "connect failed".into() };
                record(&answers, "ws_connect", answer);
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        record(&answers, "ws_connect", "open".to_string());
        let mut subscriptions = Vec::new();
        for _ in 0..=spec.max_subscriptions {
            let subscribed = client
                .subscribe::<serde_json::Value, _>("chain_subscribeBlocks", rpc_params![], "chain_unsubscribeBlocks")
                .await;
            match subscribed {
                Ok(subscription) => {
                    record(&answers, "ws_subscribe", "ok".to_string());
                    subscriptions.push(subscription);
                }
                Err(ClientError::Call(error)) => record(&answers, "ws_subscribe", error.code().to_string()),
                Err(_) => record(&answers, "ws_subscribe", "failed".to_string()),
            }
        }
        while Instant::now() < deadline && client.is_connected() {
            let answer = match client.chain_status().await {
                Ok(_) => "ok".to_string(),
                Err(ClientError::Call(error)) => error.code().to_string(),
                Err(_) => "failed".to_string(),
            };
            record(&answers, "ws_call", answer);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        drop(subscriptions);
    }
}

/// How far ahead of an account's next nonce the gapped transactions are (within the default
/// `mempool.max_nonce_ahead`).
const GAP: u64 = 500;

/// The next `batch` transactions of a mempool flood lane, as (account index, nonce, executable):
/// accounts take turns, and rounds alternate between each account's next nonce (it executes and
/// fails: no balance) and one [`GAP`] ahead of it (it waits behind a gap).
fn plan(next: &mut [u64], turn: &mut usize, batch: usize) -> Vec<(usize, u64, bool)> {
    let mut planned = Vec::with_capacity(batch);
    if next.is_empty() {
        return planned;
    }
    for _ in 0..batch {
        let (index, round) = (*turn % next.len(), *turn / next.len());
        *turn += 1;
        if round % 2 == 0 {
            planned.push((index, next[index], true));
            next[index] += 1;
        } else {
            planned.push((index, next[index] + GAP, false));
        }
    }
    planned
}

/// Grants the transact role (and no balance) to fresh accounts; returns them once granted.
pub async fn prepare_mempool_flood(rpc: &str, flood: &MempoolFlood) -> Result<(ChainId, Vec<SigningKey>), Error> {
    let client = HttpClientBuilder::default()
        .request_timeout(Duration::from_secs(120))
        .build(rpc)
        .map_err(|error| launch_error(format!("{rpc}: {error}")))?;
    let chain_id = client.chain_status().await.map_err(launch_error)?.chain_id;
    let funder = Address::of(&flood.funder.public_key());
    let nonce = client.state_get_account(funder, None).await.map_err(launch_error)?.nonce;
    let accounts: Vec<SigningKey> =
        (0..flood.accounts).map(|_| SigningKey::generate().map_err(launch_error)).collect::<Result<_, _>>()?;
    let grants: Vec<String> = accounts
        .iter()
        .enumerate()
        .map(|(index, key)| {
            let payload = Payload::GrantRole { account: Address::of(&key.public_key()), role: Role::Transact };
            let transaction = Transaction {
                chain_id: chain_id.clone(),
                signer: flood.funder.public_key(),
                nonce: nonce + index as u64,
                payload,
            };
            to_hex(&transaction.sign(&flood.funder).encode())
        })
        .collect();
    for chunk in grants.chunks(flood.batch.max(1)) {
        let mut request = BatchRequestBuilder::new();
        for transaction in chunk {
            request.insert("tx_submit", rpc_params![transaction]).map_err(launch_error)?;
        }
        let responses = client.batch_request::<serde_json::Value>(request).await.map_err(launch_error)?;
        if let Some(Err(error)) = responses.into_iter().find(Result::is_err) {
            return Err(launch_error(format!("granting the flood accounts a role: {}", error.message())));
        }
    }
    // The last grant committed means all did (one account's nonces commit in order). It may be
    // committed already, so ask for it rather than submit it again.
    if let Some(last) = grants.last() {
        let hash = Digest::of(&rpc::types::from_hex(last).map_err(launch_error)?);
        let deadline = Instant::now() + Duration::from_secs(60);
        while client.tx_get(hash).await.map_err(launch_error)?.status != TxState::Committed {
            if Instant::now() > deadline {
                return Err(launch_error("granting the flood accounts a role: not committed within 60 s"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok((chain_id, accounts))
}

/// One lane of the mempool flood: signs fresh transfers for its accounts (see [`plan`]) and
/// offers them in batches until `deadline`; an executable nonce the node refused (mempool full)
/// is offered again, as a client that wants in would.
async fn mempool_flooder(
    rpc: String,
    chain_id: ChainId,
    accounts: Vec<SigningKey>,
    flood: MempoolFlood,
    deadline: Instant,
    totals: Totals,
) {
    let Ok(client) = HttpClientBuilder::default().request_timeout(Duration::from_secs(60)).build(&rpc) else {
        return;
    };
    let recipient = Address::of(&SigningKey::from_seed([0xf1; 32]).public_key());
    let (mut next, mut turn) = (vec![0u64; accounts.len()], 0usize);
    while Instant::now() < deadline && !accounts.is_empty() {
        let planned = plan(&mut next, &mut turn, flood.batch.max(1));
        let mut request = BatchRequestBuilder::new();
        for (index, nonce, _) in &planned {
            let key = &accounts[*index];
            let payload = Payload::Transfer { to: recipient, amount: 1 };
            let transaction =
                Transaction { chain_id: chain_id.clone(), signer: key.public_key(), nonce: *nonce, payload };
            if request.insert("tx_submit", rpc_params![to_hex(&transaction.sign(key).encode())]).is_err() {
                return;
            }
        }
        let (mut admitted, mut refused) = (0, BTreeMap::<String, u64>::new());
        match client.batch_request::<serde_json::Value>(request).await {
            Ok(responses) => {
                for (response, (index, nonce, executable)) in responses.into_iter().zip(&planned) {
                    match response {
                        Ok(_) => admitted += 1,
                        Err(error) => {
                            *refused.entry(error.code().to_string()).or_default() += 1;
                            if *executable && error.code() == rpc::error::MEMPOOL_FULL {
                                next[*index] = next[*index].min(*nonce);
                            }
                        }
                    }
                }
            }
            // Refused whole (connections over the limit): offered again later.
            Err(error) => {
                let reason = if error.to_string().contains("429") { "429" } else { "failed" };
                *refused.entry(reason.to_string()).or_default() += planned.len() as u64;
                for (index, nonce, executable) in &planned {
                    if *executable {
                        next[*index] = next[*index].min(*nonce);
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        if let Ok(mut totals) = totals.lock() {
            totals.0 += planned.len() as u64;
            totals.1 += admitted;
            for (code, count) in refused {
                *totals.2.entry(code).or_default() += count;
            }
        }
    }
}

/// Runs the flood against `spec.rpc` for `spec.duration` (the mempool flood's accounts already
/// prepared with [`prepare_mempool_flood`], if any) and reports every answer.
pub async fn run(spec: FloodSpec, mempool_accounts: Option<(ChainId, Vec<SigningKey>)>) -> Result<FloodReport, Error> {
    let host = authority(&spec.rpc)?;
    let ws_url = spec.rpc.replacen("http://", "ws://", 1);
    let spec = Arc::new(spec);
    let answers: Answers = Arc::default();
    let totals: Totals = Arc::default();
    let started = Instant::now();
    let deadline = started + spec.duration;
    let mut tasks = Vec::new();
    for index in 0..spec.http_connections {
        let kind = HTTP_KINDS[index % HTTP_KINDS.len()];
        tasks.push(tokio::spawn(http_abuser(host.clone(), kind, spec.clone(), deadline, answers.clone())));
    }
    for _ in 0..spec.idle_connections {
        tasks.push(tokio::spawn(idle_holder(host.clone(), deadline, answers.clone())));
    }
    for _ in 0..spec.ws_connections {
        tasks.push(tokio::spawn(ws_user(ws_url.clone(), spec.clone(), deadline, answers.clone())));
    }
    if let (Some(flood), Some((chain_id, accounts))) = (&spec.mempool, &mempool_accounts) {
        let lanes = flood.in_flight.max(1);
        for lane in 0..lanes {
            let mine: Vec<SigningKey> = accounts.iter().skip(lane).step_by(lanes).cloned().collect();
            let (rpc, chain_id, flood, totals) = (spec.rpc.clone(), chain_id.clone(), flood.clone(), totals.clone());
            tasks.push(tokio::spawn(mempool_flooder(rpc, chain_id, mine, flood, deadline, totals)));
        }
    }
    // Every task stops at the deadline but may be inside one exchange (a slow body waits for
    // the node's rpc.request_body_timeout): past a short grace the rest are dropped, so the flood
    // ends when it says.
    let grace = deadline + Duration::from_secs(3);
    for task in tasks {
        let remaining = grace.saturating_duration_since(Instant::now());
        let abort = task.abort_handle();
        if tokio::time::timeout(remaining, task).await.is_err() {
            abort.abort();
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let answers = answers.lock().map(|answers| answers.clone()).unwrap_or_default();
    let (offered, admitted, refused) = totals.lock().map(|totals| totals.clone()).unwrap_or_default();
    Ok(FloodReport { seconds, answers, mempool_offered: offered, mempool_admitted: admitted, mempool_refused: refused })
}

/// The resident set size of a process, in KiB (`VmRSS` in `/proc/PID/status`).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().strip_suffix("kB").and_then(|number| number.trim().parse().ok()))
}

/// The process listening on TCP `port` (Linux: the listening socket's inode in
/// `/proc/net/tcp{,6}`, then the process holding that socket among `/proc/*/fd`).
pub fn pid_listening_on(port: u16) -> Option<u32> {
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else { continue };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // local_address is HEXIP:HEXPORT; state 0A is LISTEN; the inode is field 9.
            let (Some(local), Some(state), Some(inode)) = (fields.get(1), fields.get(3), fields.get(9)) else {
                continue;
            };
            let listening_port = local.rsplit(':').next().and_then(|hex| u16::from_str_radix(hex, 16).ok());
            if *state == "0A" && listening_port == Some(port) {
                inodes.push(format!("socket:[{inode}]"));
            }
        }
    }
    if inodes.is_empty() {
        return None;
    }
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|name| name.parse::<u32>().ok()) else { continue };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else { continue };
        for fd in fds.flatten() {
            if let Ok(target) = std::fs::read_link(fd.path())
                && inodes.iter().any(|inode| target.as_os_str() == inode.as_str())
            {
                return Some(pid);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_labelled_by_status_and_code() {
        let response = |status, body: &str| Response { status, body: body.as_bytes().to_vec(), closing: false };
        let error = r#"{"jsonrpc":"2.0","error":{"code":-32010,"message":"batch too large"},"id":null}"#;
        assert_eq!(label(&response(200, error)), "200 -32010");
        assert_eq!(label(&response(200, r#"[{"result":1},{"result":2}]"#)), "200 array of 2");
        assert_eq!(label(&response(200, r#"{"jsonrpc":"2.0","result":1,"id":1}"#)), "200 result");
        assert_eq!(label(&response(429, "Too many connections")), "429");
    }

    #[tokio::test]
    async fn a_response_is_read_by_its_length() {
        let text = b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}trailing";
        let response = read_response(&mut &text[..]).await.expect("parses");
        assert_eq!((response.status, response.body.as_slice(), response.closing), (413, &b"{}"[..], true));
    }

    #[test]
    fn the_flood_alternates_executable_and_gapped_nonces() {
        let (mut next, mut turn) = (vec![0u64; 2], 0);
        let planned = plan(&mut next, &mut turn, 6);
        let gap = GAP;
        assert_eq!(
            planned,
            vec![(0, 0, true), (1, 0, true), (0, 1 + gap, false), (1, 1 + gap, false), (0, 1, true), (1, 1, true)]
        );
        assert_eq!(next, vec![2, 2]);
        // A refused executable nonce is planned again.
        next[0] = 1;
        assert_eq!(plan(&mut next, &mut turn, 2), vec![(0, 1 + gap, false), (1, 2 + gap, false)]);
        assert_eq!(plan(&mut next, &mut turn, 1), vec![(0, 1, true)]);
    }

    #[test]
    fn rss_of_this_process_is_known() {
        assert!(rss_kib(std::process::id()).is_some_and(|kib| kib > 0));
    }
}
