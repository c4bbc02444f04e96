//! `stele testnet generate --compose`: the same network as containers on a private Docker
//! network, built from the local `stele` binary. Nothing is pulled from a registry: the image
//! is `FROM scratch` with the binary and the shared libraries it links, copied from this host.
//! Beside the compose file go a Prometheus scrape configuration for the network's nodes and the
//! Grafana dashboard (`deploy/grafana/stele-dashboard.json`), for a Prometheus and a Grafana the
//! user already runs: the compose file adds no container of theirs.

use std::{
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    process::Command,
};

use crate::{Error, LocalNetwork};

/// File names the compose files use, relative to the network folder.
pub mod compose_files {
    /// The compose file.
    pub const COMPOSE: &str = "docker-compose.yml";
    /// The image's build context (Dockerfile and root filesystem).
    pub const DOCKER_DIR: &str = "docker";
    /// A Prometheus configuration that scrapes every node's published metrics port.
    pub const PROMETHEUS: &str = "prometheus.yml";
    /// The Grafana dashboard (a copy of [`super::DASHBOARD`]).
    pub const DASHBOARD: &str = "stele-dashboard.json";
}

/// The Grafana dashboard of a Stele network (`deploy/grafana/stele-dashboard.json`, built in).
pub const DASHBOARD: &str = include_str!("../../deploy/grafana/stele-dashboard.json");

/// How often the generated Prometheus configuration scrapes each node.
const SCRAPE_INTERVAL: &str = "5s";

/// A Prometheus configuration (`prometheus.yml`) with one job, `stele`, scraping `targets`
/// (a node's name and its metrics `host:port`), each target's `instance` label set to the node's
/// name so the dashboard names nodes rather than ports. `about` goes in the header comment.
pub fn prometheus_config(about: &str, targets: &[(String, String)]) -> String {
    let mut text = format!(
        "# Prometheus scrape configuration for {about}.\n\
         # Use it as it is (`prometheus --config.file=prometheus.yml`), or copy the job into the\n\
         # scrape_configs of a Prometheus you run already; then import stele-dashboard.json into\n\
         # Grafana with that Prometheus as its data source. Metric names: docs/operations.md.\n\
         global:\n\
         \x20 scrape_interval: {SCRAPE_INTERVAL}\n\
         \x20 evaluation_interval: {SCRAPE_INTERVAL}\n\
         scrape_configs:\n\
         \x20 - job_name: stele\n\
         \x20   metrics_path: /metrics\n\
         \x20   static_configs:\n"
    );
    for (name, address) in targets {
        text.push_str(&format!("      - targets: [\"{address}\"]\n        labels:\n          instance: {name}\n"));
    }
    text
}

/// Inside a container: where the binary is, and the ports every node listens on.
const BINARY_IN_IMAGE: &str = "/usr/local/bin/stele";
const P2P_PORT: u16 = 26656;
const RPC_PORT: u16 = 8545;
const METRICS_PORT: u16 = 9615;

/// What [`write_compose`] wrote.
#[derive(Clone, Debug)]
pub struct ComposeFiles {
    /// `docker-compose.yml`.
    pub compose_file: PathBuf,
    /// `prometheus.yml`: scrapes each node's metrics port as published on the host.
    pub prometheus_file: PathBuf,
    /// `stele-dashboard.json`: the Grafana dashboard.
    pub dashboard_file: PathBuf,
    /// The build context with its `Dockerfile`.
    pub docker_dir: PathBuf,
    /// The image tag the compose file builds.
    pub image: String,
    /// The private network.
    pub subnet: Subnet,
}

/// The private network of a compose network whose host ports start at `base_port`:
/// `10.H.L.0/24` with H and L the port's two bytes, so networks that can run side by side on one
/// host (they need distinct base ports) get distinct subnets. Node `i` is `10.H.L.(10 + i)`.
#[derive(Clone, Copy, Debug)]
pub struct Subnet([u8; 2]);

impl Subnet {
    /// The subnet for `base_port`.
    pub fn for_base_port(base_port: u16) -> Self {
        Subnet(base_port.to_be_bytes())
    }

    /// Node `index`'s address.
    pub fn address(&self, index: usize) -> String {
        let [high, low] = self.0;
        format!("10.{high}.{low}.{}", 10 + index)
    }

    /// The host's address on it (`.1`: the bridge, or Docker's gateway).
    pub fn gateway(&self) -> String {
        let [high, low] = self.0;
        format!("10.{high}.{low}.1")
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let [high, low] = self.0;
        write!(formatter, "10.{high}.{low}.0/24")
    }
}

/// Writes `docker-compose.yml` and `docker/` (a `Dockerfile` and the root filesystem it
/// copies: `stele` at `stele_binary`, without debug sections, and every shared library `ldd`
/// lists for it) into the network's folder, with `prometheus.yml` and `stele-dashboard.json`
/// beside them. Host ports are those of the local network, bound to 127.0.0.1; nodes reach each
/// other on the private subnet; each container's health check is `stele probe --ready`.
/// Rewrites earlier compose files.
pub fn write_compose(network: &LocalNetwork, stele_binary: &Path) -> Result<ComposeFiles, Error> {
    if network.nodes.len() > 240 {
        // Node addresses run from .10 to .249 of one /24.
        return Err(Error::Launch("a compose network holds at most 240 nodes (one /24 subnet)".to_string()));
    }
    let dir = &network.dir;
    let docker_dir = dir.join(compose_files::DOCKER_DIR);
    let rootfs = docker_dir.join("rootfs");
    if rootfs.exists() {
        std::fs::remove_dir_all(&rootfs).map_err(|source| Error::Io { path: rootfs.clone(), source })?;
    }
    let binary = rootfs.join(BINARY_IN_IMAGE.trim_start_matches('/'));
    copy_into_rootfs(stele_binary, &binary)?;
    // Debug sections are most of a release binary (line tables, RocksDB's C++): the image does
    // not need them. Without `strip` (binutils) the image just stays larger.
    let _ = Command::new("strip").arg("--strip-debug").arg(&binary).status();
    for library in shared_libraries(stele_binary)? {
        let inside = rootfs.join(library.strip_prefix("/").unwrap_or(&library));
        copy_into_rootfs(&library, &inside)?;
    }
    let dockerfile = docker_dir.join("Dockerfile");
    write(
        &dockerfile,
        &format!(
            "# The `stele` binary of the host that ran `stele testnet generate --compose`, with the\n\
             # shared libraries it links (rootfs/). FROM scratch: nothing is pulled from a registry.\n\
             FROM scratch\nCOPY rootfs/ /\nENTRYPOINT [\"{BINARY_IN_IMAGE}\"]\n"
        ),
    )?;

    let image = format!("stele-testnet:{}", network.chain_id);
    let base_port = network.nodes.first().and_then(|node| tcp_port(&node.p2p_address)).ok_or_else(|| {
        Error::Launch(format!("{}: node0 has no /tcp/ port in its p2p address", network.dir.display()))
    })?;
    let subnet = Subnet::for_base_port(base_port);
    // The node folders are mounted as they are; the container runs as their owner, so data
    // written inside stays the user's.
    let owner = std::fs::metadata(dir).map_err(|source| Error::Io { path: dir.clone(), source })?;
    let user = format!("{}:{}", owner.uid(), owner.gid());
    let mut services = String::new();
    let mut scrape_targets = Vec::new();
    for (index, node) in network.nodes.iter().enumerate() {
        let host_port =
            |url: &str| url_port(url).ok_or_else(|| Error::Launch(format!("{}: no port in {url}", node.name)));
        let (rpc, metrics) = (host_port(&node.rpc_url)?, host_port(&node.metrics_url)?);
        scrape_targets.push((node.name.clone(), format!("127.0.0.1:{metrics}")));
        let bootstrap: Vec<String> = network
            .nodes
            .iter()
            .enumerate()
            .filter(|(other, _)| *other != index)
            .map(|(other, peer)| format!("\"/ip4/{}/tcp/{P2P_PORT}/p2p/{}\"", subnet.address(other), peer.peer_id))
            .collect();
        let home = format!("/home/{}", node.name);
        // One build (node0's); the others use its image, after it.
        let build = if index == 0 {
            format!("    build: ./{}\n", compose_files::DOCKER_DIR)
        } else {
            format!("    depends_on: [{}]\n", network.nodes[0].name)
        };
        services.push_str(&format!(
            "  {name}:\n\
             {build}\
             \x20   image: {image}\n\
             \x20   command: [\"start\", \"--home\", \"{home}\"]\n\
             \x20   user: \"{user}\"\n\
             \x20   volumes:\n\
             \x20     - ./{name}:{home}\n\
             \x20   environment:\n\
             \x20     STELE__NETWORK__LISTEN: /ip4/0.0.0.0/tcp/{P2P_PORT}\n\
             \x20     STELE__NETWORK__BOOTSTRAP: '[{bootstrap}]'\n\
             \x20     STELE__RPC__LISTEN: 0.0.0.0:{RPC_PORT}\n\
             \x20     STELE__METRICS__LISTEN: 0.0.0.0:{METRICS_PORT}\n\
             \x20   ports:\n\
             \x20     - \"127.0.0.1:{rpc}:{RPC_PORT}\"\n\
             \x20     - \"127.0.0.1:{metrics}:{METRICS_PORT}\"\n\
             \x20   networks:\n\
             \x20     stele:\n\
             \x20       ipv4_address: {address}\n\
             \x20   healthcheck:\n\
             \x20     test: [\"CMD\", \"{BINARY_IN_IMAGE}\", \"probe\", \"--ready\", \"--rpc\", \"http://127.0.0.1:{RPC_PORT}\"]\n\
             \x20     interval: 5s\n\
             \x20     timeout: 5s\n\
             \x20     retries: 6\n\
             \x20     start_period: 60s\n\
             \x20   stop_signal: SIGTERM\n\
             \x20   stop_grace_period: 30s\n",
            name = node.name,
            bootstrap = bootstrap.join(", "),
            address = subnet.address(index),
        ));
    }
    let compose_file = dir.join(compose_files::COMPOSE);
    write(
        &compose_file,
        &format!(
            "# The network {chain} as containers on a private network ({subnet}), written by\n\
             # `stele testnet generate --compose`. The image is built from the local `stele` binary\n\
             # (docker/Dockerfile); nothing is pulled. JSON-RPC and metrics are published on\n\
             # 127.0.0.1 at the same ports as `stele testnet up`. Do not run both at once: they share\n\
             # the node folders.\n\
             #   docker-compose -f {compose} up --build -d      (or: docker compose ...)\n\
             #   docker-compose -f {compose} down\n\
             # Health: `stele probe --ready` in each container (docker ps shows healthy once the\n\
             # node is synced, connected to a quorum and its last block is recent).\n\
             # Monitoring: prometheus.yml (scrapes the published metrics ports) and\n\
             # stele-dashboard.json (Grafana), beside this file.\n\
             version: \"3.8\"\n\
             services:\n\
             {services}\
             networks:\n\
             \x20 stele:\n\
             \x20   ipam:\n\
             \x20     config:\n\
             \x20       - subnet: {subnet}\n",
            chain = network.chain_id,
            compose = compose_file.display(),
        ),
    )?;
    let prometheus_file = dir.join(compose_files::PROMETHEUS);
    let about = format!(
        "the compose network {} ({}), its nodes' metrics as published on this host.\n\
         # A Prometheus inside the compose network would scrape <node address>:{METRICS_PORT} instead\n\
         # ({} and up)",
        network.chain_id,
        compose_file.display(),
        subnet.address(0)
    );
    write(&prometheus_file, &prometheus_config(&about, &scrape_targets))?;
    let dashboard_file = dir.join(compose_files::DASHBOARD);
    write(&dashboard_file, DASHBOARD)?;
    Ok(ComposeFiles { compose_file, prometheus_file, dashboard_file, docker_dir, image, subnet })
}

/// The port of `http://host:port[/path]`.
fn url_port(url: &str) -> Option<u16> {
    let authority = url.split("://").nth(1)?.split('/').next()?;
    authority.rsplit_once(':')?.1.parse().ok()
}

/// The port of a multiaddr's `/tcp/<port>` part.
fn tcp_port(multiaddr: &str) -> Option<u16> {
    let mut parts = multiaddr.split('/').skip_while(|part| *part != "tcp");
    parts.nth(1)?.parse().ok()
}

fn write(path: &Path, text: &str) -> Result<(), Error> {
    std::fs::write(path, text).map_err(|source| Error::Io { path: path.to_path_buf(), source })
}

fn copy_into_rootfs(from: &Path, to: &Path) -> Result<(), Error> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).map_err(|source| Error::Io { path: parent.to_path_buf(), source })?;
    }
    // `copy` follows symlinks, so the image holds the library itself under the linked name.
    std::fs::copy(from, to).map_err(|source| Error::Io { path: from.to_path_buf(), source })?;
    Ok(())
}

/// The absolute paths of the shared libraries (and the dynamic loader) `binary` needs, as
/// `ldd` resolves them on this host.
fn shared_libraries(binary: &Path) -> Result<Vec<PathBuf>, Error> {
    let output =
        Command::new("ldd").arg(binary).output().map_err(|source| Error::Io { path: PathBuf::from("ldd"), source })?;
    let text = String::from_utf8_lossy(&output.stdout);
    if text.contains("not a dynamic executable") || text.contains("statically linked") {
        return Ok(Vec::new());
    }
    if !output.status.success() {
        return Err(Error::Launch(format!(
            "ldd {}: {}",
            binary.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    parse_ldd(&text)
}

/// Reads `ldd` output: `libc.so.6 => /lib/.../libc.so.6 (0x...)` and `/lib64/ld-linux... (0x...)`.
fn parse_ldd(text: &str) -> Result<Vec<PathBuf>, Error> {
    let mut libraries = Vec::new();
    for line in text.lines().map(str::trim).filter(|line| !line.is_empty()) {
        let target = match line.split_once("=>") {
            Some((name, target)) => {
                let target = target.trim();
                if target.starts_with("not found") {
                    return Err(Error::Launch(format!("ldd: the library {} is not found on this host", name.trim())));
                }
                target
            }
            None => line,
        };
        let path = target.split_whitespace().next().unwrap_or("");
        // linux-vdso.so.1 lives in the kernel: nothing to copy.
        if path.starts_with('/') {
            libraries.push(PathBuf::from(path));
        }
    }
    Ok(libraries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_output_gives_every_library_and_the_loader() {
        let text = "\tlinux-vdso.so.1 (0x00007ffd)\n\
                    \tlibstdc++.so.6 => /lib/x86_64-linux-gnu/libstdc++.so.6 (0x00007f1)\n\
                    \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f2)\n\
                    \t/lib64/ld-linux-x86-64.so.2 (0x00007f3)\n";
        let libraries = parse_ldd(text).expect("parses");
        assert_eq!(
            libraries,
            [
                PathBuf::from("/lib/x86_64-linux-gnu/libstdc++.so.6"),
                PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"),
                PathBuf::from("/lib64/ld-linux-x86-64.so.2"),
            ]
        );
    }

    #[test]
    fn a_missing_library_is_an_error_naming_it() {
        let error = parse_ldd("\tlibfoo.so.1 => not found\n").expect_err("missing library");
        assert!(error.to_string().contains("libfoo.so.1"), "{error}");
    }

    #[test]
    fn ports_are_read_from_urls_and_multiaddrs() {
        assert_eq!(url_port("http://127.0.0.1:26601"), Some(26601));
        assert_eq!(url_port("http://127.0.0.1:26602/metrics"), Some(26602));
        assert_eq!(url_port("http://127.0.0.1"), None);
        assert_eq!(tcp_port("/ip4/127.0.0.1/tcp/26600/p2p/12D3KooW"), Some(26600));
        assert_eq!(tcp_port("/ip4/127.0.0.1/udp/1"), None);
    }

    /// What `deploy/prometheus/prometheus.yml` says it is for.
    const DEFAULT_NETWORK: &str = "the network `stele testnet up` makes by default (4 validators,\n\
                                   # base port 26600: node i serves metrics on 127.0.0.1:26602 + 3i)";

    #[test]
    fn the_repository_prometheus_config_scrapes_the_default_testnet() {
        let targets: Vec<(String, String)> = (0..4)
            .map(|index| {
                let (_, _, metrics) = crate::ports(crate::DEFAULT_BASE_PORT, index).expect("ports");
                (format!("node{index}"), format!("127.0.0.1:{metrics}"))
            })
            .collect();
        assert_eq!(
            prometheus_config(DEFAULT_NETWORK, &targets),
            include_str!("../../deploy/prometheus/prometheus.yml"),
            "deploy/prometheus/prometheus.yml is what prometheus_config writes for the default testnet"
        );
    }

    #[test]
    fn the_prometheus_config_names_each_target_by_its_node() {
        let targets = [("node0".to_string(), "127.0.0.1:1".to_string()), ("node1".into(), "127.0.0.1:4".into())];
        let text = prometheus_config("a test", &targets);
        assert!(text.contains("job_name: stele\n"), "{text}");
        assert!(text.contains("- targets: [\"127.0.0.1:4\"]\n        labels:\n          instance: node1\n"), "{text}");
        assert_eq!(text.matches("- targets:").count(), 2, "{text}");
        assert!(text.lines().filter(|line| !line.starts_with('#')).all(|line| !line.contains('\t')), "{text}");
    }

    #[test]
    fn subnets_follow_the_base_port() {
        let subnet = Subnet::for_base_port(26600);
        assert_eq!(subnet.to_string(), "10.103.232.0/24");
        assert_eq!(subnet.address(0), "10.103.232.10");
        assert_eq!(subnet.address(3), "10.103.232.13");
        assert_ne!(Subnet::for_base_port(26700).to_string(), subnet.to_string());
    }
}
