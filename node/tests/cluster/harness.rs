//! An in-process network of real nodes (real libp2p on 127.0.0.1, real RocksDB in temp dirs).

use std::{
    future::Future,
    net::TcpListener,
    path::{Path, PathBuf},
    time::{Duration, Instant, SystemTime},
};

use consensus::{ChainId, Digest, Height, SigningKey};
use genesis::{GeneratedNetwork, NetworkSpec, files, generate_network};
use ledger::{Address, BlockReader, Payload, SignedTransaction, Transaction};
use node::{config::Config, node::Node};

/// Every wait in these tests gives up after this long (and fails the test).
pub const PATIENCE: Duration = Duration::from_secs(60);

pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub network: GeneratedNetwork,
    pub ports: Vec<u16>,
    pub nodes: Vec<Option<Node>>,
    pub faucet: SigningKey,
    pub faucet_nonce: u64,
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|listener| listener.local_addr()).expect("free port").port()
}

pub fn chain_id() -> ChainId {
    ChainId::new("cluster-test").expect("chain id")
}

impl Cluster {
    /// Generates an `n`-validator network (not started).
    pub fn generate(n: usize) -> Cluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let spec = NetworkSpec {
            chain_id: chain_id(),
            validators: n,
            faucet_balance: 1_000_000_000,
            genesis_time: SystemTime::now() - Duration::from_secs(60),
        };
        let network = generate_network(dir.path(), &spec).expect("generate network");
        let faucet = genesis::load_key(&network.faucet_key_path).expect("faucet key");
        let ports = (0..n).map(|_| free_port()).collect();
        Cluster { dir, network, ports, nodes: (0..n).map(|_| None).collect(), faucet, faucet_nonce: 0 }
    }

    pub fn home(&self, index: usize) -> PathBuf {
        self.network.nodes[index].home.clone()
    }

    pub fn address(&self, index: usize) -> String {
        format!("/ip4/127.0.0.1/tcp/{}/p2p/{}", self.ports[index], self.network.nodes[index].peer_id)
    }

    /// The configuration of node `index`: its fixed port, node 0 (or node 1, for node 0) as the
    /// only bootstrap peer so discovery must find the rest, metrics off, empty blocks off.
    pub fn config(&self, index: usize) -> Config {
        let mut config = Config::default();
        config.network.listen = format!("/ip4/127.0.0.1/tcp/{}", self.ports[index]);
        config.network.bootstrap = match (index, self.ports.len()) {
            (_, 1) => Vec::new(),
            (0, _) => vec![self.address(1)],
            _ => vec![self.address(0)],
        };
        config.rpc.listen = "127.0.0.1:0".parse().expect("address");
        config.metrics.listen = None;
        config.consensus.empty_block_interval = Duration::ZERO;
        config
    }

    pub async fn start(&mut self, index: usize) {
        self.start_with(index, self.config(index)).await;
    }

    pub async fn start_with(&mut self, index: usize, config: Config) {
        let node = Node::start(&self.home(index), &config).await.expect("start node");
        self.nodes[index] = Some(node);
    }

    pub async fn start_all(&mut self) {
        for index in 0..self.nodes.len() {
            self.start(index).await;
        }
    }

    pub async fn stop(&mut self, index: usize) {
        if let Some(node) = self.nodes[index].take() {
            node.shutdown().await.expect("clean shutdown");
        }
    }

    pub async fn stop_all(&mut self) {
        for index in 0..self.nodes.len() {
            self.stop(index).await;
        }
    }

    pub fn node(&self, index: usize) -> &Node {
        self.nodes[index].as_ref().expect("node running")
    }

    pub fn running(&self) -> impl Iterator<Item = (usize, &Node)> {
        self.nodes.iter().enumerate().filter_map(|(index, node)| node.as_ref().map(|node| (index, node)))
    }

    pub fn head(&self, index: usize) -> Height {
        self.node(index).store.head().expect("head").height
    }

    /// A signed transaction from the faucet (nonces in order).
    pub fn faucet_tx(&mut self, payload: Payload) -> SignedTransaction {
        let transaction =
            Transaction { chain_id: chain_id(), signer: self.faucet.public_key(), nonce: self.faucet_nonce, payload };
        self.faucet_nonce += 1;
        transaction.sign(&self.faucet)
    }

    pub fn transfer(&mut self, amount: u64) -> SignedTransaction {
        let to = Address::of(&SigningKey::from_seed([7; 32]).public_key());
        self.faucet_tx(Payload::Transfer { to, amount })
    }

    /// Submits to node `index`; every transaction must be admitted.
    pub async fn submit(&self, index: usize, transactions: &[SignedTransaction]) -> Vec<Digest> {
        let encoded = transactions.iter().map(SignedTransaction::encode).collect();
        let verdicts = self.node(index).submitter.submit(encoded).await.expect("node running");
        verdicts.into_iter().map(|verdict| verdict.expect("admitted")).collect()
    }

    /// Waits until every running node has committed every transaction.
    pub async fn wait_committed(&self, hashes: &[Digest]) {
        wait_until("transactions committed on every running node", || {
            self.running()
                .all(|(_, node)| hashes.iter().all(|hash| node.store.tx_location(hash).expect("read").is_some()))
        })
        .await;
    }

    /// Waits until every running node's head is at least `height`.
    pub async fn wait_height(&self, height: Height) {
        wait_until(&format!("every running node at height {height}"), || {
            self.running().all(|(index, _)| self.head(index) >= height)
        })
        .await;
    }

    /// Asserts every running node holds the same block (hash and certificate digest) at every
    /// height they all have.
    pub fn assert_agree(&self) -> Height {
        let common = self.running().map(|(index, _)| self.head(index)).min().expect("a node runs");
        for height in 1..=common {
            let mut hashes = self.running().map(|(_, node)| {
                let block = node.store.block(height).expect("read").expect("block present");
                assert_eq!(block.certificate.digest, block.block.hash(), "certificate names the block at {height}");
                block.block.hash()
            });
            let first = hashes.next().expect("a node runs");
            assert!(hashes.all(|hash| hash == first), "nodes disagree at height {height}");
        }
        common
    }
}

/// Polls `condition` every 50 ms until it holds; panics (naming `what`) after [`PATIENCE`].
pub async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs an async test body on a multi-thread runtime, bounded in time.
/// `TEST_LOG=debug` (a tracing filter) shows the nodes' logs.
pub fn run<F: Future<Output = ()>>(limit: Duration, body: impl FnOnce() -> F) {
    if let Ok(filter) = std::env::var("TEST_LOG") {
        let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build().expect("runtime");
    runtime.block_on(async {
        tokio::time::timeout(limit, body()).await.expect("test exceeded its time limit");
    });
    runtime.shutdown_timeout(Duration::from_secs(5));
}

/// Writes a fresh validator home for a node not in the genesis; returns its validator key and
/// peer id.
pub fn new_validator_home(home: &Path, genesis_path: &Path) -> (SigningKey, String) {
    std::fs::create_dir_all(home).expect("home");
    std::fs::copy(genesis_path, home.join(files::GENESIS)).expect("copy genesis");
    let validator_key = SigningKey::generate().expect("key");
    let node_key = SigningKey::generate().expect("key");
    genesis::write_key(&home.join(files::VALIDATOR_KEY), &validator_key).expect("write key");
    genesis::write_key(&home.join(files::NODE_KEY), &node_key).expect("write key");
    (validator_key, genesis::peer_id_of(&node_key.public_key()))
}

/// Writes `blocks` certified blocks (one transfer each) into node `index`'s store, playing every
/// validator, as if the network had run for a while.
pub fn fill_chain(cluster: &Cluster, index: usize, blocks: Height) {
    use ledger::{BlockWriter, RocksStore, StateHistory, StoreOptions, build_block};
    let document = genesis::GenesisDocument::load(&cluster.network.genesis_path).expect("genesis");
    let genesis = document.to_ledger().expect("genesis");
    let options = StoreOptions { sync_writes: false, read_only: false };
    let store = RocksStore::open(&cluster.home(index).join(node::node::DATA_DIR), &genesis, options).expect("store");
    let keys: Vec<SigningKey> = cluster
        .network
        .nodes
        .iter()
        .map(|node| genesis::load_key(&node.home.join(files::VALIDATOR_KEY)).expect("validator key"))
        .collect();
    let signers: Vec<(u32, &SigningKey)> = keys.iter().take(3).enumerate().map(|(i, key)| (i as u32, key)).collect();
    let mut head = store.head().expect("head");
    let sender = SigningKey::from_seed([9; 32]);
    for height in 1..=blocks {
        let transaction = Transaction {
            chain_id: chain_id(),
            signer: cluster.faucet.public_key(),
            nonce: height - 1,
            payload: Payload::Transfer { to: Address::of(&sender.public_key()), amount: 1 },
        }
        .sign(&cluster.faucet);
        let proposer = keys[(height % 4) as usize].public_key();
        let (block, execution) =
            build_block(&store, &head, proposer, head.timestamp_ms + 1, vec![transaction], ledger::SignatureCheck::All)
                .expect("build");
        let validators = store.validator_set_for(height).expect("set");
        assert_eq!(validators.members()[0], keys[0].public_key());
        let certificate = consensus::CommitCertificate::sign(&chain_id(), height, 0, block.hash(), &signers);
        store.commit(&block, &certificate, execution).expect("commit");
        head = block.header;
    }
}

/// Copies a closed store from one home to another.
pub fn copy_data(from: &Path, to: &Path) {
    let (from, to) = (from.join(node::node::DATA_DIR), to.join(node::node::DATA_DIR));
    std::fs::create_dir_all(&to).expect("data dir");
    for entry in std::fs::read_dir(&from).expect("read data dir") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
    }
}
