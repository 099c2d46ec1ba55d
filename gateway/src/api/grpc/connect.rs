//! The Connect protocol's unary calls (connectrpc.com/docs/protocol): `POST` of a bare message
//! on the gRPC method path, `application/proto` or `application/json` (proto3's JSON mapping,
//! by prost-reflect's serde support over the compiled descriptors), served by the unary
//! handlers of [`super::dispatch`]. `Connect-Protocol-Version` must be `1` when sent;
//! `Connect-Timeout-Ms` is the deadline. A success is HTTP 200 with the bare answer (trailers
//! become `trailer-*` headers); an error is `{"code": "invalid_argument", "message": …}` with
//! the HTTP status Connect assigns to the code.

use super::Rpc;
use crate::api::app::App;
use crate::api::error::{ApiError, Code, GrpcCode};
use crate::auth::Tenant;
use crate::http::response::{full, Body, CONTENT_TYPE};
use crate::store::Presign;
use bytes::Bytes;
use draftstore_core::Storage;
use draftstore_proto::prost::Message;
use http::{HeaderName, HeaderValue, Request, Response, StatusCode};
use prost_reflect::{DynamicMessage, MessageDescriptor};
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
}

impl Codec {
    /// The codec of a media type (before any `;`, trimmed, without case), or `None`.
    #[must_use]
    pub fn of(mime: &[u8]) -> Option<Self> {
        if mime.eq_ignore_ascii_case(b"application/proto") {
            Some(Self::Proto)
        } else if mime.eq_ignore_ascii_case(b"application/json") {
            Some(Self::Json)
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
    if let Some(version) = headers.get(PROTOCOL_VERSION) {
        if version.as_bytes() != b"1" {
            return Err(ApiError::new(
                Code::ConnectVersion,
                "Connect-Protocol-Version must be 1",
            ));
        }
    }
    if let Some(encoding) = headers.get(http::header::CONTENT_ENCODING) {
        if !encoding.as_bytes().eq_ignore_ascii_case(b"identity") {
            return Err(ApiError::new(
                Code::UnsupportedEncoding,
                "Content-Encoding is not supported; this server accepts identity only",
            ));
        }
    }
    let (rpc, input, output) =
        match rpc.map(|rpc| (rpc, methods(req.uri().path()))) {
            Some((rpc, Some((input, output)))) if rpc.is_unary() => (rpc, input, output),
            Some((rpc, _)) if !rpc.is_unary() => return Err(ApiError::new(
                Code::Unimplemented,
                "server reflection is a bidirectional stream: call it with native gRPC over HTTP/2",
            )),
            _ => {
                return Err(ApiError::new(
                    Code::Unimplemented,
                    format!("unknown method {}", req.uri().path()),
                ))
            }
        };
    let deadline = timeout(headers)?;
    let call = async {
        // The body layer read it whole, within its limit (see `http::layer::body`).
        let body = req.into_body();
        let message = match codec {
            Codec::Proto => body,
            Codec::Json => Bytes::from(from_json(input, &body)?.encode_to_vec()),
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
        Codec::Proto => message,
        Codec::Json => to_json(output, &message)?,
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

/// The input and output types of the method at `path` (`/<service>/<method>`).
fn methods(path: &str) -> Option<(MessageDescriptor, MessageDescriptor)> {
    let (service, method) = path.strip_prefix('/')?.split_once('/')?;
    let pool = super::reflection::pool().ok()?;
    let method = pool
        .get_service_by_name(service)?
        .methods()
        .find(|m| m.name() == method)?;
    Some((method.input(), method.output()))
}

/// `Connect-Timeout-Ms`, if sent.
fn timeout(headers: &http::HeaderMap) -> Result<Option<Duration>, ApiError> {
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

/// A JSON request, as the protobuf message of type `input`.
fn from_json(input: MessageDescriptor, json: &[u8]) -> Result<DynamicMessage, ApiError> {
    let bad = |e: serde_json::Error| {
        ApiError::new(
            Code::MalformedMessage,
            format!("not a JSON {}: {e}", input.full_name()),
        )
    };
    let mut deserializer = serde_json::Deserializer::from_slice(json);
    // Unknown fields are dropped, as connect-go's JSON codec does (protojson `DiscardUnknown`)
    // and as the protobuf path does: a client built from a newer `draft.proto` keeps working.
    let options = prost_reflect::DeserializeOptions::new().deny_unknown_fields(false);
    let message =
        DynamicMessage::deserialize_with_options(input.clone(), &mut deserializer, &options)
            .map_err(bad)?;
    deserializer.end().map_err(bad)?;
    Ok(message)
}

/// A protobuf answer of type `output`, as JSON.
fn to_json(output: MessageDescriptor, message: &[u8]) -> Result<Bytes, ApiError> {
    let encode = |e: String| ApiError::new(Code::Encode, format!("could not write JSON: {e}"));
    let message = DynamicMessage::decode(output, message).map_err(|e| encode(e.to_string()))?;
    serde_json::to_vec(&message)
        .map(Bytes::from)
        .map_err(|e| encode(e.to_string()))
}

/// Connect's name for a gRPC code.
#[must_use]
pub const fn code_name(code: GrpcCode) -> &'static str {
    match code {
        GrpcCode::Ok => "ok",
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

/// `e` as a Connect error: `{"code", "message"}` with its HTTP status (and `Retry-After`).
#[must_use]
pub fn error(e: &ApiError) -> Response<Body> {
    let code = e.grpc_code();
    let body = serde_json::json!({"code": code_name(code), "message": e.message});
    let mut response = Response::new(full(serde_json::to_vec(&body).unwrap_or_default()));
    *response.status_mut() =
        StatusCode::from_u16(http_status(code)).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(secs) = e.retry_after {
        headers.insert(http::header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_requests_become_protobuf_and_answers_json() {
        let (input, output) = methods(draftstore_proto::draft::v1::paths::GET_UPLOAD_URL).unwrap();
        let message = from_json(
            input,
            br#"{"objectName": "cat.jpg", "constraints": {"contentLength": "12"}}"#,
        )
        .unwrap();
        let decoded = <draftstore_proto::draft::v1::GetUploadUrlRequest as Message>::decode(
            &*message.encode_to_vec(),
        )
        .unwrap();
        assert_eq!(decoded.object_name, "cat.jpg");
        assert_eq!(decoded.constraints.unwrap().content_length, Some(12));
        let answer = draftstore_proto::draft::v1::GetUploadUrlResponse {
            url: "http://x".into(),
            ..Default::default()
        };
        let json = to_json(output, &answer.encode_to_vec()).unwrap();
        assert_eq!(&json[..], br#"{"url":"http://x"}"#);
        assert!(methods("/draft.v1.DraftService/Nope").is_none());
    }

    #[test]
    fn bad_json_and_headers_are_invalid_argument() {
        let (input, _) = methods(draftstore_proto::draft::v1::paths::GET_UPLOAD_URL).unwrap();
        for bad in [&b"{"[..], b"[]", br#"{"objectName": 5}"#, b"{} x"] {
            let e = from_json(input.clone(), bad).unwrap_err();
            assert_eq!(e.code, Code::MalformedMessage, "{bad:?}");
            assert_eq!(http_status(e.grpc_code()), 400);
        }
        // An unknown field is dropped (connect-go's DiscardUnknown), the known ones kept.
        let kept = from_json(input.clone(), br#"{"nope": 1, "objectName": "a.txt"}"#).unwrap();
        assert_eq!(
            kept.get_field_by_name("object_name")
                .and_then(|v| v.as_str().map(str::to_owned)),
            Some("a.txt".to_owned())
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
