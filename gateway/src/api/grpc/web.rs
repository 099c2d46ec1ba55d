//! gRPC-Web (grpc/grpc `doc/PROTOCOL-WEB.md`) over HTTP/1.1 and h2c, served by the unary
//! handlers of [`super::dispatch`]: the request is one length-prefixed message as in gRPC
//! (base64 for the `-text` types, possibly in several padded chunks); the answer is the
//! message frame, then the status as a trailers frame in the body (flag `0x80`, then
//! `name:value\r\n` lines), in the request's content type (base64 again for `-text`).
//! Errors are a trailers frame alone, with HTTP 200. Server reflection, a stream, is
//! `UNIMPLEMENTED` here.

use super::codec::{decode_unary, FrameError, HEADER_LEN};
use super::header::{GRPC_ACCEPT_ENCODING, GRPC_STATUS};
use super::status::{percent_encode, ACCEPT_ENCODING};
use super::Rpc;
use crate::api::app::App;
use crate::api::error::{ApiError, Code};
use crate::auth::Tenant;
use crate::config::Limits;
use crate::http::response::{full, Body, CONTENT_TYPE};
use crate::store::Presign;
use base64::Engine;
use bytes::{BufMut, Bytes, BytesMut};
use draftstore_core::Storage;
use http::{HeaderMap, HeaderValue, Request, Response};

/// The flag of the frame that carries the trailers.
pub const TRAILERS_FLAG: u8 = 0x80;

/// The four gRPC-Web media types; the answer is sent in the request's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flavor {
    /// `application/grpc-web`.
    Web,
    /// `application/grpc-web+proto`.
    WebProto,
    /// `application/grpc-web-text`: the body is base64.
    Text,
    /// `application/grpc-web-text+proto`.
    TextProto,
}

impl Flavor {
    /// Every flavor.
    pub const ALL: [Self; 4] = [Self::Web, Self::WebProto, Self::Text, Self::TextProto];

    /// The flavor of a media type's part after `application/grpc` (`-web`, `-web-text+proto`…,
    /// compared without case), or `None`.
    #[must_use]
    pub fn of(rest: &[u8]) -> Option<Self> {
        Self::ALL.into_iter().find(|f| {
            f.content_type()
                .as_bytes()
                .get("application/grpc".len()..)
                .is_some_and(|suffix| suffix.eq_ignore_ascii_case(rest))
        })
    }

    /// Its media type.
    #[must_use]
    pub const fn content_type(self) -> &'static str {
        match self {
            Self::Web => "application/grpc-web",
            Self::WebProto => "application/grpc-web+proto",
            Self::Text => "application/grpc-web-text",
            Self::TextProto => "application/grpc-web-text+proto",
        }
    }

    /// Whether bodies are base64 (`-text`).
    #[must_use]
    pub const fn is_text(self) -> bool {
        matches!(self, Self::Text | Self::TextProto)
    }
}

/// Handles one gRPC-Web call to `rpc` (`None`: unknown method). Errors come back as `Err`
/// and are encoded by [`error`].
pub async fn handle<B: Storage + Presign>(
    app: &App<B>,
    req: Request<Bytes>,
    rpc: Option<Rpc>,
    flavor: Flavor,
    limits: &Limits,
    tenant: Option<&Tenant>,
) -> Result<Response<Body>, ApiError> {
    let rpc = super::admitted(super::Carrier::Web, rpc, req.uri().path(), req.version())?;
    let deadline = super::left(&req, super::timeout)?;
    if deadline == Some(std::time::Duration::ZERO) {
        return Err(ApiError::new(
            Code::DeadlineExceeded,
            "grpc-timeout had already passed",
        ));
    }
    let encoding = super::encoding(req.headers());
    let max = limits.max_grpc_message;
    let call = async {
        let body = req.into_body();
        let message = if flavor.is_text() {
            read_text(&body, max, encoding)?
        } else {
            body.slice_ref(super::message(&body, max, encoding)?)
        };
        super::dispatch(app, rpc, &message, tenant).await
    };
    let answer = match deadline {
        Some(d) => crate::http::deadline::within(d, call)
            .await
            .unwrap_or_else(|_| Err(ApiError::new(Code::DeadlineExceeded, "grpc-timeout passed"))),
        None => call.await,
    }?;
    let mut trailers = HeaderMap::with_capacity(2);
    trailers.insert(GRPC_STATUS, HeaderValue::from_static("0"));
    if let Some((name, text)) = answer.trailer {
        if let Ok(value) = HeaderValue::from_str(&percent_encode(&text)) {
            trailers.insert(name, value);
        }
    }
    Ok(respond(flavor, &answer.framed, &trailers))
}

/// A `-text` body (base64 of one frame; its size was bounded by the body layer), decoded,
/// then the one frame of at most `max` message bytes.
fn read_text(text: &[u8], max: usize, encoding: Option<Bytes>) -> Result<Bytes, ApiError> {
    let framed = Bytes::from(decode_base64(text)?);
    let message_len = decode_unary(&framed, max)
        .map_err(|e| match e {
            FrameError::Compressed => super::compressed(encoding.as_ref()),
            other => other.into(),
        })?
        .len();
    Ok(framed.slice(HEADER_LEN..HEADER_LEN + message_len))
}

/// Base64 as gRPC-Web-text clients send it: one or more chunks, each padded.
///
/// # Errors
/// `BAD_BASE64` for anything else.
pub fn decode_base64(text: &[u8]) -> Result<Vec<u8>, ApiError> {
    let engine = &base64::engine::general_purpose::STANDARD;
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let mut rest = text;
    while !rest.is_empty() {
        // A chunk ends after its padding.
        let end = match rest.iter().position(|&b| b == b'=') {
            Some(first_pad) => rest
                .iter()
                .skip(first_pad)
                .position(|&b| b != b'=')
                .map_or(rest.len(), |n| first_pad + n),
            None => rest.len(),
        };
        let (chunk, tail) = rest.split_at(end);
        engine.decode_vec(chunk, &mut out).map_err(|e| {
            ApiError::new(
                Code::BadBase64,
                format!("the grpc-web-text body is not base64: {e}"),
            )
        })?;
        rest = tail;
    }
    Ok(out)
}

/// The trailers frame for `trailers`: flag `0x80`, length, `name:value\r\n` lines.
#[must_use]
pub fn trailers_frame(trailers: &HeaderMap) -> Bytes {
    let mut lines = BytesMut::new();
    for (name, value) in trailers {
        lines.put_slice(name.as_str().as_bytes());
        lines.put_u8(b':');
        lines.put_slice(value.as_bytes());
        lines.put_slice(b"\r\n");
    }
    let mut frame = BytesMut::with_capacity(HEADER_LEN + lines.len());
    frame.put_u8(TRAILERS_FLAG);
    frame.put_u32(u32::try_from(lines.len()).unwrap_or(u32::MAX));
    frame.put_slice(&lines);
    frame.freeze()
}

/// The answer: `framed` (message frames, maybe none), then `trailers` as a frame.
fn respond(flavor: Flavor, framed: &[u8], trailers: &HeaderMap) -> Response<Body> {
    let frame = trailers_frame(trailers);
    let mut body = BytesMut::with_capacity(framed.len() + frame.len());
    body.put_slice(framed);
    body.put_slice(&frame);
    let body = if flavor.is_text() {
        Bytes::from(base64::engine::general_purpose::STANDARD.encode(&body))
    } else {
        body.freeze()
    };
    let mut response = Response::new(full(body));
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static(flavor.content_type()),
    );
    headers.insert(
        GRPC_ACCEPT_ENCODING,
        HeaderValue::from_static(ACCEPT_ENCODING),
    );
    response
}

/// `e` as a gRPC-Web answer: HTTP 200, a trailers frame with `e`'s status
/// ([`super::status::put_error`]).
#[must_use]
pub fn error(flavor: Flavor, e: &ApiError) -> Response<Body> {
    let mut trailers = HeaderMap::new();
    super::status::put_error(&mut trailers, e);
    respond(flavor, &[], &trailers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flavors_are_named_by_exact_suffixes() {
        assert_eq!(Flavor::of(b"-web"), Some(Flavor::Web));
        assert_eq!(Flavor::of(b"-WEB+proto"), Some(Flavor::WebProto));
        assert_eq!(Flavor::of(b"-web-text"), Some(Flavor::Text));
        assert_eq!(Flavor::of(b"-web-text+proto"), Some(Flavor::TextProto));
        for other in [&b"-web+json"[..], b"-webx", b"", b"-web-text+json"] {
            assert_eq!(Flavor::of(other), None, "{other:?}");
        }
    }

    #[test]
    fn base64_chunks_each_padded_are_joined() {
        assert_eq!(decode_base64(b"AAEC").unwrap(), [0, 1, 2]);
        assert_eq!(decode_base64(b"AA==AAE=AAEC").unwrap(), [0, 0, 1, 0, 1, 2]);
        assert_eq!(decode_base64(b"").unwrap(), Vec::<u8>::new());
        for bad in [&b"A"[..], b"!!!!", b"AA=A", b"AAE"] {
            assert_eq!(
                decode_base64(bad).unwrap_err().code,
                Code::BadBase64,
                "{bad:?}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn any_text_decodes_or_fails_cleanly(text in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
            let _ = decode_base64(&text);
        }

        #[test]
        fn chunks_encoded_apart_decode_together(
            chunks in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..16), 0..4)
        ) {
            let engine = &base64::engine::general_purpose::STANDARD;
            let text: String = chunks.iter().map(|c| engine.encode(c)).collect();
            proptest::prop_assert_eq!(decode_base64(text.as_bytes()).unwrap(), chunks.concat());
        }
    }

    #[test]
    fn trailers_are_one_frame_of_lines() {
        let mut trailers = HeaderMap::new();
        trailers.insert(GRPC_STATUS, HeaderValue::from_static("0"));
        let frame = trailers_frame(&trailers);
        assert_eq!(&frame[..], b"\x80\x00\x00\x00\x0fgrpc-status:0\r\n");
    }
}
