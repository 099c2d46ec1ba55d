//! The response body type both protocols use, header names, and the request id.

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::BodyExt;
use hyper::body::{Frame, SizeHint};
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

/// The body of every response: a whole one (at most one data frame, then for gRPC one
/// trailers frame) kept inline, any other boxed. Nearly every answer is whole, and boxing it
/// cost one allocation and a dynamic call per poll on every request.
#[derive(Debug)]
pub struct Body(Kind);

#[derive(Debug)]
enum Kind {
    /// `None` once sent, or when empty.
    Whole(Option<Bytes>),
    /// As `Whole`, its last byte a frame of its own (see [`Body::end_apart`]): the data but
    /// its last byte, then that byte (each `None` once sent).
    LastApart(Option<Bytes>, Option<Bytes>),
    /// Data, then one fixed trailer (gRPC's `grpc-status: 0`): nothing boxed, the trailers'
    /// map made only when they are sent. `None` once sent.
    Trailer(Option<Bytes>, Option<&'static Trailer>),
    /// Data then trailers, boxed: a header map inline would make every response (moved
    /// through each layer on its way out) 96 bytes larger.
    Trailed(Box<Trailed>),
    /// A streamed body.
    Boxed(BoxBody<Bytes, Infallible>),
}

/// One trailer, fixed at build time: `(name, value)`.
pub type Trailer = (http::HeaderName, http::HeaderValue);

/// `data` (`None` once sent, or when empty), then `trailers` (`None` once sent).
#[derive(Debug)]
struct Trailed {
    data: Option<Bytes>,
    trailers: Option<http::HeaderMap>,
}

impl Body {
    /// `body` (a stream, a body holding a place), boxed.
    pub fn new<B>(body: B) -> Self
    where
        B: hyper::body::Body<Data = Bytes, Error = Infallible> + Send + Sync + 'static,
    {
        Self(Kind::Boxed(body.boxed()))
    }

    /// `data` then `trailer` alone in the trailers (gRPC's `grpc-status: 0`); no size is
    /// announced, as for a stream.
    #[must_use]
    pub fn with_trailer(data: Bytes, trailer: &'static Trailer) -> Self {
        Self(Kind::Trailer(
            Some(data).filter(|d| !d.is_empty()),
            Some(trailer),
        ))
    }

    /// `data` then `trailers` (gRPC's `grpc-status` and more); no size is announced, as for a
    /// stream.
    #[must_use]
    pub fn with_trailers(data: Bytes, trailers: http::HeaderMap) -> Self {
        Self(Kind::Trailed(Box::new(Trailed {
            data: Some(data).filter(|d| !d.is_empty()),
            trailers: Some(trailers),
        })))
    }

    /// Over HTTP/2, makes a whole answer's last byte (with `END_STREAM`) go as a frame of its
    /// own: hyper hands a data frame to h2 only once the client's window has room for all the
    /// frames before it, so the stream's task lives until the answer is all but taken and the
    /// stall limit ([`crate::http::watch`]) covers the whole answer, not just its first byte
    /// (an empty end frame would not do: hyper sends those without waiting). Costs one
    /// 10-byte frame per answer of 2 bytes or more. Nothing for any other body (a gRPC reply's
    /// trailers wait for the window the same way).
    pub fn end_apart(&mut self) {
        if let Kind::Whole(Some(data)) = &mut self.0 {
            if data.len() > 1 {
                let last = data.split_off(data.len() - 1);
                let head = std::mem::take(data);
                self.0 = Kind::LastApart(Some(head), Some(last));
            }
        }
    }

    /// The length of the data still to send of a whole answer (data and at most fixed
    /// trailers, all in memory), `None` for a streamed one.
    #[must_use]
    pub fn whole_len(&self) -> Option<usize> {
        match &self.0 {
            Kind::Whole(data) | Kind::Trailer(data, _) => Some(data.as_ref().map_or(0, Bytes::len)),
            Kind::LastApart(head, last) => {
                Some(head.as_ref().map_or(0, Bytes::len) + last.as_ref().map_or(0, Bytes::len))
            }
            Kind::Trailed(t) => Some(t.data.as_ref().map_or(0, Bytes::len)),
            Kind::Boxed(_) => None,
        }
    }
}

impl Body {
    /// The least bytes a whole answer still to send takes on the wire over HTTP/2: its data
    /// and the least its frames take ([`crate::http::queued::least_framing`]); `None` for a
    /// streamed one.
    #[must_use]
    pub fn least_wire_len(&self) -> Option<u64> {
        let frames = |data: &[&Option<Bytes>]| data.iter().filter(|d| d.is_some()).count() as u64;
        let (data_frames, trailers) = match &self.0 {
            Kind::Whole(data) => (frames(&[data]), false),
            Kind::LastApart(head, last) => (frames(&[head, last]), false),
            Kind::Trailer(data, trailer) => (frames(&[data]), trailer.is_some()),
            Kind::Trailed(t) => (frames(&[&t.data]), t.trailers.is_some()),
            Kind::Boxed(_) => return None,
        };
        let data = u64::try_from(self.whole_len()?).unwrap_or(u64::MAX);
        Some(data.saturating_add(crate::http::queued::least_framing(data_frames, trailers)))
    }
}

/// `hint` with `bytes` more (a frame a body holds back from its inner body).
#[must_use]
pub fn hint_with(hint: &SizeHint, bytes: u64) -> SizeHint {
    let mut more = SizeHint::new();
    more.set_lower(hint.lower().saturating_add(bytes));
    if let Some(upper) = hint.upper() {
        more.set_upper(upper.saturating_add(bytes));
    }
    more
}

impl Default for Body {
    fn default() -> Self {
        empty()
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match &mut self.get_mut().0 {
            Kind::Whole(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            Kind::LastApart(head, last) => Poll::Ready(
                head.take()
                    .or_else(|| last.take())
                    .map(|d| Ok(Frame::data(d))),
            ),
            Kind::Trailer(data, trailer) => Poll::Ready(match data.take() {
                Some(data) => Some(Ok(Frame::data(data))),
                None => trailer.take().map(|(name, value)| {
                    let mut trailers = http::HeaderMap::with_capacity(1);
                    trailers.insert(name.clone(), value.clone());
                    Ok(Frame::trailers(trailers))
                }),
            }),
            Kind::Trailed(t) => Poll::Ready(match t.data.take() {
                Some(data) => Some(Ok(Frame::data(data))),
                None => t.trailers.take().map(|t| Ok(Frame::trailers(t))),
            }),
            Kind::Boxed(body) => Pin::new(body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.0 {
            Kind::Whole(data) => data.is_none(),
            Kind::LastApart(head, last) => head.is_none() && last.is_none(),
            Kind::Trailer(data, trailer) => data.is_none() && trailer.is_none(),
            Kind::Trailed(t) => t.data.is_none() && t.trailers.is_none(),
            Kind::Boxed(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.0 {
            // As `Full` says: the exact length, which hyper sends as `content-length`.
            Kind::Whole(_) | Kind::LastApart(..) => {
                SizeHint::with_exact(self.whole_len().unwrap_or(0) as u64)
            }
            Kind::Trailer(..) | Kind::Trailed(_) => SizeHint::default(),
            Kind::Boxed(body) => body.size_hint(),
        }
    }
}

/// The request id header, read and returned.
pub const REQUEST_ID: &str = "x-request-id";
/// [`REQUEST_ID`] as a header name: looked up and inserted on every request, where a `&str`
/// name would be parsed and checked each time.
pub const REQUEST_ID_NAME: http::HeaderName = http::HeaderName::from_static(REQUEST_ID);
/// `content-type`, as a header name: a `&str` name is parsed and checked on every lookup
/// (about 250 instructions each, measured on the upload-url path).
pub const CONTENT_TYPE: http::HeaderName = http::header::CONTENT_TYPE;
/// JSON's media type.
pub const JSON: &str = "application/json";

/// A body of `bytes`.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    let data: Bytes = bytes.into();
    Body(Kind::Whole(Some(data).filter(|d| !d.is_empty())))
}

/// An empty body.
pub fn empty() -> Body {
    full(Bytes::new())
}

/// A request's id: the caller's `x-request-id` when it is sane (1..=128 visible ASCII
/// characters), else a new random one. Checked once; the caller's header value is reused as is,
/// a new one is kept as its 16 hex digits (no allocation until it is written on the response).
#[derive(Clone)]
pub struct RequestId(Repr);

#[derive(Clone)]
enum Repr {
    Given(http::HeaderValue),
    Made([u8; 16]),
}

impl RequestId {
    /// The id of a request carrying `given` as its `x-request-id`: kept when it is 1 to 128
    /// bytes of letters, digits and `-_.:/+=@` (UUIDs, hex, base64, ULIDs...), else replaced by
    /// 16 random hex digits. Quotes, spaces, backslashes and the like are never kept: the id is
    /// written into every log line of its request, where they could fake another field.
    #[must_use]
    pub fn of(given: Option<&http::HeaderValue>) -> Self {
        let allowed = |b: &u8| b.is_ascii_alphanumeric() || b"-_.:/+=@".contains(b);
        let sane = |v: &&http::HeaderValue| {
            (1..=128).contains(&v.len()) && v.as_bytes().iter().all(allowed)
        };
        match given.filter(sane) {
            Some(value) => Self(Repr::Given(value.clone())),
            None => Self(Repr::Made(hex16(fastrand::u64(..)))),
        }
    }

    /// The value for the response's `x-request-id` header. Marked sensitive so HTTP/2 sends it
    /// as a never-indexed literal: every response has a new id, and indexing them would fill
    /// the connection's HPACK table with values never sent again, every later response
    /// comparing its id against all of them (measured: 7% of the server's CPU on h2c).
    #[must_use]
    pub fn header(&self) -> http::HeaderValue {
        let mut value = match &self.0 {
            Repr::Given(value) => value.clone(),
            // 16 hex digits are always a valid header value; the fallback is never taken.
            Repr::Made(digits) => {
                http::HeaderValue::from_bytes(digits).unwrap_or(http::HeaderValue::from_static("0"))
            }
        };
        value.set_sensitive(true);
        value
    }

    /// The id's text (visible ASCII only).
    fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Given(value) => value.as_bytes(),
            Repr::Made(digits) => digits,
        }
    }
}

/// `n` as 16 lowercase hex digits, without going through a `String`.
fn hex16(n: u64) -> [u8; 16] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [b'0'; 16];
    for (i, slot) in out.iter_mut().enumerate() {
        let nibble = (n >> (60 - 4 * i)) & 0xf;
        *slot = DIGITS.get(nibble as usize).copied().unwrap_or(b'0');
    }
    out
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Only visible ASCII gets in, so the text form always exists.
        f.write_str(std::str::from_utf8(self.as_bytes()).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::body::Body as _;

    #[tokio::test]
    async fn a_whole_body_with_its_end_apart_sends_its_last_byte_alone() {
        use http_body_util::BodyExt;
        let mut body = full(Bytes::from_static(b"abcd"));
        body.end_apart();
        assert_eq!(body.size_hint().exact(), Some(4));
        assert_eq!(body.whole_len(), Some(4));
        let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert!(!body.is_end_stream(), "the last byte is still to come");
        let last = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert!(body.is_end_stream());
        assert_eq!((&first[..], &last[..]), (&b"abc"[..], &b"d"[..]));
        // One byte is left whole.
        let mut one = full(Bytes::from_static(b"a"));
        one.end_apart();
        assert_eq!(
            one.frame().await.unwrap().unwrap().into_data().unwrap(),
            "a"
        );
        assert!(one.is_end_stream());
    }

    #[tokio::test]
    async fn whole_bodies_keep_what_full_and_a_stream_said() {
        let body = full("hello");
        assert_eq!(body.size_hint().exact(), Some(5), "sent as content-length");
        assert!(!body.is_end_stream());
        let collected = body.collect().await.unwrap();
        assert!(collected.trailers().is_none());
        assert_eq!(collected.to_bytes(), "hello");

        let none = empty();
        assert!(none.is_end_stream(), "no DATA frame for an empty answer");
        assert_eq!(none.size_hint().exact(), Some(0));
        assert!(Body::default().is_end_stream());

        let mut trailers = http::HeaderMap::new();
        trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
        let grpc = Body::with_trailers(Bytes::from_static(b"\0\0\0\0\0"), trailers);
        assert_eq!(
            grpc.size_hint().exact(),
            None,
            "no content-length, as before"
        );
        assert!(!grpc.is_end_stream());
        let collected = grpc.collect().await.unwrap();
        assert_eq!(collected.trailers().unwrap()["grpc-status"], "0");
        assert_eq!(collected.to_bytes().len(), 5);

        static OK: Trailer = (
            http::HeaderName::from_static("grpc-status"),
            http::HeaderValue::from_static("0"),
        );
        let grpc = Body::with_trailer(Bytes::from_static(b"\0\0\0\0\0"), &OK);
        assert_eq!(grpc.size_hint().exact(), None);
        assert!(!grpc.is_end_stream());
        let collected = grpc.collect().await.unwrap();
        assert_eq!(collected.trailers().unwrap()["grpc-status"], "0");
        assert_eq!(collected.to_bytes().len(), 5);

        let streamed = Body::new(http_body_util::Full::new(Bytes::from_static(b"ab")));
        assert_eq!(streamed.collect().await.unwrap().to_bytes(), "ab");
    }

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
        for forged in ["has space", "x\"status=200", "a\\b", "{x}", "a,b"] {
            let made = id(Some(forged));
            assert_eq!(made.len(), 16, "{forged}");
            assert!(made.bytes().all(|b| b.is_ascii_hexdigit()), "{made}");
        }
        let uuid = "0f8fad5b-d9cb-469f-a165-70867728950e";
        assert_eq!(id(Some(uuid)), uuid);
        assert_eq!(id(Some("AbC+/9=@x.y:z_1")), "AbC+/9=@x.y:z_1");
        assert_eq!(id(Some(&"x".repeat(129))).len(), 16, "too long is replaced");
        assert_eq!(id(Some(&"x".repeat(128))), "x".repeat(128));
        assert_ne!(id(None), id(None));
        assert_eq!(&hex16(0x0123_4567_89ab_cdef), b"0123456789abcdef");
        assert_eq!(&hex16(0xf), b"000000000000000f");
        assert!(
            RequestId::of(None).header().is_sensitive(),
            "kept out of HPACK tables"
        );
    }
}
