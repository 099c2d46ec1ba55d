//! Metrics and the log line of every request, outermost after the request id so that a shed
//! 503, a 401 or a refused protocol is counted and logged like any answer.
//!
//! Levels: ERROR only for what an operator must act on ([`ApiError::is_server_side`]); every
//! client fault (4xx, a deadline the client set, a body too slow, a shed request) at INFO,
//! at most [`LINES_PER_SECOND`] lines a second (see [`super::log_budget`]);
//! successes at DEBUG (the access log, `DRAFTSTORE_LOG=info,draftstore_gateway::server=debug`).
//! Method, path and message go through [`Escaped`]: cut and escaped.
//!
//! Whether the client left or the server cut a call off is decided here, once for every kind of
//! call: a call that ends unfinished ([`StreamCancelled`](Code::StreamCancelled): its future or
//! its answer's body dropped, its stream reset) after the server's drain ended
//! ([`DrainEnd::cut`]) was cut by the server, and is recorded as 503 `DRAIN_CUT`.

use super::escape::Escaped;
use super::log_budget::{Take, CLIENT_FAULTS, LINES_PER_SECOND};
use super::{meta_mut, Failed, Req, Res};
use crate::api::error::{ApiError, Code};
use crate::http::drain::DrainEnd;
use crate::http::response::RequestId;
use crate::http::server::Call;
use crate::http::watch::{Asked, Reset};
use crate::metrics::CallSeries;
use pin_project_lite::pin_project;
use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::Instant;
use tower::{Layer, Service};
use tracing::instrument::Instrumented;
use tracing::Instrument;

/// The log target of the request lines (documented: `draftstore_gateway::server=debug` turns
/// the access log on).
const TARGET: &str = "draftstore_gateway::http::server";

/// Longest error message written to the log (it may quote an object name).
const MESSAGE_BUDGET: usize = 512;

/// Classifies each request once ([`Call`], put in its extensions), counts it and logs it.
#[derive(Debug, Clone)]
pub struct ObserveLayer {
    shared: Arc<Shared>,
}

/// What every request's record reads, shared by all: one clone per request.
#[derive(Debug)]
struct Shared {
    series: Series,
    /// The end of the server's drain: a call left unfinished once it is cut was cut by the
    /// server, not by its client.
    drain: DrainEnd,
}

/// Every call's series, looked up once per request: foldhash rather than std's SipHash, as the
/// keys are our own calls (a fixed set), not something a client could aim at.
type Series = HashMap<Call, CallSeries, foldhash::fast::RandomState>;

impl ObserveLayer {
    /// With a metrics series made up front for every [`Call`]; a call left unfinished once
    /// `drain` is cut is recorded as cut by the server (503 `DRAIN_CUT`, see the module doc).
    #[must_use]
    pub fn new(drain: DrainEnd) -> Self {
        Self {
            shared: Arc::new(Shared {
                series: Call::all()
                    .map(|call| (call, call.series()))
                    .collect::<Series>(),
                drain,
            }),
        }
    }
}

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Observe {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// The service of [`ObserveLayer`].
#[derive(Debug, Clone)]
pub struct Observe<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> Service<Req> for Observe<S>
where
    S: Service<Req, Response = Res, Error = Infallible>,
{
    type Response = Res;
    type Error = Infallible;
    type Future = Observed<Instrumented<S::Future>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Req) -> Self::Future {
        let call = Call::of(req.uri().path(), req.headers());
        let h2 = req.version() == http::Version::HTTP_2;
        let meta = meta_mut(&mut req);
        meta.call = Some(call);
        let id = meta.id.clone();
        let method = req.method().clone();
        // Cheap: the URI shares the request head's buffer.
        let uri = req.uri().clone();
        // At debug level every line of this request (S3 retries included) carries its id; at
        // the default level the one line per error names it explicitly, and the span is free.
        let span = match &id {
            Some(id) => tracing::debug_span!("request", request_id = %id),
            None => tracing::Span::none(),
        };
        let metrics = crate::metrics::get();
        metrics.in_flight.inc();
        Observed {
            inner: self.inner.call(req).instrument(span),
            seen: Some(Seen {
                call,
                id,
                method,
                uri,
                h2,
                started: Instant::now(),
                shared: self.shared.clone(),
            }),
            _gauge: InFlight,
        }
    }
}

/// What the log line and the metrics need once the response is there.
struct Seen {
    call: Call,
    id: Option<RequestId>,
    method: http::Method,
    uri: http::Uri,
    /// Over HTTP/2: only a stream task keeps its request ([`crate::http::watch::remember`]).
    h2: bool,
    started: Instant,
    shared: Arc<Shared>,
}

/// The request id as the log writes it (empty when there is none), formatted only when a line
/// is written.
#[derive(Clone, Copy)]
struct IdText<'a>(Option<&'a RequestId>);

impl std::fmt::Display for IdText<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(id) => id.fmt(f),
            None => Ok(()),
        }
    }
}

/// Keeps `draftstore_requests_in_flight` right even when a request is dropped unanswered.
struct InFlight;

impl Drop for InFlight {
    fn drop(&mut self) {
        crate::metrics::get().in_flight.dec();
    }
}

pin_project! {
    /// The inner future, observed when it completes, or when it is dropped unfinished (the
    /// client reset the stream or closed the connection before the answer was ready: hyper
    /// drops the future, and the call, which may have changed state, is still logged and
    /// counted, as `STREAM_CANCELLED`).
    pub struct Observed<F> {
        #[pin]
        inner: F,
        seen: Option<Seen>,
        _gauge: InFlight,
    }

    impl<F> PinnedDrop for Observed<F> {
        fn drop(this: Pin<&mut Self>) {
            if let Some(seen) = this.project().seen.take() {
                seen.cancelled();
            }
        }
    }
}

impl<F: Future<Output = Result<Res, Infallible>>> Future for Observed<F> {
    type Output = Result<Res, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Ok(response) = ready!(this.inner.poll(cx));
        if let Some(seen) = this.seen.take() {
            if let Some(asked) = seen.record(&response) {
                // Its HTTP/2 stream task keeps it (moved, not copied) for the log line of a
                // reset after the answer.
                crate::http::watch::remember(asked);
            }
        }
        Poll::Ready(Ok(response))
    }
}

/// The end of a streamed answer (server reflection over gRPC or Connect): a stream's log line
/// and metrics are written when it ends, with its final code and whole duration, not when its
/// head goes out. The stream puts a clone in its response's extensions and calls
/// [`StreamEnd::end`] once it is over; [`ObserveLayer`] leaves its record there. Whichever
/// comes second writes it; a unary answer carries none and is recorded at once.
#[derive(Clone, Default)]
pub struct StreamEnd(Arc<Mutex<Ending>>);

#[derive(Default)]
enum Ending {
    /// Neither the record nor the outcome is there yet.
    #[default]
    Open,
    /// The record and the HTTP status sent, waiting for the outcome.
    Waiting(Seen, u16),
    /// The outcome, waiting for the record.
    Ended(Result<(), ApiError>),
    /// Written.
    Done,
}

impl std::fmt::Debug for StreamEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StreamEnd")
    }
}

impl StreamEnd {
    fn state(&self) -> std::sync::MutexGuard<'_, Ending> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The stream ended with `outcome` (`Ok`: status 0): its line and metrics are written now,
    /// or when its head is recorded. Only the first outcome counts.
    pub fn end(&self, outcome: Result<(), ApiError>) {
        let mut state = self.state();
        match std::mem::take(&mut *state) {
            Ending::Open => *state = Ending::Ended(outcome),
            Ending::Waiting(seen, http) => {
                *state = Ending::Done;
                drop(state);
                seen.ended(outcome, http);
            }
            other => *state = other,
        }
    }

    /// The record of the stream's request, its head sent with HTTP status `http`.
    fn attach(&self, seen: Seen, http: u16) {
        let mut state = self.state();
        match std::mem::take(&mut *state) {
            Ending::Open => *state = Ending::Waiting(seen, http),
            Ending::Ended(outcome) => {
                *state = Ending::Done;
                drop(state);
                seen.ended(outcome, http);
            }
            other => *state = other,
        }
    }
}

/// The record of a whole answer handed over frame by frame (an HTTP/2 answer over 16 KiB,
/// admission's `Paced`; an HTTP/2 download, the transfer layer's `Download`): written when its
/// last frame is taken ([`PacedEnd::finished`]), or when it is dropped unfinished
/// ([`PacedEnd::unfinished`], see [`Unfinished`]), not when its head goes out.
pub struct PacedEnd(StreamEnd);

impl std::fmt::Debug for PacedEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PacedEnd")
    }
}

impl PacedEnd {
    /// Leaves a [`StreamEnd`] in `response`'s extensions for [`ObserveLayer`]; `None` (recorded
    /// at its head as before) for a failure's answer or one that already carries its end.
    pub fn on(response: &mut Res) -> Option<Self> {
        let extensions = response.extensions();
        if extensions.get::<Failed>().is_some() || extensions.get::<StreamEnd>().is_some() {
            return None;
        }
        let end = StreamEnd::default();
        response.extensions_mut().insert(end.clone());
        Some(Self(end))
    }

    /// Its last frame was taken: a success.
    pub fn finished(self) {
        self.0.end(Ok(()));
    }

    /// Dropped before its last frame was taken, for `why`.
    pub fn unfinished(self, why: Unfinished) {
        let e = match why {
            Unfinished::MadeRoom => ApiError::new(
                Code::Overloaded,
                "the answer was dropped to make room for other clients' answers: this client \
                 took it slower than the floor rate (64 KiB/s) and held more than its fair \
                 share of the memory kept for answers waiting to be sent",
            ),
            Unfinished::Stalled => ApiError::new(
                Code::StreamIdle,
                "the client took too little of the answer within the stall limit",
            ),
            Unfinished::ClientLeft => client_left(),
        };
        self.0.end(Err(e));
    }
}

/// Why an answer handed over frame by frame ended before its last frame was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unfinished {
    /// Dropped to make room for other clients' answers (503 `OVERLOADED`).
    MadeRoom,
    /// Reset at the stall limit: its client took too little (504 `STREAM_IDLE`).
    Stalled,
    /// Its client reset the stream or closed the connection (499 `STREAM_CANCELLED`), or the
    /// server's drain ended while it was being sent (503 `DRAIN_CUT`, see the module doc).
    ClientLeft,
}

/// Why a call ended unfinished once the server's drain was over: the server dropped it.
fn drain_cut() -> ApiError {
    ApiError::new(
        Code::DrainCut,
        "the server's drain ended (its grace period over, or a second signal) while the call \
         was still open: the server cut it off",
    )
}

/// Why an answer was not sent whole when its client reset the stream or closed the connection.
fn client_left() -> ApiError {
    ApiError::new(
        Code::StreamCancelled,
        "the client reset the stream or closed the connection before the answer was sent",
    )
}

impl Seen {
    /// Writes a stream's or paced answer's record at its end, its head sent with `http`. A
    /// REST answer cut after its head is logged and counted with the status its end stands
    /// for (499 `STREAM_CANCELLED`, 504 `STREAM_IDLE`, 503 `DRAIN_CUT`): the client never got
    /// the whole 200.
    fn ended(self, outcome: Result<(), ApiError>, http: u16) {
        let failed = outcome.err().map(|e| self.left_or_cut(e));
        let http = match &failed {
            Some(e) if !self.call.is_grpc() => e.http_status(),
            _ => http,
        };
        self.write(failed.as_ref(), http);
    }

    /// The client left before the answer was ready (its future dropped unfinished): the one
    /// line and count of the call, as the client saw it, HTTP 499 / gRPC `CANCELLED`.
    fn cancelled(self) {
        let e = self.left_or_cut(client_left());
        let http = e.http_status();
        self.write(Some(&e), http);
    }

    /// `e`, unless it says the client left (`STREAM_CANCELLED`) after the server's drain
    /// ended: then the server cut the call off (`DRAIN_CUT`).
    fn left_or_cut(&self, e: ApiError) -> ApiError {
        if e.code == Code::StreamCancelled && self.shared.drain.is_cut() {
            drain_cut()
        } else {
            e
        }
    }

    /// Counts and logs the call answered with `response` (or leaves that to its end, for a
    /// stream); over HTTP/2 the request, when written now (see [`Asked`]: only an HTTP/2
    /// stream task is reset after its answer).
    fn record(self, response: &Res) -> Option<Asked> {
        let http = response.status().as_u16();
        if let Some(end) = response.extensions().get::<StreamEnd>() {
            end.attach(self, http);
            return None;
        }
        let failed = response.extensions().get::<Failed>().map(|f| &f.0);
        self.write(failed, http);
        self.h2.then(|| Asked {
            id: self.id,
            method: self.method,
            uri: self.uri,
        })
    }

    /// Counts the call and writes its line: it `failed` or not, answered with HTTP status
    /// `http`.
    fn write(&self, failed: Option<&ApiError>, http: u16) {
        let elapsed = self.started.elapsed();
        let status = match failed {
            Some(e) if self.call.is_grpc() => e.grpc_code() as u16,
            // gRPC success: the status (0) is in the trailers.
            None if self.call.is_grpc() => 0,
            _ => http,
        };
        match self.shared.series.get(&self.call) {
            Some(series) => series.record(status, elapsed),
            // Every call has its series from the start; this is never taken.
            None => self.call.series().record(status, elapsed),
        }
        // Written only when a line is: a success at the default level costs no formatting.
        let id = IdText(self.id.as_ref());
        let method = Escaped::new(self.method.as_str());
        // An upload token in the path is a credential: never logged.
        let path = crate::api::companion::redacted(self.uri.path());
        let path = Escaped::new(&path);
        let elapsed_us = elapsed.as_micros() as u64;
        // In the log, `status` is always the HTTP status sent, `grpc_status` the gRPC code
        // (in trailers or Connect's body) for the gRPC protocols; the metrics count the latter.
        let sent = Sent {
            http,
            grpc: self.call.is_grpc().then_some(status),
        };
        match failed {
            None => {
                let Sent {
                    http: status,
                    grpc: grpc_status,
                } = sent;
                tracing::debug!(target: TARGET, request_id = %id, %method, %path, status, grpc_status, elapsed_us, "ok");
            }
            Some(e) => log_failure(e, sent, id, method, path, elapsed_us),
        }
    }
}

/// Counts (`draftstore_small_answers_stalled_total`) and logs (INFO, within the client-fault
/// budget: a flood of unread streams is one reset each) a whole HTTP/2 answer of one frame or
/// less reset `why`: at the stall limit, or past its grace for want of a waiting place; with its request
/// when known. Its request was logged and counted when answered, with the status it was answered
/// with. The stream tasks' executor calls it ([`crate::http::watch::Executor::reporting`]).
pub fn small_answer_stalled(asked: Option<Asked>, why: Reset) {
    crate::metrics::get().small_answers_stalled.inc();
    if !CLIENT_FAULTS.take_quietly_now() {
        return;
    }
    let asked = asked.as_ref();
    let id = IdText(asked.and_then(|a| a.id.as_ref()));
    let method = Escaped::new(asked.map_or("", |a| a.method.as_str()));
    let path = asked.map_or(std::borrow::Cow::Borrowed(""), |a| {
        crate::api::companion::redacted(a.uri.path())
    });
    let path = Escaped::new(&path);
    match why {
        Reset::Stalled(stall) => {
            let stall_ms = u64::try_from(stall.as_millis()).unwrap_or(u64::MAX);
            tracing::info!(
                request_id = %id,
                %method,
                %path,
                stall_ms,
                code = "STREAM_IDLE",
                "a whole HTTP/2 answer of one frame or less was reset: its client did not take \
                 all of it within the stall limit"
            );
        }
        Reset::NoRoom => {
            tracing::info!(
                request_id = %id,
                %method,
                %path,
                code = "UNTAKEN_ANSWERS",
                "a whole HTTP/2 answer was reset: its client did not take it within a second, and its \
                 address holds its share of the answers waiting to be taken (or they fill the \
                 server's room for them)"
            );
        }
    }
}

/// The status a failure was answered with, as the client got it: the response's HTTP status
/// (each protocol's own: Connect's 429 for `RESOURCE_EXHAUSTED` where REST says 413), and for
/// the gRPC protocols the gRPC code (in trailers or Connect's body). The protocol's encoder
/// decides them once ([`super::reply`]); the log and the metrics read them from the answer.
#[derive(Clone, Copy)]
struct Sent {
    http: u16,
    grpc: Option<u16>,
}

fn log_failure(
    e: &ApiError,
    sent: Sent,
    id: IdText<'_>,
    method: Escaped<'_>,
    path: Escaped<'_>,
    elapsed_us: u64,
) {
    let Sent {
        http: status,
        grpc: grpc_status,
    } = sent;
    let message = if QUOTED.load(std::sync::atomic::Ordering::Relaxed) {
        Escaped::quoted(&e.message, MESSAGE_BUDGET)
    } else {
        Escaped::with_budget(&e.message, MESSAGE_BUDGET)
    };
    if e.is_server_side() {
        tracing::error!(target: TARGET, request_id = %id, %method, %path, status, grpc_status, code = e.code.as_str(), elapsed_us, "{message}");
    } else if matches!(e.code, Code::RateLimited | Code::RateLimitUnavailable) {
        // One line per refusal would let an over-limit tenant drive the log's volume: the
        // limiter logs each tenant's refusals once a minute (auth/ratelimit), metrics count each.
        tracing::debug!(target: TARGET, request_id = %id, %method, %path, status, grpc_status, code = e.code.as_str(), elapsed_us, "{message}");
    } else {
        match CLIENT_FAULTS.take_now() {
            Take::LeaveOut => return,
            Take::WriteAfter(n) => log_left_out(n),
            Take::Write => {}
        }
        tracing::info!(target: TARGET, request_id = %id, %method, %path, status, grpc_status, code = e.code.as_str(), elapsed_us, "{message}");
    }
}

/// The line saying `n` client-fault lines were left out (see [`super::log_budget`]).
fn log_left_out(n: u64) {
    tracing::info!(target: TARGET, left_out = n, "client-fault lines left out past {LINES_PER_SECOND} a second (the metrics count every request)");
}

/// Says, once a second, how many client-fault lines were left out in the seconds before when no
/// later line said it (a flood's last lines would otherwise wait for the next client fault).
/// Runs until dropped.
pub async fn report_left_out_lines() {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Some(n) = CLIENT_FAULTS.left_out_before_now() {
            log_left_out(n);
        }
    }
}

/// Whether failure messages are written between quotes (text lines; see [`Escaped::quoted`]).
static QUOTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// Writes failure messages between quotes (`true`, the default: text log lines, where client
/// text in a message could otherwise pass for the line's fields) or as they are (`false`: JSON
/// lines, whose encoder escapes each message as one string).
pub fn quote_messages(quoted: bool) {
    QUOTED.store(quoted, std::sync::atomic::Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::Mutex;

    /// The log lines written while `f` runs, at debug level, as text.
    fn logged<T>(f: impl FnOnce() -> T) -> String {
        #[derive(Clone, Default)]
        struct Lines(Arc<Mutex<Vec<u8>>>);
        impl Write for Lines {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let _ = tracing::subscriber::with_default(subscriber, f);
        let bytes = lines.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    fn seen(call: Call) -> Seen {
        seen_in(call, &DrainEnd::default())
    }

    /// A call's record in a server whose drain is `drain`.
    fn seen_in(call: Call, drain: &DrainEnd) -> Seen {
        Seen {
            call,
            id: None,
            method: http::Method::POST,
            uri: http::Uri::from_static("/draft.v1.DraftService/GetUploadURL"),
            h2: true,
            started: Instant::now(),
            shared: Arc::new(Shared {
                series: Series::default(),
                drain: drain.clone(),
            }),
        }
    }

    #[test]
    fn a_call_left_unfinished_after_the_drains_end_was_cut_by_the_server() {
        use crate::api::grpc::Rpc;
        let grpc = Call::Grpc(Some(Rpc::GetUploadUrl));
        let rest = Call::Rest(None);
        let drain = DrainEnd::default();
        // Before the drain's end: the client's cancel, whatever kind of call.
        let left = logged(|| seen_in(rest, &drain).cancelled());
        assert!(
            left.contains("STREAM_CANCELLED") && left.contains("status=499"),
            "{left}"
        );
        drain.cut();
        // An unanswered call (its future dropped with the runtime).
        let cut = logged(|| seen_in(rest, &drain).cancelled());
        assert!(
            cut.contains("DRAIN_CUT") && cut.contains("status=503"),
            "{cut}"
        );
        let cut = logged(|| seen_in(grpc, &drain).cancelled());
        assert!(
            cut.contains("DRAIN_CUT") && cut.contains("grpc_status=14"),
            "{cut}"
        );
        // An answer handed over frame by frame, dropped before its last frame.
        let mut response = Res::new(crate::http::response::empty());
        let paced = PacedEnd::on(&mut response);
        let cut = logged(|| {
            seen_in(rest, &drain).record(&response);
            if let Some(paced) = paced {
                paced.unfinished(Unfinished::ClientLeft);
            }
        });
        assert!(
            cut.contains("DRAIN_CUT") && cut.contains("status=503"),
            "{cut}"
        );
        // A stream that ended on its own error keeps it.
        let end = StreamEnd::default();
        let mut response = Res::new(crate::http::response::empty());
        response.extensions_mut().insert(end.clone());
        let idle = logged(|| {
            seen_in(grpc, &drain).record(&response);
            end.end(Err(ApiError::new(Code::StreamIdle, "idle")));
        });
        assert!(
            idle.contains("STREAM_IDLE") && idle.contains("grpc_status=4"),
            "{idle}"
        );
    }

    #[test]
    fn status_is_the_http_status_sent_and_grpc_status_the_grpc_code() {
        use crate::api::grpc::{connect::Codec, web::Flavor, Rpc};
        let rpc = Some(Rpc::GetUploadUrl);
        for call in [
            Call::Grpc(rpc),
            Call::GrpcWeb(Flavor::Web, rpc),
            Call::Connect(Codec::Json, rpc),
        ] {
            let ok = logged(|| seen(call).record(&Res::new(crate::http::response::empty())));
            assert!(ok.contains("status=200 grpc_status=0"), "{call:?}: {ok}");
            let mut refused = Res::new(crate::http::response::empty());
            refused
                .extensions_mut()
                .insert(Failed(ApiError::new(Code::Unimplemented, "no")));
            let failed = logged(|| seen(call).record(&refused));
            assert!(
                failed.contains("status=200 grpc_status=12"),
                "{call:?}: {failed}"
            );
        }
        let rest =
            logged(|| seen(Call::Rest(None)).record(&Res::new(crate::http::response::empty())));
        assert!(rest.contains("status=200 elapsed_us"), "{rest}");
    }

    #[test]
    fn a_stream_is_written_once_at_its_end_whichever_comes_first() {
        use crate::api::grpc::Rpc;
        let streamed = || {
            let end = StreamEnd::default();
            let mut response = Res::new(crate::http::response::empty());
            response.extensions_mut().insert(end.clone());
            (end, response)
        };
        // The head recorded first: nothing until the stream ends, then its final code.
        let (end, response) = streamed();
        let head = logged(|| seen(Call::Grpc(Some(Rpc::GetUploadUrl))).record(&response));
        assert!(head.is_empty(), "{head}");
        let ended = logged(|| {
            end.end(Err(ApiError::new(Code::StreamIdle, "idle")));
            end.end(Ok(()));
        });
        assert_eq!(ended.lines().count(), 1, "{ended}");
        assert!(ended.contains("status=200 grpc_status=4"), "{ended}");
        // The stream ended first: written when the head is recorded.
        let (end, response) = streamed();
        let early = logged(|| {
            end.end(Err(ApiError::new(Code::StreamCancelled, "gone")));
            seen(Call::Grpc(Some(Rpc::GetUploadUrl))).record(&response);
        });
        assert_eq!(early.lines().count(), 1, "{early}");
        assert!(early.contains("grpc_status=1"), "{early}");
    }
}
