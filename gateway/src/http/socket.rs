//! A connection's socket as hyper sees it, with one choice made for it: whether hyper may hand
//! it vectored writes.
//!
//! With vectored writes, h2 keeps a DATA payload over 256 bytes apart from the frame bytes
//! before it and must write them out before it can queue another frame. A gRPC reply is
//! HEADERS, DATA and trailing HEADERS, so it leaves in two `writev` calls. Told the socket
//! is not vectored, h2 copies payloads up to 1 KiB into its buffer and the whole reply leaves
//! in one `write`: one system call and one TCP segment fewer per call. Against S3 the gateway
//! only ever sends small replies (object bytes go straight to S3), so that is always the better
//! trade. The embedded store streams whole objects through this server, where copying every
//! payload would cost more than it saves: it keeps vectored writes.
//!
//! And one timer: a write (or flush) that stays `Pending` for the stall limit fails with
//! `TimedOut`, so hyper closes the connection, freeing all it held, on either protocol; the
//! close is logged at INFO, as the client's doing, and counted
//! (`draftstore_write_stalls_total`). The timer is made at the first write that waits, and
//! reset only when a write waits again after one that did not: a write that goes at once costs
//! one store of a flag.
//!
//! A write waits while the kernel holds too much the client has not taken. Left alone, Linux
//! lets a socket's send queue grow to `tcp_wmem`'s maximum (4 MiB by default) and wakes the
//! writer only once about a third of it has drained: a client reading steadily at a modest rate
//! would be cut as if it took nothing. So every accepted socket gets `TCP_NOTSENT_LOWAT` at
//! [`UNSENT_LOW_WATER`] (64 KiB; bytes sent but not yet acknowledged do not count, so a fast
//! client's throughput is not bounded by it): a write waits once that much is unsent, and is
//! woken when less than half of it is. The rule, exactly: a connection is closed when its
//! client takes less than about 96 KiB (half the mark, plus the up to 64 KiB one write may
//! queue past it) within one stall limit while an answer waits for it; at the default 60 s
//! limit that is any client slower than about 1.6 KiB/s. Bytes count as taken when the
//! client's kernel reopens its window, which a client's own large receive buffer may delay
//! (over loopback Linux frees coalesced buffers only once read whole). Where the option is not
//! available (not Linux) the kernel's own threshold applies.
//!
//! And one count: [`Written`], the bytes the socket has handed to the kernel, shared with the
//! connection's requests (over HTTP/2 it bounds what the connection queues before the socket
//! writes, see [`crate::http::queued`]). A big HTTP/1.1 answer is paced by it (see
//! [`crate::http::layer::admission`]): hyper gets its next 16 KiB frame only once the socket has
//! written the frames before, so at most about one frame beyond what the kernel took sits in
//! hyper's buffer. A waiting answer is woken once, when the count reaches the bytes it waits for,
//! not on every write. [`Written::close`] (an answer dropped to make room for other clients'
//! answers: HTTP/1.1 cannot reset one answer) makes every later read, write and flush of the
//! socket fail at once with `ConnectionAborted`, so hyper closes the connection even while a
//! write waits for the client.

use crate::http::queued::{Queued, RoomWait};
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::io::IoSlice;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

/// The most bytes an accepted socket's kernel queue holds unsent before a write waits
/// (`TCP_NOTSENT_LOWAT`, see the module doc): 64 KiB.
pub const UNSENT_LOW_WATER: u32 = 64 * 1024;

/// Sets [`UNSENT_LOW_WATER`] on an accepted `stream`, where the platform has the option; a
/// failure only leaves the kernel's default (logged at DEBUG).
pub fn bound_unsent(stream: &TcpStream) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if let Err(e) = socket2::SockRef::from(stream).set_tcp_notsent_lowat(UNSENT_LOW_WATER) {
        tracing::debug!(error = %e, "TCP_NOTSENT_LOWAT not set");
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = stream;
}

/// A connection, by default a TCP stream.
pub struct Socket<S = TcpStream> {
    inner: TokioIo<S>,
    vectored: bool,
    stall: Stall,
    written: Arc<Written>,
}

/// The bytes one connection's socket has written to the kernel, shared with the answers paced
/// by them (see the module doc); one per connection.
#[derive(Debug)]
pub struct Written {
    bytes: AtomicU64,
    /// The count a waiting answer is woken at (`u64::MAX`: none waits).
    wake_at: AtomicU64,
    waker: futures_util::task::AtomicWaker,
    /// Closed on purpose ([`Written::close`]): every IO fails.
    closed: AtomicBool,
    /// The stall timer closed the connection.
    stalled: AtomicBool,
    /// The socket is gone: nothing more will be written.
    ended: AtomicBool,
    /// HTTP/2 answer bytes handed over, against this count ([`Written::poll_room`]).
    queued: Queued,
}

impl Default for Written {
    fn default() -> Self {
        Self {
            bytes: AtomicU64::new(0),
            wake_at: AtomicU64::new(u64::MAX),
            waker: futures_util::task::AtomicWaker::new(),
            closed: AtomicBool::new(false),
            stalled: AtomicBool::new(false),
            ended: AtomicBool::new(false),
            queued: Queued::default(),
        }
    }
}

impl Written {
    /// Bytes written to the kernel since the connection began.
    #[must_use]
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::SeqCst)
    }

    /// `Ready` with the count once it is at least `target` (or nothing more will be written:
    /// the socket is gone or closed), else `Pending`, the task woken when it gets there.
    pub fn poll_reached(&self, cx: &mut Context<'_>, target: u64) -> Poll<u64> {
        let now = self.bytes();
        if now >= target || self.done() {
            return Poll::Ready(now);
        }
        self.waker.register(cx.waker());
        self.wake_at.store(target, Ordering::Release);
        // Written meanwhile: not waited for.
        let now = self.bytes();
        if now >= target || self.done() {
            self.wake_at.store(u64::MAX, Ordering::Release);
            return Poll::Ready(now);
        }
        Poll::Pending
    }

    /// `Ready` once an HTTP/2 answer (or frame) taking `bytes` on the wire may be handed to
    /// hyper, counted as queued until the socket writes it; else `Pending`, the task woken
    /// when the socket has written enough (see [`crate::http::queued`]: at most
    /// [`QUEUED_LIMIT`](crate::http::queued::QUEUED_LIMIT) plus one answer queued). `wait` is
    /// the caller's, kept between polls. Everything goes once the socket is gone or closed.
    pub fn poll_room(
        &self,
        cx: &mut Context<'_>,
        bytes: u64,
        wait: &mut Option<RoomWait>,
    ) -> Poll<()> {
        self.queued
            .poll_room(cx, bytes, || self.bytes(), self.done(), wait)
    }

    /// Counts a whole HTTP/2 answer just handed over as waiting in h2 for its client's window
    /// until the returned guard is dropped (keep it for the life of the answer's stream task):
    /// while one waits, nothing counted as queued is forgotten (see [`crate::http::queued`]).
    #[must_use]
    pub fn answer_handed(self: Arc<Self>) -> Handed {
        self.queued.answer_handed();
        Handed(self)
    }

    /// Closes the connection: the socket's next read, write or flush (one waiting included,
    /// once its task is woken, which this does) fails with `ConnectionAborted`.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.waker.wake();
        self.queued.wake_all();
    }

    /// Whether the stall timer closed the connection (see the module doc).
    #[must_use]
    pub fn stalled(&self) -> bool {
        self.stalled.load(Ordering::Acquire)
    }

    fn done(&self) -> bool {
        self.ended.load(Ordering::Acquire) || self.closed.load(Ordering::Acquire)
    }

    /// `n` more bytes went to the kernel: wakes the answer waiting for them, if any.
    pub(crate) fn add(&self, n: usize) {
        let n = u64::try_from(n).unwrap_or(u64::MAX);
        // Sequentially consistent, as `bytes()`: a task registering to wait for room
        // (`crate::http::queued`) and this write looking for waiters must not both miss the other.
        let total = self.bytes.fetch_add(n, Ordering::SeqCst).saturating_add(n);
        if total >= self.wake_at.load(Ordering::Acquire) {
            self.wake_at.store(u64::MAX, Ordering::Release);
            self.waker.wake();
        }
        self.queued.wrote(total);
    }

    /// The error every IO gets once closed on purpose.
    fn refused(&self) -> Option<std::io::Error> {
        self.closed.load(Ordering::Acquire).then(|| {
            std::io::Error::new(
                std::io::ErrorKind::ConnectionAborted,
                "an answer on this connection was dropped to make room for other clients' answers",
            )
        })
    }
}

/// A whole HTTP/2 answer handed over, its stream task alive ([`Written::answer_handed`]).
#[derive(Debug)]
pub struct Handed(Arc<Written>);

impl Drop for Handed {
    fn drop(&mut self) {
        self.0.queued.answer_ended();
    }
}

/// The write stall timer (see the module doc).
struct Stall {
    /// Zero: never.
    limit: Duration,
    peer: Option<IpAddr>,
    /// Made at the first write that waits.
    timer: Option<Pin<Box<Sleep>>>,
    /// A write is waiting since the timer was last set.
    waiting: bool,
    logged: bool,
}

impl<S> Socket<S> {
    /// Wraps `stream`; `vectored` decides whether hyper may write vectored. No stall limit.
    #[must_use]
    pub fn new(stream: S, vectored: bool) -> Self {
        Self {
            inner: TokioIo::new(stream),
            vectored,
            stall: Stall {
                limit: Duration::ZERO,
                peer: None,
                timer: None,
                waiting: false,
                logged: false,
            },
            written: Arc::new(Written::default()),
        }
    }

    /// Its count of bytes written, to share with the connection's requests.
    #[must_use]
    pub fn written(&self) -> &Arc<Written> {
        &self.written
    }

    /// Fails a write that waits `limit` (zero: never) for the client `peer` to take bytes.
    #[must_use]
    pub fn stalling(mut self, limit: Duration, peer: IpAddr) -> Self {
        self.stall.limit = limit;
        self.stall.peer = Some(peer);
        self
    }

    /// What a write or flush `polled`: progress ends a wait, a wait arms the timer.
    fn waited<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<std::io::Result<T>>,
    ) -> Poll<std::io::Result<T>> {
        match polled {
            Poll::Pending => {
                self.written.queued.set_blocked(true);
                // A close racing this wait wakes it (see `Written::close`).
                self.written.waker.register(cx.waker());
                let e = ready!(self.stall.waits(cx));
                self.written.stalled.store(true, Ordering::Release);
                Poll::Ready(Err(e))
            }
            done => {
                self.stall.waiting = false;
                self.written.queued.set_blocked(false);
                done
            }
        }
    }

    /// What a write `polled`, its bytes counted.
    fn wrote(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<std::io::Result<usize>>,
    ) -> Poll<std::io::Result<usize>> {
        if let Poll::Ready(Ok(n)) = &polled {
            self.written.add(*n);
        }
        self.waited(cx, polled)
    }
}

impl<S> Drop for Socket<S> {
    fn drop(&mut self) {
        self.written.ended.store(true, Ordering::Release);
        self.written.waker.wake();
        self.written.queued.wake_all();
    }
}

impl Stall {
    /// A write waits: `Pending` until the limit since the wait began, then the error.
    fn waits(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Error> {
        if self.limit.is_zero() {
            return Poll::Pending;
        }
        if !self.waiting {
            self.waiting = true;
            let deadline = Instant::now() + self.limit;
            match &mut self.timer {
                Some(timer) => timer.as_mut().reset(deadline),
                None => self.timer = Some(Box::pin(tokio::time::sleep_until(deadline))),
            }
        }
        let Some(timer) = self.timer.as_mut() else {
            return Poll::Pending;
        };
        ready!(timer.as_mut().poll(cx));
        let limit_ms = u64::try_from(self.limit.as_millis()).unwrap_or(u64::MAX);
        if !self.logged {
            self.logged = true;
            crate::metrics::get().write_stalls.inc();
            let peer = self.peer.map(|p| p.to_string()).unwrap_or_default();
            tracing::info!(
                peer,
                limit_ms,
                "connection closed: the client took too little of its answers within the stall limit"
            );
        }
        Poll::Ready(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("the client took too little of its answers within {limit_ms} ms"),
        ))
    }
}

impl<S: AsyncRead + Unpin> Read for Socket<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        if let Some(e) = self.written.refused() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> Write for Socket<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if let Some(e) = self.written.refused() {
            return Poll::Ready(Err(e));
        }
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.wrote(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        if let Some(e) = self.written.refused() {
            return Poll::Ready(Err(e));
        }
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.wrote(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.vectored && self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if let Some(e) = self.written.refused() {
            return Poll::Ready(Err(e));
        }
        let polled = Pin::new(&mut self.inner).poll_flush(cx);
        self.waited(cx, polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use tokio::io::{DuplexStream, ReadBuf};

    /// A stream that counts the writes made to it, vectored like a TCP stream.
    struct Counted(DuplexStream, Arc<AtomicUsize>);

    impl AsyncRead for Counted {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            Pin::new(&mut self.0).poll_read(cx, buf)
        }
    }

    impl AsyncWrite for Counted {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            self.1.fetch_add(1, Ordering::SeqCst);
            Pin::new(&mut self.0).poll_write(cx, buf)
        }

        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<std::io::Result<usize>> {
            self.1.fetch_add(1, Ordering::SeqCst);
            // Like writev on a socket: everything handed over at once.
            let all: Vec<u8> = bufs.iter().flat_map(|b| b.iter().copied()).collect();
            Pin::new(&mut self.0).poll_write(cx, &all)
        }

        fn is_write_vectored(&self) -> bool {
            true
        }

        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Pin::new(&mut self.0).poll_flush(cx)
        }

        fn poll_shutdown(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<std::io::Result<()>> {
            Pin::new(&mut self.0).poll_shutdown(cx)
        }
    }

    /// Writes the server makes to answer one gRPC-shaped call (HEADERS, a 500-byte DATA,
    /// trailers) over HTTP/2.
    async fn writes_per_reply(vectored: bool) -> usize {
        let (client_io, server_io) = tokio::io::duplex(1 << 16);
        let writes = Arc::new(AtomicUsize::new(0));
        let socket = Socket::new(Counted(server_io, writes.clone()), vectored);
        let service = hyper::service::service_fn(|_req| async {
            let mut trailers = http::HeaderMap::new();
            trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
            let body = Full::new(Bytes::from(vec![b'x'; 500]))
                .with_trailers(async move { Some(Ok::<_, std::convert::Infallible>(trailers)) });
            Ok::<_, std::convert::Infallible>(http::Response::new(body))
        });
        tokio::spawn(
            hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                .serve_connection(socket, service),
        );
        let (mut client, connection) = h2::client::handshake(client_io).await.unwrap();
        tokio::spawn(connection);
        // A first call settles the connection (settings, their acknowledgements).
        call(&mut client).await;
        let before = writes.load(Ordering::SeqCst);
        call(&mut client).await;
        writes.load(Ordering::SeqCst) - before
    }

    async fn call(client: &mut h2::client::SendRequest<Bytes>) {
        let request = http::Request::post("http://x/draft.v1.DraftService/GetUploadURL")
            .body(())
            .unwrap();
        let (response, _) = client.send_request(request, true).unwrap();
        let mut body = response.await.unwrap().into_body();
        let mut received = 0;
        while let Some(data) = body.data().await {
            let data = data.unwrap();
            received += data.len();
            body.flow_control().release_capacity(data.len()).unwrap();
        }
        assert_eq!(received, 500);
        assert!(body.trailers().await.unwrap().is_some(), "trailers arrive");
    }

    #[tokio::test]
    async fn a_write_waiting_for_the_client_fails_at_once_when_the_connection_is_closed() {
        use tokio::io::AsyncWriteExt;
        // A client that reads nothing: the second write waits, with no stall limit, forever.
        let (_client, server_io) = tokio::io::duplex(64);
        let socket = Socket::new(server_io, false);
        let written = socket.written().clone();
        let mut io = TokioIo::new(socket);
        let writing = tokio::spawn(async move {
            let first = io.write(&[7; 64]).await;
            let second = io.write_all(&[7; 1024]).await;
            (first.ok(), second.map_err(|e| e.kind()))
        });
        tokio::task::yield_now().await;
        while written.bytes() < 64 {
            tokio::task::yield_now().await;
        }
        written.close();
        let ended = tokio::time::timeout(Duration::from_secs(30), writing).await;
        let (first, second) = ended.expect("the waiting write ends").unwrap();
        assert_eq!(first, Some(64), "counted");
        assert_eq!(second, Err(std::io::ErrorKind::ConnectionAborted));
        assert_eq!(written.bytes(), 64);
        // And a waiter for bytes that will never come is let go.
        let reached = std::future::poll_fn(|cx| written.poll_reached(cx, 1 << 20)).await;
        assert_eq!(reached, 64);
    }

    #[tokio::test]
    async fn a_reply_leaves_in_one_write_unless_vectored() {
        assert_eq!(writes_per_reply(false).await, 1);
        assert_eq!(
            writes_per_reply(true).await,
            2,
            "with vectored writes h2 flushes the DATA payload before the trailers"
        );
    }
}
