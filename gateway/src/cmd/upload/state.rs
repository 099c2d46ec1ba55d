//! The resume file: which multipart upload a file is going into and the ETags of the parts
//! already stored. JSON, replaced atomically (a temporary file renamed over it) after every
//! part, mode 0600, removed once the upload is complete. A file that does not match the input
//! (size, modification time, endpoint, name) is not used.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

/// The state of one multipart upload of one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// Format version (1).
    pub version: u32,
    /// The API endpoint the upload was started with.
    pub endpoint: String,
    /// The object name.
    pub object_name: String,
    /// The multipart upload's id.
    pub upload_id: String,
    /// The input's size in bytes.
    pub file_size: u64,
    /// The input's modification time, nanoseconds since the Unix epoch (0 when unknown).
    pub file_modified_ns: u64,
    /// The part size in bytes.
    pub part_size: u64,
    /// Stored parts: number → ETag.
    pub parts: BTreeMap<u32, String>,
}

/// Nanoseconds since the Unix epoch, 0 when unknown.
#[must_use]
pub fn nanos(time: Option<SystemTime>) -> u64 {
    time.and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .and_then(|d| u64::try_from(d.as_nanos()).ok())
        .unwrap_or(0)
}

impl State {
    /// Whether this state was written for the same file, endpoint and name.
    #[must_use]
    pub fn matches(&self, endpoint: &str, object_name: &str, size: u64, modified: u64) -> bool {
        self.version == 1
            && self.endpoint == endpoint
            && self.object_name == object_name
            && self.file_size == size
            && self.file_modified_ns == modified
    }
}

/// The state in `path`: `None` when there is none; a file that is not a state is reported (as
/// `Err` with one line) so the caller can say it starts afresh.
///
/// # Errors
/// The file exists but cannot be read or parsed.
pub fn load(path: &Path) -> Result<Option<State>, String> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| format!("{} is not an upload state ({e})", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Writes `state` to `path` atomically: a temporary file beside it, synced, renamed over it.
///
/// # Errors
/// The folder cannot be written.
pub fn save(path: &Path, state: &State) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    let text = serde_json::to_vec_pretty(state).map_err(std::io::Error::other)?;
    {
        use std::io::Write as _;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&tmp)?;
        file.write_all(&text)?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

/// Removes the state (done); a missing file is fine.
pub fn remove(path: &Path) {
    let _ = std::fs::remove_file(path);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> State {
        State {
            version: 1,
            endpoint: "http://127.0.0.1:8080/".into(),
            object_name: "big.bin".into(),
            upload_id: "u1".into(),
            file_size: 10,
            file_modified_ns: 7,
            part_size: 5,
            parts: BTreeMap::from([(1, "\"e1\"".to_owned())]),
        }
    }

    #[test]
    fn a_state_round_trips_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.draftstore-upload");
        assert_eq!(load(&path), Ok(None));
        save(&path, &sample()).unwrap();
        assert_eq!(load(&path), Ok(Some(sample())));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        remove(&path);
        assert!(!path.exists());
        std::fs::write(&path, b"{not json").unwrap();
        assert!(load(&path).is_err());
    }

    #[test]
    fn a_state_of_another_file_is_not_used() {
        let state = sample();
        assert!(state.matches("http://127.0.0.1:8080/", "big.bin", 10, 7));
        assert!(!state.matches("http://127.0.0.1:8080/", "big.bin", 11, 7));
        assert!(!state.matches("http://127.0.0.1:8080/", "big.bin", 10, 8));
        assert!(!state.matches("http://127.0.0.1:8080/", "other", 10, 7));
        assert!(!state.matches("http://127.0.0.1:9/", "big.bin", 10, 7));
    }
}
