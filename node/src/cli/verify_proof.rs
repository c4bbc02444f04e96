//! `stele verify-proof FILE --genesis genesis.json`: check a transaction proof offline.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use ledger::proof::TxProof;
use rpc::types::{TxProofBundle, from_hex};

/// Check a proof bundle (the JSON `stele query tx-proof` or `tx_getProof` gives) against a
/// genesis file, with no node.
#[derive(Args, Debug)]
pub struct VerifyProofArgs {
    /// The bundle (JSON).
    file: PathBuf,
    /// The network's genesis.json.
    #[arg(long)]
    genesis: PathBuf,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Verifies; an invalid proof is an error (non-zero exit).
pub fn run(arguments: VerifyProofArgs) -> anyhow::Result<()> {
    let genesis = genesis::GenesisDocument::load(&arguments.genesis)?.to_ledger()?;
    let text = std::fs::read_to_string(&arguments.file)
        .with_context(|| format!("cannot read {}", arguments.file.display()))?;
    let bundle: TxProofBundle =
        serde_json::from_str(&text).with_context(|| format!("{} is not a proof bundle", arguments.file.display()))?;
    let bytes = from_hex(&bundle.proof).map_err(|error| anyhow::anyhow!("proof: {error}"))?;
    let proof = TxProof::decode(&bytes).map_err(|error| anyhow::anyhow!("INVALID: {error}"))?;
    let claims = [
        (proof.tx_hash() == bundle.tx_hash, "tx_hash"),
        (proof.block.header.height == bundle.height, "height"),
        (proof.block.header.chain_id == bundle.chain_id, "chain_id"),
        (proof.included.tx_proof.index == bundle.index, "index"),
    ];
    if let Some((_, field)) = claims.iter().find(|(holds, _)| !holds) {
        anyhow::bail!("INVALID: the bundle's {field} does not match its proof");
    }
    proof.verify(&genesis).map_err(|error| anyhow::anyhow!("INVALID: {error}"))?;
    let receipt = &proof.included.receipt;
    if arguments.json {
        println!(
            "{}",
            serde_json::json!({
                "valid": true,
                "tx_hash": bundle.tx_hash,
                "height": bundle.height,
                "index": bundle.index,
                "succeeded": receipt.failure.is_none(),
                "signatures": proof.block.certificate.signatures.len(),
                "validator_changes": proof.validator_changes.len(),
            })
        );
    } else {
        println!(
            "valid: transaction {} committed at height {} (index {}) of chain {}, {}",
            bundle.tx_hash,
            bundle.height,
            bundle.index,
            bundle.chain_id,
            match &receipt.failure {
                None => "succeeded".to_string(),
                Some(failure) => format!("failed: {failure}"),
            }
        );
        println!(
            "certificate: {} signatures, checked against the validator set derived from the genesis through {} change(s)",
            proof.block.certificate.signatures.len(),
            proof.validator_changes.len()
        );
    }
    Ok(())
}
