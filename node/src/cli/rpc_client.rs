//! The JSON-RPC client the CLI commands share, and plain error messages for its failures.

use std::path::Path;

use anyhow::Context;
use jsonrpsee::{
    core::client::Error as ClientError,
    http_client::{HttpClient, HttpClientBuilder},
};

/// A client of the node at `url` (http://host:port).
pub fn client(url: &str) -> anyhow::Result<HttpClient> {
    builder().build(url).map_err(|error| anyhow::anyhow!("--rpc {url}: {error}"))
}

/// A client of the node at `url` that sends `token` as `Authorization: Bearer <token>` (the
/// node's `rpc.submit_token_file`, needed there for submissions).
pub fn client_with_token(url: &str, token: Option<&str>) -> anyhow::Result<HttpClient> {
    let mut builder = builder();
    if let Some(token) = token {
        builder = builder.set_headers(rpc::access::bearer_headers(token).context("the submit token")?);
    }
    builder.build(url).map_err(|error| anyhow::anyhow!("--rpc {url}: {error}"))
}

fn builder() -> HttpClientBuilder {
    HttpClientBuilder::default().max_response_size(256 * 1024 * 1024)
}

/// The submit token: from `file` if given, else from `$STELE_RPC_TOKEN` if set, else none.
pub fn token(file: Option<&Path>) -> anyhow::Result<Option<String>> {
    if let Some(file) = file {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("--token-file {}: cannot read it", file.display()))?;
        return Ok(Some(text.trim().to_string()));
    }
    Ok(std::env::var(rpc::access::TOKEN_ENV)
        .ok()
        .map(|token| token.trim().to_string())
        .filter(|token| !token.is_empty()))
}

/// A failed call as a message a person can act on.
pub fn describe(url: &str, error: ClientError) -> anyhow::Error {
    match error {
        ClientError::Call(error) if error.code() == rpc::error::UNAUTHORIZED => anyhow::anyhow!(
            "the node refused: {} (code {}); pass its token with --token-file FILE or ${}",
            error.message(),
            error.code(),
            rpc::access::TOKEN_ENV
        ),
        ClientError::Call(error) => anyhow::anyhow!("the node refused: {} (code {})", error.message(), error.code()),
        ClientError::Transport(error) => anyhow::anyhow!("cannot reach the node at {url}: {error}"),
        ClientError::RequestTimeout => anyhow::anyhow!("the node at {url} did not answer in time"),
        other => anyhow::anyhow!("{url}: {other}"),
    }
}
