//! Delivery: one pass over the queue claims each due event, POSTs it (signed) to every
//! endpoint that wants it and has not got it, then leaves its tombstone (all 2xx; see
//! [`queue`]) or writes back when to try again (the schedule, with jitter, at least the
//! receiver's `Retry-After`). A 410 disables that endpoint in this process (logged, counted);
//! an event it did not get stays queued for it (counted `dropped` on each pass that skips it)
//! and follows the schedule, so a restart, another replica or a replay still sends it.
//! Each pass also removes tombstones past [`queue::TOMBSTONE_MS`].

use super::queue::{self, Record, Requires, UNCONFIRMED_GRACE_MS};
use super::sign;
use crate::config::{Endpoint, EventsConfig};
use draftstore_core::events::{next_delay, verdict, Verdict};
use draftstore_core::{Buckets, Storage, StorageError};
use std::collections::HashSet;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// The longest wait for one delivery attempt.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// What one pass found and did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pass {
    /// Events in the queue.
    pub queued: u64,
    /// Delivered to every endpoint and removed.
    pub delivered: u64,
    /// Still waiting (not due, held by another deliverer, or an attempt failed).
    pub pending: u64,
    /// The schedule is used up (see `gateway events replay`).
    pub failed: u64,
}

/// Unix milliseconds now.
#[must_use]
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_millis()).ok())
        .unwrap_or(0)
}

/// Delivers queued events from the draft bucket of the store `P` points to (an `Arc` in
/// `serve`'s background task, a reference in `sweep` and `gateway events`).
pub struct Deliverer<P> {
    storage: P,
    buckets: Buckets,
    config: EventsConfig,
    client: reqwest::Client,
    disabled: Mutex<HashSet<String>>,
}

struct Attempt {
    verdict: Verdict,
    retry_after: Option<Duration>,
    what: String,
}

impl<P> Deliverer<P>
where
    P: std::ops::Deref + Send + Sync,
    P::Target: Storage + Sized,
{
    /// A deliverer sending with `client`.
    #[must_use]
    pub fn new(
        storage: P,
        buckets: Buckets,
        config: EventsConfig,
        client: reqwest::Client,
    ) -> Self {
        Self {
            storage,
            buckets,
            config,
            client,
            disabled: Mutex::default(),
        }
    }

    /// One pass over the queue (see the module doc); updates the queue metrics.
    ///
    /// # Errors
    /// The listing failing. A failure on one event is logged and the pass goes on.
    pub async fn pass(&self) -> Result<Pass, StorageError> {
        let bucket = &self.buckets.draft;
        let listing = queue::list(&*self.storage, bucket).await?;
        if let Err(e) = queue::expire_tombstones(&*self.storage, bucket, &listing, now_ms()).await {
            tracing::warn!(error = %e, "cannot remove old tombstones of delivered events; next pass");
        }
        let keys = listing.queued;
        let mut pass = Pass {
            queued: keys.len() as u64,
            ..Pass::default()
        };
        let mut oldest = i64::MAX;
        for key in keys {
            match self.one(&key, &mut oldest).await {
                Ok(Some(true)) => pass.delivered += 1,
                Ok(Some(false)) => pass.pending += 1,
                Ok(None) => pass.failed += 1,
                Err(e) => {
                    pass.pending += 1;
                    tracing::warn!(key, error = %e, "event not delivered this pass");
                }
            }
        }
        let m = crate::metrics::get();
        m.webhook_queue_depth
            .set(i64::try_from(pass.pending + pass.failed).unwrap_or(i64::MAX));
        let age = if oldest == i64::MAX {
            0
        } else {
            (now_ms() - oldest) / 1000
        };
        m.webhook_oldest_pending_seconds.set(age.max(0));
        Ok(pass)
    }

    /// `Some(true)`: delivered; `Some(false)`: still pending; `None`: failed for good.
    async fn one(&self, key: &str, oldest: &mut i64) -> Result<Option<bool>, StorageError> {
        let storage = &*self.storage;
        let bucket = &self.buckets.draft;
        let Some((record, etag)) = queue::load(storage, bucket, key).await? else {
            return Ok(Some(true));
        };
        if record.failed {
            *oldest = (*oldest).min(record.queued_ms);
            return Ok(None);
        }
        let now = now_ms();
        let mut record = record;
        // Once the copy is known to have happened (the confirm marked it, or an earlier pass
        // saw main holding it: a record with an attempt, even one queued before `copied`
        // existed), main may change freely: the event goes out regardless.
        let known = record.copied || record.attempts > 0 || !record.done.is_empty();
        let holds = match &record.requires {
            Some(requires) if !known => Some(self.confirmed(requires).await?),
            _ => None,
        };
        if let Some(holds) = holds {
            if let Some(main_etag) = holds {
                // Kept with the claim: a later overwrite or delete in main cannot hold it back.
                record.copied = true;
                // Seen before the confirm marked it: main's ETag, as the confirm answers.
                if let Some(data) = record.data.as_object_mut() {
                    data.insert("etag".into(), main_etag.into());
                }
            } else {
                if now - record.queued_ms > UNCONFIRMED_GRACE_MS {
                    tracing::info!(id = %record.id, "dropping an event whose confirm never copied the object");
                    self.count(&record, "dropped");
                    queue::remove(storage, bucket, &record.id).await?;
                    return Ok(Some(true));
                }
                *oldest = (*oldest).min(record.queued_ms);
                return Ok(Some(false));
            }
        }
        let Some((claimed, etag)) = queue::claim(storage, bucket, &record, &etag, now).await?
        else {
            *oldest = (*oldest).min(record.queued_ms);
            return Ok(Some(false));
        };
        let delivered = self.deliver(claimed, &etag).await?;
        if !delivered {
            *oldest = (*oldest).min(record.queued_ms);
        }
        Ok(Some(delivered))
    }

    /// Main holds the copy that confirm stamped with the draft's version.
    async fn confirmed(&self, requires: &Requires) -> Result<Option<String>, StorageError> {
        requires.held_as(&*self.storage, &self.buckets.main).await
    }

    fn count(&self, record: &Record, outcome: &'static str) {
        let r#type = record.event_type().map_or("unknown", |t| t.as_str());
        crate::metrics::get()
            .webhook_deliveries
            .get_or_create(&crate::metrics::DeliveryLabels { r#type, outcome })
            .inc();
    }

    fn is_disabled(&self, url: &str) -> bool {
        self.disabled
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(url)
    }

    /// Sends a claimed record; `true` when every endpoint has it and it was removed.
    async fn deliver(&self, mut record: Record, etag: &str) -> Result<bool, StorageError> {
        let kind = record.event_type();
        let body = record.body();
        let mut retry_after: Option<Duration> = None;
        let mut all = true;
        for endpoint in &self.config.endpoints {
            if endpoint.is_done(&record.done) || kind.is_some_and(|k| !endpoint.wants(k)) {
                continue;
            }
            if self.is_disabled(&endpoint.url) {
                // Not delivered: the record keeps waiting for this endpoint, so a restart,
                // another replica or `gateway events replay` can still send it.
                self.count(&record, "dropped");
                all = false;
                record.last_error =
                    Some("endpoint disabled by HTTP 410 in this process".to_owned());
                continue;
            }
            let attempt = self.attempt(endpoint, &record.id, &body).await;
            match attempt.verdict {
                Verdict::Delivered => {
                    self.count(&record, "delivered");
                    record.done.push(endpoint.fingerprint());
                }
                Verdict::Disable => {
                    self.count(&record, "disabled");
                    crate::metrics::get().webhook_endpoints_disabled.inc();
                    tracing::error!(endpoint = %endpoint.host(), "webhook endpoint answered 410 Gone: disabled in this process until restart");
                    self.disabled
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .insert(endpoint.url.clone());
                    all = false;
                    record.last_error = Some(attempt.what);
                }
                Verdict::Retry => {
                    self.count(&record, "retry");
                    all = false;
                    retry_after = retry_after.max(attempt.retry_after);
                    tracing::info!(id = %record.id, endpoint = %endpoint.host(), attempt = record.attempts + 1, got = %attempt.what, "webhook attempt failed; retrying on the schedule");
                    record.last_error = Some(attempt.what);
                }
            }
        }
        let storage = &*self.storage;
        if all {
            // A tombstone, not a removal: a confirm of this draft still in its check finds
            // the event delivered and does not queue it again.
            queue::bury(storage, &self.buckets.draft, &record.id, etag).await?;
            return Ok(true);
        }
        record.attempts += 1;
        match next_delay(
            &self.config.schedule,
            record.attempts,
            fastrand::f64(),
            retry_after,
        ) {
            Some(wait) => {
                record.next_ms = now_ms() + i64::try_from(wait.as_millis()).unwrap_or(i64::MAX / 2);
            }
            None => {
                record.failed = true;
                self.count(&record, "failed");
                tracing::error!(id = %record.id, attempts = record.attempts, "webhook undelivered after the whole retry schedule: kept for `gateway events replay`");
            }
        }
        record.lease_ms = 0;
        queue::replace(storage, &self.buckets.draft, &record, etag).await?;
        Ok(false)
    }

    async fn attempt(&self, endpoint: &Endpoint, id: &str, body: &[u8]) -> Attempt {
        let now = now_ms() / 1000;
        let mut request = self
            .client
            .post(&endpoint.url)
            .timeout(ATTEMPT_TIMEOUT)
            .header(http::header::CONTENT_TYPE, "application/json");
        for (name, value) in sign::headers(&self.config.secrets, id, now, body) {
            request = request.header(name, value);
        }
        match request.body(body.to_vec()).send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                Attempt {
                    verdict: verdict(status),
                    retry_after: response
                        .headers()
                        .get(http::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(retry_after),
                    what: format!("HTTP {status}"),
                }
            }
            Err(e) => Attempt {
                verdict: Verdict::Retry,
                retry_after: None,
                what: if e.is_timeout() {
                    "timed out".to_owned()
                } else if e.is_connect() {
                    "could not connect".to_owned()
                } else {
                    "request failed".to_owned()
                },
            },
        }
    }
}

/// `Retry-After`: seconds, or an HTTP date.
fn retry_after(text: &str) -> Option<Duration> {
    if let Ok(secs) = text.trim().parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    httpdate::parse_http_date(text.trim())
        .ok()
        .and_then(|at| at.duration_since(std::time::SystemTime::now()).ok())
}

#[cfg(test)]
mod tests {
    #[test]
    fn retry_after_in_seconds_or_a_date() {
        assert_eq!(
            super::retry_after(" 120 "),
            Some(std::time::Duration::from_secs(120))
        );
        assert_eq!(super::retry_after("soon"), None);
        assert_eq!(super::retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }
}
