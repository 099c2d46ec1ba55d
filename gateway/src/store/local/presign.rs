//! Presigned URLs to the local store's own endpoint: `<public url>/_store/<bucket>/<key>`,
//! signed with the store's secret (SigV4, region `us-east-1`, service `s3`), so any S3 client
//! library can use them unchanged.

use super::{LocalStorage, PREFIX};
use crate::store::{PartBatch, PartUrl, Presign};
use draftstore_core::{BucketName, ObjectName, StorageError};
use draftstore_signer::{
    Addressing, Expiry, Method, PartUrls, PostForm, PostPolicy, Request, Timestamp,
};

impl Presign for LocalStorage {
    fn presign(
        &self,
        method: Method,
        bucket: &BucketName,
        key: &ObjectName,
        headers: &[(&str, &str)],
        expires: Expiry,
        now: Timestamp,
    ) -> Result<String, StorageError> {
        // Path-style with the prefix in the bucket's place: `/_store/` + `<bucket>/<key>`.
        let path_key = format!("{bucket}/{key}");
        let request = Request::new(
            method,
            self.public_url(),
            Addressing::Path,
            PREFIX.trim_matches('/'),
            &path_key,
        );
        crate::store::sign(self.signer(), request, headers, expires, now)
    }

    fn presign_upload_part(
        &self,
        part: &PartUrl<'_>,
        expires: Expiry,
        now: Timestamp,
    ) -> Result<String, StorageError> {
        let path_key = format!("{}/{}", part.bucket, part.key);
        let request = Request::new(
            Method::Put,
            self.public_url(),
            Addressing::Path,
            PREFIX.trim_matches('/'),
            &path_key,
        );
        crate::store::sign_part(self.signer(), request, part, expires, now)
    }

    fn presign_post(
        &self,
        policy: &PostPolicy<'_>,
        expires: Expiry,
        now: Timestamp,
    ) -> Result<(String, PostForm), StorageError> {
        // `/_store/<bucket>`: the store's POST form endpoint for that bucket.
        let url = crate::store::bucket_url(
            self.public_url(),
            Addressing::Path,
            PREFIX.trim_start_matches('/'),
            policy.bucket,
        );
        crate::store::sign_post(self.signer(), url, policy, expires, now)
    }

    fn presign_upload_parts(
        &self,
        batch: &PartBatch<'_>,
        expires: Expiry,
        now: Timestamp,
    ) -> Result<PartUrls, StorageError> {
        let path_key = format!("{}/{}", batch.bucket, batch.key);
        let request = Request::new(
            Method::Put,
            self.public_url(),
            Addressing::Path,
            PREFIX.trim_matches('/'),
            &path_key,
        );
        crate::store::sign_parts(self.signer(), request, batch, expires, now)
    }
}
