//! The network under test: one `stele start` process per validator, each on 127.0.0.1 or on a
//! host of its own ([`Namespaces`]), that the runner can kill, pause, resume and restart one at
//! a time. Every process is killed when the cluster is dropped, however the run ends.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use nix::{sys::signal::Signal, unistd::Pid};

use super::netns::Namespaces;
use crate::{Error, LocalNetwork};

/// Ports every node uses on a host of its own.
const P2P_PORT: u16 = 26656;
const RPC_PORT: u16 = 8545;
const METRICS_PORT: u16 = 9615;

/// Where the nodes run.
pub enum Hosts {
    /// All on 127.0.0.1, at the ports of the generated config (no partitions possible).
    Loopback,
    /// One network namespace per node.
    Namespaces(Namespaces),
}

struct Member {
    name: String,
    home: PathBuf,
    rpc_url: String,
    environment: Vec<(String, String)>,
    child: Option<Child>,
    paused: bool,
}

/// The running network.
pub struct Cluster {
    stele: PathBuf,
    /// Where the nodes run.
    pub hosts: Hosts,
    members: Vec<Member>,
}

impl Cluster {
    /// Prepares (does not start) every node of `network`. `environment` is given to every node
    /// (configuration overrides such as `STELE__CONSENSUS__EMPTY_BLOCK_INTERVAL`).
    pub fn new(network: &LocalNetwork, stele: &Path, hosts: Hosts, environment: &[(String, String)]) -> Self {
        let members = network
            .nodes
            .iter()
            .enumerate()
            .map(|(index, node)| {
                let mut member_environment = environment.to_vec();
                let rpc_url = match &hosts {
                    Hosts::Loopback => node.rpc_url.clone(),
                    Hosts::Namespaces(namespaces) => {
                        let address = namespaces.address(index);
                        let bootstrap: Vec<String> = network
                            .nodes
                            .iter()
                            .enumerate()
                            .filter(|(other, _)| *other != index)
                            .map(|(other, peer)| {
                                format!("\"/ip4/{}/tcp/{P2P_PORT}/p2p/{}\"", namespaces.address(other), peer.peer_id)
                            })
                            .collect();
                        member_environment.extend([
                            ("STELE__NETWORK__LISTEN".into(), format!("/ip4/{address}/tcp/{P2P_PORT}")),
                            ("STELE__NETWORK__BOOTSTRAP".into(), format!("[{}]", bootstrap.join(", "))),
                            ("STELE__RPC__LISTEN".into(), format!("{address}:{RPC_PORT}")),
                            ("STELE__METRICS__LISTEN".into(), format!("{address}:{METRICS_PORT}")),
                        ]);
                        format!("http://{address}:{RPC_PORT}")
                    }
                };
                Member {
                    name: node.name.clone(),
                    home: node.home.clone(),
                    rpc_url,
                    environment: member_environment,
                    child: None,
                    paused: false,
                }
            })
            .collect();
        Cluster { stele: stele.to_path_buf(), hosts, members }
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Node `index`'s name.
    pub fn name(&self, index: usize) -> &str {
        &self.members[index].name
    }

    /// Node `index`'s home folder.
    pub fn home(&self, index: usize) -> &Path {
        &self.members[index].home
    }

    /// Node `index`'s JSON-RPC URL.
    pub fn rpc_url(&self, index: usize) -> &str {
        &self.members[index].rpc_url
    }

    /// A client of node `index` whose calls give up after `timeout`.
    pub fn client(&self, index: usize, timeout: Duration) -> Result<HttpClient, Error> {
        HttpClientBuilder::default()
            .request_timeout(timeout)
            .build(&self.members[index].rpc_url)
            .map_err(|error| Error::Launch(format!("{}: {error}", self.members[index].rpc_url)))
    }

    /// Whether node `index` runs (possibly paused).
    pub fn is_running(&mut self, index: usize) -> bool {
        let member = &mut self.members[index];
        match &mut member.child {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Indexes of the nodes that run and are not paused.
    pub fn live(&mut self) -> Vec<usize> {
        (0..self.len()).filter(|&index| self.is_running(index) && !self.members[index].paused).collect()
    }

    /// A node that exited without being told to, with its status.
    pub fn crashed(&mut self) -> Option<(String, ExitStatus)> {
        self.members.iter_mut().find_map(|member| {
            let status = member.child.as_mut()?.try_wait().ok()??;
            Some((member.name.clone(), status))
        })
    }

    /// Starts node `index` (its stderr appended to `<home>/node.log`).
    pub fn start(&mut self, index: usize) -> Result<(), Error> {
        let member = &mut self.members[index];
        let mut command = match &self.hosts {
            Hosts::Loopback => Command::new(&self.stele),
            Hosts::Namespaces(namespaces) => namespaces.command(index, &self.stele),
        };
        let mut child = command
            .arg("start")
            .arg("--home")
            .arg(&member.home)
            .envs(member.environment.iter().map(|(key, value)| (key, value)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| Error::Io { path: self.stele.clone(), source })?;
        crate::launch::append_stderr_to(&mut child, &member.home.join("node.log"), None)?;
        member.child = Some(child);
        member.paused = false;
        Ok(())
    }

    /// Starts every node that does not run.
    pub fn start_all(&mut self) -> Result<(), Error> {
        for index in 0..self.len() {
            if !self.is_running(index) {
                self.start(index)?;
            }
        }
        Ok(())
    }

    fn signal(&self, index: usize, signal: Signal) {
        if let Some(child) = &self.members[index].child {
            let _ = nix::sys::signal::kill(Pid::from_raw(child.id() as i32), signal);
        }
    }

    /// `kill -9` node `index` and reaps it.
    pub fn kill(&mut self, index: usize) {
        self.signal(index, Signal::SIGKILL);
        if let Some(mut child) = self.members[index].child.take() {
            let _ = child.wait();
        }
        self.members[index].paused = false;
    }

    /// SIGSTOP: the process keeps its sockets but stops answering.
    pub fn pause(&mut self, index: usize) {
        self.signal(index, Signal::SIGSTOP);
        self.members[index].paused = true;
    }

    /// SIGCONT.
    pub fn resume(&mut self, index: usize) {
        self.signal(index, Signal::SIGCONT);
        self.members[index].paused = false;
    }

    /// Resumes every paused node, sends SIGTERM to every running one and waits (30 s, then
    /// kills). Returns each stopped node's name and exit status.
    pub fn stop_all(&mut self) -> Vec<(String, Option<ExitStatus>)> {
        for index in 0..self.len() {
            self.resume(index);
            self.signal(index, Signal::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut stopped = Vec::new();
        for member in &mut self.members {
            let Some(mut child) = member.child.take() else { continue };
            let status = loop {
                match child.try_wait() {
                    Ok(Some(status)) => break Some(status),
                    Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
                    _ => {
                        let _ = child.kill();
                        break child.wait().ok();
                    }
                }
            };
            stopped.push((member.name.clone(), status));
        }
        stopped
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for index in 0..self.len() {
            self.kill(index);
        }
    }
}
