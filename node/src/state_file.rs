//! Small JSON files the node keeps in its home beside the store (the scrub's progress, the peer
//! comparisons): written to a temporary file renamed over the old one, so a crash leaves one or
//! the other; kept outside the database so a damaged database cannot hide them.

use std::path::Path;

use serde::{Serialize, de::DeserializeOwned};
use tracing::warn;

/// Writes `value` to `path` atomically; a failure is logged with `what` names.
pub fn save<T: Serialize>(path: &Path, value: &T, what: &str) {
    let result = serde_json::to_vec_pretty(value).map_err(std::io::Error::other).and_then(|bytes| {
        let temporary = path.with_extension("json.tmp");
        std::fs::write(&temporary, bytes)?;
        std::fs::rename(&temporary, path)
    });
    if let Err(error) = result {
        warn!(%error, path = %path.display(), "cannot save {what}");
    }
}

/// Reads `path`; `None` if it is missing or unreadable (logged). A file that does not parse is
/// logged and renamed to `.json.bad`, so what it held is never overwritten.
pub fn load<T: DeserializeOwned>(path: &Path, what: &str) -> Option<T> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return None,
        Err(error) => {
            warn!(%error, path = %path.display(), "cannot read {what}");
            return None;
        }
    };
    match serde_json::from_slice(&bytes) {
        Ok(value) => Some(value),
        Err(error) => {
            let aside = path.with_extension("json.bad");
            warn!(%error, path = %path.display(), aside = %aside.display(), "{what} does not parse; set aside");
            let _ = std::fs::rename(path, aside);
            None
        }
    }
}

/// Milliseconds since the Unix epoch (0 for a clock before it).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX))
}
