//! Launching and operating local networks of `stele` processes, the load generator behind
//! `stele bench`, and the multi-process fault tests.
//!
//! Drives `stele` as a process and talks to it over JSON-RPC; never links the node crate.
//! Arrives with the testnet issue; empty until then.
