//! The DraftStore API as plain async methods, protocol-free: REST and gRPC decode their
//! requests into these calls and encode the results. Upload URLs touch no storage (the fast
//! path); download URLs check the object exists; confirm and bucket creation call core.

use crate::api::error::{ApiError, Code};
use crate::auth::Tenant;
use crate::store::{BucketCors, Presign};
use draftstore_core::{
    confirm, confirm_with, Buckets, ConfirmOptions, ConfirmOutcome, ObjectName, Storage,
    StorageError, UploadConstraints,
};
use draftstore_signer::{Expiry, Method, Timestamp};
use std::sync::Arc;

/// The DraftStore API, protocol-free: REST and gRPC decode into these calls and encode their
/// results. Generic over the store `B`.
pub struct App<B> {
    /// The store: shared, as the local store's endpoint serves the same one.
    pub store: Arc<B>,
    /// The main bucket and its draft bucket.
    pub buckets: Buckets,
    /// How long an upload URL is valid.
    pub upload_ttl: Expiry,
    /// How long a download URL is valid.
    pub download_ttl: Expiry,
    /// Webhooks and the pre-confirm check, when configured.
    pub events: Option<Arc<crate::events::Events>>,
    /// Seconds a draft (and a multipart upload in progress) lives before sweep removes it
    /// (`OBJECT_LIFETIME`).
    pub object_lifetime: u64,
    /// Origins allowed by CORS (`DRAFTSTORE_CORS_ORIGINS`): bucket creation gives a draft
    /// bucket on S3 without CORS rules one for them.
    pub cors_origins: Vec<String>,
}

/// A presigned upload (PUT) into the draft bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadUrl {
    /// The presigned URL.
    pub url: String,
    /// The name as the caller gave it (without its tenant's folder).
    pub object_name: String,
    /// When the URL stops working, RFC 3339 UTC (`2026-11-30T12:00:00Z`).
    pub expires_at: String,
    /// The TTL was cut so the URL does not outlive the credentials it is signed with.
    pub cut_by_credentials: bool,
    /// Sorted by name; empty when nothing was declared.
    pub required_headers: Vec<(String, String)>,
}

/// A presigned download (GET) of a draft or a confirmed object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadUrl {
    /// The presigned URL.
    pub url: String,
    /// The name as the caller gave it.
    pub object_name: String,
    /// When the URL stops working, RFC 3339 UTC.
    pub expires_at: String,
    /// The TTL was cut so the URL does not outlive the credentials it is signed with.
    pub cut_by_credentials: bool,
}

/// Which bucket a download reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Source {
    /// The draft bucket (a preview before confirming).
    #[default]
    Draft,
    /// The main bucket (confirmed objects).
    Main,
}

/// The outcome of a confirm: where the object now lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfirmedUpload {
    /// The name as the caller gave it.
    pub object_name: String,
    /// `<main bucket>/<key>`.
    pub final_location: String,
    /// Size in bytes.
    pub size: u64,
    /// The object's ETag, unquoted.
    pub etag: String,
}

pub(crate) fn now() -> Result<Timestamp, ApiError> {
    crate::clock::timestamp_now()
        .ok_or_else(|| ApiError::new(Code::Clock, "the system clock is out of range"))
}

pub(crate) fn expiry_text(now: Timestamp, ttl: Expiry) -> String {
    now.checked_add(u64::from(ttl.secs()))
        .map(|t| t.rfc3339())
        .unwrap_or_default()
}

/// `ttl`, or less when the credentials expire before `now + ttl` (then `true`): a URL never
/// outlives the credentials it is signed with (`deadline`, Unix seconds, already less a
/// margin).
///
/// # Errors
/// 503 when the credentials expire before any URL could be used.
pub fn ttl_within(
    now: Timestamp,
    ttl: Expiry,
    deadline: Option<i64>,
) -> Result<(Expiry, bool), ApiError> {
    let Some(deadline) = deadline else {
        return Ok((ttl, false));
    };
    let left = deadline.saturating_sub(now.unix());
    if left >= i64::from(ttl.secs()) {
        return Ok((ttl, false));
    }
    let cut = u64::try_from(left)
        .ok()
        .and_then(|secs| Expiry::new(secs).ok())
        .ok_or_else(|| {
            ApiError::new(
                Code::CredentialsExpired,
                "the S3 credentials expire now and have not been refreshed yet; retry shortly",
            )
        })?;
    tracing::debug!(
        requested_secs = ttl.secs(),
        granted_secs = cut.secs(),
        "URL lifetime cut to the credentials' expiry"
    );
    Ok((cut, true))
}

/// The storage key of `name` for `tenant`: `<tenant>/<name>`, the prefix counted against
/// S3's key limit. Without a tenant, the name itself.
///
/// # Errors
/// An invalid name, or one too long once prefixed.
pub fn object_key(tenant: Option<&Tenant>, name: &str) -> Result<ObjectName, ApiError> {
    let Some(tenant) = tenant else {
        return Ok(ObjectName::parse(name)?);
    };
    Ok(ObjectName::parse_in(tenant.folder(), name)?)
}

impl<B: Storage + Presign> App<B> {
    /// A presigned PUT into the draft bucket, with the declared constraints signed in.
    ///
    /// # Errors
    /// An invalid name or constraints; a signing failure.
    pub async fn upload_url(
        &self,
        tenant: Option<&Tenant>,
        name: impl Into<String>,
        constraints: &UploadConstraints,
    ) -> Result<UploadUrl, ApiError> {
        // Taken owned: the REST and gRPC adapters hand over the name they decoded, which the
        // reply carries back without a copy.
        let name: String = name.into();
        let key = object_key(tenant, &name)?;
        let largest = self.store.max_single_put();
        if let Some(n) = constraints.content_length.filter(|&n| n > largest) {
            return Err(ApiError::new(
                Code::InvalidConstraints,
                format!(
                    "content_length {n} is over the {largest} bytes one upload URL takes: \
                     use a multipart upload"
                ),
            ));
        }
        if let Some(tenant) = tenant {
            tenant.allow_upload(constraints).await?;
        }
        let mut required_headers = constraints.required_headers();
        let storage_headers = self.store.upload_headers();
        if !storage_headers.is_empty() {
            required_headers.extend_from_slice(storage_headers);
            required_headers.sort();
        }
        let headers: Vec<(&str, &str)> = required_headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let now = now()?;
        let (ttl, cut_by_credentials) =
            ttl_within(now, self.upload_ttl, self.store.url_deadline())?;
        let url = self
            .store
            .presign(Method::Put, &self.buckets.draft, &key, &headers, ttl, now)?;
        Ok(UploadUrl {
            url,
            object_name: name,
            expires_at: expiry_text(now, ttl),
            cut_by_credentials,
            required_headers,
        })
    }

    /// A presigned GET of the draft (to preview) or of the confirmed object; 404 when absent.
    ///
    /// # Errors
    /// An invalid name; the object is not there; storage failures.
    pub async fn download_url(
        &self,
        tenant: Option<&Tenant>,
        name: &str,
        source: Source,
    ) -> Result<DownloadUrl, ApiError> {
        let key = object_key(tenant, name)?;
        let bucket = match source {
            Source::Draft => &self.buckets.draft,
            Source::Main => &self.buckets.main,
        };
        match self.store.head_object(bucket, key.as_str()).await {
            Ok(_) => {}
            Err(StorageError::NotFound { .. }) => {
                let message = if source == Source::Draft {
                    format!(
                        "no draft object named {name} (once confirmed, an object is in main: \
                         ask with source main)"
                    )
                } else {
                    format!("no main object named {name}")
                };
                return Err(ApiError::new(Code::NotFound, message));
            }
            Err(e) => return Err(e.into()),
        }
        if let Some(tenant) = tenant {
            tenant.allow_url().await?;
        }
        let now = now()?;
        let (ttl, cut_by_credentials) =
            ttl_within(now, self.download_ttl, self.store.url_deadline())?;
        let url = self
            .store
            .presign(Method::Get, bucket, &key, &[], ttl, now)?;
        Ok(DownloadUrl {
            url,
            object_name: name.to_owned(),
            expires_at: expiry_text(now, ttl),
            cut_by_credentials,
        })
    }

    /// Moves the draft into main (idempotent).
    ///
    /// # Errors
    /// Not found, conflict, constraint mismatch, storage failures.
    pub async fn confirm(
        &self,
        tenant: Option<&Tenant>,
        name: &str,
        overwrite: bool,
        expect: Option<&UploadConstraints>,
    ) -> Result<ConfirmedUpload, ApiError> {
        let key = object_key(tenant, name)?;
        let options = ConfirmOptions { overwrite, expect };
        let result = match &self.events {
            None => confirm(&*self.store, &self.buckets, &key, options).await,
            Some(events) => {
                let hook = crate::events::hook::Hook {
                    events,
                    store: &*self.store,
                    buckets: &self.buckets,
                    tenant: tenant.map(Tenant::as_str),
                    object_name: name,
                    written: std::sync::Mutex::default(),
                };
                let result = confirm_with(&*self.store, &self.buckets, &key, options, &hook).await;
                if result.is_ok() {
                    events.kick();
                }
                result
            }
        };
        let metrics = crate::metrics::get();
        // Each object counts as confirmed once: the call that moved it (see core's confirm).
        let outcome = match &result {
            Ok(done) if done.outcome == ConfirmOutcome::Moved => "confirmed",
            Ok(_) => "already_confirmed",
            Err(draftstore_core::ConfirmError::NotFound { .. }) => "not_found",
            Err(draftstore_core::ConfirmError::Conflict { .. }) => "conflict",
            Err(draftstore_core::ConfirmError::DraftChanged { .. }) => "draft_changed",
            Err(draftstore_core::ConfirmError::ConstraintMismatch { .. }) => "constraint_mismatch",
            Err(draftstore_core::ConfirmError::Rejected { .. }) => "rejected",
            Err(_) => "error",
        };
        metrics
            .confirms
            .get_or_create(&crate::metrics::OutcomeLabels { outcome })
            .inc();
        let done = result.map_err(|e| ApiError::from(e).naming(&key, name))?;
        if done.outcome == ConfirmOutcome::Moved {
            metrics.confirmed_bytes.inc_by(done.size);
        }
        Ok(ConfirmedUpload {
            object_name: name.to_owned(),
            final_location: done.location,
            size: done.size,
            etag: done.etag,
        })
    }

    /// Creates both buckets if missing and gives the draft bucket CORS rules for
    /// [`App::cors_origins`] when it has none; returns the draft bucket's versioning (reported,
    /// never changed: see [`Presign::versioning`]), with a warning in the log when it is on.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn create_buckets(&self) -> Result<String, ApiError> {
        Ok(self.create_buckets_with_cors().await?.0)
    }

    /// [`App::create_buckets`], also returning what was found or done about the draft
    /// bucket's CORS rules ([`Presign::ensure_cors`]).
    ///
    /// # Errors
    /// Storage failures creating the buckets (CORS failures are reported, not errors).
    pub async fn create_buckets_with_cors(&self) -> Result<(String, BucketCors), ApiError> {
        self.store.create_bucket(&self.buckets.main).await?;
        self.store.create_bucket(&self.buckets.draft).await?;
        let cors = self
            .store
            .ensure_cors(&self.buckets.draft, &self.cors_origins)
            .await;
        Ok((self.draft_versioning().await, cors))
    }

    /// The draft bucket's versioning, with a warning in the log when it is on: sweep's deletes
    /// then leave noncurrent versions (README: a lifecycle rule removes them).
    pub async fn draft_versioning(&self) -> String {
        let status = self.store.versioning(&self.buckets.draft).await;
        if status == "Enabled" || status == "Suspended" {
            tracing::warn!(bucket = %self.buckets.draft, versioning = %status, "the draft bucket is versioned: sweep leaves noncurrent versions; add a lifecycle rule that expires them (see README)");
        }
        status
    }

    /// Both buckets answer (HeadBucket).
    ///
    /// # Errors
    /// `NOT_READY` (503 / UNAVAILABLE) naming the first bucket that is missing or does not
    /// answer, and why.
    pub async fn ready(&self) -> Result<(), ApiError> {
        for (role, bucket) in [("main", &self.buckets.main), ("draft", &self.buckets.draft)] {
            let message = match self.store.head_bucket(bucket).await {
                Ok(()) => continue,
                Err(StorageError::NotFound { .. }) => format!(
                    "the {role} bucket {:?} does not exist: `gateway serve` creates it at start unless DRAFTSTORE_CREATE_BUCKETS=false, as does POST /api/v1/draft-bucket",
                    bucket.as_str()
                ),
                Err(e) => format!(
                    "the {role} bucket {:?} does not answer: {}",
                    bucket.as_str(),
                    ApiError::from(e).message
                ),
            };
            return Err(ApiError::new(Code::NotReady, message));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_text_is_rfc3339() {
        let t = Timestamp::parse_amz("20261127T120000Z").unwrap();
        assert_eq!(
            expiry_text(t, Expiry::new(3600).unwrap()),
            "2026-11-27T13:00:00Z"
        );
    }

    #[test]
    fn urls_never_outlive_their_credentials() {
        let t = Timestamp::parse_amz("20261127T120000Z").unwrap();
        let hour = Expiry::new(3600).unwrap();
        let at = t.unix();
        assert_eq!(ttl_within(t, hour, None).unwrap(), (hour, false));
        assert_eq!(ttl_within(t, hour, Some(at + 3600)).unwrap(), (hour, false));
        let (cut, was_cut) = ttl_within(t, hour, Some(at + 75)).unwrap();
        assert_eq!((cut.secs(), was_cut), (75, true));
        for gone in [at, at - 10, i64::MIN] {
            let e = ttl_within(t, hour, Some(gone)).unwrap_err();
            assert_eq!(e.code.as_str(), "CREDENTIALS_EXPIRED");
        }
    }
}
