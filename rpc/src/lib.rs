//! How the world talks to a Stele node: the JSON-RPC API (jsonrpsee, HTTP and WebSocket on one
//! port), its wire types and the server over a small backend trait that the node implements.
//!
//! Depends on `ledger` and `consensus` for the types it serves; never on the node or
//! networking. The API is one trait ([`api::SteleApiServer`] / [`api::SteleApiClient`]), so the
//! server and the Rust client cannot drift; [`error`] is the one place that maps failures to
//! JSON-RPC codes.

pub mod api;
mod backend;
mod batch;
pub mod error;
pub mod openrpc;
mod server;
pub mod types;

pub use backend::{Backend, EvidenceRecord, NodeStatus, Peer, SubmitError};
pub use server::{Limits, RpcServer, module, start};
