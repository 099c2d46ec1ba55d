//! What is being signed: method, target (endpoint, bucket, key), extra headers and query, payload.

use crate::encode::encode_into;
use crate::{Addressing, Endpoint, Error};
use std::borrow::Cow;

/// HTTP methods S3 requests use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `GET`.
    Get,
    /// `PUT`.
    Put,
    /// `HEAD`.
    Head,
    /// `DELETE`.
    Delete,
    /// `POST`.
    Post,
}

impl Method {
    /// The method as sent: `"GET"`, `"PUT"`, ….
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Put => "PUT",
            Self::Head => "HEAD",
            Self::Delete => "DELETE",
            Self::Post => "POST",
        }
    }

    /// Parses an uppercase method name.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "GET" => Self::Get,
            "PUT" => Self::Put,
            "HEAD" => Self::Head,
            "DELETE" => Self::Delete,
            "POST" => Self::Post,
            _ => return None,
        })
    }
}

/// The payload line of the canonical request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Payload<'a> {
    /// `UNSIGNED-PAYLOAD`: what presigned S3 URLs use.
    #[default]
    Unsigned,
    /// The lowercase hex SHA-256 of the body (`e3b0c442…` for an empty body).
    Sha256Hex(&'a str),
}

/// The SHA-256 of an empty body, for requests without one.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

impl<'a> Payload<'a> {
    pub(crate) fn as_str(self) -> Result<&'a str, Error> {
        match self {
            Self::Unsigned => Ok("UNSIGNED-PAYLOAD"),
            Self::Sha256Hex(h)
                if h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) =>
            {
                Ok(h)
            }
            Self::Sha256Hex(_) => Err(Error::InvalidPayloadHash),
        }
    }
}

/// One request to sign. `bucket` may be empty for service-level calls; `key` may be empty for
/// bucket-level calls. The key is used as given: encoded once, `/` kept, never normalized.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The HTTP method.
    pub method: Method,
    /// Where the request goes.
    pub endpoint: &'a Endpoint,
    /// Path-style (`/bucket/key`) or virtual-hosted (`bucket.host/key`).
    pub addressing: Addressing,
    /// The bucket; empty for service-level calls.
    pub bucket: &'a str,
    /// The object key, unencoded; empty for bucket-level calls.
    pub key: &'a str,
    /// Extra headers to sign (e.g. `content-type`). The client must send them exactly.
    pub headers: &'a [(&'a str, &'a str)],
    /// Extra query parameters, unencoded (e.g. `("partNumber", "1")`).
    pub query: &'a [(&'a str, &'a str)],
    /// How the body is signed.
    pub payload: Payload<'a>,
}

impl<'a> Request<'a> {
    /// A request with no extra headers or query and an unsigned payload.
    #[must_use]
    pub const fn new(
        method: Method,
        endpoint: &'a Endpoint,
        addressing: Addressing,
        bucket: &'a str,
        key: &'a str,
    ) -> Self {
        Self {
            method,
            endpoint,
            addressing,
            bucket,
            key,
            headers: &[],
            query: &[],
            payload: Payload::Unsigned,
        }
    }
}

/// Checks a bucket for use in a host name or a path segment. Domain rules (length, case) are
/// the caller's; here only what would corrupt the URL is refused.
pub(crate) fn check_bucket(req: &Request<'_>) -> Result<(), Error> {
    let ok_bytes = req
        .bucket
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    if !ok_bytes {
        return Err(Error::InvalidBucket);
    }
    if req.addressing == Addressing::VirtualHost && (req.bucket.is_empty() || req.endpoint.is_ip())
    {
        return Err(Error::VirtualHostUnsupported);
    }
    Ok(())
}

/// The `host` the request goes to (and signs): the endpoint's, with the bucket in front for
/// virtual-hosted addressing.
pub(crate) fn host<'a>(req: &Request<'a>) -> Cow<'a, str> {
    match req.addressing {
        Addressing::Path => Cow::Borrowed(req.endpoint.authority()),
        Addressing::VirtualHost => {
            Cow::Owned(format!("{}.{}", req.bucket, req.endpoint.authority()))
        }
    }
}

/// Writes `scheme://host`.
pub(crate) fn write_origin(out: &mut String, req: &Request<'_>, host: &str) {
    out.push_str(req.endpoint.scheme().as_str());
    out.push_str("://");
    out.push_str(host);
}

/// Writes the canonical (and sent) path: `/bucket/key` or `/key`, the key encoded once.
pub(crate) fn write_path(out: &mut String, req: &Request<'_>) {
    out.push('/');
    if req.addressing == Addressing::Path && !req.bucket.is_empty() {
        out.push_str(req.bucket);
        if req.key.is_empty() {
            return;
        }
        out.push('/');
    }
    encode_into(out, req.key, true);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path_of(addressing: Addressing, bucket: &str, key: &str) -> (String, String) {
        let ep = Endpoint::parse("https://s3.example.com").unwrap();
        let req = Request::new(Method::Get, &ep, addressing, bucket, key);
        let host = host(&req).into_owned();
        let mut path = String::new();
        write_path(&mut path, &req);
        (host, path)
    }

    #[test]
    fn path_style_and_virtual_host_targets() {
        assert_eq!(
            path_of(Addressing::Path, "b", "a/b c.jpg"),
            ("s3.example.com".into(), "/b/a/b%20c.jpg".into())
        );
        assert_eq!(
            path_of(Addressing::VirtualHost, "b", "a/b c.jpg"),
            ("b.s3.example.com".into(), "/a/b%20c.jpg".into())
        );
        assert_eq!(
            path_of(Addressing::Path, "b", ""),
            ("s3.example.com".into(), "/b".into())
        );
        assert_eq!(
            path_of(Addressing::Path, "", ""),
            ("s3.example.com".into(), "/".into())
        );
    }

    #[test]
    fn keys_are_not_normalized() {
        assert_eq!(
            path_of(Addressing::Path, "b", "/a//./../x").1,
            "/b//a//./../x"
        );
        assert_eq!(path_of(Addressing::VirtualHost, "b", "/x").1, "//x");
    }

    #[test]
    fn payload_hash_must_be_lowercase_hex() {
        assert_eq!(Payload::Unsigned.as_str(), Ok("UNSIGNED-PAYLOAD"));
        assert_eq!(Payload::Sha256Hex(EMPTY_SHA256).as_str(), Ok(EMPTY_SHA256));
        assert!(Payload::Sha256Hex("E3B0").as_str().is_err());
        assert!(Payload::Sha256Hex(&EMPTY_SHA256.to_uppercase())
            .as_str()
            .is_err());
    }

    #[test]
    fn buckets_that_would_corrupt_the_url_are_rejected() {
        let ep = Endpoint::parse("http://127.0.0.1:9000").unwrap();
        for bad in ["a/b", "a b", "a?b", "a%2f"] {
            let req = Request::new(Method::Get, &ep, Addressing::Path, bad, "k");
            assert_eq!(check_bucket(&req), Err(Error::InvalidBucket));
        }
        let req = Request::new(Method::Get, &ep, Addressing::VirtualHost, "b", "k");
        assert_eq!(check_bucket(&req), Err(Error::VirtualHostUnsupported));
    }
}
