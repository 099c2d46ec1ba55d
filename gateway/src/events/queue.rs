//! The durable event queue: one small JSON object per event under
//! `.draftstore/events/<id>.json` in the draft bucket (core's reserved prefix: no object name
//! reaches it, sweep skips it). Written before the step it announces, removed once every
//! endpoint answered 2xx. Deliverers claim an event with a conditional PutObject (`If-Match`
//! the ETag they read) that sets a lease; a lease that expires (a deliverer that died) lets
//! another one take it. Retries keep the id, so receivers drop duplicates by `webhook-id`.
//!
//! A delivered event leaves an empty object (a *tombstone*) under its key for [`TOMBSTONE_MS`]:
//! every confirm of one draft writes the same event before its copy, and a confirm that lost
//! the race (still in its pre-confirm check while the winner's event went out) must find the
//! key taken, not queue the event a second time. Passes remove tombstones past their time.

use draftstore_core::events::{queue_key, EventType, EVENTS_PREFIX};
use draftstore_core::{
    BucketName, CopyCondition, DeleteTarget, PutOptions, Storage, StorageError, MAX_DELETE_BATCH,
    SOURCE_ETAG_KEY, SOURCE_VERSION_KEY,
};
use serde::{Deserialize, Serialize};

/// How long a claim lasts: longer than one pass over the endpoints (10 s per attempt).
pub const LEASE_MS: i64 = 60_000;

/// A confirm that wrote its event but whose copy never happened leaves an event nobody may
/// deliver; after this long without main holding the object, it is dropped.
pub const UNCONFIRMED_GRACE_MS: i64 = 3_600_000;

/// How long a delivered event's tombstone stays: far longer than a confirm can take between
/// reading the draft and queueing its event (the check's and the request's timeouts).
pub const TOMBSTONE_MS: i64 = UNCONFIRMED_GRACE_MS;

/// What must hold in main before an `object.confirmed` event goes out: the confirm that wrote
/// it (before its copy) really moved the draft.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requires {
    /// The key in main.
    pub key: String,
    /// The draft's ETag, stamped on the main copy.
    pub etag: String,
    /// The draft's version (core's `draft_version`), stamped on the main copy. Absent in
    /// records queued before versions were: those compare the ETag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

impl Requires {
    /// Main holds the copy a confirm stamped with [`Requires::version`] (without one, with
    /// [`Requires::etag`]).
    ///
    /// # Errors
    /// The store failing.
    pub async fn holds<S: Storage>(
        &self,
        storage: &S,
        main: &BucketName,
    ) -> Result<bool, StorageError> {
        Ok(self.held_as(storage, main).await?.is_some())
    }

    /// [`Requires::holds`], giving main's ETag of the copy when it holds (a multipart copy's
    /// differs from the draft's).
    ///
    /// # Errors
    /// The store failing.
    pub async fn held_as<S: Storage>(
        &self,
        storage: &S,
        main: &BucketName,
    ) -> Result<Option<String>, StorageError> {
        let info = match storage.head_object(main, &self.key).await {
            Ok(info) => info,
            Err(StorageError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let held = match &self.version {
            Some(version) => info.metadata.get(SOURCE_VERSION_KEY) == Some(version),
            None => info.metadata.get(SOURCE_ETAG_KEY) == Some(&self.etag),
        };
        Ok(held.then_some(info.etag))
    }
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
    /// `object.confirmed`: the copy into main is known to have happened (the confirm marked it
    /// right after its copy, or a deliverer found [`Record::requires`] held). From then on it
    /// is delivered whatever main holds later (overwritten or deleted).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub copied: bool,
    /// Failed attempts so far.
    #[serde(default)]
    pub attempts: u32,
    /// Unix milliseconds of the next attempt.
    #[serde(default)]
    pub next_ms: i64,
    /// A deliverer holds it until then (Unix milliseconds).
    #[serde(default)]
    pub lease_ms: i64,
    /// The endpoints that have it (2xx), by
    /// [`Endpoint::fingerprint`](crate::config::Endpoint::fingerprint), never by URL.
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
    /// Marks it copied (see [`Record::copied`]) with `main_etag`, the ETag of the copy in main,
    /// as its `data.etag` (the draft's stays in `data.source_etag`).
    pub fn mark_copied(&mut self, main_etag: &str) {
        self.copied = true;
        if let Some(data) = self.data.as_object_mut() {
            data.insert("etag".into(), main_etag.into());
        }
    }

    /// A new event of `kind` about `data`, happening at `now_ms`.
    #[must_use]
    pub fn new(id: String, kind: EventType, now_ms: i64, data: serde_json::Value) -> Self {
        let secs = now_ms.div_euclid(1000);
        let timestamp = draftstore_signer::Timestamp::from_unix(secs)
            .map(|t| t.rfc3339())
            .unwrap_or_default();
        Self {
            id,
            kind: kind.as_str().to_owned(),
            timestamp,
            queued_ms: now_ms,
            data,
            requires: None,
            copied: false,
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

/// What [`enqueue`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enqueued {
    /// The record was written.
    Queued {
        /// Its ETag: a conditional write at it (`If-Match`) changes the record only if nobody
        /// wrote it since.
        etag: String,
    },
    /// An event with its id is queued already (a retried or concurrent confirm): it keeps its
    /// delivery state.
    AlreadyQueued,
    /// The event was delivered: its tombstone, at this ETag, holds the key.
    Delivered {
        /// The tombstone's ETag (for [`revive`]).
        etag: String,
    },
}

/// Queues `record` unless an event with its id is there already, queued or delivered
/// (see [`Enqueued`]).
///
/// # Errors
/// The store failing: the caller must not go on with what the event announces.
pub async fn enqueue<S: Storage>(
    storage: &S,
    bucket: &BucketName,
    record: &Record,
) -> Result<Enqueued, StorageError> {
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
        Ok(etag) => return Ok(Enqueued::Queued { etag }),
        Err(StorageError::PreconditionFailed { .. }) => {}
        Err(e) => return Err(e),
    }
    match storage.head_object(bucket, &key).await {
        Ok(info) if info.size == 0 => Ok(Enqueued::Delivered { etag: info.etag }),
        Ok(_) => Ok(Enqueued::AlreadyQueued),
        // Delivered and its tombstone removed in between: write it again.
        Err(StorageError::NotFound { .. }) => Box::pin(enqueue(storage, bucket, record)).await,
        Err(e) => Err(e),
    }
}

/// Queues `record` again over its tombstone (read at `etag`): the event it announces happens
/// again (main lost the object a confirm moved, and this confirm moves it back). `false` when
/// the key changed since (another confirm revived it, or the tombstone expired: then
/// [`enqueue`] again).
///
/// # Errors
/// The store failing.
pub async fn revive<S: Storage>(
    storage: &S,
    bucket: &BucketName,
    record: &Record,
    etag: &str,
) -> Result<bool, StorageError> {
    Ok(replace(storage, bucket, record, etag).await?.is_some())
}

/// The queue as one listing sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    /// Keys of queued events, in key order.
    pub queued: Vec<String>,
    /// Tombstones of delivered events: (key, ETag, unix seconds written).
    pub tombstones: Vec<(String, String, i64)>,
}

/// Every key under the queue's prefix, events and tombstones apart.
///
/// # Errors
/// The listing failing.
pub async fn list<S: Storage>(storage: &S, bucket: &BucketName) -> Result<Listing, StorageError> {
    let mut listing = Listing::default();
    let mut token: Option<String> = None;
    loop {
        let page = storage
            .list_objects(bucket, EVENTS_PREFIX, token.as_deref(), 1000)
            .await?;
        for object in page.objects {
            if object.size == 0 {
                listing
                    .tombstones
                    .push((object.key, object.etag, object.last_modified));
            } else {
                listing.queued.push(object.key);
            }
        }
        match page.next {
            Some(next) => token = Some(next),
            None => return Ok(listing),
        }
    }
}

/// Every queued event's key, in key order (tombstones left out).
///
/// # Errors
/// The listing failing.
pub async fn keys<S: Storage>(
    storage: &S,
    bucket: &BucketName,
) -> Result<Vec<String>, StorageError> {
    Ok(list(storage, bucket).await?.queued)
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
        Ok(info) if info.size == 0 => return Ok(None),
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

/// Attempts at marking an event copied while deliverers write it too.
const MARK_ATTEMPTS: usize = 3;

/// Marks the queued event `id` as copied (see [`Record::copied`]) and sets its `data.etag` to
/// `main_etag`, the ETag of the copy in main (the draft's stays in `data.source_etag`):
/// `Ok(true)` when it is marked (now or before), `Ok(false)` when there is nothing to mark
/// (delivered, or not queued) or it kept changing under us.
///
/// # Errors
/// The store failing.
pub async fn mark_copied<S: Storage>(
    storage: &S,
    bucket: &BucketName,
    id: &str,
    main_etag: &str,
) -> Result<bool, StorageError> {
    for _ in 0..MARK_ATTEMPTS {
        let Some((mut record, etag)) = load(storage, bucket, &queue_key(id)).await? else {
            return Ok(false);
        };
        if record.copied {
            return Ok(true);
        }
        record.mark_copied(main_etag);
        if replace(storage, bucket, &record, &etag).await?.is_some() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// After a confirm's copy: marks its event copied with `main_etag`. When this confirm wrote
/// `record` at `written_at`, one conditional PUT over that write does it; else (or when it
/// changed since: a claim) [`mark_copied`] reads it first; and when its key holds nothing (a
/// failed confirm of the same draft version withdrew it meanwhile: see [`withdraw`]),
/// `record` is queued again, marked. `None` when marked, else what [`enqueue`] found (a
/// tombstone: delivered; a record that kept changing: a deliverer marks it once it sees main
/// holding the copy).
///
/// # Errors
/// The store failing.
pub async fn copied<S: Storage>(
    storage: &S,
    bucket: &BucketName,
    mut record: Record,
    main_etag: &str,
    written_at: Option<&str>,
) -> Result<Option<Enqueued>, StorageError> {
    record.mark_copied(main_etag);
    if let Some(at) = written_at {
        if replace(storage, bucket, &record, at).await?.is_some() {
            return Ok(None);
        }
    }
    if mark_copied(storage, bucket, &record.id, main_etag).await? {
        return Ok(None);
    }
    enqueue(storage, bucket, &record).await.map(Some)
}

/// Withdraws the `object.confirmed` event `record` that this confirm queued itself (at
/// `etag`, the ETag its write returned) before a copy it never made (it failed: the draft was
/// replaced, main holds another object, the store failed; or it found the object moved), so it
/// does not wait an hour in the queue to be dropped. Only the record this confirm wrote may
/// go: one it found already queued (`Enqueued::AlreadyQueued`) belongs to another confirm
/// whose copy may still land (its outcome unknown). Kept when main holds the copy its
/// [`Record::requires`] names (another confirm of the same draft version moved it); removed
/// only at `etag`, so a mark or a claim written since keeps it. A confirm of that version whose
/// copy succeeds after the withdrawal queues the event again (marked copied) instead of
/// marking it. `Ok(true)` when it was removed.
///
/// # Errors
/// The store failing (the event then stays, and is dropped after [`UNCONFIRMED_GRACE_MS`]
/// unless main holds its copy).
pub async fn withdraw<S: Storage>(
    storage: &S,
    bucket: &BucketName,
    main: &BucketName,
    record: &Record,
    etag: &str,
) -> Result<bool, StorageError> {
    if record.copied {
        return Ok(false);
    }
    if let Some(requires) = &record.requires {
        if requires.holds(storage, main).await? {
            return Ok(false);
        }
    }
    let target = [DeleteTarget {
        key: queue_key(&record.id),
        etag: Some(etag.to_owned()),
        version: None,
    }];
    let outcomes = storage.delete_objects(bucket, &target).await?;
    Ok(matches!(outcomes.first().map(|o| &o.result), Some(Ok(()))))
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

/// Marks a delivered event (claimed at `etag`) by its tombstone: `false` when someone else
/// wrote it since (a lease that ran out: they deliver it).
///
/// # Errors
/// The store failing (the event is then delivered again later: at least once).
pub async fn bury<S: Storage>(
    storage: &S,
    bucket: &BucketName,
    id: &str,
    etag: &str,
) -> Result<bool, StorageError> {
    match storage
        .put_object_if(
            bucket,
            &queue_key(id),
            Vec::new(),
            &json_options(),
            &CopyCondition::IfMatch(etag.to_owned()),
        )
        .await
    {
        Ok(_) => Ok(true),
        Err(StorageError::PreconditionFailed { .. } | StorageError::NotFound { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Removes the tombstones of `listing` written before `now_ms` less [`TOMBSTONE_MS`], each
/// only if unchanged (a revived event stays); returns how many went.
///
/// # Errors
/// The store failing (they go on a later pass).
pub async fn expire_tombstones<S: Storage>(
    storage: &S,
    bucket: &BucketName,
    listing: &Listing,
    now_ms: i64,
) -> Result<usize, StorageError> {
    let old: Vec<DeleteTarget> = listing
        .tombstones
        .iter()
        .filter(|(_, _, written)| written.saturating_mul(1000) + TOMBSTONE_MS < now_ms)
        .map(|(key, etag, _)| DeleteTarget {
            key: key.clone(),
            etag: Some(etag.clone()),
            version: None,
        })
        .collect();
    let mut removed = 0;
    for batch in old.chunks(MAX_DELETE_BATCH) {
        removed += storage
            .delete_objects(bucket, batch)
            .await?
            .iter()
            .filter(|o| o.result.is_ok())
            .count();
    }
    Ok(removed)
}

/// Removes an event without a tombstone (one that will never be delivered).
///
/// # Errors
/// The store failing.
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

    /// An event holds back until main holds the copy of its draft version; a record queued
    /// before versions were (no `version`) compares the stamped ETag.
    #[tokio::test]
    async fn requires_compares_the_stamped_version_or_else_the_etag() {
        let storage = MemoryStorage::new();
        let main = BucketName::parse("main").unwrap();
        storage.create_bucket(&main).await.unwrap();
        let requires = |version: Option<&str>| Requires {
            key: "k".into(),
            etag: "e1".into(),
            version: version.map(str::to_owned),
        };
        assert!(!requires(Some("v1")).holds(&storage, &main).await.unwrap());
        let stamped = PutOptions {
            content_type: None,
            metadata: [
                (SOURCE_ETAG_KEY.to_owned(), "e1".to_owned()),
                (SOURCE_VERSION_KEY.to_owned(), "v2".to_owned()),
            ]
            .into(),
        };
        storage
            .put_object(&main, "k", b"x".to_vec(), &stamped)
            .await
            .unwrap();
        assert!(
            !requires(Some("v1")).holds(&storage, &main).await.unwrap(),
            "the same ETag from another upload is not this event's copy"
        );
        assert!(requires(Some("v2")).holds(&storage, &main).await.unwrap());
        let legacy: Requires = serde_json::from_str(r#"{"key":"k","etag":"e1"}"#).unwrap();
        assert_eq!(legacy, requires(None));
        assert!(legacy.holds(&storage, &main).await.unwrap());
    }

    #[tokio::test]
    async fn marking_copied_survives_a_claim_and_skips_delivered_events() {
        let storage = MemoryStorage::new();
        let bucket = BucketName::parse("main-draft").unwrap();
        storage.create_bucket(&bucket).await.unwrap();
        assert!(!mark_copied(&storage, &bucket, "msg_none", "main-2")
            .await
            .unwrap());
        let record = Record::new(
            "msg_c".into(),
            EventType::ObjectConfirmed,
            1_000_000,
            serde_json::json!({}),
        );
        enqueue(&storage, &bucket, &record).await.unwrap();
        let key = queue_key("msg_c");
        let (read, etag) = load(&storage, &bucket, &key).await.unwrap().unwrap();
        assert!(!read.copied);
        assert!(mark_copied(&storage, &bucket, "msg_c", "main-2")
            .await
            .unwrap());
        assert!(
            mark_copied(&storage, &bucket, "msg_c", "main-2")
                .await
                .unwrap(),
            "once"
        );
        assert!(
            claim(&storage, &bucket, &read, &etag, 1_000_001)
                .await
                .unwrap()
                .is_none(),
            "a read from before the mark cannot claim over it"
        );
        let (read, etag) = load(&storage, &bucket, &key).await.unwrap().unwrap();
        assert!(read.copied);
        assert_eq!(read.data["etag"], "main-2", "main's ETag announced");
        let (claimed, etag) = claim(&storage, &bucket, &read, &etag, 1_000_001)
            .await
            .unwrap()
            .unwrap();
        assert!(claimed.copied, "kept by the claim");
        assert!(bury(&storage, &bucket, "msg_c", &etag).await.unwrap());
        assert!(
            !mark_copied(&storage, &bucket, "msg_c", "main-2")
                .await
                .unwrap(),
            "delivered: nothing to mark"
        );
        let legacy: Record = serde_json::from_str(
            r#"{"id":"msg_o","type":"object.confirmed","timestamp":"","queued_ms":1,"data":{}}"#,
        )
        .unwrap();
        assert!(
            !legacy.copied,
            "records written before the mark read as unmarked"
        );
    }

    /// The confirm that wrote an event marks it over its own write; a claim since sends it
    /// back to reading the record first, and the mark still lands.
    #[tokio::test]
    async fn copied_marks_over_the_confirms_own_write_or_reads_first() {
        let storage = MemoryStorage::new();
        let bucket = BucketName::parse("main-draft").unwrap();
        storage.create_bucket(&bucket).await.unwrap();
        let record = Record::new(
            "msg_o".into(),
            EventType::ObjectConfirmed,
            1_000_000,
            serde_json::json!({"etag": "d"}),
        );
        let Enqueued::Queued { etag } = enqueue(&storage, &bucket, &record).await.unwrap() else {
            panic!("queued");
        };
        assert_eq!(
            copied(&storage, &bucket, record.clone(), "m-1", Some(&etag))
                .await
                .unwrap(),
            None
        );
        let (read, _) = load(&storage, &bucket, &queue_key("msg_o"))
            .await
            .unwrap()
            .unwrap();
        assert!(read.copied);
        assert_eq!(
            (read.data["etag"].as_str(), read.queued_ms),
            (Some("m-1"), 1_000_000)
        );

        remove(&storage, &bucket, "msg_o").await.unwrap();
        let Enqueued::Queued { etag } = enqueue(&storage, &bucket, &record).await.unwrap() else {
            panic!("queued");
        };
        let (read, at) = load(&storage, &bucket, &queue_key("msg_o"))
            .await
            .unwrap()
            .unwrap();
        let (_, claimed) = claim(&storage, &bucket, &read, &at, 1_000_001)
            .await
            .unwrap()
            .unwrap();
        assert_ne!(etag, claimed);
        assert_eq!(
            copied(&storage, &bucket, record, "m-2", Some(&etag))
                .await
                .unwrap(),
            None,
            "a stale write: read, then marked"
        );
        let (read, _) = load(&storage, &bucket, &queue_key("msg_o"))
            .await
            .unwrap()
            .unwrap();
        assert!(
            read.copied && read.lease_ms > 0,
            "the claim's lease is kept"
        );
    }

    /// A failed confirm's event goes, unless it is marked copied, main holds its copy, or it
    /// changed since it was read.
    #[tokio::test]
    async fn withdraw_keeps_an_event_whose_copy_main_holds_or_that_is_marked() {
        let storage = MemoryStorage::new();
        let (bucket, main) = (
            BucketName::parse("main-draft").unwrap(),
            BucketName::parse("main").unwrap(),
        );
        storage.create_bucket(&bucket).await.unwrap();
        storage.create_bucket(&main).await.unwrap();
        let mut record = Record::new(
            "msg_w".into(),
            EventType::ObjectConfirmed,
            1_000_000,
            serde_json::json!({}),
        );
        record.requires = Some(Requires {
            key: "k".into(),
            etag: "e1".into(),
            version: Some("v1".into()),
        });
        let Enqueued::Queued { etag: written } = enqueue(&storage, &bucket, &record).await.unwrap()
        else {
            panic!("queued");
        };
        let stamped = PutOptions {
            content_type: None,
            metadata: [(SOURCE_VERSION_KEY.to_owned(), "v1".to_owned())].into(),
        };
        storage
            .put_object(&main, "k", b"x".to_vec(), &stamped)
            .await
            .unwrap();
        assert!(
            !withdraw(&storage, &bucket, &main, &record, &written)
                .await
                .unwrap(),
            "main holds the copy: another confirm moved it"
        );
        assert_eq!(keys(&storage, &bucket).await.unwrap().len(), 1);
        storage.delete_object(&main, "k").await.unwrap();
        assert!(mark_copied(&storage, &bucket, "msg_w", "e1").await.unwrap());
        assert!(
            !withdraw(&storage, &bucket, &main, &record, &written)
                .await
                .unwrap(),
            "marked copied since it was written: sent whatever main holds"
        );
        assert_eq!(keys(&storage, &bucket).await.unwrap().len(), 1);
        remove(&storage, &bucket, "msg_w").await.unwrap();
        let Enqueued::Queued { etag: read_at } = enqueue(&storage, &bucket, &record).await.unwrap()
        else {
            panic!("queued");
        };
        assert!(withdraw(&storage, &bucket, &main, &record, &read_at)
            .await
            .unwrap());
        assert_eq!(keys(&storage, &bucket).await.unwrap(), Vec::<String>::new());
        assert_eq!(
            list(&storage, &bucket).await.unwrap(),
            Listing::default(),
            "no tombstone"
        );

        // A confirm of that version copying after the withdrawal queues it again, marked.
        assert!(matches!(
            copied(&storage, &bucket, record.clone(), "main-1", None)
                .await
                .unwrap(),
            Some(Enqueued::Queued { .. })
        ));
        let (again, etag) = load(&storage, &bucket, &queue_key("msg_w"))
            .await
            .unwrap()
            .unwrap();
        assert!(again.copied);
        assert_eq!(again.data["etag"], "main-1");
        assert_ne!(etag, read_at);
        assert_eq!(
            copied(&storage, &bucket, record.clone(), "main-1", None)
                .await
                .unwrap(),
            None,
            "queued and marked: nothing more"
        );
        let (claimed, at) = claim(&storage, &bucket, &again, &etag, 1_000_001)
            .await
            .unwrap()
            .unwrap();
        assert!(bury(&storage, &bucket, &claimed.id, &at).await.unwrap());
        assert!(
            matches!(
                copied(&storage, &bucket, record, "main-1", None)
                    .await
                    .unwrap(),
                Some(Enqueued::Delivered { .. })
            ),
            "delivered: not queued again"
        );
    }

    #[tokio::test]
    async fn a_delivered_event_leaves_a_tombstone_that_keeps_it_from_being_queued_again() {
        let storage = MemoryStorage::new();
        storage.set_time(1_000);
        let bucket = BucketName::parse("main-draft").unwrap();
        storage.create_bucket(&bucket).await.unwrap();
        let record = Record::new(
            "msg_t".into(),
            EventType::ObjectConfirmed,
            1_000_000,
            serde_json::json!({}),
        );
        assert!(matches!(
            enqueue(&storage, &bucket, &record).await.unwrap(),
            Enqueued::Queued { .. }
        ));
        assert_eq!(
            enqueue(&storage, &bucket, &record).await.unwrap(),
            Enqueued::AlreadyQueued
        );
        let key = queue_key("msg_t");
        let (read, etag) = load(&storage, &bucket, &key).await.unwrap().unwrap();
        let (_, claimed) = claim(&storage, &bucket, &read, &etag, 1_000_001)
            .await
            .unwrap()
            .unwrap();
        assert!(
            !bury(&storage, &bucket, "msg_t", &etag).await.unwrap(),
            "stale"
        );
        assert!(bury(&storage, &bucket, "msg_t", &claimed).await.unwrap());
        assert_eq!(keys(&storage, &bucket).await.unwrap(), Vec::<String>::new());
        assert_eq!(load(&storage, &bucket, &key).await.unwrap(), None);
        let Enqueued::Delivered { etag: tomb } = enqueue(&storage, &bucket, &record).await.unwrap()
        else {
            panic!("the tombstone holds the key");
        };
        let listing = list(&storage, &bucket).await.unwrap();
        assert_eq!(listing.tombstones.len(), 1);
        let written_ms = 1_000 * 1000;
        assert_eq!(
            expire_tombstones(&storage, &bucket, &listing, written_ms + TOMBSTONE_MS)
                .await
                .unwrap(),
            0,
            "young tombstones stay"
        );
        assert!(revive(&storage, &bucket, &record, &tomb).await.unwrap());
        assert_eq!(keys(&storage, &bucket).await.unwrap(), vec![key.clone()]);
        assert!(
            !revive(&storage, &bucket, &record, &tomb).await.unwrap(),
            "revived once"
        );
        let (read, etag) = load(&storage, &bucket, &key).await.unwrap().unwrap();
        let (_, claimed) = claim(&storage, &bucket, &read, &etag, 1_000_001)
            .await
            .unwrap()
            .unwrap();
        assert!(bury(&storage, &bucket, "msg_t", &claimed).await.unwrap());
        let listing = list(&storage, &bucket).await.unwrap();
        assert_eq!(
            expire_tombstones(
                &storage,
                &bucket,
                &listing,
                written_ms + TOMBSTONE_MS + 1001
            )
            .await
            .unwrap(),
            1
        );
        assert_eq!(list(&storage, &bucket).await.unwrap(), Listing::default());
        assert!(
            matches!(
                enqueue(&storage, &bucket, &record).await.unwrap(),
                Enqueued::Queued { .. }
            ),
            "after its tombstone, a new event"
        );
    }
}
