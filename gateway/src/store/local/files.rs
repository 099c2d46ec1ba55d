//! Where objects live on disk, and how they get there. A key never becomes a path: each object
//! is named by the SHA-256 of its key (hex), so no key — `..`, `%2F`, 1024 bytes of unicode —
//! can reach outside the data folder. Layout:
//!
//! ```text
//! <root>/buckets/<bucket>/<hh>/<sha256(key)>.json    metadata (the key itself, size, ETag, …)
//! <root>/buckets/<bucket>/<hh>/<sha256(key)>.<n>.data  the bytes
//! <root>/tmp/                                         uploads and copies in progress
//! ```
//! An object is visible through its metadata file only, written last by an atomic rename, so a
//! crash or a dropped upload leaves nothing half-written in sight. Whatever is not yet an object
//! is held by a [`Scratch`] guard, which removes it when dropped: every failure (an error, a
//! stall, a client gone, a dropped future, a full disk) leaves nothing behind without per-path
//! clean-up, and [`scrub`] removes at start what a crash could still leave (temporary files,
//! data without metadata). Files are created 0600 and folders 0700: the data is users' files.

use draftstore_core::{Metadata, StorageError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::io::ErrorKind;
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

/// Whether `e` means the disk (or the quota) is full.
pub fn is_disk_full(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::StorageFull | ErrorKind::QuotaExceeded)
}

/// A failed file operation as a storage error naming the cause. A full disk is
/// [`StorageError::Unavailable`] (worth retrying once space is freed; the store's HTTP side
/// answers it 507), anything else [`StorageError::Backend`].
pub fn io_error(what: &str, e: &std::io::Error) -> StorageError {
    if is_disk_full(e) {
        StorageError::Unavailable {
            reason: format!("{what}: the store's disk is full ({e})"),
        }
    } else {
        StorageError::Backend {
            reason: format!("{what}: {e}"),
        }
    }
}

/// Creates `dir` and its missing parents, mode 0700.
///
/// # Errors
/// As [`std::fs::DirBuilder::create`].
pub fn create_dirs(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Creates `path` (it must not exist), mode 0600, for writing.
///
/// # Errors
/// As [`std::fs::OpenOptions::open`].
pub fn create_file(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// A file that is not (yet) part of an object: removed when dropped unless [`Scratch::keep`]
/// was called. Moving it with [`Scratch::rename`] moves the guard along.
#[derive(Debug)]
pub struct Scratch {
    path: PathBuf,
    armed: bool,
}

impl Scratch {
    /// A new empty file in `<root>/tmp/` and its guard.
    ///
    /// # Errors
    /// The file cannot be created.
    pub fn create(root: &Path) -> std::io::Result<(Self, std::fs::File)> {
        let path = tmp_dir(root).join(tmp_name());
        let file = create_file(&path)?;
        Ok((Self { path, armed: true }, file))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Renames the file to `to` (same file system); the guard now covers `to`.
    ///
    /// # Errors
    /// The rename failed (the file stays where it was, still guarded).
    pub fn rename(mut self, to: PathBuf) -> std::io::Result<Self> {
        std::fs::rename(&self.path, &to)?;
        self.armed = false;
        Ok(Self {
            path: to,
            armed: true,
        })
    }

    /// The file has become part of an object: leave it.
    pub fn keep(mut self) {
        self.armed = false;
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if self.armed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Writes `bytes` to `path` atomically: a temporary file in the same folder (mode 0600), fsync,
/// rename, fsync of the folder.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| std::io::Error::other("no parent folder"))?;
    write_synced(dir, bytes)?.rename(path.to_path_buf())?.keep();
    sync_dir(dir)
}

/// `bytes` in a new hidden file of `dir` (`.<random>.part`, mode 0600, which [`scrub`] removes
/// after a crash), fsynced: ready to be renamed into place.
///
/// # Errors
/// The file cannot be created, written or synced (it is then removed).
pub fn write_synced(dir: &Path, bytes: &[u8]) -> std::io::Result<Scratch> {
    use std::io::Write;
    let tmp = Scratch {
        path: dir.join(format!(".{}", tmp_name())),
        armed: true,
    };
    let mut file = create_file(tmp.path())?;
    file.write_all(bytes)?;
    file.sync_data()?;
    Ok(tmp)
}

pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

pub fn require_bucket(root: &Path, bucket: &str) -> Result<(), StorageError> {
    if bucket_dir(root, bucket).is_dir() {
        Ok(())
    } else {
        Err(StorageError::NotFound {
            what: bucket.to_owned(),
        })
    }
}

/// The metadata of `bucket/key` and the folder its files are in.
///
/// # Errors
/// `NotFound` for a missing bucket or object; `Backend` when it cannot be read or parsed.
pub fn read_meta(root: &Path, bucket: &str, key: &str) -> Result<(PathBuf, Meta), StorageError> {
    require_bucket(root, bucket)?;
    let (dir, stem) = object_place(root, bucket, key);
    let text = match std::fs::read(dir.join(format!("{stem}.json"))) {
        Ok(t) => t,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Err(StorageError::NotFound {
                what: format!("{bucket}/{key}"),
            })
        }
        Err(e) => return Err(io_error("read metadata", &e)),
    };
    let meta: Meta = serde_json::from_slice(&text).map_err(|e| StorageError::Backend {
        reason: format!("corrupt metadata of {bucket}/{key}: {e}"),
    })?;
    Ok((dir, meta))
}

/// Makes `data` (complete and fsynced, on the same file system) the bytes of `bucket/key` with
/// `meta`, atomically; removes the bytes it replaces. Caller holds the store's lock. On any
/// failure nothing changes and `data` is removed.
///
/// # Errors
/// No such bucket; a file operation failed (a full disk is `Unavailable`).
pub fn commit(
    root: &Path,
    bucket: &str,
    mut meta: Meta,
    data: Scratch,
) -> Result<(), StorageError> {
    require_bucket(root, bucket)?;
    let (dir, stem) = object_place(root, bucket, &meta.key);
    create_dirs(&dir).map_err(|e| io_error("create folder", &e))?;
    let data_name = format!("{stem}.{:016x}.data", fastrand::u64(..));
    let placed = data
        .rename(dir.join(&data_name))
        .map_err(|e| io_error("place data", &e))?;
    let old = read_meta(root, bucket, &meta.key).ok().map(|(_, m)| m.data);
    meta.data = data_name;
    let text = serde_json::to_vec(&meta).map_err(|e| StorageError::Backend {
        reason: e.to_string(),
    })?;
    // On failure `placed` is dropped: no data without metadata stays.
    write_atomic(&dir.join(format!("{stem}.json")), &text)
        .map_err(|e| io_error("write metadata", &e))?;
    placed.keep();
    if let Some(old) = old.filter(|o| *o != meta.data) {
        let _ = std::fs::remove_file(dir.join(old));
    }
    Ok(())
}

/// Removes `bucket/key` (metadata first, so it disappears at once). Caller holds the lock.
///
/// # Errors
/// No such bucket; the metadata cannot be removed.
pub fn remove(root: &Path, bucket: &str, key: &str) -> Result<(), StorageError> {
    match read_meta(root, bucket, key) {
        Ok((dir, meta)) => {
            let stem = object_place(root, bucket, key).1;
            std::fs::remove_file(dir.join(format!("{stem}.json")))
                .map_err(|e| io_error("delete", &e))?;
            let _ = std::fs::remove_file(dir.join(&meta.data));
            Ok(())
        }
        Err(StorageError::NotFound { .. }) => require_bucket(root, bucket),
        Err(e) => Err(e),
    }
}

/// Removes what a crash could leave behind: everything in `tmp/`, half-written metadata
/// (`.*.part`) and data files no metadata names. Run at start by the one server of the folder,
/// under the store's lock. Returns how many files it removed.
///
/// # Errors
/// The folders cannot be read or `tmp/` cannot be made again.
pub fn scrub(root: &Path) -> std::io::Result<usize> {
    let tmp = tmp_dir(root);
    let mut removed = match std::fs::read_dir(&tmp) {
        Ok(entries) => entries.flatten().count(),
        Err(_) => 0,
    };
    match std::fs::remove_dir_all(&tmp) {
        Err(e) if e.kind() != ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    create_dirs(&tmp)?;
    for bucket in std::fs::read_dir(root.join("buckets"))?.flatten() {
        for shard in std::fs::read_dir(bucket.path())?.flatten() {
            removed += scrub_shard(&shard.path())?;
        }
    }
    Ok(removed)
}

fn scrub_shard(dir: &Path) -> std::io::Result<usize> {
    let names: Vec<String> = std::fs::read_dir(dir)?
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    let named: HashSet<String> = names
        .iter()
        .filter(|n| n.ends_with(".json") && !n.starts_with('.'))
        .filter_map(|n| std::fs::read(dir.join(n)).ok())
        .filter_map(|text| serde_json::from_slice::<Meta>(&text).ok())
        .map(|meta| meta.data)
        .collect();
    let mut removed = 0;
    for name in names {
        let orphan = name.starts_with('.') || (name.ends_with(".data") && !named.contains(&name));
        if orphan && std::fs::remove_file(dir.join(&name)).is_ok() {
            removed += 1;
        }
    }
    Ok(removed)
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

    #[test]
    fn a_scratch_file_goes_unless_kept_and_follows_its_renames() {
        let root = tempfile::tempdir().unwrap();
        create_dirs(&tmp_dir(root.path())).unwrap();
        let (dropped, _) = Scratch::create(root.path()).unwrap();
        let path = dropped.path().to_owned();
        assert!(path.exists());
        drop(dropped);
        assert!(!path.exists(), "dropped: removed");

        let (moved, _) = Scratch::create(root.path()).unwrap();
        let to = root.path().join("moved");
        let moved = moved.rename(to.clone()).unwrap();
        drop(moved);
        assert!(!to.exists(), "the guard moved with the file");

        let (kept, _) = Scratch::create(root.path()).unwrap();
        let kept = kept.rename(to.clone()).unwrap();
        kept.keep();
        assert!(to.exists(), "kept");
    }

    #[test]
    fn scrub_removes_temporary_files_and_data_without_metadata() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path();
        create_dirs(&tmp_dir(root)).unwrap();
        create_dirs(&bucket_dir(root, "b")).unwrap();
        let (upload, _) = Scratch::create(root).unwrap();
        commit(
            root,
            "b",
            Meta {
                key: "kept".into(),
                data: String::new(),
                size: 0,
                etag: "e".into(),
                content_type: None,
                metadata: Metadata::new(),
                checksum_sha256: None,
                stored_at: 0,
            },
            upload,
        )
        .unwrap();
        let (dir, meta) = read_meta(root, "b", "kept").unwrap();
        std::fs::write(dir.join("0123.00.data"), b"orphan").unwrap();
        std::fs::write(dir.join(".half.part"), b"{").unwrap();
        std::fs::write(tmp_dir(root).join("x.part"), b"partial").unwrap();
        assert_eq!(scrub(root).unwrap(), 3);
        assert!(dir.join(&meta.data).exists(), "named data stays");
        assert!(read_meta(root, "b", "kept").is_ok());
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 2);
        assert_eq!(std::fs::read_dir(tmp_dir(root)).unwrap().count(), 0);
    }
}
