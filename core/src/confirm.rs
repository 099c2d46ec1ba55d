//! Confirm: moves a draft into main. Performs the steps [`crate::draft::next_step`] decides.
//!
//! Idempotent (a confirmed object confirms again with the same result), crash-safe (the draft is
//! deleted only after main holds a verified copy, so a failure at any step leaves the object in
//! draft, main or both, and a retry converges), honest (`NotFound` and `Conflict` are distinct).
//! With a store that enforces conditional copies and version conditions, a small object costs
//! three calls: HEAD draft, copy (`If-None-Match: *`), delete. S3 adds a HEAD of the draft
//! before the copy and before the delete (it has no version condition: see
//! [`crate::Capabilities::version_conditions`]); on a versioned S3 bucket the copy and the
//! delete name the version that HEAD gave ([`CopyRequest::source_version_id`],
//! [`Storage::delete_version`], which replaces the HEAD before the delete). A hook that does
//! something ([`BeforeCopy::is_noop`]) adds a HEAD of main before it.
//!
//! **A confirm that ends without its own copy after its hook ran** (it failed, or another
//! confirm moved the draft) tells the hook ([`BeforeCopy::abandoned`]), so what it prepared
//! for that copy (the gateway's queued event) does not wait for a copy that never happened.
//!
//! **A draft replaced during confirm** (a new upload under the name, even of the same bytes)
//! is neither copied over nor deleted: [`ConfirmError::DraftChanged`].
//!
//! **Already done** means main holds the copy of *this* draft: the copy is stamped with the
//! draft's version ([`crate::draft_version`]: its ETag, size, Last-Modified, type and
//! metadata), so a new upload of the same bytes with another type or metadata is a new draft
//! (a conflict, or with `overwrite` a normal confirm that replaces main), while a retry of a
//! confirm, even one that crashed between its copy and the delete, finds its own copy.
//!
//! **Who moved it.** Of all the confirms of one object, exactly one reports
//! [`ConfirmOutcome::Moved`]: the one whose copy into main succeeded. With conditional copies
//! the store decides (one `If-None-Match: *` / `If-Match` copy wins, across any number of
//! replicas). Without them, confirms of one name take turns within the process
//! (`name_lock`), so each object is moved at most once *per process*; two replicas may both
//! copy it and both report `Moved`.

use crate::constraints::ConstraintViolation;
use crate::draft::{
    draft_version, next_step, promoted_metadata, promoted_user_metadata, Observed, Policy, Step,
};
use crate::storage::{CopyRequest, DeleteTarget, ObjectInfo, Storage, StorageError};
use crate::{Buckets, ObjectName, UploadConstraints};
use thiserror::Error;

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
    /// Bytes of the object in main.
    pub size: u64,
    /// Its ETag in main, without quotes.
    pub etag: String,
    /// Whether this call moved it: count bytes and confirmations on [`ConfirmOutcome::Moved`]
    /// only, and each object is counted once.
    pub outcome: ConfirmOutcome,
}

/// What a successful confirm did (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConfirmOutcome {
    /// This call's copy put the object into main. One call per object (with a store without
    /// conditional copies: one per process).
    Moved,
    /// Main already held the object: an earlier or concurrent call moved it. This call may
    /// have deleted the draft that call left. Also the answer when the call that copied failed
    /// afterwards (e.g. its draft delete failed) and this call finished its work: that object
    /// is then counted as moved by none.
    Already,
}

impl ConfirmOutcome {
    /// `"moved"` or `"already"`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Moved => "moved",
            Self::Already => "already",
        }
    }
}

/// Why a confirm failed. Each variant says what went wrong; the gateway maps them to REST and
/// gRPC statuses in one place.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfirmError {
    /// Neither the draft bucket nor main holds the name.
    #[error("no draft and no confirmed object named {name}")]
    NotFound {
        /// The name asked for.
        name: ObjectName,
    },
    /// Main holds a different object under the name and the caller did not ask to overwrite.
    #[error("main already holds a different object named {name}")]
    Conflict {
        /// The name asked for.
        name: ObjectName,
    },
    /// The draft breaks the constraints declared at upload or expected now.
    #[error("draft {name} does not match its declared constraints: {violation}")]
    ConstraintMismatch {
        /// The name asked for.
        name: ObjectName,
        /// What differs.
        violation: ConstraintViolation,
    },
    /// Concurrent changes kept confirm from finishing in a bounded number of steps.
    #[error("confirm of {name} did not converge under concurrent changes; retry")]
    NotConverged {
        /// The name asked for.
        name: ObjectName,
    },
    /// The draft was replaced (a new upload under the name, even of the same bytes) while this
    /// confirm was checking or copying it: nothing was copied and the new draft stays; confirm
    /// again to confirm the new upload.
    #[error("draft {name} was replaced while confirming; confirm again")]
    DraftChanged {
        /// The name asked for.
        name: ObjectName,
    },
    /// The pre-confirm check ([`BeforeCopy`]) refused the draft; it stays in the draft bucket.
    #[error("the pre-confirm check refused {name}: {reason}")]
    Rejected {
        /// The name asked for.
        name: ObjectName,
        /// The checker's reason, cut and sanitised.
        reason: String,
    },
    /// The pre-confirm check could not decide (timeout, 5xx, unreachable) and policy says
    /// refuse meanwhile; the draft stays.
    #[error("the pre-confirm check of {name} is unavailable: {reason}")]
    CheckUnavailable {
        /// The name asked for.
        name: ObjectName,
        /// What failed.
        reason: String,
    },
    /// A storage call failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// What confirm does just before it copies a draft into main, and only then: a confirm that
/// finds the object already moved never calls it. Called once per draft version
/// ([`crate::draft_version`]) per confirm. An error stops the confirm before the copy, leaving the draft in place. The
/// gateway's hook runs the pre-confirm check and writes the `object.confirmed` event into
/// its queue (so a crash after the copy cannot lose it).
pub trait BeforeCopy: Sync {
    /// Called with the name and the draft about to be copied.
    ///
    /// # Errors
    /// [`ConfirmError::Rejected`], [`ConfirmError::CheckUnavailable`], or a storage failure.
    fn before_copy(
        &self,
        name: &ObjectName,
        draft: &ObjectInfo,
    ) -> impl std::future::Future<Output = Result<(), ConfirmError>> + Send;

    /// True when [`BeforeCopy::before_copy`] does nothing: confirm then copies before looking
    /// at main (one call fewer). Otherwise confirm looks at main first, so a confirm that is
    /// already done, or a conflict, never calls the hook (no check, no event queued). The
    /// default is `false`.
    fn is_noop(&self) -> bool {
        false
    }

    /// Called once a copy of `draft` into main succeeded, before the draft is deleted, with the
    /// ETag of the copy in main (without quotes: the draft's, or a multipart copy's `…-N`).
    /// Cannot fail the confirm (the copy is done): the gateway's hook marks its queued event
    /// as copied, so its delivery no longer depends on what main holds later, and gives it
    /// main's ETag. The default does nothing.
    fn after_copy(
        &self,
        _name: &ObjectName,
        _draft: &ObjectInfo,
        _main_etag: &str,
    ) -> impl std::future::Future<Output = ()> + Send {
        std::future::ready(())
    }

    /// Called once when a confirm ends, failed or answered "already done", after
    /// [`BeforeCopy::before_copy`] accepted `draft` and without this call having copied it (the
    /// draft was replaced, main holds another object, the store refused the copy, another
    /// confirm moved it, ...): main may not hold that version. Not called when the copy's
    /// outcome is unknown ([`StorageError::outcome_unknown`]: S3 may finish it later). Cannot change the answer: the gateway's hook
    /// withdraws the `object.confirmed` event it queued, unless main holds the copy or the
    /// event is marked copied (another confirm of the same version moved it). The default
    /// does nothing.
    fn abandoned(
        &self,
        _name: &ObjectName,
        _draft: &ObjectInfo,
    ) -> impl std::future::Future<Output = ()> + Send {
        std::future::ready(())
    }
}

/// No hook.
impl BeforeCopy for () {
    fn is_noop(&self) -> bool {
        true
    }

    fn before_copy(
        &self,
        _name: &ObjectName,
        _draft: &ObjectInfo,
    ) -> impl std::future::Future<Output = Result<(), ConfirmError>> + Send {
        std::future::ready(Ok(()))
    }
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
    confirm_with(storage, buckets, name, options, &()).await
}

/// [`confirm()`] with `hook` called before the copy (see [`BeforeCopy`]).
///
/// # Errors
/// As [`confirm()`], and whatever the hook answers.
pub async fn confirm_with<S: Storage, H: BeforeCopy>(
    storage: &S,
    buckets: &Buckets,
    name: &ObjectName,
    options: ConfirmOptions<'_>,
    hook: &H,
) -> Result<Confirmed, ConfirmError> {
    let caps = storage.capabilities();
    let policy = Policy {
        overwrite: options.overwrite,
        expect: options.expect,
        conditional_copy: caps.conditional_copy,
    };
    let key = name.as_str();
    // Without conditional copies nothing stops two confirms from both copying: in this
    // process, confirms of one name take turns.
    let _turn = if caps.conditional_copy {
        None
    } else {
        Some(crate::name_lock::turn(format!("{}/{key}", buckets.main)).await)
    };
    let mut run = Run::default();
    let result = steps(storage, buckets, name, &policy, hook, &mut run).await;
    // Checked (and its event queued) but never copied by this call, failed or found done by
    // another: the hook withdraws what it left unless main holds that copy.
    // A copy whose outcome is unknown (a timeout, a reset, a 5xx) may still land in main after
    // this call gave up: its event stays queued, and the deliverer sends it once main holds the
    // stamped copy (or drops it after an hour).
    if let (Some(draft), false, false) = (&run.checked, run.seen.moved, run.copy_unknown) {
        hook.abandoned(name, draft).await;
    }
    result
}

/// What one confirm call has seen and done so far.
#[derive(Default)]
struct Run {
    seen: Observed,
    /// The draft the hook was called for (one version per call).
    checked: Option<ObjectInfo>,
    /// A copy failed without telling whether it happened ([`StorageError::outcome_unknown`]).
    copy_unknown: bool,
}

/// The steps of [`confirm_with`], recording in `run` what the hook was called for.
async fn steps<S: Storage, H: BeforeCopy>(
    storage: &S,
    buckets: &Buckets,
    name: &ObjectName,
    policy: &Policy<'_>,
    hook: &H,
    run: &mut Run,
) -> Result<Confirmed, ConfirmError> {
    let caps = storage.capabilities();
    let key = name.as_str();
    for _ in 0..MAX_STEPS {
        let seen = &mut run.seen;
        match next_step(seen, policy) {
            Step::HeadDraft => {
                let draft = head(storage, &buckets.draft, key).await?;
                // A copy of a checked version was refused and the draft is now another upload:
                // this confirm's draft is gone, the new one is left for its own confirm.
                let checked = run.checked.as_ref().map(draft_version);
                if changed_from(checked.as_deref(), draft.as_ref()) {
                    return Err(ConfirmError::DraftChanged { name: name.clone() });
                }
                seen.draft = Some(draft);
            }
            Step::HeadMain => seen.main = Some(head(storage, &buckets.main, key).await?),
            Step::Copy(condition) => {
                let Some(Some(draft)) = seen.draft.clone() else {
                    continue;
                };
                let version = draft_version(&draft);
                // Main decides first whether there is anything to check: a confirm that is
                // already done (a retry after a crash between copy and delete) or a conflict
                // neither calls the checker nor queues an event.
                if seen.main.is_none() && !hook.is_noop() {
                    seen.main = Some(head(storage, &buckets.main, key).await?);
                    continue;
                }
                if run.checked.as_ref().map(draft_version).as_ref() != Some(&version) {
                    hook.before_copy(name, &draft).await?;
                    run.checked = Some(draft.clone());
                }
                // S3 cannot make a copy conditional on the version: look again right before.
                if !caps.version_conditions {
                    let now = head(storage, &buckets.draft, key).await?;
                    if changed_from(Some(&version), now.as_ref()) {
                        return Err(ConfirmError::DraftChanged { name: name.clone() });
                    }
                }
                let request = CopyRequest {
                    from_bucket: &buckets.draft,
                    from_key: key,
                    to_bucket: &buckets.main,
                    to_key: key,
                    source_size: draft.size,
                    source_etag: Some(&draft.etag),
                    source_version: Some(&version),
                    // A versioned S3 bucket copies exactly the version looked at.
                    source_version_id: draft.version_id.as_deref().filter(|_| caps.version_ids),
                    metadata: promoted_metadata(&draft),
                    condition,
                };
                match storage.copy_object(&request).await {
                    // A one-call copy keeps the ETag (the MD5): that verifies the copy. A
                    // multipart copy gets a new ETag: then main is looked at (size and stamp).
                    Ok(copied) => {
                        hook.after_copy(name, &draft, &copied.etag).await;
                        seen.moved = true;
                        seen.main = (copied.etag == draft.etag)
                            .then(|| Some(main_after_copy(&draft, copied.etag)));
                    }
                    // Main or the draft changed under us (another confirm, a re-upload, a sweep):
                    // look again.
                    Err(
                        StorageError::PreconditionFailed { .. } | StorageError::NotFound { .. },
                    ) => {
                        *seen = Observed {
                            moved: seen.moved,
                            copy_refused: true,
                            ..Observed::default()
                        };
                    }
                    Err(e) => {
                        run.copy_unknown = e.outcome_unknown();
                        return Err(e.into());
                    }
                }
            }
            Step::DeleteDraft => {
                let Some(Some(draft)) = &seen.draft else {
                    continue;
                };
                delete_draft(storage, buckets, key, draft).await?;
                seen.draft = Some(None);
            }
            Step::Done { main, outcome } => {
                return Ok(Confirmed {
                    location: format!("{}/{key}", buckets.main),
                    size: main.size,
                    etag: main.etag,
                    outcome,
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

/// True when a confirm that checked version `checked` now finds another upload under the name.
fn changed_from(checked: Option<&str>, now: Option<&ObjectInfo>) -> bool {
    matches!((checked, now), (Some(c), Some(d)) if draft_version(d) != c)
}

/// Deletes the draft only if it is still the upload that was copied (its ETag and
/// [`draft_version`]): a re-upload under the same name, even of the same bytes, is a new draft
/// and stays. Atomic where the store enforces version conditions, and on a versioned S3 bucket
/// (the version is deleted by its id: [`Storage::delete_version`]); on an unversioned S3
/// bucket the draft is looked at right before the delete (a re-upload of the same bytes
/// between that HEAD and the delete is lost: a window of one round trip).
async fn delete_draft<S: Storage>(
    storage: &S,
    buckets: &Buckets,
    key: &str,
    draft: &ObjectInfo,
) -> Result<(), StorageError> {
    let caps = storage.capabilities();
    let version = draft_version(draft);
    // A versioned S3 bucket: delete exactly the version copied (and older ones), so a
    // re-upload since stays whatever its bytes.
    if let (true, Some(version_id)) = (caps.version_ids, &draft.version_id) {
        return storage
            .delete_version(&buckets.draft, key, version_id)
            .await;
    }
    if !caps.version_conditions {
        let now = head(storage, &buckets.draft, key).await?;
        if now.is_none() || changed_from(Some(&version), now.as_ref()) {
            return Ok(());
        }
    }
    if !caps.conditional_delete {
        return storage.delete_object(&buckets.draft, key).await;
    }
    let target = [DeleteTarget {
        key: key.to_owned(),
        etag: Some(draft.etag.clone()),
        version: Some(version),
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
        version_id: None,
    }
}
