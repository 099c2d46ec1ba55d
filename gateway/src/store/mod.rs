//! The stores behind core's `Storage` trait: S3 ([`s3`]) and the embedded local store
//! ([`local`]), and the one thing the API needs from a store beyond `Storage`: presigned URLs
//! ([`Presign`], implemented beside each store).

pub mod local;
pub mod s3;

use draftstore_core::{BucketName, ObjectName, StorageError};
use draftstore_signer::{Expiry, Method, Request, Signer, Timestamp};

/// Makes presigned URLs for a store's objects (object_store's `Signer` shape): a client holding
/// the URL may send `method` to `bucket/key` until it expires, with no other credentials.
pub trait Presign {
    /// A presigned URL (SigV4 query authentication, AWS "Authenticating Requests: Using Query
    /// Parameters") for `method` on `bucket/key`, valid `expires` seconds from `now`, with
    /// `headers` (lowercase names) signed in: the client must send them with these values.
    ///
    /// # Errors
    /// [`StorageError::Backend`] when the request cannot be signed.
    fn presign(
        &self,
        method: Method,
        bucket: &BucketName,
        key: &ObjectName,
        headers: &[(&str, &str)],
        expires: Expiry,
        now: Timestamp,
    ) -> Result<String, StorageError>;

    /// Unix seconds after which a URL presigned now would stop working (the credentials'
    /// expiry minus a margin); `None` when the credentials do not expire.
    fn url_deadline(&self) -> Option<i64> {
        None
    }

    /// Headers every presigned PUT must carry, signed in (server-side encryption), sorted.
    fn upload_headers(&self) -> &[(String, String)] {
        &[]
    }

    /// `bucket`'s versioning as S3 names it (`Enabled`, `Suspended`, `Disabled`), or
    /// `Unknown` when the store cannot tell. Sweep on a versioned draft bucket leaves
    /// noncurrent versions behind.
    fn versioning(&self, bucket: &BucketName) -> impl std::future::Future<Output = String> + Send {
        let _ = bucket;
        async { "Disabled".to_owned() }
    }
}

/// Signs `request` (its headers set to `headers`) into a presigned URL.
fn sign<'a>(
    signer: &Signer,
    mut request: Request<'a>,
    headers: &'a [(&'a str, &'a str)],
    expires: Expiry,
    now: Timestamp,
) -> Result<String, StorageError> {
    request.headers = headers;
    signer
        .presign(&request, expires, now)
        .map_err(|e| StorageError::Backend {
            reason: format!("cannot presign: {e}"),
        })
}
