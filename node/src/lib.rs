//! The Stele node: networking, the mempool, the consensus driver, block sync, configuration and
//! metrics, behind the `stele` binary. The only crate with sockets, an async runtime and `main`.
//!
//! Today it holds the mempool, the configuration and the metrics; networking, the driver and
//! sync arrive with the node issue.

pub mod config;
pub mod mempool;
pub mod metrics;
