//! What the server needs from storage beyond [`Storage`]: presigned URLs. S3 signs them for its
//! public endpoint; the embedded store will sign URLs it serves itself.

use crate::s3::S3Storage;
use draftstore_core::{BucketName, Storage, StorageError};
use draftstore_signer::{Expiry, Method, Request, Timestamp};

pub trait Backend: Storage + 'static {
    /// A presigned URL for `method` on `bucket/key`, with `headers` signed in.
    ///
    /// # Errors
    /// [`StorageError::Backend`] when the request cannot be signed.
    fn presign(
        &self,
        method: Method,
        bucket: &BucketName,
        key: &str,
        headers: &[(&str, &str)],
        expires: Expiry,
        now: Timestamp,
    ) -> Result<String, StorageError>;
}

impl Backend for S3Storage {
    fn presign(
        &self,
        method: Method,
        bucket: &BucketName,
        key: &str,
        headers: &[(&str, &str)],
        expires: Expiry,
        now: Timestamp,
    ) -> Result<String, StorageError> {
        let config = self.config();
        let mut request = Request::new(
            method,
            &config.public_endpoint,
            config.addressing,
            bucket.as_str(),
            key,
        );
        request.headers = headers;
        self.signer()
            .presign(&request, expires, now)
            .map_err(|e| StorageError::Backend {
                reason: format!("cannot presign: {e}"),
            })
    }
}
