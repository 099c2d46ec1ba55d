//! Presigned URLs to the S3 server, at its public endpoint (`DRAFTSTORE_S3_PUBLIC_ENDPOINT`, else
//! the endpoint the gateway calls), path- or virtual-host-addressed as configured.

use super::S3Storage;
use crate::store::{PartBatch, PartUrl, Presign};
use draftstore_core::{BucketName, ObjectName, StorageError};
use draftstore_signer::{Expiry, Method, PartUrls, PostForm, PostPolicy, Request, Timestamp};

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
        let config = self.config();
        let request = Request::new(
            method,
            &config.public_endpoint,
            config.addressing,
            bucket.as_str(),
            key.as_str(),
        );
        let credentials = self.credentials().current();
        crate::store::sign(&credentials.signer, request, headers, expires, now)
    }

    fn presign_upload_part(
        &self,
        part: &PartUrl<'_>,
        expires: Expiry,
        now: Timestamp,
    ) -> Result<String, StorageError> {
        let config = self.config();
        let request = Request::new(
            Method::Put,
            &config.public_endpoint,
            config.addressing,
            part.bucket.as_str(),
            part.key.as_str(),
        );
        let credentials = self.credentials().current();
        crate::store::sign_part(&credentials.signer, request, part, expires, now)
    }

    fn presign_post(
        &self,
        policy: &PostPolicy<'_>,
        expires: Expiry,
        now: Timestamp,
    ) -> Result<(String, PostForm), StorageError> {
        let config = self.config();
        let url = crate::store::bucket_url(
            &config.public_endpoint,
            config.addressing,
            "",
            policy.bucket,
        );
        let credentials = self.credentials().current();
        crate::store::sign_post(&credentials.signer, url, policy, expires, now)
    }

    fn presign_upload_parts(
        &self,
        batch: &PartBatch<'_>,
        expires: Expiry,
        now: Timestamp,
    ) -> Result<PartUrls, StorageError> {
        let config = self.config();
        let request = Request::new(
            Method::Put,
            &config.public_endpoint,
            config.addressing,
            batch.bucket.as_str(),
            batch.key.as_str(),
        );
        let credentials = self.credentials().current();
        crate::store::sign_parts(&credentials.signer, request, batch, expires, now)
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
