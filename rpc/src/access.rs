//! Who may call the API: a web page may not, unless its origin is allowed, and submissions may
//! need a bearer token.
//!
//! A page the operator opens in a browser can reach `127.0.0.1`: a cross-origin `fetch` or a
//! WebSocket (which CORS does not cover) from any site, or the site's own name re-pointed at
//! `127.0.0.1` once the page is loaded (DNS rebinding), which makes every call same-origin. So
//! before any JSON-RPC runs, [`AccessLayer`] refuses with 403:
//!
//! - a request with an `Origin` header (browsers send one on every WebSocket upgrade and every
//!   cross-origin call) naming an origin not in `rpc.cors_origins`, unless it is the request's
//!   own origin: `http://` or `https://` and exactly the `Host` the request names (which the
//!   Host rule below admitted), as the node's own explorer page sends ([`crate::explorer`]);
//! - a request whose `Host` header names a host other than an IP address, `localhost` or one of
//!   `rpc.allowed_hosts`. A rebinding page's requests carry its own name as the host; an IP
//!   address as the host means the browser connected to that address itself, which no other
//!   site's page can make it do. The port is not checked: it does not tell a rebinding page from
//!   a proxy in front of the node.
//!
//! With `rpc.submit_token_file` set, [`SubmitGate`] also refuses `tx_submit` and
//! `tx_submitAndWait` (alone, in a batch or over a WebSocket opened with the header) without
//! `Authorization: Bearer <token>`; reads stay open.

use std::{
    future::Future,
    net::IpAddr,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use consensus::Digest;
use futures::future::Either;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use jsonrpsee::{
    core::server::MethodResponse,
    server::{
        HttpBody, HttpResponse,
        middleware::rpc::{Batch, BatchEntry, BatchEntryErr, Notification, Request, RpcServiceT},
    },
    types::ErrorObjectOwned,
};

use crate::error;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The methods that need the bearer token when the node sets one.
pub const SUBMIT_METHODS: [&str; 2] = ["tx_submit", "tx_submitAndWait"];

/// Fewest characters a submit token may have.
pub const TOKEN_CHARS_MIN: usize = 16;

/// The environment variable clients (`stele tx`, `stele bench`) take the submit token from
/// when no token file is given.
pub const TOKEN_ENV: &str = "STELE_RPC_TOKEN";

/// The headers a client sends to carry `token` (`Authorization: Bearer <token>`, marked
/// sensitive so it is not shown in debug output).
pub fn bearer_headers(token: &str) -> Result<HeaderMap, TokenError> {
    let token = token.trim();
    if token.is_empty() {
        return Err(TokenError::TooShort { found: 0 });
    }
    if !token.bytes().all(|byte| byte.is_ascii_graphic()) {
        return Err(TokenError::NotVisibleAscii);
    }
    let mut value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| TokenError::NotVisibleAscii)?;
    value.set_sensitive(true);
    let mut headers = HeaderMap::new();
    headers.insert(header::AUTHORIZATION, value);
    Ok(headers)
}

/// The bearer token submissions need. Only its digest is kept, and `Debug` shows neither, so
/// the token cannot end up in a log.
#[derive(Clone)]
pub struct SubmitToken(Digest);

/// A token that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Too short to resist guessing.
    #[error("the token has {found} characters; it needs at least {TOKEN_CHARS_MIN}")]
    TooShort {
        /// Characters found.
        found: usize,
    },
    /// Not something an HTTP header can carry as it is.
    #[error("the token may hold only visible ASCII characters (no spaces or control characters)")]
    NotVisibleAscii,
}

impl SubmitToken {
    /// The token `secret` (surrounding whitespace, such as a file's final newline, ignored).
    pub fn new(secret: &str) -> Result<Self, TokenError> {
        let secret = secret.trim();
        if !secret.bytes().all(|byte| byte.is_ascii_graphic()) {
            return Err(TokenError::NotVisibleAscii);
        }
        if secret.len() < TOKEN_CHARS_MIN {
            return Err(TokenError::TooShort { found: secret.len() });
        }
        Ok(SubmitToken(token_digest(secret.as_bytes())))
    }

    /// Whether `presented` is the token. Compares digests, in time that does not depend on
    /// where they differ, so timing tells a guesser nothing about the token.
    fn matches(&self, presented: &[u8]) -> bool {
        let presented = token_digest(presented);
        let difference = self.0.0.iter().zip(presented.0.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b));
        std::hint::black_box(difference) == 0
    }
}

fn token_digest(token: &[u8]) -> Digest {
    Digest::of_parts(&[b"stele/rpc/submit-token/v1", token])
}

impl std::fmt::Debug for SubmitToken {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("SubmitToken(redacted)")
    }
}

/// What a request's `Authorization` header proves, for [`SubmitGate`] (set only when the node
/// requires a token).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Submitter {
    /// It carries the token.
    Authorized,
    /// It has no `Authorization` header.
    NoToken,
    /// It carries something else.
    WrongToken,
}

/// The access rules of the HTTP layer.
#[derive(Debug)]
struct Rules {
    /// Allowed `Origin` values.
    origins: Vec<String>,
    /// Allowed host names besides IP addresses and `localhost`.
    hosts: Vec<String>,
    token: Option<SubmitToken>,
}

impl Rules {
    /// `Err` with the 403 answer when the request may not be served at all.
    fn admit(&self, headers: &HeaderMap, authority: Option<&str>) -> Result<(), &'static str> {
        let mut hosts = headers.get_all(header::HOST).iter();
        let host = match (hosts.next(), hosts.next()) {
            (Some(host), None) => host.to_str().ok(),
            (None, _) => authority,
            (Some(_), Some(_)) => None,
        };
        if !host.is_some_and(|host| self.host_allowed(host)) {
            return Err("Host not allowed: the name this node was reached by is not an IP address, localhost or \
                        one of rpc.allowed_hosts (a defence against DNS rebinding)\n");
        }
        let origin_allowed = |origin: &HeaderValue| {
            origin.to_str().is_ok_and(|origin| {
                host.is_some_and(|host| same_origin(origin, host))
                    || self.origins.iter().any(|allowed| allowed.eq_ignore_ascii_case(origin))
            })
        };
        if !headers.get_all(header::ORIGIN).iter().all(origin_allowed) {
            return Err("Origin not allowed: web pages may call this node only from the origins in \
                        rpc.cors_origins\n");
        }
        Ok(())
    }

    fn host_allowed(&self, host: &str) -> bool {
        let name = host_name(host);
        if name.parse::<IpAddr>().is_ok() {
            return true;
        }
        let name = name.strip_suffix('.').unwrap_or(name);
        name.eq_ignore_ascii_case("localhost") || self.hosts.iter().any(|allowed| allowed.eq_ignore_ascii_case(name))
    }

    fn submitter(&self, headers: &HeaderMap) -> Option<Submitter> {
        let token = self.token.as_ref()?;
        let Some(value) = headers.get(header::AUTHORIZATION) else { return Some(Submitter::NoToken) };
        let value = value.as_bytes();
        // RFC 6750 §2.1: the scheme `Bearer` (case-insensitive), a space, then the token.
        let presented = match value.split_at_checked(7) {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case(b"bearer ") => rest.trim_ascii(),
            _ => return Some(Submitter::WrongToken),
        };
        Some(if token.matches(presented) { Submitter::Authorized } else { Submitter::WrongToken })
    }
}

/// Whether `origin` is the origin of the page the node itself served at `host` (the request's
/// `Host`, already admitted): a page loaded from `http://<host>/` sends `Origin: http://<host>`.
/// Such a page is the node's own (the explorer), since only the node answers at that host and
/// port; a page of any other site, a rebinding one included, sends its own origin, and a
/// rebinding page's `Host` is refused before this. `https` counts too, for a TLS proxy that
/// passes the `Host` on.
fn same_origin(origin: &str, host: &str) -> bool {
    let rest = match origin.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") => rest,
        _ => return false,
    };
    !host.is_empty() && rest.eq_ignore_ascii_case(host)
}

/// The host part of a `Host` header value: without the port, and an IPv6 address without its
/// brackets.
fn host_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split_once(']').map_or(host, |(address, _)| address);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|byte| byte.is_ascii_digit()) => name,
        _ => host,
    }
}

/// HTTP middleware that applies the access rules (see the module documentation).
#[derive(Clone, Debug)]
pub(crate) struct AccessLayer {
    rules: Arc<Rules>,
}

impl AccessLayer {
    /// Rules for these allowed origins (`https://app.example`), host names and token.
    pub(crate) fn new(origins: &[String], hosts: &[String], token: Option<SubmitToken>) -> Self {
        AccessLayer { rules: Arc::new(Rules { origins: origins.to_vec(), hosts: hosts.to_vec(), token }) }
    }
}

impl<S> tower::Layer<S> for AccessLayer {
    type Service = Access<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Access { inner, rules: self.rules.clone() }
    }
}

/// See [`AccessLayer`].
#[derive(Clone, Debug)]
pub(crate) struct Access<S> {
    inner: S,
    rules: Arc<Rules>,
}

fn forbidden(message: &'static str) -> HttpResponse {
    let mut response = HttpResponse::new(HttpBody::from(message));
    *response.status_mut() = StatusCode::FORBIDDEN;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

impl<S, B> tower::Service<http::Request<B>> for Access<S>
where
    S: tower::Service<http::Request<B>, Response = HttpResponse>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    type Response = HttpResponse;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let authority = request.uri().authority().map(|authority| authority.as_str());
        if let Err(message) = self.rules.admit(request.headers(), authority) {
            tracing::debug!(reason = message.trim_end(), "JSON-RPC request refused with 403");
            return Box::pin(std::future::ready(Ok(forbidden(message))));
        }
        if let Some(submitter) = self.rules.submitter(request.headers()) {
            // jsonrpsee hands the request's extensions (the upgrade request's, on a WebSocket)
            // to every call it carries, where [`SubmitGate`] reads this.
            request.extensions_mut().insert(submitter);
        }
        let response = self.inner.call(request);
        Box::pin(async move { response.await.map_err(Into::into) })
    }
}

/// RPC middleware that refuses submissions that do not carry the node's token, when it has one.
#[derive(Clone, Debug)]
pub(crate) struct SubmitGate<S> {
    service: S,
    required: bool,
}

impl<S> SubmitGate<S> {
    /// Wraps `service`; `required` when the node has a submit token.
    pub(crate) fn new(service: S, required: bool) -> Self {
        SubmitGate { service, required }
    }

    /// The refusal of a call of `method` with these extensions, if it is refused.
    fn refusal(&self, method: &str, extensions: &http::Extensions) -> Option<ErrorObjectOwned> {
        if !self.required || !SUBMIT_METHODS.contains(&method) {
            return None;
        }
        let message = match extensions.get::<Submitter>() {
            Some(Submitter::Authorized) => return None,
            Some(Submitter::WrongToken) => {
                format!(
                    "unauthorized: {method} needs this node's bearer token, and the Authorization header carries another"
                )
            }
            Some(Submitter::NoToken) | None => format!(
                "unauthorized: this node requires `Authorization: Bearer <token>` for {method} (rpc.submit_token_file); \
                 reads need no token"
            ),
        };
        Some(error::error(error::UNAUTHORIZED, message))
    }
}

impl<S> RpcServiceT for SubmitGate<S>
where
    S: RpcServiceT<
            MethodResponse = MethodResponse,
            BatchResponse = MethodResponse,
            NotificationResponse = MethodResponse,
        > + Send
        + Sync,
{
    type MethodResponse = MethodResponse;
    type BatchResponse = MethodResponse;
    type NotificationResponse = MethodResponse;

    fn call<'a>(&self, request: Request<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        match self.refusal(request.method_name(), request.extensions()) {
            Some(refusal) => Either::Left(std::future::ready(MethodResponse::error(request.id, refusal))),
            None => Either::Right(self.service.call(request)),
        }
    }

    fn batch<'a>(&self, mut batch: Batch<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        // Each refused call of the batch gets its own error; the others run.
        for entry in batch.iter_mut() {
            let refusal = match entry {
                Ok(BatchEntry::Call(request)) => self
                    .refusal(request.method_name(), request.extensions())
                    .map(|refusal| BatchEntryErr::new(request.id.clone(), refusal)),
                _ => None,
            };
            if let Some(refusal) = refusal {
                *entry = Err(refusal);
            }
        }
        self.service.batch(batch)
    }

    fn notification<'a>(&self, notification: Notification<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        match self.refusal(notification.method_name(), notification.extensions()) {
            Some(_) => Either::Left(std::future::ready(MethodResponse::notification())),
            None => Either::Right(self.service.notification(notification)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(token: Option<&str>) -> Rules {
        Rules {
            origins: vec!["https://app.example".to_string()],
            hosts: vec!["node.example".to_string()],
            token: token.map(|token| SubmitToken::new(token).expect("token")),
        }
    }

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(name.clone(), HeaderValue::from_str(value).expect("header value"));
        }
        headers
    }

    #[test]
    fn hosts_other_than_addresses_localhost_and_the_allowed_names_are_refused() {
        let rules = rules(None);
        for allowed in [
            "127.0.0.1:8545",
            "127.0.0.1",
            "[::1]:8545",
            "10.1.2.3:80",
            "localhost:8545",
            "LOCALHOST",
            "node.example.",
            "Node.Example:443",
        ] {
            assert_eq!(rules.admit(&headers(&[(header::HOST, allowed)]), None), Ok(()), "{allowed}");
        }
        for refused in ["evil.example:8545", "evil.example", "127.0.0.1.evil.example", "[evil]:1", "localhost.evil", ""]
        {
            assert!(rules.admit(&headers(&[(header::HOST, refused)]), None).is_err(), "{refused}");
        }
        // No Host at all (HTTP/1.1 requires one), or two of them.
        assert!(rules.admit(&HeaderMap::new(), None).is_err());
        assert_eq!(rules.admit(&HeaderMap::new(), Some("127.0.0.1:8545")), Ok(()));
        let two = headers(&[(header::HOST, "127.0.0.1"), (header::HOST, "evil.example")]);
        assert!(rules.admit(&two, None).is_err());
    }

    #[test]
    fn only_the_allowed_origins_pass_and_no_origin_passes() {
        let rules = rules(None);
        let host = (header::HOST, "127.0.0.1:8545");
        assert_eq!(rules.admit(&headers(std::slice::from_ref(&host)), None), Ok(()));
        assert_eq!(rules.admit(&headers(&[host.clone(), (header::ORIGIN, "https://APP.example")]), None), Ok(()));
        for refused in ["http://app.example", "https://app.example:8443", "null", "https://evil.example"] {
            assert!(rules.admit(&headers(&[host.clone(), (header::ORIGIN, refused)]), None).is_err(), "{refused}");
        }
    }

    #[test]
    fn a_page_of_the_node_itself_may_call_it_and_other_origins_may_not() {
        let rules = rules(None);
        let admit =
            |host: &str, origin: &str| rules.admit(&headers(&[(header::HOST, host), (header::ORIGIN, origin)]), None);
        // The explorer, loaded from the node's own address and port (or through a TLS proxy
        // that keeps the Host).
        for (host, origin) in [
            ("127.0.0.1:26601", "http://127.0.0.1:26601"),
            ("localhost:26601", "HTTP://LOCALHOST:26601"),
            ("[::1]:8545", "http://[::1]:8545"),
            ("node.example", "https://node.example"),
        ] {
            assert_eq!(admit(host, origin), Ok(()), "{host} {origin}");
        }
        // Any other origin: another port of the same host (another node, a local dev server),
        // another host, another scheme, a sandboxed page, a prefix or suffix trick.
        for (host, origin) in [
            ("127.0.0.1:26601", "http://127.0.0.1:26604"),
            ("127.0.0.1:26601", "http://127.0.0.1"),
            ("127.0.0.1:26601", "http://localhost:26601"),
            ("127.0.0.1:26601", "https://evil.example"),
            ("127.0.0.1:26601", "ws://127.0.0.1:26601"),
            ("127.0.0.1:26601", "null"),
            ("127.0.0.1:26601", "127.0.0.1:26601"),
            ("127.0.0.1:26601", "http://127.0.0.1:26601.evil.example"),
            ("127.0.0.1:26601", "http://user@127.0.0.1:26601"),
        ] {
            assert!(admit(host, origin).is_err(), "{host} {origin}");
        }
        // A rebinding page is same-origin with its own name, and its Host is refused first.
        assert!(admit("evil.example:26601", "http://evil.example:26601").is_err());
    }

    #[test]
    fn the_token_is_checked_only_when_set() {
        assert_eq!(rules(None).submitter(&headers(&[])), None);
        let rules = rules(Some("0123456789abcdef-secret\n"));
        assert_eq!(rules.submitter(&headers(&[])), Some(Submitter::NoToken));
        let with = |value: &str| rules.submitter(&headers(&[(header::AUTHORIZATION, value)]));
        assert_eq!(with("Bearer 0123456789abcdef-secret"), Some(Submitter::Authorized));
        assert_eq!(with("bearer 0123456789abcdef-secret"), Some(Submitter::Authorized));
        assert_eq!(with("Bearer 0123456789abcdef-secreT"), Some(Submitter::WrongToken));
        assert_eq!(with("Bearer 0123456789abcdef"), Some(Submitter::WrongToken));
        assert_eq!(with("Basic 0123456789abcdef-secret"), Some(Submitter::WrongToken));
        assert_eq!(with("Bearer"), Some(Submitter::WrongToken));
    }

    #[test]
    fn a_client_header_carries_the_token_the_server_accepts() {
        let headers = bearer_headers("0123456789abcdef-secret\n").expect("headers");
        assert!(!format!("{headers:?}").contains("secret"));
        assert_eq!(rules(Some("0123456789abcdef-secret")).submitter(&headers), Some(Submitter::Authorized));
        assert!(bearer_headers(" ").is_err());
        assert!(bearer_headers("two words").is_err());
    }

    #[test]
    fn tokens_must_be_long_visible_ascii_and_never_show_in_debug() {
        assert_eq!(SubmitToken::new("short").map(|_| ()), Err(TokenError::TooShort { found: 5 }));
        assert_eq!(SubmitToken::new("has a space in it!!").map(|_| ()), Err(TokenError::NotVisibleAscii));
        let token = SubmitToken::new("0123456789abcdef-secret").expect("token");
        assert!(!format!("{token:?}").contains("secret"));
    }

    #[test]
    fn the_gate_refuses_only_unauthorized_submissions() {
        let gate = SubmitGate::new((), true);
        let mut extensions = http::Extensions::new();
        assert!(gate.refusal("chain_status", &extensions).is_none());
        let refusal = gate.refusal("tx_submit", &extensions).expect("refused");
        assert_eq!(refusal.code(), error::UNAUTHORIZED);
        extensions.insert(Submitter::WrongToken);
        assert!(gate.refusal("tx_submitAndWait", &extensions).is_some());
        extensions.insert(Submitter::Authorized);
        assert!(gate.refusal("tx_submit", &extensions).is_none());
        assert!(SubmitGate::new((), false).refusal("tx_submit", &http::Extensions::new()).is_none());
    }
}
