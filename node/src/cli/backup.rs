//! `stele backup --home DIR --out DIR2`: a consistent copy of a node's store, whether the node
//! runs or not, and `stele backup restore --from DIR2 --home DIR` to put one back.
//!
//! The copy is a RocksDB checkpoint (every column family as of one instant: whole blocks only,
//! head, state tree and indexes in agreement), never a copy of the files of a live database.
//! A running node holds the store's lock, so it makes the checkpoint itself, asked through its
//! admin socket `HOME/admin.sock` (see `node::admin` for why a socket in the home); a stopped
//! node's store is opened here and checkpointed directly.
//!
//! DIR2 looks like a home without keys: `data/` (the checkpoint), `genesis.json` and
//! `backup.json` (chain, genesis hash, height, head hash, time), so `stele audit --home DIR2`
//! verifies it. It is built in a hidden folder beside DIR2 and renamed into place at the end:
//! DIR2 either is a whole backup or does not exist. No key is copied: a backup is not a second
//! validator.
//!
//! Restoring replaces the store of a stopped node's home (its own, or a fresh one made by
//! `stele init` / `stele testnet generate` for the same network) with a copy of the backup's;
//! the node then syncs the blocks committed since from its peers. The store it replaces is kept
//! aside, and the consensus safety state (the votes this home's validator signed) is carried
//! over from it, so a validator restored onto its own home never forgets a vote it cast after
//! the backup was made.

use std::{
    fs,
    path::{Path, PathBuf},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context, anyhow, bail};
use clap::{Args, Subcommand};
use consensus::SafetyState;
use genesis::{GenesisDocument, files};
use ledger::{BlockReader, Genesis, LocalRecords, RocksStore, StoreError, StoreOptions};
use node::{admin, node::DATA_DIR};
use serde::{Deserialize, Serialize};

/// The manifest's file name in a backup folder.
const MANIFEST_FILE: &str = "backup.json";
/// The manifest's format tag.
const FORMAT: &str = "stele-backup/1";

/// Copy a node's store consistently, running or stopped (or, with `restore`, put a copy back).
#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct BackupArgs {
    #[command(subcommand)]
    command: Option<BackupCommand>,
    /// The node's home folder (its store is HOME/data). The node may be running.
    #[arg(long, required = true)]
    home: Option<PathBuf>,
    /// The backup folder to create (refused if it exists; its parent must exist): the store
    /// (data/), a copy of genesis.json and backup.json (height, head hash). Never the keys.
    #[arg(long, required = true)]
    out: Option<PathBuf>,
    /// How long to wait for a running node to write the checkpoint.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Print the backup's manifest as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand, Debug)]
enum BackupCommand {
    /// Replace a stopped node's store with a backup's; the node syncs the rest from its peers.
    Restore(RestoreArgs),
}

/// `stele backup restore`.
#[derive(Args, Debug)]
struct RestoreArgs {
    /// The backup folder (made by `stele backup`).
    #[arg(long)]
    from: PathBuf,
    /// The home to restore into: a home of the same network (its genesis.json), the node's own
    /// or one made by `stele init` or `stele testnet generate`. The node must be stopped; the
    /// store it had is kept beside it as data.replaced-<time>.
    #[arg(long)]
    home: PathBuf,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// `backup.json`: what the backup holds.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
struct Manifest {
    /// [`FORMAT`].
    format: String,
    chain_id: String,
    /// The genesis hash (the one `stele genesis` prints).
    genesis_hash: String,
    /// The height of the last block in the backup.
    height: u64,
    /// The hash of that block.
    head_hash: String,
    /// Its timestamp, ms since the Unix epoch.
    head_time_ms: u64,
    /// When the backup was made, ms since the Unix epoch.
    created_at_ms: u64,
    /// Who made the checkpoint.
    source: Source,
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum Source {
    /// The running node, through its admin socket.
    RunningNode,
    /// This command, from the store of a stopped node.
    StoppedNode,
}

/// Runs `stele backup` or `stele backup restore`.
pub fn run(arguments: BackupArgs) -> anyhow::Result<()> {
    match (arguments.command, arguments.home, arguments.out) {
        (Some(BackupCommand::Restore(restore_arguments)), _, _) => restore(&restore_arguments),
        (None, Some(home), Some(out)) => backup(&home, &out, arguments.timeout, arguments.json),
        // clap requires both without a subcommand.
        (None, _, _) => bail!("stele backup needs --home and --out"),
    }
}

fn backup(home: &Path, out: &Path, timeout: Duration, json: bool) -> anyhow::Result<()> {
    let out = new_folder(out)?;
    let genesis_path = home.join(files::GENESIS);
    let genesis = GenesisDocument::load(&genesis_path)
        .and_then(|document| document.to_ledger())
        .with_context(|| format!("{} is not a node home with a valid genesis.json", home.display()))?;
    let data = home.join(DATA_DIR);
    if !data.join("CURRENT").is_file() {
        bail!("{} holds no store (no {}/CURRENT): nothing to back up", home.display(), DATA_DIR);
    }
    if let (Ok(data), Some(parent)) = (data.canonicalize(), out.parent())
        && parent.starts_with(&data)
    {
        bail!("the backup cannot go inside the store it copies ({})", data.display());
    }
    let staging = Staging::create(&out)?;
    let checkpoint = staging.path.join(DATA_DIR);
    let source = checkpoint_store(home, &data, &genesis, &checkpoint, timeout)?;
    let manifest = describe(&checkpoint, &genesis, source)?;
    copy_file(&genesis_path, &staging.path.join(files::GENESIS))?;
    let text = serde_json::to_string_pretty(&manifest).context("encoding the manifest")? + "\n";
    write_synced(&staging.path.join(MANIFEST_FILE), text.as_bytes())?;
    staging.finish(&out)?;

    if json {
        println!("{}", serde_json::to_string(&manifest)?);
        return Ok(());
    }
    let made_by = match source {
        Source::RunningNode => "made by the running node",
        Source::StoppedNode => "from the stopped node's store",
    };
    println!(
        "backed up {} at height {} (head {}), {made_by}, to {}",
        manifest.chain_id,
        manifest.height,
        manifest.head_hash,
        out.display()
    );
    println!("  data/          the store (a RocksDB checkpoint)");
    println!("  genesis.json   the network's genesis");
    println!("  {MANIFEST_FILE}    height, head hash and time of the backup");
    println!("  no keys: a backup is not a second validator");
    println!("check it:   stele audit --home {}", out.display());
    println!("restore it: stele backup restore --from {} --home <HOME>   (with that node stopped)", out.display());
    Ok(())
}

/// Makes the checkpoint at `checkpoint`: by the running node if one answers on the home's admin
/// socket, else from the store opened here.
fn checkpoint_store(
    home: &Path,
    data: &Path,
    genesis: &Genesis,
    checkpoint: &Path,
    timeout: Duration,
) -> anyhow::Result<Source> {
    let socket = home.join(admin::SOCKET_FILE);
    let request = admin::Request::Checkpoint { path: checkpoint.to_path_buf() };
    match admin::call(&socket, &request, timeout) {
        Ok(admin::Response::Done) => {
            if !checkpoint.join("CURRENT").is_file() {
                bail!(
                    "the node reports a checkpoint at {} that this command does not see: does the node run in \
                     another filesystem (a container)? Run `stele backup` where the node runs (e.g. `docker \
                     compose exec`), with --out inside a mounted folder",
                    checkpoint.display()
                );
            }
            Ok(Source::RunningNode)
        }
        Ok(admin::Response::Failed(reason)) => {
            let hint = if reason.contains("No such file") {
                " (the node writes the checkpoint itself, at a path of its own filesystem: if it runs in a \
                 container, run `stele backup` inside it, with --out in a mounted folder)"
            } else {
                ""
            };
            bail!("the running node could not make the checkpoint: {reason}{hint}")
        }
        Err(admin::ClientError::NotRunning { .. }) => {
            let store = RocksStore::open(data, genesis, StoreOptions::default()).map_err(|error| {
                if is_lock_error(&error) {
                    anyhow!(
                        "another process holds the store {} open, and no node answers on {}: a node running \
                         without its admin socket? Stop it, or fix its socket (see its log), then retry",
                        data.display(),
                        socket.display()
                    )
                } else {
                    anyhow!(error).context(format!("cannot open the store at {}", data.display()))
                }
            })?;
            store.checkpoint(checkpoint)?;
            Ok(Source::StoppedNode)
        }
        Err(error) => Err(error.into()),
    }
}

/// Reads the checkpoint back: its head, checked against its certificate.
fn describe(checkpoint: &Path, genesis: &Genesis, source: Source) -> anyhow::Result<Manifest> {
    let store = RocksStore::open(checkpoint, genesis, StoreOptions { sync_writes: false, read_only: true })
        .context("the checkpoint does not open")?;
    let head = store.head()?;
    if head.height > 0 {
        store.block(head.height)?.ok_or_else(|| anyhow!("the checkpoint has no block at its head {}", head.height))?;
    }
    Ok(Manifest {
        format: FORMAT.to_string(),
        chain_id: genesis.chain_id.to_string(),
        genesis_hash: genesis.hash().to_string(),
        height: head.height,
        head_hash: head.hash().to_string(),
        head_time_ms: head.timestamp_ms,
        created_at_ms: now_ms(),
        source,
    })
}

fn restore(arguments: &RestoreArgs) -> anyhow::Result<()> {
    let (from, home) = (&arguments.from, &arguments.home);
    // Everything is checked before anything is written.
    let manifest_path = from.join(MANIFEST_FILE);
    let manifest: Manifest = fs::read(&manifest_path)
        .map_err(anyhow::Error::from)
        .and_then(|bytes| Ok(serde_json::from_slice(&bytes)?))
        .with_context(|| format!("{} is not a backup made by `stele backup` (its {MANIFEST_FILE})", from.display()))?;
    if manifest.format != FORMAT {
        bail!("{}: format {:?}, this stele reads {FORMAT:?}", manifest_path.display(), manifest.format);
    }
    let genesis = GenesisDocument::load(&from.join(files::GENESIS))
        .and_then(|document| document.to_ledger())
        .with_context(|| format!("the backup {} has no valid genesis.json", from.display()))?;
    if genesis.hash().to_string() != manifest.genesis_hash {
        bail!(
            "the backup {} is damaged: its genesis.json is not the genesis its {MANIFEST_FILE} names",
            from.display()
        );
    }
    if !home.is_dir() {
        bail!(
            "{} is not a node home: make one first (`stele init --home {} --genesis {}`, or the node's own home), \
             then restore into it",
            home.display(),
            home.display(),
            from.join(files::GENESIS).display()
        );
    }
    let home_genesis = GenesisDocument::load(&home.join(files::GENESIS))
        .and_then(|document| document.to_ledger())
        .with_context(|| format!("{} has no valid genesis.json: not a node home", home.display()))?;
    if home_genesis.hash() != genesis.hash() {
        bail!(
            "{} belongs to another network (genesis {}) than the backup (genesis {})",
            home.display(),
            home_genesis.hash(),
            genesis.hash()
        );
    }
    let backup_data = from.join(DATA_DIR);
    {
        let options = StoreOptions { sync_writes: false, read_only: true };
        let store = RocksStore::open(&backup_data, &genesis, options)
            .with_context(|| format!("the backup's store {} does not open", backup_data.display()))?;
        let head = store.head()?;
        if head.height != manifest.height || head.hash().to_string() != manifest.head_hash {
            bail!(
                "the backup's store ends at height {} ({}), its {MANIFEST_FILE} says {} ({}): not the backup it names",
                head.height,
                head.hash(),
                manifest.height,
                manifest.head_hash
            );
        }
    }
    let socket = home.join(admin::SOCKET_FILE);
    match admin::call(&socket, &admin::Request::Ping, Duration::from_secs(10)) {
        Err(admin::ClientError::NotRunning { .. }) => {}
        Ok(_) => bail!("a node is running from {}: stop it first (restoring replaces its store)", home.display()),
        Err(error) => return Err(anyhow!(error).context("cannot tell whether a node runs from the home")),
    }

    // What the store being replaced knows that the backup does not: the votes this home's
    // validator signed since. Its safety state goes into the restored store.
    let data = home.join(DATA_DIR);
    let mut replaced: Option<(u64, Option<Vec<u8>>)> = None;
    if data.exists() {
        match RocksStore::open(&data, &genesis, StoreOptions::default()) {
            Ok(store) => replaced = Some((store.head_height()?, safety_state(&store))),
            Err(error) if is_lock_error(&error) => {
                bail!("another process holds {} open (a node?): stop it first", data.display())
            }
            Err(error) => {
                eprintln!("warning: the store being replaced does not open ({error}): it is replaced all the same");
                let options = StoreOptions { sync_writes: false, read_only: true };
                if let Ok(store) = RocksStore::open(&data, &genesis, options) {
                    replaced = Some((store.head_height().unwrap_or(0), safety_state(&store)));
                }
            }
        }
    }
    let carried = replaced.as_ref().and_then(|(_, state)| state.clone());

    let staging = Staging { path: home.join(format!(".{DATA_DIR}.restoring-{}", std::process::id())), keep: false };
    if staging.path.exists() {
        fs::remove_dir_all(&staging.path).with_context(|| format!("removing {}", staging.path.display()))?;
    }
    copy_store(&backup_data, &staging.path)?;
    let restored_safety = {
        // Opening for writing checks the copy's head block, receipts and state root.
        let store = RocksStore::open(&staging.path, &genesis, StoreOptions::default())
            .context("the copy of the backup's store does not open")?;
        if let Some(state) = &carried {
            store.save_safety_state(state)?;
        }
        safety_state(&store).and_then(|bytes| SafetyState::decode(&bytes).ok()).map(|state| state.height)
    };
    let aside = if data.exists() {
        let aside = home.join(format!("{DATA_DIR}.replaced-{}", now_ms() / 1000));
        fs::rename(&data, &aside).with_context(|| format!("moving {} aside", data.display()))?;
        Some(aside)
    } else {
        None
    };
    if let Err(error) = fs::rename(&staging.path, &data) {
        if let Some(aside) = &aside {
            let _ = fs::rename(aside, &data);
        }
        return Err(error).with_context(|| format!("moving the restored store to {}", data.display()));
    }
    let mut staging = staging;
    staging.keep = true;
    sync_dir(home)?;

    let validator = home.join(files::VALIDATOR_KEY).exists();
    let safety = match (&carried, restored_safety) {
        (Some(_), height) => format!(
            "kept the replaced store's consensus safety state (this validator's votes at height {})",
            height.map_or_else(|| "?".to_string(), |height| height.to_string())
        ),
        (None, Some(height)) => format!("the backup's consensus safety state (its votes at height {height})"),
        (None, None) => "no consensus safety state".to_string(),
    };
    if arguments.json {
        let report = serde_json::json!({
            "home": home,
            "height": manifest.height,
            "head_hash": manifest.head_hash,
            "replaced": aside.as_ref().map(|aside| serde_json::json!({
                "kept_at": aside,
                "height": replaced.as_ref().map(|(height, _)| *height),
            })),
            "safety_state_from": if carried.is_some() { "replaced store" } else { "backup" },
            "safety_state_height": restored_safety,
        });
        println!("{report}");
    } else {
        println!(
            "restored {} from {} at height {} (head {}); the node syncs the blocks since from its peers when it \
             starts",
            data.display(),
            from.display(),
            manifest.height,
            manifest.head_hash
        );
        if let (Some(aside), Some((height, _))) = (&aside, &replaced) {
            println!(
                "the store it replaced (height {height}) is kept at {}: delete it once the node caught up",
                aside.display()
            );
        }
        println!("{safety}");
    }
    if carried.is_none() && validator {
        eprintln!(
            "warning: {} holds a validator key but there was no store to take its votes from, so the restored node \
             knows only the votes in the backup. If this validator signed votes after the backup was made (here or \
             on another host) it could now sign conflicting ones: never run two nodes with one key, and keep this \
             one stopped until the network is past the height it last voted at.",
            home.display()
        );
    }
    Ok(())
}

/// A store's consensus safety state, if it has a readable one.
fn safety_state(store: &RocksStore) -> Option<Vec<u8>> {
    match store.load_safety_state() {
        Ok(state) => state,
        Err(error) => {
            eprintln!("warning: {error}");
            None
        }
    }
}

/// RocksDB's answer when another process has the database open for writing.
fn is_lock_error(error: &StoreError) -> bool {
    matches!(error, StoreError::Rocks(error) if error.as_ref().contains("lock file"))
}

/// `out` made absolute, checked to be a new folder in an existing one.
fn new_folder(out: &Path) -> anyhow::Result<PathBuf> {
    let absolute = std::path::absolute(out).with_context(|| format!("--out {}", out.display()))?;
    let (Some(parent), Some(name)) = (absolute.parent(), absolute.file_name()) else {
        bail!("--out {} does not name a new folder", out.display());
    };
    let parent = parent
        .canonicalize()
        .with_context(|| format!("{} (where the backup goes) does not exist", parent.display()))?;
    let out = parent.join(name);
    if fs::symlink_metadata(&out).is_ok() {
        bail!("{} already exists: a backup goes into a new folder (it was left untouched)", out.display());
    }
    Ok(out)
}

/// A folder being built, removed unless it is finished.
struct Staging {
    path: PathBuf,
    keep: bool,
}

impl Staging {
    /// A hidden folder beside `out`.
    fn create(out: &Path) -> anyhow::Result<Self> {
        let name = out.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
        let path = out.with_file_name(format!(".{name}.partial-{}", std::process::id()));
        fs::create_dir(&path).with_context(|| format!("cannot create {}", path.display()))?;
        Ok(Staging { path, keep: false })
    }

    /// Renames the folder to `out`, durably.
    fn finish(mut self, out: &Path) -> anyhow::Result<()> {
        sync_dir(&self.path)?;
        if fs::symlink_metadata(out).is_ok() {
            bail!("{} appeared while the backup was made: left untouched", out.display());
        }
        fs::rename(&self.path, out).with_context(|| format!("moving the backup to {}", out.display()))?;
        self.keep = true;
        if let Some(parent) = out.parent() {
            sync_dir(parent)?;
        }
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// Copies a store's files (a RocksDB folder is flat) into the new folder `to`, synced.
fn copy_store(from: &Path, to: &Path) -> anyhow::Result<()> {
    fs::create_dir(to).with_context(|| format!("cannot create {}", to.display()))?;
    for entry in fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let name = entry.file_name();
        // The lock file belongs to whoever opens a store; the copy gets its own.
        if name == "LOCK" {
            continue;
        }
        if !entry.file_type()?.is_file() {
            bail!("{} is not a file: not a store made by `stele backup`", entry.path().display());
        }
        copy_file(&entry.path(), &to.join(&name))?;
    }
    sync_dir(to)
}

fn copy_file(from: &Path, to: &Path) -> anyhow::Result<()> {
    fs::copy(from, to).with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    fs::File::open(to).and_then(|file| file.sync_all()).with_context(|| format!("syncing {}", to.display()))
}

fn write_synced(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut file = fs::File::create_new(path).with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(bytes).and_then(|()| file.sync_all()).with_context(|| format!("writing {}", path.display()))
}

fn sync_dir(path: &Path) -> anyhow::Result<()> {
    fs::File::open(path).and_then(|dir| dir.sync_all()).with_context(|| format!("syncing {}", path.display()))
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_millis() as u64)
}
