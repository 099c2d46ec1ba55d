//! What confirm does before its copy (core's `BeforeCopy`): the pre-confirm check
//! (`DRAFTSTORE_PRECONFIRM_URL`), then the `object.confirmed` event written into the queue, so
//! a crash at any later step cannot lose it.

use super::queue::{self, Enqueued, Record, Requires};
use super::{sign, Events};
use crate::config::{OnError, Preconfirm};
use crate::store::Presign;
use draftstore_core::events::{event_id, sanitize_reason, EventType};
use draftstore_core::{
    draft_version, user_metadata, BeforeCopy, Buckets, ConfirmError, ObjectInfo, ObjectName,
    Storage,
};
use draftstore_signer::{Expiry, Method};

/// Seconds the checker's download URL is valid.
pub const CHECK_URL_SECS: u64 = 300;

/// Bytes of a checker's refusal read for its reason.
const REASON_READ: usize = 4096;

/// The hook of one confirm.
pub struct Hook<'a, B> {
    /// The event settings and client.
    pub events: &'a Events,
    /// The store (presigns the checker's download URL, holds the queue).
    pub store: &'a B,
    /// Main and draft.
    pub buckets: &'a Buckets,
    /// The caller's tenant, if any.
    pub tenant: Option<&'a str>,
    /// The name as the caller gave it.
    pub object_name: &'a str,
    /// The event this confirm wrote and the ETag it was written at (`Default`: none yet), so
    /// marking it copied after the copy is one conditional PUT, not a HEAD, a GET and a PUT.
    pub written: std::sync::Mutex<Option<(Record, String)>>,
}

impl<B: Storage + Presign> BeforeCopy for Hook<'_, B> {
    fn is_noop(&self) -> bool {
        self.events.config.preconfirm.is_none() && !self.events.config.webhooks()
    }

    async fn before_copy(&self, name: &ObjectName, draft: &ObjectInfo) -> Result<(), ConfirmError> {
        if let Some(check) = &self.events.config.preconfirm {
            self.check(check, name, draft).await?;
        }
        if self.events.config.webhooks() {
            self.queue(name, &self.record(name, draft)).await?;
        }
        Ok(())
    }

    async fn after_copy(&self, name: &ObjectName, draft: &ObjectInfo, main_etag: &str) {
        if !self.events.config.webhooks() {
            return;
        }
        let id = self.id(name, draft);
        let written = self.written.lock().ok().and_then(|mut w| w.take());
        let (record, at) = match written {
            Some((record, at)) if record.id == id => (record, Some(at)),
            _ => (self.record(name, draft), None),
        };
        let bucket = &self.buckets.draft;
        match queue::copied(self.store, bucket, record, main_etag, at.as_deref()).await {
            Ok(Some(Enqueued::Queued { .. })) => {
                tracing::debug!(%id, "a failed confirm had withdrawn the event: queued again");
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(%id, error = %e, "cannot mark the event copied; it goes out once main is seen holding the copy");
            }
        }
    }

    async fn abandoned(&self, name: &ObjectName, draft: &ObjectInfo) {
        if !self.events.config.webhooks() {
            return;
        }
        let id = self.id(name, draft);
        // Only the record this confirm wrote: one it found queued is another confirm's, whose
        // copy may still land.
        let written = self.written.lock().ok().and_then(|mut w| w.take());
        let Some((record, at)) = written.filter(|(record, _)| record.id == id) else {
            return;
        };
        let (draft_bucket, main) = (&self.buckets.draft, &self.buckets.main);
        match queue::withdraw(self.store, draft_bucket, main, &record, &at).await {
            Ok(true) => tracing::debug!(%id, "the confirm ended without its copy: event withdrawn"),
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(%id, error = %e, "cannot withdraw the event of a confirm that made no copy; it is dropped after an hour unless main holds the copy");
            }
        }
    }
}

/// Attempts at queueing over a tombstone that keeps changing (other confirms of one draft).
const QUEUE_ATTEMPTS: usize = 3;

impl<B: Storage> Hook<'_, B> {
    /// Queues the event unless it is queued, or delivered for the copy main still holds (a
    /// confirm that lost the race to one whose event already went out: its copy will find
    /// the object moved).
    async fn queue(&self, name: &ObjectName, record: &Record) -> Result<(), ConfirmError> {
        let bucket = &self.buckets.draft;
        for _ in 0..QUEUE_ATTEMPTS {
            let etag = match queue::enqueue(self.store, bucket, record).await? {
                Enqueued::Queued { etag } => {
                    if let Ok(mut written) = self.written.lock() {
                        *written = Some((record.clone(), etag));
                    }
                    return Ok(());
                }
                Enqueued::AlreadyQueued => return Ok(()),
                Enqueued::Delivered { etag } => etag,
            };
            if let Some(requires) = &record.requires {
                if requires.holds(self.store, &self.buckets.main).await? {
                    return Ok(());
                }
            }
            // Delivered once, and now happening again (main lost the copy since): the event
            // goes out again, under the same id.
            if queue::revive(self.store, bucket, record, &etag).await? {
                return Ok(());
            }
        }
        Err(ConfirmError::NotConverged { name: name.clone() })
    }
}

impl<B: Storage + Presign> Hook<'_, B> {
    /// The `object.confirmed` event: its id from the main bucket, the key and the draft's
    /// version (`draft_version`: its ETag, size, Last-Modified, type and metadata), so every
    /// confirm of this draft (a retry, another replica) writes the same event, and a new
    /// upload confirmed later, even of the same bytes, another.
    fn id(&self, name: &ObjectName, draft: &ObjectInfo) -> String {
        event_id(
            EventType::ObjectConfirmed,
            &[
                self.buckets.main.as_str(),
                name.as_str(),
                &draft_version(draft),
            ],
        )
    }

    fn record(&self, name: &ObjectName, draft: &ObjectInfo) -> Record {
        let id = self.id(name, draft);
        let data = serde_json::json!({
            "object_name": self.object_name,
            "tenant": self.tenant,
            "size": draft.size,
            // Main's ETag once the copy is made (a multipart copy's differs): see after_copy.
            "etag": draft.etag,
            "source_etag": draft.etag,
            "content_type": draft.content_type,
            "location": format!("{}/{}", self.buckets.main, name.as_str()),
        });
        let mut record = Record::new(id, EventType::ObjectConfirmed, super::now_ms(), data);
        record.requires = Some(Requires {
            key: name.as_str().to_owned(),
            etag: draft.etag.clone(),
            version: Some(draft_version(draft)),
        });
        record
    }

    fn body(&self, name: &ObjectName, draft: &ObjectInfo) -> Result<Vec<u8>, ConfirmError> {
        let now = crate::clock::timestamp_now().ok_or_else(|| ConfirmError::CheckUnavailable {
            name: name.clone(),
            reason: "the system clock is out of range".into(),
        })?;
        let ttl = Expiry::new(CHECK_URL_SECS).map_err(|_| ConfirmError::CheckUnavailable {
            name: name.clone(),
            reason: "no URL lifetime".into(),
        })?;
        let download_url =
            self.store
                .presign(Method::Get, &self.buckets.draft, name, &[], ttl, now)?;
        Ok(serde_json::to_vec(&serde_json::json!({
            "tenant": self.tenant,
            "object_name": self.object_name,
            "size": draft.size,
            "etag": draft.etag,
            "content_type": draft.content_type,
            "metadata": user_metadata(&draft.metadata),
            "download_url": download_url,
        }))
        .unwrap_or_default())
    }

    async fn check(
        &self,
        check: &Preconfirm,
        name: &ObjectName,
        draft: &ObjectInfo,
    ) -> Result<(), ConfirmError> {
        let body = self.body(name, draft)?;
        let id = event_id(
            EventType::ObjectConfirmed,
            &[
                "preconfirm",
                self.buckets.main.as_str(),
                name.as_str(),
                &draft_version(draft),
            ],
        )
        .replacen("msg_", "chk_", 1);
        let mut request = self
            .events
            .client
            .post(&check.url)
            .timeout(check.timeout)
            .header(http::header::CONTENT_TYPE, "application/json");
        for (header, value) in sign::headers(
            &self.events.config.secrets,
            &id,
            super::now_ms() / 1000,
            &body,
        ) {
            request = request.header(header, value);
        }
        let outcome = match request.body(body).send().await {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) if r.status().is_client_error() => {
                let status = r.status().as_u16();
                let reason = reason(r).await;
                let reason = if reason.is_empty() {
                    format!("HTTP {status}")
                } else {
                    reason
                };
                Err(Ok(ConfirmError::Rejected {
                    name: name.clone(),
                    reason,
                }))
            }
            Ok(r) => Err(Err(format!(
                "the checker answered HTTP {}",
                r.status().as_u16()
            ))),
            Err(e) if e.is_timeout() => Err(Err(format!(
                "the checker did not answer within {} ms",
                check.timeout.as_millis()
            ))),
            Err(_) => Err(Err("the checker could not be reached".to_owned())),
        };
        let label = match (&outcome, check.on_error) {
            (Ok(()), _) => "allowed",
            (Err(Ok(_)), _) => "rejected",
            (Err(Err(_)), OnError::Reject) => "unavailable_rejected",
            (Err(Err(_)), OnError::Allow) => "unavailable_allowed",
        };
        crate::metrics::get()
            .preconfirm_checks
            .get_or_create(&crate::metrics::OutcomeLabels { outcome: label })
            .inc();
        match (outcome, check.on_error) {
            (Ok(()), _) => Ok(()),
            (Err(Ok(rejected)), _) => Err(rejected),
            (Err(Err(reason)), OnError::Reject) => Err(ConfirmError::CheckUnavailable {
                name: name.clone(),
                reason,
            }),
            (Err(Err(reason)), OnError::Allow) => {
                tracing::warn!(%reason, "pre-confirm check unavailable: confirming anyway (DRAFTSTORE_PRECONFIRM_ON_ERROR=allow)");
                Ok(())
            }
        }
    }
}

/// The checker's reason: the first [`REASON_READ`] bytes of its answer (a JSON `reason` or
/// `message` field when it sends JSON), cut and sanitised.
async fn reason(mut response: reqwest::Response) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < REASON_READ {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            _ => break,
        }
    }
    bytes.truncate(REASON_READ);
    let text = String::from_utf8_lossy(&bytes);
    let field = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| {
            ["reason", "message", "error"]
                .iter()
                .find_map(|k| v.get(k).and_then(|f| f.as_str()).map(str::to_owned))
        });
    sanitize_reason(field.as_deref().unwrap_or(&text))
}
