//! How the world talks to a Stele node: the JSON-RPC API (jsonrpsee, HTTP and WebSocket on one
//! port), its wire types and the server over a small backend trait that the node implements.
//!
//! Depends on `ledger` and `consensus` for the types it serves; never on the node or
//! networking. The API is one trait ([`api::SteleApiServer`] / [`api::SteleApiClient`]), so the
//! server and the Rust client cannot drift; [`error`] is the one place that maps failures to
//! JSON-RPC codes. Every request passes the access rules of [`access`] (origin, host, submit
//! token) before any method runs; every store read runs on the blocking pool, bounded; every
//! large result is built within the request's response budget. The same port answers the
//! plain-HTTP liveness and readiness probes `GET /health` and `GET /ready` ([`probes`]) and a
//! read-only block explorer at `/explorer/` ([`explorer`]).

pub mod access;
pub mod api;
mod backend;
mod batch;
mod budget;
pub mod error;
pub mod explorer;
mod methods;
pub mod openrpc;
pub mod probes;
mod server;
#[cfg(test)]
mod test_support;
pub mod types;

pub use access::{SubmitToken, TokenError};
pub use backend::{Backend, EvidenceRecord, NodeStatus, Peer, SubmitError};
pub use methods::{MAX_RESPONSE_BYTES_DEFAULT, READ_THREADS_DEFAULT, module};
pub use probes::{Readiness, SyncState};
pub use server::{Limits, RpcServer, start};
