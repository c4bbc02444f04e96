//! `stele testnet up` (generate if needed, start every node, wait for a block, stop them all on
//! Ctrl-C) and `stele testnet generate` (the files only).

use std::path::PathBuf;

use clap::{Args, Subcommand};
use consensus::ChainId;

#[derive(Subcommand, Debug)]
pub enum TestnetCommand {
    /// Start a local network (generating it first if DIR has none) until Ctrl-C.
    Up(UpArgs),
    /// Write keys, genesis and one config.toml per validator (ports from --base-port).
    Generate(GenerateCommand),
    /// Run the multi-process fault suite: kill -9, SIGSTOP, partitions, a late joiner, or a
    /// random soak; then check agreement, every acknowledged transfer, and audit every node.
    Faults(FaultsArgs),
}

#[derive(Args, Debug)]
pub struct FaultsArgs {
    /// Scenarios to run, in order: kill-restart, kill-leader, pause, cut-one, split,
    /// late-joiner, soak, or `all` (every one but soak). Repeat the flag for several.
    #[arg(long = "scenario", default_value = "all")]
    scenarios: Vec<String>,
    /// Run random faults from the seed for this long (adds the soak scenario).
    #[arg(long, value_parser = humantime::parse_duration)]
    soak: Option<std::time::Duration>,
    /// Seed of every random choice; printed, so a run can be repeated. Default: the clock.
    #[arg(long)]
    seed: Option<u64>,
    /// Blocks the late joiner syncs.
    #[arg(long, default_value_t = 10_000)]
    late_blocks: u64,
    /// Folder for the scenario networks (each scenario's folder is replaced; default
    /// ~/.stele/faults).
    #[arg(long, default_value_os_t = default_folder("faults"))]
    dir: PathBuf,
    /// First port (scenario k uses base + 12k ..).
    #[arg(long, default_value_t = 27600)]
    base_port: u16,
    /// Run every node on 127.0.0.1 even as root (partition scenarios are skipped).
    #[arg(long)]
    loopback: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct GenerateCommand {
    #[command(flatten)]
    network: GenerateArgs,
    /// Also write docker-compose.yml and docker/ (an image built FROM scratch from this `stele`
    /// binary; nothing is pulled). With a network already in DIR, writes only these files.
    #[arg(long)]
    compose: bool,
}

#[derive(Args, Debug)]
pub struct GenerateArgs {
    /// Number of validators (4 tolerates one faulty).
    #[arg(long, default_value_t = 4)]
    validators: usize,
    /// Folder of the network (default: ~/.stele/testnet, outside any source tree).
    #[arg(long, default_value_os_t = default_folder("testnet"))]
    dir: PathBuf,
    /// Node i uses base+3i (p2p), base+3i+1 (JSON-RPC), base+3i+2 (metrics).
    #[arg(long, default_value_t = testnet::DEFAULT_BASE_PORT)]
    base_port: u16,
    /// Chain id (a-z, 0-9 and '-').
    #[arg(long, default_value = "stele-local")]
    chain_id: String,
}

#[derive(Args, Debug)]
pub struct UpArgs {
    #[command(flatten)]
    generate: GenerateArgs,
    /// Delete the network in DIR (keys, genesis, node folders and their data) and start over.
    #[arg(long)]
    reset: bool,
    /// Also stream every node's log to stdout, prefixed with its name.
    #[arg(long)]
    follow: bool,
    /// Leave a node that exits down instead of restarting it (with a back-off) automatically.
    #[arg(long)]
    no_restart: bool,
}

/// `~/.stele/<name>` (or `./.stele/<name>` without a home folder).
pub fn default_folder(name: &str) -> PathBuf {
    std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(".")).join(".stele").join(name)
}

fn spec(arguments: &GenerateArgs) -> anyhow::Result<testnet::TestnetSpec> {
    let chain_id = ChainId::new(&arguments.chain_id)
        .map_err(|error| anyhow::anyhow!("--chain-id {:?}: {error}", arguments.chain_id))?;
    Ok(testnet::TestnetSpec { chain_id, validators: arguments.validators, base_port: arguments.base_port })
}

fn up(arguments: UpArgs) -> anyhow::Result<()> {
    let dir = &arguments.generate.dir;
    if arguments.reset {
        testnet::reset(dir)?;
    }
    if testnet::exists(dir) {
        println!("resuming the network in {} (--reset starts over)", dir.display());
    } else {
        testnet::generate(dir, &spec(&arguments.generate)?)?;
        println!("generated a {}-validator network in {}", arguments.generate.validators, dir.display());
    }
    let network = testnet::load(dir)?;
    let stele = std::env::current_exe()?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let mut running = testnet::start(network, &stele, arguments.follow)?;
        println!("waiting for the first block...");
        if let Err(error) = running.wait_until_committed(std::time::Duration::from_secs(60)).await {
            running.stop();
            return Err(error.into());
        }
        print_table(&running);
        let restart = !arguments.no_restart;
        let stopped_by = tokio::select! {
            _ = tokio::signal::ctrl_c() => "Ctrl-C".to_string(),
            _ = terminate_signal() => "SIGTERM".to_string(),
            stopped = supervise(&mut running, restart) => stopped,
        };
        // Stopping the nodes must not depend on stdout still being open (a closed pipe).
        say(&format!("{stopped_by}: stopping every node..."));
        let mut clean = true;
        for (name, status) in running.stop() {
            let ok = status.is_some_and(|status| status.success());
            clean &= ok;
            say(&format!("  {name}: {}", status.map(|status| status.to_string()).unwrap_or_else(|| "unknown".into())));
        }
        if !clean {
            anyhow::bail!("a node did not stop cleanly; see its node.log");
        }
        Ok(())
    })
}

/// Prints a line, ignoring a closed stdout.
fn say(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout(), "{line}");
}

async fn terminate_signal() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut signal) => {
            signal.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}

/// Keeps the network running: a node that exits is reported (with the end of its log) and,
/// unless `restart` is off, started again after a back-off that doubles while it keeps failing
/// (2 s up to 60 s; reset once it has run for a minute). The others go on committing meanwhile,
/// which is what a BFT network is for. Completes only when every node has exited and none will
/// be restarted.
async fn supervise(running: &mut testnet::Running, restart: bool) -> String {
    use std::{collections::HashMap, time::Duration};
    const FIRST: Duration = Duration::from_secs(2);
    const LONGEST: Duration = Duration::from_secs(60);
    let mut backoff: HashMap<String, Duration> = HashMap::new();
    let mut pending: HashMap<String, tokio::time::Instant> = HashMap::new();
    loop {
        for (name, status, uptime) in running.exits() {
            if pending.contains_key(&name) {
                continue;
            }
            say(&format!("{name} exited ({status}) after {} s; the end of its log:", uptime.as_secs()));
            for line in running.log_tail(&name, 5) {
                say(&format!("    {line}"));
            }
            if !restart {
                say(&format!("  {name} stays down (--no-restart); the others keep running"));
                pending.insert(name, tokio::time::Instant::now() + Duration::from_secs(u32::MAX as u64));
                continue;
            }
            let delay = match backoff.get(&name) {
                Some(last) if uptime < LONGEST => (*last * 2).min(LONGEST),
                _ => FIRST,
            };
            backoff.insert(name.clone(), delay);
            say(&format!("  restarting {name} in {} s; the others keep committing", delay.as_secs()));
            pending.insert(name, tokio::time::Instant::now() + delay);
        }
        let now = tokio::time::Instant::now();
        let due: Vec<String> = pending.iter().filter(|(_, at)| **at <= now).map(|(name, _)| name.clone()).collect();
        for name in due {
            pending.remove(&name);
            match running.restart(&name) {
                Ok(()) => say(&format!("{name} restarted")),
                Err(error) => {
                    say(&format!("{name} could not be restarted: {error}; trying again"));
                    let delay = backoff.get(&name).copied().unwrap_or(FIRST);
                    pending.insert(name, now + delay);
                }
            }
        }
        if !restart && pending.len() == running.processes.len() {
            return "every node exited".to_string();
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn print_table(running: &testnet::Running) {
    println!();
    println!("{:<7} {:<53} {:<24} {:<33} log", "node", "peer id", "rpc", "metrics");
    for process in &running.processes {
        let node = &process.node;
        println!(
            "{:<7} {:<53} {:<24} {:<33} {}",
            node.name,
            node.peer_id,
            node.rpc_url,
            node.metrics_url,
            process.log.display()
        );
    }
    let rpc = running.processes.first().map(|process| process.node.rpc_url.clone()).unwrap_or_default();
    println!();
    println!("Try a transfer from the faucet (every role, large balance):");
    println!(
        "  stele tx transfer --to 0x00000000000000000000000000000000000000aa --amount 10 --key {} --rpc {rpc} --wait",
        running.network.faucet_key_path.display()
    );
    println!("  stele query account 0x00000000000000000000000000000000000000aa --rpc {rpc}");
    println!("Ctrl-C stops every node; `stele testnet up` again resumes with the same data.");
}

pub fn run(command: TestnetCommand) -> anyhow::Result<()> {
    match command {
        TestnetCommand::Up(arguments) => up(arguments),
        TestnetCommand::Generate(command) => generate(command),
        TestnetCommand::Faults(arguments) => faults(arguments),
    }
}

fn faults(arguments: FaultsArgs) -> anyhow::Result<()> {
    use testnet::faults::{FaultSpec, Scenario};
    let mut scenarios = Vec::new();
    for name in &arguments.scenarios {
        if name == "all" {
            scenarios.extend(Scenario::BOUNDED);
        } else {
            let scenario = Scenario::parse(name).ok_or_else(|| {
                anyhow::anyhow!(
                    "--scenario {name:?}: expected one of kill-restart, kill-leader, pause, cut-one, split, late-joiner, soak, all"
                )
            })?;
            scenarios.push(scenario);
        }
    }
    if arguments.soak.is_some() {
        // `--soak` alone runs only the soak; with named scenarios, after them.
        if arguments.scenarios.iter().all(|name| name == "all") {
            scenarios.clear();
        }
        if !scenarios.contains(&Scenario::Soak) {
            scenarios.push(Scenario::Soak);
        }
    }
    let seed = arguments.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_nanos() as u64)
            .unwrap_or(1)
    });
    let spec = FaultSpec {
        stele: std::env::current_exe()?,
        dir: arguments.dir.clone(),
        base_port: arguments.base_port,
        seed,
        scenarios,
        soak: arguments.soak.unwrap_or(std::time::Duration::from_secs(300)),
        late_blocks: arguments.late_blocks,
        loopback: arguments.loopback,
    };
    let seed_line = format!("seed {seed} (repeat with --seed {seed})");
    if arguments.json {
        eprintln!("{seed_line}");
    } else {
        say(&seed_line);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let json = arguments.json;
    let mut progress = |line: &str| {
        if json {
            eprintln!("{line}");
        } else {
            say(line)
        }
    };
    let report = runtime.block_on(async {
        // Ctrl-C or SIGTERM drops the run, and with it every node process and namespace.
        tokio::select! {
            report = testnet::faults::run(&spec, &mut progress) => report.map_err(anyhow::Error::from),
            _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted (Ctrl-C); every node was stopped")),
            _ = terminate_signal() => Err(anyhow::anyhow!("interrupted (SIGTERM); every node was stopped")),
        }
    })?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    let violations = report.violations();
    let ran = report.scenarios.iter().filter(|scenario| scenario.skipped.is_none()).count();
    let faults: usize = report.scenarios.iter().map(|scenario| scenario.faults.len()).sum();
    let checked: u64 = report.scenarios.iter().map(|scenario| scenario.checked.transactions_checked).sum();
    if !json {
        say(&format!(
            "{ran} scenarios run, {faults} faults injected, {checked} acknowledged transfers checked on every node, {} violations (seed {seed})",
            violations.len()
        ));
    }
    if !violations.is_empty() {
        anyhow::bail!("{} violations:\n{}", violations.len(), violations.join("\n"));
    }
    Ok(())
}

fn generate(command: GenerateCommand) -> anyhow::Result<()> {
    let arguments = &command.network;
    let dir = &arguments.dir;
    if command.compose && testnet::exists(dir) {
        println!("{} already holds a network; writing its compose files only", dir.display());
    } else {
        let generated = testnet::generate(dir, &spec(arguments)?)?;
        println!("wrote a {}-validator network to {}", generated.nodes.len(), dir.display());
        println!("faucet key: {}", generated.network.faucet_key_path.display());
        println!("{:<8} {:<54} {:<24} start with", "node", "peer id", "rpc");
        for node in &generated.nodes {
            println!(
                "{:<8} {:<54} {:<24} stele start --home {}",
                node.name,
                node.peer_id,
                node.rpc_url,
                node.home.display()
            );
        }
    }
    if command.compose {
        let network = testnet::load(dir)?;
        let files = testnet::write_compose(&network, &std::env::current_exe()?)?;
        println!();
        println!(
            "wrote {} and {}/ (image {}, network {})",
            files.compose_file.display(),
            files.docker_dir.display(),
            files.image,
            files.subnet
        );
        println!(
            "monitoring: {} (Prometheus scrape configuration) and {} (Grafana dashboard)",
            files.prometheus_file.display(),
            files.dashboard_file.display()
        );
        println!("start it with: docker-compose -f {} up --build -d", files.compose_file.display());
        println!(
            "JSON-RPC stays at the URLs above; stop with: docker-compose -f {} down",
            files.compose_file.display()
        );
    }
    Ok(())
}
