//! What one connection is doing ([`Activity`]): the requests open on it, how many were ever
//! started there, and whether it speaks HTTP/2. The transport keeps it: the server's idle timer
//! and drain read it ([`crate::http::server`]), an HTTP/2 stream task keeps its stream counted
//! open until its answer is sent ([`crate::http::watch::keep_open`]); the connection layer
//! above ([`crate::http::layer::connection`]) counts each request in and out.

use crate::http::socket::Written;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

/// Requests open on one connection (over HTTP/2: stream tasks open, from the request until
/// its answer is sent or its stream reset, see [`crate::http::watch::keep_open`]; over
/// HTTP/1.1: until answered), how many were ever started there, and whether it speaks HTTP/2.
#[derive(Debug, Default)]
pub struct Activity {
    open: AtomicUsize,
    started: AtomicU64,
    h2: AtomicBool,
}

impl Activity {
    /// A request has started on the connection (`h2`: over HTTP/2): counted open until
    /// [`Activity::request_ended`].
    pub fn request_started(&self, h2: bool) {
        self.open.fetch_add(1, Ordering::Relaxed);
        self.started.fetch_add(1, Ordering::Relaxed);
        if h2 {
            self.h2.store(true, Ordering::Relaxed);
        }
    }

    /// A request counted open has ended: answered or dropped, or over HTTP/2 its stream task
    /// (kept counted by [`crate::http::watch::keep_open`]) has ended.
    pub fn request_ended(&self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
    }

    /// Requests open now.
    #[must_use]
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Requests ever started on the connection.
    #[must_use]
    pub fn started(&self) -> u64 {
        self.started.load(Ordering::Relaxed)
    }

    /// Whether any request was ever started on the connection (one still open when a drain
    /// ends is then answering, not merely silent).
    #[must_use]
    pub fn started_any(&self) -> bool {
        self.started() > 0
    }

    /// Whether a closing connection has nothing left to finish now: it never started a
    /// request, or it speaks HTTP/2 and no stream task is open (over HTTP/1.1 an answer's body
    /// may still be being written with no request open). `Some` with the requests started so
    /// far and the bytes its socket has written (`written`), so that
    /// [`crate::http::layer::connection::linger`] can tell whether that held, with nothing
    /// written (an answer whose stream task ended may still be leaving h2's buffers), over a
    /// whole wait.
    #[must_use]
    pub fn nothing_left(&self, written: &Written) -> Option<(u64, u64)> {
        let started = self.started();
        let idle = started == 0 || (self.h2.load(Ordering::Relaxed) && self.open() == 0);
        idle.then(|| (started, written.bytes()))
    }
}
