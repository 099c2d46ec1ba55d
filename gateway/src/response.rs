//! The response body type both protocols use, header names, and the request id.

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use std::convert::Infallible;

pub type Body = BoxBody<Bytes, Infallible>;

pub const REQUEST_ID: &str = "x-request-id";
pub const CONTENT_TYPE: &str = "content-type";
pub const JSON: &str = "application/json";

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}

pub fn empty() -> Body {
    full(Bytes::new())
}

/// The caller's `x-request-id` when it is sane (1..=128 visible ASCII characters), else a new
/// random one.
pub fn request_id(given: Option<&http::HeaderValue>) -> String {
    given
        .and_then(|v| v.to_str().ok())
        .filter(|v| (1..=128).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(|| format!("{:016x}", fastrand::u64(..)), str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_kept_when_sane() {
        assert_eq!(
            request_id(Some(&http::HeaderValue::from_static("abc-123"))),
            "abc-123"
        );
        let made = request_id(Some(&http::HeaderValue::from_static("has space")));
        assert_eq!(made.len(), 16);
        assert_ne!(request_id(None), request_id(None));
    }
}
