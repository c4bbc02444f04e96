//! Liveness and readiness probes on the RPC port, as Besu's `/liveness` and `/readiness`: plain
//! HTTP `GET` (or `HEAD`) `/health` and `/ready`, answered by HTTP middleware before jsonrpsee,
//! with a small JSON body, `Content-Type: application/json` and `Cache-Control: no-store`.
//!
//! - `/health`: 200 `{"status":"UP"}` whenever the server answers at all (liveness: restart the
//!   process only when this fails).
//! - `/ready`: 200 when the node can serve clients a current view of the chain, else 503; the
//!   body ([`ReadyReport`]) gives each check and, when `DOWN`, the reasons:
//!   - `synced`: the node is not fetching blocks from a peer that claims to be ahead (its block
//!     sync), and has been up long enough to have heard its peers' heads;
//!   - `peers`: a validator is connected to enough validators of the current set to make a
//!     quorum (2f + 1) with itself; an observer to f + 1 of them, so that one at least is honest;
//!   - `last_block`: the head block (at height 0, the genesis) is not older than
//!     `rpc.ready_max_block_age`;
//!   - `storage`: the background scrub (`[checks]`) has found no damaged stored value that is
//!     still damaged (a node that holds damaged blocks should not be sent clients' reads: some
//!     of them fail);
//!   - `agreement`: no peer was found holding another certified block at a height this node
//!     certified (that would take more than f Byzantine validators: loud, never ignored).
//!
//! Any other method on these paths gets 405 with `Allow: GET, HEAD`. Probes sit behind the
//! access rules of [`crate::access`] (Host and Origin; a foreign `Host` gets 403) but need no
//! token, and they cost the node nearly nothing per request: the facts are read through
//! [`Backend::readiness`] at most once per [`REFRESH`] however many probes come, on the blocking
//! pool but outside `rpc.read_threads`' permits, so a flood of probes neither reads the store
//! nor waits for, or holds up, a JSON-RPC read. They are not JSON-RPC calls, so no response
//! budget applies to them.
//!
//! [`probe`] is the client side (`stele probe`).

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use consensus::Height;
use http::{HeaderValue, Method, StatusCode, header};
use hyper::body::Body as _;
use jsonrpsee::server::{HttpBody, HttpResponse};
use serde::{Deserialize, Serialize};
use tokio::{sync::Mutex, task::JoinHandle};

use crate::Backend;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The liveness probe's path.
pub const HEALTH_PATH: &str = "/health";
/// The readiness probe's path.
pub const READY_PATH: &str = "/ready";
/// The node's facts are read at most this often; probes in between get the last reading (the
/// block's age is still computed when each probe is answered).
pub const REFRESH: Duration = Duration::from_secs(1);
/// A reading the node does not finish within this long answers 503 (and the same read is
/// awaited again by the next probe rather than started twice).
pub const READ_TIMEOUT: Duration = Duration::from_secs(2);
/// Largest answer [`probe`] reads.
pub const PROBE_BODY_MAX: usize = 64 * 1024;

/// What the node knows of its sync with its peers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyncState {
    /// Not behind any peer it knows of.
    Synced,
    /// Fetching blocks from a peer that claims to be ahead.
    Behind,
    /// Not known, and why (just started; the consensus driver has not answered lately).
    Unknown(String),
}

/// The facts `GET /ready` judges, as the node reports them ([`Backend::readiness`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Readiness {
    /// Height of the last committed block (0: only the genesis).
    pub height: Height,
    /// Its timestamp (the genesis time at height 0), ms since the Unix epoch.
    pub block_time_ms: u64,
    /// Its block sync.
    pub sync: SyncState,
    /// Whether this node is a member of the validator set of the next height.
    pub validator: bool,
    /// Members of that set.
    pub validators: usize,
    /// Members of that set this node is connected to, itself not counted; `None`: not known
    /// (the network has not reported its connections lately).
    pub validators_connected: Option<usize>,
    /// Damaged stored values the background scrub found and has not since found intact, one
    /// sentence each naming the height and the column; empty: none (or no scrub).
    pub damaged: Vec<String>,
    /// Divergences with peers found ([`crate::types::Divergence`]), one sentence each; empty:
    /// none (or no comparisons).
    pub diverged: Vec<String>,
}

/// How many validators of a set of `validators` a node must be connected to (itself not
/// counted) to be ready.
///
/// A validator: enough to make a quorum (`2n/3 + 1`, 2f + 1 when n = 3f + 1) with itself, the
/// fewest with which it can take part in committing blocks. An observer: f + 1 (`f = (n-1)/3`),
/// so that at least one of them is honest and the f faulty ones alone cannot stall it by
/// withholding blocks (blocks prove themselves by their certificates, so what a liar can do is
/// withhold, not forge); asking 2f + 1 would make every observer unready whenever f validators
/// are down, although the chain goes on and the observer follows it.
pub fn validators_needed(validators: usize, validator: bool) -> usize {
    let validators = validators.max(1);
    if validator { 2 * validators / 3 } else { (validators - 1) / 3 + 1 }
}

/// `UP` or `DOWN`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ProbeStatus {
    /// Live, or ready.
    Up,
    /// Not ready.
    Down,
}

/// The body of `/ready`: `{"status":"UP"|"DOWN","checks":{"synced":…,"peers":…,"last_block":…},
/// "reasons":[…]}`; `reasons` is empty when `UP`. When the node could not report its facts at
/// all, `checks` is empty and the one reason says why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReadyReport {
    /// `UP` (HTTP 200) or `DOWN` (HTTP 503).
    pub status: ProbeStatus,
    /// Each check.
    pub checks: Checks,
    /// Why the node is not ready, one sentence per failed check.
    pub reasons: Vec<String>,
}

/// The checks of `/ready`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Checks {
    /// Not behind a peer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synced: Option<SyncedCheck>,
    /// Connected to enough validators.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peers: Option<PeersCheck>,
    /// The head block is recent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_block: Option<LastBlockCheck>,
    /// No damaged stored value is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageCheck>,
    /// No peer holds another certified block at a height this node certified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agreement: Option<AgreementCheck>,
}

/// `{"ok":false,"diverged":["peer ... holds another certified block at height 7: ..."]}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AgreementCheck {
    /// Passed: no divergence is known.
    pub ok: bool,
    /// The divergences found, one sentence each.
    pub diverged: Vec<String>,
}

/// `{"ok":false,"damaged":["height 12, column bodies: ..."]}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StorageCheck {
    /// Passed: nothing damaged is known.
    pub ok: bool,
    /// What the scrub found damaged, one sentence each.
    pub damaged: Vec<String>,
}

/// `{"ok":true,"syncing":false}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SyncedCheck {
    /// Passed.
    pub ok: bool,
    /// Whether blocks are being fetched from a peer ahead; `null`: not known.
    pub syncing: Option<bool>,
}

/// `{"ok":true,"role":"validator","validators":4,"validators_connected":3,"needed":2}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PeersCheck {
    /// Passed: `validators_connected >= needed`.
    pub ok: bool,
    /// `validator` or `observer` (membership of the next height's set).
    pub role: String,
    /// Members of the set.
    pub validators: usize,
    /// Members this node is connected to, itself not counted; `null`: not known.
    pub validators_connected: Option<usize>,
    /// How many it needs ([`validators_needed`]).
    pub needed: usize,
}

/// `{"ok":true,"height":812,"age_seconds":3.2,"max_age_seconds":120.0}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LastBlockCheck {
    /// Passed: `age_seconds <= max_age_seconds`.
    pub ok: bool,
    /// The head's height (0: no block yet; the age is then the genesis time's).
    pub height: Height,
    /// Seconds since its timestamp by this node's clock (0 if it is in the future).
    pub age_seconds: f64,
    /// `rpc.ready_max_block_age`.
    pub max_age_seconds: f64,
}

/// Judges `facts` (or the reason they could not be read) at `now_ms` (ms since the Unix epoch).
pub fn judge(facts: Result<&Readiness, &str>, max_block_age: Duration, now_ms: u64) -> ReadyReport {
    let facts = match facts {
        Ok(facts) => facts,
        Err(reason) => {
            return ReadyReport {
                status: ProbeStatus::Down,
                checks: Checks::default(),
                reasons: vec![reason.to_string()],
            };
        }
    };
    let mut reasons = Vec::new();

    let synced = SyncedCheck {
        ok: facts.sync == SyncState::Synced,
        syncing: match facts.sync {
            SyncState::Synced => Some(false),
            SyncState::Behind => Some(true),
            SyncState::Unknown(_) => None,
        },
    };
    match &facts.sync {
        SyncState::Synced => {}
        SyncState::Behind => reasons.push("synced: a peer claims blocks above this node's; fetching them".to_string()),
        SyncState::Unknown(why) => reasons.push(format!("synced: not known: {why}")),
    }

    let needed = validators_needed(facts.validators, facts.validator);
    let peers = PeersCheck {
        ok: facts.validators_connected.is_some_and(|connected| connected >= needed),
        role: if facts.validator { "validator" } else { "observer" }.to_string(),
        validators: facts.validators,
        validators_connected: facts.validators_connected,
        needed,
    };
    match (facts.validators_connected, facts.validator) {
        (Some(connected), _) if connected >= needed => {}
        (None, _) => reasons.push("peers: not known: the network has not reported its connections lately".to_string()),
        (Some(connected), true) => reasons.push(format!(
            "peers: connected to {connected} of the {} other validators; a validator needs {needed} of them to make \
             a quorum of {} with itself",
            facts.validators.saturating_sub(1),
            needed + 1
        )),
        (Some(connected), false) => reasons.push(format!(
            "peers: connected to {connected} of the {} validators; an observer needs {needed} (f + 1, so that one \
             at least is honest)",
            facts.validators
        )),
    }

    let age_ms = now_ms.saturating_sub(facts.block_time_ms);
    let max_ms = u64::try_from(max_block_age.as_millis()).unwrap_or(u64::MAX);
    let last_block = LastBlockCheck {
        ok: age_ms <= max_ms,
        height: facts.height,
        age_seconds: age_ms as f64 / 1000.0,
        max_age_seconds: max_ms as f64 / 1000.0,
    };
    if !last_block.ok {
        let what = if facts.height == 0 {
            format!("no block yet, and the genesis time is {:.1} s ago", last_block.age_seconds)
        } else {
            format!("block {} is {:.1} s old", facts.height, last_block.age_seconds)
        };
        reasons.push(format!("last_block: {what}, over rpc.ready_max_block_age ({} s)", last_block.max_age_seconds));
    }

    let storage = StorageCheck { ok: facts.damaged.is_empty(), damaged: facts.damaged.clone() };
    if let Some(first) = facts.damaged.first() {
        let more = match facts.damaged.len() {
            1 => String::new(),
            count => format!(" (and {} more)", count - 1),
        };
        reasons.push(format!("storage: the scrub found a damaged stored value: {first}{more}"));
    }
    let agreement = AgreementCheck { ok: facts.diverged.is_empty(), diverged: facts.diverged.clone() };
    if let Some(first) = facts.diverged.first() {
        reasons.push(format!("agreement: more than f validators signed two blocks: {first}"));
    }

    ReadyReport {
        status: if reasons.is_empty() { ProbeStatus::Up } else { ProbeStatus::Down },
        checks: Checks {
            synced: Some(synced),
            peers: Some(peers),
            last_block: Some(last_block),
            storage: Some(storage),
            agreement: Some(agreement),
        },
        reasons,
    }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| u64::try_from(elapsed.as_millis()).unwrap_or(0))
}

/// The last reading of the node's facts, and a reading still running.
struct Cache {
    read_at: Option<Instant>,
    facts: Result<Readiness, String>,
    running: Option<JoinHandle<Result<Readiness, ledger::StoreError>>>,
}

/// What the probes share: the backend, the age limit and the last reading.
pub(crate) struct ProbeState<B> {
    backend: Arc<B>,
    max_block_age: Duration,
    cache: Mutex<Cache>,
}

impl<B: Backend> ProbeState<B> {
    pub(crate) fn new(backend: Arc<B>, max_block_age: Duration) -> Self {
        let cache = Cache { read_at: None, facts: Err("not read yet".to_string()), running: None };
        ProbeState { backend, max_block_age, cache: Mutex::new(cache) }
    }

    /// The node's facts, read again if the last reading is [`REFRESH`] old. Probes that come
    /// while one reads wait for its reading.
    async fn facts(&self) -> Result<Readiness, String> {
        let mut cache = self.cache.lock().await;
        if cache.read_at.is_some_and(|at| at.elapsed() < REFRESH) {
            return cache.facts.clone();
        }
        let mut running = cache.running.take().unwrap_or_else(|| {
            let backend = self.backend.clone();
            tokio::task::spawn_blocking(move || backend.readiness())
        });
        let facts = match tokio::time::timeout(READ_TIMEOUT, &mut running).await {
            Ok(Ok(Ok(facts))) => Ok(facts),
            Ok(Ok(Err(error))) => Err(format!("the node cannot read its store: {error}")),
            Ok(Err(error)) => Err(format!("reading the node's state failed: {error}")),
            Err(_) => {
                cache.running = Some(running);
                Err(format!("the node did not report its state within {} s", READ_TIMEOUT.as_secs()))
            }
        };
        cache.read_at = Some(Instant::now());
        cache.facts = facts.clone();
        facts
    }

    /// The answer to `/ready`.
    pub(crate) async fn report(&self) -> ReadyReport {
        let facts = self.facts().await;
        judge(facts.as_ref().map_err(String::as_str), self.max_block_age, now_ms())
    }
}

/// HTTP middleware that answers the probes (see the module documentation) and passes every
/// other request on.
pub(crate) struct ProbeLayer<B> {
    state: Arc<ProbeState<B>>,
}

impl<B: Backend> ProbeLayer<B> {
    pub(crate) fn new(backend: Arc<B>, max_block_age: Duration) -> Self {
        ProbeLayer { state: Arc::new(ProbeState::new(backend, max_block_age)) }
    }
}

impl<B> Clone for ProbeLayer<B> {
    fn clone(&self) -> Self {
        ProbeLayer { state: self.state.clone() }
    }
}

impl<S, B> tower::Layer<S> for ProbeLayer<B> {
    type Service = Probes<S, B>;

    fn layer(&self, inner: S) -> Self::Service {
        Probes { inner, state: self.state.clone() }
    }
}

/// See [`ProbeLayer`].
pub(crate) struct Probes<S, B> {
    inner: S,
    state: Arc<ProbeState<B>>,
}

impl<S: Clone, B> Clone for Probes<S, B> {
    fn clone(&self) -> Self {
        Probes { inner: self.inner.clone(), state: self.state.clone() }
    }
}

/// A probe answer: JSON, never cached. A `HEAD` answer has the headers of the `GET` one and
/// no body.
fn answer(status: StatusCode, body: String, head: bool) -> HttpResponse {
    let length = body.len();
    let mut response = HttpResponse::new(if head { HttpBody::empty() } else { HttpBody::from(body) });
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    response
}

fn not_allowed(method: &Method) -> HttpResponse {
    let body = serde_json::json!({ "error": format!("method {method} not allowed: probes answer GET and HEAD") });
    let mut response = answer(StatusCode::METHOD_NOT_ALLOWED, body.to_string(), false);
    response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    response
}

impl<S, B, Body> tower::Service<http::Request<Body>> for Probes<S, B>
where
    S: tower::Service<http::Request<Body>, Response = HttpResponse>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    B: Backend,
{
    type Response = HttpResponse;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let path = request.uri().path();
        let ready = if path == HEALTH_PATH {
            false
        } else if path == READY_PATH {
            true
        } else {
            let response = self.inner.call(request);
            return Box::pin(async move { response.await.map_err(Into::into) });
        };
        let method = request.method().clone();
        if method != Method::GET && method != Method::HEAD {
            return Box::pin(std::future::ready(Ok(not_allowed(&method))));
        }
        let head = method == Method::HEAD;
        if !ready {
            let body = serde_json::json!({ "status": ProbeStatus::Up }).to_string();
            return Box::pin(std::future::ready(Ok(answer(StatusCode::OK, body, head))));
        }
        let state = self.state.clone();
        Box::pin(async move {
            let report = state.report().await;
            let status =
                if report.status == ProbeStatus::Up { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
            let body = serde_json::to_string(&report).unwrap_or_else(|_| r#"{"status":"DOWN"}"#.to_string());
            Ok(answer(status, body, head))
        })
    }
}

/// Which probe to ask.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    /// `/health`.
    Health,
    /// `/ready`.
    Ready,
}

impl Probe {
    /// Its path.
    pub fn path(self) -> &'static str {
        match self {
            Probe::Health => HEALTH_PATH,
            Probe::Ready => READY_PATH,
        }
    }
}

/// What a probe got back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeAnswer {
    /// The HTTP status.
    pub status: u16,
    /// The body, as text.
    pub body: String,
}

/// Why [`probe`] got no answer.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// Not an `http://host[:port][/prefix]` URL.
    #[error("{url:?} is not a URL the probe can use: {reason}")]
    Url {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The TCP connection failed.
    #[error("cannot connect to {address}: {error}")]
    Connect {
        /// `host:port`.
        address: String,
        /// Why.
        error: std::io::Error,
    },
    /// The HTTP exchange failed.
    #[error("the HTTP exchange with {address} failed: {error}")]
    Http {
        /// `host:port`.
        address: String,
        /// Why.
        error: BoxError,
    },
    /// No complete answer in time.
    #[error("no answer from {address} within {} ms", .timeout.as_millis())]
    Timeout {
        /// `host:port`.
        address: String,
        /// The time allowed.
        timeout: Duration,
    },
}

/// Asks the node at `url` (`http://host:port`, the node's JSON-RPC URL; a path there is kept as
/// a prefix, for a proxy) for `which` probe: one `GET` over a fresh connection, answered within
/// `timeout` or given up on. Any status is an answer; the caller decides what passes.
pub async fn probe(url: &str, which: Probe, timeout: Duration) -> Result<ProbeAnswer, ProbeError> {
    let bad = |reason: &str| ProbeError::Url { url: url.to_string(), reason: reason.to_string() };
    let uri: http::Uri = url.parse().map_err(|_| bad("not a URL"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => return Err(bad("https is not supported: probe the node's own RPC port over http")),
        _ => return Err(bad("it must start with http://")),
    }
    let authority = uri.authority().ok_or_else(|| bad("no host"))?.clone();
    let host = authority.host().trim_start_matches('[').trim_end_matches(']').to_string();
    let port = authority.port_u16().unwrap_or(80);
    let address = authority.as_str().to_string();
    let path = format!("{}{}", uri.path().trim_end_matches('/'), which.path());
    let exchange = async {
        let stream = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|error| ProbeError::Connect { address: address.clone(), error })?;
        let http_error = |error: BoxError| ProbeError::Http { address: address.clone(), error };
        let (mut sender, connection) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|error| http_error(error.into()))?;
        let connection = tokio::spawn(connection);
        let request = http::Request::get(path.as_str())
            .header(header::HOST, authority.as_str())
            .header(header::USER_AGENT, "stele-probe")
            .header(header::CONNECTION, "close")
            .body(HttpBody::empty())
            .map_err(|error| http_error(error.into()))?;
        let response = sender.send_request(request).await.map_err(|error| http_error(error.into()))?;
        let status = response.status().as_u16();
        let mut body = response.into_body();
        let mut bytes = Vec::new();
        while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
            let frame = frame.map_err(|error| http_error(error.into()))?;
            if let Some(data) = frame.data_ref() {
                if bytes.len() + data.len() > PROBE_BODY_MAX {
                    return Err(http_error(format!("the answer is over {PROBE_BODY_MAX} bytes").into()));
                }
                bytes.extend_from_slice(data);
            }
        }
        connection.abort();
        Ok::<_, ProbeError>(ProbeAnswer { status, body: String::from_utf8_lossy(&bytes).into_owned() })
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| ProbeError::Timeout { address: address.clone(), timeout })?
}

#[cfg(test)]
#[path = "probes_test.rs"]
mod tests;
