//! One running node, assembled from its home folder: config, genesis, keys, store, network,
//! driver and metrics endpoint. `stele start` and the in-process tests both use [`Node::start`].

use std::{collections::HashSet, net::SocketAddr, path::Path, sync::Arc};

use anyhow::Context;
use consensus::SigningKey;
use futures::future::BoxFuture;
use genesis::{GenesisDocument, files};
use ledger::{RocksStore, StoreOptions};
use libp2p::{Multiaddr, PeerId};
use tokio::{
    sync::{mpsc, watch},
    task::JoinHandle,
};
use tracing::{info, warn};

use crate::{
    admin, agreement,
    config::Config,
    driver::{self, Driver, DriverHandle, Network},
    mempool::{MempoolHandle, admission},
    metrics::Metrics,
    metrics_server,
    p2p::{self, Limits, NetworkEvent, NetworkHandle},
    rpc_backend::NodeBackend,
    scrub,
};

/// Where the store lives inside a home folder.
pub const DATA_DIR: &str = "data";
/// The configuration file inside a home folder.
pub const CONFIG_FILE: &str = "config.toml";

/// A running node.
pub struct Node {
    /// The store (shared for reads; only the driver writes).
    pub store: Arc<RocksStore>,
    /// The driver's handle (its status, the commits to follow).
    pub driver: DriverHandle,
    /// The mempool (read it; the driver reaps and prunes it).
    pub mempool: MempoolHandle<RocksStore>,
    /// Where clients' transactions are submitted.
    pub submitter: admission::Submitter,
    /// The network's handle.
    pub network: NetworkHandle,
    /// This node's libp2p peer id.
    pub peer_id: PeerId,
    /// Where the node listens for peers.
    pub p2p_addresses: Vec<Multiaddr>,
    /// Where the JSON-RPC server (HTTP and WebSocket) listens.
    pub rpc_address: SocketAddr,
    /// Where the metrics endpoint listens, if enabled.
    pub metrics_address: Option<SocketAddr>,
    /// The metrics.
    pub metrics: Arc<Metrics>,
    shutdown: watch::Sender<bool>,
    rpc: rpc::RpcServer,
    driver_task: JoinHandle<Result<(), driver::Error>>,
}

impl Node {
    /// Starts a node from `home` with `config`. The validator key is optional (without one the
    /// node follows the chain as an observer); the node key is created on first start.
    pub async fn start(home: &Path, config: &Config) -> anyhow::Result<Node> {
        // Test builds only: read first, so that a misconfigured variable stops the node before
        // it opens anything.
        #[cfg(feature = "byzantine")]
        let byzantine = crate::byzantine::from_env()?;
        #[cfg(feature = "byzantine")]
        crate::byzantine::announce(byzantine.as_ref());
        let document = GenesisDocument::load(&home.join(files::GENESIS))?;
        let genesis = document.to_ledger()?;
        let validator_key_path = home.join(files::VALIDATOR_KEY);
        let key = if validator_key_path.exists() {
            genesis::load_key(&validator_key_path)?
        } else {
            info!("no {} in the home folder: running as an observer", files::VALIDATOR_KEY);
            SigningKey::generate().map_err(|error| anyhow::anyhow!("cannot generate a key: {error}"))?
        };
        let node_key = load_or_create_node_key(&home.join(files::NODE_KEY))?;
        let keypair = libp2p::identity::Keypair::ed25519_from_bytes(node_key.seed())
            .context("the node key is not a valid ed25519 key")?;
        let peer_id = keypair.public().to_peer_id();

        let data = home.join(DATA_DIR);
        let store = RocksStore::open(
            &data,
            &genesis,
            StoreOptions { sync_writes: config.storage.sync_writes, read_only: false },
        )
        .with_context(|| format!("cannot open the store at {}", data.display()))?;
        let store = Arc::new(store);

        let observers = parse_peer_ids(&config.network.observers).context("network.observers")?;
        let settings = p2p::Settings {
            keypair,
            chain_id: genesis.chain_id.clone(),
            listen: config.network.listen.parse().context("network.listen")?,
            external_address: config
                .network
                .external_address
                .as_deref()
                .map(str::parse)
                .transpose()
                .context("network.external_address")?,
            bootstrap: config
                .network
                .bootstrap
                .iter()
                .map(|address| address.parse().with_context(|| format!("network.bootstrap: {address}")))
                .collect::<anyhow::Result<_>>()?,
            admitted: HashSet::new(),
            limits: Limits {
                max_connections: config.network.max_connections,
                max_message_bytes: config.network.max_message_bytes,
            },
        };
        let (network, p2p::Events { consensus: consensus_events, transactions }) =
            p2p::start(settings, store.clone()).await?;
        let p2p_addresses = network.listen_addresses().await;

        let metrics = Arc::new(Metrics::default());
        let (shutdown, shutdown_receiver) = watch::channel(false);
        // Commands on this host (`stele backup`) reach the running node through its home.
        let admin_socket = home.join(admin::SOCKET_FILE);
        if let Err(error) = admin::serve(admin_socket.clone(), store.clone(), shutdown_receiver.clone()).await {
            warn!(%error, path = %admin_socket.display(), "no admin socket: `stele backup` cannot reach this node");
        }
        let metrics_address = match config.metrics.listen {
            Some(address) => Some(
                metrics_server::serve(address, metrics.clone(), shutdown_receiver.clone())
                    .await
                    .with_context(|| format!("cannot serve metrics on {address}"))?,
            ),
            None => None,
        };
        let empty_block_interval = Some(config.consensus.empty_block_interval).filter(|interval| !interval.is_zero());
        let mempool =
            MempoolHandle::new(genesis.chain_id.clone(), (&config.mempool).into(), store.clone(), metrics.clone());
        // Clients and peers admit transactions on their own tasks, never on the driver's.
        let submitter = admission::spawn(mempool.clone(), network.clone(), transactions, shutdown_receiver.clone());
        let driver_settings =
            driver::Settings { chain_id: genesis.chain_id.clone(), key: key.clone(), empty_block_interval, observers };
        let driver_parts = (store.clone(), mempool.clone(), metrics.clone(), shutdown_receiver.clone());
        // A Byzantine test validator runs the same honest driver over a network that lies, which
        // sees its inbound consensus events through a tap.
        #[cfg(feature = "byzantine")]
        let built = match byzantine {
            Some(behaviours) => {
                let lying = crate::byzantine::Byzantine::new(
                    network.clone(),
                    store.clone(),
                    genesis.chain_id.clone(),
                    key,
                    behaviours,
                );
                let consensus_events = lying.tap(consensus_events);
                build_driver(driver_settings, lying, consensus_events, driver_parts)
            }
            None => build_driver(driver_settings, network.clone(), consensus_events, driver_parts),
        };
        #[cfg(not(feature = "byzantine"))]
        let built = build_driver(driver_settings, network.clone(), consensus_events, driver_parts);
        let (driver_handle, run_driver) = built?;
        // Reads only, on the blocking pool, at its own bounded rate: never in the driver's way.
        let scrub = scrub::start(
            home,
            genesis.clone(),
            &config.checks,
            store.clone(),
            metrics.clone(),
            Some(network.clone()),
            shutdown_receiver.clone(),
        );
        let agreement = agreement::start(
            home,
            &config.checks,
            store.clone(),
            metrics.clone(),
            network.clone(),
            shutdown_receiver.clone(),
        );
        let backend = NodeBackend::new(
            store.clone(),
            document.hash()?,
            (driver_handle.clone(), mempool.clone(), submitter.clone()),
            network.clone(),
            (scrub, agreement),
            shutdown_receiver.clone(),
        );
        let limits = config.rpc.limits(home)?;
        let rpc = rpc::start(config.rpc.listen, limits, Arc::new(backend))
            .await
            .with_context(|| format!("cannot serve JSON-RPC on {}", config.rpc.listen))?;
        let driver_task = tokio::spawn(run_driver);
        info!(peer = %peer_id, chain = %genesis.chain_id, "node started");
        Ok(Node {
            store,
            driver: driver_handle,
            mempool,
            submitter,
            network,
            peer_id,
            p2p_addresses,
            rpc_address: rpc.address(),
            metrics_address,
            metrics,
            shutdown,
            rpc,
            driver_task,
        })
    }

    /// Runs until `stop` completes (then shuts down cleanly) or the driver stops on its own
    /// with a fatal error, which is returned.
    pub async fn run_until(mut self, stop: impl std::future::Future<Output = ()>) -> anyhow::Result<()> {
        tokio::select! {
            () = stop => self.shutdown().await,
            result = &mut self.driver_task => match result {
                Ok(result) => result.map_err(Into::into),
                Err(error) => Err(anyhow::anyhow!("the driver task failed: {error}")),
            },
        }
    }

    /// Stops the driver and the servers, and waits for the driver (and so every write) to end.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        // The driver first: once it stops, its block channel closes, which ends open
        // subscriptions and answers waiting `tx_submitAndWait` calls ("shutting down"), so the
        // server's connections can close. Whatever still holds one after a grace is dropped.
        let _ = self.shutdown.send(true);
        if tokio::time::timeout(RPC_STOP_GRACE, self.rpc.stop()).await.is_err() {
            warn!("the JSON-RPC server did not stop within {} s; closing its connections", RPC_STOP_GRACE.as_secs());
        }
        match self.driver_task.await {
            Ok(result) => result.map_err(Into::into),
            Err(error) => Err(anyhow::anyhow!("the driver task failed: {error}")),
        }
    }
}

/// What a driver shares with the rest of the node: the store, the mempool, the metrics and the
/// shutdown signal.
type DriverParts = (Arc<RocksStore>, MempoolHandle<RocksStore>, Arc<Metrics>, watch::Receiver<bool>);

/// Builds the driver over `network` (the real one, or one wrapped around it) and returns its
/// handle with the future that runs it on `events`: the driver's type depends on the network,
/// what the node keeps of it does not.
fn build_driver<N>(
    settings: driver::Settings,
    network: N,
    events: mpsc::Receiver<NetworkEvent<N::Reply>>,
    (store, mempool, metrics, shutdown): DriverParts,
) -> Result<(DriverHandle, BoxFuture<'static, Result<(), driver::Error>>), driver::Error>
where
    N: Network + Send + Sync + 'static,
    N::Reply: Send + 'static,
{
    let (driver, handle) = Driver::new(settings, store, network, mempool, metrics, driver::Now::system())?;
    Ok((handle, Box::pin(driver.run(events, shutdown))))
}

/// How long shutdown waits for the JSON-RPC server's connections to close.
const RPC_STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

/// Reads the node's libp2p key, creating it (mode 0600) on first start.
fn load_or_create_node_key(path: &Path) -> anyhow::Result<SigningKey> {
    if path.exists() {
        return Ok(genesis::load_key(path)?);
    }
    let key = SigningKey::generate().map_err(|error| anyhow::anyhow!("cannot generate a key: {error}"))?;
    genesis::write_key(path, &key)?;
    warn!(path = %path.display(), "created a new node key");
    Ok(key)
}

fn parse_peer_ids(peers: &[String]) -> anyhow::Result<HashSet<PeerId>> {
    peers.iter().map(|peer| peer.parse().with_context(|| format!("{peer:?} is not a peer id"))).collect()
}
