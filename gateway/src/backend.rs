//! What the server needs from storage beyond [`Storage`]: presigned URLs, and for a store that
//! serves its own URLs (the embedded local store), the requests they lead to.

use crate::error::{ApiError, Kind};
use crate::local::LocalStorage;
use crate::response::Body;
use crate::s3::S3Storage;
use draftstore_core::{BucketName, Storage, StorageError};
use draftstore_signer::{Addressing, Expiry, Method, Request, Signer, Timestamp};
use hyper::body::Incoming;
use std::future::Future;

pub trait Backend: Storage + 'static {
    /// Whether object bytes flow through this server (the embedded store's presigned URLs);
    /// decides how replies are written (see [`crate::socket`]).
    const STREAMS_OBJECTS: bool = false;

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
    fn versioning(&self, bucket: &BucketName) -> impl Future<Output = String> + Send {
        let _ = bucket;
        async { "Disabled".to_owned() }
    }

    /// Serves a request under `/_store/` (the local store's presigned URLs). Other stores have
    /// no such route.
    fn serve_object(
        &self,
        req: http::Request<Incoming>,
    ) -> impl Future<Output = Result<http::Response<Body>, ApiError>> + Send {
        let path = req.uri().path().to_owned();
        async move {
            Err(ApiError::new(
                Kind::NotFound,
                "NO_SUCH_ROUTE",
                format!("no route {path}"),
            ))
        }
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
        let request = Request::new(
            method,
            &config.public_endpoint,
            config.addressing,
            bucket.as_str(),
            key,
        );
        let credentials = self.credentials().current();
        sign(&credentials.signer, request, headers, expires, now)
    }

    fn url_deadline(&self) -> Option<i64> {
        self.credentials().url_deadline()
    }

    fn upload_headers(&self) -> &[(String, String)] {
        self.sse_headers()
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

impl Backend for LocalStorage {
    const STREAMS_OBJECTS: bool = true;

    /// URLs of the form `<public url>/_store/<bucket>/<key>`.
    fn presign(
        &self,
        method: Method,
        bucket: &BucketName,
        key: &str,
        headers: &[(&str, &str)],
        expires: Expiry,
        now: Timestamp,
    ) -> Result<String, StorageError> {
        let path_key = format!("{bucket}/{key}");
        let request = Request::new(
            method,
            self.public_url(),
            Addressing::Path,
            "_store",
            &path_key,
        );
        sign(self.signer(), request, headers, expires, now)
    }

    async fn serve_object(
        &self,
        req: http::Request<Incoming>,
    ) -> Result<http::Response<Body>, ApiError> {
        Ok(self.serve(req).await)
    }
}
