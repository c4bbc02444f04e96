//! `stele testnet generate --compose`: the files name every node's peers and ports, each node
//! has a readiness health check, a Prometheus configuration scrapes every node and the Grafana
//! dashboard is written beside them, the image is built FROM scratch from the local binary, and,
//! where Docker runs, the containers form the network: blocks commit, every container turns
//! healthy, every scrape target serves the node's metrics, and a transfer submitted to one node
//! shows on another.

use std::{
    path::Path,
    process::{Command, Stdio},
};

use super::processes::{free_port_range, height, run_ok, wait_for};

/// The compose command of this machine (`docker-compose` or `docker compose`), if Docker's
/// engine answers.
fn docker_compose() -> Option<Vec<&'static str>> {
    let quiet = |program: &str, arguments: &[&str]| {
        Command::new(program)
            .args(arguments)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    };
    if !quiet("docker", &["info"]) {
        return None;
    }
    if quiet("docker-compose", &["version"]) {
        Some(vec!["docker-compose"])
    } else if quiet("docker", &["compose", "version"]) {
        Some(vec!["docker", "compose"])
    } else {
        None
    }
}

/// A compose project taken down (containers, network and the built image) however the test ends.
struct Project {
    command: Vec<&'static str>,
    file: std::path::PathBuf,
    name: String,
}

impl Project {
    fn run(&self, arguments: &[&str]) -> std::process::Output {
        Command::new(self.command[0])
            .args(&self.command[1..])
            .arg("-f")
            .arg(&self.file)
            .args(["-p", &self.name])
            .args(arguments)
            .stdin(Stdio::null())
            .output()
            .expect("run docker compose")
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let down = self.run(&["down", "--volumes", "--rmi", "all", "--timeout", "20"]);
        if !down.status.success() {
            eprintln!("compose down failed: {}", String::from_utf8_lossy(&down.stderr));
        }
    }
}

/// The (instance label, port) of each target of a generated prometheus.yml, in order.
fn scrape_targets(config: &str) -> Vec<(String, u16)> {
    let mut targets = Vec::new();
    let mut port = None;
    for line in config.lines().map(str::trim) {
        if let Some(target) = line.strip_prefix("- targets: [\"127.0.0.1:") {
            port = target.strip_suffix("\"]").and_then(|port| port.parse().ok());
        } else if let Some(name) = line.strip_prefix("instance: ")
            && let Some(port) = port.take()
        {
            targets.push((name.to_string(), port));
        }
    }
    targets
}

fn peer_ids(dir: &Path) -> Vec<String> {
    let genesis = genesis::GenesisDocument::load(&dir.join("genesis.json")).expect("genesis");
    genesis.validators.iter().map(|validator| validator.peer_id.clone()).collect()
}

#[test]
fn generate_compose_writes_a_network_of_containers_that_commits() {
    let _network = super::one_network_at_a_time();
    let dir = tempfile::tempdir().expect("temp dir");
    let base = free_port_range(12);
    let folder = dir.path().to_str().expect("utf-8");
    // Its own chain id, so the image tag (removed at the end) is this test's alone.
    let chain_id = format!("compose-test-{}", std::process::id());
    let base_port = base.to_string();
    let arguments = ["--validators", "4", "--base-port", &base_port, "--chain-id", &chain_id, "--dir", folder];
    run_ok(&[&["testnet", "generate", "--compose"], &arguments[..]].concat());

    let compose = std::fs::read_to_string(dir.path().join("docker-compose.yml")).expect("compose file");
    assert!(compose.contains(&format!("image: stele-testnet:{chain_id}\n")), "{compose}");
    let peers = peer_ids(dir.path());
    let services: Vec<&str> = compose.split("\n  node").skip(1).collect();
    assert_eq!(services.len(), 4, "{compose}");
    for (index, service) in services.iter().enumerate() {
        let rpc = base + 3 * index as u16 + 1;
        assert!(service.contains(&format!("\"127.0.0.1:{rpc}:8545\"")), "node{index}: {service}");
        assert!(service.contains(&format!("\"127.0.0.1:{}:9615\"", rpc + 1)), "node{index}: {service}");
        let bootstrap = service.lines().find(|line| line.contains("BOOTSTRAP")).expect("bootstrap line");
        for (other, peer) in peers.iter().enumerate() {
            assert_eq!(bootstrap.contains(peer.as_str()), other != index, "node{index} bootstrap: {bootstrap}");
        }
        assert!(
            service.contains(
                "    healthcheck:\n      test: [\"CMD\", \"/usr/local/bin/stele\", \"probe\", \"--ready\", \"--rpc\", \
                 \"http://127.0.0.1:8545\"]\n"
            ),
            "node{index}: {service}"
        );
    }

    // Monitoring: a scrape target per node, at its published metrics port, named after it; and
    // the repository's dashboard.
    let prometheus = std::fs::read_to_string(dir.path().join("prometheus.yml")).expect("prometheus.yml");
    let targets = scrape_targets(&prometheus);
    let expected: Vec<(String, u16)> =
        (0..4).map(|index| (format!("node{index}"), base + 3 * index as u16 + 2)).collect();
    assert_eq!(targets, expected, "{prometheus}");
    let dashboard = std::fs::read_to_string(dir.path().join("stele-dashboard.json")).expect("dashboard");
    let repository = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/grafana/stele-dashboard.json");
    assert_eq!(dashboard, std::fs::read_to_string(repository).expect("deploy/grafana/stele-dashboard.json"));
    let dashboard: serde_json::Value = serde_json::from_str(&dashboard).expect("the dashboard is JSON");
    assert!(dashboard["panels"].as_array().is_some_and(|panels| panels.len() >= 10), "{dashboard}");
    let dockerfile = std::fs::read_to_string(dir.path().join("docker/Dockerfile")).expect("Dockerfile");
    let from: Vec<&str> = dockerfile.lines().filter(|line| line.starts_with("FROM")).collect();
    assert_eq!(from, ["FROM scratch"], "nothing may be pulled");
    let binary = dir.path().join("docker/rootfs/usr/local/bin/stele");
    let copied = std::fs::metadata(&binary).expect("the binary is in the image's root").len();
    assert!(copied > 0 && copied <= std::fs::metadata(env!("CARGO_BIN_EXE_stele")).expect("stele").len());
    let version = Command::new(&binary).arg("--version").output().expect("the copied binary runs");
    assert_eq!(String::from_utf8_lossy(&version.stdout).trim(), format!("stele {}", env!("CARGO_PKG_VERSION")));

    // Writing the compose files again for the existing network keeps the network.
    run_ok(&["testnet", "generate", "--compose", "--dir", folder]);
    assert_eq!(peer_ids(dir.path()), peers);

    let Some(command) = docker_compose() else {
        eprintln!("skipped the container run: no Docker engine or compose command here");
        return;
    };
    let project = Project {
        command,
        file: dir.path().join("docker-compose.yml"),
        name: format!("steletest{}x{base}", std::process::id()),
    };
    let up = project.run(&["up", "--build", "-d"]);
    assert!(up.status.success(), "compose up failed:\n{}", String::from_utf8_lossy(&up.stderr));
    // Each scrape target of prometheus.yml serves the node's metrics.
    wait_for("every scrape target to show a committed block", || {
        targets.iter().all(|(_, port)| height(*port).is_some_and(|h| h >= 1))
    });
    let ids = project.run(&["ps", "-q"]);
    let ids: Vec<String> = String::from_utf8_lossy(&ids.stdout).split_whitespace().map(str::to_string).collect();
    assert_eq!(ids.len(), 4, "one container per node");
    wait_for("every container's readiness health check to pass", || {
        let health = Command::new("docker")
            .args(["inspect", "-f", "{{.State.Health.Status}}"])
            .args(&ids)
            .output()
            .expect("docker inspect");
        let health = String::from_utf8_lossy(&health.stdout);
        assert!(!health.contains("unhealthy"), "a node's health check failed: {health}");
        health.split_whitespace().filter(|status| *status == "healthy").count() == 4
    });

    let faucet = dir.path().join("faucet.key.json");
    let recipient = "0x00000000000000000000000000000000000000ab";
    let node1 = format!("http://127.0.0.1:{}", base + 4);
    let node3 = format!("http://127.0.0.1:{}", base + 10);
    let sent = run_ok(&[
        "tx",
        "transfer",
        "--to",
        recipient,
        "--amount",
        "7",
        "--key",
        faucet.to_str().expect("utf-8"),
        "--rpc",
        &node1,
        "--wait",
    ]);
    assert!(sent.contains("committed at height"), "{sent}");
    wait_for("the transfer on node3", || {
        let output = Command::new(env!("CARGO_BIN_EXE_stele"))
            .args(["query", "account", recipient, "--json", "--rpc", &node3])
            .output()
            .expect("run stele");
        serde_json::from_slice::<serde_json::Value>(&output.stdout).is_ok_and(|account| account["balance"] == 7)
    });
    // A backup made inside a running container (where the node's admin socket is) lands in the
    // mounted home and audits on the host.
    let backup = project.run(&[
        "exec",
        "-T",
        "node1",
        "/usr/local/bin/stele",
        "backup",
        "--home",
        "/home/node1",
        "--out",
        "/home/node1/backup",
    ]);
    assert!(backup.status.success(), "backup in the container: {}", String::from_utf8_lossy(&backup.stderr));
    let audited = run_ok(&["audit", "--home", dir.path().join("node1/backup").to_str().expect("utf-8")]);
    assert!(audited.starts_with("OK"), "{audited}");
    let stopped = project.run(&["stop", "--timeout", "30"]);
    assert!(stopped.status.success(), "{}", String::from_utf8_lossy(&stopped.stderr));
    let ids = project.run(&["ps", "-a", "-q"]);
    let ids: Vec<String> = String::from_utf8_lossy(&ids.stdout).split_whitespace().map(str::to_string).collect();
    assert_eq!(ids.len(), 4, "one container per node");
    let codes = Command::new("docker")
        .args(["inspect", "-f", "{{.State.ExitCode}}"])
        .args(&ids)
        .output()
        .expect("docker inspect");
    let codes = String::from_utf8_lossy(&codes.stdout);
    assert!(
        codes.split_whitespace().all(|code| code == "0"),
        "every node stops cleanly on SIGTERM: exit codes {codes}"
    );
}
