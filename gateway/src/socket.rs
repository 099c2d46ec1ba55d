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

use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::rt::TokioIo;
use std::io::IoSlice;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::net::TcpStream;

pub struct Socket {
    inner: TokioIo<TcpStream>,
    vectored: bool,
}

impl Socket {
    #[must_use]
    pub fn new(stream: TcpStream, vectored: bool) -> Self {
        Self {
            inner: TokioIo::new(stream),
            vectored,
        }
    }
}

impl Read for Socket {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl Write for Socket {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.vectored && self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
