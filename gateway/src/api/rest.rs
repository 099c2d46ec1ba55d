//! REST/JSON: one flat `match (method, path)` calling named handlers that decode, call
//! [`App`], and encode. Bodies arrive whole, size-checked as they were read (see
//! [`crate::http::layer::body`]).

use crate::api::app::{App, Source};
use crate::api::companion;
use crate::api::drafts::{self, LIST_DRAFTS};
use crate::api::error::{ApiError, Code};
use crate::api::json_error::NotJson;
use crate::api::legacy;
use crate::api::multipart::rest as multipart;
use crate::auth::Tenant;
use crate::http::response::{full, Body, CONTENT_TYPE, JSON};
use crate::store::Presign;
use bytes::Bytes;
use draftstore_core::Storage;
use draftstore_core::UploadConstraints;
use http::{Method, Request, Response, StatusCode};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::collections::BTreeMap;

/// `POST`: a presigned upload URL.
pub const UPLOAD_URL: &str = "/api/v1/upload-url";
/// `POST`: a presigned POST form (browser-based upload).
pub const UPLOAD_FORM: &str = "/api/v1/upload-form";
/// `POST`: a presigned download URL.
pub const DOWNLOAD_URL: &str = "/api/v1/download-url";
/// `POST`: move a draft into main.
pub const CONFIRM_UPLOAD: &str = "/api/v1/confirm-upload";
/// `POST`: create both buckets.
pub const DRAFT_BUCKET: &str = "/api/v1/draft-bucket";
/// `GET`: the process answers (no storage call).
pub const HEALTH: &str = "/health";
/// `GET`: both buckets answer.
pub const READY: &str = "/ready";
/// `GET`: Prometheus metrics.
pub const METRICS: &str = "/metrics";
/// `GET`: the OpenAPI document.
pub const OPENAPI: &str = "/openapi.json";

/// Every REST route served, as `(method, path)`; a test keeps the OpenAPI document equal to it.
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", UPLOAD_URL),
    ("POST", UPLOAD_FORM),
    ("POST", DOWNLOAD_URL),
    ("POST", CONFIRM_UPLOAD),
    ("POST", DRAFT_BUCKET),
    ("GET", HEALTH),
    ("GET", READY),
    ("GET", METRICS),
    ("GET", OPENAPI),
    ("POST", multipart::CREATE),
    ("POST", multipart::PART_URLS),
    ("POST", multipart::PARTS),
    ("POST", multipart::COMPLETE),
    ("POST", multipart::ABORT),
    ("POST", multipart::LIST),
    ("POST", LIST_DRAFTS),
    ("POST", companion::UPLOAD_TOKEN),
    ("GET", "/s3/params"),
    ("POST", "/s3/multipart"),
    ("GET", "/s3/multipart/{uploadId}"),
    ("DELETE", "/s3/multipart/{uploadId}"),
    ("GET", "/s3/multipart/{uploadId}/{partNumber}"),
    ("POST", "/s3/multipart/{uploadId}/complete"),
    ("POST", "/s3/confirm"),
];

/// The OpenAPI 3 document of this API.
pub const OPENAPI_DOCUMENT: &str = include_str!("openapi.json");

/// The REST routes served, parsed once from the request path (the method is checked by
/// [`handle`], which answers 405 with `Allow`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    /// [`UPLOAD_URL`].
    UploadUrl,
    /// [`UPLOAD_FORM`].
    UploadForm,
    /// [`DOWNLOAD_URL`].
    DownloadUrl,
    /// [`CONFIRM_UPLOAD`].
    ConfirmUpload,
    /// [`DRAFT_BUCKET`].
    DraftBucket,
    /// [`HEALTH`].
    Health,
    /// [`READY`].
    Ready,
    /// [`METRICS`].
    Metrics,
    /// [`OPENAPI`].
    OpenApi,
    /// The multipart routes under `/api/v1/multipart-upload`.
    Multipart(multipart::Op),
    /// One of the original DraftStore's routes ([`legacy`]).
    Legacy(legacy::Route),
    /// [`LIST_DRAFTS`].
    ListDrafts,
    /// [`companion::UPLOAD_TOKEN`].
    UploadToken,
    /// Companion's S3 routes for Uppy, under `/s3/` or `/s3-token/<token>/s3/`.
    Companion(companion::Op),
}

impl Route {
    /// Every route served.
    pub const ALL: [Self; 27] = [
        Self::UploadUrl,
        Self::UploadForm,
        Self::DownloadUrl,
        Self::ConfirmUpload,
        Self::DraftBucket,
        Self::Health,
        Self::Ready,
        Self::Metrics,
        Self::OpenApi,
        Self::Multipart(multipart::Op::Create),
        Self::Multipart(multipart::Op::PartUrls),
        Self::Multipart(multipart::Op::Parts),
        Self::Multipart(multipart::Op::Complete),
        Self::Multipart(multipart::Op::Abort),
        Self::Multipart(multipart::Op::List),
        Self::Legacy(legacy::Route::Bucket),
        Self::Legacy(legacy::Route::UploadUrl),
        Self::Legacy(legacy::Route::DownloadUrl),
        Self::Legacy(legacy::Route::Confirm),
        Self::ListDrafts,
        Self::UploadToken,
        Self::Companion(companion::Op::Params),
        Self::Companion(companion::Op::Create),
        Self::Companion(companion::Op::Upload),
        Self::Companion(companion::Op::Part),
        Self::Companion(companion::Op::Complete),
        Self::Companion(companion::Op::Confirm),
    ];

    /// The route at `path`, or `None` (404).
    #[must_use]
    pub fn of(path: &str) -> Option<Self> {
        Some(match path {
            UPLOAD_URL => Self::UploadUrl,
            UPLOAD_FORM => Self::UploadForm,
            DOWNLOAD_URL => Self::DownloadUrl,
            CONFIRM_UPLOAD => Self::ConfirmUpload,
            DRAFT_BUCKET => Self::DraftBucket,
            HEALTH => Self::Health,
            READY => Self::Ready,
            METRICS => Self::Metrics,
            OPENAPI => Self::OpenApi,
            LIST_DRAFTS => Self::ListDrafts,
            companion::UPLOAD_TOKEN => Self::UploadToken,
            _ if path.starts_with(companion::PREFIX) => {
                return companion::parse(path).map(|t| Self::Companion(t.op))
            }
            _ => {
                return multipart::Op::of(path)
                    .map(Self::Multipart)
                    .or_else(|| legacy::Route::of(path).map(Self::Legacy))
            }
        })
    }

    /// Its metrics label.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::UploadUrl => "upload-url",
            Self::UploadForm => "upload-form",
            Self::DownloadUrl => "download-url",
            Self::ConfirmUpload => "confirm-upload",
            Self::DraftBucket => "draft-bucket",
            Self::Health => "health",
            Self::Ready => "ready",
            Self::Metrics => "metrics",
            Self::OpenApi => "openapi",
            Self::Multipart(op) => op.label(),
            Self::Legacy(route) => route.label(),
            Self::ListDrafts => "list-drafts",
            Self::UploadToken => "upload-token",
            Self::Companion(op) => op.label(),
        }
    }

    /// The `Allow` header of a 405.
    fn allowed(self) -> &'static str {
        match self {
            Self::UploadUrl
            | Self::UploadForm
            | Self::DownloadUrl
            | Self::ConfirmUpload
            | Self::DraftBucket
            | Self::Multipart(_)
            | Self::Legacy(_)
            | Self::ListDrafts
            | Self::UploadToken => "POST",
            Self::Companion(op) => op.allowed(),
            Self::Health | Self::Ready | Self::Metrics | Self::OpenApi => "GET, HEAD",
        }
    }
}

/// Handles one request to `route` (`None`: no such path), its body read whole.
pub async fn handle<B: Storage + Presign>(
    app: &App<B>,
    req: Request<Bytes>,
    route: Option<Route>,
    tenant: Option<&Tenant>,
) -> Result<Response<Body>, ApiError> {
    let Some(route) = route else {
        return Err(ApiError::new(
            Code::NoSuchRoute,
            format!("no route {}", companion::redacted(req.uri().path())),
        ));
    };
    let read = matches!(*req.method(), Method::GET | Method::HEAD);
    // Calls that reach storage are boxed: their futures are large, and kept inline they would
    // make every request's future (moved a few times per request) as large.
    match route {
        Route::UploadUrl if req.method() == Method::POST => {
            upload_url(app, tenant, read_json(&req)?).await
        }
        Route::UploadForm if req.method() == Method::POST => {
            upload_form(app, tenant, read_json(&req)?).await
        }
        Route::DownloadUrl if req.method() == Method::POST => {
            Box::pin(download_url(app, tenant, read_json(&req)?)).await
        }
        Route::ConfirmUpload if req.method() == Method::POST => {
            Box::pin(confirm_upload(app, tenant, read_json(&req)?)).await
        }
        Route::DraftBucket if req.method() == Method::POST => Box::pin(draft_bucket(app)).await,
        Route::Multipart(op) if req.method() == Method::POST => {
            let body = read_body(&req)?;
            Box::pin(multipart::handle(app, tenant, op, body)).await
        }
        Route::Companion(op) => Box::pin(companion::rest::handle(app, &req, op, tenant)).await,
        Route::UploadToken if req.method() == Method::POST => {
            companion::rest::upload_token(&req, tenant)
        }
        Route::Legacy(route) if req.method() == Method::POST => {
            Box::pin(legacy::handle(app, &req, route, tenant)).await
        }
        Route::ListDrafts if req.method() == Method::POST => {
            Box::pin(drafts::rest(app, tenant, read_json(&req)?)).await
        }
        Route::Health if read => Ok(health()),
        Route::Ready if read => Box::pin(ready(app)).await,
        Route::Metrics if read => Response::builder()
            .header(
                CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )
            .body(full(crate::metrics::render()))
            .map_err(|e| ApiError::new(Code::Encode, e.to_string())),
        Route::OpenApi if read => Response::builder()
            .header(CONTENT_TYPE, JSON)
            .body(full(OPENAPI_DOCUMENT))
            .map_err(|e| ApiError::new(Code::Encode, e.to_string())),
        _ => Err(not_allowed(req.uri().path(), route.allowed())),
    }
}

fn not_allowed(path: &str, allowed: &'static str) -> ApiError {
    ApiError::new(
        Code::MethodNotAllowed,
        format!("{path} accepts {allowed} only"),
    )
    .with_allow(allowed)
}

/// Decodes a JSON body: `application/json` (or `+json`) only; its size was checked as it was
/// read.
pub(crate) fn read_json<T: DeserializeOwned>(req: &Request<Bytes>) -> Result<T, ApiError> {
    decode_json(read_body(req)?)
}

/// The JSON text of a body (`application/json` or `+json` only), as [`read_json`] reads it;
/// the body layer read it within the route's limit ([`multipart::max_body`] for multipart).
fn read_body(req: &Request<Bytes>) -> Result<&Bytes, ApiError> {
    let mut types = req.headers().get_all(CONTENT_TYPE).iter();
    let first = types.next();
    if types.next().is_some() {
        // As Connect answers: which one the client meant is not for us to guess.
        return Err(ApiError::new(
            Code::UnsupportedMediaType,
            "send one Content-Type header (application/json), not several",
        ));
    }
    let content_type = first.and_then(|v| v.to_str().ok()).unwrap_or("");
    // The media type, before any parameters (a byte scan: `split(';')` is a search set up
    // for every call).
    let (mime, params) = match content_type.bytes().position(|b| b == b';') {
        Some(at) => (
            content_type.get(..at).unwrap_or_default(),
            content_type.get(at..),
        ),
        None => (content_type, None),
    };
    let mime = mime.trim();
    let json_suffix = mime
        .len()
        .checked_sub(5)
        .and_then(|at| mime.get(at..))
        .is_some_and(|end| end.eq_ignore_ascii_case("+json"));
    if !mime.eq_ignore_ascii_case(JSON) && !json_suffix {
        return Err(ApiError::new(
            Code::UnsupportedMediaType,
            "requests must be application/json",
        ));
    }
    // JSON is UTF-8 (RFC 8259 §8.1) and read as sent: a body in another charset or content
    // coding (gzip...) would be misread, so it is refused rather than guessed at.
    if let Some(params) = params {
        if !charset_is_utf8(params) {
            return Err(ApiError::new(
                Code::UnsupportedMediaType,
                "JSON requests must be UTF-8: charset=utf-8 or no charset",
            ));
        }
    }
    if let Some(coding) = req.headers().get(http::header::CONTENT_ENCODING) {
        if !coding
            .as_bytes()
            .trim_ascii()
            .eq_ignore_ascii_case(b"identity")
        {
            return Err(ApiError::new(
                Code::UnsupportedMediaType,
                "the REST API reads bodies as sent: no Content-Encoding (or identity)",
            ));
        }
    }
    Ok(req.body())
}

/// Whether the parameters of a JSON media type (`; charset=...; ...`, RFC 9110 §8.3.1) name no
/// charset or UTF-8 (any case, quoted or not).
fn charset_is_utf8(params: &str) -> bool {
    params.split(';').all(|param| {
        let Some((name, value)) = param.split_once('=') else {
            return true;
        };
        !name.trim().eq_ignore_ascii_case("charset")
            || value.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
    })
}

/// Decodes a JSON request body (RFC 8259) into `T`: malformed JSON and well-formed JSON with a
/// wrong field are distinct 400s. `null` in an optional field means absent (the body types
/// declare every optional field so).
///
/// # Errors
/// `INVALID_JSON` for text that is not JSON (or has trailing data); `INVALID_REQUEST` naming
/// the field (`metadata.note`, or `body` for the whole) and what it accepts.
pub fn decode_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    // The plain decode first: the common, valid request pays for no path tracking.
    let e = match serde_json::from_slice::<T>(body) {
        Ok(value) => return Ok(value),
        Err(e) => e,
    };
    let blank = body.iter().all(u8::is_ascii_whitespace);
    match super::json_error::not_json(&e, blank) {
        Some(NotJson::Empty) => return Err(ApiError::new(Code::InvalidJson, NotJson::EMPTY)),
        Some(broken) => {
            return Err(ApiError::new(
                Code::InvalidJson,
                format!(
                    "malformed JSON at line {}, column {}: {}",
                    e.line(),
                    e.column(),
                    broken.what()
                ),
            ))
        }
        None => {}
    }
    // Every body is an object; serde's derive would also take an array (its fields in order)
    // and word the failure for that form.
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') | None => {}
        Some(first) => {
            let found = match first {
                b'[' => "an array",
                b'"' => "a string",
                b't' | b'f' => "a boolean",
                b'n' => "null",
                _ => "a number",
            };
            return Err(ApiError::new(
                Code::InvalidRequest,
                format!("invalid request body: expected an object, found {found}"),
            ));
        }
    }
    // Decoded again only to name the field that failed.
    let mut de = serde_json::Deserializer::from_slice(body);
    let located = serde_path_to_error::deserialize::<_, T>(&mut de).err();
    let (path, inner) = match &located {
        Some(err) => (err.path().to_string(), err.inner().to_string()),
        None => (".".to_owned(), e.to_string()),
    };
    let inner = inner
        .rsplit_once(" at line ")
        .map_or(inner.as_str(), |(message, _)| message);
    let inner = super::json_error::data(inner);
    let message = if path == "." {
        format!("invalid request body: {inner}")
    } else {
        format!("invalid field `{path}`: {inner}")
    };
    Err(ApiError::new(Code::InvalidRequest, message))
}

/// `value` as a JSON response with `status`.
///
/// # Errors
/// The value cannot be encoded (`ENCODE`).
pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Result<Response<Body>, ApiError> {
    let bytes =
        serde_json::to_vec(value).map_err(|e| ApiError::new(Code::Encode, e.to_string()))?;
    Ok(json_text(status, bytes))
}

/// The answer of `GET /health`: `{"status":"ok"}`, written once.
#[must_use]
pub fn health() -> Response<Body> {
    let mut response = Response::new(full(bytes::Bytes::from_static(br#"{"status":"ok"}"#)));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, http::HeaderValue::from_static(JSON));
    response
}

/// A response carrying JSON text already written.
pub(crate) fn json_text(status: StatusCode, text: Vec<u8>) -> Response<Body> {
    let mut response = Response::new(full(text));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, http::HeaderValue::from_static(JSON));
    response
}

/// The error body: `{"error": {"code": "...", "message": "..."}}`.
pub fn error_response(e: &ApiError) -> Response<Body> {
    let body = serde_json::json!({"error": {"code": e.code.as_str(), "message": e.message}});
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

/// A JSON object of strings (`null`: `None`) whose keys are each given once: RFC 8259 §4
/// leaves repeated names to the reader and serde keeps the last, so `{"k":"first","k":"second"}`
/// is refused naming the key (`INVALID_REQUEST`), as Connect refuses it.
///
/// # Errors
/// A repeated key, a value that is not a string, or something other than an object or `null`.
pub(crate) fn unique_map<'de, D: serde::Deserializer<'de>>(
    de: D,
) -> Result<Option<BTreeMap<String, String>>, D::Error> {
    struct Unique;
    impl<'de> serde::de::Visitor<'de> for Unique {
        type Value = Option<BTreeMap<String, String>>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a map")
        }

        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: serde::Deserializer<'de>>(self, de: D) -> Result<Self::Value, D::Error> {
            de.deserialize_map(self)
        }

        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some(key) = map.next_key::<String>()? {
                if out.contains_key(&key) {
                    // Quoted as sent (as json_error quotes values), not Rust-escaped.
                    return Err(serde::de::Error::custom(format!(
                        "the key {} is given more than once",
                        super::json_error::quoted(&key)
                    )));
                }
                let value = map.next_value::<String>()?;
                out.insert(key, value);
            }
            Ok(Some(out))
        }
    }
    de.deserialize_option(Unique)
}

/// The body of `POST /api/v1/upload-url`.
#[derive(Debug, Deserialize)]
pub struct UploadUrlBody {
    /// The object's name (its tenant's folder is added).
    pub object_name: String,
    /// The `Content-Type` the upload must send.
    pub content_type: Option<String>,
    /// The exact size in bytes the upload must have.
    pub content_length: Option<u64>,
    /// The base64 SHA-256 the upload must match.
    pub checksum_sha256: Option<String>,
    /// `x-amz-meta-*` pairs the upload must send; absent or `null` is none; a key given twice
    /// is refused ([`unique_map`]).
    #[serde(default, deserialize_with = "unique_map")]
    pub metadata: Option<BTreeMap<String, String>>,
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
            self.metadata.unwrap_or_default(),
        )?;
        Ok((self.object_name, constraints))
    }
}

async fn upload_url<B: Storage + Presign>(
    app: &App<B>,
    tenant: Option<&Tenant>,
    body: UploadUrlBody,
) -> Result<Response<Body>, ApiError> {
    let (name, constraints) = body.into_parts()?;
    let made = app.upload_url(tenant, name, &constraints).await?;
    // The URL and the name (also inside the URL, encoded) make most of the reply's length.
    let capacity = 256 + made.url.len() + 4 * made.object_name.len();
    let headers = made.required_headers.iter();
    let text = crate::http::json::Object::with_capacity(capacity)
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

/// The body of `POST /api/v1/upload-form`.
#[derive(Debug, Deserialize)]
pub struct UploadFormBody {
    /// The object's name (its tenant's folder is added).
    pub object_name: String,
    /// The exact `Content-Type` the form must send.
    pub content_type: Option<String>,
    /// The largest file allowed, in bytes.
    pub max_content_length: Option<u64>,
    /// The smallest file allowed, in bytes.
    pub min_content_length: Option<u64>,
    /// `x-amz-meta-*` pairs the form carries; absent or `null` is none; a key given twice is
    /// refused ([`unique_map`]).
    #[serde(default, deserialize_with = "unique_map")]
    pub metadata: Option<BTreeMap<String, String>>,
}

async fn upload_form<B: Storage + Presign>(
    app: &App<B>,
    tenant: Option<&Tenant>,
    body: UploadFormBody,
) -> Result<Response<Body>, ApiError> {
    let request = crate::api::form::FormRequest {
        object_name: body.object_name,
        content_type: body.content_type,
        max_content_length: body.max_content_length,
        min_content_length: body.min_content_length,
        metadata: body.metadata.unwrap_or_default(),
    };
    let made = Box::pin(app.upload_form(tenant, &request)).await?;
    let capacity = 512 + made.url.len() + 4 * made.object_name.len();
    let fields = made.fields.iter().map(|(n, v)| (n.as_str(), v.as_str()));
    let text = crate::http::json::Object::with_capacity(capacity)
        .str("url", &made.url)
        .strings("fields", fields)
        .str("object_name", &made.object_name)
        .str("expires_at", &made.expires_at)
        .flag(CUT_BY_CREDENTIALS, made.cut_by_credentials)
        .finish();
    Ok(json_text(StatusCode::OK, text))
}

/// `"draft"` or `"main"`. Decoded from a string only, so that any other JSON value (`1`,
/// `true`, `["main"]`) is an error naming what is accepted rather than "malformed JSON".
#[derive(Debug, Default, Clone, Copy)]
enum SourceText {
    #[default]
    Draft,
    Main,
}

impl<'de> Deserialize<'de> for SourceText {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Text;
        impl serde::de::Visitor<'_> for Text {
            type Value = SourceText;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("\"draft\" or \"main\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<SourceText, E> {
                match v {
                    "draft" => Ok(SourceText::Draft),
                    "main" => Ok(SourceText::Main),
                    _ => Err(E::unknown_variant(v, &["draft", "main"])),
                }
            }
        }
        deserializer.deserialize_str(Text)
    }
}

/// The body of `POST /api/v1/download-url`.
#[derive(Debug, Deserialize)]
pub struct DownloadUrlBody {
    /// The object's name.
    pub object_name: String,
    /// Absent or `null` is the draft.
    source: Option<SourceText>,
}

impl DownloadUrlBody {
    /// The copy asked for: the draft unless `"main"`.
    #[must_use]
    pub fn source(&self) -> Source {
        match self.source.unwrap_or_default() {
            SourceText::Draft => Source::Draft,
            SourceText::Main => Source::Main,
        }
    }
}

async fn download_url<B: Storage + Presign>(
    app: &App<B>,
    tenant: Option<&Tenant>,
    body: DownloadUrlBody,
) -> Result<Response<Body>, ApiError> {
    let source = match body.source.unwrap_or_default() {
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
pub(crate) const CUT_BY_CREDENTIALS: &str = "expires_at_cut_by_credentials";

/// The body of `POST /api/v1/confirm-upload`.
#[derive(Debug, Deserialize)]
pub struct ConfirmBody {
    /// The draft's name.
    pub object_name: String,
    /// Replace a different object of that name in main; absent or `null` is `false`.
    pub overwrite: Option<bool>,
}

async fn confirm_upload<B: Storage + Presign>(
    app: &App<B>,
    tenant: Option<&Tenant>,
    body: ConfirmBody,
) -> Result<Response<Body>, ApiError> {
    let done = app
        .confirm(
            tenant,
            &body.object_name,
            body.overwrite.unwrap_or(false),
            None,
        )
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

async fn draft_bucket<B: Storage + Presign>(app: &App<B>) -> Result<Response<Body>, ApiError> {
    let (versioning, cors) = app.create_buckets_with_cors().await?;
    let rules: Vec<serde_json::Value> = cors
        .rules()
        .iter()
        .map(|r| {
            serde_json::json!({
                "AllowedOrigins": r.allowed_origins,
                "AllowedMethods": r.allowed_methods,
                "AllowedHeaders": r.allowed_headers,
                "ExposeHeaders": r.expose_headers,
                "MaxAgeSeconds": r.max_age_seconds,
            })
        })
        .collect();
    json(
        StatusCode::OK,
        &serde_json::json!({"success": true, "main_bucket": app.buckets.main.as_str(), "draft_bucket": app.buckets.draft.as_str(), "draft_bucket_versioning": versioning,
            "draft_bucket_cors": {"status": cors.status(), "CORSRules": rules}}),
    )
}

async fn ready<B: Storage + Presign>(app: &App<B>) -> Result<Response<Body>, ApiError> {
    match app.ready().await {
        // A degraded shared rate limiter is reported, never a reason to be unready.
        Ok(()) => match crate::auth::ratelimit::shared_status() {
            None => json(StatusCode::OK, &serde_json::json!({"status": "ready"})),
            Some(limiter) => json(
                StatusCode::OK,
                &serde_json::json!({"status": "ready", "rate_limit": limiter}),
            ),
        },
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_utf8_json_is_read() {
        for ok in [
            "",
            ";charset=utf-8",
            "; charset=\"UTF-8\"",
            ";v=1",
            "; charset=utf-8; v=2",
        ] {
            assert!(charset_is_utf8(ok), "{ok}");
        }
        for bad in [
            "; charset=latin1",
            ";CHARSET=utf-16",
            "; charset=\"iso-8859-1\"",
        ] {
            assert!(!charset_is_utf8(bad), "{bad}");
        }
    }
    use std::collections::BTreeSet;

    #[test]
    fn paths_parse_to_routes_exactly() {
        for (_, path) in ROUTES {
            let route = Route::of(path).unwrap();
            assert!(Route::ALL.contains(&route), "{path} in ALL");
        }
        // Ours are in ROUTES (and the OpenAPI document); the original's are served besides.
        // Companion's `/s3/multipart/{uploadId}` is one route with two methods.
        let paths: BTreeSet<&str> = ROUTES.iter().map(|(_, p)| *p).collect();
        assert_eq!(
            Route::ALL.len(),
            paths.len() + legacy::Route::ALL.len(),
            "every route is served"
        );
        for route in legacy::Route::ALL {
            let path = format!("/api/v1/{}", route.label());
            assert_eq!(Route::of(&path), Some(Route::Legacy(route)), "{path}");
        }
        // The embedded store's URLs are not REST routes: the server mounts the store apart.
        for unknown in [
            "/_store/b/k",
            "",
            "/",
            "/api/v1/upload-url/",
            "/API/v1/upload-url",
            "/healthz",
        ] {
            assert_eq!(Route::of(unknown), None, "{unknown}");
        }
    }

    /// Well-formed JSON with a wrong type or value is `INVALID_REQUEST` naming the field and
    /// what it accepts; only text that is not JSON is `INVALID_JSON`; `null` is absent.
    #[test]
    fn wrong_fields_are_named_and_null_is_absent() {
        let code = |r: Result<(), ApiError>| r.map_err(|e| (e.code, e.message));
        let download =
            |body: &str| code(decode_json::<DownloadUrlBody>(body.as_bytes()).map(|_| ()));
        let upload = |body: &str| code(decode_json::<UploadUrlBody>(body.as_bytes()).map(|_| ()));
        let confirm = |body: &str| code(decode_json::<ConfirmBody>(body.as_bytes()).map(|_| ()));
        for (result, field, accepts) in [
            (
                download(r#"{"object_name":"a","source":1}"#),
                "`source`",
                r#""draft" or "main""#,
            ),
            (
                download(r#"{"object_name":"a","source":true}"#),
                "`source`",
                r#""draft" or "main""#,
            ),
            (
                download(r#"{"object_name":"a","source":["main"]}"#),
                "`source`",
                r#""draft" or "main""#,
            ),
            (
                download(r#"{"object_name":"a","source":"mian"}"#),
                "`source`",
                "expected one of draft, main, found \"mian\"",
            ),
            (
                download(r#"{"object_name":7}"#),
                "`object_name`",
                "a string",
            ),
            (download(r#"{"source":"main"}"#), "body", "object_name"),
            (
                download(r#"["a"]"#),
                "body",
                "expected an object, found an array",
            ),
            (
                confirm(r#"{"object_name":"a","overwrite":"yes"}"#),
                "`overwrite`",
                "a boolean",
            ),
            (
                upload(r#"{"object_name":"a","content_length":-1}"#),
                "`content_length`",
                "expected a non-negative integer, found a number (-1)",
            ),
            (
                upload(r#"{"object_name":"a","metadata":{"k":1}}"#),
                "`metadata.k`",
                "a string",
            ),
            (
                upload(r#"{"object_name":"a","metadata":[]}"#),
                "`metadata`",
                "expected an object, found an array",
            ),
        ] {
            let (code, message) = result.unwrap_err();
            assert_eq!(code.as_str(), "INVALID_REQUEST", "{message}");
            assert!(
                message.contains(field) && message.contains(accepts),
                "{message}"
            );
            assert!(!message.contains("line 1"), "{message}");
        }
        for bad in [
            r#"{"object_name":"a","#,
            "nope",
            r#"{"object_name":"a"} x"#,
            "",
        ] {
            assert_eq!(
                download(bad).unwrap_err().0.as_str(),
                "INVALID_JSON",
                "{bad}"
            );
        }
        // null means absent, for every optional field of every route.
        download(r#"{"object_name":"a","source":null}"#).unwrap();
        confirm(r#"{"object_name":"a","overwrite":null}"#).unwrap();
        upload(
            r#"{"object_name":"a","content_type":null,"content_length":null,"checksum_sha256":null,"metadata":null}"#,
        )
        .unwrap();
        let body: DownloadUrlBody = decode_json(br#"{"object_name":"a","source":"main"}"#).unwrap();
        assert!(matches!(body.source, Some(SourceText::Main)));
    }

    /// The document says what `decode_json` does: every optional field of a request accepts
    /// `null` (OpenAPI 3.0 `nullable`, with `null` in an `enum`).
    #[test]
    fn openapi_optional_request_fields_are_nullable() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI_DOCUMENT).unwrap();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        let mut checked = 0;
        for (name, schema) in schemas.iter().filter(|(n, _)| n.ends_with("Request")) {
            let none = Vec::new();
            let required = schema["required"].as_array().unwrap_or(&none);
            for (field, property) in schema["properties"].as_object().unwrap() {
                if required.contains(&serde_json::Value::from(field.as_str())) {
                    continue;
                }
                checked += 1;
                assert_eq!(property["nullable"], true, "{name}.{field}");
                if let Some(values) = property["enum"].as_array() {
                    assert!(values.contains(&serde_json::Value::Null), "{name}.{field}");
                }
            }
        }
        assert_eq!(
            checked, 23,
            "upload-url's four, upload-form's four, source, overwrite, multipart create's six, part-urls' checksums, complete's parts, list's name and prefix, Companion create's type and metadata, list-drafts' prefix"
        );
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
