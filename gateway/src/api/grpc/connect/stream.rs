//! Connect's streaming form (connectrpc.com/docs/protocol/#streaming-rpcs), served for the
//! one streaming method, server reflection (a bidirectional stream, so HTTP/2 only): `POST`
//! of `application/connect+proto` on the method path, enveloped messages each way (the same
//! 5-byte envelope as gRPC's; flag `0x01` compressed, refused: this server reads `identity`
//! only), the answer HTTP 200 ending with an end-of-stream envelope (flag `0x02`) whose JSON
//! is `{}` or `{"error": {"code", "message"}}`. `Connect-Timeout-Ms` bounds the stream.
//! Refusals decided from the head (HTTP/1.1, a unary method, auth, load shedding) are answered
//! before this runs, in the same streaming shape ([`error`]: 200 and an end-of-stream
//! envelope), except a media type or method no protocol of the path takes (415, 405).

use crate::api::error::ApiError;
use crate::config::Limits;
use crate::http::response::{full, Body, CONTENT_TYPE};
use http::{HeaderName, HeaderValue, Request, Response};

/// `Connect-Accept-Encoding`: the message encodings a stream's peer accepts.
pub const ACCEPT_ENCODING: HeaderName = HeaderName::from_static("connect-accept-encoding");

/// What a Connect stream's head asks for, checked before any message is read: its deadline.
///
/// # Errors
/// A `Connect-Protocol-Version` other than `1` (as for unary calls); a `Connect-Timeout-Ms`
/// that is not 1 to 10 digits, or 0; a `Connect-Content-Encoding` other than `identity`
/// (`UNSUPPORTED_ENCODING`).
pub fn check(headers: &http::HeaderMap) -> Result<Option<std::time::Duration>, ApiError> {
    super::protocol_version(headers)?;
    let deadline = super::timeout(headers)?;
    if let Some(encoding) = headers.get(HeaderName::from_static("connect-content-encoding")) {
        if !encoding.as_bytes().eq_ignore_ascii_case(b"identity") {
            return Err(ApiError::new(
                crate::api::error::Code::UnsupportedEncoding,
                "Connect-Content-Encoding is not supported; this server accepts identity only",
            ));
        }
    }
    Ok(deadline)
}

/// `e`, ending a Connect stream refused before any message (by its head, admission or load
/// shedding), as Connect's streaming protocol answers every error
/// (connectrpc.com/docs/protocol/#streaming-response): HTTP 200, `application/connect+proto`,
/// `Connect-Accept-Encoding: identity`, and a body of one end-of-stream envelope (flag `0x02`)
/// holding `{"error": {"code", "message"}}`.
#[must_use]
pub fn error(e: &ApiError) -> Response<Body> {
    let mut response = Response::new(full(super::super::stream::end_of_stream(Some(e))));
    head(response.headers_mut());
    response
}

/// The head of every Connect stream's answer, served or refused: `application/connect+proto`
/// and `Connect-Accept-Encoding: identity`.
pub(crate) fn head(headers: &mut http::HeaderMap) {
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static(super::Codec::Stream.content_type()),
    );
    headers.insert(ACCEPT_ENCODING, HeaderValue::from_static("identity"));
}

/// Serves one Connect reflection stream whose head [`check`] accepted, within `deadline`.
#[must_use]
pub fn serve(
    req: Request<hyper::body::Incoming>,
    limits: &Limits,
    deadline: Option<std::time::Duration>,
) -> Response<Body> {
    super::super::reflection::serve(req, limits, deadline, super::super::stream::End::Connect)
}
