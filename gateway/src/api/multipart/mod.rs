//! Multipart uploads (issue 15), protocol-free: the gateway itself creates, lists, completes
//! and aborts each upload on the store (so content type, metadata and DraftStore's stamp are
//! set by the server), and presigns only each part's PUT, on demand, so a URL is always fresh
//! however long the upload takes. The rules DraftStore checks itself are core's (`parts`);
//! REST ([`rest`]) and gRPC (`grpc::multipart`) are thin codecs over these calls.
//!
//! Tenant isolation needs nothing of its own: an upload's key carries its tenant's folder, so
//! another tenant's upload id names no upload under the caller's key (the store's
//! `NoSuchUpload`, 404).

mod checksums;
mod part_urls;
mod reply;
pub mod rest;

pub use part_urls::{SignedPart, SignedParts};

use crate::api::app::{object_key, App};
use crate::api::error::{ApiError, Code};
use crate::auth::Tenant;
use crate::store::Presign;
use draftstore_core::{
    assemble, check_completed, check_declared, kept_parts, plan, upload_metadata,
    ChecksumAlgorithm, CompletedPart, MultipartOptions, Part, Storage, StoredPart,
    UploadConstraints,
};
use draftstore_signer::Timestamp;

/// The most uploads in progress one list answers (as list-drafts answers at most 1000 drafts).
pub const MAX_LISTED_UPLOADS: usize = 1000;

/// A multipart upload just created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedUpload {
    /// The store's id of the upload.
    pub upload_id: String,
    /// The name as the caller gave it.
    pub object_name: String,
    /// Bytes per part (the last may be smaller).
    pub part_size: u64,
    /// Parts the declared length takes; `None` without a declared length.
    pub part_count: Option<u32>,
    /// When sweep may abort it (created + the object lifetime), RFC 3339 UTC.
    pub expires_at: String,
}

/// A part the store holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartInfo {
    /// Its number.
    pub part_number: u32,
    /// Its ETag, without quotes.
    pub etag: String,
    /// Bytes.
    pub size: u64,
}

/// The draft a complete made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletedUpload {
    /// The name as the caller gave it.
    pub object_name: String,
    /// Bytes.
    pub size: u64,
    /// The draft's ETag, without quotes (S3's multipart form `<hex>-<parts>`).
    pub etag: String,
}

/// An upload in progress, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadInProgress {
    /// The store's id of the upload.
    pub upload_id: String,
    /// The name as the caller gave it (without the tenant's folder).
    pub object_name: String,
    /// When it was created, RFC 3339 UTC.
    pub initiated: String,
}

/// `"SHA256"`, the one per-part checksum algorithm offered.
pub const SHA256: &str = "SHA256";

/// Refuses an upload id that cannot be one: empty, over 1024 bytes, or not printable ASCII
/// (S3's are base64-like; the embedded store's hex).
///
/// # Errors
/// `INVALID_REQUEST`.
pub fn check_upload_id(upload_id: &str) -> Result<(), ApiError> {
    let ok = (1..=1024).contains(&upload_id.len())
        && upload_id.bytes().all(|b| (0x21..0x7f).contains(&b));
    if ok {
        return Ok(());
    }
    Err(ApiError::new(
        Code::InvalidRequest,
        "upload_id must be 1..=1024 printable ASCII characters, as created",
    ))
}

fn now() -> Result<Timestamp, ApiError> {
    crate::clock::timestamp_now()
        .ok_or_else(|| ApiError::new(Code::Clock, "the system clock is out of range"))
}

impl<B: Storage + Presign> App<B> {
    /// Creates a multipart upload of `name` into the draft bucket with the declared
    /// constraints stamped on it (checked against the tenant's limits as a single upload's).
    ///
    /// # Errors
    /// An invalid name, constraints, part size or a whole-object checksum (400); a tenant
    /// limit (403) or rate (429); storage failures.
    pub async fn create_multipart(
        &self,
        tenant: Option<&Tenant>,
        name: &str,
        declared: &UploadConstraints,
        part_size: Option<u64>,
        sha256: bool,
    ) -> Result<CreatedUpload, ApiError> {
        let key = object_key(tenant, name)?;
        check_declared(declared)?;
        let plan = plan(declared.content_length, part_size)?;
        if let Some(tenant) = tenant {
            tenant.allow_upload(declared).await?;
        }
        let now = now()?;
        let options = MultipartOptions {
            content_type: declared.content_type.clone(),
            metadata: upload_metadata(declared),
            checksum: sha256.then_some(ChecksumAlgorithm::Sha256),
        };
        let upload_id = self
            .store
            .create_multipart_upload(&self.buckets.draft, key.as_str(), &options)
            .await?;
        if sha256 {
            // Kept for stores whose ListParts does not say so (SeaweedFS): see `kept_parts`.
            let kept = kept_parts::keep_algorithm(
                &*self.store,
                &self.buckets.draft,
                key.as_str(),
                &upload_id,
            )
            .await;
            if let Err(e) = kept {
                let _ = self
                    .store
                    .abort_upload(&self.buckets.draft, key.as_str(), &upload_id)
                    .await;
                return Err(e.into());
            }
        }
        Ok(CreatedUpload {
            upload_id,
            object_name: name.to_owned(),
            part_size: plan.part_size,
            part_count: plan.part_count,
            expires_at: now
                .checked_add(self.object_lifetime)
                .map(|t| t.rfc3339())
                .unwrap_or_default(),
        })
    }

    /// Every part stored so far, in ascending number.
    ///
    /// # Errors
    /// An unknown upload (404); storage failures.
    pub async fn list_parts(
        &self,
        tenant: Option<&Tenant>,
        name: &str,
        upload_id: &str,
    ) -> Result<Vec<PartInfo>, ApiError> {
        let key = object_key(tenant, name)?;
        check_upload_id(upload_id)?;
        let listed = self
            .store
            .list_parts(&self.buckets.draft, key.as_str(), upload_id)
            .await?;
        let mut parts: Vec<PartInfo> = listed
            .into_iter()
            .map(|p| PartInfo {
                part_number: p.part_number,
                etag: p.etag.trim_matches('"').to_owned(),
                size: p.size,
            })
            .collect();
        parts.sort_by_key(|p| p.part_number);
        Ok(parts)
    }

    /// Assembles `chosen` (`None`: every stored part, in order) into the draft, then checks it
    /// against its declaration (the parts must add up to the declared length): a draft that
    /// breaks it is removed, as confirm would refuse it.
    ///
    /// # Errors
    /// A part rule (400 naming the part); an unknown upload (404); the declaration broken
    /// (422); storage failures.
    pub async fn complete_multipart(
        &self,
        tenant: Option<&Tenant>,
        name: &str,
        upload_id: &str,
        chosen: Option<&[(u64, String)]>,
    ) -> Result<CompletedUpload, ApiError> {
        let key = object_key(tenant, name)?;
        check_upload_id(upload_id)?;
        let draft = &self.buckets.draft;
        let listed: Vec<Part> = self
            .store
            .list_parts(draft, key.as_str(), upload_id)
            .await?;
        let stored: Vec<StoredPart<'_>> = listed
            .iter()
            .map(|p| StoredPart {
                number: p.part_number,
                etag: &p.etag,
                size: p.size,
            })
            .collect();
        let assembly = assemble(&stored, chosen)?;
        // Each part as listed: its stored ETag, and its checksum when the upload keeps them.
        let mut parts: Vec<CompletedPart> = assembly
            .parts
            .iter()
            .filter_map(|(number, _)| listed.iter().find(|p| p.part_number == *number))
            .map(CompletedPart::from)
            .collect();
        self.fill_checksums(key.as_str(), upload_id, &listed, &mut parts)
            .await?;
        let completed = self
            .store
            .complete_multipart_upload(draft, key.as_str(), upload_id, &parts)
            .await?;
        if let Err(e) = kept_parts::forget(&*self.store, draft, key.as_str(), upload_id).await {
            tracing::warn!(%upload_id, error = %e, "could not remove the checksums kept for a completed upload");
        }
        let object = self.store.head_object(draft, key.as_str()).await?;
        if let Err(violation) = check_completed(&object) {
            let _ = self.store.delete_object(draft, key.as_str()).await;
            return Err(ApiError::new(
                Code::ConstraintMismatch,
                format!("{name} does not match what was declared at create: {violation}; the draft was removed, start a new upload"),
            ));
        }
        Ok(CompletedUpload {
            object_name: name.to_owned(),
            size: object.size,
            etag: completed.etag.trim_matches('"').to_owned(),
        })
    }

    /// Abandons an upload and frees its parts.
    ///
    /// # Errors
    /// An unknown upload (404); storage failures.
    pub async fn abort_multipart(
        &self,
        tenant: Option<&Tenant>,
        name: &str,
        upload_id: &str,
    ) -> Result<(), ApiError> {
        let key = object_key(tenant, name)?;
        check_upload_id(upload_id)?;
        // S3 answers an abort of an unknown upload with success: look first, for the 404.
        self.store
            .list_parts(&self.buckets.draft, key.as_str(), upload_id)
            .await?;
        Ok(self
            .store
            .abort_upload(&self.buckets.draft, key.as_str(), upload_id)
            .await?)
    }

    /// The caller's uploads in progress (of `name` only, when given; of names starting with
    /// `prefix`, when given: checked as list-drafts checks it), pages joined up to
    /// [`MAX_LISTED_UPLOADS`]; `true` with them when more match (the listing stopped there, so
    /// that no caller makes the server walk and answer an unbounded list).
    ///
    /// # Errors
    /// An invalid name; a prefix no name can start with (400 `INVALID_REQUEST`); storage
    /// failures.
    pub async fn list_multipart(
        &self,
        tenant: Option<&Tenant>,
        name: Option<&str>,
        prefix: &str,
    ) -> Result<(Vec<UploadInProgress>, bool), ApiError> {
        let folder = tenant.map(|t| format!("{}/", t.folder()));
        let exact = name.map(|n| object_key(tenant, n)).transpose()?;
        let starts = crate::api::prefix::key_prefix(tenant, prefix)?;
        let listed = match &exact {
            Some(key) => key.as_str().to_owned(),
            None => starts.clone(),
        };
        let mut found = Vec::new();
        let mut continuation = None;
        loop {
            let page = self
                .store
                .list_uploads(&self.buckets.draft, &listed, continuation.as_ref())
                .await?;
            for upload in page.uploads {
                if exact.as_ref().is_some_and(|k| k.as_str() != upload.key)
                    || !upload.key.starts_with(starts.as_str())
                    || !crate::api::prefix::listed(&upload.key)
                {
                    continue;
                }
                let shown = match &folder {
                    Some(folder) => match upload.key.strip_prefix(folder.as_str()) {
                        Some(rest) => rest.to_owned(),
                        None => continue,
                    },
                    None => upload.key,
                };
                if found.len() == MAX_LISTED_UPLOADS {
                    return Ok((found, true));
                }
                found.push(UploadInProgress {
                    upload_id: upload.upload_id,
                    object_name: shown,
                    initiated: Timestamp::from_unix(upload.initiated)
                        .map(|t| t.rfc3339())
                        .unwrap_or_default(),
                });
            }
            match page.next {
                Some(next) => continuation = Some(next),
                None => return Ok((found, false)),
            }
        }
    }
}
