//! The `Storage` trait: the few object-store operations DraftStore needs, with typed errors.
//! Implemented by the in-memory store (here), the embedded local store and the S3 backend
//! (gateway). Futures are `Send` so the server can run them on any worker thread.

use crate::multipart::{Completed, CompletedPart, MultipartOptions, Part, UploadChecksum};
use crate::BucketName;
use std::collections::BTreeMap;
use std::future::Future;
use thiserror::Error;

/// User metadata (`x-amz-meta-*`), keys lowercase without the prefix.
pub type Metadata = BTreeMap<String, String>;

/// Why a storage call failed. Keys and bucket names may appear; credentials never do.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StorageError {
    /// The object or bucket does not exist.
    #[error("not found: {what}")]
    NotFound {
        /// `<bucket>/<key>` or `<bucket>`.
        what: String,
    },
    /// The bucket exists and belongs to someone else.
    #[error("already exists: {what}")]
    AlreadyExists {
        /// The bucket.
        what: String,
    },
    /// A condition (`If-None-Match`, `If-Match`, an ETag in a batch delete) did not hold.
    #[error("precondition failed: {what}")]
    PreconditionFailed {
        /// What was written or deleted.
        what: String,
    },
    /// Worth retrying later: throttling, 5xx, timeouts, connection failures.
    #[error("storage unavailable: {reason}")]
    Unavailable {
        /// What the store or the connection said.
        reason: String,
    },
    /// The store refused our credentials or permissions.
    #[error("storage denied the request: {reason}")]
    Denied {
        /// What the store said (never a credential).
        reason: String,
    },
    /// No multipart upload with this id for this key (never created, completed, aborted, or
    /// begun for another key): S3's `NoSuchUpload`.
    #[error("no such upload: {upload_id}")]
    NoSuchUpload {
        /// The upload id as given.
        upload_id: String,
    },
    /// A completion named a part that was not uploaded, or with another ETag or checksum:
    /// S3's `InvalidPart`.
    #[error("invalid part {part_number}: {reason}")]
    InvalidPart {
        /// The part's number.
        part_number: u32,
        /// What does not match.
        reason: String,
    },
    /// A completion's part numbers are not strictly ascending: S3's `InvalidPartOrder`.
    #[error("parts must be listed in ascending order without repeats: part {part_number} is out of order")]
    InvalidPartOrder {
        /// The first part number out of order.
        part_number: u32,
    },
    /// A part other than the last is under 5 MiB: S3's `EntityTooSmall`.
    #[error("part {part_number} is {size} bytes: every part but the last must be at least 5 MiB")]
    EntityTooSmall {
        /// The part's number.
        part_number: u32,
        /// Its size in bytes.
        size: u64,
    },
    /// A request the store refuses as malformed (a part number outside 1..=10000, a part over
    /// 5 GiB, a checksum that is not base64 or does not match the bytes, no parts to complete).
    #[error("invalid request: {reason}")]
    InvalidArgument {
        /// What is wrong.
        reason: String,
    },
    /// Any other failure of the store.
    #[error("storage error: {reason}")]
    Backend {
        /// What the store said.
        reason: String,
    },
}

impl StorageError {
    /// True for failures worth retrying later ([`StorageError::Unavailable`]).
    #[must_use]
    pub const fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }

    /// True when the store's answer does not tell whether a write happened: a transport error,
    /// a timeout, a 5xx, a 200 whose body is an error ([`StorageError::Unavailable`]), or a
    /// failure the store could not classify ([`StorageError::Backend`]). S3 may still finish
    /// such a copy after the gateway gave up on it. Every other kind is the store answering
    /// that the request was refused (`404`, `409`/`412`, `403`, a malformed request): known
    /// not done.
    #[must_use]
    pub const fn outcome_unknown(&self) -> bool {
        matches!(self, Self::Unavailable { .. } | Self::Backend { .. })
    }

    pub(crate) fn not_found(bucket: &BucketName, key: &str) -> Self {
        Self::NotFound {
            what: format!("{bucket}/{key}"),
        }
    }
}

/// What a HEAD tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Bytes.
    pub size: u64,
    /// Without quotes.
    pub etag: String,
    /// Unix seconds.
    pub last_modified: i64,
    /// `Content-Type`, if the object has one.
    pub content_type: Option<String>,
    /// User metadata.
    pub metadata: Metadata,
    /// Base64 SHA-256 the store verified and kept, if it reports one.
    pub checksum_sha256: Option<String>,
    /// What tells this stored upload from another of the same bytes, type and metadata in the
    /// same second, where the store has it: S3's `x-amz-version-id` (a versioned bucket), the
    /// embedded and memory stores' own per-upload id. Part of [`crate::draft_version`].
    pub version_id: Option<String>,
}

/// One entry of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedObject {
    /// The object key.
    pub key: String,
    /// Bytes.
    pub size: u64,
    /// Without quotes.
    pub etag: String,
    /// Unix seconds.
    pub last_modified: i64,
}

/// One page of a listing; `next` continues it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListPage {
    /// The objects of this page, in key order.
    pub objects: Vec<ListedObject>,
    /// Where the next page starts, `None` on the last page.
    pub next: Option<String>,
}

impl ListPage {
    /// The page a store answers from `listed`: the objects after the continuation that match
    /// the prefix, in key order. At most `max_keys` (at least 1) go in; `next` is the last
    /// key when more follow, as S3 pages.
    pub fn of(listed: impl IntoIterator<Item = ListedObject>, max_keys: u16) -> Self {
        let mut listed = listed.into_iter();
        let objects: Vec<ListedObject> =
            listed.by_ref().take(usize::from(max_keys.max(1))).collect();
        let next = listed
            .next()
            .and_then(|_| objects.last().map(|o| o.key.clone()));
        Self { objects, next }
    }
}

/// An incomplete multipart upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    /// The key being uploaded.
    pub key: String,
    /// S3's id of the upload.
    pub upload_id: String,
    /// Unix seconds.
    pub initiated: i64,
}

/// One page of incomplete uploads; `next` (key marker, upload-id marker) continues it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UploadPage {
    /// The uploads of this page.
    pub uploads: Vec<Upload>,
    /// Where the next page starts, `None` on the last page.
    pub next: Option<(String, String)>,
}

/// What a copy does with metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataDirective {
    /// Keep the source's content type and metadata (`x-amz-metadata-directive: COPY`).
    Copy,
    /// Set these instead (`x-amz-metadata-directive: REPLACE`).
    Replace {
        /// The copy's `Content-Type`.
        content_type: Option<String>,
        /// The copy's user metadata.
        metadata: Metadata,
    },
}

/// When a copy (or a conditional put) may write its destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopyCondition {
    /// Whatever the destination holds.
    Always,
    /// Only if the destination does not exist (`If-None-Match: *`).
    IfAbsent,
    /// Only if the destination still has this ETag (`If-Match`).
    IfMatch(String),
}

impl CopyCondition {
    /// Whether a write may go ahead when the destination's current ETag is `existing`
    /// (`None`: no object there). Stores that check the condition themselves (the memory and
    /// embedded stores, and S3 without conditional writes) all decide with this one rule.
    #[must_use]
    pub fn allows(&self, existing: Option<&str>) -> bool {
        match self {
            Self::Always => true,
            Self::IfAbsent => existing.is_none(),
            Self::IfMatch(etag) => existing == Some(etag.as_str()),
        }
    }

    /// [`CopyCondition::allows`] as a result.
    ///
    /// # Errors
    /// [`StorageError::PreconditionFailed`] naming `bucket/key` when the write may not go ahead.
    pub fn check(
        &self,
        existing: Option<&str>,
        bucket: &str,
        key: &str,
    ) -> Result<(), StorageError> {
        if self.allows(existing) {
            Ok(())
        } else {
            Err(StorageError::PreconditionFailed {
                what: format!("{bucket}/{key}"),
            })
        }
    }
}

/// A server-side copy. `source_size` lets a backend switch to a multipart copy (S3 copies at
/// most 5 GiB in one call).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyRequest<'a> {
    /// Source bucket.
    pub from_bucket: &'a BucketName,
    /// Source key.
    pub from_key: &'a str,
    /// Destination bucket.
    pub to_bucket: &'a BucketName,
    /// Destination key.
    pub to_key: &'a str,
    /// Bytes of the source.
    pub source_size: u64,
    /// Copy only if the source still has this ETag (`x-amz-copy-source-if-match`).
    pub source_etag: Option<&'a str>,
    /// Copy only if the source is still this upload: its [`crate::draft_version`] (32 hex
    /// digits). Checked atomically where [`Capabilities::version_conditions`]; other stores
    /// ignore it (confirm then HEADs the source again just before the copy).
    pub source_version: Option<&'a str>,
    /// Copy exactly this stored version of the source: S3's `x-amz-copy-source:
    /// /<bucket>/<key>?versionId=<id>`, with the id a HEAD gave ([`ObjectInfo::version_id`]:
    /// `x-amz-version-id` on a versioned bucket), so an upload made since that HEAD is not
    /// what gets copied. The memory and embedded stores ignore it (they check
    /// [`CopyRequest::source_version`] atomically).
    pub source_version_id: Option<&'a str>,
    /// What the copy does with metadata.
    pub metadata: MetadataDirective,
    /// When the copy may write its destination.
    pub condition: CopyCondition,
}

/// The result of a copy: the new object's ETag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    /// Without quotes.
    pub etag: String,
}

/// A key to delete, optionally only if it still has `etag`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteTarget {
    /// The key.
    pub key: String,
    /// Delete only if the object still has this ETag (where the store enforces it).
    pub etag: Option<String>,
    /// Delete only if the object is still this upload: its [`crate::draft_version`]. Checked
    /// atomically where [`Capabilities::version_conditions`]; other stores ignore it.
    pub version: Option<String>,
}

impl DeleteTarget {
    /// `Ok` when the object may go: nothing expected, the object is gone, or it still has the
    /// expected ETag and (when asked) the expected [`crate::draft_version`] (`current`: what
    /// the store holds now). For stores that enforce [`Capabilities::conditional_delete`]
    /// (and [`Capabilities::version_conditions`]).
    ///
    /// # Errors
    /// [`StorageError::PreconditionFailed`] when the object changed since it was looked at.
    pub fn may_delete(
        &self,
        bucket: &str,
        current: Option<&ObjectInfo>,
    ) -> Result<(), StorageError> {
        let Some(current) = current else {
            return Ok(());
        };
        let etag_changed = self.etag.as_ref().is_some_and(|e| *e != current.etag);
        let version_changed = self
            .version
            .as_ref()
            .is_some_and(|v| *v != crate::draft_version(current));
        if etag_changed || version_changed {
            return Err(StorageError::PreconditionFailed {
                what: format!("{bucket}/{} changed", self.key),
            });
        }
        Ok(())
    }
}

/// Refuses a batch delete of more than [`MAX_DELETE_BATCH`] keys, as S3 does; every store
/// checks it first.
///
/// # Errors
/// [`StorageError::Backend`] for a batch too large.
pub fn check_delete_batch(targets: &[DeleteTarget]) -> Result<(), StorageError> {
    if targets.len() > MAX_DELETE_BATCH {
        return Err(StorageError::Backend {
            reason: format!("more than {MAX_DELETE_BATCH} keys in one batch delete"),
        });
    }
    Ok(())
}

/// Per-key result of a batch delete. A missing key is a success, as in S3.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteOutcome {
    /// The key.
    pub key: String,
    /// Deleted (or already gone), or why not.
    pub result: Result<(), StorageError>,
}

/// Options of a direct PUT (tools, tests and the embedded store; clients upload presigned).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PutOptions {
    /// `Content-Type` to store.
    pub content_type: Option<String>,
    /// User metadata to store.
    pub metadata: Metadata,
}

/// What a backend can promise; confirm and sweep adapt to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// `CopyCondition::IfAbsent` / `IfMatch` are enforced atomically.
    pub conditional_copy: bool,
    /// `DeleteTarget::etag` is enforced atomically.
    pub conditional_delete: bool,
    /// [`Storage::put_object_if`]'s condition is enforced atomically (S3 `If-None-Match: *`
    /// and `If-Match` on PutObject). The event queue claims events with it; without it only
    /// one deliverer (sweep) may run.
    pub conditional_put: bool,
    /// [`CopyRequest::source_version`] and [`DeleteTarget::version`] are enforced atomically
    /// (the memory and embedded stores). S3 has no such condition: confirm HEADs the draft
    /// again right before its copy and its delete and compares versions, and on a versioned
    /// bucket copies and deletes by version id ([`CopyRequest::source_version_id`],
    /// [`Storage::delete_version`]).
    pub version_conditions: bool,
    /// A copy and a delete can name one stored version ([`ObjectInfo::version_id`]:
    /// [`CopyRequest::source_version_id`], [`Storage::delete_version`]): S3, where a versioned
    /// bucket's HEAD gives `x-amz-version-id` (an unversioned bucket's gives none, and confirm
    /// then HEADs before its delete). False where `version_id` is the store's own upload id
    /// (the memory and embedded stores).
    pub version_ids: bool,
}

/// At most this many keys go in one batch delete (S3's limit).
pub const MAX_DELETE_BATCH: usize = 1000;

/// The object-store operations DraftStore uses.
pub trait Storage: Send + Sync {
    /// What this backend enforces atomically.
    fn capabilities(&self) -> Capabilities;

    /// Creates a bucket; one that already exists and is ours is a success.
    fn create_bucket(
        &self,
        bucket: &BucketName,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;

    /// Succeeds when the bucket exists and our credentials may use it.
    fn head_bucket(
        &self,
        bucket: &BucketName,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;

    /// Size, ETag, time, content type and metadata of one object.
    fn head_object(
        &self,
        bucket: &BucketName,
        key: &str,
    ) -> impl Future<Output = Result<ObjectInfo, StorageError>> + Send;

    /// Stores a small object in one call; returns its ETag.
    fn put_object(
        &self,
        bucket: &BucketName,
        key: &str,
        body: Vec<u8>,
        options: &PutOptions,
    ) -> impl Future<Output = Result<String, StorageError>> + Send;

    /// Stores a small object only if `condition` holds for what `key` holds now
    /// ([`CopyCondition::IfAbsent`]: nothing; [`CopyCondition::IfMatch`]: that ETag), checked
    /// atomically where [`Capabilities::conditional_put`] (else checked first, racily). Returns
    /// the new ETag.
    ///
    /// # Errors
    /// [`StorageError::PreconditionFailed`] when the condition does not hold; as
    /// [`Storage::put_object`].
    fn put_object_if(
        &self,
        bucket: &BucketName,
        key: &str,
        body: Vec<u8>,
        options: &PutOptions,
        condition: &CopyCondition,
    ) -> impl Future<Output = Result<String, StorageError>> + Send;

    /// Reads a whole object (tests and small objects; clients download presigned).
    fn get_object(
        &self,
        bucket: &BucketName,
        key: &str,
    ) -> impl Future<Output = Result<Vec<u8>, StorageError>> + Send;

    /// A server-side copy (multipart above the backend's threshold), honouring the request's
    /// conditions.
    fn copy_object(
        &self,
        request: &CopyRequest<'_>,
    ) -> impl Future<Output = Result<Copied, StorageError>> + Send;

    /// Deletes one object; a missing one is a success.
    fn delete_object(
        &self,
        bucket: &BucketName,
        key: &str,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;

    /// Deletes exactly the stored version `version_id` of `key` ([`ObjectInfo::version_id`]
    /// from a HEAD; S3: a versioned bucket's `x-amz-version-id`) and the key's older versions
    /// (so none of them becomes current again), never a newer upload of the key; a version
    /// already gone is a success. For stores with [`Capabilities::version_ids`] (S3). The
    /// default refuses: the memory and embedded stores delete by [`DeleteTarget::version`].
    ///
    /// # Errors
    /// Store failures; [`StorageError::Backend`] from a store without stored versions.
    fn delete_version(
        &self,
        bucket: &BucketName,
        key: &str,
        version_id: &str,
    ) -> impl Future<Output = Result<(), StorageError>> + Send {
        let reason = format!("{bucket}/{key}: this store cannot delete version {version_id}");
        async move { Err(StorageError::Backend { reason }) }
    }

    /// Deletes up to [`MAX_DELETE_BATCH`] objects in one call, with a result per key.
    fn delete_objects(
        &self,
        bucket: &BucketName,
        targets: &[DeleteTarget],
    ) -> impl Future<Output = Result<Vec<DeleteOutcome>, StorageError>> + Send;

    /// One page (at most `max_keys`) of the keys under `prefix`, in key order.
    fn list_objects(
        &self,
        bucket: &BucketName,
        prefix: &str,
        continuation: Option<&str>,
        max_keys: u16,
    ) -> impl Future<Output = Result<ListPage, StorageError>> + Send;

    /// One page (at most 1000) of the incomplete multipart uploads whose key starts with
    /// `prefix`, in (key, upload id) order; `initiated` tells their age.
    fn list_uploads(
        &self,
        bucket: &BucketName,
        prefix: &str,
        continuation: Option<&(String, String)>,
    ) -> impl Future<Output = Result<UploadPage, StorageError>> + Send;

    /// Starts a multipart upload of `bucket/key` (S3 CreateMultipartUpload): the object it
    /// completes into gets `options`' content type and metadata; with a checksum algorithm,
    /// every part must carry that checksum. Returns the upload id (opaque, URL-safe).
    ///
    /// # Errors
    /// `NotFound` for a missing bucket; store failures.
    fn create_multipart_upload(
        &self,
        bucket: &BucketName,
        key: &str,
        options: &MultipartOptions,
    ) -> impl Future<Output = Result<String, StorageError>> + Send;

    /// Stores one part directly (S3 UploadPart), replacing an earlier upload of the same number;
    /// returns it as ListParts will. For tests and tools: clients send parts to presigned URLs.
    /// `checksum_sha256` (base64) is checked against the bytes.
    ///
    /// # Errors
    /// `NoSuchUpload`; `InvalidArgument` for a part number outside 1..=10000, a part over
    /// 5 GiB, a missing (upload created with SHA256) or wrong checksum.
    fn upload_part(
        &self,
        bucket: &BucketName,
        key: &str,
        upload_id: &str,
        part_number: u32,
        body: Vec<u8>,
        checksum_sha256: Option<&str>,
    ) -> impl Future<Output = Result<Part, StorageError>> + Send;

    /// Every part uploaded so far (all of S3's ListParts pages joined), by part number.
    ///
    /// # Errors
    /// `NoSuchUpload` for an unknown upload, or one begun for another key.
    fn list_parts(
        &self,
        bucket: &BucketName,
        key: &str,
        upload_id: &str,
    ) -> impl Future<Output = Result<Vec<Part>, StorageError>> + Send;

    /// Whether upload `upload_id` of `bucket/key` exists and what it says of its per-part
    /// checksums ([`UploadChecksum`]), without listing its parts when the store need not: a
    /// call for part URLs asks this, so its cost must not grow with the parts already stored.
    /// The default reads [`Storage::list_parts`] ([`UploadChecksum::of_parts`]).
    ///
    /// # Errors
    /// As [`Storage::list_parts`]: `NoSuchUpload` for an unknown upload, or one begun for
    /// another key.
    fn upload_checksum(
        &self,
        bucket: &BucketName,
        key: &str,
        upload_id: &str,
    ) -> impl Future<Output = Result<UploadChecksum, StorageError>> + Send {
        async move {
            let parts = self.list_parts(bucket, key, upload_id).await?;
            Ok(UploadChecksum::of_parts(&parts))
        }
    }

    /// Makes the object from `parts` (S3 CompleteMultipartUpload), atomically: it appears whole
    /// or not at all; the upload is gone afterwards. Parts are checked as
    /// [`check_completion`](crate::check_completion) says, on every store.
    ///
    /// # Errors
    /// `NoSuchUpload`, `InvalidPart`, `InvalidPartOrder`, `EntityTooSmall` (each naming the
    /// part), `InvalidArgument` for an empty list; store failures.
    fn complete_multipart_upload(
        &self,
        bucket: &BucketName,
        key: &str,
        upload_id: &str,
        parts: &[CompletedPart],
    ) -> impl Future<Output = Result<Completed, StorageError>> + Send;

    /// Aborts an incomplete multipart upload and frees its parts; an unknown one is a success.
    fn abort_upload(
        &self,
        bucket: &BucketName,
        key: &str,
        upload_id: &str,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;
}

#[cfg(test)]
mod tests {
    use super::StorageError;

    #[test]
    fn only_an_answer_that_refused_the_write_is_a_known_outcome() {
        let reason = || "r".to_owned();
        let what = || "b/k".to_owned();
        assert!(StorageError::Unavailable { reason: reason() }.outcome_unknown());
        assert!(StorageError::Backend { reason: reason() }.outcome_unknown());
        for known in [
            StorageError::NotFound { what: what() },
            StorageError::PreconditionFailed { what: what() },
            StorageError::Denied { reason: reason() },
            StorageError::AlreadyExists { what: what() },
            StorageError::InvalidArgument { reason: reason() },
        ] {
            assert!(!known.outcome_unknown(), "{known:?}");
        }
    }
}
