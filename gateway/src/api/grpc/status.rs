//! gRPC responses: a framed message with `grpc-status: 0` in trailers, or a trailers-only
//! error (`grpc-status`, a percent-encoded `grpc-message` and `grpc-status-details-bin` in the
//! headers, no body).

use super::header::{GRPC_ACCEPT_ENCODING, GRPC_MESSAGE, GRPC_STATUS};
use crate::api::error::ApiError;
use crate::http::response::{empty, Body, Trailer, CONTENT_TYPE};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response};

/// gRPC's media type, sent on every gRPC response.
pub const GRPC: &str = "application/grpc";

/// The message encodings this server accepts (`grpc-accept-encoding`, sent on every answer):
/// none but identity.
pub const ACCEPT_ENCODING: &str = "identity";

/// The trailer in which a NOT_SERVING health check says why (which bucket is missing).
pub const NOT_READY_TRAILER: &str = "draftstore-not-ready";

/// A successful unary reply: `framed` (one framed message), then `grpc-status: 0` in trailers.
pub fn ok(framed: Bytes) -> Response<Body> {
    ok_with_trailer(framed, None)
}

/// [`ok`] with one more trailer (`name`, a value percent-encoded as `grpc-message` is).
pub fn ok_with_trailer(framed: Bytes, extra: Option<(&'static str, String)>) -> Response<Body> {
    /// The trailers of nearly every answer, kept whole so that none is boxed.
    static OK: Trailer = (GRPC_STATUS, HeaderValue::from_static("0"));
    let body = match extra {
        None => Body::with_trailer(framed, &OK),
        Some((name, value)) => {
            let mut trailers = HeaderMap::new();
            trailers.insert(GRPC_STATUS, HeaderValue::from_static("0"));
            if let Ok(value) = HeaderValue::from_str(&percent_encode(&value)) {
                trailers.insert(name, value);
            }
            Body::with_trailers(framed, trailers)
        }
    };
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(GRPC));
    headers.insert(
        GRPC_ACCEPT_ENCODING,
        HeaderValue::from_static(ACCEPT_ENCODING),
    );
    response
}

/// A trailers-only error: `e`'s status ([`put_error`]) in the headers, no body.
pub fn error(e: &ApiError) -> Response<Body> {
    let mut response = Response::new(empty());
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(GRPC));
    headers.insert(
        GRPC_ACCEPT_ENCODING,
        HeaderValue::from_static(ACCEPT_ENCODING),
    );
    put_error(headers, e);
    response
}

/// Puts `e`'s status in `headers` (a trailers-only answer's headers, or trailers):
/// `grpc-status` (its gRPC code), `grpc-message` (its message percent-encoded, the first 1024
/// bytes) and `grpc-status-details-bin` (the rich error model, see [`super::details`]).
pub fn put_error(headers: &mut HeaderMap, e: &ApiError) {
    headers.insert(GRPC_STATUS, HeaderValue::from(e.grpc_code() as i32));
    if let Ok(value) = HeaderValue::from_str(&percent_encode(&e.message)) {
        headers.insert(GRPC_MESSAGE, value);
    }
    if let Some(value) = super::details::status_details_bin(e) {
        headers.insert(super::details::GRPC_STATUS_DETAILS_BIN, value);
    }
}

/// gRPC's `grpc-message` encoding: printable ASCII except `%` stays, the rest is `%XX`.
pub fn percent_encode(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for b in message.bytes().take(1024) {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_percent_encoded() {
        assert_eq!(
            percent_encode("no draft ሴ 100%"),
            "no draft %E1%88%B4 100%25"
        );
        assert_eq!(percent_encode("a\nb"), "a%0Ab");
    }
}
