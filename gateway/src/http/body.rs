//! An API request body, read whole before the request takes an admission place (see
//! [`crate::http::layer::body`]): what it may hold ([`Limit`]) and how its frames are joined
//! ([`Collector`]). The handlers get the [`Collected`] bytes.

use crate::api::error::{ApiError, Code};
use crate::api::grpc::codec::{check_header, FrameError, HEADER_LEN};
use bytes::{Bytes, BytesMut};

/// The whole body of an API request, read by the body layer (a request extension the router
/// hands to the REST or gRPC adapter as the request's body).
#[derive(Debug, Clone, Default)]
pub struct Collected(pub Bytes);

/// What an API body may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// REST JSON: at most this many bytes (413 `BODY_TOO_LARGE` past it, at once when
    /// `content-length` says so).
    Json(usize),
    /// One gRPC message of at most this many bytes, with its 5-byte frame header (the header
    /// is checked as soon as it is there: `RESOURCE_EXHAUSTED` before the message is buffered).
    Grpc(usize),
}

impl Limit {
    /// Bytes the body may hold in all.
    #[must_use]
    pub fn max_bytes(self) -> usize {
        match self {
            Self::Json(max) => max,
            Self::Grpc(max) => HEADER_LEN.saturating_add(max),
        }
    }

    /// Refuses a body by its declared `content-length` before a byte is read.
    ///
    /// # Errors
    /// `BODY_TOO_LARGE` (REST, Connect) or `MESSAGE_TOO_LARGE` (gRPC, gRPC-Web) when it
    /// declares more than the limit.
    pub fn check_declared(self, headers: &http::HeaderMap) -> Result<(), ApiError> {
        let declared = headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        match self {
            Self::Json(max) if declared.is_some_and(|n| n > max as u64) => Err(self.overflow()),
            // One message and its header: more is a message past the limit (or a second one).
            Self::Grpc(max) => match declared.filter(|&n| n > self.max_bytes() as u64) {
                Some(n) => Err(ApiError::new(
                    Code::MessageTooLarge,
                    format!(
                        "the body's declared length, {n} bytes, exceeds the limit of {} bytes: \
                         one message of at most {max} bytes and its {HEADER_LEN}-byte frame \
                         header",
                        self.max_bytes()
                    ),
                )),
                None => Ok(()),
            },
            _ => Ok(()),
        }
    }

    /// Refuses what was received so far, early.
    ///
    /// # Errors
    /// gRPC: a frame header announcing more than the limit (`MESSAGE_TOO_LARGE`). Other frame
    /// faults are the adapter's to name, once the body is whole.
    pub fn check(self, so_far: &[u8]) -> Result<(), ApiError> {
        if let (Self::Grpc(max), Some(header)) = (self, so_far.get(..HEADER_LEN)) {
            if let Err(e @ FrameError::TooLarge { .. }) = check_header(header, max) {
                return Err(e.into());
            }
        }
        if so_far.len() > self.max_bytes() {
            return Err(self.overflow());
        }
        Ok(())
    }

    /// The error for a body past [`Self::max_bytes`].
    fn overflow(self) -> ApiError {
        match self {
            Self::Json(max) => ApiError::new(
                Code::BodyTooLarge,
                format!("request bodies are at most {max} bytes"),
            ),
            // The header announced an acceptable length: what follows it is a second message.
            Self::Grpc(_) => FrameError::Trailing.into(),
        }
    }
}

/// `BODY_TIMEOUT` (408, gRPC `DEADLINE_EXCEEDED`): the body did not arrive within `limit`.
#[must_use]
pub fn timed_out(limit: std::time::Duration) -> ApiError {
    ApiError::new(
        Code::BodyTimeout,
        format!(
            "the request body did not arrive within {} ms",
            limit.as_millis()
        ),
    )
}

/// `BODY_UNREADABLE`: the connection failed while the body was read.
#[must_use]
pub fn unreadable() -> ApiError {
    ApiError::new(Code::BodyUnreadable, "the request body could not be read")
}

/// Joins a body's data frames. A body that came in one frame (the usual small request) is
/// kept as it is, without copying.
#[derive(Debug, Default)]
pub struct Collector {
    first: Option<Bytes>,
    joined: Option<BytesMut>,
}

impl Collector {
    /// Adds `data`; returns everything received so far.
    pub fn push(&mut self, data: Bytes) -> &[u8] {
        if let Some(earlier) = self.first.take() {
            let mut buf = BytesMut::with_capacity(earlier.len() + data.len());
            buf.extend_from_slice(&earlier);
            buf.extend_from_slice(&data);
            return self.joined.insert(buf);
        }
        match &mut self.joined {
            Some(buf) => {
                buf.extend_from_slice(&data);
                buf
            }
            None => self.first.insert(data),
        }
    }

    /// The whole body.
    #[must_use]
    pub fn finish(self) -> Bytes {
        self.joined
            .map(BytesMut::freeze)
            .or(self.first)
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_joined_and_one_frame_is_not_copied() {
        let one = Bytes::from_static(b"abc");
        let mut c = Collector::default();
        assert_eq!(c.push(one.clone()), b"abc");
        assert_eq!(c.finish().as_ptr(), one.as_ptr());
        let mut c = Collector::default();
        c.push(Bytes::from_static(b"ab"));
        c.push(Bytes::from_static(b"c"));
        assert_eq!(c.push(Bytes::from_static(b"d")), b"abcd");
        assert_eq!(c.finish(), "abcd");
    }

    #[test]
    fn limits_refuse_early() {
        let json = Limit::Json(4);
        assert!(json.check(b"1234").is_ok());
        assert_eq!(json.check(b"12345").unwrap_err().http_status(), 413);
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::CONTENT_LENGTH, "5".parse().unwrap());
        assert_eq!(
            json.check_declared(&headers).unwrap_err().http_status(),
            413
        );
        let grpc = Limit::Grpc(4);
        // A header announcing 5 bytes is refused before the message comes.
        assert_eq!(
            grpc.check(&[0, 0, 0, 0, 5]).unwrap_err().code,
            Code::MessageTooLarge
        );
        assert!(grpc.check(&[0, 0, 0, 0, 4, 1, 2, 3, 4]).is_ok());
        assert_eq!(
            grpc.check(&[0, 0, 0, 0, 4, 1, 2, 3, 4, 0])
                .unwrap_err()
                .code,
            Code::Trailing
        );
    }

    #[test]
    fn a_declared_grpc_body_past_the_limit_is_refused_saying_so() {
        let grpc = Limit::Grpc(65_536);
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::CONTENT_LENGTH, "65541".parse().unwrap());
        assert!(grpc.check_declared(&headers).is_ok(), "one whole message");
        // One message of 65 537 bytes and its header.
        headers.insert(http::header::CONTENT_LENGTH, "65542".parse().unwrap());
        let e = grpc.check_declared(&headers).unwrap_err();
        assert_eq!(e.code, Code::MessageTooLarge);
        assert_eq!(
            e.message,
            "the body's declared length, 65542 bytes, exceeds the limit of 65541 bytes: one \
             message of at most 65536 bytes and its 5-byte frame header"
        );
    }
}
