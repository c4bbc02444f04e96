use std::collections::BTreeSet;

use crate::test_support::TestBackend;

#[test]
fn the_document_lists_exactly_the_served_methods() {
    let module = crate::module(TestBackend::idle("openrpc"));
    let served: BTreeSet<&str> = module.method_names().collect();
    let document = super::document();
    let described: BTreeSet<&str> = document["methods"]
        .as_array()
        .expect("methods")
        .iter()
        .map(|method| method["name"].as_str().expect("name"))
        .collect();
    assert_eq!(served, described);
}

#[test]
fn docs_openrpc_json_is_the_served_document() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openrpc.json");
    let expected = serde_json::to_string_pretty(&super::document()).expect("json") + "\n";
    let found = std::fs::read_to_string(path).unwrap_or_default();
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(path, &expected).expect("write docs/openrpc.json");
        return;
    }
    assert!(found == expected, "docs/openrpc.json is stale: run `UPDATE_DOCS=1 cargo test --workspace -- openrpc`");
}
