//! The local store's presigned URLs as one endpoint the server mounts: the only place outside
//! this module that learns the store's path prefix is the [`Endpoint::owns`] answer.

use super::{LocalStorage, PREFIX};
use crate::http::response::Body;
use http::{Request, Response};
use hyper::body::Incoming;
use std::sync::Arc;

/// The endpoint serving a [`LocalStorage`]'s presigned URLs (`PUT`, `GET`, `HEAD` under
/// `/_store/<bucket>/<key>`, answers and errors as S3 gives them). The server mounts it before
/// authentication: each URL carries its own SigV4 signature, checked here.
#[derive(Clone)]
pub struct Endpoint {
    store: Arc<LocalStorage>,
}

impl Endpoint {
    /// The endpoint of `store`, sharing it with the API.
    #[must_use]
    pub fn new(store: Arc<LocalStorage>) -> Self {
        Self { store }
    }

    /// Whether a request for `path` (the URI path, not decoded) belongs to this endpoint.
    #[must_use]
    pub fn owns(&self, path: &str) -> bool {
        Self::owns_path(path)
    }

    /// Whether `path` (the URI path, not decoded) is one of the embedded store's object URLs,
    /// mounted or not: the server classifies requests before it knows which store serves.
    #[must_use]
    pub fn owns_path(path: &str) -> bool {
        path.starts_with(PREFIX)
    }

    /// Serves one request this endpoint [`owns`](Self::owns): never an API error; refusals are
    /// S3-style XML with S3's status codes.
    pub async fn serve(&self, req: Request<Incoming>) -> Response<Body> {
        self.store.serve(req).await
    }
}
