//! gRPC over HTTP/2, routed by hand, messages with prost. Unary calls read one
//! length-prefixed message (its length checked before it is buffered), call [`App`], answer
//! with a framed message and `grpc-status` trailers; server reflection is a bidirectional
//! stream ([`reflection`], over [`stream`]). `grpc-timeout` is honoured.
//!
//! The same unary handlers serve gRPC-Web ([`web`]) and Connect ([`connect`]): each is a codec
//! around [`dispatch`]. Reflection is also served over Connect's streaming form
//! ([`connect::stream`]). Calls refused by path and protocol alone are refused from the head
//! ([`refused_at_head`]).

pub mod codec;
pub mod connect;
pub mod details;
pub mod multipart;
pub mod reflection;
pub mod status;
pub mod stream;
pub mod web;

use crate::api::app::{App, Source};
use crate::api::error::{ApiError, Code};
use crate::auth::Tenant;
use crate::config::Limits;
use crate::http::response::Body;
use crate::store::Presign;
use bytes::Bytes;
use codec::{decode_unary, FrameError, Framed};
use draftstore_core::Storage;
use draftstore_core::UploadConstraints;
use draftstore_proto::draft::v1 as pb;
use draftstore_proto::grpc::health::v1 as health;
use draftstore_proto::grpc::reflection::v1 as reflection_pb;
use draftstore_proto::prost::Message;
use http::{Request, Response, Version};
use std::time::Duration;

/// The gRPC header names we read and write (grpc/grpc `doc/PROTOCOL-HTTP2.md`).
pub mod header {
    use http::HeaderName;
    /// The call's status code, in trailers (or the headers of a trailers-only error).
    pub const GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
    /// The status message, percent-encoded.
    pub const GRPC_MESSAGE: HeaderName = HeaderName::from_static("grpc-message");
    /// The client's deadline: up to 8 digits and a unit.
    pub const GRPC_TIMEOUT: HeaderName = HeaderName::from_static("grpc-timeout");
    /// The message encodings the server accepts, sent on every answer.
    pub const GRPC_ACCEPT_ENCODING: HeaderName = HeaderName::from_static("grpc-accept-encoding");
    /// The encoding of the client's messages.
    pub const GRPC_ENCODING: HeaderName = HeaderName::from_static("grpc-encoding");
}

/// The fully qualified name of the service this server implements (what a health check may
/// name; the method paths in `draft.v1.paths` start with it).
pub const DRAFT_SERVICE: &str = "draft.v1.DraftService";

/// The RPCs served, parsed once from the request path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rpc {
    /// `CreateDraftBucket`.
    CreateDraftBucket,
    /// `GetUploadURL`.
    GetUploadUrl,
    /// `GetDownloadURL`.
    GetDownloadUrl,
    /// `ConfirmUpload`.
    ConfirmUpload,
    /// `GetUploadForm`.
    GetUploadForm,
    /// `grpc.health.v1.Health/Check`.
    HealthCheck,
    /// `grpc.reflection.v1.ServerReflection/ServerReflectionInfo` (a bidi stream).
    Reflection,
    /// The same method of `grpc.reflection.v1alpha`.
    ReflectionV1Alpha,
    /// The multipart calls.
    Multipart(multipart::Call),
    /// `ListDrafts`.
    ListDrafts,
}

impl Rpc {
    /// Every RPC served.
    pub const ALL: [Self; 15] = [
        Self::CreateDraftBucket,
        Self::GetUploadUrl,
        Self::GetDownloadUrl,
        Self::ConfirmUpload,
        Self::GetUploadForm,
        Self::HealthCheck,
        Self::Reflection,
        Self::ReflectionV1Alpha,
        Self::Multipart(multipart::Call::Create),
        Self::Multipart(multipart::Call::PartUrls),
        Self::Multipart(multipart::Call::ListParts),
        Self::Multipart(multipart::Call::Complete),
        Self::Multipart(multipart::Call::Abort),
        Self::Multipart(multipart::Call::List),
        Self::ListDrafts,
    ];

    /// The RPC at `path`, or `None` for a method this server does not have.
    #[must_use]
    pub fn of(path: &str) -> Option<Self> {
        use pb::paths::*;
        Some(match path {
            CREATE_DRAFT_BUCKET => Self::CreateDraftBucket,
            GET_UPLOAD_URL => Self::GetUploadUrl,
            GET_DOWNLOAD_URL => Self::GetDownloadUrl,
            CONFIRM_UPLOAD => Self::ConfirmUpload,
            GET_UPLOAD_FORM => Self::GetUploadForm,
            health::CHECK_PATH => Self::HealthCheck,
            reflection_pb::INFO_PATH => Self::Reflection,
            reflection_pb::INFO_PATH_V1ALPHA => Self::ReflectionV1Alpha,
            LIST_DRAFTS => Self::ListDrafts,
            _ => return multipart::Call::of(path).map(Self::Multipart),
        })
    }

    /// Its metrics label.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::CreateDraftBucket => "CreateDraftBucket",
            Self::GetUploadUrl => "GetUploadURL",
            Self::GetDownloadUrl => "GetDownloadURL",
            Self::ConfirmUpload => "ConfirmUpload",
            Self::GetUploadForm => "GetUploadForm",
            Self::HealthCheck => "Health/Check",
            Self::Reflection => "ServerReflectionInfo",
            Self::ReflectionV1Alpha => "ServerReflectionInfo/v1alpha",
            Self::Multipart(call) => call.label(),
            Self::ListDrafts => "ListDrafts",
        }
    }

    /// Served by the same handlers over gRPC-Web and Connect: every RPC but the streaming one.
    #[must_use]
    pub fn is_unary(self) -> bool {
        !matches!(self, Self::Reflection | Self::ReflectionV1Alpha)
    }

    /// Needs no credentials unless configured so: the health check and server reflection.
    #[must_use]
    pub fn is_discovery(self) -> bool {
        matches!(
            self,
            Self::HealthCheck | Self::Reflection | Self::ReflectionV1Alpha
        )
    }
}

/// Whether `path` is a method path of a service this server has (`/<package>.<Service>/…`),
/// known method or not: where Connect's media types mean Connect rather than REST.
#[must_use]
pub fn is_service_path(path: &str) -> bool {
    // Prefix compares, not a split: every REST call with a JSON body asks this (Connect's
    // media type is JSON's too), and the split's search cost ~360 instructions a call.
    path.strip_prefix('/').is_some_and(|rest| {
        SERVICES.iter().any(|service| {
            rest.strip_prefix(service)
                .is_some_and(|method| method.starts_with('/'))
        })
    })
}

/// The protocols that carry gRPC methods, for what each can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carrier {
    /// Native gRPC: unary and streaming calls, over HTTP/2 only.
    Native,
    /// gRPC-Web: unary calls here (its streams are server-streaming only, and ours is bidi).
    Web,
    /// Connect: unary calls (`application/json`, `application/proto`).
    Connect,
    /// Connect's streaming form (`application/connect+proto`): the bidirectional reflection
    /// stream, over HTTP/2 only.
    ConnectStream,
}

/// The services this server has, by full name (`package.Service`): the one list that method
/// paths ([`is_service_path`]) and the unknown-service message are checked against.
pub const SERVICES: &[&str] = &[
    "draft.v1.DraftService",
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

/// Why a call over `carrier` to `rpc` at `path` (`rpc` `None`: no method there) in HTTP
/// `version` is refused from its head alone, before any of its body is read: a native gRPC
/// call over HTTP/1.1 (`NEEDS_HTTP2`), a method or service this server does not have
/// (`UNIMPLEMENTED`, as gRPC answers both), the bidirectional reflection stream over gRPC-Web
/// or Connect (`UNIMPLEMENTED`). A streaming client keeps its body open, so a refusal that
/// waited for the body would wait for the body timeout instead.
#[must_use]
pub fn refused_at_head(
    carrier: Carrier,
    rpc: Option<Rpc>,
    path: &str,
    version: Version,
) -> Option<ApiError> {
    if carrier == Carrier::Native && version != Version::HTTP_2 {
        return Some(ApiError::new(Code::NeedsHttp2, "gRPC needs HTTP/2"));
    }
    let Some(rpc) = rpc else {
        if is_service_path(path) {
            return Some(ApiError::new(
                Code::Unimplemented,
                format!("unknown method {path}"),
            ));
        }
        let service = path
            .trim_start_matches('/')
            .split('/')
            .next()
            .unwrap_or_default();
        let service: String = service.chars().take(128).collect();
        return Some(ApiError::new(
            Code::Unimplemented,
            format!(
                "unknown service {service:?}; this server has {}",
                connect::listed(SERVICES, "and")
            ),
        ));
    };
    match carrier {
        Carrier::Web | Carrier::Connect if !rpc.is_unary() => Some(ApiError::new(
            Code::Unimplemented,
            "server reflection is a bidirectional stream: call it with native gRPC or Connect's \
             streaming form (application/connect+proto) over HTTP/2",
        )),
        Carrier::ConnectStream if rpc.is_unary() => Some(ApiError::new(
            Code::Unimplemented,
            "Connect's streaming form is served for server reflection only: call this unary \
             method with application/proto or application/json",
        )),
        Carrier::ConnectStream if version != Version::HTTP_2 => Some(ApiError::new(
            Code::NeedsHttp2,
            "a Connect bidirectional stream needs HTTP/2",
        )),
        _ => None,
    }
}

/// `rpc` when a call over `carrier` to it at `path` in HTTP `version` is served, else why not:
/// [`refused_at_head`], the one rule, for adapters called with the call's head (the protocol
/// layer has refused such calls already, before their body was read).
///
/// # Errors
/// What [`refused_at_head`] gives; `UNIMPLEMENTED` for no method.
pub fn admitted(
    carrier: Carrier,
    rpc: Option<Rpc>,
    path: &str,
    version: Version,
) -> Result<Rpc, ApiError> {
    if let Some(e) = refused_at_head(carrier, rpc, path, version) {
        return Err(e);
    }
    rpc.ok_or_else(|| ApiError::new(Code::Unimplemented, format!("unknown method {path}")))
}

/// Handles one call to `rpc` (`None`: a method this server does not have), its body (the
/// framed message) read whole; the server turns the result into [`status::ok_with_trailer`] or
/// [`status::error`].
pub async fn handle<B: Storage + Presign>(
    app: &App<B>,
    req: Request<Bytes>,
    rpc: Option<Rpc>,
    limits: &Limits,
    tenant: Option<&Tenant>,
) -> Result<Response<Body>, ApiError> {
    let rpc = admitted(Carrier::Native, rpc, req.uri().path(), req.version())?;
    let deadline = left(&req, timeout)?;
    if deadline == Some(Duration::ZERO) {
        return Err(ApiError::new(
            Code::DeadlineExceeded,
            "grpc-timeout had already passed",
        ));
    }
    if !rpc.is_unary() {
        return Err(ApiError::new(
            Code::Unimplemented,
            "a streaming method needs a streaming call",
        ));
    }
    let encoding = encoding(req.headers());
    let max_message = match rpc {
        Rpc::Multipart(call) => multipart::max_message(call, limits.max_grpc_message),
        _ => limits.max_grpc_message,
    };
    let call = async {
        let message = message(req.body(), max_message, encoding)?;
        dispatch(app, rpc, message, tenant)
            .await
            .map(|answer| status::ok_with_trailer(answer.framed, answer.trailer))
    };
    let result = match deadline {
        Some(d) => crate::http::deadline::within(d, call)
            .await
            .unwrap_or_else(|_| Err(ApiError::new(Code::DeadlineExceeded, "grpc-timeout passed"))),
        None => call.await,
    };
    result
}

/// What is left of a call's deadline: counted from the request's arrival when the body layer
/// read it from the head and marked it (`Meta::deadline`: reading the body took part of it),
/// else `parse` reads it from the head now (`grpc-timeout` or `Connect-Timeout-Ms`), from now.
///
/// # Errors
/// `parse`'s, for a malformed deadline (which the body layer leaves unmarked).
pub(crate) fn left<T>(
    req: &Request<T>,
    parse: fn(&http::HeaderMap) -> Result<Option<Duration>, ApiError>,
) -> Result<Option<Duration>, ApiError> {
    match crate::http::layer::meta(req).and_then(|m| m.deadline) {
        Some(at) => Ok(Some(
            at.saturating_duration_since(tokio::time::Instant::now()),
        )),
        None => parse(req.headers()),
    }
}

/// Handles one streaming call (server reflection): its body is not read whole by the body
/// layer but message by message, each under the stream's own idle limit.
///
/// Its head was checked by the protocol layer ([`refused_at_head`]: HTTP/2 only).
///
/// # Errors
/// `DEADLINE_EXCEEDED` for a `grpc-timeout` already passed, `INVALID_TIMEOUT` for a
/// malformed one.
pub fn stream(
    req: Request<hyper::body::Incoming>,
    limits: &Limits,
) -> Result<Response<Body>, ApiError> {
    let deadline = timeout(req.headers())?;
    if deadline == Some(Duration::ZERO) {
        return Err(ApiError::new(
            Code::DeadlineExceeded,
            "grpc-timeout had already passed",
        ));
    }
    Ok(reflection::serve(
        req,
        limits,
        deadline,
        stream::End::Trailers,
    ))
}

/// `grpc-timeout`: up to 8 digits and a unit (H, M, S, m, u, n), as gRPC's HTTP/2 spec
/// writes it (`TimeoutValue` is "positive integer as ASCII string of at most 8 digits");
/// `None` when absent.
///
/// # Errors
/// `INVALID_TIMEOUT` (gRPC `INTERNAL`, as grpc-go answers it: "malformed grpc-timeout: …")
/// for any other value: a call must not run with no deadline when its client set one.
pub fn timeout(headers: &http::HeaderMap) -> Result<Option<Duration>, ApiError> {
    let Some(value) = headers.get(header::GRPC_TIMEOUT) else {
        return Ok(None);
    };
    let malformed = |why: &str| {
        let shown: String = String::from_utf8_lossy(value.as_bytes())
            .chars()
            .take(16)
            .collect();
        ApiError::new(
            Code::InvalidTimeout,
            format!("malformed grpc-timeout: {why}: {shown:?}"),
        )
    };
    // Bytes past ASCII (obs-text) are a header value HTTP allows, never a timeout.
    let Ok(text) = value.to_str() else {
        return Err(malformed("timeout string is not ASCII"));
    };
    if text.len() < 2 {
        return Err(malformed("timeout string is too short"));
    }
    if text.len() > 9 {
        return Err(malformed("timeout string is too long"));
    }
    let (digits, unit) = text.split_at(text.len() - 1);
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed("timeout value is not a number"));
    }
    let n: u64 = digits
        .parse()
        .map_err(|_| malformed("timeout value is not a number"))?;
    Ok(Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return Err(malformed("timeout unit is not recognized")),
    }))
}

/// The request's `grpc-encoding` when it names a compression (absent or `identity`: `None`).
fn encoding(headers: &http::HeaderMap) -> Option<Bytes> {
    headers
        .get(header::GRPC_ENCODING)
        .map(|v| Bytes::copy_from_slice(v.as_bytes()))
        .filter(|v| !v.eq_ignore_ascii_case(b"identity"))
}

/// A compressed message, per the gRPC compression spec (grpc/doc/compression.md, test cases 4
/// and 6): in an encoding this server does not support (it supports none, and says so in
/// `grpc-accept-encoding: identity` on every answer), `UNIMPLEMENTED`; with the flag set but no
/// `grpc-encoding` other than `identity`, an ill-constructed message: `INTERNAL`.
fn compressed(encoding: Option<&Bytes>) -> ApiError {
    match encoding {
        Some(name) => ApiError::new(
            Code::UnsupportedEncoding,
            format!(
                "grpc-encoding {:?} is not supported; this server accepts identity only",
                String::from_utf8_lossy(name)
            ),
        ),
        None => ApiError::new(
            Code::InvalidCompressedFlag,
            "the message's compressed flag is set but grpc-encoding names no compression",
        ),
    }
}

impl From<FrameError> for ApiError {
    fn from(e: FrameError) -> Self {
        match e {
            FrameError::Compressed => compressed(None),
            FrameError::TooLarge { len, max } => ApiError::new(
                Code::MessageTooLarge,
                format!("message of {len} bytes; the limit is {max}"),
            ),
            FrameError::Truncated => {
                ApiError::new(Code::Truncated, "the message frame is truncated")
            }
            FrameError::Trailing => {
                ApiError::new(Code::Trailing, "a unary call carries exactly one message")
            }
            FrameError::BadFlag(f) => {
                ApiError::new(Code::BadFrame, format!("frame flag {f} is not 0 or 1"))
            }
        }
    }
}

/// The request's one message in `whole` (the body, its size checked as it was read),
/// `encoding` being the request's `grpc-encoding` (see [`compressed`]).
fn message(whole: &[u8], max: usize, encoding: Option<Bytes>) -> Result<&[u8], ApiError> {
    decode_unary(whole, max).map_err(|e| match e {
        FrameError::Compressed => compressed(encoding.as_ref()),
        other => other.into(),
    })
}

pub(crate) fn decode<M: Message + Default>(bytes: &[u8]) -> Result<M, ApiError> {
    M::decode(bytes)
        .map_err(|e| ApiError::new(Code::MalformedMessage, format!("malformed message: {e}")))
}

pub(crate) fn success() -> Option<pb::Result> {
    Some(pb::Result {
        success: true,
        error_message: String::new(),
        error_type: pb::ErrorType::Unspecified as i32,
    })
}

pub(crate) fn constraints(c: Option<pb::UploadConstraints>) -> Result<UploadConstraints, ApiError> {
    let Some(c) = c else {
        return Ok(UploadConstraints::default());
    };
    let text = |s: String| Some(s).filter(|s| !s.is_empty());
    Ok(UploadConstraints::new(
        text(c.content_type),
        c.content_length,
        text(c.checksum_sha256),
        c.metadata.into_iter().collect(),
    )?)
}

/// A unary call's answer, before any protocol wraps it: what native gRPC, gRPC-Web and Connect
/// each encode their own way (with no body to collect again).
#[derive(Debug)]
pub struct Answer {
    /// The answer message with its 5-byte frame header ([`codec::HEADER_LEN`]).
    pub framed: Bytes,
    /// One trailer beside `grpc-status: 0` (name, text to percent-encode), when the call has
    /// one (a NOT_SERVING health check says why).
    pub trailer: Option<(&'static str, String)>,
}

impl Answer {
    fn of(framed: Bytes) -> Self {
        Self {
            framed,
            trailer: None,
        }
    }

    /// The message without its frame header.
    #[must_use]
    pub fn message(&self) -> Bytes {
        self.framed
            .slice(codec::HEADER_LEN.min(self.framed.len())..)
    }
}

/// Calls that reach storage are boxed: their futures are large, and kept inline they would
/// make every call's future (moved a few times per request) as large.
async fn dispatch<B: Storage + Presign>(
    app: &App<B>,
    rpc: Rpc,
    message: &[u8],
    tenant: Option<&Tenant>,
) -> Result<Answer, ApiError> {
    Ok(Answer::of(match rpc {
        Rpc::Multipart(call) => Box::pin(multipart::dispatch(app, call, message, tenant)).await?,
        Rpc::ListDrafts => Box::pin(crate::api::drafts::grpc(app, message, tenant)).await?,
        Rpc::GetUploadUrl => {
            let req: pb::GetUploadUrlRequest = decode(message)?;
            let made = app
                .upload_url(tenant, req.object_name, &constraints(req.constraints)?)
                .await?;
            pb::GetUploadUrlResponse {
                result: success(),
                url: made.url,
                object_name: made.object_name,
                expires_at: made.expires_at,
                required_headers: made.required_headers.into_iter().collect(),
                method: "PUT".into(),
                expires_at_cut_by_credentials: made.cut_by_credentials,
            }
            .framed()
        }
        Rpc::GetUploadForm => {
            let req: pb::GetUploadFormRequest = decode(message)?;
            let request = crate::api::form::FormRequest {
                object_name: req.object_name,
                content_type: Some(req.content_type).filter(|t| !t.is_empty()),
                max_content_length: req.max_content_length,
                min_content_length: req.min_content_length,
                metadata: req.metadata.into_iter().collect(),
            };
            let made = app.upload_form(tenant, &request).await?;
            pb::GetUploadFormResponse {
                result: success(),
                url: made.url,
                object_name: made.object_name,
                expires_at: made.expires_at,
                fields: made
                    .fields
                    .into_iter()
                    .map(|(name, value)| pb::FormField { name, value })
                    .collect(),
                key: made.key,
                expires_at_cut_by_credentials: made.cut_by_credentials,
            }
            .framed()
        }
        Rpc::GetDownloadUrl => {
            let req: pb::GetDownloadUrlRequest = decode(message)?;
            let source = match pb::Source::try_from(req.source) {
                Ok(pb::Source::Draft) => Source::Draft,
                Ok(pb::Source::Main) => Source::Main,
                Err(_) => {
                    return Err(ApiError::new(
                        Code::InvalidSource,
                        format!(
                            "source {} is not SOURCE_DRAFT (0) or SOURCE_MAIN (1)",
                            req.source
                        ),
                    ))
                }
            };
            let made = Box::pin(app.download_url(tenant, &req.object_name, source)).await?;
            pb::GetDownloadUrlResponse {
                result: success(),
                url: made.url,
                object_name: made.object_name,
                expires_at: made.expires_at,
                expires_at_cut_by_credentials: made.cut_by_credentials,
            }
            .framed()
        }
        Rpc::ConfirmUpload => {
            let req: pb::ConfirmUploadRequest = decode(message)?;
            let expect = req.constraints.map(|c| constraints(Some(c))).transpose()?;
            let done =
                Box::pin(app.confirm(tenant, &req.object_name, req.overwrite, expect.as_ref()))
                    .await?;
            pb::ConfirmUploadResponse {
                result: success(),
                object_name: done.object_name,
                final_location: done.final_location,
                size: done.size,
                etag: done.etag,
            }
            .framed()
        }
        Rpc::CreateDraftBucket => {
            let _: pb::CreateDraftBucketRequest = decode(message)?;
            let (versioning, cors) = Box::pin(app.create_buckets_with_cors()).await?;
            pb::CreateDraftBucketResponse {
                result: success(),
                main_bucket: app.buckets.main.to_string(),
                draft_bucket: app.buckets.draft.to_string(),
                draft_bucket_versioning: versioning,
                draft_bucket_cors: cors.status().to_owned(),
                draft_bucket_cors_rules: cors
                    .rules()
                    .iter()
                    .map(|r| pb::CorsRule {
                        allowed_origins: r.allowed_origins.clone(),
                        allowed_methods: r.allowed_methods.clone(),
                        allowed_headers: r.allowed_headers.clone(),
                        expose_headers: r.expose_headers.clone(),
                        max_age_seconds: r.max_age_seconds,
                    })
                    .collect(),
            }
            .framed()
        }
        Rpc::Reflection | Rpc::ReflectionV1Alpha => {
            return Err(ApiError::new(
                Code::Unimplemented,
                "server reflection is a bidirectional stream: call it with native gRPC over HTTP/2",
            ))
        }
        Rpc::HealthCheck => {
            let req: health::HealthCheckRequest = decode(message)?;
            if !req.service.is_empty() && req.service != DRAFT_SERVICE {
                return Err(ApiError::new(
                    Code::UnknownService,
                    format!("unknown service {}", req.service),
                ));
            }
            // NOT_SERVING carries no text in the health protocol: why goes in a trailer.
            let (status, why) = match Box::pin(app.ready()).await {
                Ok(()) => (health::health_check_response::ServingStatus::Serving, None),
                Err(e) => (
                    health::health_check_response::ServingStatus::NotServing,
                    Some(e.message),
                ),
            };
            let framed = health::HealthCheckResponse {
                status: status as i32,
            }
            .framed();
            return Ok(Answer {
                framed,
                trailer: why.map(|why| (status::NOT_READY_TRAILER, why)),
            });
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_parses_to_its_rpc() {
        use pb::paths::*;
        for (path, label) in [
            (CREATE_DRAFT_BUCKET, "CreateDraftBucket"),
            (GET_UPLOAD_URL, "GetUploadURL"),
            (GET_DOWNLOAD_URL, "GetDownloadURL"),
            (CONFIRM_UPLOAD, "ConfirmUpload"),
            (GET_UPLOAD_FORM, "GetUploadForm"),
            (health::CHECK_PATH, "Health/Check"),
            (reflection_pb::INFO_PATH, "ServerReflectionInfo"),
            (
                reflection_pb::INFO_PATH_V1ALPHA,
                "ServerReflectionInfo/v1alpha",
            ),
            (CREATE_MULTIPART_UPLOAD, "CreateMultipartUpload"),
            (GET_PART_UPLOAD_URLS, "GetPartUploadURLs"),
            (LIST_PARTS, "ListParts"),
            (COMPLETE_MULTIPART_UPLOAD, "CompleteMultipartUpload"),
            (ABORT_MULTIPART_UPLOAD, "AbortMultipartUpload"),
            (LIST_MULTIPART_UPLOADS, "ListMultipartUploads"),
            (LIST_DRAFTS, "ListDrafts"),
        ] {
            let rpc = Rpc::of(path);
            assert_eq!(rpc.map(Rpc::label), Some(label), "{path}");
            if rpc.is_some_and(Rpc::is_unary) && path != health::CHECK_PATH {
                assert!(path.starts_with(&format!("/{DRAFT_SERVICE}/")), "{path}");
            }
            assert!(is_service_path(path), "{path}");
            assert!(rpc.is_some_and(|r| Rpc::ALL.contains(&r)), "{path} in ALL");
        }
        for unknown in [
            "",
            "/",
            "/draft.v1.DraftService/Nope",
            "/draft.v1.DraftService/confirmupload",
        ] {
            assert_eq!(Rpc::of(unknown), None, "{unknown}");
        }
        for (path, service) in [
            ("/draft.v1.DraftService/Nope", true),
            ("/grpc.reflection.v1alpha.ServerReflection/X", true),
            ("/draft.v1.DraftService", false),
            ("/draft.v1.DraftServiceX/Nope", false),
            ("/x/draft.v1.DraftService/Nope", false),
            ("draft.v1.DraftService/Nope", false),
        ] {
            assert_eq!(is_service_path(path), service, "{path}");
        }
    }

    #[test]
    fn grpc_timeouts() {
        let mut h = http::HeaderMap::new();
        for (v, want) in [
            ("100m", Some(Duration::from_millis(100))),
            ("2S", Some(Duration::from_secs(2))),
            ("1H", Some(Duration::from_secs(3600))),
            ("5u", Some(Duration::from_micros(5))),
        ] {
            h.insert(header::GRPC_TIMEOUT, http::HeaderValue::from_static(v));
            assert_eq!(timeout(&h).unwrap(), want, "{v}");
        }
        for bad in [
            "",
            "m",
            "123456789S",
            "999999999S",
            "10x",
            "1x",
            "-1S",
            "1.5S",
            "S1",
        ] {
            h.insert(
                header::GRPC_TIMEOUT,
                http::HeaderValue::from_str(bad).unwrap(),
            );
            let e = timeout(&h).unwrap_err();
            assert_eq!(
                e.grpc_code(),
                crate::api::error::GrpcCode::Internal,
                "{bad:?}"
            );
            assert!(e.message.starts_with("malformed grpc-timeout: "), "{bad:?}");
        }
        assert_eq!(timeout(&http::HeaderMap::new()).unwrap(), None);
        // Not ASCII: said so (it was "too short", read as empty), the bytes shown lossily.
        for bytes in [&b"1\xffS"[..], b"\xe9", "5\u{e9}".as_bytes()] {
            h.insert(
                header::GRPC_TIMEOUT,
                http::HeaderValue::from_bytes(bytes).unwrap(),
            );
            let e = timeout(&h).unwrap_err();
            assert_eq!(e.code, Code::InvalidTimeout, "{bytes:?}");
            assert!(
                e.message
                    .starts_with("malformed grpc-timeout: timeout string is not ASCII: "),
                "{bytes:?}: {}",
                e.message
            );
        }
    }
}
