//! What one connection is doing ([`Activity`]): the requests open on it, how many were ever
//! started there, and whether it speaks HTTP/2. The transport keeps it: the server's idle timer
//! and drain read it ([`crate::http::server`]), an HTTP/2 stream task keeps its request
//! ([`Open`]) until its answer is sent ([`crate::http::watch::keep_open`]); the connection layer
//! above ([`crate::http::layer::connection`]) counts each request in and out.

use crate::http::shares::{Key, Shares, Ticket};
use crate::http::socket::Written;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// A request counted open: on its connection ([`Activity`]) and, when it got one, in its place
/// among the requests open on all connections (a [`Ticket`] of
/// [`crate::http::layer::connection::Streams`]). Dropping it ends both: when the request is
/// answered or dropped, or over HTTP/2 when its stream task ends, once the task holds it
/// ([`crate::http::watch::keep_open`]).
///
/// An HTTP/2 whole answer its client does not take within its grace trades that place for one among the
/// answers waiting to be taken ([`Open::wait`]), so that unread answers are bounded without
/// keeping anyone's new requests out; a streamed answer gives its place back once answered
/// ([`Open::release_place`]): its body has its own bounds (the byte budget, transfer slots).
#[derive(Debug)]
pub struct Open {
    activity: Arc<Activity>,
    place: Option<Ticket>,
}

impl Open {
    /// Gives its place among the requests open on all connections back now (the request stays
    /// counted on its connection).
    pub fn release_place(&mut self) {
        self.place = None;
    }

    /// Trades its place for one, for the same peer, among the answers waiting to be taken (the
    /// connection's pool, see [`Activity::waiting_in`]; a request that got no place, refused or
    /// a probe past the cap, takes one for its connection's peer); `false` when that pool
    /// refuses it (full, or the peer holds its share): the caller then drops the answer. `true`
    /// with no pool (nothing is bounded then).
    pub fn wait(&mut self) -> bool {
        let Some((pool, peer)) = &self.activity.waiting else {
            return true;
        };
        self.place = match self.place.take() {
            Some(place) => place.exchange(pool),
            None => pool.place(Key::Peer(*peer)),
        };
        self.place.is_some()
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.activity.request_ended();
    }
}

/// Requests open on one connection (over HTTP/2: stream tasks open, from the request until
/// its answer is sent or its stream reset, see [`crate::http::watch::keep_open`]; over
/// HTTP/1.1: until answered), how many were ever started there, and whether it speaks HTTP/2.
#[derive(Debug, Default)]
pub struct Activity {
    open: AtomicUsize,
    started: AtomicU64,
    h2: AtomicBool,
    waiting: Option<(Arc<Shares>, IpAddr)>,
}

impl Activity {
    /// A connection of `peer` whose HTTP/2 answers not taken within the grace wait in `pool` (shared by
    /// all connections, by peer; see [`Open::wait`]).
    #[must_use]
    pub fn waiting_in(pool: Arc<Shares>, peer: IpAddr) -> Self {
        Self {
            waiting: Some((pool, peer)),
            ..Self::default()
        }
    }

    /// A request has started on the connection (`h2`: over HTTP/2), holding `place` (none:
    /// refused) among the requests open on all connections: counted open until the [`Open`]
    /// returned is dropped.
    #[must_use]
    pub fn request_started(self: &Arc<Self>, h2: bool, place: Option<Ticket>) -> Open {
        self.open.fetch_add(1, Ordering::Relaxed);
        self.started.fetch_add(1, Ordering::Relaxed);
        if h2 {
            self.h2.store(true, Ordering::Relaxed);
        }
        Open {
            activity: self.clone(),
            place,
        }
    }

    /// A request counted open has ended (its [`Open`] dropped).
    fn request_ended(&self) {
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
