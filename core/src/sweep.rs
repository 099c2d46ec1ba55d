//! Sweep: removes drafts older than the lifetime from the draft bucket, streaming the listing
//! page by page and deleting in batches of at most 1000, several batches at once, recording
//! per-key failures and going on; alongside, it aborts multipart uploads older than the
//! lifetime. It never touches the main bucket.
//!
//! The listing and the deletes overlap: while batches are being deleted the next page is
//! listed, so a sweep costs about the slower of the two, not their sum. Memory stays bounded by
//! one listing page plus the batches in flight ([`SweepOptions::concurrency`] of
//! [`SweepOptions::batch_size`] keys): the next page is asked for only once every key of the
//! last one is in a batch that was sent, or in the one batch being filled.
//!
//! A draft is deleted only if it still has the ETag it was listed with (where the store
//! enforces conditional deletes), so one re-uploaded after the listing, and so young, stays.
//! Each listed key goes in exactly one batch, so no key is deleted twice by one sweep.

use crate::draft::is_expired;
use crate::storage::{
    DeleteOutcome, DeleteTarget, ListPage, ListedObject, Storage, StorageError, MAX_DELETE_BATCH,
};
use crate::BucketName;
use futures_util::future::{poll_fn, FusedFuture, FutureExt};
use futures_util::stream::{FuturesUnordered, StreamExt};
use futures_util::task::AtomicWaker;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::Poll;

/// Batch deletes in flight at once unless [`SweepOptions::concurrency`] says otherwise: one,
/// while the next page is listed. Stores that delete batches in parallel (AWS S3) go faster with
/// more; SeaweedFS answers parallel batch deletes more slowly than the same batches one after the
/// other (measured with `bench/sweep.sh`), so more is a choice, not the default.
pub const DEFAULT_SWEEP_CONCURRENCY: usize = 1;

/// At most this many batch deletes in flight at once.
pub const MAX_SWEEP_CONCURRENCY: usize = 64;

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
    /// Batch deletes in flight at once, 1..=[`MAX_SWEEP_CONCURRENCY`] (1: one after the other,
    /// still overlapping the listing).
    pub concurrency: usize,
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
            concurrency: DEFAULT_SWEEP_CONCURRENCY,
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
    /// Drafts listed (DraftStore's own records under the reserved prefix are not drafts: see
    /// [`SweepReport::reserved`]).
    pub scanned: u64,
    /// Objects listed under [`crate::events::RESERVED_PREFIX`] (the event queue, kept part
    /// checksums): DraftStore's own records, never deleted, not counted in `scanned`.
    pub reserved: u64,
    /// Drafts older than the lifetime.
    pub expired: u64,
    /// Bytes of the drafts older than the lifetime: what the sweep frees if every delete
    /// succeeds (a dry run's figure; see [`SweepReport::bytes_freed`] for what went).
    pub expired_bytes: u64,
    /// Drafts deleted.
    pub deleted: u64,
    /// Expired drafts whose delete failed.
    pub failed: u64,
    /// Listed as expired but changed since (re-uploaded): left in place.
    pub changed: u64,
    /// Bytes of the deleted drafts.
    pub bytes_freed: u64,
    /// Stale multipart uploads found (older than the lifetime): what a dry run would abort.
    pub multipart_stale: u64,
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

/// The pure selection: the objects older than `lifetime` at `now`. DraftStore's own keys
/// (the event queue under [`crate::events::RESERVED_PREFIX`]) are never drafts.
pub fn select_expired(
    objects: &[ListedObject],
    now: i64,
    lifetime: u64,
) -> impl Iterator<Item = &ListedObject> {
    objects.iter().filter(move |o| {
        is_expired(o.last_modified, now, lifetime) && !crate::events::is_reserved(&o.key)
    })
}

/// Keys of one batch delete with the size each frees.
#[derive(Debug, Default)]
struct Batch {
    targets: Vec<DeleteTarget>,
    sizes: Vec<u64>,
}

/// What the sweep waits for: a listing page or a batch delete's answer.
enum Event {
    Page(Result<ListPage, StorageError>),
    Deleted(Batch, Result<Vec<DeleteOutcome>, StorageError>),
}

/// Keys selected but not yet sent: full batches waiting for a free slot, and the one filling.
struct Pending {
    batch_size: usize,
    ready: VecDeque<Batch>,
    filling: Batch,
}

impl Pending {
    fn push(&mut self, object: &ListedObject) {
        self.filling.targets.push(DeleteTarget {
            key: object.key.clone(),
            etag: Some(object.etag.clone()),
            version: None,
        });
        self.filling.sizes.push(object.size);
        if self.filling.targets.len() >= self.batch_size {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if !self.filling.targets.is_empty() {
            self.ready.push_back(std::mem::take(&mut self.filling));
        }
    }
}

/// What a sweep reports as it goes (the gateway queues its webhooks here), so nothing has to
/// wrap the store to see it. Called after the store answered; the sweep waits for it.
pub trait SweepObserver: Sync {
    /// A batch delete of `targets` in `bucket` answered `outcomes` (one per key, any order).
    fn deleted(
        &self,
        bucket: &BucketName,
        targets: &[DeleteTarget],
        outcomes: &[DeleteOutcome],
    ) -> impl Future<Output = ()> + Send;

    /// The stale multipart upload `upload_id` of `key` in `bucket` was aborted.
    fn aborted(
        &self,
        bucket: &BucketName,
        key: &str,
        upload_id: &str,
    ) -> impl Future<Output = ()> + Send;
}

/// Nobody watching.
impl SweepObserver for () {
    fn deleted(
        &self,
        _bucket: &BucketName,
        _targets: &[DeleteTarget],
        _outcomes: &[DeleteOutcome],
    ) -> impl Future<Output = ()> + Send {
        std::future::ready(())
    }

    fn aborted(
        &self,
        _bucket: &BucketName,
        _key: &str,
        _upload_id: &str,
    ) -> impl Future<Output = ()> + Send {
        std::future::ready(())
    }
}

/// Runs one sweep of `bucket` (the draft bucket). `keep_going` is asked before each page (a
/// deadline); `on_expired` sees each expired object (dry-run listings). Up to
/// `options.concurrency` batch deletes run at once, overlapping the listing of the next page;
/// after a stop or a listing error the batches already selected are still deleted.
pub async fn sweep<S: Storage>(
    storage: &S,
    bucket: &BucketName,
    options: SweepOptions,
    keep_going: &(dyn Fn() -> bool + Sync),
    on_expired: &mut (dyn FnMut(&ListedObject) + Send),
) -> SweepReport {
    sweep_with(storage, bucket, options, keep_going, on_expired, &()).await
}

/// [`sweep()`], telling `observer` each batch delete's answer and each aborted upload.
pub async fn sweep_with<S: Storage, O: SweepObserver>(
    storage: &S,
    bucket: &BucketName,
    options: SweepOptions,
    keep_going: &(dyn Fn() -> bool + Sync),
    on_expired: &mut (dyn FnMut(&ListedObject) + Send),
    observer: &O,
) -> SweepReport {
    // Stale multipart uploads are looked for once the listing of drafts is over, while its
    // last batches are being deleted: usually there are none, and the listing that says so
    // then costs no time. Not after a stop (the next run goes on).
    let gate = Gate::default();
    let uploads = async {
        if gate.wait().await {
            abort_stale_uploads(storage, bucket, options, keep_going, observer).await
        } else {
            Uploads::default()
        }
    };
    let (mut report, uploads) = futures_util::future::join(
        sweep_objects(
            storage, bucket, options, keep_going, on_expired, &gate, observer,
        ),
        uploads,
    )
    .await;
    // A store whose listing of drafts hides DraftStore's own records (the embedded store)
    // showed none: count them from their own listing, so both stores report the same.
    if report.reserved == 0 && report.listing_error.is_none() && !report.stopped_early {
        report.reserved = count_reserved(storage, bucket).await.unwrap_or(0);
    }
    report.multipart_stale = uploads.stale;
    report.multipart_aborted = uploads.aborted;
    report.multipart_failed = uploads.failed;
    report.stopped_early |= uploads.stopped_early;
    if report.listing_error.is_none() {
        report.listing_error = uploads.listing_error;
    }
    report
}

/// Lets the look for stale uploads start (`true`) or skip it (`false`), once.
#[derive(Default)]
struct Gate {
    /// 0: closed, 1: open, 2: skip.
    state: AtomicU8,
    waker: AtomicWaker,
}

impl Gate {
    fn set(&self, go: bool) {
        let _ = self.state.compare_exchange(
            0,
            if go { 1 } else { 2 },
            Ordering::AcqRel,
            Ordering::Acquire,
        );
        self.waker.wake();
    }

    async fn wait(&self) -> bool {
        poll_fn(|cx| {
            self.waker.register(cx.waker());
            match self.state.load(Ordering::Acquire) {
                0 => Poll::Pending,
                state => Poll::Ready(state == 1),
            }
        })
        .await
    }
}

async fn sweep_objects<S: Storage, O: SweepObserver>(
    storage: &S,
    bucket: &BucketName,
    options: SweepOptions,
    keep_going: &(dyn Fn() -> bool + Sync),
    on_expired: &mut (dyn FnMut(&ListedObject) + Send),
    gate: &Gate,
    observer: &O,
) -> SweepReport {
    let page_size = options.page_size.clamp(1, 1000);
    let concurrency = options.concurrency.clamp(1, MAX_SWEEP_CONCURRENCY);
    let mut report = SweepReport::default();
    let mut pending = Pending {
        batch_size: options.batch_size.clamp(1, MAX_DELETE_BATCH),
        ready: VecDeque::new(),
        filling: Batch::default(),
    };
    let list = |token: Option<String>| async move {
        storage
            .list_objects(bucket, "", token.as_deref(), page_size)
            .await
    };
    let mut listing = pin!(futures_util::future::Fuse::terminated());
    // The page to list next (`Some(None)`: the first); `None` once the listing is over.
    let mut next: Option<Option<String>> = Some(None);
    let mut deletes = FuturesUnordered::new();
    loop {
        while deletes.len() < concurrency {
            let Some(batch) = pending.ready.pop_front() else {
                break;
            };
            deletes.push(delete(storage, bucket, batch, observer));
        }
        if listing.is_terminated() && pending.ready.is_empty() {
            match next.take() {
                Some(token) if keep_going() => listing.set(list(token).fuse()),
                Some(_) => {
                    report.stopped_early = true;
                    gate.set(false);
                    pending.flush();
                }
                None => {
                    gate.set(true);
                    pending.flush();
                }
            }
        }
        // Nothing in flight: finish, or go round to send what is ready or list what is next.
        if listing.is_terminated() && deletes.is_empty() {
            if pending.ready.is_empty() && next.is_none() {
                break;
            }
            continue;
        }
        match next_event(listing.as_mut(), &mut deletes).await {
            Event::Page(Ok(page)) => {
                let reserved = page
                    .objects
                    .iter()
                    .filter(|o| crate::events::is_reserved(&o.key))
                    .count() as u64;
                report.reserved += reserved;
                report.scanned += page.objects.len() as u64 - reserved;
                for object in select_expired(&page.objects, options.now, options.lifetime) {
                    report.expired += 1;
                    report.expired_bytes += object.size;
                    on_expired(object);
                    if !options.dry_run {
                        pending.push(object);
                    }
                }
                next = page.next.map(Some);
            }
            Event::Page(Err(e)) => report.listing_error = Some(e),
            Event::Deleted(batch, result) => tally(&mut report, &batch, result),
        }
    }
    gate.set(false);
    report
}

/// The next page or batch answer, whichever comes first. Batches are polled first: they were
/// sent before the page was asked for. Only awaited while something is in flight.
fn next_event<'a, L, D>(
    mut listing: Pin<&'a mut futures_util::future::Fuse<L>>,
    deletes: &'a mut FuturesUnordered<D>,
) -> impl Future<Output = Event> + 'a
where
    L: Future<Output = Result<ListPage, StorageError>>,
    D: Future<Output = (Batch, Result<Vec<DeleteOutcome>, StorageError>)>,
{
    poll_fn(move |cx| {
        if let Poll::Ready(Some((batch, result))) = deletes.poll_next_unpin(cx) {
            return Poll::Ready(Event::Deleted(batch, result));
        }
        listing.as_mut().poll(cx).map(Event::Page)
    })
}

async fn delete<S: Storage, O: SweepObserver>(
    storage: &S,
    bucket: &BucketName,
    batch: Batch,
    observer: &O,
) -> (Batch, Result<Vec<DeleteOutcome>, StorageError>) {
    let result = storage.delete_objects(bucket, &batch.targets).await;
    if let Ok(outcomes) = &result {
        observer.deleted(bucket, &batch.targets, outcomes).await;
    }
    (batch, result)
}

/// Counts one batch's answer: per key deleted, changed since listed, or failed.
fn tally(
    report: &mut SweepReport,
    batch: &Batch,
    result: Result<Vec<DeleteOutcome>, StorageError>,
) {
    let outcomes = match result {
        Ok(outcomes) => outcomes,
        Err(e) => {
            for target in &batch.targets {
                report.fail(&target.key, e.clone());
            }
            return;
        }
    };
    let by_key: HashMap<&str, &Result<(), StorageError>> = outcomes
        .iter()
        .map(|o| (o.key.as_str(), &o.result))
        .collect();
    for (target, size) in batch.targets.iter().zip(&batch.sizes) {
        match by_key.get(target.key.as_str()) {
            Some(Ok(())) => {
                report.deleted += 1;
                report.bytes_freed += size;
            }
            Some(Err(StorageError::PreconditionFailed { .. })) => report.changed += 1,
            Some(Err(e)) => report.fail(&target.key, (*e).clone()),
            None => report.fail(
                &target.key,
                StorageError::Backend {
                    reason: "no result for this key in the batch delete".into(),
                },
            ),
        }
    }
}

/// Objects under [`crate::events::RESERVED_PREFIX`], listed page by page.
async fn count_reserved<S: Storage>(storage: &S, bucket: &BucketName) -> Result<u64, StorageError> {
    let mut count = 0;
    let mut continuation: Option<String> = None;
    loop {
        let page = storage
            .list_objects(
                bucket,
                crate::events::RESERVED_PREFIX,
                continuation.as_deref(),
                1000,
            )
            .await?;
        count += page.objects.len() as u64;
        continuation = page.next;
        if continuation.is_none() {
            return Ok(count);
        }
    }
}

/// What the look for stale multipart uploads did.
#[derive(Debug, Default)]
struct Uploads {
    stale: u64,
    aborted: u64,
    failed: u64,
    stopped_early: bool,
    listing_error: Option<StorageError>,
}

async fn abort_stale_uploads<S: Storage, O: SweepObserver>(
    storage: &S,
    bucket: &BucketName,
    options: SweepOptions,
    keep_going: &(dyn Fn() -> bool + Sync),
    observer: &O,
) -> Uploads {
    let mut done = Uploads::default();
    let mut continuation = None;
    loop {
        if !keep_going() {
            done.stopped_early = true;
            return done;
        }
        let page = match storage
            .list_uploads(bucket, "", continuation.as_ref())
            .await
        {
            Ok(page) => page,
            Err(e) => {
                done.listing_error = Some(e);
                return done;
            }
        };
        for upload in page
            .uploads
            .iter()
            .filter(|u| is_expired(u.initiated, options.now, options.lifetime))
        {
            done.stale += 1;
            if options.dry_run {
                continue;
            }
            match storage
                .abort_upload(bucket, &upload.key, &upload.upload_id)
                .await
            {
                Ok(()) => {
                    done.aborted += 1;
                    observer
                        .aborted(bucket, &upload.key, &upload.upload_id)
                        .await;
                }
                Err(_) => done.failed += 1,
            }
        }
        continuation = page.next;
        if continuation.is_none() {
            return done;
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
