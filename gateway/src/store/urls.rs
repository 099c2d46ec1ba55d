//! How a store's presigned URLs are made, written once for every kind ([`Urls`]): a store says
//! where its URLs point (endpoint, addressing, the path its buckets sit under) and which signer
//! signs them, and every presign — GET and PUT, UploadPart one by one or in a batch, the POST
//! form's URL — starts from the same request, so an addressing or header rule is written in
//! one place.

use super::{PartBatch, PartUrl};
use draftstore_core::{BucketName, ObjectName, StorageError};
use draftstore_signer::{
    Addressing, Endpoint, Expiry, Method, Part, PartUrls, PostForm, PostPolicy, Request, Signer,
    Timestamp,
};

/// The header a part's checksum is signed into its URL as.
const CHECKSUM_HEADER: &str = "x-amz-checksum-sha256";

/// One store's presigned URLs: its signer and where its URLs point. A store makes one per call
/// (`LocalStorage::urls`, `S3Storage::urls`); its [`Presign`](super::Presign) methods only
/// forward to it.
#[derive(Debug, Clone, Copy)]
pub struct Urls<'a> {
    /// Signs every URL (SigV4 query authentication).
    pub signer: &'a Signer,
    /// Where clients reach the store.
    pub endpoint: &'a Endpoint,
    /// Path-style (`/<bucket>/<key>`) or virtual-hosted (`<bucket>.<host>/<key>`).
    pub addressing: Addressing,
    /// A path segment the store's buckets sit under, signed as the request's bucket with
    /// `<bucket>/<key>` as its key (`_store` on the embedded store: `/_store/<bucket>/<key>`,
    /// path-style only); `None` on S3.
    pub under: Option<&'a str>,
}

impl Urls<'_> {
    /// Calls `sign` with the request for `method` on `bucket/key` (no headers, no query).
    fn with_request<T>(
        &self,
        method: Method,
        bucket: &BucketName,
        key: &ObjectName,
        sign: impl FnOnce(Request<'_>) -> T,
    ) -> T {
        match self.under {
            None => sign(Request::new(
                method,
                self.endpoint,
                self.addressing,
                bucket.as_str(),
                key.as_str(),
            )),
            Some(under) => {
                let path_key = format!("{bucket}/{key}");
                sign(Request::new(
                    method,
                    self.endpoint,
                    self.addressing,
                    under,
                    &path_key,
                ))
            }
        }
    }

    /// A presigned URL for `method` on `bucket/key` with `headers` (lowercase names) signed
    /// in, valid `expires` seconds from `now` ([`Presign::presign`](super::Presign::presign)).
    ///
    /// # Errors
    /// [`StorageError::Backend`] when the request cannot be signed.
    pub fn presign(
        &self,
        method: Method,
        bucket: &BucketName,
        key: &ObjectName,
        headers: &[(&str, &str)],
        expires: Expiry,
        now: Timestamp,
    ) -> Result<String, StorageError> {
        self.with_request(method, bucket, key, |request| {
            let request = Request { headers, ..request };
            self.signer
                .presign(&request, expires, now)
                .map_err(cannot_presign)
        })
    }

    /// A presigned UploadPart of `part`, its checksum (if any) signed in
    /// ([`Presign::presign_upload_part`](super::Presign::presign_upload_part)).
    ///
    /// # Errors
    /// [`StorageError::InvalidArgument`] for a part number outside 1..=10000 or an empty
    /// upload id; [`StorageError::Backend`] when the request cannot be signed.
    pub fn part(
        &self,
        part: &PartUrl<'_>,
        expires: Expiry,
        now: Timestamp,
    ) -> Result<String, StorageError> {
        draftstore_core::check_part_number(part.part_number)?;
        check_upload_id(part.upload_id)?;
        let number = part.part_number.to_string();
        let query = [
            ("partNumber", number.as_str()),
            ("uploadId", part.upload_id),
        ];
        let checksum;
        let headers: &[(&str, &str)] = match part.checksum_sha256 {
            Some(sum) => {
                checksum = [(CHECKSUM_HEADER, sum)];
                &checksum
            }
            None => &[],
        };
        self.with_request(Method::Put, part.bucket, part.key, |request| {
            let request = Request {
                query: &query,
                headers,
                ..request
            };
            self.signer
                .presign(&request, expires, now)
                .map_err(cannot_presign)
        })
    }

    /// The UploadParts of `batch` in one [`Signer::presign_parts`] call, after the same checks
    /// as [`Urls::part`]: each URL is the one [`Urls::part`] gives
    /// ([`Presign::presign_upload_parts`](super::Presign::presign_upload_parts)).
    ///
    /// # Errors
    /// As [`Urls::part`], for the first part that fails.
    pub fn parts(
        &self,
        batch: &PartBatch<'_>,
        expires: Expiry,
        now: Timestamp,
    ) -> Result<PartUrls, StorageError> {
        check_upload_id(batch.upload_id)?;
        for part in batch.parts {
            draftstore_core::check_part_number(part.part_number)?;
        }
        // Each part's header, where the signer's `Part` can borrow it.
        let checksums: Vec<[(&str, &str); 1]> = batch
            .parts
            .iter()
            .map(|p| [(CHECKSUM_HEADER, p.checksum_sha256.unwrap_or_default())])
            .collect();
        let parts: Vec<Part<'_>> = batch
            .parts
            .iter()
            .zip(&checksums)
            .map(|(p, header)| Part {
                number: p.part_number,
                headers: if p.checksum_sha256.is_some() {
                    header
                } else {
                    &[]
                },
            })
            .collect();
        self.with_request(Method::Put, batch.bucket, batch.key, |request| {
            self.signer
                .presign_parts(&request, batch.upload_id, &parts, expires, now)
                .map_err(cannot_presign)
        })
    }

    /// The URL a POST form for `bucket` goes to — `scheme://authority/[<under>/]<bucket>`
    /// (path-style) or `scheme://<bucket>.authority/` (virtual-hosted) — and the signed form
    /// fields allowing `policy` ([`Presign::presign_post`](super::Presign::presign_post)).
    ///
    /// # Errors
    /// [`StorageError::InvalidArgument`] when the policy cannot be signed.
    pub fn post(
        &self,
        policy: &PostPolicy<'_>,
        expires: Expiry,
        now: Timestamp,
    ) -> Result<(String, PostForm), StorageError> {
        let form = self
            .signer
            .presign_post(policy, expires, now)
            .map_err(|e| StorageError::InvalidArgument {
                reason: format!("cannot sign the POST policy: {e}"),
            })?;
        let scheme = self.endpoint.scheme().as_str();
        let authority = self.endpoint.authority();
        let bucket = policy.bucket;
        let url = match (self.addressing, self.under) {
            (Addressing::Path, None) => format!("{scheme}://{authority}/{bucket}"),
            (Addressing::Path, Some(under)) => format!("{scheme}://{authority}/{under}/{bucket}"),
            (Addressing::VirtualHost, _) => format!("{scheme}://{bucket}.{authority}/"),
        };
        Ok((url, form))
    }
}

fn check_upload_id(upload_id: &str) -> Result<(), StorageError> {
    if upload_id.is_empty() {
        return Err(StorageError::InvalidArgument {
            reason: "an upload id is needed".into(),
        });
    }
    Ok(())
}

fn cannot_presign(e: draftstore_signer::Error) -> StorageError {
    StorageError::Backend {
        reason: format!("cannot presign: {e}"),
    }
}
