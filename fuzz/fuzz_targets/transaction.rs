//! libFuzzer entry point; the logic (shared with node/tests/fuzz_corpus.rs) is in
//! targets/transaction.rs.
#![no_main]

libfuzzer_sys::fuzz_target!(init: stele_fuzz::seeds::write_if_asked(), |data: &[u8]| {
    let _ = stele_fuzz::transaction::run(data);
});
