//! An in-memory [`Storage`] with a settable clock and fault injection, for tests of everything
//! above storage. It behaves like S3 where that matters: ETag = hex MD5 of the bytes, a copy
//! keeps the ETag, missing keys delete fine, listings come in key order.

use crate::draft::draft_version;
use crate::multipart::{
    check_completion, check_part_number, multipart_etag, ChecksumAlgorithm, Completed,
    CompletedPart, MultipartOptions, Part, MAX_PART_SIZE,
};
use crate::storage::{
    Capabilities, Copied, CopyCondition, CopyRequest, DeleteOutcome, DeleteTarget, ListPage,
    ListedObject, MetadataDirective, ObjectInfo, PutOptions, Storage, StorageError, Upload,
    UploadPage,
};
use crate::BucketName;
use md5::{Digest, Md5};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What an injected fault does to one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Fail without doing anything (a request that never arrived).
    FailBefore(StorageError),
    /// Do the work, then fail (a response that was lost, or a crash right after the call).
    FailAfter(StorageError),
    /// Answer after a delay.
    Delay(Duration),
}

#[derive(Default)]
struct BucketData {
    objects: BTreeMap<String, (Arc<[u8]>, ObjectInfo)>,
    /// By (key, upload id).
    uploads: BTreeMap<(String, String), UploadData>,
}

struct UploadData {
    initiated: i64,
    options: MultipartOptions,
    parts: BTreeMap<u32, (Arc<[u8]>, Part)>,
}

impl UploadData {
    fn new(initiated: i64, options: MultipartOptions) -> Self {
        Self {
            initiated,
            options,
            parts: BTreeMap::new(),
        }
    }
}

/// The upload `id` of `key`; S3 answers `NoSuchUpload` for an id begun for another key too.
fn upload_mut<'a>(
    data: &'a mut BucketData,
    key: &str,
    id: &str,
) -> Result<&'a mut UploadData, StorageError> {
    data.uploads
        .get_mut(&(key.to_owned(), id.to_owned()))
        .ok_or_else(|| StorageError::NoSuchUpload {
            upload_id: id.to_owned(),
        })
}

/// See the module doc.
pub struct MemoryStorage {
    buckets: Mutex<BTreeMap<String, BucketData>>,
    /// `i64::MIN`: the system clock.
    clock: AtomicI64,
    calls: AtomicU64,
    faults: Mutex<Vec<(u64, Fault)>>,
    capabilities: Capabilities,
    next_upload: AtomicU64,
}

impl Default for MemoryStorage {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStorage {
    /// An empty store on the system clock, enforcing copy and delete conditions.
    #[must_use]
    pub fn new() -> Self {
        Self::with_capabilities(Capabilities {
            conditional_copy: true,
            conditional_delete: true,
            conditional_put: true,
            version_conditions: true,
            version_ids: false,
        })
    }

    /// A store that claims (and enforces) only `capabilities`, to test the fallbacks.
    #[must_use]
    pub fn with_capabilities(capabilities: Capabilities) -> Self {
        Self {
            buckets: Mutex::default(),
            clock: AtomicI64::new(i64::MIN),
            calls: AtomicU64::new(0),
            faults: Mutex::default(),
            capabilities,
            next_upload: AtomicU64::new(1),
        }
    }

    /// Switches to a manual clock at `unix` seconds.
    pub fn set_time(&self, unix: i64) {
        self.clock.store(unix, Ordering::SeqCst);
    }

    /// Moves the manual clock `secs` seconds on (switching to it from the system clock).
    pub fn advance(&self, secs: i64) {
        let now = self.now();
        self.set_time(now.saturating_add(secs));
    }

    /// The store's clock: unix seconds.
    #[must_use]
    pub fn now(&self) -> i64 {
        match self.clock.load(Ordering::SeqCst) {
            i64::MIN => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
            t => t,
        }
    }

    /// How many storage calls were made so far.
    #[must_use]
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    /// Makes the `nth` call from now (1 = the next) suffer `fault`.
    pub fn fail_call(&self, nth: u64, fault: Fault) {
        let at = self.calls() + nth;
        self.faults
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((at, fault));
    }

    /// Drops every fault not yet triggered.
    pub fn clear_faults(&self) {
        self.faults
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// Starts an incomplete multipart upload (what an abandoned client leaves behind).
    pub fn create_upload(&self, bucket: &BucketName, key: &str) -> String {
        let id = format!("upload-{}", self.next_upload.fetch_add(1, Ordering::SeqCst));
        let now = self.now();
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        buckets
            .entry(bucket.as_str().to_owned())
            .or_default()
            .uploads
            .insert(
                (key.to_owned(), id.clone()),
                UploadData::new(now, MultipartOptions::default()),
            );
        id
    }

    /// Runs one call: yields once (so concurrent calls interleave), applies any fault, then `f`.
    async fn call<T>(
        &self,
        f: impl FnOnce(&mut BTreeMap<String, BucketData>, i64) -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        YieldOnce(false).await;
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        let fault = {
            let mut faults = self.faults.lock().unwrap_or_else(PoisonError::into_inner);
            faults
                .iter()
                .position(|(at, _)| *at == n)
                .map(|i| faults.remove(i).1)
        };
        match &fault {
            Some(Fault::FailBefore(e)) => return Err(e.clone()),
            Some(Fault::Delay(d)) => tokio::time::sleep(*d).await,
            _ => {}
        }
        let now = self.now();
        let result = {
            let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
            f(&mut buckets, now)
        };
        match fault {
            Some(Fault::FailAfter(e)) => Err(e),
            _ => result,
        }
    }
}

/// Returns `Pending` once, so that joined futures interleave at every storage call.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

fn bucket_mut<'a>(
    buckets: &'a mut BTreeMap<String, BucketData>,
    bucket: &BucketName,
) -> Result<&'a mut BucketData, StorageError> {
    buckets
        .get_mut(bucket.as_str())
        .ok_or_else(|| StorageError::NotFound {
            what: bucket.to_string(),
        })
}

fn etag_of(body: &[u8]) -> String {
    hex::encode(Md5::digest(body))
}

/// The part's base64 SHA-256 when one was declared and matches `body`.
fn sha256_checked(
    part_number: u32,
    body: &[u8],
    declared: Option<&str>,
) -> Result<Option<String>, StorageError> {
    use base64::Engine;
    let Some(declared) = declared else {
        return Ok(None);
    };
    let actual = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(body));
    if declared.trim() == actual {
        Ok(Some(actual))
    } else {
        Err(StorageError::InvalidArgument {
            reason: format!(
                "the x-amz-checksum-sha256 of part {part_number} does not match its bytes"
            ),
        })
    }
}

/// Each stored upload's own id ([`ObjectInfo::version_id`]): a count of this process.
fn new_upload_id() -> String {
    static UPLOADS: AtomicU64 = AtomicU64::new(0);
    UPLOADS.fetch_add(1, Ordering::Relaxed).to_string()
}

impl Storage for MemoryStorage {
    fn capabilities(&self) -> Capabilities {
        self.capabilities
    }

    async fn create_bucket(&self, bucket: &BucketName) -> Result<(), StorageError> {
        self.call(|b, _| {
            b.entry(bucket.as_str().to_owned()).or_default();
            Ok(())
        })
        .await
    }

    async fn head_bucket(&self, bucket: &BucketName) -> Result<(), StorageError> {
        self.call(|b, _| bucket_mut(b, bucket).map(|_| ())).await
    }

    async fn head_object(
        &self,
        bucket: &BucketName,
        key: &str,
    ) -> Result<ObjectInfo, StorageError> {
        self.call(|b, _| {
            bucket_mut(b, bucket)?
                .objects
                .get(key)
                .map(|(_, info)| info.clone())
                .ok_or_else(|| StorageError::not_found(bucket, key))
        })
        .await
    }

    async fn put_object(
        &self,
        bucket: &BucketName,
        key: &str,
        body: Vec<u8>,
        options: &PutOptions,
    ) -> Result<String, StorageError> {
        self.call(|b, now| {
            let etag = etag_of(&body);
            let info = ObjectInfo {
                size: body.len() as u64,
                etag: etag.clone(),
                last_modified: now,
                content_type: options.content_type.clone(),
                metadata: options.metadata.clone(),
                checksum_sha256: None,
                version_id: Some(new_upload_id()),
            };
            bucket_mut(b, bucket)?
                .objects
                .insert(key.to_owned(), (Arc::from(body), info));
            Ok(etag)
        })
        .await
    }

    async fn put_object_if(
        &self,
        bucket: &BucketName,
        key: &str,
        body: Vec<u8>,
        options: &PutOptions,
        condition: &CopyCondition,
    ) -> Result<String, StorageError> {
        let enforce = self.capabilities.conditional_put;
        self.call(|b, now| {
            let objects = &mut bucket_mut(b, bucket)?.objects;
            if enforce {
                let existing = objects.get(key).map(|(_, i)| i.etag.as_str());
                condition.check(existing, bucket.as_str(), key)?;
            }
            let etag = etag_of(&body);
            let info = ObjectInfo {
                size: body.len() as u64,
                etag: etag.clone(),
                last_modified: now,
                content_type: options.content_type.clone(),
                metadata: options.metadata.clone(),
                checksum_sha256: None,
                version_id: Some(new_upload_id()),
            };
            objects.insert(key.to_owned(), (Arc::from(body), info));
            Ok(etag)
        })
        .await
    }

    async fn get_object(&self, bucket: &BucketName, key: &str) -> Result<Vec<u8>, StorageError> {
        self.call(|b, _| {
            bucket_mut(b, bucket)?
                .objects
                .get(key)
                .map(|(body, _)| body.to_vec())
                .ok_or_else(|| StorageError::not_found(bucket, key))
        })
        .await
    }

    async fn copy_object(&self, r: &CopyRequest<'_>) -> Result<Copied, StorageError> {
        let enforce = self.capabilities.conditional_copy;
        let versions = self.capabilities.version_conditions;
        self.call(|b, now| {
            let (body, source) = bucket_mut(b, r.from_bucket)?
                .objects
                .get(r.from_key)
                .cloned()
                .ok_or_else(|| StorageError::not_found(r.from_bucket, r.from_key))?;
            let version_changed = versions
                && r.source_version
                    .is_some_and(|v| v != draft_version(&source));
            if r.source_etag.is_some_and(|e| e != source.etag) || version_changed {
                return Err(StorageError::PreconditionFailed {
                    what: format!("{}/{} changed", r.from_bucket, r.from_key),
                });
            }
            let dest = bucket_mut(b, r.to_bucket)?;
            if enforce {
                let existing = dest.objects.get(r.to_key).map(|(_, i)| i.etag.as_str());
                r.condition
                    .check(existing, r.to_bucket.as_str(), r.to_key)?;
            }
            let (content_type, metadata) = match &r.metadata {
                MetadataDirective::Copy => (source.content_type.clone(), source.metadata.clone()),
                MetadataDirective::Replace {
                    content_type,
                    metadata,
                } => (content_type.clone(), metadata.clone()),
            };
            let info = ObjectInfo {
                last_modified: now,
                content_type,
                metadata,
                ..source.clone()
            };
            dest.objects.insert(r.to_key.to_owned(), (body, info));
            Ok(Copied { etag: source.etag })
        })
        .await
    }

    async fn delete_object(&self, bucket: &BucketName, key: &str) -> Result<(), StorageError> {
        self.call(|b, _| {
            bucket_mut(b, bucket)?.objects.remove(key);
            Ok(())
        })
        .await
    }

    async fn delete_objects(
        &self,
        bucket: &BucketName,
        targets: &[DeleteTarget],
    ) -> Result<Vec<DeleteOutcome>, StorageError> {
        crate::storage::check_delete_batch(targets)?;
        let enforce = self.capabilities.conditional_delete;
        let versions = self.capabilities.version_conditions;
        self.call(|b, _| {
            let data = bucket_mut(b, bucket)?;
            Ok(targets
                .iter()
                .map(|t| {
                    let current = data.objects.get(&t.key).map(|(_, i)| i);
                    let result = if enforce {
                        let unversioned;
                        let t = if versions {
                            t
                        } else {
                            unversioned = DeleteTarget {
                                version: None,
                                ..t.clone()
                            };
                            &unversioned
                        };
                        t.may_delete(bucket.as_str(), current)
                    } else {
                        Ok(())
                    }
                    .map(|()| {
                        data.objects.remove(&t.key);
                    });
                    DeleteOutcome {
                        key: t.key.clone(),
                        result,
                    }
                })
                .collect())
        })
        .await
    }

    async fn list_objects(
        &self,
        bucket: &BucketName,
        prefix: &str,
        continuation: Option<&str>,
        max_keys: u16,
    ) -> Result<ListPage, StorageError> {
        self.call(|b, _| {
            let data = bucket_mut(b, bucket)?;
            let start = continuation.unwrap_or("");
            let matching = data
                .objects
                .range::<str, _>((std::ops::Bound::Excluded(start), std::ops::Bound::Unbounded))
                .filter(|(k, _)| k.starts_with(prefix))
                .map(|(k, (_, i))| ListedObject {
                    key: k.clone(),
                    size: i.size,
                    etag: i.etag.clone(),
                    last_modified: i.last_modified,
                });
            Ok(ListPage::of(matching, max_keys))
        })
        .await
    }

    async fn list_uploads(
        &self,
        bucket: &BucketName,
        prefix: &str,
        continuation: Option<&(String, String)>,
    ) -> Result<UploadPage, StorageError> {
        self.call(|b, _| {
            let data = bucket_mut(b, bucket)?;
            let uploads = data
                .uploads
                .iter()
                .filter(|((key, _), _)| key.starts_with(prefix))
                .filter(|(k, _)| continuation.is_none_or(|c| *k > c))
                .take(1000)
                .map(|((key, id), upload)| Upload {
                    key: key.clone(),
                    upload_id: id.clone(),
                    initiated: upload.initiated,
                })
                .collect::<Vec<_>>();
            let next = (uploads.len() == 1000)
                .then(|| uploads.last().map(|u| (u.key.clone(), u.upload_id.clone())))
                .flatten();
            Ok(UploadPage { uploads, next })
        })
        .await
    }

    async fn create_multipart_upload(
        &self,
        bucket: &BucketName,
        key: &str,
        options: &MultipartOptions,
    ) -> Result<String, StorageError> {
        let id = format!("upload-{}", self.next_upload.fetch_add(1, Ordering::SeqCst));
        self.call(|b, now| {
            bucket_mut(b, bucket)?.uploads.insert(
                (key.to_owned(), id.clone()),
                UploadData::new(now, options.clone()),
            );
            Ok(id)
        })
        .await
    }

    async fn upload_part(
        &self,
        bucket: &BucketName,
        key: &str,
        upload_id: &str,
        part_number: u32,
        body: Vec<u8>,
        checksum_sha256: Option<&str>,
    ) -> Result<Part, StorageError> {
        self.call(|b, _| {
            let upload = upload_mut(bucket_mut(b, bucket)?, key, upload_id)?;
            check_part_number(part_number)?;
            if body.len() as u64 > MAX_PART_SIZE {
                return Err(StorageError::InvalidArgument {
                    reason: format!("part {part_number} is over 5 GiB"),
                });
            }
            let checksum = sha256_checked(part_number, &body, checksum_sha256)?;
            if upload.options.checksum == Some(ChecksumAlgorithm::Sha256) && checksum.is_none() {
                return Err(StorageError::InvalidArgument {
                    reason: format!("part {part_number} needs x-amz-checksum-sha256"),
                });
            }
            let part = Part {
                part_number,
                etag: etag_of(&body),
                size: body.len() as u64,
                checksum_sha256: checksum,
            };
            upload
                .parts
                .insert(part_number, (Arc::from(body), part.clone()));
            Ok(part)
        })
        .await
    }

    async fn list_parts(
        &self,
        bucket: &BucketName,
        key: &str,
        upload_id: &str,
    ) -> Result<Vec<Part>, StorageError> {
        self.call(|b, _| {
            let upload = upload_mut(bucket_mut(b, bucket)?, key, upload_id)?;
            Ok(upload.parts.values().map(|(_, p)| p.clone()).collect())
        })
        .await
    }

    async fn complete_multipart_upload(
        &self,
        bucket: &BucketName,
        key: &str,
        upload_id: &str,
        parts: &[CompletedPart],
    ) -> Result<Completed, StorageError> {
        self.call(|b, now| {
            let data = bucket_mut(b, bucket)?;
            let upload = upload_mut(data, key, upload_id)?;
            let stored: Vec<Part> = upload.parts.values().map(|(_, p)| p.clone()).collect();
            let chosen = check_completion(&stored, parts, upload.options.checksum)?;
            let mut body = Vec::new();
            for part in &chosen {
                if let Some((bytes, _)) = upload.parts.get(&part.part_number) {
                    body.extend_from_slice(bytes);
                }
            }
            let completed = Completed {
                etag: multipart_etag(chosen.iter().map(|p| p.etag.as_str())),
                size: body.len() as u64,
            };
            let info = ObjectInfo {
                size: completed.size,
                etag: completed.etag.clone(),
                last_modified: now,
                content_type: upload.options.content_type.clone(),
                metadata: upload.options.metadata.clone(),
                checksum_sha256: None,
                version_id: Some(new_upload_id()),
            };
            data.uploads.remove(&(key.to_owned(), upload_id.to_owned()));
            data.objects.insert(key.to_owned(), (Arc::from(body), info));
            Ok(completed)
        })
        .await
    }

    async fn abort_upload(
        &self,
        bucket: &BucketName,
        key: &str,
        upload_id: &str,
    ) -> Result<(), StorageError> {
        self.call(|b, _| {
            bucket_mut(b, bucket)?
                .uploads
                .remove(&(key.to_owned(), upload_id.to_owned()));
            Ok(())
        })
        .await
    }
}
