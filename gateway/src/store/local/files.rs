//! Where objects live on disk, and atomic writes. A key never becomes a path: each object is
//! named by the SHA-256 of its key (hex), so no key — `..`, `%2F`, 1024 bytes of unicode — can
//! reach outside the data folder. Layout:
//!
//! ```text
//! <root>/buckets/<bucket>/<hh>/<sha256(key)>.json    metadata (the key itself, size, ETag, …)
//! <root>/buckets/<bucket>/<hh>/<sha256(key)>.<n>.data  the bytes
//! <root>/tmp/                                         uploads in progress (never visible)
//! ```
//! An object is visible through its metadata file only, written last by an atomic rename, so a
//! crash or a dropped upload leaves nothing half-written in sight.

use draftstore_core::Metadata;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// What is kept beside an object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    pub key: String,
    /// File name of the bytes, in the same folder.
    pub data: String,
    pub size: u64,
    pub etag: String,
    pub content_type: Option<String>,
    pub metadata: Metadata,
    pub checksum_sha256: Option<String>,
    /// Unix seconds.
    pub stored_at: i64,
}

/// The folder of `bucket` (a validated bucket name: no separators).
pub fn bucket_dir(root: &Path, bucket: &str) -> PathBuf {
    root.join("buckets").join(bucket)
}

/// `(folder, file stem)` of `key` in `bucket`.
pub fn object_place(root: &Path, bucket: &str, key: &str) -> (PathBuf, String) {
    let digest = hex::encode(Sha256::digest(key.as_bytes()));
    let shard = digest.get(..2).unwrap_or("00").to_owned();
    (bucket_dir(root, bucket).join(shard), digest)
}

pub fn tmp_dir(root: &Path) -> PathBuf {
    root.join("tmp")
}

/// A fresh temporary file name.
pub fn tmp_name() -> String {
    format!("{:016x}{:016x}.part", fastrand::u64(..), fastrand::u64(..))
}

/// Writes `bytes` to `path` atomically: a temporary file in the same folder, fsync, rename,
/// fsync of the folder.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path
        .parent()
        .ok_or_else(|| std::io::Error::other("no parent folder"))?;
    let tmp = dir.join(format!(".{}", tmp_name()));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever the key holds, its files stay inside the bucket folder.
        #[test]
        fn keys_never_escape_the_data_folder(key in "(\\PC|[./\\\\%]|\\.\\.){0,300}") {
            let root = Path::new("/data/root");
            let (dir, stem) = object_place(root, "bucket", &key);
            prop_assert!(dir.starts_with(bucket_dir(root, "bucket")));
            prop_assert_eq!(stem.len(), 64);
            prop_assert!(stem.bytes().all(|b| b.is_ascii_hexdigit()));
            let file = dir.join(format!("{stem}.json"));
            prop_assert_eq!(file.components().count(), bucket_dir(root, "bucket").components().count() + 2);
        }
    }

    #[test]
    fn hostile_keys_map_to_hex_names() {
        for key in [
            "../../etc/passwd",
            "%2F..%2F",
            "/abs",
            "a\\b",
            &"é".repeat(512),
        ] {
            let (dir, stem) = object_place(Path::new("/r"), "b", key);
            assert!(dir.starts_with("/r/buckets/b"), "{key}");
            assert!(!stem.contains(['.', '/', '\\']));
        }
    }
}
