use std::{net::SocketAddr, time::Duration};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::test_support::{TestBackend, body_of, exchange, header, host, limits};

const CALL: &str = r#"{"jsonrpc":"2.0","id":1,"method":"chain_status","params":[]}"#;

#[test]
fn paths_route_to_files_redirects_and_404s() {
    let get = |path: &str| route(&Method::GET, path, &HeaderMap::new());
    assert_eq!(get("/"), Route::Redirect("explorer/"));
    assert_eq!(get("/explorer"), Route::Redirect("explorer/"));
    assert_eq!(get("/explorer/"), Route::File(0));
    assert_eq!(get("/explorer/index.html"), Route::File(0));
    assert_eq!(get("/explorer/explorer.js"), Route::File(1));
    assert_eq!(get("/explorer/explorer.css"), Route::File(2));
    assert_eq!(get("/explorer/favicon.svg"), Route::File(3));
    for unknown in
        ["/explorer/nope", "/explorer//", "/explorer/../Cargo.toml", "/explorer/explorer.js/", "/explorer/%2e"]
    {
        assert_eq!(get(unknown), Route::NotFound, "{unknown}");
    }
    // Not the explorer's: JSON-RPC keeps every other path, and every other method on `/`.
    for other in ["/explorerx", "/health", "/rpc", "/explorer.js"] {
        assert_eq!(get(other), Route::PassOn, "{other}");
    }
    for method in [Method::POST, Method::OPTIONS, Method::PUT] {
        assert_eq!(route(&method, "/", &HeaderMap::new()), Route::PassOn, "{method}");
        assert_eq!(route(&method, "/explorer/", &HeaderMap::new()), Route::NotAllowed, "{method}");
    }
    let mut upgrade = HeaderMap::new();
    upgrade.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    assert_eq!(route(&Method::GET, "/", &upgrade), Route::PassOn);
    assert_eq!(route(&Method::HEAD, "/explorer/explorer.css", &HeaderMap::new()), Route::File(2));
}

#[test]
fn the_page_loads_only_embedded_files_and_etags_differ() {
    let page = ASSETS[0].body;
    for reference in
        page.split(['"', '\'']).filter(|part| part.ends_with(".js") || part.ends_with(".css") || part.ends_with(".svg"))
    {
        let path = format!("/{reference}");
        assert!(ASSETS.iter().any(|asset| asset.path == path), "index.html loads {reference}, which is not embedded");
        assert!(!reference.contains("//"), "index.html loads {reference} from elsewhere");
    }
    let mut etags: Vec<&str> = ASSETS.iter().map(|asset| asset.etag).collect();
    etags.sort_unstable();
    etags.dedup();
    assert_eq!(etags.len(), ASSETS.len());
    assert!(
        ASSETS.iter().all(|asset| asset.etag.len() == 18 && asset.etag.starts_with('"') && asset.etag.ends_with('"'))
    );
    assert_eq!(etag_of(b""), *b"\"cbf29ce484222325\"");
}

#[test]
fn the_policy_names_the_own_websocket_origin_only_for_a_plain_host() {
    let policy = content_security_policy(Some("127.0.0.1:26601"));
    assert!(policy.starts_with("default-src 'none'; script-src 'self'; style-src 'self';"), "{policy}");
    assert!(policy.contains("connect-src 'self' ws://127.0.0.1:26601 wss://127.0.0.1:26601;"), "{policy}");
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    for odd in [Some("a b"), Some("x;script-src *"), Some(""), None] {
        assert!(content_security_policy(odd).contains("connect-src 'self';"), "{odd:?}");
    }
}

/// The status line and headers of the answer to `head` (a request with no body), read up to
/// the blank line: an upgraded connection stays open, so reading to the end would wait.
async fn status_of(address: SocketAddr, head: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(address).await.expect("connect");
    stream.write_all(head.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    let mut byte = [0u8; 1];
    let read = async {
        while !answer.ends_with(b"\r\n\r\n") {
            match stream.read(&mut byte).await {
                Ok(1) => answer.push(byte[0]),
                _ => break,
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read).await.expect("answered in time");
    String::from_utf8_lossy(&answer).into_owned()
}

fn upgrade(host: &str, origin: Option<&str>) -> String {
    let origin = origin.map(|origin| format!("Origin: {origin}\r\n")).unwrap_or_default();
    format!(
        "GET / HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{origin}\r\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_explorer_is_served_beside_json_rpc_and_obeys_the_access_rules() {
    let server = crate::start("127.0.0.1:0".parse().expect("address"), limits(), TestBackend::idle("explorer"))
        .await
        .expect("start");
    let address = server.address();
    let own = format!("http://{address}");

    // Each file, with its type, the policy, nosniff and the cache validators.
    for (path, content_type, marker) in [
        ("/explorer/", "text/html; charset=utf-8", "<title>Stele explorer</title>"),
        ("/explorer/index.html", "text/html; charset=utf-8", "<title>Stele explorer</title>"),
        ("/explorer/explorer.js", "text/javascript; charset=utf-8", "chain_subscribeBlocks"),
        ("/explorer/explorer.css", "text/css; charset=utf-8", "--accent"),
        ("/explorer/favicon.svg", "image/svg+xml", "<svg"),
    ] {
        let (status, answer) = exchange(address, "GET", path, &host(address), "").await;
        assert_eq!(status, 200, "{path}: {answer}");
        assert_eq!(header(&answer, "content-type"), Some(content_type), "{path}");
        assert_eq!(header(&answer, "x-content-type-options"), Some("nosniff"), "{path}");
        assert_eq!(header(&answer, "cache-control"), Some("no-cache"), "{path}");
        let policy = header(&answer, "content-security-policy").expect("a policy");
        assert!(policy.starts_with("default-src 'none'"), "{path}: {policy}");
        assert!(policy.contains(&format!("connect-src 'self' ws://{address}")), "{path}: {policy}");
        assert!(body_of(&answer).contains(marker), "{path}");
        let length: usize = header(&answer, "content-length").and_then(|length| length.parse().ok()).expect("length");
        assert_eq!(length, body_of(&answer).len(), "{path}");

        // Revalidation: the same ETag answers 304 with no body.
        let etag = header(&answer, "etag").expect("an etag").to_string();
        let (status, answer) =
            exchange(address, "GET", path, &format!("{}If-None-Match: {etag}\r\n", host(address)), "").await;
        assert_eq!(status, 304, "{path}: {answer}");
        assert_eq!(body_of(&answer), "", "{path}");
        assert_eq!(header(&answer, "etag"), Some(etag.as_str()));

        // HEAD: the headers of the GET, no body.
        let (status, answer) = exchange(address, "HEAD", path, &host(address), "").await;
        assert_eq!(status, 200, "{path}: {answer}");
        assert_eq!(body_of(&answer), "", "HEAD {path}");
        assert_eq!(header(&answer, "content-length").and_then(|length| length.parse().ok()), Some(length));
    }

    // `/` and `/explorer` lead to the page.
    for path in ["/", "/explorer", "/?x=1"] {
        let (status, answer) = exchange(address, "GET", path, &host(address), "").await;
        assert_eq!(status, 302, "{path}: {answer}");
        assert_eq!(header(&answer, "location"), Some("explorer/"), "{path}");
    }

    // Unknown explorer paths: 404; other methods there: 405; never a panic or JSON-RPC.
    for path in ["/explorer/nope", "/explorer/../Cargo.toml", "/explorer/explorer.js/x", "/explorer/%00"] {
        let (status, answer) = exchange(address, "GET", path, &host(address), "").await;
        assert_eq!(status, 404, "{path}: {answer}");
        assert_eq!(header(&answer, "x-content-type-options"), Some("nosniff"));
    }
    let json = format!("{}Content-Type: application/json\r\n", host(address));
    for (method, path) in [("POST", "/explorer/"), ("PUT", "/explorer/explorer.js"), ("DELETE", "/explorer")] {
        let (status, answer) = exchange(address, method, path, &json, CALL).await;
        assert_eq!(status, 405, "{method} {path}: {answer}");
        assert_eq!(header(&answer, "allow"), Some("GET, HEAD"));
        assert!(!answer.contains("jsonrpc"), "{answer}");
    }

    // JSON-RPC is untouched: from a client (no Origin) and from the page itself (same origin).
    for headers in [json.clone(), format!("{json}Origin: {own}\r\n")] {
        let (status, answer) = exchange(address, "POST", "/", &headers, CALL).await;
        assert_eq!(status, 200, "{headers}: {answer}");
        assert!(body_of(&answer).contains(r#""chain_id":"explorer""#), "{answer}");
    }
    // The page's WebSocket: its own origin may open one, a foreign one may not.
    let host_port = address.to_string();
    assert!(status_of(address, &upgrade(&host_port, Some(&own))).await.starts_with("HTTP/1.1 101"));
    assert!(status_of(address, &upgrade(&host_port, None)).await.starts_with("HTTP/1.1 101"));
    assert!(status_of(address, &upgrade(&host_port, Some("http://evil.example"))).await.starts_with("HTTP/1.1 403"));

    // The access rules come first: a foreign Host (DNS rebinding) or Origin gets 403, for the
    // files as for JSON-RPC; another port of the same host is another origin.
    let port = address.port();
    for path in ["/explorer/", "/explorer/explorer.js", "/"] {
        let rebinding = format!("Host: evil.example:{port}\r\nOrigin: http://evil.example:{port}\r\n");
        assert_eq!(exchange(address, "GET", path, &rebinding, "").await.0, 403, "{path}");
        let foreign = format!("{}Origin: http://evil.example\r\n", host(address));
        assert_eq!(exchange(address, "GET", path, &foreign, "").await.0, 403, "{path}");
    }
    let other_port = format!("{json}Origin: http://127.0.0.1:{}\r\n", port.wrapping_add(3));
    assert_eq!(exchange(address, "POST", "/", &other_port, CALL).await.0, 403);
    let foreign = format!("{json}Origin: http://evil.example\r\n");
    assert_eq!(exchange(address, "POST", "/", &foreign, CALL).await.0, 403);
    // An allowed name passes, and its page is same-origin too.
    let named =
        format!("Host: node.test:{port}\r\nContent-Type: application/json\r\nOrigin: http://node.test:{port}\r\n");
    assert_eq!(exchange(address, "POST", "/", &named, CALL).await.0, 200);
    assert_eq!(exchange(address, "GET", "/explorer/", &format!("Host: node.test:{port}\r\n"), "").await.0, 200);
    server.stop().await;
}
