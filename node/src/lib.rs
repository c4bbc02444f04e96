//! The Stele node: networking, the mempool, the consensus driver, block sync, configuration and
//! metrics, behind the `stele` binary. The only crate with sockets, an async runtime and `main`.
//!
//! Must not be depended on by any other workspace crate. Invariants kept here: the consensus
//! core's `Persist` outputs are durable before any later output runs; every block from outside
//! (sync) is verified against the validator set in force before it is stored; only peers the
//! ledger admits (plus configured observers) can connect.

pub mod admin;
pub mod agreement;
#[cfg(feature = "byzantine")]
pub mod byzantine;
pub mod config;
pub mod driver;
pub mod logging;
pub mod mempool;
pub mod metrics;
pub mod metrics_server;
pub mod node;
pub mod p2p;
pub mod rpc_backend;
pub mod scrub;
#[cfg(test)]
mod sim;
pub mod state_file;
pub mod verified;
