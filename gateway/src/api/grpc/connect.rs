//! The Connect protocol's unary calls (connectrpc.com/docs/protocol): `POST` of a bare message
//! on the gRPC method path, `application/proto` or `application/json` (proto3's JSON mapping:
//! the serde impls pbjson-build generates for the prost types, see `draftstore_proto`; the
//! JSON is read straight into the request type and written from the answer type, with no
//! descriptor lookup or dynamic message per call), served by the unary handlers of
//! [`super::dispatch`]. `Connect-Protocol-Version` must be `1` when sent;
//! `Connect-Timeout-Ms` is the deadline. A success is HTTP 200 with the bare answer (trailers
//! become `trailer-*` headers); an error is `{"code": "invalid_argument", "message": …}` with
//! the HTTP status Connect assigns to the code. Connect's streaming form serves server
//! reflection ([`stream`]).

pub mod json;
pub mod stream;

use super::multipart::Call;
use super::Rpc;
use crate::api::app::App;
use crate::api::error::{ApiError, Code, GrpcCode, Kind};
use crate::auth::Tenant;
use crate::http::response::{full, Body, CONTENT_TYPE};
use crate::store::Presign;
use bytes::Bytes;
use draftstore_core::Storage;
use draftstore_proto::draft::v1 as pb;
use draftstore_proto::grpc::health::v1 as health;
use draftstore_proto::prost::{Message, Name};
use http::{HeaderName, HeaderValue, Request, Response, StatusCode};
use serde::{de::DeserializeOwned, Serialize};
use std::time::Duration;

/// `Connect-Protocol-Version`.
pub const PROTOCOL_VERSION: HeaderName = HeaderName::from_static("connect-protocol-version");
/// `Connect-Timeout-Ms`: the deadline, up to 10 digits of milliseconds.
pub const TIMEOUT_MS: HeaderName = HeaderName::from_static("connect-timeout-ms");

/// How a Connect message is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// `application/proto`.
    Proto,
    /// `application/json`: proto3's JSON mapping.
    Json,
    /// `application/connect+proto`: Connect's streaming form, enveloped protobuf messages
    /// (served for server reflection, over HTTP/2: see [`stream`]).
    Stream,
}

impl Codec {
    /// The codec of a media type (before any `;`, trimmed, without case), or `None`.
    #[must_use]
    pub fn of(mime: &[u8]) -> Option<Self> {
        if mime.eq_ignore_ascii_case(b"application/proto") {
            Some(Self::Proto)
        } else if mime.eq_ignore_ascii_case(b"application/json") {
            Some(Self::Json)
        } else if mime.eq_ignore_ascii_case(b"application/connect+proto") {
            Some(Self::Stream)
        } else {
            None
        }
    }

    /// Its media type.
    #[must_use]
    pub const fn content_type(self) -> &'static str {
        match self {
            Self::Proto => "application/proto",
            Self::Json => "application/json",
            Self::Stream => "application/connect+proto",
        }
    }
}

/// Handles one Connect unary call to `rpc` (`None`: unknown method). Errors come back as
/// `Err` and are encoded by [`error`].
pub async fn handle<B: Storage + Presign>(
    app: &App<B>,
    req: Request<Bytes>,
    rpc: Option<Rpc>,
    codec: Codec,
    tenant: Option<&Tenant>,
) -> Result<Response<Body>, ApiError> {
    let headers = req.headers();
    protocol_version(headers)?;
    if let Some(encoding) = headers.get(http::header::CONTENT_ENCODING) {
        if !encoding.as_bytes().eq_ignore_ascii_case(b"identity") {
            return Err(ApiError::new(
                Code::UnsupportedEncoding,
                "Content-Encoding is not supported; this server accepts identity only",
            ));
        }
    }
    let rpc = super::admitted(
        super::Carrier::Connect,
        rpc,
        req.uri().path(),
        req.version(),
    )?;
    // Every method `admitted` lets through over Connect unary is unary and has a JSON form.
    let Some(json) = Json::of(rpc) else {
        return Err(ApiError::new(
            Code::Unimplemented,
            format!("{} is not a unary method", rpc.label()),
        ));
    };
    let deadline = super::left(&req, timeout)?;
    let call = async {
        // The body layer read it whole, within its limit (see `http::layer::body`).
        let body = req.into_body();
        let message = match codec {
            // A stream's codec never reaches here (refused at the head for a unary method).
            Codec::Proto | Codec::Stream => body,
            Codec::Json => (json.request)(&body)?,
        };
        super::dispatch(app, rpc, &message, tenant).await
    };
    let answer = match deadline {
        Some(d) => crate::http::deadline::within(d, call)
            .await
            .unwrap_or_else(|_| {
                Err(ApiError::new(
                    Code::DeadlineExceeded,
                    "Connect-Timeout-Ms passed",
                ))
            }),
        None => call.await,
    }?;
    let message = answer.message();
    let body = match codec {
        Codec::Proto | Codec::Stream => message,
        Codec::Json => (json.answer)(&message)?,
    };
    let mut response = Response::new(full(body));
    let out = response.headers_mut();
    out.insert(CONTENT_TYPE, HeaderValue::from_static(codec.content_type()));
    // Trailers other than the status become `trailer-*` headers.
    if let Some((name, text)) = answer.trailer {
        let value = HeaderValue::from_str(&super::status::percent_encode(&text));
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(format!("trailer-{name}")), value) {
            out.insert(name, value);
        }
    }
    Ok(response)
}

/// `Connect-Timeout-Ms`, if sent.
///
/// # Errors
/// `INVALID_REQUEST` for a value that is not 1 to 10 digits, `DEADLINE_EXCEEDED` for 0.
pub fn timeout(headers: &http::HeaderMap) -> Result<Option<Duration>, ApiError> {
    let Some(value) = headers.get(TIMEOUT_MS) else {
        return Ok(None);
    };
    let digits = value.as_bytes();
    let ms = std::str::from_utf8(digits)
        .ok()
        .filter(|d| !d.is_empty() && d.len() <= 10 && d.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|d| d.parse::<u64>().ok())
        .ok_or_else(|| {
            ApiError::new(
                Code::InvalidRequest,
                "Connect-Timeout-Ms must be 1 to 10 digits",
            )
        })?;
    if ms == 0 {
        return Err(ApiError::new(
            Code::DeadlineExceeded,
            "Connect-Timeout-Ms is 0",
        ));
    }
    Ok(Some(Duration::from_millis(ms)))
}

/// The JSON codec of one unary method: its request and answer types' proto3 JSON mapping.
#[derive(Debug, Clone, Copy)]
struct Json {
    /// A JSON request, as protobuf (what [`super::dispatch`] reads).
    request: fn(&[u8]) -> Result<Bytes, ApiError>,
    /// A protobuf answer (what [`super::dispatch`] wrote), as JSON.
    answer: fn(&[u8]) -> Result<Bytes, ApiError>,
}

impl Json {
    /// The codec of `rpc`'s types, or `None` for the one streaming method (reflection).
    fn of(rpc: Rpc) -> Option<Self> {
        Some(match rpc {
            Rpc::CreateDraftBucket => {
                Self::new::<pb::CreateDraftBucketRequest, pb::CreateDraftBucketResponse>()
            }
            Rpc::GetUploadUrl => Self::new::<pb::GetUploadUrlRequest, pb::GetUploadUrlResponse>(),
            Rpc::GetDownloadUrl => {
                Self::new::<pb::GetDownloadUrlRequest, pb::GetDownloadUrlResponse>()
            }
            Rpc::ConfirmUpload => {
                Self::new::<pb::ConfirmUploadRequest, pb::ConfirmUploadResponse>()
            }
            Rpc::GetUploadForm => {
                Self::new::<pb::GetUploadFormRequest, pb::GetUploadFormResponse>()
            }
            Rpc::ListDrafts => Self::new::<pb::ListDraftsRequest, pb::ListDraftsResponse>(),
            Rpc::HealthCheck => {
                Self::new::<health::HealthCheckRequest, health::HealthCheckResponse>()
            }
            Rpc::Multipart(Call::Create) => {
                Self::new::<pb::CreateMultipartUploadRequest, pb::CreateMultipartUploadResponse>()
            }
            Rpc::Multipart(Call::PartUrls) => {
                Self::new::<pb::GetPartUploadUrlsRequest, pb::GetPartUploadUrlsResponse>()
            }
            Rpc::Multipart(Call::ListParts) => {
                Self::new::<pb::ListPartsRequest, pb::ListPartsResponse>()
            }
            Rpc::Multipart(Call::Complete) => {
                Self::new::<pb::CompleteMultipartUploadRequest, pb::CompleteMultipartUploadResponse>(
                )
            }
            Rpc::Multipart(Call::Abort) => {
                Self::new::<pb::AbortMultipartUploadRequest, pb::AbortMultipartUploadResponse>()
            }
            Rpc::Multipart(Call::List) => {
                Self::new::<pb::ListMultipartUploadsRequest, pb::ListMultipartUploadsResponse>()
            }
            Rpc::Reflection | Rpc::ReflectionV1Alpha => return None,
        })
    }

    fn new<I, O>() -> Self
    where
        I: Message + Name + DeserializeOwned,
        O: Message + Default + Serialize,
    {
        Self {
            request: from_json::<I>,
            answer: to_json::<O>,
        }
    }
}

/// A JSON request of type `I` (the whole body: trailing bytes are an error; see [`json`]), as
/// protobuf.
fn from_json<I: Message + Name + DeserializeOwned>(json: &[u8]) -> Result<Bytes, ApiError> {
    let message: I = json::read(json)?;
    Ok(Bytes::from(message.encode_to_vec()))
}

/// A protobuf answer of type `O`, as JSON.
fn to_json<O: Message + Default + Serialize>(message: &[u8]) -> Result<Bytes, ApiError> {
    let encode = |e: String| ApiError::new(Code::Encode, format!("could not write JSON: {e}"));
    let decoded = O::decode(message).map_err(|e| encode(e.to_string()))?;
    // JSON names every field: room for about twice the protobuf, so it is rarely grown.
    let mut json = Vec::with_capacity(message.len().saturating_mul(2).saturating_add(64));
    serde_json::to_writer(&mut json, &decoded).map_err(|e| encode(e.to_string()))?;
    Ok(Bytes::from(json))
}

/// Connect's name for a gRPC code.
#[must_use]
pub const fn code_name(code: GrpcCode) -> &'static str {
    match code {
        GrpcCode::Ok => "ok",
        GrpcCode::Cancelled => "canceled",
        GrpcCode::InvalidArgument => "invalid_argument",
        GrpcCode::DeadlineExceeded => "deadline_exceeded",
        GrpcCode::NotFound => "not_found",
        GrpcCode::AlreadyExists => "already_exists",
        GrpcCode::FailedPrecondition => "failed_precondition",
        GrpcCode::ResourceExhausted => "resource_exhausted",
        GrpcCode::Unimplemented => "unimplemented",
        GrpcCode::PermissionDenied => "permission_denied",
        GrpcCode::Unauthenticated => "unauthenticated",
        GrpcCode::Internal => "internal",
        GrpcCode::Unavailable => "unavailable",
    }
}

/// The HTTP status Connect sends with a code (its "Error Codes" table).
#[must_use]
pub const fn http_status(code: GrpcCode) -> u16 {
    match code {
        GrpcCode::Ok => 200,
        GrpcCode::Cancelled => 499,
        GrpcCode::InvalidArgument | GrpcCode::FailedPrecondition => 400,
        GrpcCode::Unauthenticated => 401,
        GrpcCode::PermissionDenied => 403,
        GrpcCode::NotFound => 404,
        GrpcCode::AlreadyExists => 409,
        GrpcCode::ResourceExhausted => 429,
        GrpcCode::Internal => 500,
        GrpcCode::Unimplemented => 501,
        GrpcCode::Unavailable => 503,
        GrpcCode::DeadlineExceeded => 504,
    }
}

/// Connect's error object, `{"code", "message", "details"}` (the details: see
/// [`super::details`]): a unary answer's body and the `error` of a stream's end-of-stream
/// message ([`super::stream::end_of_stream`]).
pub(crate) fn error_json(e: &ApiError) -> serde_json::Value {
    serde_json::json!({
        "code": code_name(e.grpc_code()),
        "message": e.message,
        "details": super::details::connect_details(e),
    })
}

/// `e` as a Connect error: `{"code", "message"}` with its HTTP status (and `Retry-After`).
#[must_use]
pub fn error(e: &ApiError) -> Response<Body> {
    let code = e.grpc_code();
    let body = error_json(e);
    let mut response = Response::new(full(serde_json::to_vec(&body).unwrap_or_default()));
    *response.status_mut() =
        StatusCode::from_u16(http_status(code)).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(secs) = e.retry_after {
        headers.insert(http::header::RETRY_AFTER, HeaderValue::from(secs));
    }
    // A unary request in an encoding this server cannot read: the spec's `unimplemented`,
    // naming what it can (a unary call's compression is plain HTTP `Content-Encoding`, so the
    // answer is plain `Accept-Encoding`; `Connect-Accept-Encoding` is for streams).
    if e.code == Code::UnsupportedEncoding {
        headers.insert(
            http::header::ACCEPT_ENCODING,
            HeaderValue::from_static("identity"),
        );
    }
    response
}

/// Every media type a gRPC method path takes, by protocol: `(protocol, its media types)`.
/// The one list [`accept_post`] (the 415's `Accept-Post`) and [`served_media_types`] (its
/// message) are built from.
pub const MEDIA_TYPES: &[(&str, &[&str])] = &[
    ("gRPC", &["application/grpc", "application/grpc+proto"]),
    (
        "gRPC-Web",
        &[
            "application/grpc-web",
            "application/grpc-web+proto",
            "application/grpc-web-text",
            "application/grpc-web-text+proto",
        ],
    ),
    ("Connect unary", &["application/json", "application/proto"]),
    (
        "Connect streaming: server reflection",
        &["application/connect+proto"],
    ),
];

/// `Accept-Post` (RFC 9110 §15.5.16's companion, W3C LDP §7.1): every media type in
/// [`MEDIA_TYPES`], comma-separated.
#[must_use]
pub fn accept_post() -> String {
    MEDIA_TYPES
        .iter()
        .flat_map(|(_, types)| types.iter().copied())
        .collect::<Vec<_>>()
        .join(", ")
}

/// [`MEDIA_TYPES`] as a sentence's tail: `a or b (gRPC), c, d, e or f (gRPC-Web), …`.
#[must_use]
pub fn served_media_types() -> String {
    MEDIA_TYPES
        .iter()
        .map(|(protocol, types)| format!("{} ({protocol})", listed(types, "or")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `items` as a sentence lists them: `a, b <word> c` (`word`: `or`, `and`).
#[must_use]
pub fn listed(items: &[&str], word: &str) -> String {
    match items.split_last() {
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} {word} {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// `e` refused at the HTTP level on a gRPC method path, as connect-go refuses it: its own HTTP
/// status rather than the code's (405 with `Allow` for a method other than `POST`, 415 with
/// `Accept-Post` for a media type no protocol of the path takes), with Connect's error body,
/// which a Connect client reads and other clients can.
#[must_use]
pub fn refusal(e: &ApiError) -> Response<Body> {
    let mut response = error(e);
    if let Ok(status) = StatusCode::from_u16(e.http_status()) {
        *response.status_mut() = status;
    }
    let headers = response.headers_mut();
    if let Some(allow) = e.allow {
        headers.insert(http::header::ALLOW, HeaderValue::from_static(allow));
    }
    if e.kind() == Kind::UnsupportedMediaType {
        if let Ok(accepted) = HeaderValue::from_str(&accept_post()) {
            headers.insert(HeaderName::from_static("accept-post"), accepted);
        }
    }
    response
}

/// The rule for unary calls and streams alike: a `Connect-Protocol-Version` header, when sent,
/// is sent once and is `1` (the only version of the Connect protocol).
///
/// # Errors
/// Any other value, or the header more than once: `CONNECT_VERSION` (400, `invalid_argument`).
pub fn protocol_version(headers: &http::HeaderMap) -> Result<(), ApiError> {
    let mut versions = headers.get_all(PROTOCOL_VERSION).iter();
    match (versions.next(), versions.next()) {
        (Some(version), _) if version.as_bytes() != b"1" => Err(ApiError::new(
            Code::ConnectVersion,
            "Connect-Protocol-Version must be 1",
        )),
        (Some(_), Some(_)) => Err(ApiError::new(
            Code::ConnectVersion,
            "Connect-Protocol-Version must be 1, sent once",
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_post_and_the_415_message_name_every_media_type_served() {
        let accepted = accept_post();
        let message = served_media_types();
        for media in [
            "application/grpc",
            "application/grpc+proto",
            "application/grpc-web",
            "application/grpc-web+proto",
            "application/grpc-web-text",
            "application/grpc-web-text+proto",
            "application/json",
            "application/proto",
            "application/connect+proto",
        ] {
            assert!(accepted.split(", ").any(|m| m == media), "{accepted}");
            assert!(message.contains(media), "{message}");
        }
        assert_eq!(listed(&["a"], "or"), "a");
        assert_eq!(listed(&["a", "b", "c"], "and"), "a, b and c");
    }

    #[test]
    fn json_requests_become_protobuf_and_answers_json() {
        let json = Json::of(Rpc::GetUploadUrl).unwrap();
        let message =
            (json.request)(br#"{"objectName": "cat.jpg", "constraints": {"contentLength": "12"}}"#)
                .unwrap();
        let decoded = pb::GetUploadUrlRequest::decode(message).unwrap();
        assert_eq!(decoded.object_name, "cat.jpg");
        assert_eq!(decoded.constraints.unwrap().content_length, Some(12));
        let answer = pb::GetUploadUrlResponse {
            url: "http://x".into(),
            ..Default::default()
        };
        let written = (json.answer)(&answer.encode_to_vec()).unwrap();
        assert_eq!(&written[..], br#"{"url":"http://x"}"#);
        // A protobuf answer that is not one (never from dispatch) is an encoding error.
        assert_eq!((json.answer)(&[0xff]).unwrap_err().code, Code::Encode);
    }

    #[test]
    fn every_unary_rpc_has_json_and_reflection_none() {
        for rpc in Rpc::ALL {
            assert_eq!(Json::of(rpc).is_some(), rpc.is_unary(), "{rpc:?}");
            if let Some(json) = Json::of(rpc) {
                // Every request type reads `{}`, and its default answer writes `{}`.
                let empty = (json.request)(b"{}").unwrap();
                assert!(empty.is_empty(), "{rpc:?}");
                assert_eq!(&(json.answer)(&[]).unwrap()[..], b"{}", "{rpc:?}");
            }
        }
    }

    #[test]
    fn bad_json_and_headers_are_invalid_argument() {
        let json = Json::of(Rpc::GetUploadUrl).unwrap();
        for bad in [&b"{"[..], b"[]", br#"{"objectName": 5}"#, b"{} x", b""] {
            let e = (json.request)(bad).unwrap_err();
            assert_eq!(e.code, Code::MalformedMessage, "{bad:?}");
            assert!(
                e.message.contains("draft.v1.GetUploadURLRequest"),
                "{}",
                e.message
            );
            assert_eq!(http_status(e.grpc_code()), 400);
        }
        // An unknown field is dropped (connect-go's DiscardUnknown), the known ones kept.
        let kept = (json.request)(br#"{"nope": 1, "objectName": "a.txt"}"#).unwrap();
        assert_eq!(
            pb::GetUploadUrlRequest::decode(kept).unwrap().object_name,
            "a.txt"
        );
        let mut headers = http::HeaderMap::new();
        headers.insert(TIMEOUT_MS, HeaderValue::from_static("1500"));
        assert_eq!(
            timeout(&headers).unwrap(),
            Some(Duration::from_millis(1500))
        );
        headers.insert(TIMEOUT_MS, HeaderValue::from_static("12345678901"));
        assert!(timeout(&headers).is_err());
    }
}
