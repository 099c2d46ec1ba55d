//! Events of sweep: [`Emitting`] watches a sweep (core's `SweepObserver`) and queues one
//! `draft.expired` event per batch delete (the keys it deleted) and one `multipart.aborted` per
//! aborted upload. Written after the store answered: a sweep killed between a delete and its
//! event loses that event (the drafts were expiring anyway); confirm's events never are.
//! Sweep without webhooks has no observer: nothing is added to its hot path.
//! [`uploaded`] queues `draft.uploaded` for the embedded store (S3 uploads bypass DraftStore).

use super::queue::{self, Record};
use draftstore_core::events::{event_id, EventType};
use draftstore_core::{BucketName, DeleteOutcome, DeleteTarget, Storage, SweepObserver};
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};

/// Queues sweep's events in `queue_bucket` (the draft bucket) of `store`.
pub struct Emitting<'a, S> {
    /// The store holding the queue.
    pub store: &'a S,
    /// Where the queue lives.
    pub queue_bucket: BucketName,
}

impl<S: Storage> Emitting<'_, S> {
    async fn emit(&self, kind: EventType, id: String, data: serde_json::Value) {
        let record = Record::new(id, kind, super::now_ms(), data);
        if let Err(e) = queue::enqueue(self.store, &self.queue_bucket, &record).await {
            tracing::warn!(error = %e, r#type = kind.as_str(), "cannot queue the event");
        }
    }
}

impl<S: Storage> SweepObserver for Emitting<'_, S> {
    async fn deleted(&self, b: &BucketName, targets: &[DeleteTarget], outcomes: &[DeleteOutcome]) {
        let deleted: HashSet<&str> = outcomes
            .iter()
            .filter(|o| o.result.is_ok())
            .map(|o| o.key.as_str())
            .collect();
        if deleted.is_empty() {
            return;
        }
        // In the order sent; the id covers the keys and the versions (ETags) they had.
        let gone: Vec<&DeleteTarget> = targets
            .iter()
            .filter(|t| deleted.contains(t.key.as_str()))
            .collect();
        let keys: Vec<&str> = gone.iter().map(|t| t.key.as_str()).collect();
        let mut parts = vec![b.as_str()];
        parts.extend(keys.iter().copied());
        parts.extend(gone.iter().map(|t| t.etag.as_deref().unwrap_or("")));
        let id = event_id(EventType::DraftExpired, &parts);
        let data = serde_json::json!({ "bucket": b.as_str(), "keys": keys });
        self.emit(EventType::DraftExpired, id, data).await;
    }

    async fn aborted(&self, b: &BucketName, key: &str, upload_id: &str) {
        let id = event_id(EventType::MultipartAborted, &[b.as_str(), key, upload_id]);
        let data = serde_json::json!({ "bucket": b.as_str(), "key": key, "upload_id": upload_id });
        self.emit(EventType::MultipartAborted, id, data).await;
    }
}

/// Uploads announced by this process: with the time, part of each `draft.uploaded` id.
static UPLOADS: AtomicU64 = AtomicU64::new(0);

/// Queues `draft.uploaded` for an upload the embedded store stored in `bucket` (the draft
/// bucket; others are ignored). Written just after the upload answered: a crash in between
/// loses it. Called once per stored upload, so each has its own id (the key, the ETag, the
/// time and a count of this process: one process owns an embedded store): the same bytes
/// uploaded again are a new event, not a duplicate a receiver would drop.
pub async fn uploaded<S: Storage>(
    storage: &S,
    bucket: &BucketName,
    upload: crate::store::local::Uploaded,
) {
    if upload.bucket != bucket.as_str() || draftstore_core::events::is_reserved(&upload.key) {
        return;
    }
    let now = super::now_ms();
    let nth = UPLOADS.fetch_add(1, Ordering::Relaxed).to_string();
    let id = event_id(
        EventType::DraftUploaded,
        &[
            bucket.as_str(),
            &upload.key,
            &upload.etag,
            &now.to_string(),
            &nth,
        ],
    );
    let data = serde_json::json!({
        "bucket": bucket.as_str(),
        "key": upload.key,
        "size": upload.size,
        "etag": upload.etag,
    });
    let record = Record::new(id, EventType::DraftUploaded, now, data);
    if let Err(e) = queue::enqueue(storage, bucket, &record).await {
        tracing::warn!(error = %e, "cannot queue draft.uploaded");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use draftstore_core::{sweep_with, MemoryStorage, PutOptions, SweepOptions};

    #[tokio::test]
    async fn a_sweep_queues_one_expired_event_per_batch_and_one_per_aborted_upload() {
        let storage = MemoryStorage::new();
        storage.set_time(1_000);
        let draft = BucketName::parse("main-draft").unwrap();
        storage.create_bucket(&draft).await.unwrap();
        for key in ["a", "b", "c"] {
            storage
                .put_object(&draft, key, b"x".to_vec(), &PutOptions::default())
                .await
                .unwrap();
        }
        let upload = storage.create_upload(&draft, "big");
        storage.set_time(10_000);
        let emitting = Emitting {
            store: &storage,
            queue_bucket: draft.clone(),
        };
        let options = SweepOptions {
            batch_size: 2,
            ..SweepOptions::new(10_000, 60)
        };
        let report = sweep_with(&storage, &draft, options, &|| true, &mut |_| {}, &emitting).await;
        assert_eq!(
            (report.deleted, report.multipart_aborted),
            (3, 1),
            "{report:?}"
        );
        let keys = queue::keys(&storage, &draft).await.unwrap();
        let mut kinds = Vec::new();
        for key in &keys {
            let (record, _) = queue::load(&storage, &draft, key).await.unwrap().unwrap();
            kinds.push((record.kind.clone(), record.data.clone()));
        }
        kinds.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.to_string().cmp(&b.1.to_string())));
        assert_eq!(kinds.len(), 3, "two batches and one abort: {kinds:?}");
        assert_eq!(kinds[0].0, "draft.expired");
        assert_eq!(kinds[2].0, "multipart.aborted");
        assert_eq!(kinds[2].1["upload_id"], upload.as_str());
        let expired: usize = kinds
            .iter()
            .filter(|k| k.0 == "draft.expired")
            .map(|k| k.1["keys"].as_array().unwrap().len())
            .sum();
        assert_eq!(expired, 3);
        // A second sweep leaves the queue alone (reserved keys are never drafts).
        let later = SweepOptions::new(100_000, 60);
        let again = sweep_with(&storage, &draft, later, &|| true, &mut |_| {}, &emitting).await;
        assert_eq!(again.deleted, 0, "{again:?}");
        assert_eq!(queue::keys(&storage, &draft).await.unwrap().len(), 3);
    }
}
