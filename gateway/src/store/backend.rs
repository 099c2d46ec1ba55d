//! What the server needs from storage beyond [`Storage`]: presigned URLs, and for a store that
//! serves its own URLs (the embedded local store), the requests they lead to.

use crate::api::error::{ApiError, Kind};
use crate::http::response::Body;
use crate::store::local::LocalStorage;
use crate::store::s3::S3Storage;
use draftstore_core::{BucketName, Storage, StorageError};
use draftstore_signer::{Addressing, Expiry, Method, Request, Signer, Timestamp};
use hyper::body::Incoming;
use std::future::Future;

pub trait Backend: Storage + 'static {
    /// Whether object bytes flow through this server (the embedded store's presigned URLs);
    /// decides how replies are written (see [`crate::http::socket`]).
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
        sign(self.signer(), request, headers, expires, now)
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
