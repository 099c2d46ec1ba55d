//! Streaming calls: the request's messages read one at a time as they arrive (each length
//! checked before anything is allocated for it, each awaited at most the stream idle limit),
//! and a response body fed by a task through a bounded channel, ended by status trailers.

use super::codec::{check_header, FrameError, HEADER_LEN};
use super::header::GRPC_STATUS;
use crate::api::error::{ApiError, Code};
use crate::http::layer::observe::StreamEnd;
use crate::http::watch::Watch;
use bytes::{Buf, Bytes, BytesMut};
use http::{HeaderMap, HeaderValue};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, SizeHint};
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::mpsc;

/// The messages of a streaming request body, in the framing of gRPC or Connect (the same
/// envelope; a refusal is worded in the protocol's own terms).
pub struct Messages<B> {
    body: B,
    end: End,
    buf: BytesMut,
    max: usize,
    idle: Duration,
    watch: Option<Arc<Watch>>,
}

impl<B> Messages<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    /// Messages of at most `max` bytes from `body`, each awaited at most `idle`, from a client
    /// of the protocol whose streams end as `end` says.
    pub fn new(body: B, end: End, max: usize, idle: Duration) -> Self {
        Self {
            body,
            end,
            buf: BytesMut::new(),
            max,
            idle,
            watch: None,
        }
    }

    /// The same, reporting each message read to `watch` (the HTTP/2 stream's progress).
    #[must_use]
    pub fn watched(mut self, watch: Option<Arc<Watch>>) -> Self {
        self.watch = watch;
        self
    }

    /// The request body, for its rest to be read and thrown away after a refusal.
    pub fn into_body(self) -> B {
        self.body
    }

    /// The next message, `None` when the client has half-closed the stream.
    ///
    /// # Errors
    /// `STREAM_IDLE` after `idle` without a message; framing errors as for unary calls
    /// (a compressed flag, told as the protocol names its encoding header, a length over the
    /// limit, a body ending inside a frame);
    /// `BODY_UNREADABLE` when the connection fails.
    pub async fn next(&mut self) -> Result<Option<Bytes>, ApiError> {
        let idle = self.idle;
        crate::http::deadline::within(idle, self.read())
            .await
            .map_err(|_| {
                ApiError::new(
                    Code::StreamIdle,
                    format!("no message on the stream for {} ms", idle.as_millis()),
                )
            })?
    }

    async fn read(&mut self) -> Result<Option<Bytes>, ApiError> {
        loop {
            if let Some(header) = self.buf.get(..HEADER_LEN) {
                let len = check_header(header, self.max).map_err(|e| self.end.refusal(e))?;
                if self.buf.len() >= HEADER_LEN + len {
                    let mut message = self.buf.split_to(HEADER_LEN + len);
                    message.advance(HEADER_LEN);
                    if let Some(watch) = &self.watch {
                        watch.progress();
                    }
                    return Ok(Some(message.freeze()));
                }
                self.buf.reserve(HEADER_LEN + len - self.buf.len());
            }
            match self.body.frame().await {
                None if self.buf.is_empty() => return Ok(None),
                None => return Err(FrameError::Truncated.into()),
                Some(Err(_)) => {
                    return Err(ApiError::new(
                        Code::BodyUnreadable,
                        "the request stream could not be read",
                    ))
                }
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.buf.extend_from_slice(&data);
                    }
                }
            }
        }
    }
}

/// How a streaming response ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// gRPC: HTTP/2 trailers `grpc-status` and `grpc-message`.
    Trailers,
    /// Connect (connectrpc.com/docs/protocol/#streaming-rpcs): an end-of-stream envelope,
    /// flag `0x02`, holding the JSON `{}` on success or `{"error": {"code", "message"}}`.
    Connect,
}

impl End {
    /// A frame refused, in this protocol's words: a compressed flag names the header that
    /// would have named its encoding (Connect's `Connect-Content-Encoding`, gRPC's
    /// `grpc-encoding`); the other refusals are the same for both.
    fn refusal(self, e: FrameError) -> ApiError {
        match (self, e) {
            (End::Connect, FrameError::Compressed) => ApiError::new(
                Code::InvalidCompressedFlag,
                "the message's compressed flag is set but Connect-Content-Encoding names no \
                 compression",
            ),
            (_, e) => e.into(),
        }
    }
}

/// The sending half of a streaming response: framed messages, then the status. The stream's
/// outcome goes to its [`StreamEnd`] (its log line and metrics) when it ends: the status sent,
/// `STREAM_CANCELLED` when the client went away first, `STREAM_IDLE` when the connection
/// dropped the stream for making no progress.
pub struct Sender {
    frames: mpsc::Sender<Frame<Bytes>>,
    end: End,
    report: StreamEnd,
    watch: Option<Arc<Watch>>,
    /// A message could not be handed to the body: the client has gone.
    gone: AtomicBool,
}

impl Sender {
    /// Sends one framed message; `false` when the client has gone.
    pub async fn send(&self, framed: Bytes) -> bool {
        let sent = self.frames.send(Frame::data(framed)).await.is_ok();
        if !sent {
            self.gone.store(true, Ordering::Relaxed);
        }
        sent
    }

    /// The report of this stream's end, for its response's extensions.
    #[must_use]
    pub fn report(&self) -> StreamEnd {
        self.report.clone()
    }

    /// The same, told the HTTP/2 stream's watch (to tell a stream dropped for making no
    /// progress from one the client reset).
    #[must_use]
    pub fn watched(mut self, watch: Option<Arc<Watch>>) -> Self {
        self.watch = watch;
        self
    }

    /// Ends the stream with `grpc-status: 0`, or the error's code and message (for Connect,
    /// the same in its end-of-stream envelope), and reports how it ended.
    pub async fn finish(self, outcome: Result<(), ApiError>) {
        let last = match self.end {
            End::Connect => Frame::data(end_of_stream(outcome.as_ref().err())),
            End::Trailers => Frame::trailers(trailers(&outcome)),
        };
        let delivered = self.frames.send(last).await.is_ok();
        // A request side that fails is the client resetting or closing the stream.
        let reset = matches!(&outcome, Err(e) if e.code == Code::BodyUnreadable);
        let outcome = if delivered && !reset && !self.gone.load(Ordering::Relaxed) {
            outcome
        } else {
            Err(self.went())
        };
        self.report.end(outcome);
    }

    /// Why the body went before the stream's end: dropped by the connection for making no
    /// progress, or the client reset or closed it.
    fn went(&self) -> ApiError {
        match &self.watch {
            Some(watch) if watch.stalled() => ApiError::new(
                Code::StreamIdle,
                "the stream made no progress either way for twice the idle limit (the client \
                 stopped reading)",
            ),
            _ => ApiError::new(
                Code::StreamCancelled,
                "the client ended the stream before its status",
            ),
        }
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        // A sender dropped unfinished (its task ended early): the first outcome counts, so
        // after `finish` this is nothing.
        self.report.end(Err(self.went()));
    }
}

/// gRPC's status trailers for `outcome`.
fn trailers(outcome: &Result<(), ApiError>) -> HeaderMap {
    let mut trailers = HeaderMap::new();
    match outcome {
        Ok(()) => {
            trailers.insert(GRPC_STATUS, HeaderValue::from_static("0"));
        }
        Err(e) => super::status::put_error(&mut trailers, e),
    }
    trailers
}

/// Connect's end-of-stream envelope: flag `0x02`, then the JSON end message (`{}` when no
/// `error`).
pub(crate) fn end_of_stream(error: Option<&ApiError>) -> Bytes {
    let json = match error {
        None => serde_json::json!({}),
        Some(e) => serde_json::json!({"error": super::connect::error_json(e)}),
    };
    let json = serde_json::to_vec(&json).unwrap_or_default();
    let len = u32::try_from(json.len()).unwrap_or(u32::MAX);
    let mut out = BytesMut::with_capacity(HEADER_LEN + json.len());
    out.extend_from_slice(&[0x02]);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&json);
    out.freeze()
}

/// A response body fed by a [`Sender`]; it ends when the sender is dropped.
pub struct Streamed {
    frames: mpsc::Receiver<Frame<Bytes>>,
    watch: Option<Arc<Watch>>,
}

impl Streamed {
    /// The same, reporting each frame taken by the connection to `watch`: hyper polls the
    /// body only when flow control has room, so a frame taken is the write side's progress.
    #[must_use]
    pub fn watched(mut self, watch: Option<Arc<Watch>>) -> Self {
        self.watch = watch;
        self
    }
}

/// A connected [`Sender`] and [`Streamed`] body. `depth` messages may wait unsent before the
/// sender waits for the client to read (backpressure).
#[must_use]
pub fn channel(depth: usize, end: End) -> (Sender, Streamed) {
    let (frames, receiver) = mpsc::channel(depth.max(1));
    (
        Sender {
            frames,
            end,
            report: StreamEnd::default(),
            watch: None,
            gone: AtomicBool::new(false),
        },
        Streamed {
            frames: receiver,
            watch: None,
        },
    )
}

impl Body for Streamed {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let polled = self.frames.poll_recv(cx);
        if let (Poll::Ready(Some(_)), Some(watch)) = (&polled, &self.watch) {
            watch.progress();
        }
        polled.map(|frame| frame.map(Ok))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::error::GrpcCode;
    use http_body_util::{Full, StreamBody};

    fn frame(message: &[u8]) -> Vec<u8> {
        let mut out = vec![0];
        out.extend_from_slice(&u32::try_from(message.len()).unwrap().to_be_bytes());
        out.extend_from_slice(message);
        out
    }

    #[tokio::test]
    async fn messages_split_across_and_within_frames_are_read_in_order() {
        let mut bytes = frame(b"one");
        bytes.extend(frame(b""));
        bytes.extend(frame(b"three"));
        let chunks: Vec<Result<Frame<Bytes>, Infallible>> = bytes
            .chunks(2)
            .map(|c| Ok(Frame::data(Bytes::copy_from_slice(c))))
            .collect();
        let body = StreamBody::new(futures_util::stream::iter(chunks));
        let mut messages = Messages::new(body, End::Trailers, 16, Duration::from_secs(5));
        assert_eq!(messages.next().await.unwrap().as_deref(), Some(&b"one"[..]));
        assert_eq!(messages.next().await.unwrap().as_deref(), Some(&b""[..]));
        assert_eq!(
            messages.next().await.unwrap().as_deref(),
            Some(&b"three"[..])
        );
        assert_eq!(messages.next().await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_length_over_the_limit_is_refused_before_the_message_arrives() {
        let header = Bytes::from_static(&[0, 0, 0, 0x10, 0]);
        let mut messages = Messages::new(
            Full::new(header),
            End::Trailers,
            1024,
            Duration::from_secs(5),
        );
        let e = messages.next().await.unwrap_err();
        assert_eq!(e.code, Code::MessageTooLarge);
        let mut cut = Messages::new(
            Full::new(Bytes::from_static(&[0, 0, 0, 0, 9, 1])),
            End::Connect,
            1024,
            Duration::from_secs(5),
        );
        assert_eq!(cut.next().await.unwrap_err().code, Code::Truncated);
    }

    #[tokio::test]
    async fn a_compressed_flag_is_told_in_the_protocols_own_header() {
        for (end, names, not) in [
            (End::Trailers, "grpc-encoding", "Connect-Content-Encoding"),
            (End::Connect, "Connect-Content-Encoding", "grpc-encoding"),
        ] {
            let header = Bytes::from_static(&[1, 0, 0, 0, 1, 7]);
            let mut messages = Messages::new(Full::new(header), end, 1024, Duration::from_secs(5));
            let e = messages.next().await.unwrap_err();
            assert_eq!(e.code, Code::InvalidCompressedFlag, "{end:?}");
            assert!(
                e.message.contains(names) && !e.message.contains(not),
                "{end:?}: {}",
                e.message
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_stream_ends_at_the_idle_limit() {
        let silent = StreamBody::new(futures_util::stream::pending::<
            Result<Frame<Bytes>, Infallible>,
        >());
        let mut messages = Messages::new(silent, End::Trailers, 16, Duration::from_secs(3));
        let e = messages.next().await.unwrap_err();
        assert_eq!(e.code, Code::StreamIdle);
        assert_eq!(e.grpc_code(), GrpcCode::DeadlineExceeded);
    }
}
