//! `stele testnet up`: start one `stele start` process per validator of a local network, wait
//! until it commits, and stop every process cleanly at the end.

use std::{
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use genesis::{GenesisDocument, files};
use rpc::api::SteleApiClient;

use crate::{Error, LocalNode};

/// A local network on disk: what `up` starts.
#[derive(Clone, Debug)]
pub struct LocalNetwork {
    /// Its folder.
    pub dir: PathBuf,
    /// The chain id.
    pub chain_id: String,
    /// The funded key with every role.
    pub faucet_key_path: PathBuf,
    /// The validators' nodes.
    pub nodes: Vec<LocalNode>,
}

/// Whether `dir` holds a generated network.
pub fn exists(dir: &Path) -> bool {
    dir.join(files::GENESIS).exists()
}

/// Reads a network written by [`crate::generate`]: the genesis and each node's config.toml.
pub fn load(dir: &Path) -> Result<LocalNetwork, Error> {
    let document = GenesisDocument::load(&dir.join(files::GENESIS))?;
    let mut nodes = Vec::new();
    for validator in &document.validators {
        let home = dir.join(&validator.name);
        let path = home.join("config.toml");
        let text = std::fs::read_to_string(&path).map_err(|source| Error::Io { path: path.clone(), source })?;
        let config: toml::Table = text
            .parse()
            .map_err(|error: toml::de::Error| Error::Config { path: path.clone(), message: error.to_string() })?;
        let field = |section: &str, key: &str| {
            config.get(section).and_then(|table| table.get(key)).and_then(|value| value.as_str()).map(str::to_string)
        };
        let missing = |what: &str| Error::Config { path: path.clone(), message: format!("no {what}") };
        let rpc = field("rpc", "listen").ok_or_else(|| missing("[rpc] listen"))?;
        let metrics = field("metrics", "listen").ok_or_else(|| missing("[metrics] listen"))?;
        let p2p = field("network", "listen").ok_or_else(|| missing("[network] listen"))?;
        nodes.push(LocalNode {
            name: validator.name.clone(),
            home,
            peer_id: validator.peer_id.clone(),
            p2p_address: format!("{p2p}/p2p/{}", validator.peer_id),
            rpc_url: format!("http://{rpc}"),
            metrics_url: format!("http://{metrics}/metrics"),
        });
    }
    Ok(LocalNetwork {
        dir: dir.to_path_buf(),
        chain_id: document.chain_id.to_string(),
        faucet_key_path: dir.join(files::FAUCET_KEY),
        nodes,
    })
}

/// Removes what [`crate::generate`] and [`crate::write_compose`] wrote into `dir` (and the
/// nodes' data), and nothing else: the folder may hold other files.
pub fn reset(dir: &Path) -> Result<(), Error> {
    if !exists(dir) {
        return Ok(());
    }
    let network = load(dir)?;
    for node in &network.nodes {
        std::fs::remove_dir_all(&node.home).map_err(|source| Error::Io { path: node.home.clone(), source })?;
    }
    for file in [
        files::GENESIS,
        files::FAUCET_KEY,
        crate::compose_files::COMPOSE,
        crate::compose_files::PROMETHEUS,
        crate::compose_files::DASHBOARD,
    ] {
        let path = dir.join(file);
        if path.exists() {
            std::fs::remove_file(&path).map_err(|source| Error::Io { path, source })?;
        }
    }
    let docker = dir.join(crate::compose_files::DOCKER_DIR);
    if docker.exists() {
        std::fs::remove_dir_all(&docker).map_err(|source| Error::Io { path: docker, source })?;
    }
    Ok(())
}

/// A running `stele start` process.
pub struct NodeProcess {
    /// The node.
    pub node: LocalNode,
    /// Its log file.
    pub log: PathBuf,
    child: Child,
    started: Instant,
}

impl NodeProcess {
    /// How long this process has run.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }
}

/// The running network.
pub struct Running {
    /// What runs.
    pub network: LocalNetwork,
    /// One process per node.
    pub processes: Vec<NodeProcess>,
    stele: PathBuf,
    follow: bool,
}

/// Starts every node of `network` with the `stele` binary at `stele`. Each node's stderr goes to
/// `<home>/node.log`; with `follow`, also to stdout prefixed by the node's name.
pub fn start(network: LocalNetwork, stele: &Path, follow: bool) -> Result<Running, Error> {
    let mut running = Running { network: network.clone(), processes: Vec::new(), stele: stele.to_path_buf(), follow };
    for node in &network.nodes {
        let process = spawn_node(node, stele, follow)?;
        running.processes.push(process);
    }
    Ok(running)
}

/// Starts `stele start --home` for one node, its stderr appended to `<home>/node.log`.
fn spawn_node(node: &LocalNode, stele: &Path, follow: bool) -> Result<NodeProcess, Error> {
    let log = node.home.join("node.log");
    let mut child = Command::new(stele)
        .arg("start")
        .arg("--home")
        .arg(&node.home)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| Error::Io { path: stele.to_path_buf(), source })?;
    append_stderr_to(&mut child, &log, follow.then(|| node.name.clone()))?;
    Ok(NodeProcess { node: node.clone(), log, child, started: Instant::now() })
}

/// Appends the child's stderr, line by line, to `log` (and, with `echo_as`, prints each line to
/// stdout prefixed by that name), on a thread of its own until the child closes it.
pub(crate) fn append_stderr_to(child: &mut Child, log: &Path, echo_as: Option<String>) -> Result<(), Error> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|source| Error::Io { path: log.to_path_buf(), source })?;
    if let Some(stderr) = child.stderr.take() {
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = writeln!(file, "{line}");
                if let Some(name) = &echo_as {
                    println!("[{name}] {line}");
                }
            }
        });
    }
    Ok(())
}

impl Running {
    /// Waits until every node has committed at least one block; fails early, naming the node and
    /// its log, if a process exits.
    pub async fn wait_until_committed(&mut self, timeout: Duration) -> Result<(), Error> {
        let deadline = Instant::now() + timeout;
        let clients = self
            .processes
            .iter()
            .map(|process| {
                jsonrpsee::http_client::HttpClientBuilder::default()
                    .request_timeout(Duration::from_secs(2))
                    .build(&process.node.rpc_url)
                    .map_err(|error| Error::Launch(format!("{}: {error}", process.node.rpc_url)))
            })
            .collect::<Result<Vec<_>, Error>>()?;
        loop {
            for process in &mut self.processes {
                if let Ok(Some(status)) = process.child.try_wait() {
                    return Err(Error::Launch(format!(
                        "{} exited ({status}); see {}",
                        process.node.name,
                        process.log.display()
                    )));
                }
            }
            let mut committed = 0;
            for client in &clients {
                if client.chain_status().await.is_ok_and(|status| status.height >= 1) {
                    committed += 1;
                }
            }
            if committed == clients.len() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(Error::Launch(format!(
                    "only {committed} of {} nodes committed a block within {} s; see the node.log files",
                    clients.len(),
                    timeout.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Whether a node process has exited on its own.
    pub fn exited(&mut self) -> Option<(String, ExitStatus)> {
        self.processes.iter_mut().find_map(|process| {
            process.child.try_wait().ok().flatten().map(|status| (process.node.name.clone(), status))
        })
    }

    /// Every node process that has exited, with its status and how long it had run.
    pub fn exits(&mut self) -> Vec<(String, ExitStatus, Duration)> {
        self.processes
            .iter_mut()
            .filter_map(|process| {
                let status = process.child.try_wait().ok().flatten()?;
                Some((process.node.name.clone(), status, process.uptime()))
            })
            .collect()
    }

    /// Starts the named node again (its old process must have exited), from the same home.
    pub fn restart(&mut self, name: &str) -> Result<(), Error> {
        let Some(index) = self.processes.iter().position(|process| process.node.name == name) else {
            return Err(Error::Launch(format!("no node named {name}")));
        };
        let fresh = spawn_node(&self.processes[index].node, &self.stele, self.follow)?;
        // Dropping the old one reaps it (it has exited already).
        self.processes[index] = fresh;
        Ok(())
    }

    /// The last `lines` lines of a node's log: why it stopped, usually.
    pub fn log_tail(&self, name: &str, lines: usize) -> Vec<String> {
        let Some(process) = self.processes.iter().find(|process| process.node.name == name) else {
            return Vec::new();
        };
        let text = std::fs::read_to_string(&process.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].iter().map(|line| line.to_string()).collect()
    }

    /// Sends SIGTERM to every node still running and waits for each (up to 30 s, then kills it).
    /// Returns each node's exit status.
    pub fn stop(mut self) -> Vec<(String, Option<ExitStatus>)> {
        for process in &self.processes {
            let pid = nix::unistd::Pid::from_raw(process.child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        self.processes
            .iter_mut()
            .map(|process| {
                let status = loop {
                    match process.child.try_wait() {
                        Ok(Some(status)) => break Some(status),
                        Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
                        _ => {
                            let _ = process.child.kill();
                            break process.child.wait().ok();
                        }
                    }
                };
                (process.node.name.clone(), status)
            })
            .collect()
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        // Never leave a node behind (a panic or an early return): kill what still runs.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
