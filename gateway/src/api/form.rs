//! `upload-form`: a presigned POST into the draft bucket (AWS "Browser-based uploads using
//! POST", SigV4), for browsers and for Companion's `GET /s3/params`. The same name rules,
//! tenant folder, tenant limits and rate as [`App::upload_url`]; the policy pins the bucket,
//! the exact key, the size range, the `Content-Type` and every `x-amz-meta-*` value (the
//! caller's and DraftStore's declaration stamp, which records the range so that confirm checks
//! the stored size against it).

use crate::api::app::{expiry_text, now, object_key, ttl_within, App};
use crate::api::error::ApiError;
use crate::auth::Tenant;
use crate::store::Presign;
use draftstore_core::{Metadata, Storage, UploadConstraints, MAX_OBJECT_SIZE};
use draftstore_signer::PostPolicy;

/// What a caller asks a POST form for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FormRequest {
    /// The object's name, without its tenant's folder (core's `ObjectName` rules).
    pub object_name: String,
    /// The exact `Content-Type` the form must send (1..=255 printable ASCII).
    pub content_type: Option<String>,
    /// The largest file allowed, in bytes (at most 5 TiB). Absent: the tenant's `max_size`
    /// when it has one, else no upper bound but the store's own.
    pub max_content_length: Option<u64>,
    /// The smallest file allowed, in bytes (default 0 when a maximum applies).
    pub min_content_length: Option<u64>,
    /// `x-amz-meta-*` values (keys without the prefix) the form carries, within the same
    /// 2 KiB budget as upload-url's.
    pub metadata: Metadata,
}

/// A signed POST form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadForm {
    /// Where the form is posted: the draft bucket's URL (on the embedded store,
    /// `<public url>/_store/<draft bucket>`).
    pub url: String,
    /// The form fields to send, in this order, before the `file` part (`key`, `policy`,
    /// `x-amz-algorithm`, `x-amz-credential`, `x-amz-date`, `x-amz-signature`, and
    /// `Content-Type`, `x-amz-meta-*`, `x-amz-security-token` when they apply).
    pub fields: Vec<(String, String)>,
    /// The name as the caller gave it.
    pub object_name: String,
    /// The storage key in the draft bucket (tenant folder included): the form's `key` field.
    pub key: String,
    /// When the policy expires, RFC 3339 UTC.
    pub expires_at: String,
    /// The lifetime was cut so the policy does not outlive the credentials it is signed with.
    pub cut_by_credentials: bool,
    /// The size range the policy enforces, `min..=max` bytes, when there is one.
    pub length_range: Option<(u64, u64)>,
}

impl FormRequest {
    /// The declaration this form stands for: type, metadata and size range, validated.
    ///
    /// # Errors
    /// `INVALID_CONSTRAINTS` for a malformed type, metadata over the budget, or a range with
    /// `min > max` or past 5 TiB.
    pub fn constraints(&self, tenant: Option<&Tenant>) -> Result<UploadConstraints, ApiError> {
        let declared =
            UploadConstraints::new(self.content_type.clone(), None, None, self.metadata.clone())?;
        let max = self
            .max_content_length
            .or_else(|| tenant.and_then(|t| t.policy().max_size));
        Ok(match (self.min_content_length, max) {
            (None, None) => declared,
            (min, Some(max)) => declared.with_length_range(min.unwrap_or(0), max)?,
            (Some(min), None) => declared.with_length_range(min, MAX_OBJECT_SIZE)?,
        })
    }
}

impl<B: Storage + Presign> App<B> {
    /// A presigned POST form for `request.object_name` in the draft bucket, valid for the
    /// upload TTL (less when the S3 credentials expire sooner).
    ///
    /// # Errors
    /// `INVALID_OBJECT_NAME`, `INVALID_CONSTRAINTS`; `TENANT_LIMIT` (403) for a type or
    /// maximum size outside the tenant's limits; `RATE_LIMITED` (429); a signing failure.
    pub async fn upload_form(
        &self,
        tenant: Option<&Tenant>,
        request: &FormRequest,
    ) -> Result<UploadForm, ApiError> {
        let key = object_key(tenant, &request.object_name)?;
        let constraints = request.constraints(tenant)?;
        if let Some(tenant) = tenant {
            // The tenant's size limit applies to the largest file the form allows.
            let as_put = UploadConstraints {
                content_length: constraints.length_range.map(|(_, max)| max),
                ..constraints.clone()
            };
            tenant.allow_upload(&as_put).await?;
        }
        let headers = constraints.required_headers();
        let metadata: Vec<(&str, &str)> = headers
            .iter()
            .filter_map(|(n, v)| Some((n.strip_prefix("x-amz-meta-")?, v.as_str())))
            .collect();
        let policy = PostPolicy {
            bucket: self.buckets.draft.as_str(),
            key: key.as_str(),
            content_type: constraints.content_type.as_deref(),
            length_range: constraints.length_range,
            metadata: &metadata,
        };
        let now = now()?;
        let (ttl, cut_by_credentials) =
            ttl_within(now, self.upload_ttl, self.store.url_deadline())?;
        let (url, form) = self.store.presign_post(&policy, ttl, now)?;
        Ok(UploadForm {
            url,
            fields: form.into_fields(),
            object_name: request.object_name.clone(),
            key: key.as_str().to_owned(),
            expires_at: expiry_text(now, ttl),
            cut_by_credentials,
            length_range: constraints.length_range,
        })
    }
}
