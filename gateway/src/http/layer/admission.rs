//! Admission: places for API work, shared fairly, refused at once when taken.
//!
//! Two stages use it (see [`crate::http::server`]): before authentication by the TCP peer's
//! address, after it by tenant. At each, a key (a peer, a tenant) may hold at most
//! `capacity / (other keys holding places + 2)` places (at least one), so however many places
//! one key asks for, a newcomer always finds one free. A request finding no place is answered
//! at once with 503 and `Retry-After: 1` (gRPC `UNAVAILABLE`): queueing it would only let the
//! one who filled the service decide how long everyone waits. Probes (`/health`, `/ready`,
//! the gRPC health check) and the embedded store's object transfers never take a place.
//!
//! Over HTTP/2 an answer larger than one frame ([`CHUNK`]) keeps its place until hyper has
//! handed its last frame to the connection (or dropped it): a client that never reads its
//! answers holds at most its share of them. Such an answer is handed over frame by frame, so
//! hyper takes the next one only when the client's window has room, and once it is not
//! finished after its first frame it arms the stream's progress watch
//! ([`crate::http::watch`]): no frame taken for the stream idle limit resets the stream,
//! freeing its memory and its place. A smaller answer goes to hyper whole (its body once its
//! connection has room, see [`crate::http::queued`]), its admission place given back, as over
//! HTTP/1.1 (if it then waits for the client's window, the stream is reset
//! at the same limit: see [`crate::http::watch`]); until it is taken it keeps its place among
//! the requests open on all connections ([`super::connection::Streams`]), which bounds the
//! small answers nobody reads. Its bytes not yet taken count against the
//! byte budget of [`Unsent`]: once that is full, a peer holding its fair share of it has new API
//! requests shed like a peer holding its share of places, and an answer of it finished
//! meanwhile is replaced by that 503 (the work is lost, the memory bound kept); a peer under its
//! share is served, dropping answers whose clients fell behind the floor rate (of peers over
//! their share) to make room, or shed if there are not enough of those.
//!
//! Over HTTP/2 every frame also waits for room in what its connection queues before the socket
//! writes ([`crate::http::queued`]), as a whole answer does in the connection layer: h2 takes
//! a frame as soon as the window has room, whether or not the socket can write it, so a client
//! that opens a wide window and stops reading its socket would otherwise have all of its answers
//! leave the budget at once and sit queued on the connection.
//!
//! Over HTTP/1.1 an answer larger than one frame is paced by its connection's socket
//! ([`Written`]): hyper gets its next frame only once the socket has written to the kernel all
//! it was handed before, so at most about one frame beyond what the kernel took sits in
//! hyper's buffer, and the answer is charged to the same budget, its bytes given back as the
//! socket writes them. It keeps its place (this stage's) until its last frame is handed over.
//! Dropped to make room, its connection is closed (HTTP/1.1 cannot reset one answer) by
//! [`Signal::closes`](super::unsent::Signal::closes); left unread, the socket's stall timer
//! closes the connection ([`crate::http::socket`]). An
//! answer of one frame or less goes to hyper whole, as before: nothing more per request than
//! taking the socket's count from the request.
//!
//! `/metrics` is an answer like any other: it takes a place, is paced, and is charged to the
//! byte budget (a scrape is bigger than one frame once there are many series). Exempt, a client
//! asking scrapes it never reads held a whole scrape per place it holds (2048 of 141 KB:
//! 300 MiB); charged, it is shed once it holds its share of the budget, while a scraper on
//! another address, under its share, is still served.

use super::body::early;
use super::observe::{PacedEnd, Unfinished};
use super::unsent::{Charge, Refused, Unsent};
use super::{meta, reply, Req, Res};
use crate::api::error::{ApiError, Code};
use crate::auth::Tenant;
use crate::http::queued::RoomWait;
use crate::http::response::Body;
use crate::http::server::Call;
use crate::http::shares::{Key, Shares, Ticket};
use crate::http::socket::Written;
use bytes::Bytes;
use futures_util::future::Either;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use pin_project_lite::pin_project;
use std::convert::Infallible;
use std::future::{ready, Future, Ready};
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tower::{Layer, Service};

/// The largest data frame an HTTP/2 answer hands to hyper at once (h2's default frame size).
pub const CHUNK: usize = 16 * 1024;

/// The 503 of the byte budget ([`Unsent`]), saying which of its rules refused.
fn budget_full(why: Refused) -> ApiError {
    let message = match why {
        Refused::Share => {
            "answers waiting to be sent fill the memory kept for them, and this client holds its \
             fair share of it or more; retry"
        }
        Refused::Bound => "answers waiting to be sent fill all the memory kept for them; retry",
        Refused::Busy => {
            "answers waiting to be sent fill the memory kept for them, and the other clients' \
             answers are being taken at the floor rate (64 KiB/s) or more, or are too new to \
             tell: none is dropped for this one; retry"
        }
    };
    ApiError::new(Code::Overloaded, message).with_retry_after(1)
}

pub(super) fn overloaded() -> ApiError {
    ApiError::new(
        Code::Overloaded,
        "too many requests in flight from this client or in all; retry",
    )
    .with_retry_after(1)
}

/// What a stage counts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    /// The TCP peer address (the request's [`super::Meta`]).
    Peer,
    /// The authenticated tenant (the [`Tenant`] extension), else [`Key::Anyone`].
    Tenant,
}

/// One admission stage. Tenants are told apart by a hash of their name keyed at random per
/// process: two tenants would share one count only if their 64-bit hashes met, which nobody
/// can aim at.
#[derive(Debug, Clone)]
pub struct AdmissionLayer {
    shares: Arc<Shares>,
    by: By,
    hasher: RandomState,
    idle: Duration,
    unsent: Option<Arc<Unsent>>,
}

impl AdmissionLayer {
    /// A stage counting by `by` in `shares`.
    #[must_use]
    pub fn new(shares: Arc<Shares>, by: By) -> Self {
        Self {
            shares,
            by,
            hasher: RandomState::new(),
            idle: Duration::ZERO,
            unsent: None,
        }
    }

    /// Keeps to the byte budget `unsent`: the stage counting by peer (outer) sheds new API
    /// requests of a peer at its budget (or of anyone at the total); the stage counting by
    /// tenant (inner, where an HTTP/2 answer is paced) charges the answers it paces, or answers
    /// 503 in their place past the budget. Give the same `unsent` to both stages.
    #[must_use]
    pub fn budget(mut self, unsent: Arc<Unsent>) -> Self {
        self.unsent = Some(unsent);
        self
    }

    /// Resets an HTTP/2 stream whose answer makes no progress for `idle` (the stream idle
    /// limit; zero: never). See the module doc.
    #[must_use]
    pub fn watching(mut self, idle: Duration) -> Self {
        self.idle = idle;
        self
    }
}

impl<S> Layer<S> for AdmissionLayer {
    type Service = Admission<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Admission {
            inner,
            shares: self.shares.clone(),
            by: self.by,
            hasher: self.hasher.clone(),
            idle: self.idle,
            unsent: self.unsent.clone(),
        }
    }
}

/// The service of [`AdmissionLayer`].
#[derive(Debug, Clone)]
pub struct Admission<S> {
    inner: S,
    shares: Arc<Shares>,
    by: By,
    hasher: RandomState,
    idle: Duration,
    unsent: Option<Arc<Unsent>>,
}

impl<S> Service<Req> for Admission<S>
where
    S: Service<Req, Response = Res, Error = Infallible>,
{
    type Response = Res;
    type Error = Infallible;
    type Future = Either<Ready<Result<Res, Infallible>>, Holding<S::Future>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Req) -> Self::Future {
        let call = Call::from_request(&req);
        if call.is_exempt() {
            return Either::Right(Holding {
                inner: self.inner.call(req),
                ticket: None,
                h2: false,
                idle: Duration::ZERO,
                budget: None,
                written: None,
            });
        }
        let h2 = req.version() == http::Version::HTTP_2;
        // The stage that paces takes the socket's count (no clone): over HTTP/1.1 to pace by,
        // over HTTP/2 to bound what the connection queues; an answer to `HEAD` sends no body
        // (hyper drops it over HTTP/1.1, the connection layer over HTTP/2): never paced.
        let (peer, written) = if self.by == By::Tenant && req.method() != http::Method::HEAD {
            req.extensions_mut()
                .get_mut::<super::Meta>()
                .map_or((None, None), |m| (m.peer, m.written.take()))
        } else {
            (meta(&req).and_then(|m| m.peer), None)
        };
        if let Some(unsent) = self.unsent.as_ref() {
            if self.by == By::Peer && !unsent.admits(peer) {
                return Either::Left(ready(Ok(early(
                    reply(call, budget_full(Refused::Share)),
                    req,
                ))));
            }
        }
        let key = match self.by {
            By::Peer => peer.map_or(Key::Anyone, Key::Peer),
            By::Tenant => req.extensions().get::<Tenant>().map_or(Key::Anyone, |t| {
                Key::Tenant(self.hasher.hash_one(t.folder().as_str()))
            }),
        };
        match self.shares.place(key).ok_or_else(overloaded) {
            Ok(ticket) => Either::Right(Holding {
                // An answer is paced by the inner stage only (the outer one gets it boxed):
                // only there is it charged.
                budget: self
                    .unsent
                    .as_ref()
                    .filter(|_| (h2 || written.is_some()) && self.by == By::Tenant)
                    .map(|u| (u.clone(), peer, call)),
                written,
                h2,
                idle: self.idle,
                inner: self.inner.call(req),
                ticket: Some(ticket),
            }),
            Err(e) => Either::Left(ready(Ok(early(reply(call, e), req)))),
        }
    }
}

pin_project! {
    /// The inner future, holding its place until it is done (or dropped); a response whose
    /// body is still to come (a stream: server reflection) holds it until that body ends, so
    /// streams are admitted like any call, not only their first response head. An answer over
    /// one frame (over HTTP/2, or over HTTP/1.1 with its socket's count `written`) holds it
    /// until hyper has taken its last frame ([`Paced`]).
    pub struct Holding<F> {
        #[pin]
        inner: F,
        ticket: Option<Ticket>,
        h2: bool,
        idle: Duration,
        budget: Option<(Arc<Unsent>, Option<IpAddr>, Call)>,
        written: Option<Arc<Written>>,
    }
}

impl<F: Future<Output = Result<Res, Infallible>>> Future for Holding<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let Poll::Ready(Ok(response)) = this.inner.poll(cx) else {
            return Poll::Pending;
        };
        let Some(ticket) = this.ticket.take() else {
            return Poll::Ready(Ok(response));
        };
        if response.body().is_end_stream() {
            return Poll::Ready(Ok(response));
        }
        // A whole answer larger than one frame: handed over frame by frame, its progress
        // watched (HTTP/2) or paced by its socket (HTTP/1.1). A smaller one goes at once.
        let paced = response
            .body()
            .whole_len()
            .filter(|&n| (*this.h2 || this.written.is_some()) && n > CHUNK);
        if let Some(bytes) = paced {
            let idle = *this.idle;
            let charge = match this.budget.take() {
                Some((unsent, peer, call)) => {
                    match unsent.try_charge(peer, bytes) {
                        Ok(charge) => Some(charge),
                        // Past the byte budget since it was admitted: the answer is dropped,
                        // its memory freed, and the client told why.
                        Err(why) => return Poll::Ready(Ok(reply(call, budget_full(why)))),
                    }
                }
                None => None,
            };
            let pace = match this.written.take() {
                Some(written) if !*this.h2 => {
                    // Over HTTP/1.1, which cannot reset one answer, its connection is closed if
                    // the answer is dropped to make room: by the signal, at once.
                    if let Some(charge) = &charge {
                        charge.signal().closes(&written);
                    }
                    Pace::Socket {
                        written,
                        base: None,
                        handed: 0,
                        given: 0,
                    }
                }
                queue => Pace::Window {
                    handed: [0; 2],
                    queue,
                },
            };
            let mut response = response;
            let end = PacedEnd::on(&mut response);
            return Poll::Ready(Ok(response.map(|body| {
                Body::new(Paced {
                    inner: body,
                    guard: ticket,
                    charge,
                    rest: None,
                    next: None,
                    room: None,
                    pace,
                    idle,
                    watch: None,
                    end,
                })
            })));
        }
        // Any other whole answer (REST's JSON, a unary gRPC reply with its trailer) is all in
        // memory and goes at once: its place is given back now. A boxed body is a stream, or
        // over HTTP/2 an inner stage's `Paced`: held as long.
        let boxed = response.body().whole_len().is_none();
        let held = boxed && (*this.h2 || response.body().size_hint().exact().is_none());
        if !held {
            return Poll::Ready(Ok(response));
        }
        Poll::Ready(Ok(response.map(|body| {
            Body::new(Held {
                inner: body,
                guard: Some(ticket),
            })
        })))
    }
}

pin_project! {
    /// A response body that keeps `guard` (an admission place) until the body ends or is
    /// dropped: what admission hands back with a streamed answer. (Transfer slots go with a
    /// download's own body, [`super::transfer::Download`], which also watches its progress.)
    pub(crate) struct Held<G> {
        #[pin]
        pub(crate) inner: Body,
        pub(crate) guard: G,
    }
}

impl<G> HttpBody for Held<G> {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.project().inner.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// What paces a [`Paced`] answer and tells how much of it was taken.
enum Pace {
    /// HTTP/2's flow control, through hyper asking for frames: the lengths of the last two
    /// frames handed over, still charged (older first); and the connection's socket count, a
    /// frame handed over only once the connection has room for it in what it queues before
    /// the socket writes ([`Written::poll_room`]).
    Window {
        handed: [usize; 2],
        queue: Option<Arc<Written>>,
    },
    /// HTTP/1.1: the connection's socket. `base` is its count when the answer's first frame
    /// was asked for; `handed` the bytes handed over since, `given` those given back.
    Socket {
        written: Arc<Written>,
        base: Option<u64>,
        handed: u64,
        given: u64,
    },
}

impl Pace {
    /// Over HTTP/1.1: `Pending` until the socket has written all that was handed over (the
    /// task woken then, once), else the bytes taken since the last call. Over HTTP/2: the
    /// frame before the last was taken.
    fn taken(&mut self, cx: &mut Context<'_>) -> Poll<usize> {
        match self {
            Self::Window { handed, .. } => {
                let taken = handed[0];
                *handed = [handed[1], 0];
                Poll::Ready(taken)
            }
            Self::Socket {
                written,
                base,
                handed,
                given,
            } => {
                let base = *base.get_or_insert_with(|| written.bytes());
                let now = ready!(written.poll_reached(cx, base.saturating_add(*handed)));
                let took = now.saturating_sub(base).min(*handed);
                let new = took.saturating_sub(*given);
                *given = took;
                Poll::Ready(usize::try_from(new).unwrap_or(usize::MAX))
            }
        }
    }

    /// A frame of `len` bytes is handed over.
    fn handed(&mut self, len: usize) {
        match self {
            Self::Window { handed, .. } => handed[1] = len,
            Self::Socket { handed, .. } => {
                *handed = handed.saturating_add(u64::try_from(len).unwrap_or(u64::MAX));
            }
        }
    }

    /// Over HTTP/2: the connection whose queue a frame waits for room in.
    fn queue(&self) -> Option<&Written> {
        match self {
            Self::Window { queue, .. } => queue.as_deref(),
            Self::Socket { .. } => None,
        }
    }

    /// Over HTTP/1.1: the socket's stall timer closed the connection.
    fn stalled(&self) -> bool {
        matches!(self, Self::Socket { written, .. } if written.stalled())
    }
}

pin_project! {
    /// A whole answer handed to hyper in frames of at most [`CHUNK`] bytes, keeping `guard`
    /// (its places) until hyper has taken the last one or dropped it.
    ///
    /// Over HTTP/2: when it is not finished after a frame, the stream's watch is armed for
    /// `idle` (zero: never) and each later frame is progress. hyper asks for a frame as soon
    /// as it handed the one before to h2, and hands it over only once h2 has window for all
    /// the frames before it: so a frame's bytes stay charged until the frame after the next is
    /// asked for. The last byte of the data goes as a frame of its own, so that hyper (whose
    /// stream task ends with the last frame) waits for window for all the rest while the watch
    /// can still reset the stream. An answer chosen to be dropped to make room ([`Unsent`])
    /// hands nothing more and has its watch reset it.
    ///
    /// Over HTTP/1.1 ([`Pace::Socket`]): a frame is handed over only once the socket has
    /// written all handed before, and bytes are given back as it writes them; the last byte
    /// goes alone too, so all the rest is written (and counted) before hyper, having its
    /// whole length, drops the body. Dropped to make room, it hands nothing more; its
    /// connection is closed by its [`Charge`]'s signal (the one owner of that close, see
    /// [`super::unsent::Signal::closes`]), not here: while its client reads nothing the answer
    /// waits for the socket's count and is not polled, so only the chooser can close at once.
    struct Paced {
        #[pin]
        inner: Body,
        guard: Ticket,
        charge: Option<Charge>,
        rest: Option<Bytes>,
        // The next frame, made and waiting for room on its connection (HTTP/2).
        next: Option<Frame<Bytes>>,
        room: Option<RoomWait>,
        pace: Pace,
        idle: Duration,
        watch: Option<Arc<crate::http::watch::Watch>>,
        // Its access-log line and metrics, written at its end (observe layer).
        end: Option<PacedEnd>,
    }

    impl PinnedDrop for Paced {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Some(end) = this.end.take() {
                let made_room = this.charge.as_ref().is_some_and(|c| c.signal().dropped());
                let stalled =
                    this.watch.as_ref().is_some_and(|w| w.stalled()) || this.pace.stalled();
                end.unfinished(if made_room {
                    Unfinished::MadeRoom
                } else if stalled {
                    Unfinished::Stalled
                } else {
                    Unfinished::ClientLeft
                });
            }
        }
    }
}

impl HttpBody for Paced {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let mut this = self.project();
        if let Some(charge) = this.charge.as_mut() {
            if charge.signal().dropped() {
                if let Pace::Socket { .. } = this.pace {
                    // Its signal closed its connection when it was chosen (see
                    // `Signal::closes`): hyper's next IO on the socket fails.
                    return Poll::Pending;
                }
                // Its watch (armed by the signal, or now if chosen before its first frame)
                // ends the stream task in a moment.
                if this.watch.is_none() {
                    if let Some(watch) = crate::http::watch::current() {
                        charge.signal().watched_by(&watch);
                        *this.watch = Some(watch);
                    }
                }
                return Poll::Pending;
            }
        }
        if this.next.is_none() {
            let taken = ready!(this.pace.taken(cx));
            if let Some(charge) = this.charge.as_mut() {
                charge.taken(taken);
            }
            let frame = match this.rest.take() {
                Some(rest) => Frame::data(rest),
                None => match this.inner.as_mut().poll_frame(cx) {
                    Poll::Ready(Some(Ok(frame))) => frame,
                    Poll::Ready(None) => {
                        if let Some(end) = this.end.take() {
                            end.finished();
                        }
                        return Poll::Ready(None);
                    }
                    other => return other,
                },
            };
            *this.next = Some(match frame.into_data() {
                Ok(mut data) => {
                    if data.len() > CHUNK {
                        *this.rest = Some(data.split_off(CHUNK));
                    } else if this.rest.is_none() && data.len() > 1 {
                        // The last byte alone, last (see the type's doc).
                        *this.rest = Some(data.split_off(data.len() - 1));
                    }
                    Frame::data(data)
                }
                Err(frame) => frame,
            });
        }
        // Over HTTP/2, handed over once its connection has room.
        let len = this.next.as_ref().and_then(Frame::data_ref).map(Bytes::len);
        if let Some(queue) = this.pace.queue() {
            let bytes = this
                .next
                .as_ref()
                .map_or(0, crate::http::queued::least_frame_len);
            ready!(queue.poll_room(cx, bytes, this.room));
        }
        let Some(frame) = this.next.take() else {
            // Never: made above.
            return Poll::Pending;
        };
        if let Some(len) = len {
            this.pace.handed(len);
        }
        match this.watch {
            Some(watch) => watch.progress(),
            // Runs in the stream's task (hyper polls the body there): its watch. An answer of
            // more than one frame is never finished after its first.
            None => {
                if let Some(watch) = crate::http::watch::current() {
                    if !this.idle.is_zero() {
                        watch.arm(*this.idle);
                    }
                    if let Some(charge) = this.charge {
                        charge.signal().watched_by(&watch);
                    }
                    *this.watch = Some(watch);
                }
            }
        }
        if this.rest.is_none() && this.inner.is_end_stream() {
            if let Some(end) = this.end.take() {
                end.finished();
            }
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.next.is_none() && self.rest.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let held = [
            self.rest.as_ref(),
            self.next.as_ref().and_then(Frame::data_ref),
        ];
        let held = held.into_iter().flatten().map(|d| d.len() as u64).sum();
        crate::http::response::hint_with(&self.inner.size_hint(), held)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_streamed_response_holds_its_place_until_its_body_ends() {
        let shares = Shares::new(4);
        let key = Key::Peer(IpAddr::from([127, 0, 0, 2]));
        let (sender, streamed) =
            crate::api::grpc::stream::channel(1, crate::api::grpc::stream::End::Trailers);
        let held = Holding {
            inner: ready(Ok::<_, Infallible>(Res::new(Body::new(streamed)))),
            ticket: Some(shares.place(key).unwrap()),
            h2: false,
            idle: Duration::ZERO,
            budget: None,
            written: None,
        };
        let response = held.await.unwrap();
        assert_eq!(shares.held(), 1, "the stream still holds its place");
        drop(sender);
        drop(response);
        assert_eq!(shares.held(), 0);
        // A whole answer gives its place back at once.
        let unary = Holding {
            inner: ready(Ok::<_, Infallible>(Res::new(crate::http::response::full(
                Bytes::from_static(b"x"),
            )))),
            ticket: Some(shares.place(key).unwrap()),
            h2: false,
            idle: Duration::ZERO,
            budget: None,
            written: None,
        };
        let _response = unary.await.unwrap();
        assert_eq!(shares.held(), 0);
        // So does a small one over HTTP/2: it goes in one frame.
        let small = Holding {
            inner: ready(Ok::<_, Infallible>(Res::new(crate::http::response::full(
                Bytes::from(vec![7_u8; CHUNK]),
            )))),
            ticket: Some(shares.place(key).unwrap()),
            h2: true,
            idle: Duration::ZERO,
            budget: None,
            written: None,
        };
        let _response = small.await.unwrap();
        assert_eq!(shares.held(), 0);
    }

    #[tokio::test]
    async fn an_http2_answer_holds_its_place_until_its_last_chunk_is_taken() {
        use http_body_util::BodyExt;
        let shares = Shares::new(4);
        let key = Key::Peer(IpAddr::from([127, 0, 0, 2]));
        let whole = Bytes::from(vec![7_u8; CHUNK * 2 + 5]);
        let unsent = Unsent::new(1 << 20);
        let held = Holding {
            inner: ready(Ok::<_, Infallible>(Res::new(crate::http::response::full(
                whole.clone(),
            )))),
            ticket: Some(shares.place(key).unwrap()),
            h2: true,
            idle: Duration::ZERO,
            budget: Some((unsent.clone(), None, Call::Rest(None))),
            written: None,
        };
        let mut body = held.await.unwrap().into_body();
        assert_eq!(body.size_hint().exact(), Some(whole.len() as u64));
        let mut got = Vec::new();
        let mut lens = Vec::new();
        while let Some(frame) = body.frame().await {
            let data = frame.unwrap().into_data().unwrap();
            assert!(data.len() <= CHUNK);
            got.extend_from_slice(&data);
            lens.push(data.len());
            let left = !body.is_end_stream();
            assert_eq!(shares.held(), 1, "held while frames are left: {left}");
            // A frame counts until the one after the next is asked for (h2 may hold it).
            let taken: usize = lens.iter().rev().skip(2).sum();
            assert_eq!(unsent.total(), whole.len() - taken, "bytes not yet taken");
        }
        assert_eq!(got, whole);
        assert_eq!(lens, [CHUNK, CHUNK, 4, 1], "the last byte goes alone");
        drop(body);
        assert_eq!(shares.held(), 0);
        assert_eq!(unsent.total(), 0);
    }

    #[tokio::test]
    async fn an_http1_answer_gets_its_next_frame_once_its_socket_wrote_the_last() {
        use futures_util::FutureExt;
        use http_body_util::BodyExt;
        use tokio::io::AsyncWriteExt;
        let (_client, server_io) = tokio::io::duplex(1 << 20);
        let socket = crate::http::socket::Socket::new(server_io, false);
        let written = socket.written().clone();
        let mut io = hyper_util::rt::TokioIo::new(socket);
        let shares = Shares::new(4);
        let unsent = Unsent::new(1 << 20);
        let whole = Bytes::from(vec![7_u8; CHUNK * 2 + 5]);
        let held = Holding {
            inner: ready(Ok::<_, Infallible>(Res::new(crate::http::response::full(
                whole.clone(),
            )))),
            ticket: Some(shares.place(Key::Anyone).unwrap()),
            h2: false,
            idle: Duration::ZERO,
            budget: Some((unsent.clone(), None, Call::Rest(None))),
            written: Some(written.clone()),
        };
        let mut body = held.await.unwrap().into_body();
        assert_eq!(unsent.total(), whole.len(), "charged whole at start");
        let mut lens = Vec::new();
        loop {
            let frame = body.frame().await.unwrap().unwrap().into_data().unwrap();
            lens.push(frame.len());
            if body.is_end_stream() {
                break;
            }
            // Nothing more until the socket has written this frame (as hyper would).
            assert!(body.frame().now_or_never().is_none(), "after {lens:?}");
            io.write_all(&frame).await.unwrap();
            let taken: usize = lens.iter().sum();
            assert_eq!(written.bytes(), taken as u64);
            assert_eq!(shares.held(), 1);
            // Bytes are given back as written, when the answer is next polled: so far, all
            // handed over but this frame.
            assert_eq!(unsent.total(), whole.len() - taken + lens.last().unwrap());
        }
        assert_eq!(lens, [CHUNK, CHUNK, 4, 1], "the last byte goes alone");
        drop(body);
        assert_eq!((shares.held(), unsent.total()), (0, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_chosen_to_make_room_before_its_first_frame_has_its_stream_dropped() {
        use hyper::rt::Executor as _;
        let unsent = Unsent::new(400);
        let (hog, newcomer) = (
            Some(IpAddr::from([127, 0, 0, 2])),
            Some(IpAddr::from([127, 0, 0, 3])),
        );
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task_unsent = unsent.clone();
        crate::http::watch::Executor::default().execute(async move {
            use http_body_util::BodyExt;
            let shares = Shares::new(4);
            let held = Holding {
                inner: ready(Ok::<_, Infallible>(Res::new(crate::http::response::full(
                    Bytes::from(vec![7_u8; CHUNK * 2]),
                )))),
                ticket: Some(shares.place(Key::Anyone).unwrap()),
                h2: true,
                idle: Duration::ZERO,
                budget: Some((task_unsent.clone(), hog, Call::Rest(None))),
                written: None,
            };
            let mut body = held.await.unwrap().into_body();
            // The total is full: a newcomer's answer makes room by choosing this one, stale.
            tokio::time::sleep(super::super::unsent::STALE).await;
            let _mine = task_unsent.try_charge(newcomer, 100).unwrap();
            let _held = tx;
            let _ = body.frame().await;
            unreachable!("a chosen answer hands nothing more");
        });
        assert!(rx.await.is_err(), "the stream task is dropped");
        assert_eq!(unsent.total(), 0, "and its bytes given back");
    }
}
