//! The server: the API's methods ([`crate::handlers`]) over a [`Backend`], on one port for
//! HTTP/1.1 and WebSocket, with every limit and access rule ([`crate::access`]) set, and the
//! `/health` and `/ready` probes ([`crate::probes`]) and the block explorer
//! ([`crate::explorer`]) in front of JSON-RPC.
//!
//! The accept loop is ours rather than jsonrpsee's because jsonrpsee counts `max_connections`
//! per HTTP request in flight, not per TCP connection, and serves connections without a timer:
//! an idle keep-alive connection (or one that never sends a byte) would be kept forever and
//! never counted. Here every TCP connection, HTTP or WebSocket, holds one of `max_connections`
//! permits for as long as its socket lives; over the cap a connection gets a 429 and is closed.

use std::{
    future::Future,
    net::SocketAddr,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU8, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use hyper::body::{Bytes, Frame, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use jsonrpsee::server::{
    BatchRequestConfig, HttpBody, HttpResponse, PingConfig, Server, ServerConfig, ServerHandle,
    middleware::rpc::RpcServiceBuilder, stop_channel,
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::{OwnedSemaphorePermit, Semaphore},
};

use crate::{
    Backend,
    access::{AccessLayer, SubmitGate, SubmitToken},
    explorer::ExplorerLayer,
    probes::ProbeLayer,
};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Limits of the server (from `[rpc]` in config.toml).
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest request body (HTTP) or message (WebSocket), in bytes.
    pub max_request_bytes: u32,
    /// Largest response body, in bytes.
    pub max_response_bytes: u32,
    /// Most calls in one batch.
    pub max_batch: u32,
    /// Most simultaneous TCP connections, HTTP and WebSocket together.
    pub max_connections: u32,
    /// Most subscriptions per WebSocket connection.
    pub max_subscriptions_per_connection: u32,
    /// An HTTP connection must send a complete request head within this long of connecting or
    /// of its previous response, or it is closed (idle keep-alive and slow-header connections).
    pub idle_timeout: Duration,
    /// A request's body must arrive within this long of its head (slow-body connections).
    pub request_body_timeout: Duration,
    /// A WebSocket that neither sends anything nor answers the server's pings for this long is
    /// closed (pings go out every half of it).
    pub ws_idle_timeout: Duration,
    /// Browser origins allowed by CORS (`https://app.example`); empty allows none. A request
    /// from any other origin (any `Origin` header, a WebSocket upgrade included) gets a 403.
    pub cors_origins: Vec<String>,
    /// Host names a request's `Host` may name besides IP addresses and `localhost` (others get
    /// a 403: DNS rebinding).
    pub allowed_hosts: Vec<String>,
    /// The bearer token `tx_submit` and `tx_submitAndWait` need; `None`: anyone may submit.
    pub submit_token: Option<SubmitToken>,
    /// Most store reads at once, each on a thread of the blocking pool.
    pub read_threads: usize,
    /// `GET /ready` answers 503 while the last committed block is older than this
    /// (`rpc.ready_max_block_age`; see [`crate::probes`]).
    pub ready_max_block_age: Duration,
}

/// CORS for the allowed origins; `None` (no CORS headers, so browsers refuse cross-origin
/// calls) when the list is empty.
fn cors(origins: &[String]) -> std::io::Result<Option<tower_http::cors::CorsLayer>> {
    if origins.is_empty() {
        return Ok(None);
    }
    let origins = origins
        .iter()
        .map(|origin| {
            http::HeaderValue::from_str(origin).map_err(|error| {
                std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("CORS origin {origin:?}: {error}"))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(
        tower_http::cors::CorsLayer::new()
            .allow_origin(tower_http::cors::AllowOrigin::list(origins))
            .allow_methods([http::Method::POST])
            .allow_headers([http::header::CONTENT_TYPE, http::header::AUTHORIZATION]),
    ))
}

/// A running server.
pub struct RpcServer {
    handle: ServerHandle,
    address: SocketAddr,
}

impl RpcServer {
    /// The bound address (with the port the OS picked, if 0 was asked).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Stops accepting, closes connections and waits until it is done.
    pub async fn stop(self) {
        let _ = self.handle.stop();
        self.handle.stopped().await;
    }
}

/// Binds `listen` and serves the API over `backend`.
pub async fn start<B: Backend>(listen: SocketAddr, limits: Limits, backend: Arc<B>) -> std::io::Result<RpcServer> {
    let ws_idle_timeout = limits.ws_idle_timeout.max(Duration::from_millis(2));
    let config = ServerConfig::builder()
        .max_request_body_size(limits.max_request_bytes)
        .max_response_body_size(limits.max_response_bytes)
        .max_connections(limits.max_connections)
        .max_subscriptions_per_connection(limits.max_subscriptions_per_connection)
        .set_batch_request_config(BatchRequestConfig::Limit(limits.max_batch))
        .enable_ws_ping(PingConfig::new().ping_interval(ws_idle_timeout / 2).inactive_limit(ws_idle_timeout))
        .build();
    let guard =
        RequestGuardLayer { max_request_bytes: limits.max_request_bytes, body_timeout: limits.request_body_timeout };
    let token_required = limits.submit_token.is_some();
    let access = AccessLayer::new(&limits.cors_origins, &limits.allowed_hosts, limits.submit_token.clone());
    // Access first: a refused request gets its 403 before CORS or the body is looked at. The
    // probes come next, then the explorer's files: behind the Host and Origin rules, ahead of
    // everything JSON-RPC.
    let probes = ProbeLayer::new(backend.clone(), limits.ready_max_block_age);
    let middleware = tower::ServiceBuilder::new()
        .layer(access)
        .layer(probes)
        .layer(ExplorerLayer)
        .option_layer(cors(&limits.cors_origins)?)
        .layer(guard);
    let max_response_bytes = limits.max_response_bytes as usize;
    // The gate sits inside the batch layer, so it sees each call of a batch on its own.
    let rpc_middleware = RpcServiceBuilder::new()
        .layer_fn(move |service| crate::batch::ConcurrentBatch::new(service, max_response_bytes))
        .layer_fn(move |service| SubmitGate::new(service, token_required));
    let services = Server::builder()
        .set_config(config)
        .set_http_middleware(middleware)
        .set_rpc_middleware(rpc_middleware)
        .to_service_builder();
    let listener = TcpListener::bind(listen).await?;
    let address = listener.local_addr()?;
    let methods: jsonrpsee::Methods =
        crate::handlers::module_with(backend, limits.read_threads, max_response_bytes).into();
    let (stop, handle) = stop_channel();
    let open = Arc::new(Semaphore::new(limits.max_connections as usize));
    let idle_timeout = limits.idle_timeout;
    tokio::spawn(async move {
        let stopped = stop.clone().shutdown();
        tokio::pin!(stopped);
        loop {
            let socket = tokio::select! {
                () = &mut stopped => break,
                accepted = listener.accept() => match accepted {
                    Ok((socket, _)) => socket,
                    Err(error) => {
                        // Out of file descriptors, most likely: pause rather than spin.
                        tracing::debug!(%error, "JSON-RPC accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let Ok(permit) = open.clone().try_acquire_owned() else {
                tokio::spawn(refuse(socket));
                continue;
            };
            let _ = socket.set_nodelay(true);
            let service =
                hyper_util::service::TowerToHyperService::new(services.clone().build(methods.clone(), stop.clone()));
            let stopped = stop.clone().shutdown();
            tokio::spawn(async move {
                let mut http = hyper::server::conn::http1::Builder::new();
                http.timer(TokioTimer::new()).header_read_timeout(idle_timeout);
                // The permit travels with the socket, into the WebSocket session after an upgrade.
                let io = TokioIo::new(Counted { socket, _permit: permit });
                let connection = http.serve_connection(io, service).with_upgrades();
                tokio::pin!(connection, stopped);
                let result = tokio::select! {
                    result = connection.as_mut() => result,
                    () = &mut stopped => {
                        connection.as_mut().graceful_shutdown();
                        connection.await
                    }
                };
                if let Err(error) = result {
                    tracing::debug!(%error, "JSON-RPC connection closed");
                }
            });
        }
    });
    tracing::info!(%address, "JSON-RPC listening (HTTP and WebSocket)");
    Ok(RpcServer { handle, address })
}

/// Answers a connection over `max_connections` with a 429 and closes it.
async fn refuse(socket: TcpStream) {
    const BUSY: &[u8] = b"HTTP/1.1 429 Too Many Requests\r\ncontent-type: text/plain\r\ncontent-length: 34\r\nconnection: close\r\n\r\nToo many connections; retry later.";
    // A fresh socket's send buffer always has room for this.
    let _ = socket.try_write(BUSY);
    // Read what the client sent before closing, for a second at most: closing with unread data
    // would reset the connection and could discard the answer before the client reads it.
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let mut buffer = [0u8; 4096];
        loop {
            if socket.readable().await.is_err() {
                return;
            }
            match socket.try_read(&mut buffer) {
                Ok(0) => return,
                Ok(_) => {}
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
    })
    .await;
}

/// A connection's socket with its `max_connections` permit, released when the socket is
/// dropped (after the last response, or at the end of a WebSocket session).
struct Counted {
    socket: TcpStream,
    _permit: OwnedSemaphorePermit,
}

impl AsyncRead for Counted {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.socket).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.socket).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.socket).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.socket).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.socket).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.socket.is_write_vectored()
    }
}

/// The body arrived whole and in time.
const BODY_OK: u8 = 0;
/// The body went over `max_request_bytes` (a chunked body has no length to refuse up front).
const BODY_TOO_LARGE: u8 = 1;
/// The body did not arrive within `request_body_timeout`.
const BODY_TIMED_OUT: u8 = 2;

/// HTTP middleware that bounds each request body by size and by time. jsonrpsee refuses a
/// declared `content-length` over the limit with a 413, but a chunked body over it, or a body
/// trickled in a byte at a time, only fails as a stream error (a 500 "internal error"), or
/// never: this turns both into clear answers, 413 with -32007 and 408.
#[derive(Clone, Debug)]
struct RequestGuardLayer {
    max_request_bytes: u32,
    body_timeout: Duration,
}

impl<S> tower::Layer<S> for RequestGuardLayer {
    type Service = RequestGuard<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestGuard { inner, max_request_bytes: self.max_request_bytes, body_timeout: self.body_timeout }
    }
}

/// See [`RequestGuardLayer`].
#[derive(Clone, Debug)]
struct RequestGuard<S> {
    inner: S,
    max_request_bytes: u32,
    body_timeout: Duration,
}

impl<S, B> tower::Service<http::Request<B>> for RequestGuard<S>
where
    S: tower::Service<http::Request<GuardedBody<B>>, Response = HttpResponse, Error = BoxError>,
    S::Future: Send + 'static,
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = HttpResponse;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let verdict = Arc::new(AtomicU8::new(BODY_OK));
        let (limit, timeout) = (self.max_request_bytes, self.body_timeout);
        let request = request.map(|body| GuardedBody {
            inner: Box::pin(body),
            deadline: Box::pin(tokio::time::sleep(timeout)),
            remaining: u64::from(limit),
            verdict: verdict.clone(),
        });
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            Ok(match verdict.load(Ordering::Acquire) {
                BODY_TOO_LARGE => jsonrpsee::server::http::response::too_large(limit),
                BODY_TIMED_OUT => http::Response::builder()
                    .status(http::StatusCode::REQUEST_TIMEOUT)
                    .header(http::header::CONTENT_TYPE, "text/plain")
                    .header(http::header::CONNECTION, "close")
                    .body(HttpBody::from(format!("request body not received within {} ms", timeout.as_millis())))
                    .unwrap_or(response),
                _ => response,
            })
        })
    }
}

/// A request body cut off at a size and a deadline; see [`RequestGuardLayer`].
struct GuardedBody<B> {
    inner: Pin<Box<B>>,
    deadline: Pin<Box<tokio::time::Sleep>>,
    remaining: u64,
    verdict: Arc<AtomicU8>,
}

impl<B> hyper::body::Body for GuardedBody<B>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match this.inner.as_mut().poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let size = frame.data_ref().map_or(0, |data| data.len() as u64);
                if size > this.remaining {
                    this.verdict.store(BODY_TOO_LARGE, Ordering::Release);
                    return Poll::Ready(Some(Err("request body over rpc.max_request_bytes".into())));
                }
                this.remaining -= size;
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(error.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                if this.deadline.as_mut().poll(cx).is_ready() {
                    this.verdict.store(BODY_TIMED_OUT, Ordering::Release);
                    return Poll::Ready(Some(Err("request body not received in time".into())));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
