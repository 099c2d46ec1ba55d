//! Presigned URLs to the S3 server, at its public endpoint (`DRAFTSTORE_S3_PUBLIC_ENDPOINT`, else
//! the endpoint the gateway calls), path- or virtual-host-addressed as configured.

use super::S3Storage;
use crate::store::Presign;
use draftstore_core::{BucketName, ObjectName, StorageError};
use draftstore_signer::{Expiry, Method, Request, Timestamp};

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
        crate::store::sign(self.signer(), request, headers, expires, now)
    }
}
