//! The JSON-RPC client the CLI commands share, and plain error messages for its failures.

use jsonrpsee::{
    core::client::Error as ClientError,
    http_client::{HttpClient, HttpClientBuilder},
};

/// A client of the node at `url` (http://host:port).
pub fn client(url: &str) -> anyhow::Result<HttpClient> {
    HttpClientBuilder::default()
        .max_response_size(256 * 1024 * 1024)
        .build(url)
        .map_err(|error| anyhow::anyhow!("--rpc {url}: {error}"))
}

/// A failed call as a message a person can act on.
pub fn describe(url: &str, error: ClientError) -> anyhow::Error {
    match error {
        ClientError::Call(error) => anyhow::anyhow!("the node refused: {} (code {})", error.message(), error.code()),
        ClientError::Transport(error) => anyhow::anyhow!("cannot reach the node at {url}: {error}"),
        ClientError::RequestTimeout => anyhow::anyhow!("the node at {url} did not answer in time"),
        other => anyhow::anyhow!("{url}: {other}"),
    }
}
