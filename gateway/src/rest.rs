//! REST/JSON: one flat `match (method, path)` calling named handlers that decode, call
//! [`App`], and encode. Bodies are size-checked before they are read.

use crate::app::{App, Source};
use crate::auth::Tenant;
use crate::backend::Backend;
use crate::body::read_limited;
use crate::config::Limits;
use crate::error::{ApiError, Kind};
use crate::response::{full, Body, CONTENT_TYPE, JSON};
use draftstore_core::UploadConstraints;
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::collections::BTreeMap;

pub const UPLOAD_URL: &str = "/api/v1/upload-url";
pub const DOWNLOAD_URL: &str = "/api/v1/download-url";
pub const CONFIRM_UPLOAD: &str = "/api/v1/confirm-upload";
pub const DRAFT_BUCKET: &str = "/api/v1/draft-bucket";
pub const HEALTH: &str = "/health";
pub const READY: &str = "/ready";
pub const METRICS: &str = "/metrics";
pub const OPENAPI: &str = "/openapi.json";

/// Every REST route served, as `(method, path)`; a test keeps the OpenAPI document equal to it.
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", UPLOAD_URL),
    ("POST", DOWNLOAD_URL),
    ("POST", CONFIRM_UPLOAD),
    ("POST", DRAFT_BUCKET),
    ("GET", HEALTH),
    ("GET", READY),
    ("GET", METRICS),
    ("GET", OPENAPI),
];

/// The OpenAPI 3 document of this API.
pub const OPENAPI_DOCUMENT: &str = include_str!("openapi.json");

/// The REST routes served, parsed once from the request path (the method is checked by
/// [`handle`], which answers 405 with `Allow`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    UploadUrl,
    DownloadUrl,
    ConfirmUpload,
    DraftBucket,
    Health,
    Ready,
    Metrics,
    OpenApi,
    /// The embedded local store's object URLs (`/_store/...`).
    Store,
}

impl Route {
    pub const ALL: [Self; 9] = [
        Self::UploadUrl,
        Self::DownloadUrl,
        Self::ConfirmUpload,
        Self::DraftBucket,
        Self::Health,
        Self::Ready,
        Self::Metrics,
        Self::OpenApi,
        Self::Store,
    ];

    /// The route at `path`, or `None` (404).
    #[must_use]
    pub fn of(path: &str) -> Option<Self> {
        Some(match path {
            UPLOAD_URL => Self::UploadUrl,
            DOWNLOAD_URL => Self::DownloadUrl,
            CONFIRM_UPLOAD => Self::ConfirmUpload,
            DRAFT_BUCKET => Self::DraftBucket,
            HEALTH => Self::Health,
            READY => Self::Ready,
            METRICS => Self::Metrics,
            OPENAPI => Self::OpenApi,
            p if p.starts_with(crate::local::PREFIX) => Self::Store,
            _ => return None,
        })
    }

    /// Its metrics label.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::UploadUrl => "upload-url",
            Self::DownloadUrl => "download-url",
            Self::ConfirmUpload => "confirm-upload",
            Self::DraftBucket => "draft-bucket",
            Self::Health => "health",
            Self::Ready => "ready",
            Self::Metrics => "metrics",
            Self::OpenApi => "openapi",
            Self::Store => "store",
        }
    }

    /// The `Allow` header of a 405 (the store answers its own methods).
    fn allowed(self) -> &'static str {
        match self {
            Self::UploadUrl | Self::DownloadUrl | Self::ConfirmUpload | Self::DraftBucket => "POST",
            Self::Health | Self::Ready | Self::Metrics | Self::OpenApi | Self::Store => "GET, HEAD",
        }
    }
}

/// Handles one request to `route` (`None`: no such path).
pub async fn handle<B: Backend>(
    app: &App<B>,
    req: Request<Incoming>,
    route: Option<Route>,
    limits: &Limits,
    tenant: Option<&Tenant>,
) -> Result<Response<Body>, ApiError> {
    let Some(route) = route else {
        return Err(ApiError::new(
            Kind::NotFound,
            "NO_SUCH_ROUTE",
            format!("no route {}", req.uri().path()),
        ));
    };
    let read = matches!(*req.method(), Method::GET | Method::HEAD);
    // Calls that reach storage are boxed: their futures are large, and kept inline they would
    // make every request's future (moved a few times per request) as large.
    match route {
        Route::Store => Box::pin(app.backend.serve_object(req)).await,
        Route::UploadUrl if req.method() == Method::POST => {
            upload_url(app, tenant, read_json(req, limits).await?)
        }
        Route::DownloadUrl if req.method() == Method::POST => {
            Box::pin(download_url(app, tenant, read_json(req, limits).await?)).await
        }
        Route::ConfirmUpload if req.method() == Method::POST => {
            Box::pin(confirm_upload(app, tenant, read_json(req, limits).await?)).await
        }
        Route::DraftBucket if req.method() == Method::POST => Box::pin(draft_bucket(app)).await,
        Route::Health if read => json(StatusCode::OK, &serde_json::json!({"status": "ok"})),
        Route::Ready if read => Box::pin(ready(app)).await,
        Route::Metrics if read => Response::builder()
            .header(
                CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )
            .body(full(crate::metrics::render()))
            .map_err(|e| ApiError::new(Kind::Internal, "ENCODE", e.to_string())),
        Route::OpenApi if read => Response::builder()
            .header(CONTENT_TYPE, JSON)
            .body(full(OPENAPI_DOCUMENT))
            .map_err(|e| ApiError::new(Kind::Internal, "ENCODE", e.to_string())),
        _ => Err(not_allowed(req.uri().path(), route.allowed())),
    }
}

fn not_allowed(path: &str, allowed: &'static str) -> ApiError {
    ApiError::new(
        Kind::MethodNotAllowed,
        "METHOD_NOT_ALLOWED",
        format!("{path} accepts {allowed} only"),
    )
    .with_allow(allowed)
}

/// Reads a JSON body: `application/json` only, at most `limits.max_body` bytes (checked on
/// `content-length` before reading, and while reading).
async fn read_json<T: DeserializeOwned>(
    req: Request<Incoming>,
    limits: &Limits,
) -> Result<T, ApiError> {
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = content_type.split(';').next().unwrap_or("").trim();
    let json_suffix = mime
        .len()
        .checked_sub(5)
        .and_then(|at| mime.get(at..))
        .is_some_and(|end| end.eq_ignore_ascii_case("+json"));
    if !mime.eq_ignore_ascii_case(JSON) && !json_suffix {
        return Err(ApiError::new(
            Kind::UnsupportedMediaType,
            "UNSUPPORTED_MEDIA_TYPE",
            "requests must be application/json",
        ));
    }
    let declared = req
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let too_large = || {
        ApiError::new(
            Kind::PayloadTooLarge,
            "BODY_TOO_LARGE",
            format!("request bodies are at most {} bytes", limits.max_body),
        )
    };
    if declared.is_some_and(|n| n > limits.max_body as u64) {
        return Err(too_large());
    }
    let body = read_limited(req.into_body(), limits.max_body, |_| Ok(()))
        .await?
        .ok_or_else(too_large)?;
    decode_json(&body)
}

/// Decodes a JSON request body into `T`: malformed JSON and wrong fields are distinct 400s.
///
/// # Errors
/// `INVALID_JSON` or `INVALID_REQUEST`.
pub fn decode_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => {
            ApiError::bad_request("INVALID_REQUEST", format!("invalid request: {e}"))
        }
        _ => ApiError::bad_request("INVALID_JSON", format!("malformed JSON: {e}")),
    })
}

pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Result<Response<Body>, ApiError> {
    let bytes = serde_json::to_vec(value)
        .map_err(|e| ApiError::new(Kind::Internal, "ENCODE", e.to_string()))?;
    Ok(json_text(status, bytes))
}

/// A response carrying JSON text already written.
fn json_text(status: StatusCode, text: Vec<u8>) -> Response<Body> {
    let mut response = Response::new(full(text));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, http::HeaderValue::from_static(JSON));
    response
}

/// The error body: `{"error": {"code": "...", "message": "..."}}`.
pub fn error_response(e: &ApiError) -> Response<Body> {
    let body = serde_json::json!({"error": {"code": e.code, "message": e.message}});
    let mut response = json_text(
        StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        serde_json::to_vec(&body).unwrap_or_default(),
    );
    if let Some(secs) = e.retry_after {
        response
            .headers_mut()
            .insert(http::header::RETRY_AFTER, http::HeaderValue::from(secs));
    }
    if e.http_status() == 401 {
        response.headers_mut().insert(
            http::header::WWW_AUTHENTICATE,
            http::HeaderValue::from_static("Bearer"),
        );
    }
    if let Some(allow) = e.allow {
        response
            .headers_mut()
            .insert(http::header::ALLOW, http::HeaderValue::from_static(allow));
    }
    response
}

/// The body of `POST /api/v1/upload-url`.
#[derive(Debug, Deserialize)]
pub struct UploadUrlBody {
    pub object_name: String,
    pub content_type: Option<String>,
    pub content_length: Option<u64>,
    pub checksum_sha256: Option<String>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

impl UploadUrlBody {
    /// The name asked for and the declared constraints, validated.
    ///
    /// # Errors
    /// `INVALID_CONSTRAINTS`.
    pub fn into_parts(self) -> Result<(String, UploadConstraints), ApiError> {
        let constraints = UploadConstraints::new(
            self.content_type,
            self.content_length,
            self.checksum_sha256,
            self.metadata,
        )?;
        Ok((self.object_name, constraints))
    }
}

fn upload_url<B: Backend>(
    app: &App<B>,
    tenant: Option<&Tenant>,
    body: UploadUrlBody,
) -> Result<Response<Body>, ApiError> {
    let (name, constraints) = body.into_parts()?;
    let made = app.upload_url(tenant, &name, &constraints)?;
    // The URL and the name (also inside the URL, encoded) make most of the reply's length.
    let capacity = 256 + made.url.len() + 4 * made.object_name.len();
    let headers = made.required_headers.iter();
    let text = crate::json::Object::with_capacity(capacity)
        .str("upload_url", &made.url)
        .str("object_name", &made.object_name)
        .str("expires_at", &made.expires_at)
        .flag(CUT_BY_CREDENTIALS, made.cut_by_credentials)
        .str("method", "PUT")
        .strings(
            "required_headers",
            headers.map(|(n, v)| (n.as_str(), v.as_str())),
        )
        .finish();
    Ok(json_text(StatusCode::OK, text))
}

#[derive(Debug, Deserialize, Default, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum SourceText {
    #[default]
    Draft,
    Main,
}

/// The body of `POST /api/v1/download-url`.
#[derive(Debug, Deserialize)]
pub struct DownloadUrlBody {
    pub object_name: String,
    #[serde(default)]
    source: SourceText,
}

async fn download_url<B: Backend>(
    app: &App<B>,
    tenant: Option<&Tenant>,
    body: DownloadUrlBody,
) -> Result<Response<Body>, ApiError> {
    let source = match body.source {
        SourceText::Draft => Source::Draft,
        SourceText::Main => Source::Main,
    };
    let made = app.download_url(tenant, &body.object_name, source).await?;
    let mut reply = serde_json::json!({"download_url": made.url, "object_name": made.object_name, "expires_at": made.expires_at});
    if let Some(object) = reply.as_object_mut().filter(|_| made.cut_by_credentials) {
        object.insert(CUT_BY_CREDENTIALS.into(), serde_json::Value::Bool(true));
    }
    json(StatusCode::OK, &reply)
}

/// Present (`true`) in a URL's reply when `expires_at` is earlier than the TTL asked for,
/// because the S3 credentials the URL is signed with expire then.
const CUT_BY_CREDENTIALS: &str = "expires_at_cut_by_credentials";

/// The body of `POST /api/v1/confirm-upload`.
#[derive(Debug, Deserialize)]
pub struct ConfirmBody {
    pub object_name: String,
    #[serde(default)]
    pub overwrite: bool,
}

async fn confirm_upload<B: Backend>(
    app: &App<B>,
    tenant: Option<&Tenant>,
    body: ConfirmBody,
) -> Result<Response<Body>, ApiError> {
    let done = app
        .confirm(tenant, &body.object_name, body.overwrite, None)
        .await?;
    json(
        StatusCode::OK,
        &serde_json::json!({
            "success": true,
            "object_name": done.object_name,
            "final_location": done.final_location,
            "size": done.size,
            "etag": done.etag,
        }),
    )
}

async fn draft_bucket<B: Backend>(app: &App<B>) -> Result<Response<Body>, ApiError> {
    let versioning = app.create_buckets().await?;
    json(
        StatusCode::OK,
        &serde_json::json!({"success": true, "main_bucket": app.buckets.main.as_str(), "draft_bucket": app.buckets.draft.as_str(), "draft_bucket_versioning": versioning}),
    )
}

async fn ready<B: Backend>(app: &App<B>) -> Result<Response<Body>, ApiError> {
    match app.ready().await {
        Ok(()) => json(StatusCode::OK, &serde_json::json!({"status": "ready"})),
        Err(e) => Err(ApiError::new(
            Kind::Unavailable,
            "NOT_READY",
            format!("buckets do not answer: {}", e.message),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn paths_parse_to_routes_exactly() {
        for (_, path) in ROUTES {
            let route = Route::of(path).unwrap();
            assert_ne!(route, Route::Store, "{path}");
            assert!(Route::ALL.contains(&route), "{path} in ALL");
        }
        assert_eq!(
            Route::ALL.len(),
            ROUTES.len() + 1,
            "the routes and the store"
        );
        assert_eq!(Route::of("/_store/b/k"), Some(Route::Store));
        for unknown in [
            "",
            "/",
            "/api/v1/upload-url/",
            "/API/v1/upload-url",
            "/healthz",
        ] {
            assert_eq!(Route::of(unknown), None, "{unknown}");
        }
    }

    /// The OpenAPI document lists exactly the routes served.
    #[test]
    fn openapi_matches_the_routes() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI_DOCUMENT).unwrap();
        let mut documented = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                documented.insert((method.to_ascii_uppercase(), path.clone()));
            }
        }
        let served: BTreeSet<(String, String)> = ROUTES
            .iter()
            .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
            .collect();
        assert_eq!(documented, served);
    }
}
