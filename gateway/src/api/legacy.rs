//! The original Go DraftStore's REST routes, for the clients written against it: `POST`
//! [`BUCKET`], [`UPLOAD_URL`], [`DOWNLOAD_URL`], [`CONFIRM`], taking the same JSON bodies as
//! ours (the bucket route ignores its body) and answering in the original's shapes:
//! `{"result": {"success": true}}`, with `"url": "…"` for the URL routes; on failure
//! `{"result": {"error_message": "…", "error_type": N}}` with N from `draft.proto`'s
//! `ErrorType` (the original's numbers, [`ApiError::error_type`]). Status codes stay ours
//! (400, 401, 404, 409, …), and so do authentication, tenants and admission: these are routes
//! of the REST adapter like any other. Not in the OpenAPI document, which describes our API.

use crate::api::app::{App, Source};
use crate::api::error::{ApiError, During};
use crate::api::rest::{self, ConfirmBody, DownloadUrlBody, UploadUrlBody};
use crate::auth::Tenant;
use crate::http::response::{full, Body};
use crate::store::Presign;
use bytes::Bytes;
use draftstore_core::Storage;
use http::{Request, Response, StatusCode};

/// `POST`: create both buckets (the body is ignored).
pub const BUCKET: &str = "/api/v1/draft/bucket";
/// `POST` `{"object_name", …}`: a presigned upload URL.
pub const UPLOAD_URL: &str = "/api/v1/draft/upload-url";
/// `POST` `{"object_name", "source"?}`: a presigned download URL.
pub const DOWNLOAD_URL: &str = "/api/v1/draft/download-url";
/// `POST` `{"object_name", "overwrite"?}`: move the draft into main.
pub const CONFIRM: &str = "/api/v1/draft/confirm";

/// The original's routes (all `POST`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    /// [`BUCKET`].
    Bucket,
    /// [`UPLOAD_URL`].
    UploadUrl,
    /// [`DOWNLOAD_URL`].
    DownloadUrl,
    /// [`CONFIRM`].
    Confirm,
}

impl Route {
    /// Every route.
    pub const ALL: [Self; 4] = [
        Self::Bucket,
        Self::UploadUrl,
        Self::DownloadUrl,
        Self::Confirm,
    ];

    /// The route at `path`, or `None`.
    #[must_use]
    pub fn of(path: &str) -> Option<Self> {
        Some(match path {
            BUCKET => Self::Bucket,
            UPLOAD_URL => Self::UploadUrl,
            DOWNLOAD_URL => Self::DownloadUrl,
            CONFIRM => Self::Confirm,
            _ => return None,
        })
    }

    /// Its metrics label.
    #[must_use]
    pub const fn label(self) -> &'static str {
        match self {
            Self::Bucket => "draft/bucket",
            Self::UploadUrl => "draft/upload-url",
            Self::DownloadUrl => "draft/download-url",
            Self::Confirm => "draft/confirm",
        }
    }

    /// The step whose failure an error reports (see [`ApiError::error_type`]).
    #[must_use]
    pub const fn during(self) -> During {
        match self {
            Self::Bucket => During::Buckets,
            Self::UploadUrl | Self::DownloadUrl => During::Presign,
            Self::Confirm => During::Confirm,
        }
    }
}

/// Handles one `POST` to `route`.
///
/// # Errors
/// As the matching route of ours; encoded by [`error_response`].
pub async fn handle<B: Storage + Presign>(
    app: &App<B>,
    req: &Request<Bytes>,
    route: Route,
    tenant: Option<&Tenant>,
) -> Result<Response<Body>, ApiError> {
    match route {
        Route::Bucket => {
            Box::pin(app.create_buckets()).await?;
            Ok(success(None))
        }
        Route::UploadUrl => {
            let body: UploadUrlBody = rest::read_json(req)?;
            let (name, constraints) = body.into_parts()?;
            let made = Box::pin(app.upload_url(tenant, &name, &constraints)).await?;
            Ok(success(Some(&made.url)))
        }
        Route::DownloadUrl => {
            let body: DownloadUrlBody = rest::read_json(req)?;
            let source: Source = body.source();
            let made = Box::pin(app.download_url(tenant, &body.object_name, source)).await?;
            Ok(success(Some(&made.url)))
        }
        Route::Confirm => {
            let body: ConfirmBody = rest::read_json(req)?;
            let overwrite = body.overwrite.unwrap_or(false);
            Box::pin(app.confirm(tenant, &body.object_name, overwrite, None)).await?;
            Ok(success(None))
        }
    }
}

/// `{"result": {"success": true}}`, with `"url"` when given.
fn success(url: Option<&str>) -> Response<Body> {
    let body = match url {
        None => serde_json::json!({"result": {"success": true}}),
        Some(url) => serde_json::json!({"result": {"success": true}, "url": url}),
    };
    let mut response = Response::new(full(body.to_string()));
    *response.status_mut() = StatusCode::OK;
    response.headers_mut().insert(
        crate::http::response::CONTENT_TYPE,
        http::HeaderValue::from_static(crate::http::response::JSON),
    );
    response
}

/// `e` in the original's shape, `{"result": {"error_message", "error_type"}}`, with our status
/// and headers (`Retry-After`, `Allow`, `WWW-Authenticate`) as [`rest::error_response`] sets
/// them.
#[must_use]
pub fn error_response(e: &ApiError, route: Route) -> Response<Body> {
    let ours = rest::error_response(e);
    let body = serde_json::json!({"result": {
        "error_message": e.message,
        "error_type": e.error_type(route.during()) as i32,
    }});
    let (parts, _) = ours.into_parts();
    Response::from_parts(parts, full(body.to_string()))
}
