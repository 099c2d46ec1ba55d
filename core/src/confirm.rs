//! Confirm: moves a draft into main. Performs the steps [`crate::draft::next_step`] decides.
//!
//! Idempotent (a confirmed object confirms again with the same result), crash-safe (the draft is
//! deleted only after main holds a verified copy, so a failure at any step leaves the object in
//! draft, main or both, and a retry converges), honest (`NotFound` and `Conflict` are distinct).
//! With a store that enforces conditional copies, a small object costs three calls: HEAD draft,
//! copy (`If-None-Match: *`), delete.

use crate::draft::{next_step, promoted_metadata, promoted_user_metadata, Observed, Policy, Step};
use crate::error::ConfirmError;
use crate::storage::{CopyRequest, DeleteTarget, ObjectInfo, Storage, StorageError};
use crate::{Buckets, ObjectName, UploadConstraints};

/// Options of one confirm.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConfirmOptions<'a> {
    /// Replace a different object main already holds under this name.
    pub overwrite: bool,
    /// Constraints to check now, on top of those declared at upload.
    pub expect: Option<&'a UploadConstraints>,
}

/// A confirmed object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirmed {
    /// `<main-bucket>/<name>`.
    pub location: String,
    pub size: u64,
    pub etag: String,
    /// It was confirmed before this call.
    pub already: bool,
}

/// More steps than any convergent run needs; reached only under a storm of concurrent changes.
const MAX_STEPS: usize = 12;

/// Confirms `name`: see the module doc.
///
/// # Errors
/// [`ConfirmError`]: not found, conflict, constraint mismatch, storage failure, or no
/// convergence under concurrent changes.
pub async fn confirm<S: Storage>(
    storage: &S,
    buckets: &Buckets,
    name: &ObjectName,
    options: ConfirmOptions<'_>,
) -> Result<Confirmed, ConfirmError> {
    let caps = storage.capabilities();
    let policy = Policy {
        overwrite: options.overwrite,
        expect: options.expect,
        conditional_copy: caps.conditional_copy,
    };
    let key = name.as_str();
    let mut seen = Observed::default();
    for _ in 0..MAX_STEPS {
        match next_step(&seen, &policy) {
            Step::HeadDraft => seen.draft = Some(head(storage, &buckets.draft, key).await?),
            Step::HeadMain => seen.main = Some(head(storage, &buckets.main, key).await?),
            Step::Copy(condition) => {
                let Some(Some(draft)) = seen.draft.clone() else {
                    continue;
                };
                let request = CopyRequest {
                    from_bucket: &buckets.draft,
                    from_key: key,
                    to_bucket: &buckets.main,
                    to_key: key,
                    source_size: draft.size,
                    source_etag: Some(&draft.etag),
                    metadata: promoted_metadata(&draft),
                    condition,
                };
                match storage.copy_object(&request).await {
                    // A one-call copy keeps the ETag (the MD5): that verifies the copy. A
                    // multipart copy gets a new ETag: then main is looked at (size and stamp).
                    Ok(copied) if copied.etag == draft.etag => {
                        seen.main = Some(Some(main_after_copy(&draft, copied.etag)));
                    }
                    Ok(_) => seen.main = None,
                    // Main or the draft changed under us (another confirm, a re-upload, a sweep):
                    // look again.
                    Err(
                        StorageError::PreconditionFailed { .. } | StorageError::NotFound { .. },
                    ) => {
                        seen = Observed {
                            promoted_now: seen.promoted_now,
                            copy_refused: true,
                            ..Observed::default()
                        };
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            Step::DeleteDraft => {
                let Some(Some(draft)) = &seen.draft else {
                    continue;
                };
                delete_draft(storage, buckets, key, &draft.etag).await?;
                seen.draft = Some(None);
                seen.promoted_now = true;
            }
            Step::Done { main, already } => {
                return Ok(Confirmed {
                    location: format!("{}/{key}", buckets.main),
                    size: main.size,
                    etag: main.etag,
                    already,
                });
            }
            Step::NotFound => return Err(ConfirmError::NotFound { name: name.clone() }),
            Step::Conflict => return Err(ConfirmError::Conflict { name: name.clone() }),
            Step::Violation(violation) => {
                return Err(ConfirmError::ConstraintMismatch {
                    name: name.clone(),
                    violation,
                })
            }
        }
    }
    Err(ConfirmError::NotConverged { name: name.clone() })
}

async fn head<S: Storage>(
    storage: &S,
    bucket: &crate::BucketName,
    key: &str,
) -> Result<Option<ObjectInfo>, StorageError> {
    match storage.head_object(bucket, key).await {
        Ok(info) => Ok(Some(info)),
        Err(StorageError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Deletes the draft only if it is still the one that was copied: a re-upload under the same
/// name after the copy is a new draft and stays (where the store enforces conditional deletes).
async fn delete_draft<S: Storage>(
    storage: &S,
    buckets: &Buckets,
    key: &str,
    etag: &str,
) -> Result<(), StorageError> {
    if !storage.capabilities().conditional_delete {
        return storage.delete_object(&buckets.draft, key).await;
    }
    let target = [DeleteTarget {
        key: key.to_owned(),
        etag: Some(etag.to_owned()),
    }];
    let outcomes = storage.delete_objects(&buckets.draft, &target).await?;
    match outcomes.into_iter().next().map(|o| o.result) {
        Some(
            Ok(()) | Err(StorageError::PreconditionFailed { .. } | StorageError::NotFound { .. }),
        )
        | None => Ok(()),
        Some(Err(e)) => Err(e),
    }
}

fn main_after_copy(draft: &ObjectInfo, etag: String) -> ObjectInfo {
    ObjectInfo {
        size: draft.size,
        etag,
        last_modified: draft.last_modified,
        content_type: draft.content_type.clone(),
        metadata: promoted_user_metadata(draft),
        checksum_sha256: draft.checksum_sha256.clone(),
    }
}
