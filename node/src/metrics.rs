//! The node's Prometheus metrics: one struct, updated by the driver (never by the consensus
//! core), served in the text format at `metrics.listen`.
//!
//! Names follow Prometheus's conventions: the `stele_` prefix, base units named by a suffix
//! (`_seconds`, `_bytes`; registered with their unit, so the text carries `# UNIT` too), a plural
//! noun for what a gauge or histogram counts (`_transactions`, `_peers`), and `_total` on every
//! counter (prometheus-client appends it). `deploy/grafana/stele-dashboard.json` queries them;
//! a test below fails if it queries one this struct does not export.

use std::sync::atomic::AtomicU64;

use prometheus_client::{
    encoding::text::encode,
    metrics::{
        counter::Counter,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::{Registry, Unit},
};

/// Every metric the node exports; each field's doc names it as exported.
pub struct Metrics {
    registry: Registry,
    /// `stele_height`: height of the last committed block.
    pub height: Gauge,
    /// `stele_view`: current consensus view within the height being decided.
    pub view: Gauge,
    /// `stele_view_changes_total`: view changes this node took part in.
    pub view_changes: Counter,
    /// `stele_committed_transactions_total`: transactions committed.
    pub committed_txs: Counter,
    /// `stele_mempool_transactions`: transactions pending in the mempool.
    pub mempool_txs: Gauge,
    /// `stele_mempool_size_bytes`: encoded bytes pending in the mempool.
    pub mempool_bytes: Gauge,
    /// `stele_peers`: connected peers.
    pub peers: Gauge,
    /// `stele_commit_latency_seconds`: from a height's start to its commit on this node.
    pub commit_latency_seconds: Histogram,
    /// `stele_block_transactions`: transactions per committed block.
    pub block_txs: Histogram,
    /// `stele_block_size_bytes`: encoded bytes per committed block.
    pub block_bytes: Histogram,
    /// `stele_evidence_total`: distinct pieces of evidence recorded (conflicting votes of one
    /// validator).
    pub evidence: Counter,
    /// `stele_proposals_rejected_total`: proposed blocks this node's checks refused (its peers'
    /// leaders proposing what this node will not vote for: a faulty leader, or rules that differ).
    pub proposals_rejected: Counter,
    /// `stele_scrub_height`: highest height the background scrub checked in its current pass.
    pub scrub_height: Gauge,
    /// `stele_scrub_passes_total`: full passes of the scrub over the stored chain.
    pub scrub_passes: Counter,
    /// `stele_scrub_errors_total`: damaged stored values the scrub found (each once).
    pub scrub_errors: Counter,
    /// `stele_scrub_blocks_checked_total`: blocks the scrub checked (its rate is the budget
    /// `checks.blocks_per_second` spent).
    pub scrub_blocks: Counter,
    /// `stele_scrub_seconds_total`: time the scrub's steps took, each on one thread of the
    /// blocking pool; its rate is the share of one core the scrub takes (an upper bound on its
    /// CPU: waits for the disk count too).
    pub scrub_seconds: Counter<f64, AtomicU64>,
    /// `stele_peer_divergence_total`: distinct blocks peers hold certified at a height where
    /// this node certified another (each is evidence of more than f Byzantine validators).
    pub peer_divergence: Counter,
    /// `stele_peer_comparisons_total`: peer answers compared with this node's chain.
    pub peer_comparisons: Counter,
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
        let proposals_rejected = Counter::default();
        let scrub_height = Gauge::default();
        let scrub_passes = Counter::default();
        let scrub_errors = Counter::default();
        let scrub_blocks = Counter::default();
        let scrub_seconds = Counter::<f64, AtomicU64>::default();
        let peer_divergence = Counter::default();
        let peer_comparisons = Counter::default();
        registry.register("height", "Height of the last committed block", height.clone());
        registry.register("view", "Consensus view of the height being decided", view.clone());
        registry.register("view_changes", "View changes this node took part in", view_changes.clone());
        registry.register("committed_transactions", "Transactions committed", committed_txs.clone());
        registry.register("mempool_transactions", "Transactions pending in the mempool", mempool_txs.clone());
        registry.register_with_unit(
            "mempool_size",
            "Encoded bytes pending in the mempool",
            Unit::Bytes,
            mempool_bytes.clone(),
        );
        registry.register("peers", "Connected peers", peers.clone());
        registry.register_with_unit(
            "commit_latency",
            "Seconds from the start of a height to its commit on this node",
            Unit::Seconds,
            commit_latency_seconds.clone(),
        );
        registry.register("block_transactions", "Transactions per committed block", block_txs.clone());
        registry.register_with_unit(
            "block_size",
            "Encoded bytes per committed block",
            Unit::Bytes,
            block_bytes.clone(),
        );
        registry.register("evidence", "Distinct pieces of evidence of misbehaviour recorded", evidence.clone());
        registry.register(
            "proposals_rejected",
            "Proposed blocks this node's checks refused",
            proposals_rejected.clone(),
        );
        registry.register("scrub_height", "Highest height the scrub checked in its current pass", scrub_height.clone());
        registry.register("scrub_passes", "Full passes of the scrub over the stored chain", scrub_passes.clone());
        registry.register("scrub_errors", "Damaged stored values the scrub found", scrub_errors.clone());
        registry.register("scrub_blocks_checked", "Blocks the scrub checked", scrub_blocks.clone());
        registry.register_with_unit("scrub", "Time the scrub's steps took", Unit::Seconds, scrub_seconds.clone());
        registry.register(
            "peer_divergence",
            "Blocks peers hold certified at a height where this node certified another",
            peer_divergence.clone(),
        );
        registry.register("peer_comparisons", "Peer answers compared with this node's chain", peer_comparisons.clone());
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
            proposals_rejected,
            scrub_height,
            scrub_passes,
            scrub_errors,
            scrub_blocks,
            scrub_seconds,
            peer_divergence,
            peer_comparisons,
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
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn renders_every_metric_with_its_value_under_its_conventional_name() {
        let metrics = Metrics::default();
        metrics.block_committed(42, 1_000, 150_000, 0.25);
        metrics.block_committed(43, 10, 1_500, 0.05);
        metrics.mempool_txs.set(7);
        metrics.mempool_bytes.set(2_048);
        metrics.view_changes.inc();
        metrics.evidence.inc();
        metrics.scrub_height.set(12);
        metrics.scrub_passes.inc();
        metrics.scrub_errors.inc_by(3);
        metrics.scrub_blocks.inc_by(40);
        metrics.scrub_seconds.inc_by(0.5);
        metrics.peer_divergence.inc();
        metrics.peer_comparisons.inc_by(5);
        let text = metrics.render();
        for line in [
            "stele_height 43",
            "stele_committed_transactions_total 1010",
            "stele_mempool_transactions 7",
            "stele_mempool_size_bytes 2048",
            "stele_view_changes_total 1",
            "stele_evidence_total 1",
            "stele_scrub_height 12",
            "stele_scrub_passes_total 1",
            "stele_scrub_errors_total 3",
            "stele_scrub_blocks_checked_total 40",
            "stele_scrub_seconds_total 0.5",
            "stele_peer_divergence_total 1",
            "stele_peer_comparisons_total 5",
            "stele_commit_latency_seconds_count 2",
            "stele_block_transactions_count 2",
            "stele_block_size_bytes_sum 151500.0",
            "stele_peers 0",
            "# TYPE stele_committed_transactions counter",
            "# UNIT stele_commit_latency_seconds seconds",
            "# UNIT stele_block_size_bytes bytes",
            "# UNIT stele_mempool_size_bytes bytes",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        assert!(text.contains("# HELP stele_block_size_bytes Encoded bytes per committed block"));
        assert!(text.ends_with("# EOF\n"));
    }

    /// The names of the series the node exports (what Prometheus stores), histograms' `_bucket`,
    /// `_sum` and `_count` included.
    fn exported() -> BTreeSet<String> {
        Metrics::default()
            .render()
            .lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| line.split(['{', ' ']).next())
            .map(str::to_string)
            .collect()
    }

    /// PromQL words that are not metric names: aggregations, keywords and modifiers.
    const PROMQL_WORDS: &[&str] = &[
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
        "limitk",
        "limit_ratio",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "offset",
        "and",
        "or",
        "unless",
        "atan2",
        "inf",
        "nan",
    ];

    /// Every metric name a PromQL expression selects: identifiers outside label matchers
    /// (`{...}`), range and subquery brackets (`[...]`), strings, Grafana variables (`$x`,
    /// `${x}`) and label lists (`by (...)`), that are neither numbers, functions (followed by
    /// `(`) nor PromQL words.
    fn metric_names(expression: &str) -> Vec<String> {
        let characters: Vec<char> = expression.chars().collect();
        let (mut names, mut index, mut braces, mut brackets) = (Vec::new(), 0, 0usize, 0usize);
        // Parentheses depth at which a `by (...)`-style label list is open.
        let (mut depth, mut label_list, mut label_list_next) = (0usize, None::<usize>, false);
        let is_start = |c: char| c.is_ascii_alphabetic() || c == '_' || c == ':';
        let is_part = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
        while index < characters.len() {
            let c = characters[index];
            match c {
                '"' | '\'' | '`' => {
                    index += 1;
                    while index < characters.len() && characters[index] != c {
                        index += if characters[index] == '\\' { 2 } else { 1 };
                    }
                    index += 1;
                    continue;
                }
                '{' => braces += 1,
                '}' => braces = braces.saturating_sub(1),
                '[' => brackets += 1,
                ']' => brackets = brackets.saturating_sub(1),
                '(' => {
                    depth += 1;
                    if label_list_next {
                        label_list = Some(depth);
                        label_list_next = false;
                    }
                }
                ')' => {
                    if label_list == Some(depth) {
                        label_list = None;
                    }
                    depth = depth.saturating_sub(1);
                }
                '$' => {
                    index += 1;
                    if characters.get(index) == Some(&'{') {
                        while index < characters.len() && characters[index] != '}' {
                            index += 1;
                        }
                        index += 1;
                    } else {
                        while index < characters.len() && is_part(characters[index]) {
                            index += 1;
                        }
                    }
                    continue;
                }
                c if c.is_ascii_digit()
                    || (c == '.' && characters.get(index + 1).is_some_and(char::is_ascii_digit)) =>
                {
                    // A number, exponent included (`1e-6`); durations only occur inside brackets.
                    index += 1;
                    while index < characters.len() {
                        let d = characters[index];
                        let sign_of_exponent = (d == '-' || d == '+') && matches!(characters[index - 1], 'e' | 'E');
                        if d.is_ascii_alphanumeric() || d == '.' || sign_of_exponent {
                            index += 1;
                        } else {
                            break;
                        }
                    }
                    continue;
                }
                c if is_start(c) => {
                    let start = index;
                    while index < characters.len() && is_part(characters[index]) {
                        index += 1;
                    }
                    let word: String = characters[start..index].iter().collect();
                    let next = characters[index..].iter().find(|c| !c.is_whitespace());
                    if matches!(word.as_str(), "by" | "without" | "on" | "ignoring" | "group_left" | "group_right") {
                        label_list_next = true;
                    } else if braces == 0
                        && brackets == 0
                        && label_list.is_none()
                        && next != Some(&'(')
                        && !PROMQL_WORDS.contains(&word.to_ascii_lowercase().as_str())
                    {
                        names.push(word);
                    }
                    continue;
                }
                _ => {}
            }
            index += 1;
        }
        names
    }

    /// Every PromQL expression of a Grafana dashboard (panel targets, at any depth), and the
    /// metric of each `label_values(metric, label)` variable query.
    fn dashboard_queries(value: &serde_json::Value, queries: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(object) => {
                for (key, value) in object {
                    match (key.as_str(), value) {
                        ("expr", serde_json::Value::String(expression)) => queries.push(expression.clone()),
                        ("definition" | "query", serde_json::Value::String(query)) => {
                            if let Some(arguments) = query.trim().strip_prefix("label_values(") {
                                let metric = arguments.split([',', ')']).next().unwrap_or_default();
                                queries.push(metric.trim().to_string());
                            }
                        }
                        _ => dashboard_queries(value, queries),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|item| dashboard_queries(item, queries)),
            _ => {}
        }
    }

    #[test]
    fn metric_names_come_out_of_promql_and_nothing_else_does() {
        let cases: &[(&str, &[&str])] = &[
            ("stele_height", &["stele_height"]),
            (r#"stele_height{instance=~"$instance", job!="x"}"#, &["stele_height"]),
            (
                r#"histogram_quantile(0.99, sum by (le, instance) (rate(stele_commit_latency_seconds_bucket{instance=~"$instance"}[$__rate_interval])))"#,
                &["stele_commit_latency_seconds_bucket"],
            ),
            ("1 / rate(stele_height[5m] offset 1h) > bool 1e-6", &["stele_height"]),
            ("sum without (job) (rate(a_total[1m])) / on (instance) group_left (node) b_info", &["a_total", "b_info"]),
            ("increase(x[${__range}]) or vector(0)", &["x"]),
            ("max_over_time(up[10m:1m]) unless absent(y)", &["up", "y"]),
        ];
        for (expression, expected) in cases {
            assert_eq!(metric_names(expression), *expected, "{expression}");
        }
    }

    #[test]
    fn the_dashboard_queries_only_metrics_the_node_exports() {
        let dashboard: serde_json::Value =
            serde_json::from_str(include_str!("../../deploy/grafana/stele-dashboard.json")).expect("dashboard JSON");
        let mut queries = Vec::new();
        dashboard_queries(&dashboard, &mut queries);
        assert!(queries.len() >= 12, "the dashboard's queries were not found: {queries:?}");
        let exported = exported();
        let mut queried = BTreeSet::new();
        for query in &queries {
            let names = metric_names(query);
            assert!(!names.is_empty(), "no metric in {query:?}");
            for name in names {
                assert!(
                    exported.contains(&name),
                    "the dashboard queries {name} ({query}), which the node does not export"
                );
                queried.insert(name);
            }
        }
        // Every metric family the node exports is on the dashboard.
        for family in [
            "stele_height",
            "stele_view",
            "stele_view_changes_total",
            "stele_committed_transactions_total",
            "stele_mempool_transactions",
            "stele_mempool_size_bytes",
            "stele_peers",
            "stele_commit_latency_seconds_bucket",
            "stele_block_transactions_sum",
            "stele_block_size_bytes_bucket",
            "stele_evidence_total",
        ] {
            assert!(queried.contains(family), "the dashboard shows no {family}");
        }
    }
}
