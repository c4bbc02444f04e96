//! What every scenario must leave true: the nodes agree block by block (header hash and state
//! root at every common height), every acknowledged transfer is in every node's chain exactly
//! once (at the height it was acknowledged at), every node stops cleanly, and `stele audit`
//! re-verifies every node's store from the genesis.

use std::{collections::HashMap, path::Path, process::Command, time::Duration};

use consensus::{Digest, Height};
use rpc::api::{BLOCKS_PAGE_MAX, SteleApiClient};

use super::{cluster::Cluster, load::Acknowledged};
use crate::Error;

/// What the checks found.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Checked {
    /// Height every node reached and was compared up to.
    pub height: Height,
    /// Blocks compared (per node pair, summed over heights).
    pub blocks_compared: u64,
    /// Acknowledged transfers looked up in every node's chain.
    pub transactions_checked: u64,
    /// Every rule broken, in words. Empty: the scenario passed.
    pub violations: Vec<String>,
}

/// One node's chain as the checks need it.
struct Chain {
    /// `(header hash, state root)` at heights `1..`.
    headers: Vec<(Digest, Digest)>,
    /// Each transaction hash with the heights it appears at.
    transactions: HashMap<Digest, Vec<Height>>,
}

async fn read_chain(cluster: &Cluster, index: usize, height: Height) -> Result<Chain, Error> {
    let client = cluster.client(index, Duration::from_secs(30))?;
    let mut chain = Chain { headers: Vec::with_capacity(height as usize), transactions: HashMap::new() };
    let mut from = 1;
    while from <= height {
        let to = (from + BLOCKS_PAGE_MAX - 1).min(height);
        let blocks = client.chain_get_blocks(from, to).await.map_err(|error| {
            Error::Launch(format!("{}: chain_getBlocks {from}..{to}: {error}", cluster.name(index)))
        })?;
        if blocks.len() as u64 != to - from + 1 {
            return Err(Error::Launch(format!(
                "{}: asked {from}..{to}, got {} blocks",
                cluster.name(index),
                blocks.len()
            )));
        }
        for block in blocks {
            chain.headers.push((block.header.hash, block.header.state_root));
            for transaction in block.transactions {
                chain.transactions.entry(transaction.hash).or_default().push(block.header.height);
            }
        }
        from = to + 1;
    }
    Ok(chain)
}

/// Waits (up to `timeout`) until every node has reached `target`; returns each node's height
/// at the end (a node that did not reach it is a liveness violation for the caller to report).
pub async fn wait_for_height(cluster: &mut Cluster, target: Height, timeout: Duration) -> Vec<Option<Height>> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let heights = heights(cluster).await;
        let done = heights.iter().all(|height| height.is_some_and(|height| height >= target));
        if done || tokio::time::Instant::now() >= deadline {
            return heights;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Each node's committed height (`None`: it does not answer).
pub async fn heights(cluster: &mut Cluster) -> Vec<Option<Height>> {
    let mut heights = Vec::with_capacity(cluster.len());
    for index in 0..cluster.len() {
        let height = match cluster.client(index, Duration::from_secs(2)) {
            Ok(client) => client.chain_status().await.ok().map(|status| status.height),
            Err(_) => None,
        };
        heights.push(height);
    }
    heights
}

/// The highest height any node answers with.
pub async fn max_height(cluster: &mut Cluster) -> Height {
    heights(cluster).await.into_iter().flatten().max().unwrap_or(0)
}

/// Compares every node's chain up to the height all of them reached, and looks up every
/// acknowledged transfer. Nodes must be running.
pub async fn chains(cluster: &mut Cluster, acknowledged: &[Acknowledged]) -> Result<Checked, Error> {
    let mut checked = Checked::default();
    // Everyone must catch up with the highest acknowledgement and with each other.
    let highest_acknowledged = acknowledged.iter().map(|ack| ack.height).max().unwrap_or(0);
    let target = max_height(cluster).await.max(highest_acknowledged);
    let heights = wait_for_height(cluster, target, Duration::from_secs(120)).await;
    for (index, height) in heights.iter().enumerate() {
        if !height.is_some_and(|height| height >= target) {
            checked
                .violations
                .push(format!("{} did not reach height {target} within 120 s (at {height:?})", cluster.name(index)));
        }
    }
    let common = heights.iter().flatten().copied().min().unwrap_or(0).min(target);
    checked.height = common;
    let mut chains = Vec::with_capacity(cluster.len());
    for index in 0..cluster.len() {
        chains.push(read_chain(cluster, index, common).await?);
    }
    let names: Vec<String> = (0..cluster.len()).map(|index| cluster.name(index).to_string()).collect();
    compare(&names, &chains, acknowledged, common, &mut checked);
    Ok(checked)
}

/// The pure half of [`chains`]: every chain against the first, every acknowledgement against
/// every chain.
fn compare(names: &[String], chains: &[Chain], acknowledged: &[Acknowledged], common: Height, checked: &mut Checked) {
    let Some(reference) = chains.first() else { return };
    for (index, chain) in chains.iter().enumerate().skip(1) {
        for (offset, (header, other)) in reference.headers.iter().zip(&chain.headers).enumerate() {
            checked.blocks_compared += 1;
            let height = offset + 1;
            if header.0 != other.0 {
                checked.violations.push(format!(
                    "fork at height {height}: {} has block {}, {} has {}",
                    names[0], header.0, names[index], other.0
                ));
                break;
            }
            if header.1 != other.1 {
                checked
                    .violations
                    .push(format!("state roots differ at height {height}: {} vs {}", names[0], names[index]));
                break;
            }
        }
    }
    for ack in acknowledged {
        if ack.height > common {
            checked.violations.push(format!(
                "transfer {} acknowledged at height {} above the common height {common}",
                ack.hash, ack.height
            ));
            continue;
        }
        checked.transactions_checked += 1;
        for (index, chain) in chains.iter().enumerate() {
            let by = &names[ack.node];
            match chain.transactions.get(&ack.hash).map(Vec::as_slice) {
                Some([height]) if *height == ack.height => {}
                Some(found) => checked.violations.push(format!(
                    "transfer {} (acknowledged at height {} by {by}) is at heights {found:?} on {}",
                    ack.hash, ack.height, names[index]
                )),
                None => checked.violations.push(format!(
                    "transfer {} (acknowledged at height {} by {by}) is missing on {}",
                    ack.hash, ack.height, names[index]
                )),
            }
        }
    }
}

/// Stops every node (each must exit 0) and audits each store with `stele audit --home`.
pub fn stop_and_audit(cluster: &mut Cluster, stele: &Path, checked: &mut Checked) {
    for (name, status) in cluster.stop_all() {
        if !status.is_some_and(|status| status.success()) {
            checked.violations.push(format!("{name} did not stop cleanly on SIGTERM: {status:?}"));
        }
    }
    for index in 0..cluster.len() {
        let output = Command::new(stele).arg("audit").arg("--home").arg(cluster.home(index)).output();
        match output {
            Ok(output) if output.status.success() => {}
            Ok(output) => checked.violations.push(format!(
                "stele audit --home {} failed: {}{}",
                cluster.home(index).display(),
                String::from_utf8_lossy(&output.stdout).trim(),
                String::from_utf8_lossy(&output.stderr).trim()
            )),
            Err(error) => checked.violations.push(format!("cannot run stele audit: {error}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(byte: u8) -> Digest {
        Digest([byte; 32])
    }

    fn chain(blocks: &[(u8, u8, &[u8])]) -> Chain {
        let mut chain = Chain { headers: Vec::new(), transactions: HashMap::new() };
        for (offset, (hash, root, transactions)) in blocks.iter().enumerate() {
            chain.headers.push((digest(*hash), digest(*root)));
            for transaction in *transactions {
                chain.transactions.entry(digest(*transaction)).or_default().push(offset as Height + 1);
            }
        }
        chain
    }

    fn names() -> Vec<String> {
        vec!["node0".into(), "node1".into()]
    }

    fn ack(hash: u8, height: Height) -> Acknowledged {
        Acknowledged { hash: digest(hash), height, node: 1 }
    }

    #[test]
    fn agreeing_chains_with_every_acknowledgement_pass() {
        let blocks: &[(u8, u8, &[u8])] = &[(1, 11, &[100]), (2, 12, &[101, 102])];
        let mut checked = Checked::default();
        compare(&names(), &[chain(blocks), chain(blocks)], &[ack(100, 1), ack(102, 2)], 2, &mut checked);
        assert!(checked.violations.is_empty(), "{:?}", checked.violations);
        assert_eq!((checked.blocks_compared, checked.transactions_checked), (2, 2));
    }

    #[test]
    fn a_fork_a_state_root_a_lost_and_a_duplicated_transfer_are_each_violations() {
        let ours: &[(u8, u8, &[u8])] = &[(1, 11, &[100]), (2, 12, &[101])];
        let mut checked = Checked::default();
        compare(&names(), &[chain(ours), chain(&[(1, 11, &[100]), (3, 12, &[])])], &[], 2, &mut checked);
        assert!(checked.violations[0].contains("fork at height 2"), "{:?}", checked.violations);

        let mut checked = Checked::default();
        compare(&names(), &[chain(ours), chain(&[(1, 11, &[100]), (2, 99, &[101])])], &[], 2, &mut checked);
        assert!(checked.violations[0].contains("state roots differ at height 2"), "{:?}", checked.violations);

        let mut checked = Checked::default();
        compare(&names(), &[chain(ours), chain(ours)], &[ack(7, 1)], 2, &mut checked);
        assert_eq!(checked.violations.len(), 2, "missing on both: {:?}", checked.violations);
        assert!(checked.violations[0].contains("missing on node0"));

        let twice: &[(u8, u8, &[u8])] = &[(1, 11, &[100]), (2, 12, &[100])];
        let mut checked = Checked::default();
        compare(&names(), &[chain(twice), chain(twice)], &[ack(100, 1)], 2, &mut checked);
        assert!(checked.violations[0].contains("at heights [1, 2]"), "{:?}", checked.violations);

        let mut checked = Checked::default();
        compare(&names(), &[chain(ours), chain(ours)], &[ack(101, 1)], 2, &mut checked);
        assert!(
            checked.violations[0].contains("at heights [2]"),
            "acknowledged at the wrong height: {:?}",
            checked.violations
        );
    }
}
