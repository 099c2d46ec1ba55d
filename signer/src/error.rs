//! The signer's one error type. It never carries a secret, a signature or a header value.

use std::fmt;

/// Why a request could not be signed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The endpoint is not `http(s)://host[:port][/]`; the text says which part is wrong.
    InvalidEndpoint(&'static str),
    /// The bucket holds a character that cannot stand in a host name or a path segment.
    InvalidBucket,
    /// Virtual-hosted addressing needs a bucket and a DNS host, not an IP address.
    VirtualHostUnsupported,
    /// Presigned URLs live 1..=604800 seconds; this is what was asked.
    InvalidExpiry(u64),
    /// A timestamp outside 1970..=9999 or not in `YYYYMMDDTHHMMSSZ` form.
    InvalidTimestamp,
    /// Access key empty or holding `/`, whitespace or control characters; or an empty secret.
    InvalidCredentials(&'static str),
    /// Region or service empty or holding `/`, whitespace or control characters.
    InvalidScope(&'static str),
    /// A header name that is not an HTTP token; the name is given.
    InvalidHeaderName(String),
    /// A header value with a control character (other than folding white space); the name is given.
    InvalidHeaderValue(String),
    /// A header the signer sets itself (`host`, `authorization`, `x-amz-date`, ...).
    ReservedHeader(String),
    /// A query parameter the signer sets itself (`X-Amz-Signature`, ...).
    ReservedQuery(String),
    /// A multipart part number outside S3's 1..=10000; the number is given.
    InvalidPartNumber(u32),
    /// A payload hash that is neither `UNSIGNED-PAYLOAD` nor 64 lowercase hex digits.
    InvalidPayloadHash,
    /// A POST policy's `content-length-range` with `min > max` (bytes).
    InvalidLengthRange {
        /// The smallest size allowed, in bytes.
        min: u64,
        /// The largest size allowed, in bytes (here less than `min`).
        max: u64,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidEndpoint(why) => write!(f, "invalid endpoint: {why}"),
            Self::InvalidBucket => f.write_str("invalid bucket name for a URL"),
            Self::VirtualHostUnsupported => {
                f.write_str("virtual-hosted addressing needs a bucket and a DNS endpoint host")
            }
            Self::InvalidExpiry(secs) => {
                write!(f, "expiry must be 1..=604800 seconds, got {secs}")
            }
            Self::InvalidTimestamp => {
                f.write_str("timestamp must be YYYYMMDDTHHMMSSZ within years 1970..=9999")
            }
            Self::InvalidCredentials(why) => write!(f, "invalid credentials: {why}"),
            Self::InvalidScope(why) => write!(f, "invalid credential scope: {why}"),
            Self::InvalidHeaderName(name) => write!(f, "invalid header name {name:?}"),
            Self::InvalidHeaderValue(name) => write!(f, "invalid value for header {name:?}"),
            Self::ReservedHeader(name) => write!(f, "header {name:?} is set by the signer"),
            Self::ReservedQuery(name) => {
                write!(f, "query parameter {name:?} is set by the signer")
            }
            Self::InvalidPartNumber(n) => write!(f, "part number must be 1..=10000, got {n}"),
            Self::InvalidPayloadHash => {
                f.write_str("payload hash must be UNSIGNED-PAYLOAD or 64 lowercase hex digits")
            }
            Self::InvalidLengthRange { min, max } => {
                write!(
                    f,
                    "content-length-range minimum {min} exceeds maximum {max}"
                )
            }
        }
    }
}

impl std::error::Error for Error {}
