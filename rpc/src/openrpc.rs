//! The OpenRPC description of the API, served by `rpc.discover` and kept in docs/openrpc.json
//! (a test checks both list exactly the methods the server registers).

use serde_json::{Value, json};

/// A parameter: name, whether required, JSON schema, description.
type Param = (&'static str, bool, Value, &'static str);

fn hex_string(description: &str) -> Value {
    json!({"type": "string", "pattern": "^0x[0-9a-fA-F]*$", "description": description})
}

fn height() -> Value {
    json!({"type": "integer", "minimum": 0})
}

fn object(description: &str) -> Value {
    json!({"type": "object", "description": description})
}

fn method(name: &str, summary: &str, params: Vec<Param>, result: (&str, Value)) -> Value {
    let params: Vec<Value> = params
        .into_iter()
        .map(|(name, required, schema, description)| {
            json!({"name": name, "required": required, "schema": schema, "description": description})
        })
        .collect();
    json!({
        "name": name,
        "summary": summary,
        "paramStructure": "by-position",
        "params": params,
        "result": {"name": result.0, "schema": result.1},
    })
}

/// The OpenRPC 1.2.6 document of the API.
pub fn document() -> Value {
    let methods = vec![
        method("chain_status", "The node's view of the chain.", vec![], ("status", object("ChainStatus"))),
        method(
            "chain_getBlock",
            "A committed block by height or hash.",
            vec![("block", true, json!({"oneOf": [height(), hex_string("header hash")]}), "height or 0x hash")],
            ("block", object("Block: header, certificate, transactions")),
        ),
        method(
            "chain_getBlocks",
            "Committed blocks from..=to, at most 100.",
            vec![("from", true, height(), "first height (>= 1)"), ("to", true, height(), "last height")],
            ("blocks", json!({"type": "array", "items": object("Block")})),
        ),
        method(
            "chain_getValidators",
            "The validator set certifying a height.",
            vec![("height", false, height(), "default: the next block")],
            ("validators", object("Validators")),
        ),
        method(
            "chain_getEvidence",
            "Pairs of conflicting votes signed by one validator that this node saw, oldest first.",
            vec![],
            (
                "evidence",
                json!({"type": "array", "items": object("Evidence: kind, validator, public_key, height, view, first, second, seen_at_ms, reported_by")}),
            ),
        ),
        method(
            "chain_getDivergences",
            "Blocks a peer holds certified at a height where this node certified another (proof that more than f validators are Byzantine), first found first.",
            vec![],
            (
                "divergences",
                json!({"type": "array", "items": object("Divergence: height, peer, seen_at_ms, ours, theirs ({header, certificate} each), signed_both")}),
            ),
        ),
        method(
            "chain_subscribeBlocks",
            "WebSocket: one chain_block notification (a header) per committed block.",
            vec![],
            ("subscription", json!({"type": "string"})),
        ),
        method(
            "chain_unsubscribeBlocks",
            "Ends a chain_subscribeBlocks subscription.",
            vec![("subscription", true, json!({"type": "string"}), "the subscription id")],
            ("unsubscribed", json!({"type": "boolean"})),
        ),
        method(
            "tx_submit",
            "Admits a transaction to the mempool.",
            vec![("transaction", true, hex_string("borsh-encoded signed transaction"), "0x-hex")],
            ("hash", hex_string("transaction hash")),
        ),
        method(
            "tx_submitAndWait",
            "Submits a transaction and waits until it is committed.",
            vec![
                ("transaction", true, hex_string("borsh-encoded signed transaction"), "0x-hex"),
                ("timeout_ms", false, json!({"type": "integer", "minimum": 0, "maximum": 60000}), "default 60000"),
            ],
            ("status", object("TxStatus with receipt")),
        ),
        method(
            "tx_get",
            "Whether a transaction is pending, committed or unknown.",
            vec![("hash", true, hex_string("transaction hash"), "")],
            ("status", object("TxStatus")),
        ),
        method(
            "tx_getProof",
            "A self-contained proof that a transaction was committed, checkable from the genesis.",
            vec![("hash", true, hex_string("transaction hash"), "")],
            ("bundle", object("TxProofBundle")),
        ),
        method(
            "state_getAccount",
            "An account at a height.",
            vec![
                ("address", true, hex_string("20-byte address"), ""),
                ("height", false, height(), "default: the head"),
            ],
            ("account", object("Account")),
        ),
        method(
            "state_getRecord",
            "A record at a height.",
            vec![("key", true, hex_string("record key"), ""), ("height", false, height(), "default: the head")],
            ("record", object("Record")),
        ),
        method(
            "state_getProof",
            "A state proof of an account or record against a certified state root.",
            vec![
                (
                    "target",
                    true,
                    json!({"oneOf": [
                        {"type": "object", "properties": {"account": hex_string("address")}, "required": ["account"]},
                        {"type": "object", "properties": {"record": hex_string("key")}, "required": ["record"]},
                    ]}),
                    "{\"account\": address} or {\"record\": key}",
                ),
                ("height", false, height(), "default: the head"),
            ],
            ("proof", object("StateProof")),
        ),
        method(
            "net_peers",
            "The connected peers.",
            vec![],
            ("peers", json!({"type": "array", "items": object("PeerInfo")})),
        ),
        method("rpc.discover", "This document.", vec![], ("document", object("OpenRPC document"))),
    ];
    json!({
        "openrpc": "1.2.6",
        "info": {
            "title": "Stele JSON-RPC API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Errors and examples: docs/rpc.md",
        },
        "methods": methods,
    })
}

#[cfg(test)]
#[path = "openrpc_test.rs"]
mod tests;
