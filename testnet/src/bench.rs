//! The load generator behind `stele bench`: funds accounts, pre-signs transfers before the clock
//! starts, submits them across every node in JSON-RPC batches, follows commits over WebSocket
//! and reports committed tx/s and submit-to-commit latency. [`run_flood`] is `stele bench
//! --flood`: block interval, trickle commit latency and the flooded node's memory, quiet and
//! under a flood ([`crate::flood`]).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use consensus::{ChainId, Digest, SigningKey};
use jsonrpsee::{
    core::{client::ClientT, params::BatchRequestBuilder},
    http_client::{HttpClient, HttpClientBuilder},
    rpc_params,
    ws_client::WsClientBuilder,
};
use ledger::{Address, Payload, Role, SignedTransaction, Transaction};
use rpc::{
    api::SteleApiClient,
    types::{BlockId, to_hex},
};
use serde::Serialize;

use crate::Error;

/// Most transactions per account: the mempool keeps at most 1,000 per account by default.
pub const PER_ACCOUNT_MAX: u64 = 1_000;

/// What to run.
#[derive(Clone, Debug)]
pub struct BenchSpec {
    /// The nodes' JSON-RPC URLs (the first one is followed over WebSocket).
    pub rpc: Vec<String>,
    /// The key that funds the senders: it needs the admin and transact roles and a balance (a
    /// generated network's faucet has them).
    pub funder: SigningKey,
    /// Transfers to commit.
    pub txs: u64,
    /// Sending accounts.
    pub accounts: u64,
    /// Offered load in tx/s; `None` submits as fast as the nodes accept.
    pub rate: Option<u64>,
    /// Transactions per JSON-RPC batch.
    pub batch: usize,
    /// JSON-RPC batches in flight to each node at once.
    pub in_flight: usize,
    /// Give up waiting for commits after this long.
    pub timeout: Duration,
}

/// Latency percentiles, in milliseconds.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Worst.
    pub max: f64,
}

/// What a run measured.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct BenchReport {
    /// Transfers submitted (admitted by a node).
    pub submitted: u64,
    /// Submissions refused (with the first reason).
    pub refused: u64,
    /// The first refusal's message.
    pub first_refusal: Option<String>,
    /// Transfers seen committed.
    pub committed: u64,
    /// First submission to last commit, in seconds.
    pub seconds: f64,
    /// Committed transfers per second.
    pub tx_per_second: f64,
    /// Blocks carrying the load.
    pub blocks: u64,
    /// Blocks per second.
    pub blocks_per_second: f64,
    /// Mean transfers per block.
    pub txs_per_block: f64,
    /// Submit-to-commit latency (commit as seen by the first node).
    pub latency_ms: Latency,
}

fn launch_error(what: impl std::fmt::Display) -> Error {
    Error::Launch(what.to_string())
}

/// A client of `url`; it carries the submit token in `$STELE_RPC_TOKEN`, if set, for nodes that
/// require one (`rpc.submit_token_file`).
fn http(url: &str) -> Result<HttpClient, Error> {
    let mut builder = HttpClientBuilder::default().max_response_size(512 * 1024 * 1024);
    if let Some(token) = std::env::var(rpc::access::TOKEN_ENV).ok().filter(|token| !token.trim().is_empty()) {
        let headers = rpc::access::bearer_headers(&token)
            .map_err(|error| launch_error(format!("${}: {error}", rpc::access::TOKEN_ENV)))?;
        builder = builder.set_headers(headers);
    }
    builder
        .request_timeout(Duration::from_secs(120))
        .build(url)
        .map_err(|error| launch_error(format!("{url}: {error}")))
}

fn sign(chain_id: &ChainId, key: &SigningKey, nonce: u64, payload: Payload) -> SignedTransaction {
    Transaction { chain_id: chain_id.clone(), signer: key.public_key(), nonce, payload }.sign(key)
}

/// A transaction ready to submit: its hash and its 0x-hex encoding.
struct Encoded {
    hash: Digest,
    hex: String,
}

impl Encoded {
    fn of(transaction: &SignedTransaction) -> Self {
        let bytes = transaction.encode();
        Encoded { hash: Digest::of(&bytes), hex: to_hex(&bytes) }
    }
}

/// Submits one batch; returns the hashes admitted and the refusals.
async fn submit_batch(client: &HttpClient, batch: &[Encoded]) -> Result<(usize, Vec<String>), Error> {
    let mut request = BatchRequestBuilder::new();
    for transaction in batch {
        request.insert("tx_submit", rpc_params![&transaction.hex]).map_err(launch_error)?;
    }
    let responses = client.batch_request::<Digest>(request).await.map_err(launch_error)?;
    let mut refusals = Vec::new();
    let mut admitted = 0;
    for response in responses.iter() {
        match response {
            Ok(_) => admitted += 1,
            Err(error) => refusals.push(format!("{} (code {})", error.message(), error.code())),
        }
    }
    Ok((admitted, refusals))
}

/// Runs the benchmark against a running network.
pub async fn run(spec: &BenchSpec) -> Result<BenchReport, Error> {
    if spec.rpc.is_empty() {
        return Err(launch_error("at least one --rpc URL"));
    }
    if spec.accounts == 0 || spec.txs == 0 || spec.txs.div_ceil(spec.accounts) > PER_ACCOUNT_MAX {
        return Err(launch_error(format!(
            "need 1 <= txs / accounts <= {PER_ACCOUNT_MAX} (the mempool's per-account cap); use more --accounts"
        )));
    }
    let clients: Vec<HttpClient> = spec.rpc.iter().map(|url| http(url)).collect::<Result<_, _>>()?;
    let first = &clients[0];
    let chain_id = first.chain_status().await.map_err(launch_error)?.chain_id;

    // Setup (not timed): the senders get the transact role and a balance.
    let funder_nonce =
        first.state_get_account(Address::of(&spec.funder.public_key()), None).await.map_err(launch_error)?.nonce;
    let senders: Vec<SigningKey> =
        (0..spec.accounts).map(|_| SigningKey::generate().map_err(launch_error)).collect::<Result<_, _>>()?;
    let mut setup = Vec::new();
    for (index, sender) in senders.iter().enumerate() {
        let account = Address::of(&sender.public_key());
        let nonce = funder_nonce + 2 * index as u64;
        setup.push(sign(&chain_id, &spec.funder, nonce, Payload::GrantRole { account, role: Role::Transact }));
        setup.push(sign(&chain_id, &spec.funder, nonce + 1, Payload::Transfer { to: account, amount: spec.txs + 1 }));
    }
    let setup: Vec<Encoded> = setup.iter().map(Encoded::of).collect();
    for chunk in setup.chunks(spec.batch.max(1)) {
        let (_, refusals) = submit_batch(first, chunk).await?;
        if let Some(refusal) = refusals.first() {
            return Err(launch_error(format!("funding the senders: {refusal}")));
        }
    }
    if let Some(last) = setup.last() {
        // Already pending: waits for it.
        first
            .tx_submit_and_wait(last.hex.clone(), Some(60_000))
            .await
            .map_err(|error| launch_error(format!("funding: {error}")))?;
    }
    // Every node must have committed the funding before it is sent transfers: one that lags by a
    // block would refuse them (the senders would lack the transact role there).
    let funded_nonce = funder_nonce + setup.len() as u64;
    let funding_deadline = tokio::time::Instant::now() + spec.timeout;
    for client in &clients {
        while client.state_get_account(Address::of(&spec.funder.public_key()), None).await.map_err(launch_error)?.nonce
            < funded_nonce
        {
            if tokio::time::Instant::now() >= funding_deadline {
                return Err(launch_error("funding: not committed on every node in time".to_string()));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    // Pre-signed and encoded before the clock starts: per node, its senders' transfers in nonce
    // order.
    let recipient = Address::of(&SigningKey::from_seed([0xbe; 32]).public_key());
    let per_account = spec.txs.div_ceil(spec.accounts);
    let mut per_node: Vec<Vec<Encoded>> = (0..clients.len()).map(|_| Vec::new()).collect();
    let mut total = 0;
    'sign: for nonce in 0..per_account {
        for (index, sender) in senders.iter().enumerate() {
            if total == spec.txs {
                break 'sign;
            }
            let transfer = sign(&chain_id, sender, nonce, Payload::Transfer { to: recipient, amount: 1 });
            per_node[index % clients.len()].push(Encoded::of(&transfer));
            total += 1;
        }
    }
    let submitted_at: Arc<Mutex<HashMap<Digest, Instant>>> =
        Arc::new(Mutex::new(HashMap::with_capacity(total as usize)));

    let ws_url = spec.rpc[0].replacen("http://", "ws://", 1);
    let ws = WsClientBuilder::default()
        .max_response_size(512 * 1024 * 1024)
        .build(&ws_url)
        .await
        .map_err(|error| launch_error(format!("{ws_url}: {error}")))?;
    let mut blocks = ws.chain_subscribe_blocks().await.map_err(launch_error)?;

    let started = Instant::now();
    let per_node_rate = spec.rate.map(|rate| rate as f64 / clients.len() as f64);
    let mut tasks = Vec::new();
    let (batch, lanes) = (spec.batch.max(1), spec.in_flight.max(1));
    for (client, transactions) in clients.iter().cloned().zip(per_node) {
        // Each node gets `lanes` batches in flight: lane i sends batches i, i + lanes, ...
        let transactions = Arc::new(transactions);
        for lane in 0..lanes {
            let (client, transactions, submitted_at) = (client.clone(), transactions.clone(), submitted_at.clone());
            tasks.push(tokio::spawn(async move {
                let (mut admitted, mut refusals) = (0u64, Vec::new());
                for (index, chunk) in transactions.chunks(batch).enumerate().skip(lane).step_by(lanes) {
                    if let Some(rate) = per_node_rate {
                        let due = started + Duration::from_secs_f64((index * batch) as f64 / rate);
                        tokio::time::sleep_until(due.into()).await;
                    }
                    let now = Instant::now();
                    if let Ok(mut map) = submitted_at.lock() {
                        map.extend(chunk.iter().map(|tx| (tx.hash, now)));
                    }
                    let (ok, refused) = submit_batch(&client, chunk).await?;
                    admitted += ok as u64;
                    refusals.extend(refused);
                }
                Ok::<_, Error>((admitted, refusals))
            }));
        }
    }

    // Follow commits on the first node until every admitted transfer is seen.
    let mut latencies: Vec<f64> = Vec::with_capacity(total as usize);
    let (mut load_blocks, mut last_commit, mut submitted, mut refused, mut first_refusal) =
        (0u64, started, 0u64, 0u64, None);
    let mut submissions_done = false;
    let deadline = Instant::now() + spec.timeout;
    loop {
        if !submissions_done && tasks.iter().all(|task| task.is_finished()) {
            for task in tasks.drain(..) {
                let (admitted, refusals) = task.await.map_err(launch_error)??;
                submitted += admitted;
                refused += refusals.len() as u64;
                if first_refusal.is_none() {
                    first_refusal = refusals.into_iter().next();
                }
            }
            submissions_done = true;
        }
        if submissions_done && latencies.len() as u64 >= submitted {
            break;
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(launch_error(format!(
                "only {} of {} transfers committed within {} s",
                latencies.len(),
                total,
                spec.timeout.as_secs()
            )));
        }
        let header = match tokio::time::timeout(remaining.min(Duration::from_millis(500)), blocks.next()).await {
            Err(_) => continue,
            Ok(Some(Ok(header))) => header,
            Ok(Some(Err(error))) => return Err(launch_error(format!("block subscription: {error}"))),
            Ok(None) => return Err(launch_error("the block subscription closed")),
        };
        let seen = Instant::now();
        if header.tx_count == 0 {
            continue;
        }
        let block = first.chain_get_block(BlockId::Height(header.height)).await.map_err(launch_error)?;
        let mut ours = 0;
        if let Ok(map) = submitted_at.lock() {
            for transaction in &block.transactions {
                if let Some(at) = map.get(&transaction.hash) {
                    latencies.push(seen.duration_since(*at).as_secs_f64() * 1000.0);
                    ours += 1;
                }
            }
        }
        if ours > 0 {
            load_blocks += 1;
            last_commit = seen;
        }
    }
    let seconds = last_commit.duration_since(started).as_secs_f64().max(1e-9);
    latencies.sort_by(f64::total_cmp);
    let percentile = |p: f64| {
        if latencies.is_empty() {
            return 0.0;
        }
        let rank = ((p / 100.0) * latencies.len() as f64).ceil() as usize;
        latencies[rank.clamp(1, latencies.len()) - 1]
    };
    let committed = latencies.len() as u64;
    Ok(BenchReport {
        submitted,
        refused,
        first_refusal,
        committed,
        seconds,
        tx_per_second: committed as f64 / seconds,
        blocks: load_blocks,
        blocks_per_second: load_blocks as f64 / seconds,
        txs_per_block: committed as f64 / load_blocks.max(1) as f64,
        latency_ms: Latency {
            p50: percentile(50.0),
            p90: percentile(90.0),
            p99: percentile(99.0),
            max: latencies.last().copied().unwrap_or(0.0),
        },
    })
}

/// What `stele bench --flood` runs: a quiet phase, then a flood of the first node, then a
/// settling phase, with a trickle of valid transfers throughout.
#[derive(Clone, Debug)]
pub struct FloodBenchSpec {
    /// The nodes' JSON-RPC URLs: the first is flooded (and takes the trickle), blocks are
    /// followed on the last.
    pub rpc: Vec<String>,
    /// A key with the admin and transact roles and a balance (a generated network's faucet): it
    /// grants the flood accounts their role and sends the trickle.
    pub funder: SigningKey,
    /// The flooded node's process id, for its RSS; `None` finds the process listening on its
    /// RPC port.
    pub pid: Option<u32>,
    /// How long to measure before the flood.
    pub quiet: Duration,
    /// How long to measure after it.
    pub settle: Duration,
    /// Pause between one trickle transfer's commit and the next one's submission.
    pub trickle_interval: Duration,
    /// The flood (its `rpc` is the first node's).
    pub flood: crate::flood::FloodSpec,
}

/// Figures of one phase.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct PhaseFigures {
    /// How long the phase lasted, in seconds.
    pub seconds: f64,
    /// Blocks committed in the phase (as seen by the followed node).
    pub blocks: u64,
    /// Mean transactions per block.
    pub txs_per_block: f64,
    /// Intervals between consecutive blocks' timestamps, in milliseconds.
    pub block_interval_ms: Latency,
    /// Mean block interval, in milliseconds.
    pub block_interval_mean_ms: f64,
    /// Trickle transfers submitted in the phase and seen committed.
    pub trickle_committed: u64,
    /// Submit-to-commit latency of those, retries included, in milliseconds.
    pub trickle_latency_ms: Latency,
    /// Trickle submissions refused and retried (mempool full, connections), by reason.
    pub trickle_retries: std::collections::BTreeMap<String, u64>,
}

/// The flooded node's resident memory, in KiB.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct RssFigures {
    /// The process measured.
    pub pid: u32,
    /// At the end of the quiet phase.
    pub before: u64,
    /// The most seen during the flood (sampled every 200 ms).
    pub during_max: u64,
    /// At the end of the settling phase.
    pub after: u64,
}

/// What `stele bench --flood` measured.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct FloodBenchReport {
    /// Before the flood.
    pub quiet: PhaseFigures,
    /// During it.
    pub flood: PhaseFigures,
    /// After it.
    pub after: PhaseFigures,
    /// The flooded node's memory (`None` if its process was not found).
    pub rss_kib: Option<RssFigures>,
    /// Whether the flooded node answered `chain_status` after the flood.
    pub alive_after: bool,
    /// The flooded node's height then.
    pub height_after: u64,
    /// What the flood sent and how it was answered.
    pub answers: crate::flood::FloodReport,
}

/// Trickle outcomes: the phase it was submitted in, its latency if committed, a retry's reason.
type TrickleLog = Arc<Mutex<Vec<(Phase, Option<f64>, Option<String>)>>>;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Phase {
    Quiet,
    Flood,
    After,
}

fn percentiles(mut values: Vec<f64>) -> Latency {
    values.sort_by(f64::total_cmp);
    let percentile = |p: f64| {
        if values.is_empty() {
            return 0.0;
        }
        let rank = ((p / 100.0) * values.len() as f64).ceil() as usize;
        values[rank.clamp(1, values.len()) - 1]
    };
    Latency {
        p50: percentile(50.0),
        p90: percentile(90.0),
        p99: percentile(99.0),
        max: values.last().copied().unwrap_or(0.0),
    }
}

/// Runs `stele bench --flood` against a running network.
pub async fn run_flood(spec: &FloodBenchSpec) -> Result<FloodBenchReport, Error> {
    use std::sync::atomic::{AtomicBool, Ordering};

    let (Some(flooded), Some(followed)) = (spec.rpc.first(), spec.rpc.last()) else {
        return Err(launch_error("at least one --rpc URL"));
    };
    let client = http(flooded)?;
    let pid = match spec.pid {
        Some(pid) => Some(pid),
        None => flooded
            .rsplit(':')
            .next()
            .and_then(|port| port.trim_end_matches('/').parse().ok())
            .and_then(crate::flood::pid_listening_on),
    };

    // Setup (not measured): the flood accounts get the transact role.
    let prepared = match &spec.flood.mempool {
        Some(flood) => Some(crate::flood::prepare_mempool_flood(flooded, flood).await?),
        None => None,
    };
    let chain_id = client.chain_status().await.map_err(launch_error)?.chain_id;

    let ws_url = followed.replacen("http://", "ws://", 1);
    let ws = WsClientBuilder::default()
        .max_response_size(512 * 1024 * 1024)
        .build(&ws_url)
        .await
        .map_err(|error| launch_error(format!("{ws_url}: {error}")))?;
    let mut headers = ws.chain_subscribe_blocks().await.map_err(launch_error)?;

    let started = Instant::now();
    let flood_starts = started + spec.quiet;
    let flood_ends = flood_starts + spec.flood.duration;
    let phase_of = move |at: Instant| {
        if at < flood_starts {
            Phase::Quiet
        } else if at < flood_ends {
            Phase::Flood
        } else {
            Phase::After
        }
    };
    let stop = Arc::new(AtomicBool::new(false));

    // Blocks, as the followed node commits them: (phase, timestamp, transactions).
    let blocks = Arc::new(Mutex::new(Vec::<(Phase, u64, usize)>::new()));
    let follower = {
        let (blocks, stop) = (blocks.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match tokio::time::timeout(Duration::from_millis(500), headers.next()).await {
                    Ok(Some(Ok(header))) => {
                        if let Ok(mut blocks) = blocks.lock() {
                            blocks.push((phase_of(Instant::now()), header.timestamp_ms, header.tx_count));
                        }
                    }
                    Ok(Some(Err(_)) | None) => return,
                    Err(_) => {}
                }
            }
        })
    };

    // The trickle: one valid transfer at a time, retried while the node refuses it.
    let trickle: TrickleLog = Arc::default();
    let trickler = {
        let (trickle, stop, client, funder, chain_id) =
            (trickle.clone(), stop.clone(), client.clone(), spec.funder.clone(), chain_id.clone());
        let interval = spec.trickle_interval;
        tokio::spawn(async move {
            let recipient = Address::of(&SigningKey::from_seed([0x7c; 32]).public_key());
            let address = Address::of(&funder.public_key());
            let mut nonce = None;
            while !stop.load(Ordering::Relaxed) {
                let next = match nonce {
                    Some(next) => next,
                    None => match client.state_get_account(address, None).await {
                        Ok(account) => account.nonce,
                        Err(_) => {
                            tokio::time::sleep(Duration::from_millis(200)).await;
                            continue;
                        }
                    },
                };
                let transfer = sign(&chain_id, &funder, next, Payload::Transfer { to: recipient, amount: 1 });
                let hex = Encoded::of(&transfer).hex;
                let submitted = Instant::now();
                let phase = phase_of(submitted);
                loop {
                    let result = client.tx_submit_and_wait(hex.clone(), Some(30_000)).await;
                    let record = |latency, retry| {
                        if let Ok(mut trickle) = trickle.lock() {
                            trickle.push((phase, latency, retry));
                        }
                    };
                    match result {
                        Ok(_) => {
                            record(Some(submitted.elapsed().as_secs_f64() * 1000.0), None);
                            nonce = Some(next + 1);
                            break;
                        }
                        Err(jsonrpsee::core::client::Error::Call(error))
                            if [rpc::error::MEMPOOL_FULL, rpc::error::TIMEOUT].contains(&error.code()) =>
                        {
                            record(None, Some(error.code().to_string()));
                        }
                        Err(jsonrpsee::core::client::Error::Call(error)) => {
                            // Refused for good (the nonce moved under it?): start again from the
                            // account's nonce.
                            record(None, Some(error.code().to_string()));
                            nonce = None;
                            break;
                        }
                        Err(error) => {
                            let reason = if error.to_string().contains("429") { "429" } else { "transport" };
                            record(None, Some(reason.to_string()));
                        }
                    }
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                tokio::time::sleep(interval).await;
            }
        })
    };

    // The flooded node's memory, every 200 ms.
    let samples = Arc::new(Mutex::new(Vec::<(Phase, u64)>::new()));
    let sampler = pid.map(|pid| {
        let (samples, stop) = (samples.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if let Some(kib) = crate::flood::rss_kib(pid)
                    && let Ok(mut samples) = samples.lock()
                {
                    samples.push((phase_of(Instant::now()), kib));
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    });

    tokio::time::sleep_until(flood_starts.into()).await;
    let mut flood = spec.flood.clone();
    flood.rpc = flooded.clone();
    let answers = crate::flood::run(flood, prepared).await?;
    let settle_ends = Instant::now().max(flood_ends) + spec.settle;
    tokio::time::sleep_until(settle_ends.into()).await;
    let settle_seconds = settle_ends.duration_since(flood_ends).as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let _ = follower.await;
    // The trickle may be waiting on a commit: give it time to see it, then drop it.
    let abort = trickler.abort_handle();
    if tokio::time::timeout(Duration::from_secs(35), trickler).await.is_err() {
        abort.abort();
    }
    if let Some(sampler) = sampler {
        let _ = sampler.await;
    }
    let status = http(flooded)?.chain_status().await;
    let (alive_after, height_after) = match &status {
        Ok(status) => (true, status.height),
        Err(_) => (false, 0),
    };

    let blocks = blocks.lock().map(|blocks| blocks.clone()).unwrap_or_default();
    let trickle = trickle.lock().map(|trickle| trickle.clone()).unwrap_or_default();
    let samples = samples.lock().map(|samples| samples.clone()).unwrap_or_default();
    let figures = |phase: Phase, seconds: f64| {
        let in_phase: Vec<&(Phase, u64, usize)> = blocks.iter().filter(|(p, _, _)| *p == phase).collect();
        // An interval belongs to the phase its later block was committed in.
        let intervals: Vec<f64> = blocks
            .windows(2)
            .filter(|pair| pair[1].0 == phase)
            .map(|pair| pair[1].1.saturating_sub(pair[0].1) as f64)
            .collect();
        let mean = if intervals.is_empty() { 0.0 } else { intervals.iter().sum::<f64>() / intervals.len() as f64 };
        let txs: usize = in_phase.iter().map(|(_, _, txs)| txs).sum();
        let latencies: Vec<f64> = trickle
            .iter()
            .filter(|(p, latency, _)| *p == phase && latency.is_some())
            .filter_map(|(_, l, _)| *l)
            .collect();
        let mut retries = std::collections::BTreeMap::new();
        for (_, _, reason) in trickle.iter().filter(|(p, _, _)| *p == phase) {
            if let Some(reason) = reason {
                *retries.entry(reason.clone()).or_insert(0) += 1;
            }
        }
        PhaseFigures {
            seconds,
            blocks: in_phase.len() as u64,
            txs_per_block: txs as f64 / in_phase.len().max(1) as f64,
            block_interval_ms: percentiles(intervals),
            block_interval_mean_ms: mean,
            trickle_committed: latencies.len() as u64,
            trickle_latency_ms: percentiles(latencies),
            trickle_retries: retries,
        }
    };
    let rss_kib = pid.map(|pid| RssFigures {
        pid,
        before: samples.iter().rev().find(|(phase, _)| *phase == Phase::Quiet).map_or(0, |(_, kib)| *kib),
        during_max: samples.iter().filter(|(phase, _)| *phase == Phase::Flood).map(|(_, kib)| *kib).max().unwrap_or(0),
        after: samples.last().map_or(0, |(_, kib)| *kib),
    });
    Ok(FloodBenchReport {
        quiet: figures(Phase::Quiet, spec.quiet.as_secs_f64()),
        flood: figures(Phase::Flood, spec.flood.duration.as_secs_f64()),
        after: figures(Phase::After, settle_seconds),
        rss_kib,
        alive_after,
        height_after,
        answers,
    })
}
