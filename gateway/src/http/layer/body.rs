//! Reading API bodies before admission: a request takes an in-flight place only once its body
//! is whole, so places are held for work, never for a body trickling in.
//!
//! A body is read whole ([`Limit`]: the body size limits, checked as it arrives) within the
//! body-read timeout (the header timeout again; past it 408 `BODY_TIMEOUT`, gRPC
//! `DEADLINE_EXCEEDED`) and handed on as the [`Collected`] extension. Bodies being read are
//! bounded per TCP peer with the same fair share as places ([`Shares`]: one peer reads at most
//! `capacity / (other peers reading + 2)` at once; past it 503 `OVERLOADED` at once), so one
//! peer trickling many bodies cannot lock another out; they are also counted against the cap
//! on requests open on all connections ([`super::connection`]). Probes take no share and never
//! wait. Calls with no API body (object transfers, unknown paths, `GET`) pass untouched.
//!
//! The timer is armed only when the body is not there on the first poll.

use super::admission::overloaded;
use super::{meta, meta_mut, reply, Failed, Req, Res};
use crate::api::companion::Op;
use crate::api::error::{ApiError, Code, Kind};
use crate::api::grpc::codec::HEADER_LEN;
use crate::api::grpc::connect::Codec;
use crate::api::grpc::{multipart as grpc_multipart, Rpc};
use crate::api::multipart::rest as multipart;
use crate::api::rest::Route;
use crate::http::body::{self, Collected, Collector, Limit};
use crate::http::server::Call;
use crate::http::shares::{Key, Shares, Ticket};
use futures_util::future::Either;
use hyper::body::Body as _;
use pin_project_lite::pin_project;
use std::convert::Infallible;
use std::future::{ready, Future, Ready};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Sleep;
use tower::{Layer, Service};

/// Reads API bodies whole before the layers that take places.
#[derive(Debug, Clone)]
pub struct BodyLayer {
    shares: Arc<Shares>,
    limits: Limits,
}

/// The limits the body layer applies.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest REST body.
    pub json: usize,
    /// Largest gRPC message.
    pub grpc: usize,
    /// Time for the whole body to arrive.
    pub timeout: Duration,
}

impl BodyLayer {
    /// Bodies read at once shared by peer in `shares`, each within `limits`.
    #[must_use]
    pub fn new(shares: Arc<Shares>, limits: Limits) -> Self {
        Self { shares, limits }
    }
}

impl<S: Clone> Layer<S> for BodyLayer {
    type Service = ReadBody<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ReadBody {
            inner,
            shares: self.shares.clone(),
            limits: self.limits,
        }
    }
}

/// The service of [`BodyLayer`].
#[derive(Debug, Clone)]
pub struct ReadBody<S> {
    inner: S,
    shares: Arc<Shares>,
    limits: Limits,
}

impl<S> ReadBody<S> {
    /// What `call`'s body may hold, or `None` when it has no API body to read.
    fn limit(&self, call: Call, method: &http::Method) -> Option<Limit> {
        match call {
            // Streaming calls (server reflection) read their messages one by one.
            Call::Grpc(Some(rpc)) if rpc.is_unary() => Some(Limit::Grpc(self.grpc(rpc))),
            // gRPC-Web-text is base64 of one frame: 4 characters for every 3 bytes.
            Call::GrpcWeb(flavor, Some(rpc)) if flavor.is_text() => Some(Limit::Json(
                HEADER_LEN
                    .saturating_add(self.grpc(rpc))
                    .div_ceil(3)
                    .saturating_mul(4),
            )),
            Call::GrpcWeb(_, Some(rpc)) => Some(Limit::Grpc(self.grpc(rpc))),
            // Connect sends a bare message: protobuf up to the gRPC limit, JSON up to the
            // larger of the two limits.
            Call::Connect(Codec::Proto, Some(rpc)) => Some(Limit::Json(self.grpc(rpc))),
            Call::Connect(Codec::Json, Some(rpc)) => {
                Some(Limit::Json(self.limits.json.max(self.grpc(rpc))))
            }
            Call::Rest(Some(Route::Multipart(op))) if method == http::Method::POST => {
                Some(Limit::Json(multipart::max_body(op, self.limits.json)))
            }
            // Uppy's complete names every part, as ours may.
            Call::Rest(Some(Route::Companion(Op::Complete))) if method == http::Method::POST => {
                Some(Limit::Json(multipart::max_body(
                    multipart::Op::Complete,
                    self.limits.json,
                )))
            }
            // GET-only routes read no body: a POST gets its 405 whatever it sends.
            Call::Rest(Some(Route::Health | Route::Ready | Route::Metrics | Route::OpenApi)) => {
                None
            }
            Call::Rest(Some(_)) if method == http::Method::POST => {
                Some(Limit::Json(self.limits.json))
            }
            _ => None,
        }
    }

    /// The largest message `rpc` takes (a multipart complete may name 10 000 parts).
    fn grpc(&self, rpc: Rpc) -> usize {
        match rpc {
            Rpc::Multipart(call) => grpc_multipart::max_message(call, self.limits.grpc),
            _ => self.limits.grpc,
        }
    }
}

impl<S> Service<Req> for ReadBody<S>
where
    S: Service<Req, Response = Res, Error = Infallible> + Clone,
{
    type Response = Res;
    type Error = Infallible;
    type Future = Either<Ready<Result<Res, Infallible>>, Either<S::Future, Reading<S, S::Future>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Req) -> Self::Future {
        let call = Call::from_request(&req);
        let Some(limit) = self.limit(call, req.method()) else {
            return Either::Right(Either::Left(self.inner.call(req)));
        };
        // A gRPC or Connect client's deadline runs from now, its body's reading included.
        let deadline = client_deadline(call, req.headers());
        if let Some(d) = deadline {
            meta_mut(&mut req).deadline = Some(tokio::time::Instant::now() + d);
        }
        if let Err(e) = limit.check_declared(req.headers()) {
            return Either::Left(ready(Ok(refuse(call, e, req, false))));
        }
        if req.body().is_end_stream() {
            meta_mut(&mut req).body = Some(Collected::default());
            return Either::Right(Either::Left(self.inner.call(req)));
        }
        let ticket = if call.is_probe() {
            None
        } else {
            let key = meta(&req)
                .and_then(|m| m.peer)
                .map_or(Key::Anyone, Key::Peer);
            match self.shares.place(key).ok_or_else(overloaded) {
                Ok(ticket) => Some(ticket),
                Err(e) => return Either::Left(ready(Ok(early(reply(call, e), req)))),
            }
        };
        // The inner service is called once the body is whole: take the one that was made
        // ready, leave a clone (every service of the stack is always ready).
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        Either::Right(Either::Right(Reading::Body {
            state: Box::new(State {
                req: Some(req),
                inner: Some(inner),
                _ticket: ticket,
                collector: Collector::default(),
                limit,
                call,
                timeout: self.limits.timeout,
                deadline,
                timer: None,
            }),
        }))
    }
}

/// Bytes of a refused body read and thrown away after the answer, at most (see [`refuse`]).
pub const LINGER_BYTES: usize = 32 << 20;
/// Time a refused body is read and thrown away after the answer, at most.
pub const LINGER_TIME: Duration = Duration::from_secs(2);
/// Refused bodies read and thrown away at once on all connections, at most: past it a refused
/// body is dropped at once (the answer is still sent), so a flood of refusals holds no more
/// than `LINGER_SLOTS` × ([`LINGER_BYTES`], [`LINGER_TIME`]). The slots are shared by TCP peer
/// like admission's places ([`Shares`]): one peer holds at most half of them when alone, and
/// a newcomer always finds one, so a peer flooding refusals cannot make everyone else's early
/// answers lose their lingering.
pub const LINGER_SLOTS: usize = 64;

/// The refused bodies being read and thrown away on all connections.
static LINGERING: std::sync::LazyLock<Arc<Shares>> =
    std::sync::LazyLock::new(|| Shares::new(LINGER_SLOTS));

/// `e`, the answer to a body refused by its size (declared or as it came), made so that the
/// client reads it rather than a reset: the answer goes first, and the rest of the body is
/// read and thrown away in a task of its own ([`linger`]: at most [`LINGER_BYTES`] and
/// [`LINGER_TIME`]) while the answer is written, so a client still sending finishes and reads
/// it.
///
/// - HTTP/1.1: the answer says `Connection: close`; hyper closes the connection once the
///   lingering ends (a close with unread bytes is a TCP reset, which takes an unread answer
///   with it).
/// - HTTP/2: once the answer is sent and the lingering ends, h2 resets a stream the client is
///   still sending on with `NO_ERROR` (RFC 9113 §8.1). Some clients (curl 7.88) drop an answer
///   when a later DATA frame of theirs meets that reset: lingering lets them finish first.
///
/// A client that said `Expect: 100-continue` and was refused by its declared length has sent
/// nothing: its body is never read, so it never gets `100 Continue`. `polled` says whether the
/// body was asked for (hyper then sent `100 Continue`).
fn refuse(call: Call, e: ApiError, req: Req, polled: bool) -> Res {
    unread(reply(call, e), req, polled)
}

/// `answer`, sent while `req`'s body is still unread (a call refused from its head: by
/// protocol, method or media type, auth, admission, the body-reading share, an unknown route),
/// made so that the client reads it rather than a reset, the same bounded way as [`refuse`]:
/// the rest of the body is read and thrown away ([`LINGER_BYTES`], [`LINGER_TIME`]) while the
/// answer is written. Every answer given before a body is read goes through here. A body
/// already over (none, or read whole) is left as it is.
#[must_use]
pub fn early(answer: Res, req: Req) -> Res {
    if req.body().is_end_stream() {
        return answer;
    }
    unread(answer, req, false)
}

/// [`refuse`] and [`early`]: `answer`, `Connection: close` on HTTP/1.1, `req`'s body read and
/// thrown away in a task of its own (unless the client waits for `100 Continue` that was never
/// sent: `polled` says whether the body was asked for). The body is dropped at once instead
/// when the answer sheds load (`OVERLOADED`: lingering would hold what shedding frees) or when
/// no lingering slot is free for the peer ([`LINGER_SLOTS`], shared by peer).
fn unread(mut answer: Res, req: Req, polled: bool) -> Res {
    let h1 = req.version() <= http::Version::HTTP_11;
    let peer = meta(&req).and_then(|m| m.peer);
    let (head, body) = req.into_parts();
    let waiting = head
        .headers
        .get(http::header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    if h1 {
        answer.headers_mut().insert(
            http::header::CONNECTION,
            http::HeaderValue::from_static("close"),
        );
    }
    let shed = answer
        .extensions()
        .get::<Failed>()
        .is_some_and(|Failed(e)| e.kind() == Kind::Overloaded);
    if (polled || !waiting) && !shed {
        linger_rest(body, peer);
    }
    answer
}

/// Reads and throws away the rest of `body`, a stream refused in its middle (its answer
/// complete or on its way), the same bounded way as a refusal at its head ([`early`]), in
/// `peer`'s share of the lingering slots; dropped at once when none is free.
pub fn linger_rest(body: hyper::body::Incoming, peer: Option<std::net::IpAddr>) {
    if body.is_end_stream() {
        return;
    }
    if let Some(slot) = LINGERING.place(peer.map_or(Key::Anyone, Key::Peer)) {
        tokio::spawn(async move {
            linger(body, LINGER_BYTES, LINGER_TIME).await;
            drop(slot);
        });
    }
}

/// Reads and drops `body` for at most `bytes` and `time`, then drops it (hyper then closes the
/// connection, the answer having gone first).
async fn linger(mut body: hyper::body::Incoming, bytes: usize, time: Duration) {
    let read = async {
        let mut left = bytes;
        while let Some(Ok(frame)) =
            std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await
        {
            let len = frame.data_ref().map_or(0, bytes::Bytes::len);
            match left.checked_sub(len) {
                Some(rest) if rest > 0 => left = rest,
                _ => break,
            }
        }
    };
    let _ = tokio::time::timeout(time, read).await;
}

/// What reading a body holds: boxed, so that the future of every request (this layer's is
/// part of it, whether or not it reads a body) stays small.
pub struct State<S> {
    req: Option<Req>,
    inner: Option<S>,
    _ticket: Option<Ticket>,
    collector: Collector,
    limit: Limit,
    call: Call,
    timeout: Duration,
    /// The client's deadline, when sent (see [`client_deadline`]).
    deadline: Option<Duration>,
    timer: Option<Pin<Box<Sleep>>>,
}

/// The deadline a gRPC-family client sent with `call` (`grpc-timeout` for gRPC and gRPC-Web,
/// `Connect-Timeout-Ms` for Connect); `None` when absent or malformed (the adapter refuses a
/// malformed one).
fn client_deadline(call: Call, headers: &http::HeaderMap) -> Option<Duration> {
    match call {
        Call::Grpc(_) | Call::GrpcWeb(..) => crate::api::grpc::timeout(headers).ok().flatten(),
        Call::Connect(..) => crate::api::grpc::connect::timeout(headers).ok().flatten(),
        Call::Rest(_) | Call::Store => None,
    }
}

pin_project! {
    /// Reading the body (holding a reading share), then the inner service's future. The
    /// variants' fields are the reading state and the inner future (pin-project-lite takes no
    /// docs on them).
    #[allow(missing_docs)]
    #[project = ReadingProj]
    pub enum Reading<S, F> {
        /// The body is being read.
        Body { state: Box<State<S>> },
        /// The body is whole: the inner service works.
        Calling { #[pin] fut: F },
    }
}

impl<S> Future for Reading<S, S::Future>
where
    S: Service<Req, Response = Res, Error = Infallible>,
{
    type Output = Result<Res, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let next = match self.as_mut().project() {
                ReadingProj::Calling { fut } => return fut.poll(cx),
                ReadingProj::Body { state } => {
                    let State {
                        req,
                        inner,
                        collector,
                        limit,
                        call,
                        timeout,
                        deadline,
                        timer,
                        ..
                    } = &mut **state;
                    let Some(request) = req.as_mut() else {
                        return Poll::Ready(Ok(reply(*call, body::unreadable())));
                    };
                    match Pin::new(request.body_mut()).poll_frame(cx) {
                        Poll::Ready(Some(Ok(frame))) => {
                            if let Ok(data) = frame.into_data() {
                                if let Err(e) = limit.check(collector.push(data)) {
                                    let answer = match req.take() {
                                        Some(request) => refuse(*call, e, request, true),
                                        None => reply(*call, e),
                                    };
                                    return Poll::Ready(Ok(answer));
                                }
                            }
                            continue;
                        }
                        Poll::Ready(Some(Err(_))) => {
                            return Poll::Ready(Ok(reply(*call, body::unreadable())));
                        }
                        Poll::Ready(None) => {
                            let (Some(mut request), Some(mut service)) = (req.take(), inner.take())
                            else {
                                return Poll::Ready(Ok(reply(*call, body::unreadable())));
                            };
                            let whole = std::mem::take(collector).finish();
                            meta_mut(&mut request).body = Some(Collected(whole));
                            service.call(request)
                        }
                        Poll::Pending => {
                            // The body-read timeout, or the client's deadline if sooner.
                            let first = deadline.filter(|d| d < timeout);
                            let wait = first.unwrap_or(*timeout);
                            let timer =
                                timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(wait)));
                            if timer.as_mut().poll(cx).is_ready() {
                                let e = match first {
                                    Some(_) => ApiError::new(
                                        Code::DeadlineExceeded,
                                        "the client's deadline passed while its request body \
                                         was read",
                                    ),
                                    None => body::timed_out(*timeout),
                                };
                                return Poll::Ready(Ok(reply(*call, e)));
                            }
                            return Poll::Pending;
                        }
                    }
                }
            };
            // The reading share is given back here, before the inner service takes a place.
            self.set(Reading::Calling { fut: next });
        }
    }
}
