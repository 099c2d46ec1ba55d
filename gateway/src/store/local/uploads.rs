//! Multipart uploads on the embedded store, as files. Layout, beside `buckets/` and outside
//! `tmp/` (which start-up clears), so an upload survives a restart:
//!
//! ```text
//! <root>/uploads/<bucket>/<upload id>/upload.json        the key, when it began, what the object gets
//! <root>/uploads/<bucket>/<upload id>/<n>.json           part n: size, ETag, SHA-256, its data file
//! <root>/uploads/<bucket>/<upload id>/<n>.<rand>.data    part n's bytes
//! ```
//! Upload ids are 32 random hex digits, checked before they become a path. A part is received
//! into `tmp/` and appears by the atomic write of its `<n>.json` (as objects do), so a crash
//! mid-part leaves the upload as it was. Completion concatenates the chosen parts into `tmp/`
//! outside the lock, then under it checks the parts did not change, commits the object (it
//! appears whole or not at all) and retires the upload: its folder is renamed into `tmp/` and
//! removed, so a crash at any point leaves either the upload or nothing. Every change happens
//! under the store's lock ([`Commits`]), which `gateway sweep` takes too.

use super::commits::{Commits, Gate};
use super::files::{self, io_error, require_bucket};
use draftstore_core::{
    ChecksumAlgorithm, Metadata, MultipartOptions, Part, StorageError, Upload, UploadPage,
};
use serde::{Deserialize, Serialize};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

mod parts;

#[cfg(test)]
pub use parts::stage_part;
pub use parts::{commit_part, complete, put_part};

const UPLOAD_FILE: &str = "upload.json";

/// `<root>/uploads/<upload id>/upload.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadMeta {
    pub key: String,
    /// Unix seconds.
    pub initiated: i64,
    pub content_type: Option<String>,
    pub metadata: Metadata,
    /// Parts must carry a SHA-256.
    pub sha256: bool,
}

/// `<n>.json`: one stored part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartMeta {
    pub part_number: u32,
    /// File name of the bytes, in the upload's folder.
    pub data: String,
    pub size: u64,
    pub etag: String,
    pub checksum_sha256: Option<String>,
}

impl PartMeta {
    pub fn part(&self) -> Part {
        Part {
            part_number: self.part_number,
            etag: self.etag.clone(),
            size: self.size,
            checksum_sha256: self.checksum_sha256.clone(),
        }
    }
}

fn uploads_dir(root: &Path, bucket: &str) -> PathBuf {
    root.join("uploads").join(bucket)
}

fn no_such_upload(id: &str) -> StorageError {
    StorageError::NoSuchUpload {
        upload_id: id.to_owned(),
    }
}

/// The folder of upload `id`; an id that is not 32 lowercase hex digits names no upload.
fn upload_dir(root: &Path, bucket: &str, id: &str) -> Result<PathBuf, StorageError> {
    let valid = id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if valid {
        Ok(uploads_dir(root, bucket).join(id))
    } else {
        Err(no_such_upload(id))
    }
}

/// Upload `id` of `bucket/key` and its folder.
///
/// # Errors
/// `NotFound` for a missing bucket; `NoSuchUpload` for an unknown id or one of another key.
pub fn read_upload(
    root: &Path,
    bucket: &str,
    key: &str,
    id: &str,
) -> Result<(PathBuf, UploadMeta), StorageError> {
    require_bucket(root, bucket)?;
    let dir = upload_dir(root, bucket, id)?;
    let text = match std::fs::read(dir.join(UPLOAD_FILE)) {
        Ok(text) => text,
        Err(e) if e.kind() == ErrorKind::NotFound => return Err(no_such_upload(id)),
        Err(e) => return Err(io_error("read upload", &e)),
    };
    let meta: UploadMeta = serde_json::from_slice(&text).map_err(|e| StorageError::Backend {
        reason: format!("corrupt upload {id}: {e}"),
    })?;
    if meta.key != key {
        return Err(no_such_upload(id));
    }
    Ok((dir, meta))
}

/// The parts stored in upload folder `dir`, by number.
pub fn read_parts(dir: &Path) -> Result<Vec<PartMeta>, StorageError> {
    let mut parts = Vec::new();
    for entry in std::fs::read_dir(dir)
        .map_err(|e| io_error("list parts", &e))?
        .flatten()
    {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name == UPLOAD_FILE || name.starts_with('.') || !name.ends_with(".json") {
            continue;
        }
        let text = std::fs::read(entry.path()).map_err(|e| io_error("read part", &e))?;
        let part: PartMeta = serde_json::from_slice(&text).map_err(|e| StorageError::Backend {
            reason: format!("corrupt part {name}: {e}"),
        })?;
        parts.push(part);
    }
    parts.sort_by_key(|p| p.part_number);
    Ok(parts)
}

/// Starts an upload: its folder and `upload.json` (written atomically; a folder without it is
/// a crash's leftover that [`scrub`] removes).
pub fn create(
    root: &Path,
    bucket: &str,
    key: &str,
    options: &MultipartOptions,
    now: i64,
) -> Result<String, StorageError> {
    require_bucket(root, bucket)?;
    let mut random = [0_u8; 16];
    getrandom::getrandom(&mut random).map_err(|e| StorageError::Backend {
        reason: format!("no random bytes for an upload id: {e}"),
    })?;
    let id = hex::encode(random);
    let dir = upload_dir(root, bucket, &id)?;
    files::create_dirs(&dir).map_err(|e| io_error("create upload", &e))?;
    let meta = UploadMeta {
        key: key.to_owned(),
        initiated: now,
        content_type: options.content_type.clone(),
        metadata: options.metadata.clone(),
        sha256: options.checksum == Some(ChecksumAlgorithm::Sha256),
    };
    let text = serde_json::to_vec(&meta).map_err(|e| StorageError::Backend {
        reason: e.to_string(),
    })?;
    files::write_atomic(&dir.join(UPLOAD_FILE), &text).map_err(|e| {
        let _ = std::fs::remove_dir_all(&dir);
        io_error("create upload", &e)
    })?;
    Ok(id)
}

/// Aborts upload `id` (an unknown one is a success).
pub fn abort(
    root: &Path,
    lock: &Commits,
    gate: &Gate,
    (bucket, key, id): (&str, &str, &str),
) -> Result<(), StorageError> {
    let _guard = lock.lock()?;
    let dir = match read_upload(root, bucket, key, id) {
        Ok((dir, _)) => dir,
        Err(StorageError::NoSuchUpload { .. }) => return Ok(()),
        Err(e) => return Err(e),
    };
    gate.enter()?;
    retire(root, &dir);
    Ok(())
}

/// Removes an upload's folder: renamed into `tmp/` first (atomic), so it is gone at once and a
/// crash mid-removal leaves only what start-up clears. Caller holds the lock.
fn retire(root: &Path, dir: &Path) {
    let away = files::tmp_dir(root).join(format!("{}.upload", files::tmp_name()));
    match std::fs::rename(dir, &away) {
        Ok(()) => {
            let _ = std::fs::remove_dir_all(&away);
        }
        Err(_) => {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// One page (1000) of the uploads of `bucket` whose key starts with `prefix`, after `after`.
pub fn list(
    root: &Path,
    bucket: &str,
    prefix: &str,
    after: Option<&(String, String)>,
) -> Result<UploadPage, StorageError> {
    require_bucket(root, bucket)?;
    let mut all: Vec<Upload> = Vec::new();
    let entries = match std::fs::read_dir(uploads_dir(root, bucket)) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(UploadPage::default()),
        Err(e) => return Err(io_error("list uploads", &e)),
    };
    for entry in entries.flatten() {
        let Some(id) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        let Ok(text) = std::fs::read(entry.path().join(UPLOAD_FILE)) else {
            continue;
        };
        let Ok(meta) = serde_json::from_slice::<UploadMeta>(&text) else {
            continue;
        };
        let position = (meta.key.clone(), id.clone());
        if meta.key.starts_with(prefix) && after.is_none_or(|a| position > *a) {
            all.push(Upload {
                key: meta.key,
                upload_id: id,
                initiated: meta.initiated,
            });
        }
    }
    all.sort_by(|a, b| (&a.key, &a.upload_id).cmp(&(&b.key, &b.upload_id)));
    let more = all.len() > 1000;
    all.truncate(1000);
    let next = more
        .then(|| all.last().map(|u| (u.key.clone(), u.upload_id.clone())))
        .flatten();
    Ok(UploadPage { uploads: all, next })
}

/// Removes what a crash could leave among uploads: folders without `upload.json`, half-written
/// files (`.*`), part data no `<n>.json` names. Run at start under the lock; returns how many
/// files or folders it removed.
pub fn scrub(root: &Path) -> std::io::Result<usize> {
    let mut removed = 0;
    let buckets = match std::fs::read_dir(root.join("uploads")) {
        Ok(b) => b,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    for bucket in buckets.flatten() {
        for upload in std::fs::read_dir(bucket.path())?.flatten() {
            let dir = upload.path();
            if !dir.join(UPLOAD_FILE).is_file() {
                if std::fs::remove_dir_all(&dir).is_ok() {
                    removed += 1;
                }
                continue;
            }
            let named: Vec<String> = read_parts(&dir)
                .unwrap_or_default()
                .into_iter()
                .map(|p| p.data)
                .collect();
            for file in std::fs::read_dir(&dir)?.flatten() {
                let name = file.file_name().to_string_lossy().into_owned();
                let orphan =
                    name.starts_with('.') || (name.ends_with(".data") && !named.contains(&name));
                if orphan && std::fs::remove_file(file.path()).is_ok() {
                    removed += 1;
                }
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::local::files::Scratch;

    #[test]
    fn ids_that_are_not_ours_name_no_folder() {
        let root = Path::new("/r");
        for id in [
            "",
            "../../etc",
            "ABCDEF0123456789ABCDEF0123456789",
            &"0".repeat(33),
            "0/1",
        ] {
            assert!(
                matches!(
                    upload_dir(root, "b", id),
                    Err(StorageError::NoSuchUpload { .. })
                ),
                "{id:?}"
            );
        }
        assert!(upload_dir(root, "b", &"a1".repeat(16)).is_ok());
    }

    #[test]
    fn scrub_removes_what_a_crash_left_among_uploads_and_keeps_whole_parts() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        files::create_dirs(&files::tmp_dir(root)).unwrap();
        files::create_dirs(&files::bucket_dir(root, "b")).unwrap();
        let id = create(root, "b", "k", &MultipartOptions::default(), 5).unwrap();
        let (tmp, mut file) = Scratch::create(root).unwrap();
        std::io::Write::write_all(&mut file, b"part").unwrap();
        let part = PartMeta {
            part_number: 1,
            data: String::new(),
            size: 4,
            etag: "e".into(),
            checksum_sha256: None,
        };
        let lock = Commits::open(root).unwrap();
        let (_waiter, gate) = crate::store::local::commits::waiting();
        commit_part(root, (&lock, &gate), ("b", "k", &id), part, tmp).unwrap();
        let upload = upload_dir(root, "b", &id).unwrap();
        // A part placed without its metadata, a half-written metadata file, a folder of an
        // upload whose upload.json was never written.
        std::fs::write(upload.join("2.00000000000000ff.data"), b"orphan").unwrap();
        std::fs::write(upload.join(".x.part"), b"{").unwrap();
        let empty = upload_dir(root, "b", &"f".repeat(32)).unwrap();
        files::create_dirs(&empty).unwrap();
        assert_eq!(scrub(root).unwrap(), 3);
        assert!(!empty.exists());
        let (dir, _) = read_upload(root, "b", "k", &id).unwrap();
        let parts = read_parts(&dir).unwrap();
        assert_eq!(parts.len(), 1);
        assert_eq!(std::fs::read(dir.join(&parts[0].data)).unwrap(), b"part");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 3);
        assert!(matches!(
            read_upload(root, "b", "other", &id),
            Err(StorageError::NoSuchUpload { .. })
        ));
    }
}
