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
//!
//! Two halves that meet only in `server::start`, which hands the method table to the
//! transport: the handlers (`handlers`: one module per method namespace, `chain`, `tx`,
//! `state`, `net`, over the typed store reads of `reads`) know nothing of sockets, headers or
//! batches; the transport (`server`: accept loop and limits; `access`, `batch`, `budget`,
//! `probes`, `explorer`: middleware) knows nothing of what a method does. The response budget
//! is the one thing both see: the batch middleware creates it, the handlers charge it.

// The definition, shared by server and client.
pub mod api;
pub mod error;
pub mod openrpc;
pub mod types;

// Handlers: what each method does, over the node's [`Backend`].
mod backend;
mod handlers;
mod reads;

// Transport: the accept loop and limits (`server`), and the middleware every request passes
// (access rules, batches and their response budget, probes, the explorer's files).
pub mod access;
mod batch;
mod budget;
pub mod explorer;
pub mod probes;
mod server;

#[cfg(test)]
mod test_support;

pub use access::{SubmitToken, TokenError};
pub use backend::{Backend, EvidenceRecord, NodeStatus, Peer, SubmitError};
pub use handlers::{MAX_RESPONSE_BYTES_DEFAULT, READ_THREADS_DEFAULT, module};
pub use probes::{Readiness, SyncState};
pub use server::{Limits, RpcServer, start};
