//! Presigned URLs to the S3 server, at its public endpoint (`DRAFTSTORE_S3_PUBLIC_ENDPOINT`, else
//! the endpoint the gateway calls), path- or virtual-host-addressed as configured, signed with
//! the current credentials. Every kind is made by [`Urls`] from [`S3Storage::urls`].

use super::S3Storage;
use crate::store::{PartBatch, PartUrl, Presign, Urls};
use draftstore_core::{BucketName, ObjectName, StorageError};
use draftstore_signer::{Expiry, Method, PartUrls, PostForm, PostPolicy, Signer, Timestamp};

impl S3Storage {
    /// Where the store's URLs point, signed by `signer` (of the current credentials).
    fn urls<'a>(&'a self, signer: &'a Signer) -> Urls<'a> {
        let config = self.config();
        Urls {
            signer,
            endpoint: &config.public_endpoint,
            addressing: config.addressing,
            under: None,
        }
    }
}

impl Presign for S3Storage {
    fn presign(
        &self,
        method: Method,
        bucket: &BucketName,
        key: &ObjectName,
        headers: &[(&str, &str)],
        expires: Expiry,
        now: Timestamp,
    ) -> Result<String, StorageError> {
        let credentials = self.credentials().current();
        self.urls(&credentials.signer)
            .presign(method, bucket, key, headers, expires, now)
    }

    fn presign_upload_part(
        &self,
        part: &PartUrl<'_>,
        expires: Expiry,
        now: Timestamp,
    ) -> Result<String, StorageError> {
        let credentials = self.credentials().current();
        self.urls(&credentials.signer).part(part, expires, now)
    }

    fn presign_post(
        &self,
        policy: &PostPolicy<'_>,
        expires: Expiry,
        now: Timestamp,
    ) -> Result<(String, PostForm), StorageError> {
        let credentials = self.credentials().current();
        self.urls(&credentials.signer).post(policy, expires, now)
    }

    fn presign_upload_parts(
        &self,
        batch: &PartBatch<'_>,
        expires: Expiry,
        now: Timestamp,
    ) -> Result<PartUrls, StorageError> {
        let credentials = self.credentials().current();
        self.urls(&credentials.signer).parts(batch, expires, now)
    }

    fn url_deadline(&self) -> Option<i64> {
        self.credentials().url_deadline()
    }

    fn upload_headers(&self) -> &[(String, String)] {
        self.sse_headers()
    }

    async fn ensure_cors(
        &self,
        bucket: &BucketName,
        origins: &[String],
    ) -> crate::store::BucketCors {
        self.ensure_draft_cors(bucket, origins).await
    }

    async fn versioning(&self, bucket: &BucketName) -> String {
        match S3Storage::versioning(self, bucket).await {
            Ok(status) => status,
            Err(e) => {
                tracing::debug!(%bucket, error = %e, "cannot read the bucket's versioning");
                "Unknown".to_owned()
            }
        }
    }
}
