//! The handlers of Companion's S3 routes (see the [module doc](super)): decode Uppy's query and
//! JSON, call the multipart API ([`crate::api::multipart`]) and confirm, encode Companion's
//! shapes. Also `POST /api/v1/upload-token`.

use super::decode::{part_number, text_of, user_metadata, Query};
use super::{name_of, new_object_name, parse, redacted, Op, UploadTokens};
use crate::api::app::{object_key, ttl_within, App};
use crate::api::error::{ApiError, Code};
use crate::api::form::FormRequest;
use crate::api::rest::{json, read_json};
use crate::auth::Tenant;
use crate::http::response::{full, Body, CONTENT_TYPE, JSON};
use crate::store::Presign;
use bytes::Bytes;
use draftstore_core::{Storage, UploadConstraints};
use draftstore_signer::{Method as SignMethod, Timestamp};
use http::{Method, Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::{json as value, Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Handles one request to a route of the protocol, its body read whole.
///
/// # Errors
/// Each route's, as [`ApiError`]s (encoded by [`error_response`]).
pub async fn handle<B: Storage + Presign>(
    app: &App<B>,
    req: &Request<Bytes>,
    op: Op,
    tenant: Option<&Tenant>,
) -> Result<Response<Body>, ApiError> {
    let path = req.uri().path();
    let target = parse(path)
        .ok_or_else(|| ApiError::new(Code::NoSuchRoute, format!("no route {}", redacted(path))))?;
    let query = Query::of(req.uri().query());
    let upload_id = || {
        let raw = target.upload_id.unwrap_or_default();
        percent_encoding::percent_decode_str(raw)
            .decode_utf8()
            .map(|id| id.into_owned())
            .map_err(|_| ApiError::new(Code::InvalidRequest, "s3: uploadId must be UTF-8"))
    };
    // HEAD answers as GET does (hyper sends no body), as Companion's Express router does.
    let method = match req.method() {
        &Method::HEAD => &Method::GET,
        other => other,
    };
    match (op, method) {
        (Op::Params, &Method::GET) => params(app, tenant, &query).await,
        (Op::Create, &Method::POST) => create(app, tenant, read_json(req)?).await,
        (Op::Upload, &Method::GET) => {
            let (id, key) = (upload_id()?, query.key()?);
            let parts = app.list_parts(tenant, name_of(tenant, key)?, &id).await?;
            let listed: Vec<Value> = parts
                .iter()
                .map(|p| value!({"PartNumber": p.part_number, "ETag": format!("\"{}\"", p.etag), "Size": p.size}))
                .collect();
            json(StatusCode::OK, &listed)
        }
        (Op::Upload, &Method::DELETE) => {
            let (id, key) = (upload_id()?, query.key()?);
            app.abort_multipart(tenant, name_of(tenant, key)?, &id)
                .await?;
            json(StatusCode::OK, &value!({}))
        }
        (Op::Part, &Method::GET) => {
            let (id, key) = (upload_id()?, query.key()?);
            let number = part_number(target.part.unwrap_or_default())?;
            sign_part(app, tenant, name_of(tenant, key)?, &id, number).await
        }
        (Op::Complete, &Method::POST) => {
            let (id, key) = (upload_id()?, query.key()?);
            complete(app, tenant, key, &id, read_json(req)?).await
        }
        (Op::Confirm, &Method::POST) => {
            let key = query.key()?;
            let done = app
                .confirm(tenant, name_of(tenant, key)?, false, None)
                .await?;
            json(
                StatusCode::OK,
                &value!({
                    "success": true,
                    "key": key,
                    "object_name": done.object_name,
                    "final_location": done.final_location,
                    "size": done.size,
                    "etag": done.etag,
                }),
            )
        }
        _ => Err(ApiError::new(
            Code::MethodNotAllowed,
            format!("{} accepts {} only", redacted(path), op.allowed()),
        )
        .with_allow(op.allowed())),
    }
}

/// The declaration of an upload Uppy describes.
fn declared(
    content_type: Option<String>,
    metadata: BTreeMap<String, String>,
) -> Result<UploadConstraints, ApiError> {
    Ok(UploadConstraints::new(content_type, None, None, metadata)?)
}

fn filename_required(filename: Option<&str>, where_: &str) -> Result<String, ApiError> {
    filename
        .filter(|f| !f.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| {
            ApiError::new(
                Code::InvalidRequest,
                format!("s3: the \"filename\" {where_} is required and must be a non-empty string"),
            )
        })
}

/// `GET /s3/params`: a presigned POST form (issue 16's `upload-form`, [`crate::api::form`]) for a
/// new key, with the file's type and Uppy's metadata pinned by the policy, and the tenant's
/// `max_size` as its size range.
async fn params<B: Storage + Presign>(
    app: &App<B>,
    tenant: Option<&Tenant>,
    query: &Query,
) -> Result<Response<Body>, ApiError> {
    let filename = filename_required(query.get("filename"), "query parameter")?;
    let request = FormRequest {
        object_name: new_object_name(&filename)?,
        content_type: query
            .get("type")
            .filter(|t| !t.is_empty())
            .map(str::to_owned),
        metadata: user_metadata(query.metadata().map(|(k, v)| (k, Some(v.to_owned())))),
        ..FormRequest::default()
    };
    let form = app.upload_form(tenant, &request).await?;
    let fields: Map<String, Value> = form
        .fields
        .into_iter()
        .map(|(name, text)| (name, Value::String(text)))
        .collect();
    json(
        StatusCode::OK,
        &value!({
            "method": "POST",
            "url": form.url,
            "fields": fields,
            "expires": seconds_until(&form.expires_at),
            "expires_at": form.expires_at,
        }),
    )
}

/// The body of `POST /s3/multipart` (Uppy's `createMultipartUpload`).
#[derive(Debug, Deserialize)]
pub struct CreateBody {
    /// The file's name; the key is made from it.
    pub filename: Option<String>,
    /// Its media type.
    #[serde(rename = "type")]
    pub content_type: Option<String>,
    /// Uppy's `file.meta` (allowed fields).
    pub metadata: Option<Map<String, Value>>,
}

async fn create<B: Storage + Presign>(
    app: &App<B>,
    tenant: Option<&Tenant>,
    body: CreateBody,
) -> Result<Response<Body>, ApiError> {
    let filename = filename_required(body.filename.as_deref(), "field")?;
    let metadata = body.metadata.unwrap_or_default();
    let metadata = user_metadata(metadata.iter().map(|(k, v)| (k.as_str(), text_of(v))));
    let declared = declared(body.content_type, metadata)?;
    let name = new_object_name(&filename)?;
    let key = object_key(tenant, &name)?;
    let created = app
        .create_multipart(tenant, &name, &declared, None, false)
        .await?;
    json(
        StatusCode::OK,
        &value!({"key": key.as_str(), "uploadId": created.upload_id, "bucket": app.buckets.draft.as_str()}),
    )
}

async fn sign_part<B: Storage + Presign>(
    app: &App<B>,
    tenant: Option<&Tenant>,
    name: &str,
    upload_id: &str,
    number: u64,
) -> Result<Response<Body>, ApiError> {
    let none = BTreeMap::new();
    let signed = app
        .part_urls(tenant, name, upload_id, &[number], &none)
        .await?;
    let part = signed
        .iter()
        .next()
        .ok_or_else(|| ApiError::new(Code::Encode, "no part URL was signed"))?;
    // Seconds the URL lives, as Companion's `expires`; `expires_at` says when exactly.
    let expires = seconds_until(part.expires_at);
    json(
        StatusCode::OK,
        &value!({"url": part.url, "expires": expires, "expires_at": part.expires_at}),
    )
}

/// Seconds from now until `at` (RFC 3339 as [`draftstore_signer::Timestamp::rfc3339`] writes it); 0 when unreadable.
fn seconds_until(at: &str) -> i64 {
    let amz: String = at.chars().filter(|c| !matches!(c, '-' | ':')).collect();
    let now = crate::clock::unix_now().unwrap_or_default();
    Timestamp::parse_amz(&amz)
        .map(|t| t.unix().saturating_sub(now).max(0))
        .unwrap_or_default()
}

/// One part named at complete, as Uppy sends it.
#[derive(Debug, Deserialize)]
pub struct CompletePart {
    /// Its number.
    #[serde(rename = "PartNumber")]
    pub part_number: u64,
    /// Its ETag, as the PUT answered (quotes allowed).
    #[serde(rename = "ETag")]
    pub etag: String,
}

/// The body of `POST /s3/multipart/{uploadId}/complete`.
#[derive(Debug, Deserialize)]
pub struct CompleteBody {
    /// In ascending order.
    pub parts: Vec<CompletePart>,
}

async fn complete<B: Storage + Presign>(
    app: &App<B>,
    tenant: Option<&Tenant>,
    key: &str,
    upload_id: &str,
    body: CompleteBody,
) -> Result<Response<Body>, ApiError> {
    let name = name_of(tenant, key)?;
    let chosen: Vec<(u64, String)> = body
        .parts
        .into_iter()
        .map(|p| (p.part_number, p.etag))
        .collect();
    app.complete_multipart(tenant, name, upload_id, Some(&chosen))
        .await?;
    let location = preview(app, tenant, name)?;
    json(
        StatusCode::OK,
        &value!({"location": location, "key": key, "bucket": app.buckets.draft.as_str()}),
    )
}

/// A presigned GET of the draft just assembled (`DOWNLOAD_TTL`): Uppy's `uploadURL`, a preview.
fn preview<B: Storage + Presign>(
    app: &App<B>,
    tenant: Option<&Tenant>,
    name: &str,
) -> Result<String, ApiError> {
    let key = object_key(tenant, name)?;
    let now = crate::clock::timestamp_now()
        .ok_or_else(|| ApiError::new(Code::Clock, "the system clock is out of range"))?;
    let (ttl, _) = ttl_within(now, app.download_ttl, app.store.url_deadline())?;
    Ok(app
        .store
        .presign(SignMethod::Get, &app.buckets.draft, &key, &[], ttl, now)?)
}

/// `POST /api/v1/upload-token`: `{"token", "expires_at", "companion_endpoint"}` for the
/// caller's tenant (`tokens` is the server's, `None` when they are off).
///
/// # Errors
/// 501 `UPLOAD_TOKENS_OFF` without a token key; 400 without a host to build the endpoint from.
pub fn upload_token(
    req: &Request<Bytes>,
    tenant: Option<&Tenant>,
) -> Result<Response<Body>, ApiError> {
    let tokens = req.extensions().get::<Arc<UploadTokens>>().ok_or_else(|| {
        ApiError::new(
            Code::UploadTokensOff,
            "upload tokens need DRAFTSTORE_UPLOAD_TOKEN_SECRET (the same on every replica)",
        )
    })?;
    let now = crate::clock::unix_now()
        .ok_or_else(|| ApiError::new(Code::Clock, "the system clock is out of range"))?;
    let (token, expires) = tokens.mint(tenant.map(Tenant::as_str), now);
    let base = match &tokens.base {
        Some(base) => base.trim_end_matches('/').to_owned(),
        None => {
            let host = req
                .uri()
                .authority()
                .map(http::uri::Authority::as_str)
                .or_else(|| {
                    req.headers()
                        .get(http::header::HOST)
                        .and_then(|h| h.to_str().ok())
                })
                .filter(|h| !h.is_empty())
                .ok_or_else(|| ApiError::new(Code::InvalidRequest, "the request names no host"))?;
            let scheme = if tokens.https { "https" } else { "http" };
            format!("{scheme}://{host}")
        }
    };
    let expires_at = Timestamp::from_unix(expires)
        .map(|t| t.rfc3339())
        .unwrap_or_default();
    let mut response = json(
        StatusCode::OK,
        &value!({
            "token": token,
            "expires_at": expires_at,
            "companion_endpoint": format!("{base}{}{token}", super::TOKEN_PREFIX),
        }),
    )?;
    // A credential: never kept by a cache.
    response.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}

/// An error as Companion answers one: `{"message": …}`, with our `code` beside it, and the
/// status, `Retry-After`, `WWW-Authenticate` and `Allow` of REST's errors.
#[must_use]
pub fn error_response(e: &ApiError) -> Response<Body> {
    let (mut parts, _) = crate::api::rest::error_response(e).into_parts();
    let body = value!({"message": e.message, "code": e.code.as_str()});
    parts
        .headers
        .insert(CONTENT_TYPE, http::HeaderValue::from_static(JSON));
    Response::from_parts(parts, full(serde_json::to_vec(&body).unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_companions_shape() {
        let e = ApiError::new(Code::NoSuchUpload, "no such upload");
        let response = error_response(&e);
        assert_eq!(response.status(), 404);
        assert_eq!(response.headers()[CONTENT_TYPE], JSON);
    }
}
