//! The node's Prometheus metrics: one struct, updated by the driver (never by the consensus
//! core), served in the text format at `metrics.listen`.

use prometheus_client::{
    encoding::text::encode,
    metrics::{
        counter::Counter,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};

/// Every metric the node exports, all prefixed `stele_`.
pub struct Metrics {
    registry: Registry,
    /// Height of the last committed block.
    pub height: Gauge,
    /// Current consensus view within the height being decided.
    pub view: Gauge,
    /// View changes this node took part in.
    pub view_changes: Counter,
    /// Transactions committed.
    pub committed_txs: Counter,
    /// Transactions pending in the mempool.
    pub mempool_txs: Gauge,
    /// Bytes pending in the mempool.
    pub mempool_bytes: Gauge,
    /// Connected peers.
    pub peers: Gauge,
    /// Seconds from a block's proposal to its commit on this node.
    pub commit_latency_seconds: Histogram,
    /// Transactions per committed block.
    pub block_txs: Histogram,
    /// Encoded bytes per committed block.
    pub block_bytes: Histogram,
    /// Distinct pieces of evidence recorded (conflicting votes of one validator).
    pub evidence: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("stele");
        let height = Gauge::default();
        let view = Gauge::default();
        let view_changes = Counter::default();
        let committed_txs = Counter::default();
        let mempool_txs = Gauge::default();
        let mempool_bytes = Gauge::default();
        let peers = Gauge::default();
        // 5 ms to about 20 s.
        let commit_latency_seconds = Histogram::new(exponential_buckets(0.005, 2.0, 13));
        // 1 to about 32,000 transactions, 256 B to about 16 MiB.
        let block_txs = Histogram::new(exponential_buckets(1.0, 2.0, 16));
        let block_bytes = Histogram::new(exponential_buckets(256.0, 2.0, 17));
        let evidence = Counter::default();
        registry.register("height", "Height of the last committed block", height.clone());
        registry.register("view", "Consensus view of the height being decided", view.clone());
        registry.register("view_changes", "View changes this node took part in", view_changes.clone());
        registry.register("committed_txs", "Transactions committed", committed_txs.clone());
        registry.register("mempool_txs", "Transactions pending in the mempool", mempool_txs.clone());
        registry.register("mempool_bytes", "Bytes pending in the mempool", mempool_bytes.clone());
        registry.register("peers", "Connected peers", peers.clone());
        registry.register(
            "commit_latency_seconds",
            "Seconds from a block's proposal to its commit",
            commit_latency_seconds.clone(),
        );
        registry.register("block_txs", "Transactions per committed block", block_txs.clone());
        registry.register("block_bytes", "Encoded bytes per committed block", block_bytes.clone());
        registry.register("evidence", "Distinct pieces of evidence of misbehaviour recorded", evidence.clone());
        Metrics {
            registry,
            height,
            view,
            view_changes,
            committed_txs,
            mempool_txs,
            mempool_bytes,
            peers,
            commit_latency_seconds,
            block_txs,
            block_bytes,
            evidence,
        }
    }
}

impl Metrics {
    /// Records a committed block.
    pub fn block_committed(&self, height: u64, txs: usize, bytes: usize, latency_seconds: f64) {
        self.height.set(i64::try_from(height).unwrap_or(i64::MAX));
        self.committed_txs.inc_by(txs as u64);
        self.block_txs.observe(txs as f64);
        self.block_bytes.observe(bytes as f64);
        self.commit_latency_seconds.observe(latency_seconds);
    }

    /// The metrics in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut text = String::new();
        encode(&mut text, &self.registry).expect("writing to a String cannot fail");
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_metric_with_its_value() {
        let metrics = Metrics::default();
        metrics.block_committed(42, 1_000, 150_000, 0.25);
        metrics.block_committed(43, 10, 1_500, 0.05);
        metrics.mempool_txs.set(7);
        metrics.view_changes.inc();
        metrics.evidence.inc();
        let text = metrics.render();
        for line in [
            "stele_height 43",
            "stele_committed_txs_total 1010",
            "stele_mempool_txs 7",
            "stele_view_changes_total 1",
            "stele_evidence_total 1",
            "stele_commit_latency_seconds_count 2",
            "stele_block_txs_count 2",
            "stele_peers 0",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        assert!(text.contains("# HELP stele_block_bytes Encoded bytes per committed block"));
        assert!(text.ends_with("# EOF\n"));
    }
}
