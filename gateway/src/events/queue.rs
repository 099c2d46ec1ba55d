//! The durable event queue: one small JSON object per event under
//! `.draftstore/events/<id>.json` in the draft bucket (core's reserved prefix: no object name
//! reaches it, sweep skips it). Written before the step it announces, removed once every
//! endpoint answered 2xx. Deliverers claim an event with a conditional PutObject (`If-Match`
//! the ETag they read) that sets a lease; a lease that expires (a deliverer that died) lets
//! another one take it. Retries keep the id, so receivers drop duplicates by `webhook-id`.

use draftstore_core::events::{queue_key, EventType, EVENTS_PREFIX};
use draftstore_core::{BucketName, CopyCondition, PutOptions, Storage, StorageError};
use serde::{Deserialize, Serialize};

/// How long a claim lasts: longer than one pass over the endpoints (10 s per attempt).
pub const LEASE_MS: i64 = 60_000;

/// A confirm that wrote its event but whose copy never happened leaves an event nobody may
/// deliver; after this long without main holding the object, it is dropped.
pub const UNCONFIRMED_GRACE_MS: i64 = 3_600_000;

/// What must hold in main before an `object.confirmed` event goes out: the confirm that wrote
/// it (before its copy) really moved the draft.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requires {
    /// The key in main.
    pub key: String,
    /// The draft's ETag, stamped on the main copy.
    pub etag: String,
}

/// One queued event and its delivery state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// `msg_…`, the `webhook-id` of every attempt.
    pub id: String,
    /// The wire name of the type.
    #[serde(rename = "type")]
    pub kind: String,
    /// When it happened, RFC 3339 UTC (the body's `timestamp`).
    pub timestamp: String,
    /// Unix milliseconds it was queued.
    pub queued_ms: i64,
    /// The body's `data`.
    pub data: serde_json::Value,
    /// `object.confirmed`: delivered only once main holds this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requires: Option<Requires>,
    /// Failed attempts so far.
    #[serde(default)]
    pub attempts: u32,
    /// Unix milliseconds of the next attempt.
    #[serde(default)]
    pub next_ms: i64,
    /// A deliverer holds it until then (Unix milliseconds).
    #[serde(default)]
    pub lease_ms: i64,
    /// Endpoint URLs that have it (2xx) or are disabled (410).
    #[serde(default)]
    pub done: Vec<String>,
    /// The schedule is used up: kept for `gateway events replay`.
    #[serde(default)]
    pub failed: bool,
    /// What the last attempt got (a status or an error), for `gateway events list`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

impl Record {
    /// A new event of `kind` about `data`, happening at `now_ms`.
    #[must_use]
    pub fn new(id: String, kind: EventType, now_ms: i64, data: serde_json::Value) -> Self {
        let secs = now_ms.div_euclid(1000);
        let timestamp = draftstore_signer::Timestamp::from_unix(secs)
            .map(crate::api::app::rfc3339)
            .unwrap_or_default();
        Self {
            id,
            kind: kind.as_str().to_owned(),
            timestamp,
            queued_ms: now_ms,
            data,
            requires: None,
            attempts: 0,
            next_ms: now_ms,
            lease_ms: 0,
            done: Vec::new(),
            failed: false,
            last_error: None,
        }
    }

    /// The type, `None` for one this version does not know.
    #[must_use]
    pub fn event_type(&self) -> Option<EventType> {
        EventType::parse(&self.kind)
    }

    /// The JSON body sent: `{"type", "timestamp", "data"}`.
    #[must_use]
    pub fn body(&self) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "type": self.kind,
            "timestamp": self.timestamp,
            "data": self.data,
        }))
        .unwrap_or_default()
    }

    fn bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

fn json_options() -> PutOptions {
    PutOptions {
        content_type: Some("application/json".into()),
        ..PutOptions::default()
    }
}

/// Queues `record` unless an event with its id is already there (a retried confirm): the
/// queued one keeps its delivery state.
///
/// # Errors
/// The store failing: the caller must not go on with what the event announces.
pub async fn enqueue<S: Storage>(
    storage: &S,
    bucket: &BucketName,
    record: &Record,
) -> Result<(), StorageError> {
    let key = queue_key(&record.id);
    match storage
        .put_object_if(
            bucket,
            &key,
            record.bytes(),
            &json_options(),
            &CopyCondition::IfAbsent,
        )
        .await
    {
        Ok(_) | Err(StorageError::PreconditionFailed { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Every queued key, in key order.
///
/// # Errors
/// The listing failing.
pub async fn keys<S: Storage>(
    storage: &S,
    bucket: &BucketName,
) -> Result<Vec<String>, StorageError> {
    let mut keys = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = storage
            .list_objects(bucket, EVENTS_PREFIX, token.as_deref(), 1000)
            .await?;
        keys.extend(page.objects.into_iter().map(|o| o.key));
        match page.next {
            Some(next) => token = Some(next),
            None => return Ok(keys),
        }
    }
}

/// The record under `key` and the ETag it was read at (`None`: gone, or not a record).
///
/// # Errors
/// The store failing.
pub async fn load<S: Storage>(
    storage: &S,
    bucket: &BucketName,
    key: &str,
) -> Result<Option<(Record, String)>, StorageError> {
    // The ETag first: if the object changes before the GET, a claim at this ETag fails.
    let etag = match storage.head_object(bucket, key).await {
        Ok(info) => info.etag,
        Err(StorageError::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    let bytes = match storage.get_object(bucket, key).await {
        Ok(b) => b,
        Err(StorageError::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    match serde_json::from_slice::<Record>(&bytes) {
        Ok(record) => Ok(Some((record, etag))),
        Err(e) => {
            tracing::warn!(key, error = %e, "not an event record: left alone");
            Ok(None)
        }
    }
}

/// Writes `record` over the version read at `etag`: `Ok(Some(new etag))`, or `Ok(None)` when
/// someone else wrote it since (they hold it now).
///
/// # Errors
/// The store failing.
pub async fn replace<S: Storage>(
    storage: &S,
    bucket: &BucketName,
    record: &Record,
    etag: &str,
) -> Result<Option<String>, StorageError> {
    match storage
        .put_object_if(
            bucket,
            &queue_key(&record.id),
            record.bytes(),
            &json_options(),
            &CopyCondition::IfMatch(etag.to_owned()),
        )
        .await
    {
        Ok(etag) => Ok(Some(etag)),
        Err(StorageError::PreconditionFailed { .. } | StorageError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Claims `record` (read at `etag`) for `LEASE_MS` if it is due and nobody holds it:
/// `Some((claimed record, its etag))`, `None` when not due, failed, or taken by another.
///
/// # Errors
/// The store failing.
pub async fn claim<S: Storage>(
    storage: &S,
    bucket: &BucketName,
    record: &Record,
    etag: &str,
    now_ms: i64,
) -> Result<Option<(Record, String)>, StorageError> {
    if record.failed || record.next_ms > now_ms || record.lease_ms > now_ms {
        return Ok(None);
    }
    let mut claimed = record.clone();
    claimed.lease_ms = now_ms + LEASE_MS;
    Ok(replace(storage, bucket, &claimed, etag)
        .await?
        .map(|etag| (claimed, etag)))
}

/// Removes a delivered event.
///
/// # Errors
/// The store failing (the event is then delivered again later: at least once).
pub async fn remove<S: Storage>(
    storage: &S,
    bucket: &BucketName,
    id: &str,
) -> Result<(), StorageError> {
    storage.delete_object(bucket, &queue_key(id)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use draftstore_core::MemoryStorage;

    #[tokio::test]
    async fn enqueue_once_claim_once() {
        let storage = MemoryStorage::new();
        let bucket = BucketName::parse("main-draft").unwrap();
        storage.create_bucket(&bucket).await.unwrap();
        let record = Record::new(
            "msg_1".into(),
            EventType::ObjectConfirmed,
            1_000_000,
            serde_json::json!({"k": 1}),
        );
        enqueue(&storage, &bucket, &record).await.unwrap();
        let mut again = record.clone();
        again.data = serde_json::json!({"k": 2});
        enqueue(&storage, &bucket, &again).await.unwrap();
        assert_eq!(keys(&storage, &bucket).await.unwrap().len(), 1);
        let (read, etag) = load(&storage, &bucket, &queue_key("msg_1"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(read, record, "the first write stays");
        let first = claim(&storage, &bucket, &read, &etag, 1_000_001)
            .await
            .unwrap();
        assert!(first.is_some());
        let second = claim(&storage, &bucket, &read, &etag, 1_000_001)
            .await
            .unwrap();
        assert!(second.is_none(), "a stale read cannot claim");
        let (now_read, now_etag) = load(&storage, &bucket, &queue_key("msg_1"))
            .await
            .unwrap()
            .unwrap();
        assert!(
            claim(&storage, &bucket, &now_read, &now_etag, 1_000_002)
                .await
                .unwrap()
                .is_none(),
            "leased"
        );
        assert!(
            claim(
                &storage,
                &bucket,
                &now_read,
                &now_etag,
                1_000_001 + LEASE_MS + 1
            )
            .await
            .unwrap()
            .is_some(),
            "the lease expired"
        );
        let body: serde_json::Value = serde_json::from_slice(&record.body()).unwrap();
        assert_eq!(body["type"], "object.confirmed");
        assert_eq!(body["timestamp"], "1970-01-01T00:16:40Z");
        assert_eq!(body["data"]["k"], 1);
    }
}
