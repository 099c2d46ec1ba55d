//! What the server knows per connection, put around the stack once per accepted connection:
//! the peer's address (in the request's [`Meta`], for admission by peer), the socket's count
//! of bytes written ([`Written`]: over HTTP/1.1 pacing big answers, over HTTP/2 bounding the
//! answers queued before the socket writes them, see [`crate::http::queued`]), the connection's
//! [`Activity`] (for its idle timer, see [`idle`], and for dropping it once told to finish with
//! nothing left, see [`linger`]), and the requests open on all connections, shared fairly by
//! peer address ([`Streams`]): a request past the cap, or past its peer's share of it, is marked
//! (`Meta::over_cap`) and answered 503 at once, so memory stays bounded however many HTTP/2
//! streams clients open, and one peer's flood of streams leaves room for everyone else.

use super::Meta;
use super::{Req, Res};
use crate::http::activity::{Activity, Open};
use crate::http::queued::RoomWait;
use crate::http::response::Body;
use crate::http::shares::{Key, Shares, Ticket};
use crate::http::socket::Written;
use pin_project_lite::pin_project;
use std::cell::RefCell;
use std::convert::Infallible;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tower::Service;

/// Requests open on all connections: at most `cap`, shared by peer address as admission shares
/// its places ([`Shares`]: a peer holds at most `cap / (other peers + 2)`, at least one, so a
/// single peer gets half and a newcomer always finds room while the total is under the cap).
/// A request holds its place until answered (over HTTP/2 a whole answer, until it is taken or
/// trades it for a waiting place: see [`Open`]); a refused request holds none.
///
/// Beside them, as many places for HTTP/2 whole answers still waiting for their client to take
/// them after a grace ([`Streams::waiting`], see [`Open::wait`] and
/// [`crate::http::watch::WAIT_GRACE`]): an answer refused one (past its peer's share, or all
/// held) is reset, so answers nobody reads are bounded (at most `cap` of them, each of one frame
/// or less: 16 KiB, besides those within their grace, which hold request places) and never keep
/// anyone's new requests out, nor get the answers of a client that reads reset.
#[derive(Debug)]
pub struct Streams {
    shares: Arc<Shares>,
    waiting: Arc<Shares>,
}

impl Streams {
    /// Places for `cap` (at least 1) requests open at once, and for as many answers waiting.
    #[must_use]
    pub fn new(cap: usize) -> Arc<Self> {
        Arc::new(Self {
            shares: Shares::new(cap),
            waiting: Shares::new(cap),
        })
    }

    /// The places of answers waiting to be taken (for each connection's [`Activity`]).
    #[must_use]
    pub fn waiting(&self) -> Arc<Shares> {
        self.waiting.clone()
    }

    /// Requests open now, HTTP/2 whole answers in their second of grace included (the ones a
    /// shutdown would cut off; answers in waiting places are not counted).
    #[must_use]
    pub fn open(&self) -> usize {
        self.shares.held()
    }

    /// A place for a request of `peer`, held until dropped; `None` past the cap or past the
    /// peer's share.
    #[must_use]
    pub fn take(&self, peer: IpAddr) -> Option<Ticket> {
        self.shares.place(Key::Peer(peer))
    }
}

/// The stack for one connection, held in a `RefCell` so each request calls it in place: a
/// clone per request (hyper's `Service::call` takes `&self`, tower's `&mut self`) bumped and
/// dropped every `Arc` the layers hold (about a dozen atomic pairs, on counters every worker
/// thread shares). Only the connection's own task calls it, one request at a time.
#[derive(Debug)]
pub struct PerConnection<S> {
    inner: RefCell<S>,
    /// Cloned for a call that finds `inner` borrowed, which no call does (calls do not nest):
    /// there so that path needs no panic.
    spare: S,
    peer: IpAddr,
    activity: Arc<Activity>,
    streams: Arc<Streams>,
    written: Option<Arc<Written>>,
}

impl<S> PerConnection<S> {
    /// `inner` serving `peer`, counted in `activity` and `streams`.
    pub fn new(inner: S, peer: IpAddr, activity: Arc<Activity>, streams: Arc<Streams>) -> Self
    where
        S: Clone,
    {
        Self {
            inner: RefCell::new(inner.clone()),
            spare: inner,
            peer,
            activity,
            streams,
            written: None,
        }
    }

    /// Hands `written` (its socket's count) to each request, to pace big answers by (and over
    /// HTTP/2 to bound what the connection queues, see [`crate::http::queued`]).
    #[must_use]
    pub fn pacing(mut self, written: Arc<Written>) -> Self {
        self.written = Some(written);
        self
    }
}

/// hyper calls the stack through this (not through hyper-util's `TowerToHyperService`, whose
/// `Oneshot` future holds a clone of the whole stack and the request until its first poll, and
/// polls readiness): every service of the stack is always ready (each `poll_ready` forwards to
/// the router's, which is `Ready`), so the connection's stack is called at once, in place,
/// and only its future is kept.
impl<S> hyper::service::Service<Req> for PerConnection<S>
where
    S: Service<Req, Response = Res, Error = Infallible> + Clone,
{
    type Response = Res;
    type Error = Infallible;
    type Future = Counted<S::Future>;

    fn call(&self, mut req: Req) -> Self::Future {
        let h2 = req.version() == http::Version::HTTP_2;
        let head = h2 && req.method() == http::Method::HEAD;
        let place = self.streams.take(self.peer);
        let over_cap = place.is_none();
        let open = self.activity.request_started(h2, place);
        // The one extension every request gets; the layers fill it in.
        req.extensions_mut().insert(Meta {
            peer: Some(self.peer),
            over_cap,
            written: self.written.clone(),
            ..Meta::default()
        });
        let inner = match self.inner.try_borrow_mut() {
            Ok(mut stack) => stack.call(req),
            Err(_) => self.spare.clone().call(req),
        };
        Counted {
            inner,
            h2,
            head,
            open: Some(open),
            queue: if h2 { self.written.clone() } else { None },
        }
    }
}

pin_project! {
    /// The inner future, its request counted open until it is answered or dropped (over
    /// HTTP/2, until its stream task ends, once the task holds the request: see [`Open`]).
    /// Over HTTP/2 a whole answer's body is handed to hyper only once its connection has room
    /// for it in what it queues before its socket writes ([`Written::poll_room`]); its head
    /// goes at once.
    pub struct Counted<F> {
        #[pin]
        inner: F,
        h2: bool,
        // An HTTP/2 `HEAD`: its answer's body is dropped here (hyper would send it).
        head: bool,
        open: Option<Open>,
        // HTTP/2: the connection's socket count, whose queue the answer waits for.
        queue: Option<Arc<Written>>,
    }
}

/// A whole answer's body waiting for room on its connection ([`Written::poll_room`]): boxed
/// only when it has to wait. Once let through, it counts as handed over for the life of its
/// stream task ([`crate::http::watch::keep_handed`]).
struct Gated {
    inner: Body,
    queue: Option<Arc<Written>>,
    bytes: u64,
    wait: Option<RoomWait>,
}

impl hyper::body::Body for Gated {
    type Data = bytes::Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<bytes::Bytes>, Infallible>>> {
        let this = &mut *self;
        if let Some(queue) = this.queue.as_ref() {
            ready!(queue.poll_room(cx, this.bytes, &mut this.wait));
            if let Some(queue) = this.queue.take() {
                crate::http::watch::keep_handed(queue.answer_handed());
            }
        }
        Pin::new(&mut this.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

impl<F: Future<Output = Result<Res, Infallible>>> Future for Counted<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let mut answer = ready!(this.inner.poll(cx));
        if *this.head {
            // hyper drops a `HEAD` answer's body over HTTP/1.1 but sends it over HTTP/2, where
            // a client then fails the stream (curl: PROTOCOL_ERROR). Its length is kept.
            if let Ok(response) = &mut answer {
                let length = hyper::body::Body::size_hint(response.body()).exact();
                if let Some(length) = length.filter(|_| {
                    !response
                        .headers()
                        .contains_key(http::header::CONTENT_LENGTH)
                }) {
                    response
                        .headers_mut()
                        .insert(http::header::CONTENT_LENGTH, length.into());
                }
                *response.body_mut() = crate::http::response::empty();
            }
        }
        if !*this.h2 {
            return Poll::Ready(answer);
        }
        // Over HTTP/2 the answer's body is sent by this stream's task from now on.
        // A whole answer waits for the client's window from now on: all of it taken within the
        // stall limit (see `crate::http::watch`), its end sent apart so that the stream's task
        // waits for all of it (a window opened a byte at a time is no progress); should it
        // wait at all, it trades its place for a waiting one (`Open::wait`). A streamed one sets
        // its own watch, and its place is given back now.
        let whole = match &mut answer {
            Ok(response)
                if response.body().whole_len().is_some()
                    && !hyper::body::Body::is_end_stream(response.body()) =>
            {
                response.body_mut().end_apart();
                crate::http::watch::answered();
                true
            }
            _ => false,
        };
        // The request stays open until the task ends, counted on its connection (a long
        // download keeps its connection from being idle).
        if let Some(mut open) = this.open.take() {
            if !whole {
                open.release_place();
            }
            if let Err(open) = crate::http::watch::keep_open(open) {
                *this.open = Some(open);
            }
        }
        // Its body is handed to hyper only once the connection has room for it; until then
        // the task waits as for the client's window (see `crate::http::queued`).
        if let (true, Some(queue), Ok(response)) = (whole, this.queue.take(), &mut answer) {
            let bytes = response.body().least_wire_len().unwrap_or(0);
            let mut wait = None;
            if queue.poll_room(cx, bytes, &mut wait).is_pending() {
                let inner = std::mem::take(response.body_mut());
                *response.body_mut() = Body::new(Gated {
                    inner,
                    queue: Some(queue),
                    bytes,
                    wait,
                });
            } else {
                crate::http::watch::keep_handed(queue.answer_handed());
            }
        }
        Poll::Ready(answer)
    }
}

/// Why [`idle`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Silence {
    /// No request head came within the first wait (the header timeout): nothing is in flight,
    /// the connection is dropped at once (a half-sent HTTP/1.1 head included).
    NoRequest,
    /// No request during a whole idle period: the connection is closed gracefully (HTTP/2
    /// GOAWAY; HTTP/1.1 closes between requests).
    Idle,
}

/// How long a closing connection that never started a request must have had nothing left to
/// finish before it is dropped (see [`linger`]).
pub const LINGER: Duration = Duration::from_secs(1);

/// Completes once a closing connection (told to finish: HTTP/2 GOAWAY and PING) has had
/// nothing left to finish (see [`Activity::nothing_left`]: no request started, or no HTTP/2
/// stream open) and no byte written by its socket (`written`) for a while: [`LINGER`] if it
/// never started a request, else `stall` (the stall limit; zero: never). hyper closes an
/// HTTP/2 connection only once its client answers the PING, and one that never does is
/// dropped then rather than held until the drain's grace period ends.
///
/// The wait is the stall limit, not a second, once the connection has served a request: an
/// answer whose stream task has ended may still sit in h2's send buffer (an API answer up to the
/// connection's queue bound, see [`crate::http::queued`]; a download's last frames, up to
/// [`crate::http::server::STREAM_SEND_BUFFER`] and one more) and go
/// out as the client's TCP window opens, in bursts (the socket takes at most 64 KiB unsent, see
/// [`crate::http::socket`]) far apart for a slow client; a client taking less than that within
/// the stall limit would be closed by the write stall timer anyway. (With a one-second wait, a
/// 15 KB/s reader lost the last 385 KB of a 500 KB download to the drain's or the idle timer's
/// GOAWAY, silently.)
pub async fn linger(activity: &Activity, written: &Written, stall: Duration) {
    let mut quiet = Duration::ZERO;
    let mut before = None;
    loop {
        let wait = if !activity.started_any() {
            LINGER
        } else if stall.is_zero() {
            Duration::MAX
        } else {
            stall
        };
        let look = wait / 4;
        tokio::time::sleep(look).await;
        let now = activity.nothing_left(written);
        quiet = if now.is_some() && now == before {
            quiet + look
        } else {
            Duration::ZERO
        };
        if quiet >= wait {
            return;
        }
        before = now;
    }
}

/// Completes when the connection has been silent too long: no request within `first` of its
/// start (a connection that never sends a whole request head), then none open and none
/// started during a whole `idle` period. One timer per period, none per request; the
/// connection closes between one and two periods after its last request.
pub async fn idle(activity: &Activity, first: Duration, idle: Duration) -> Silence {
    tokio::time::sleep(first).await;
    let mut seen = activity.started();
    if seen == 0 {
        return Silence::NoRequest;
    }
    loop {
        tokio::time::sleep(idle).await;
        let started = activity.started();
        if activity.open() == 0 && started == seen {
            return Silence::Idle;
        }
        seen = started;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_peers_open_requests_leave_room_for_another_peers() {
        let streams = Streams::new(8);
        let flooder = IpAddr::from([127, 0, 0, 2]);
        let held: Vec<_> = (0..8).map(|_| streams.take(flooder)).collect();
        // Alone, a peer holds half the places; its requests past that are over the cap.
        let placed: Vec<bool> = held.iter().map(Option::is_some).collect();
        assert_eq!(placed, [true, true, true, true, false, false, false, false]);
        assert_eq!(streams.open(), 4);
        let newcomer = streams.take(IpAddr::from([127, 0, 0, 3]));
        assert!(newcomer.is_some());
        assert_eq!(streams.open(), 5);
        drop((held, newcomer));
        assert_eq!(streams.open(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_connection_is_idle_after_the_first_wait() {
        let activity = Activity::default();
        let started = tokio::time::Instant::now();
        let why = idle(&activity, Duration::from_secs(10), Duration::from_secs(60)).await;
        assert_eq!(started.elapsed(), Duration::from_secs(10));
        assert_eq!(why, Silence::NoRequest);
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_that_served_a_request_follows_the_idle_timeout() {
        let activity = Arc::new(Activity::default());
        drop(activity.request_started(false, None));
        let started = tokio::time::Instant::now();
        let why = idle(&activity, Duration::from_secs(10), Duration::from_secs(60)).await;
        assert_eq!(started.elapsed(), Duration::from_secs(70));
        assert_eq!(why, Silence::Idle);
    }

    #[tokio::test(start_paused = true)]
    async fn a_closing_connection_is_dropped_once_it_has_had_nothing_left_for_its_wait() {
        use tokio::time::{timeout, Instant};
        const STALL: Duration = Duration::from_secs(10);
        // No request ever: dropped after a second.
        let written = Written::default();
        let silent = Activity::default();
        let started = Instant::now();
        linger(&silent, &written, STALL).await;
        assert!(started.elapsed() >= LINGER, "{:?}", started.elapsed());
        assert!(started.elapsed() <= LINGER * 2, "{:?}", started.elapsed());
        // HTTP/2 with a stream open: kept; once it ends, dropped a whole stall limit later.
        let busy = Arc::new(Activity::default());
        let open = busy.request_started(true, None);
        let lingering = linger(&busy, &written, STALL);
        tokio::pin!(lingering);
        assert!(timeout(STALL * 10, &mut lingering).await.is_err());
        drop(open);
        let ended = Instant::now();
        lingering.await;
        assert!(ended.elapsed() >= STALL, "{:?}", ended.elapsed());
        assert!(ended.elapsed() <= STALL * 2, "{:?}", ended.elapsed());
        // The last of an answer leaving h2's buffer for a slow client, in bursts seconds apart
        // (each within the stall limit): kept.
        let writing = async {
            loop {
                tokio::time::sleep(STALL / 3).await;
                written.add(32 * 1024);
            }
        };
        tokio::select! {
            () = linger(&busy, &written, STALL) => panic!("dropped while writing"),
            () = tokio::time::sleep(STALL * 10) => {}
            () = writing => {}
        }
        // No stall limit: never, once it served a request.
        assert!(timeout(STALL * 10, linger(&busy, &written, Duration::ZERO))
            .await
            .is_err());
        // HTTP/1.1 that started a request: never (its answer may still be being written;
        // hyper closes it itself once done).
        let http1 = Arc::new(Activity::default());
        drop(http1.request_started(false, None));
        assert!(timeout(STALL * 10, linger(&http1, &written, STALL))
            .await
            .is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn open_requests_keep_a_connection_alive() {
        let activity = Arc::new(Activity::default());
        let _open = activity.request_started(false, None);
        let watch = idle(&activity, Duration::from_secs(10), Duration::from_secs(60));
        let waited = tokio::time::timeout(Duration::from_secs(600), watch).await;
        assert!(waited.is_err(), "never idle while a request is open");
    }
}
