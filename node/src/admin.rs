//! The admin socket, `HOME/admin.sock`: how a command run on the node's own host asks the
//! running node for what only the process that holds the store can do. Today that is one thing,
//! a checkpoint of the store (`stele backup`): RocksDB lets one process open a database for
//! writing, and a consistent copy of a database that is being written needs that process to
//! hold back file deletions while the copy links the files (a read-only or secondary instance
//! cannot; RocksDB does not support checkpoints of those).
//!
//! Why a Unix socket in the home rather than a JSON-RPC method: whoever may use it is whoever
//! may open the home (the socket is mode 0600, owned by the node's user, next to the node's
//! keys), so there is no token to configure and nothing reachable over the network, whatever
//! `rpc.listen` is; the command names the node by its home, as every other command on a home
//! does; and what it asks for (a copy written to a path on this host) only makes sense on this
//! host anyway.
//!
//! The protocol: one JSON [`Request`] line in, one JSON [`Response`] line out, then the
//! connection closes.

use std::{
    io::{BufRead, BufReader, Write},
    os::unix::fs::{FileTypeExt, PermissionsExt},
    path::{Path, PathBuf},
    sync::{Arc, Weak},
    time::Duration,
};

use ledger::RocksStore;
use serde::{Deserialize, Serialize};
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt},
    net::{UnixListener, UnixStream},
    sync::{Mutex, watch},
};
use tracing::{debug, info, warn};

/// The socket's file name inside a home folder.
pub const SOCKET_FILE: &str = "admin.sock";

/// Longest request line the node reads.
const REQUEST_BYTES_MAX: u64 = 16 * 1024;

/// How long a client has to send its request once connected.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What a command asks the node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Whether a node serves this home: it answers [`Response::Done`].
    Ping,
    /// Write a checkpoint of the store to `path` (absolute; must not exist, its parent must).
    Checkpoint {
        /// Where.
        path: PathBuf,
    },
}

/// The node's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Response {
    /// Done.
    Done,
    /// Refused or failed, and why.
    Failed(String),
}

/// Why a command could not get an answer from the admin socket.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing listens there: no node runs from this home (or it runs without the socket, or
    /// it crashed and left the file behind).
    #[error("no node answers on {}", path.display())]
    NotRunning {
        /// The socket's path.
        path: PathBuf,
    },
    /// Something else went wrong talking to it.
    #[error("the admin socket {}: {reason}", path.display())]
    Failed {
        /// The socket's path.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
}

/// Sends `request` to the node listening on `socket` and waits up to `timeout` for its answer
/// (blocking; for commands).
pub fn call(socket: &Path, request: &Request, timeout: Duration) -> Result<Response, ClientError> {
    let failed = |reason: String| ClientError::Failed { path: socket.to_path_buf(), reason };
    let mut stream = match std::os::unix::net::UnixStream::connect(socket) {
        Ok(stream) => stream,
        Err(error) if matches!(error.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused) => {
            return Err(ClientError::NotRunning { path: socket.to_path_buf() });
        }
        Err(error) => return Err(failed(error.to_string())),
    };
    stream.set_read_timeout(Some(timeout)).map_err(|error| failed(error.to_string()))?;
    stream.set_write_timeout(Some(REQUEST_TIMEOUT)).map_err(|error| failed(error.to_string()))?;
    let mut line = serde_json::to_string(request).map_err(|error| failed(error.to_string()))?;
    line.push('\n');
    stream.write_all(line.as_bytes()).map_err(|error| failed(format!("cannot send the request: {error}")))?;
    let mut answer = String::new();
    BufReader::new(std::io::Read::take(stream, REQUEST_BYTES_MAX)).read_line(&mut answer).map_err(
        |error| match error.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                failed(format!("no answer within {}", humantime::format_duration(timeout)))
            }
            _ => failed(format!("cannot read the answer: {error}")),
        },
    )?;
    if answer.is_empty() {
        return Err(failed("the node closed the connection without answering".to_string()));
    }
    serde_json::from_str(answer.trim_end()).map_err(|error| failed(format!("unreadable answer {answer:?}: {error}")))
}

/// Serves the admin socket at `path` until `shutdown` turns true (or its sender goes), then
/// removes the socket file.
///
/// It holds the store weakly: once the node has dropped it, the database closes (and can be
/// opened again, in this process too) without waiting for this task to end.
///
/// The caller holds the store open for writing, so no other node runs from this home: a socket
/// file already there was left by one that died, and is replaced. Anything else at `path` is
/// an error.
pub async fn serve(path: PathBuf, store: Arc<RocksStore>, mut shutdown: watch::Receiver<bool>) -> std::io::Result<()> {
    match std::fs::symlink_metadata(&path) {
        Ok(metadata) if metadata.file_type().is_socket() => std::fs::remove_file(&path)?,
        Ok(_) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                format!("{} exists and is not a socket", path.display()),
            ));
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    let listener = UnixListener::bind(&path)?;
    let remove = RemoveOnDrop(path.clone());
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    info!(path = %path.display(), "admin socket listening");
    // One checkpoint at a time: each flushes the memtables and links every table file.
    let checkpoints = Arc::new(Mutex::new(()));
    let store = Arc::downgrade(&store);
    tokio::spawn(async move {
        let _remove = remove;
        loop {
            let stream = tokio::select! {
                _ = shutdown.changed() => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(error) => {
                        debug!(%error, "admin socket accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            tokio::spawn(answer(stream, store.clone(), checkpoints.clone()));
        }
    });
    Ok(())
}

/// Removes the socket file when the serving task ends, however it ends (the runtime dropping
/// it at exit included).
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

async fn answer(stream: UnixStream, store: Weak<RocksStore>, checkpoints: Arc<Mutex<()>>) {
    let (reader, mut writer) = stream.into_split();
    let mut line = String::new();
    let mut reader = tokio::io::BufReader::new(reader.take(REQUEST_BYTES_MAX));
    let response = match tokio::time::timeout(REQUEST_TIMEOUT, reader.read_line(&mut line)).await {
        Err(_) => Response::Failed("no request line in time".to_string()),
        Ok(Err(error)) => Response::Failed(format!("cannot read the request: {error}")),
        Ok(Ok(_)) => match serde_json::from_str::<Request>(line.trim_end()) {
            Err(error) => Response::Failed(format!("not a request: {error}")),
            Ok(request) => handle(request, store, checkpoints).await,
        },
    };
    let mut text = serde_json::to_string(&response).unwrap_or_else(|_| "{\"failed\":\"encoding\"}".to_string());
    text.push('\n');
    if let Err(error) = writer.write_all(text.as_bytes()).await {
        debug!(%error, "admin socket: the client left before the answer");
    }
}

async fn handle(request: Request, store: Weak<RocksStore>, checkpoints: Arc<Mutex<()>>) -> Response {
    match request {
        Request::Ping => Response::Done,
        Request::Checkpoint { path } => {
            if !path.is_absolute() {
                return Response::Failed(format!("{} is not an absolute path", path.display()));
            }
            let Some(store) = store.upgrade() else {
                return Response::Failed("the node is stopping".to_string());
            };
            let _one_at_a_time = checkpoints.lock().await;
            let started = std::time::Instant::now();
            let target = path.clone();
            match tokio::task::spawn_blocking(move || store.checkpoint(&target)).await {
                Ok(Ok(())) => {
                    info!(path = %path.display(), elapsed = ?started.elapsed(), "checkpoint of the store written");
                    Response::Done
                }
                Ok(Err(error)) => {
                    warn!(%error, "checkpoint failed");
                    Response::Failed(error.to_string())
                }
                Err(error) => Response::Failed(format!("the checkpoint task failed: {error}")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_responses_are_one_json_line_each() {
        let request = Request::Checkpoint { path: PathBuf::from("/backups/a/data") };
        let text = serde_json::to_string(&request).expect("encode");
        assert_eq!(text, r#"{"method":"checkpoint","path":"/backups/a/data"}"#);
        assert_eq!(serde_json::from_str::<Request>(&text).expect("decode"), request);
        assert!(serde_json::from_str::<Request>(r#"{"method":"delete_everything"}"#).is_err());
        assert_eq!(serde_json::to_string(&Response::Done).expect("encode"), r#""done""#);
        assert_eq!(serde_json::to_string(&Response::Failed("no".into())).expect("encode"), r#"{"failed":"no"}"#);
    }

    fn genesis() -> ledger::Genesis {
        let key = consensus::SigningKey::from_seed([3; 32]);
        ledger::Genesis {
            chain_id: consensus::ChainId::new("admin").expect("chain id"),
            genesis_time_ms: 1,
            validators: vec![ledger::ValidatorInfo {
                name: "v0".into(),
                public_key: key.public_key(),
                peer_id: "peer0".into(),
            }],
            accounts: Vec::new(),
            params: ledger::Params::default(),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_node_checkpoints_its_store_on_request_and_removes_the_socket_when_it_stops() {
        let dir = tempfile::tempdir().expect("temp dir");
        let options = ledger::StoreOptions::default();
        let store = Arc::new(RocksStore::open(&dir.path().join("data"), &genesis(), options).expect("open"));
        let socket = dir.path().join(SOCKET_FILE);
        // A socket file left by a node that died is replaced.
        drop(std::os::unix::net::UnixListener::bind(&socket).expect("stale socket"));
        let (stop, stopped) = watch::channel(false);
        serve(socket.clone(), store.clone(), stopped).await.expect("serve");
        let mode = std::fs::metadata(&socket).expect("socket").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);

        let ask = |request: Request| {
            let socket = socket.clone();
            tokio::task::spawn_blocking(move || call(&socket, &request, Duration::from_secs(30)))
        };
        assert_eq!(ask(Request::Ping).await.expect("task").expect("answer"), Response::Done);
        let out = dir.path().join("copy");
        let answer = ask(Request::Checkpoint { path: out.clone() }).await.expect("task").expect("answer");
        assert_eq!(answer, Response::Done);
        let copy = RocksStore::open(&out, &genesis(), options).expect("the checkpoint opens");
        assert_eq!(ledger::BlockReader::head(&copy).expect("head"), ledger::BlockReader::head(&*store).expect("head"));
        // Refusals are answers, and change nothing.
        let again = ask(Request::Checkpoint { path: out.clone() }).await.expect("task").expect("answer");
        assert!(matches!(&again, Response::Failed(reason) if reason.contains("already exists")), "{again:?}");
        let relative = ask(Request::Checkpoint { path: PathBuf::from("copy2") }).await.expect("task").expect("answer");
        assert!(matches!(&relative, Response::Failed(reason) if reason.contains("absolute")), "{relative:?}");
        let mut raw = std::os::unix::net::UnixStream::connect(&socket).expect("connect");
        raw.write_all(b"{\"method\":\"format_disk\"}\n").expect("write");
        let mut text = String::new();
        BufReader::new(raw).read_line(&mut text).expect("read");
        assert!(text.starts_with("{\"failed\":\"not a request"), "{text}");

        stop.send(true).expect("stop");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while socket.exists() {
            assert!(std::time::Instant::now() < deadline, "the socket file stays after the stop");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let gone = ask(Request::Checkpoint { path: dir.path().join("copy3") }).await.expect("task");
        assert!(matches!(gone, Err(ClientError::NotRunning { .. })), "{gone:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_socket_does_not_keep_the_store_open() {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        let store = Arc::new(RocksStore::open(&data, &genesis(), ledger::StoreOptions::default()).expect("open"));
        let socket = dir.path().join(SOCKET_FILE);
        let (_stop, stopped) = watch::channel(false);
        serve(socket.clone(), store.clone(), stopped).await.expect("serve");
        drop(store);
        // The database is closed: this process can open it again at once (a restart in place).
        let reopened = RocksStore::open(&data, &genesis(), ledger::StoreOptions::default()).expect("reopen");
        let request = Request::Checkpoint { path: dir.path().join("copy") };
        let answer = tokio::task::spawn_blocking(move || call(&socket, &request, Duration::from_secs(30)));
        let answer = answer.await.expect("task").expect("answer");
        assert_eq!(answer, Response::Failed("the node is stopping".to_string()));
        drop(reopened);
    }

    #[tokio::test]
    async fn something_else_at_the_socket_path_is_left_alone() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = RocksStore::open(&dir.path().join("data"), &genesis(), ledger::StoreOptions::default());
        let store = Arc::new(store.expect("open"));
        let path = dir.path().join(SOCKET_FILE);
        std::fs::write(&path, b"not a socket").expect("file");
        let (_stop, stopped) = watch::channel(false);
        let error = serve(path.clone(), store, stopped).await.expect_err("refused");
        assert!(error.to_string().contains("not a socket"), "{error}");
        assert_eq!(std::fs::read(&path).expect("file"), b"not a socket");
    }

    #[test]
    fn a_missing_socket_means_no_node_runs() {
        let dir = tempfile::tempdir().expect("temp dir");
        let request = Request::Checkpoint { path: dir.path().join("out") };
        let error = call(&dir.path().join(SOCKET_FILE), &request, Duration::from_secs(1)).expect_err("nothing there");
        assert!(matches!(error, ClientError::NotRunning { .. }), "{error}");
    }
}
