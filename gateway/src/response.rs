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

/// A request's id: the caller's `x-request-id` when it is sane (1..=128 visible ASCII
/// characters), else a new random one. Checked once; the header value is reused as is.
#[derive(Clone)]
pub struct RequestId(http::HeaderValue);

impl RequestId {
    #[must_use]
    pub fn of(given: Option<&http::HeaderValue>) -> Self {
        let sane = |v: &&http::HeaderValue| {
            (1..=128).contains(&v.len()) && v.as_bytes().iter().all(u8::is_ascii_graphic)
        };
        match given.filter(sane) {
            Some(value) => Self(value.clone()),
            // 16 hex digits are always a valid header value; the fallback is never taken.
            None => Self(
                http::HeaderValue::try_from(format!("{:016x}", fastrand::u64(..)))
                    .unwrap_or(http::HeaderValue::from_static("0")),
            ),
        }
    }

    /// The value for the response's `x-request-id` header.
    #[must_use]
    pub fn header(&self) -> http::HeaderValue {
        self.0.clone()
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Only visible ASCII gets in, so the text form always exists.
        f.write_str(self.0.to_str().unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_kept_when_sane() {
        let id = |v: Option<&str>| {
            let given = v.map(|v| http::HeaderValue::from_str(v).unwrap());
            RequestId::of(given.as_ref()).to_string()
        };
        assert_eq!(id(Some("abc-123")), "abc-123");
        assert_eq!(
            RequestId::of(Some(&http::HeaderValue::from_static("abc-123"))).header(),
            "abc-123"
        );
        let made = id(Some("has space"));
        assert_eq!(made.len(), 16);
        assert!(made.bytes().all(|b| b.is_ascii_hexdigit()), "{made}");
        assert_eq!(id(Some(&"x".repeat(129))).len(), 16, "too long is replaced");
        assert_eq!(id(Some(&"x".repeat(128))), "x".repeat(128));
        assert_ne!(id(None), id(None));
    }
}
