//! How the world talks to a Stele node: the JSON-RPC API (jsonrpsee, HTTP and WebSocket on one
//! port), its wire types and the server over a small backend trait that the node implements.
//!
//! Depends on `ledger` for the types it serves; never on the node, networking or consensus
//! internals. Arrives with the JSON-RPC issue; empty until then.
