//! Sweep with several batch deletes in flight, on a real backend seen through [`Watched`], a
//! storage that forwards every call and records what the sweep sent: each key is sent once,
//! failures are counted per key, a draft re-uploaded after the listing stays, and the keys held
//! stay within one page plus the batches in flight.

use super::bucket;
use crate::{
    sweep, BucketName, Capabilities, Completed, CompletedPart, Copied, CopyCondition, CopyRequest,
    DeleteOutcome, DeleteTarget, ListPage, MultipartOptions, ObjectInfo, Part, PutOptions, Storage,
    StorageError, SweepOptions, UploadPage,
};
use std::sync::{Mutex, PoisonError};

/// A batch holding this key fails as a whole (the request never reaches the store).
const FAILING: &str = "c/010";
/// Re-uploaded (new content, so a new ETag) just before its batch is sent.
const REUPLOADED: &str = "c/031";
const DRAFTS: usize = 47;

#[derive(Default)]
struct Seen {
    /// Every key sent in a batch delete, in order.
    sent: Vec<String>,
    /// The batch that held [`FAILING`].
    failed_batch: Vec<String>,
    in_flight: usize,
    max_in_flight: usize,
    /// Listings started while a batch delete was in flight.
    overlapped_listings: usize,
    /// Keys listed and not yet answered by a batch delete, and the most at once.
    held: usize,
    max_held: usize,
}

/// Forwards to `inner`, recording the sweep's batch deletes and listings.
struct Watched<'a, S> {
    inner: &'a S,
    seen: Mutex<Seen>,
}

impl<S> Watched<'_, S> {
    fn seen<T>(&self, f: impl FnOnce(&mut Seen) -> T) -> T {
        f(&mut self.seen.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// Returns `Pending` once, so batches sent together are in flight together on every backend.
async fn yield_once() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            std::task::Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await;
}

impl<S: Storage> Storage for Watched<'_, S> {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn create_bucket(&self, bucket: &BucketName) -> Result<(), StorageError> {
        self.inner.create_bucket(bucket).await
    }
    async fn head_bucket(&self, bucket: &BucketName) -> Result<(), StorageError> {
        self.inner.head_bucket(bucket).await
    }
    async fn head_object(&self, b: &BucketName, key: &str) -> Result<ObjectInfo, StorageError> {
        self.inner.head_object(b, key).await
    }
    async fn put_object(
        &self,
        b: &BucketName,
        key: &str,
        body: Vec<u8>,
        options: &PutOptions,
    ) -> Result<String, StorageError> {
        self.inner.put_object(b, key, body, options).await
    }
    async fn put_object_if(
        &self,
        b: &BucketName,
        key: &str,
        body: Vec<u8>,
        options: &PutOptions,
        condition: &CopyCondition,
    ) -> Result<String, StorageError> {
        self.inner
            .put_object_if(b, key, body, options, condition)
            .await
    }
    async fn get_object(&self, b: &BucketName, key: &str) -> Result<Vec<u8>, StorageError> {
        self.inner.get_object(b, key).await
    }
    async fn copy_object(&self, request: &CopyRequest<'_>) -> Result<Copied, StorageError> {
        self.inner.copy_object(request).await
    }
    async fn delete_object(&self, b: &BucketName, key: &str) -> Result<(), StorageError> {
        self.inner.delete_object(b, key).await
    }
    async fn delete_version(
        &self,
        b: &BucketName,
        key: &str,
        id: &str,
    ) -> Result<(), StorageError> {
        self.inner.delete_version(b, key, id).await
    }
    async fn delete_objects(
        &self,
        b: &BucketName,
        targets: &[DeleteTarget],
    ) -> Result<Vec<DeleteOutcome>, StorageError> {
        let keys: Vec<String> = targets.iter().map(|t| t.key.clone()).collect();
        self.seen(|s| {
            s.sent.extend(keys.iter().cloned());
            s.in_flight += 1;
            s.max_in_flight = s.max_in_flight.max(s.in_flight);
        });
        yield_once().await;
        let result = if keys.iter().any(|k| k == FAILING) {
            self.seen(|s| s.failed_batch.clone_from(&keys));
            Err(StorageError::Unavailable {
                reason: "injected: the batch never arrived".into(),
            })
        } else {
            if keys.iter().any(|k| k == REUPLOADED) {
                let fresh = b"re-uploaded after the listing".to_vec();
                let options = PutOptions::default();
                self.inner
                    .put_object(b, REUPLOADED, fresh, &options)
                    .await?;
            }
            self.inner.delete_objects(b, targets).await
        };
        self.seen(|s| {
            s.in_flight -= 1;
            s.held -= keys.len();
        });
        result
    }
    async fn list_objects(
        &self,
        b: &BucketName,
        prefix: &str,
        continuation: Option<&str>,
        max_keys: u16,
    ) -> Result<ListPage, StorageError> {
        self.seen(|s| s.overlapped_listings += usize::from(s.in_flight > 0));
        let page = self
            .inner
            .list_objects(b, prefix, continuation, max_keys)
            .await?;
        self.seen(|s| {
            s.held += page.objects.len();
            s.max_held = s.max_held.max(s.held);
        });
        Ok(page)
    }
    async fn list_uploads(
        &self,
        b: &BucketName,
        prefix: &str,
        continuation: Option<&(String, String)>,
    ) -> Result<UploadPage, StorageError> {
        self.inner.list_uploads(b, prefix, continuation).await
    }
    async fn create_multipart_upload(
        &self,
        b: &BucketName,
        key: &str,
        options: &MultipartOptions,
    ) -> Result<String, StorageError> {
        self.inner.create_multipart_upload(b, key, options).await
    }
    async fn upload_part(
        &self,
        b: &BucketName,
        key: &str,
        id: &str,
        part_number: u32,
        body: Vec<u8>,
        checksum_sha256: Option<&str>,
    ) -> Result<Part, StorageError> {
        self.inner
            .upload_part(b, key, id, part_number, body, checksum_sha256)
            .await
    }
    async fn list_parts(
        &self,
        b: &BucketName,
        key: &str,
        id: &str,
    ) -> Result<Vec<Part>, StorageError> {
        self.inner.list_parts(b, key, id).await
    }
    async fn complete_multipart_upload(
        &self,
        b: &BucketName,
        key: &str,
        id: &str,
        parts: &[CompletedPart],
    ) -> Result<Completed, StorageError> {
        self.inner
            .complete_multipart_upload(b, key, id, parts)
            .await
    }
    async fn abort_upload(&self, b: &BucketName, key: &str, id: &str) -> Result<(), StorageError> {
        self.inner.abort_upload(b, key, id).await
    }
}

/// Sweep with batch deletes in flight at once: 47 expired drafts, pages of 10, batches of 3,
/// 4 batches at once; one batch fails, one draft is re-uploaded after the listing.
pub async fn sweep_batches<S: Storage>(storage: &S, prefix: &str) {
    let b = bucket(storage, prefix, "swb").await;
    for i in 0..DRAFTS {
        let key = format!("c/{i:03}");
        storage
            .put_object(&b, &key, b"draft".to_vec(), &PutOptions::default())
            .await
            .unwrap();
    }
    let stored_at = storage
        .head_object(&b, "c/000")
        .await
        .unwrap()
        .last_modified;
    let options = SweepOptions {
        page_size: 10,
        batch_size: 3,
        concurrency: 4,
        ..SweepOptions::new(stored_at + 3600, 60)
    };
    let watched = Watched {
        inner: storage,
        seen: Mutex::default(),
    };
    let report = sweep(&watched, &b, options, &|| true, &mut |_| {}).await;
    let seen = watched
        .seen
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner);
    let conditional = storage.capabilities().conditional_delete;

    let mut once = seen.sent.clone();
    once.sort();
    once.dedup();
    assert_eq!(once.len(), DRAFTS, "every key sent once: {:?}", seen.sent);
    assert_eq!(
        seen.sent.len(),
        DRAFTS,
        "no key sent twice: {:?}",
        seen.sent
    );
    assert!(seen.failed_batch.contains(&FAILING.to_owned()));
    let changed = u64::from(conditional);
    let failed = seen.failed_batch.len() as u64;
    assert_eq!(
        (
            report.scanned,
            report.expired,
            report.failed,
            report.changed
        ),
        (DRAFTS as u64, DRAFTS as u64, failed, changed),
        "{report:?}"
    );
    assert_eq!(
        report.deleted,
        DRAFTS as u64 - failed - changed,
        "{report:?}"
    );
    let mut reported: Vec<String> = report.failures.iter().map(|f| f.key.clone()).collect();
    reported.sort();
    assert_eq!(reported, seen.failed_batch, "failures name their keys");
    assert!(report.failures.iter().all(|f| f.error.is_retryable()));
    assert!(!report.is_clean());

    assert!(
        (2..=4).contains(&seen.max_in_flight),
        "batches in flight at once: {}",
        seen.max_in_flight
    );
    assert!(seen.overlapped_listings > 0, "the listing overlaps deletes");
    assert!(
        seen.max_held <= 10 + (4 + 1) * 3,
        "held one page plus the batches in flight, not {}",
        seen.max_held
    );

    let left = storage.list_objects(&b, "", None, 1000).await.unwrap();
    let mut expected_left = seen.failed_batch.clone();
    if conditional {
        expected_left.push(REUPLOADED.to_owned());
        let body = storage.get_object(&b, REUPLOADED).await.unwrap();
        assert_eq!(
            body, b"re-uploaded after the listing",
            "the re-upload stays"
        );
    }
    expected_left.sort();
    let left: Vec<String> = left.objects.into_iter().map(|o| o.key).collect();
    assert_eq!(
        left, expected_left,
        "failed batch and re-upload stay, the rest went"
    );
}
