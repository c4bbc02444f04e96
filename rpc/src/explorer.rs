//! The block explorer: a read-only web page on the RPC port, at [`EXPLORER_PATH`] (`GET /`
//! without a WebSocket upgrade redirects there).
//!
//! Its files (HTML, CSS, JavaScript, an icon) are compiled into the binary, so it works on an
//! offline host and needs no build step: no framework, nothing fetched at run time. The page is a
//! client of the node's own JSON-RPC API, same-origin (POST `/` and the WebSocket
//! `chain_subscribeBlocks`), and of nothing else; it asks for bounded pages and backs off when
//! the node does not answer, so it costs the node what any JSON-RPC client costs.
//!
//! [`ExplorerLayer`] is HTTP middleware in front of jsonrpsee, behind the access rules of
//! [`crate::access`] (Host and Origin), like [`crate::probes`]: it answers `GET` and `HEAD` for
//! its paths, 404 for an unknown path under [`EXPLORER_PATH`], 405 for other methods there, and
//! passes everything else on untouched (JSON-RPC POSTs, WebSocket upgrades, CORS preflights).
//! Every answer carries a strict Content-Security-Policy (scripts, styles and connections to
//! this origin only), `X-Content-Type-Options: nosniff` and an `ETag` with `Cache-Control:
//! no-cache`, so a browser revalidates (a 304, no body) and a new node binary's files show at
//! once.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use jsonrpsee::server::{HttpBody, HttpResponse};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Where the explorer is served (its page is `/explorer/`; `/explorer` redirects there).
pub const EXPLORER_PATH: &str = "/explorer";

/// One embedded file.
struct Asset {
    /// Its path under [`EXPLORER_PATH`], with the leading `/` (`/` is the page).
    path: &'static str,
    content_type: &'static str,
    body: &'static str,
    /// Quoted, as the `ETag` header carries it (computed at compile time).
    etag: &'static str,
}

/// An [`Asset`] of the file `$file` (relative to this source file), embedded.
macro_rules! asset {
    ($path:literal, $content_type:literal, $file:literal) => {{
        const BODY: &str = include_str!($file);
        const HASH: &[u8; 18] = &etag_of(BODY.as_bytes());
        const ETAG: &str = match std::str::from_utf8(HASH) {
            Ok(etag) => etag,
            Err(_) => panic!("an ETag is ASCII"),
        };
        Asset { path: $path, content_type: $content_type, body: BODY, etag: ETAG }
    }};
}

/// The page and the files it loads. Each `ETag` is an FNV-1a hash of the file, computed by the
/// compiler, so it changes exactly when the file does.
const ASSETS: [Asset; 4] = [
    asset!("/", "text/html; charset=utf-8", "explorer/index.html"),
    asset!("/explorer.js", "text/javascript; charset=utf-8", "explorer/explorer.js"),
    asset!("/explorer.css", "text/css; charset=utf-8", "explorer/explorer.css"),
    asset!("/favicon.svg", "image/svg+xml", "explorer/favicon.svg"),
];

/// `"<16 hex digits>"`: the 64-bit FNV-1a hash of `bytes`, quoted. Not a security measure (the
/// files are the node's own); it only has to change when a file does.
const fn etag_of(bytes: &[u8]) -> [u8; 18] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut index = 0;
    while index < bytes.len() {
        hash ^= bytes[index] as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
        index += 1;
    }
    let mut etag = [b'"'; 18];
    let mut digit = 0;
    while digit < 16 {
        etag[1 + digit] = DIGITS[((hash >> (60 - 4 * digit)) & 0xf) as usize];
        digit += 1;
    }
    etag
}

/// What the explorer does with a request.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    /// Not the explorer's: pass it on (JSON-RPC, WebSocket, probes' neighbours).
    PassOn,
    /// Redirect to the page.
    Redirect(&'static str),
    /// Serve the file at this index of [`ASSETS`].
    File(usize),
    /// Under [`EXPLORER_PATH`] but no such file.
    NotFound,
    /// Under [`EXPLORER_PATH`] with a method other than `GET` and `HEAD`.
    NotAllowed,
}

fn route(method: &Method, path: &str, headers: &HeaderMap) -> Route {
    let read = method == Method::GET || method == Method::HEAD;
    if path == "/" {
        // A WebSocket upgrade is a GET of `/` too: it belongs to jsonrpsee, as does every other
        // method there (JSON-RPC POSTs, CORS preflights).
        if !read || headers.contains_key(header::UPGRADE) {
            return Route::PassOn;
        }
        // Relative, so that a proxy that serves the node under a prefix keeps it.
        return Route::Redirect("explorer/");
    }
    let Some(rest) = path.strip_prefix(EXPLORER_PATH) else { return Route::PassOn };
    if !rest.is_empty() && !rest.starts_with('/') {
        // `/explorerx` is not ours.
        return Route::PassOn;
    }
    if !read {
        return Route::NotAllowed;
    }
    if rest.is_empty() {
        // The page's files are relative to `/explorer/`, so it must be loaded from there.
        return Route::Redirect("explorer/");
    }
    let rest = if rest == "/index.html" { "/" } else { rest };
    ASSETS.iter().position(|asset| asset.path == rest).map_or(Route::NotFound, Route::File)
}

/// The Content-Security-Policy of every explorer answer: nothing but this origin's own files
/// and its own JSON-RPC. `connect-src 'self'` covers the WebSocket in browsers that follow CSP
/// 3; older ones need the `ws:` (and, behind a TLS proxy, `wss:`) origin spelt out, which is
/// the request's own host, named only when it is a plain host name or address (it already passed
/// the Host rule of [`crate::access`]).
fn content_security_policy(host: Option<&str>) -> String {
    let own = host
        .filter(|host| {
            !host.is_empty()
                && host
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'-' | b':' | b'[' | b']'))
        })
        .map(|host| format!(" ws://{host} wss://{host}"))
        .unwrap_or_default();
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'{own}; \
         base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
}

/// An answer with the headers every explorer answer carries.
fn respond(status: StatusCode, content_type: &'static str, body: HttpBody, csp: &str) -> HttpResponse {
    let mut response = HttpResponse::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_str(csp).unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'")),
    );
    response
}

/// The answer to a routed request (`PassOn` is not answered here).
fn answer(route: &Route, head: bool, request_headers: &HeaderMap, host: Option<&str>) -> HttpResponse {
    let csp = content_security_policy(host);
    let text = |status: StatusCode, message: &'static str| {
        let mut response = respond(
            status,
            "text/plain; charset=utf-8",
            if head { HttpBody::empty() } else { HttpBody::from(message) },
            &csp,
        );
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(message.len()));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    };
    match *route {
        Route::PassOn | Route::NotFound => text(StatusCode::NOT_FOUND, "not found: no such explorer page\n"),
        Route::NotAllowed => {
            let mut response =
                text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed: the explorer answers GET and HEAD\n");
            response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            response
        }
        Route::Redirect(location) => {
            let mut response = text(StatusCode::FOUND, "the explorer is at /explorer/\n");
            response.headers_mut().insert(header::LOCATION, HeaderValue::from_static(location));
            response
        }
        Route::File(index) => {
            let Some(asset) = ASSETS.get(index) else {
                return text(StatusCode::NOT_FOUND, "not found: no such explorer page\n");
            };
            let fresh = request_headers.get_all(header::IF_NONE_MATCH).iter().any(|value| {
                value.to_str().is_ok_and(|tags| {
                    tags.split(',').map(str::trim).any(|tag| tag == "*" || tag.trim_start_matches("W/") == asset.etag)
                })
            });
            let (status, body) = if fresh {
                (StatusCode::NOT_MODIFIED, HttpBody::empty())
            } else if head {
                (StatusCode::OK, HttpBody::empty())
            } else {
                (StatusCode::OK, HttpBody::from(asset.body))
            };
            let mut response = respond(status, asset.content_type, body, &csp);
            let headers = response.headers_mut();
            if !fresh {
                headers.insert(header::CONTENT_LENGTH, HeaderValue::from(asset.body.len()));
            }
            headers.insert(header::ETAG, HeaderValue::from_static(asset.etag));
            // Revalidate every time (a 304 costs a few bytes): the files change with the binary.
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            response
        }
    }
}

/// HTTP middleware that serves the explorer (see the module documentation) and passes every
/// other request on.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ExplorerLayer;

impl<S> tower::Layer<S> for ExplorerLayer {
    type Service = Explorer<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Explorer { inner }
    }
}

/// See [`ExplorerLayer`].
#[derive(Clone, Debug)]
pub(crate) struct Explorer<S> {
    inner: S,
}

impl<S, Body> tower::Service<http::Request<Body>> for Explorer<S>
where
    S: tower::Service<http::Request<Body>, Response = HttpResponse>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    type Response = HttpResponse;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let route = route(request.method(), request.uri().path(), request.headers());
        if route == Route::PassOn {
            let response = self.inner.call(request);
            return Box::pin(async move { response.await.map_err(Into::into) });
        }
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|host| host.to_str().ok())
            .or_else(|| request.uri().authority().map(|authority| authority.as_str()));
        let response = answer(&route, request.method() == Method::HEAD, request.headers(), host);
        Box::pin(std::future::ready(Ok(response)))
    }
}

#[cfg(test)]
#[path = "explorer_test.rs"]
mod tests;
