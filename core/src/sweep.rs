//! Sweep: removes drafts older than the lifetime from the draft bucket, streaming the listing
//! page by page (memory bounded by one page plus one delete batch), deleting in batches of at
//! most 1000, recording per-key failures and going on. It never touches the main bucket.
//!
//! A draft is deleted only if it still has the ETag it was listed with (where the store
//! enforces conditional deletes), so one re-uploaded after the listing, and so young, stays.

use crate::draft::is_expired;
use crate::storage::{DeleteTarget, ListedObject, Storage, StorageError, MAX_DELETE_BATCH};
use crate::BucketName;

/// How one sweep runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SweepOptions {
    /// Unix seconds.
    pub now: i64,
    /// Seconds a draft may live.
    pub lifetime: u64,
    /// Count and report what would go; delete nothing.
    pub dry_run: bool,
    /// Keys per batch delete, 1..=1000.
    pub batch_size: usize,
    /// Keys per listing page, 1..=1000.
    pub page_size: u16,
}

impl SweepOptions {
    /// A real sweep at `now` (unix seconds) of drafts older than `lifetime` seconds, in batches
    /// and pages of 1000.
    #[must_use]
    pub const fn new(now: i64, lifetime: u64) -> Self {
        Self {
            now,
            lifetime,
            dry_run: false,
            batch_size: MAX_DELETE_BATCH,
            page_size: 1000,
        }
    }
}

/// A key that could not be deleted, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepFailure {
    /// The key.
    pub key: String,
    /// Why it stayed.
    pub error: StorageError,
}

/// At most this many failures are kept in a report (the counts stay exact).
pub const MAX_REPORTED_FAILURES: usize = 100;

/// What one sweep did; the counts are exact.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Drafts listed.
    pub scanned: u64,
    /// Drafts older than the lifetime.
    pub expired: u64,
    /// Drafts deleted.
    pub deleted: u64,
    /// Expired drafts whose delete failed.
    pub failed: u64,
    /// Listed as expired but changed since (re-uploaded): left in place.
    pub changed: u64,
    /// Bytes of the deleted drafts.
    pub bytes_freed: u64,
    /// Stale multipart uploads aborted.
    pub multipart_aborted: u64,
    /// Stale multipart uploads whose abort failed.
    pub multipart_failed: u64,
    /// Up to [`MAX_REPORTED_FAILURES`] of the failed deletes.
    pub failures: Vec<SweepFailure>,
    /// `keep_going` said stop before the listing ended.
    pub stopped_early: bool,
    /// The listing itself failed (after the backend's retries); the counts say how far it got.
    pub listing_error: Option<StorageError>,
}

impl SweepReport {
    /// Everything expired was dealt with.
    #[must_use]
    pub fn is_clean(&self) -> bool {
        self.failed == 0 && self.multipart_failed == 0 && self.listing_error.is_none()
    }

    fn fail(&mut self, key: &str, error: StorageError) {
        self.failed += 1;
        if self.failures.len() < MAX_REPORTED_FAILURES {
            self.failures.push(SweepFailure {
                key: key.to_owned(),
                error,
            });
        }
    }
}

/// The pure selection: the objects older than `lifetime` at `now`.
pub fn select_expired(
    objects: &[ListedObject],
    now: i64,
    lifetime: u64,
) -> impl Iterator<Item = &ListedObject> {
    objects
        .iter()
        .filter(move |o| is_expired(o.last_modified, now, lifetime))
}

/// Runs one sweep of `bucket` (the draft bucket). `keep_going` is asked before each page (a
/// deadline); `on_expired` sees each expired object (dry-run listings).
pub async fn sweep<S: Storage>(
    storage: &S,
    bucket: &BucketName,
    options: SweepOptions,
    keep_going: &(dyn Fn() -> bool + Sync),
    on_expired: &mut (dyn FnMut(&ListedObject) + Send),
) -> SweepReport {
    let batch_size = options.batch_size.clamp(1, MAX_DELETE_BATCH);
    let page_size = options.page_size.clamp(1, 1000);
    let mut report = SweepReport::default();
    let mut batch: Vec<(DeleteTarget, u64)> = Vec::with_capacity(batch_size);
    let mut continuation: Option<String> = None;
    loop {
        if !keep_going() {
            report.stopped_early = true;
            break;
        }
        let page = match storage
            .list_objects(bucket, "", continuation.as_deref(), page_size)
            .await
        {
            Ok(page) => page,
            Err(e) => {
                report.listing_error = Some(e);
                break;
            }
        };
        report.scanned += page.objects.len() as u64;
        for object in select_expired(&page.objects, options.now, options.lifetime) {
            report.expired += 1;
            on_expired(object);
            if options.dry_run {
                continue;
            }
            batch.push((
                DeleteTarget {
                    key: object.key.clone(),
                    etag: Some(object.etag.clone()),
                },
                object.size,
            ));
            if batch.len() >= batch_size {
                delete_batch(storage, bucket, &mut batch, &mut report).await;
            }
        }
        continuation = page.next;
        if continuation.is_none() {
            break;
        }
    }
    delete_batch(storage, bucket, &mut batch, &mut report).await;
    if !report.stopped_early {
        abort_stale_uploads(storage, bucket, options, keep_going, &mut report).await;
    }
    report
}

async fn delete_batch<S: Storage>(
    storage: &S,
    bucket: &BucketName,
    batch: &mut Vec<(DeleteTarget, u64)>,
    report: &mut SweepReport,
) {
    if batch.is_empty() {
        return;
    }
    let targets: Vec<DeleteTarget> = batch.iter().map(|(t, _)| t.clone()).collect();
    match storage.delete_objects(bucket, &targets).await {
        Ok(outcomes) => {
            for (target, size) in batch.iter() {
                match outcomes
                    .iter()
                    .find(|o| o.key == target.key)
                    .map(|o| &o.result)
                {
                    Some(Ok(())) => {
                        report.deleted += 1;
                        report.bytes_freed += size;
                    }
                    Some(Err(StorageError::PreconditionFailed { .. })) => report.changed += 1,
                    Some(Err(e)) => report.fail(&target.key, e.clone()),
                    None => report.fail(
                        &target.key,
                        StorageError::Backend {
                            reason: "no result for this key in the batch delete".into(),
                        },
                    ),
                }
            }
        }
        Err(e) => {
            for (target, _) in batch.iter() {
                report.fail(&target.key, e.clone());
            }
        }
    }
    batch.clear();
}

async fn abort_stale_uploads<S: Storage>(
    storage: &S,
    bucket: &BucketName,
    options: SweepOptions,
    keep_going: &(dyn Fn() -> bool + Sync),
    report: &mut SweepReport,
) {
    let mut continuation = None;
    loop {
        if !keep_going() {
            report.stopped_early = true;
            return;
        }
        let page = match storage.list_uploads(bucket, continuation.as_ref()).await {
            Ok(page) => page,
            Err(e) => {
                report.listing_error = Some(e);
                return;
            }
        };
        for upload in page
            .uploads
            .iter()
            .filter(|u| is_expired(u.initiated, options.now, options.lifetime))
        {
            if options.dry_run {
                continue;
            }
            match storage
                .abort_upload(bucket, &upload.key, &upload.upload_id)
                .await
            {
                Ok(()) => report.multipart_aborted += 1,
                Err(_) => report.multipart_failed += 1,
            }
        }
        continuation = page.next;
        if continuation.is_none() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(key: &str, at: i64) -> ListedObject {
        ListedObject {
            key: key.into(),
            size: 1,
            etag: "e".into(),
            last_modified: at,
        }
    }

    #[test]
    fn selection_at_its_edges() {
        let objects = [
            listed("old", 0),
            listed("edge", 100),
            listed("young", 150),
            listed("future", 500),
        ];
        let picked: Vec<&str> = select_expired(&objects, 200, 100)
            .map(|o| o.key.as_str())
            .collect();
        assert_eq!(
            picked,
            ["old"],
            "exactly the lifetime old is not yet expired"
        );
        let picked: Vec<&str> = select_expired(&objects, 201, 100)
            .map(|o| o.key.as_str())
            .collect();
        assert_eq!(picked, ["old", "edge"]);
        assert_eq!(
            select_expired(&objects, 200, 0).count(),
            3,
            "lifetime 0: anything older than now"
        );
        assert_eq!(select_expired(&[], 200, 0).count(), 0);
    }
}
