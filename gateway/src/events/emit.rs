//! Events of sweep: [`Emitting`] wraps the store sweep runs on and queues one `draft.expired`
//! event per batch delete (the keys it deleted) and one `multipart.aborted` per aborted
//! upload. Written after the store answered: a sweep killed between a delete and its event
//! loses that event (the drafts were expiring anyway); confirm's events never are.
//! Sweep without webhooks does not wrap its store: nothing is added to its hot path.
//! [`uploaded`] queues `draft.uploaded` for the embedded store (S3 uploads bypass DraftStore).

use super::queue::{self, Record};
use draftstore_core::events::{event_id, EventType};
use draftstore_core::{
    BucketName, Capabilities, Completed, CompletedPart, Copied, CopyCondition, CopyRequest,
    DeleteOutcome, DeleteTarget, ListPage, MultipartOptions, ObjectInfo, Part, PutOptions, Storage,
    StorageError, UploadPage,
};

/// A store that queues sweep's events in `queue_bucket` (the draft bucket).
pub struct Emitting<'a, S> {
    /// The store.
    pub inner: &'a S,
    /// Where the queue lives.
    pub queue_bucket: BucketName,
}

impl<S: Storage> Emitting<'_, S> {
    async fn emit(&self, kind: EventType, id: String, data: serde_json::Value) {
        let record = Record::new(id, kind, super::now_ms(), data);
        if let Err(e) = queue::enqueue(self.inner, &self.queue_bucket, &record).await {
            tracing::warn!(error = %e, r#type = kind.as_str(), "cannot queue the event");
        }
    }
}

impl<S: Storage> Storage for Emitting<'_, S> {
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
    async fn delete_objects(
        &self,
        b: &BucketName,
        targets: &[DeleteTarget],
    ) -> Result<Vec<DeleteOutcome>, StorageError> {
        let outcomes = self.inner.delete_objects(b, targets).await?;
        let deleted: Vec<&DeleteOutcome> = outcomes.iter().filter(|o| o.result.is_ok()).collect();
        if !deleted.is_empty() {
            let etags: Vec<&str> = targets
                .iter()
                .filter(|t| deleted.iter().any(|d| d.key == t.key))
                .map(|t| t.etag.as_deref().unwrap_or(""))
                .collect();
            let keys: Vec<&str> = deleted.iter().map(|d| d.key.as_str()).collect();
            let mut parts = vec![b.as_str()];
            parts.extend(keys.iter().copied());
            parts.extend(etags.iter().copied());
            let id = event_id(EventType::DraftExpired, &parts);
            let data = serde_json::json!({ "bucket": b.as_str(), "keys": keys });
            self.emit(EventType::DraftExpired, id, data).await;
        }
        Ok(outcomes)
    }
    async fn list_objects(
        &self,
        b: &BucketName,
        prefix: &str,
        continuation: Option<&str>,
        max_keys: u16,
    ) -> Result<ListPage, StorageError> {
        self.inner
            .list_objects(b, prefix, continuation, max_keys)
            .await
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
    async fn abort_upload(
        &self,
        b: &BucketName,
        key: &str,
        upload_id: &str,
    ) -> Result<(), StorageError> {
        self.inner.abort_upload(b, key, upload_id).await?;
        let id = event_id(EventType::MultipartAborted, &[b.as_str(), key, upload_id]);
        let data = serde_json::json!({ "bucket": b.as_str(), "key": key, "upload_id": upload_id });
        self.emit(EventType::MultipartAborted, id, data).await;
        Ok(())
    }
}

/// Queues `draft.uploaded` for an upload the embedded store stored in `bucket` (the draft
/// bucket; others are ignored). Written just after the upload answered: a crash in between
/// loses it.
pub async fn uploaded<S: Storage>(
    storage: &S,
    bucket: &BucketName,
    upload: crate::store::local::Uploaded,
) {
    if upload.bucket != bucket.as_str() || draftstore_core::events::is_reserved(&upload.key) {
        return;
    }
    let id = event_id(
        EventType::DraftUploaded,
        &[bucket.as_str(), &upload.key, &upload.etag],
    );
    let data = serde_json::json!({
        "bucket": bucket.as_str(),
        "key": upload.key,
        "size": upload.size,
        "etag": upload.etag,
    });
    let record = Record::new(id, EventType::DraftUploaded, super::now_ms(), data);
    if let Err(e) = queue::enqueue(storage, bucket, &record).await {
        tracing::warn!(error = %e, "cannot queue draft.uploaded");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use draftstore_core::{sweep, MemoryStorage, SweepOptions};

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
            inner: &storage,
            queue_bucket: draft.clone(),
        };
        let options = SweepOptions {
            batch_size: 2,
            ..SweepOptions::new(10_000, 60)
        };
        let report = sweep(&emitting, &draft, options, &|| true, &mut |_| {}).await;
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
        let again = sweep(&emitting, &draft, later, &|| true, &mut |_| {}).await;
        assert_eq!(again.deleted, 0, "{again:?}");
        assert_eq!(queue::keys(&storage, &draft).await.unwrap().len(), 3);
    }
}
