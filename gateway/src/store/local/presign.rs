//! Presigned URLs to the local store's own endpoint: `<public url>/_store/<bucket>/<key>`,
//! signed with the store's secret (SigV4, region `us-east-1`, service `s3`), so any S3 client
//! library can use them unchanged. Every kind is made by [`Urls`] from [`LocalStorage::urls`].

use super::{LocalStorage, PREFIX};
use crate::store::{PartBatch, PartUrl, Presign, Urls};
use draftstore_core::{BucketName, ObjectName, StorageError};
use draftstore_signer::{Addressing, Expiry, Method, PartUrls, PostForm, PostPolicy, Timestamp};

impl LocalStorage {
    /// Where the store's URLs point: path-style, with the prefix in the bucket's place
    /// (`/_store/` + `<bucket>/<key>`; a POST form goes to `/_store/<bucket>`).
    fn urls(&self) -> Urls<'_> {
        Urls {
            signer: self.signer(),
            endpoint: self.public_url(),
            addressing: Addressing::Path,
            under: Some(PREFIX.trim_matches('/')),
        }
    }
}

impl Presign for LocalStorage {
    fn max_single_put(&self) -> u64 {
        self.max_object.min(crate::store::MAX_SINGLE_PUT)
    }

    fn presign(
        &self,
        method: Method,
        bucket: &BucketName,
        key: &ObjectName,
        headers: &[(&str, &str)],
        expires: Expiry,
        now: Timestamp,
    ) -> Result<String, StorageError> {
        self.urls()
            .presign(method, bucket, key, headers, expires, now)
    }

    fn presign_upload_part(
        &self,
        part: &PartUrl<'_>,
        expires: Expiry,
        now: Timestamp,
    ) -> Result<String, StorageError> {
        self.urls().part(part, expires, now)
    }

    fn presign_post(
        &self,
        policy: &PostPolicy<'_>,
        expires: Expiry,
        now: Timestamp,
    ) -> Result<(String, PostForm), StorageError> {
        self.urls().post(policy, expires, now)
    }

    fn presign_upload_parts(
        &self,
        batch: &PartBatch<'_>,
        expires: Expiry,
        now: Timestamp,
    ) -> Result<PartUrls, StorageError> {
        self.urls().parts(batch, expires, now)
    }
}
