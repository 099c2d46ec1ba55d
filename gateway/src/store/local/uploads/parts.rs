//! Parts in and the object out: storing a part (over HTTP or in-process) and completing an
//! upload (see the parent module for the layout and why each step is safe).

use super::{read_parts, read_upload, retire, PartMeta, UploadMeta};
use crate::store::local::commits::{Commits, Gate};
use crate::store::local::files::{self, io_error, Meta, Scratch};
use draftstore_core::{
    check_completion, ChecksumAlgorithm, Completed, CompletedPart, Part, StorageError,
};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

/// Makes `data` (complete, fsynced) part `part.part_number` of upload `id`, replacing an earlier
/// one, and fsyncs the upload's folder before it returns (an answered part survives a crash).
/// Only the renames happen under the store's lock ([`Staged::place`]): the part's metadata is
/// written and fsynced beside the upload before ([`stage_part`]), the folder fsynced and the
/// replaced bytes removed after ([`Placed::finish`]), so parts sent in parallel do not queue
/// behind each other's fsyncs. On failure nothing changes and `data` is removed; `gate` closed
/// (the caller went) changes nothing.
///
/// # Errors
/// `NoSuchUpload` when the upload is gone (aborted, completed); a file operation failed.
pub fn commit_part(
    root: &Path,
    (lock, gate): (&Commits, &Gate),
    upload: (&str, &str, &str),
    part: PartMeta,
    data: Scratch,
) -> Result<(), StorageError> {
    let staged = stage_part(root, upload, part, data)?;
    let placed = {
        let _guard = lock.lock()?;
        staged.place(root, gate, upload)?
    };
    placed.finish()
}

/// A received part and its metadata, both fsynced, not yet in place.
#[derive(Debug)]
pub struct Staged {
    dir: PathBuf,
    part: PartMeta,
    /// `.<random>.part` in the upload's folder: the part's metadata.
    meta: Scratch,
    data: Scratch,
}

/// Writes and fsyncs the metadata of part `part` (whose bytes are `data`) beside upload `id`.
///
/// # Errors
/// `NoSuchUpload` when the upload is gone; a file operation failed (`data` is then removed).
pub fn stage_part(
    root: &Path,
    (bucket, key, id): (&str, &str, &str),
    mut part: PartMeta,
    data: Scratch,
) -> Result<Staged, StorageError> {
    let (dir, _) = read_upload(root, bucket, key, id)?;
    part.data = format!("{}.{:016x}.data", part.part_number, fastrand::u64(..));
    let text = serde_json::to_vec(&part).map_err(|e| StorageError::Backend {
        reason: e.to_string(),
    })?;
    let meta = files::write_synced(&dir, &text).map_err(|e| match e.kind() {
        ErrorKind::NotFound => StorageError::NoSuchUpload {
            upload_id: id.to_owned(),
        },
        _ => io_error("write part", &e),
    })?;
    Ok(Staged {
        dir,
        part,
        meta,
        data,
    })
}

/// A part in place whose folder is not yet fsynced.
#[derive(Debug)]
#[must_use = "the part is durable only after `finish`"]
pub struct Placed {
    dir: PathBuf,
    /// The data file of the part it replaced.
    replaced: Option<String>,
}

impl Staged {
    /// Renames the data, then the metadata, into place (the part appears with its metadata).
    /// Caller holds the lock.
    ///
    /// # Errors
    /// `NoSuchUpload` when the upload was aborted or completed meanwhile; the gate is closed; a
    /// rename failed. Nothing changed then.
    pub fn place(
        self,
        root: &Path,
        gate: &Gate,
        (bucket, key, id): (&str, &str, &str),
    ) -> Result<Placed, StorageError> {
        read_upload(root, bucket, key, id)?;
        gate.enter()?;
        let Self {
            dir,
            part,
            meta,
            data,
        } = self;
        let placed = data
            .rename(dir.join(&part.data))
            .map_err(|e| io_error("place part", &e))?;
        let meta_path = dir.join(format!("{}.json", part.part_number));
        let replaced = std::fs::read(&meta_path)
            .ok()
            .and_then(|t| serde_json::from_slice::<PartMeta>(&t).ok())
            .map(|p| p.data)
            .filter(|old| *old != part.data);
        // On failure `placed` is dropped: no data without metadata stays.
        meta.rename(meta_path)
            .map_err(|e| io_error("write part", &e))?
            .keep();
        placed.keep();
        Ok(Placed { dir, replaced })
    }
}

impl Placed {
    /// Fsyncs the upload's folder (the renames are durable), then removes the replaced bytes.
    ///
    /// # Errors
    /// The fsync failed: the part may not survive a crash.
    pub fn finish(self) -> Result<(), StorageError> {
        files::sync_dir(&self.dir).map_err(|e| io_error("write part", &e))?;
        if let Some(old) = self.replaced {
            let _ = std::fs::remove_file(self.dir.join(old));
        }
        Ok(())
    }
}

/// Stores `body` as part `part_number` of upload `(bucket, key, id)` in-process (the
/// `Storage::upload_part` of tests and tools), checking what an UploadPart URL checks.
pub fn put_part(
    root: &Path,
    (lock, gate): (&Commits, &Gate),
    (bucket, key, id): (&str, &str, &str),
    part_number: u32,
    body: &[u8],
    declared: Option<String>,
) -> Result<Part, StorageError> {
    use base64::Engine;
    use std::io::Write;
    let (_, upload) = read_upload(root, bucket, key, id)?;
    draftstore_core::check_part_number(part_number)?;
    if body.len() as u64 > draftstore_core::MAX_PART_SIZE {
        return Err(StorageError::InvalidArgument {
            reason: format!("part {part_number} is over 5 GiB"),
        });
    }
    let sha256 = base64::engine::general_purpose::STANDARD
        .encode(<sha2::Sha256 as sha2::Digest>::digest(body));
    match &declared {
        Some(d) if *d != sha256 => {
            return Err(StorageError::InvalidArgument {
                reason: format!(
                    "the x-amz-checksum-sha256 of part {part_number} does not match its bytes"
                ),
            })
        }
        None if upload.sha256 => {
            return Err(StorageError::InvalidArgument {
                reason: format!("part {part_number} needs x-amz-checksum-sha256"),
            })
        }
        _ => {}
    }
    let part = PartMeta {
        part_number,
        data: String::new(),
        size: body.len() as u64,
        etag: hex::encode(<md5::Md5 as md5::Digest>::digest(body)),
        checksum_sha256: declared.map(|_| sha256),
    };
    let (tmp, mut file) = Scratch::create(root).map_err(|e| io_error("write", &e))?;
    file.write_all(body)
        .and_then(|()| file.sync_data())
        .map_err(|e| io_error("write", &e))?;
    commit_part(root, (lock, gate), (bucket, key, id), part.clone(), tmp)?;
    Ok(part.part())
}

/// Completes upload `id` from `requested` (see the module doc) into an object of at most
/// `max_object` bytes.
pub fn complete(
    root: &Path,
    lock: &Commits,
    gate: &Gate,
    (bucket, key, id): (&str, &str, &str),
    requested: &[CompletedPart],
    (max_object, now): (u64, i64),
) -> Result<Completed, StorageError> {
    let (dir, upload) = read_upload(root, bucket, key, id)?;
    let stored = read_parts(&dir)?;
    let (tmp, chosen) = concatenate(root, &dir, (&upload, &stored), requested, max_object)?;
    let completed = Completed {
        etag: draftstore_core::multipart_etag(chosen.iter().map(|p| p.etag.as_str())),
        size: chosen.iter().map(|p| p.size).sum(),
    };
    let meta = Meta {
        key: key.to_owned(),
        data: String::new(),
        size: completed.size,
        etag: completed.etag.clone(),
        content_type: upload.content_type,
        metadata: upload.metadata,
        checksum_sha256: None,
        stored_at: now,
    };
    let _guard = lock.lock()?;
    // A part re-uploaded, or the upload aborted, while the bytes were copied: refuse.
    read_upload(root, bucket, key, id)?;
    let now_stored = read_parts(&dir)?;
    for part in &chosen {
        if !now_stored.contains(part) {
            return Err(StorageError::InvalidPart {
                part_number: part.part_number,
                reason: "it was uploaded again during the completion".into(),
            });
        }
    }
    gate.enter()?;
    files::commit(root, bucket, meta, tmp)?;
    retire(root, &dir);
    Ok(completed)
}

/// The chosen parts' bytes, in order, in one fsynced scratch file.
fn concatenate(
    root: &Path,
    dir: &Path,
    (upload, stored): (&UploadMeta, &[PartMeta]),
    requested: &[CompletedPart],
    max_object: u64,
) -> Result<(Scratch, Vec<PartMeta>), StorageError> {
    let parts: Vec<Part> = stored.iter().map(PartMeta::part).collect();
    let checksum = upload.sha256.then_some(ChecksumAlgorithm::Sha256);
    let chosen: Vec<PartMeta> = check_completion(&parts, requested, checksum)?
        .into_iter()
        .filter_map(|p| {
            stored
                .iter()
                .find(|s| s.part_number == p.part_number)
                .cloned()
        })
        .collect();
    let size: u64 = chosen.iter().map(|p| p.size).sum();
    if size > max_object {
        return Err(StorageError::InvalidArgument {
            reason: format!(
                "the object would be {size} bytes, over the store's limit of {max_object} bytes (DRAFTSTORE_LOCAL_MAX_OBJECT_BYTES)"
            ),
        });
    }
    let (tmp, mut to) = Scratch::create(root).map_err(|e| io_error("complete", &e))?;
    for part in &chosen {
        let mut from = std::fs::File::open(dir.join(&part.data)).map_err(|e| {
            if e.kind() == ErrorKind::NotFound {
                StorageError::InvalidPart {
                    part_number: part.part_number,
                    reason: "it was uploaded again during the completion".into(),
                }
            } else {
                io_error("read part", &e)
            }
        })?;
        std::io::copy(&mut from, &mut to).map_err(|e| io_error("complete", &e))?;
    }
    to.sync_all().map_err(|e| io_error("complete", &e))?;
    Ok((tmp, chosen))
}
