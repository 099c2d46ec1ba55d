//! The progress watch of HTTP/2 streams: a stream that has made no progress in either
//! direction (no request message read AND no response frame taken by hyper, which takes one
//! only when flow control has room) for the stream idle limit is dropped, which makes h2 send
//! `RST_STREAM(CANCEL)` and frees everything the stream held (its admission place included).
//!
//! The response body alone cannot do this: once the client's window is full hyper stops
//! polling the body, so nothing in it runs. [`Executor`] therefore runs every HTTP/2 stream
//! task with an empty slot for a [`Watch`] (a task-local); a streaming handler gets the
//! stream's watch with [`current`] (made on first use, one `Arc`), arms it and reports
//! progress with [`Watch::progress`]. A stream that never asks for its watch (every unary
//! call) costs no allocation, no timer and no wake-up registration: only a look at the empty
//! slot after each poll.
//!
//! A whole answer (a unary reply, at most one frame) also waits for the client's window once
//! handed to hyper, and before that for room in what its connection queues before the socket
//! writes ([`crate::http::queued`]). The connection layer marks its task [`answered`] (a flag
//! in the slot, no allocation); if the task then waits at all, the executor makes its watch, armed for the
//! stall limit it was given ([`Executor::stalling`]), so an answer the client never takes is
//! reset like any other stream. For the first [`WAIT_GRACE`] of that wait the answer keeps its
//! request's place; past it, it trades the place for one among the answers waiting to be taken
//! ([`Open::wait`]) or, refused one, is reset then ([`Reset::NoRoom`]). A task that finishes in the poll that answered (every answer
//! the client's window has room for) costs only the flag's store. Such a reset is reported to
//! the function the executor was given ([`Executor::reporting`]: the observe layer's, which
//! logs it at INFO and counts it), with the request's id, method and path ([`Asked`], which the
//! observe layer leaves in the slot of an HTTP/2 answer: [`remember`]): the request's own line
//! and count were written when it was answered.
//!
//! This module is transport: it knows nothing of the layers above it ([`crate::http::layer`]),
//! which use it; what they hand down ([`Asked`], [`Open`]) is defined here or beside it.
//!
//! The slot also keeps the stream's request open ([`keep_open`]) from its answer until the task
//! ends (its body sent or the stream reset), counted on its connection, so that a connection
//! busy with a long download is not idle. A whole answer that waits past [`WAIT_GRACE`] trades
//! its place among the requests open on all connections for one among the answers waiting to
//! be taken ([`Open::wait`]); refused one, it is reset ([`Reset::NoRoom`]), so that answers
//! nobody takes (each handed to h2 whole, in its buffers until taken) are bounded by that pool,
//! while a client that reads through a small window never needs one.

use crate::http::activity::Open;
use crate::http::response::RequestId;
use crate::http::socket::Handed;
use pin_project_lite::pin_project;
use std::cell::{Cell, OnceCell};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

tokio::task_local! {
    /// The watch of the stream whose task is running, once [`current`] made it.
    static WATCH: Slot;
}

/// The request a whole answer was written for (its id, method and URI, moved out of its
/// record once written), kept by its HTTP/2 stream task ([`remember`]) so that a reset of the
/// answer at the stall limit is reported with it ([`Executor::reporting`]).
pub struct Asked {
    /// The request's id, when it has one.
    pub id: Option<RequestId>,
    /// Its method.
    pub method: http::Method,
    /// Its URI.
    pub uri: http::Uri,
}

/// Why an executor reset a whole answer its client did not take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reset {
    /// Not all taken within the stall limit (given).
    Stalled(Duration),
    /// Not taken within [`WAIT_GRACE`], and no place among the answers waiting to be taken for
    /// it (its peer holds its share of them, or they are all held; see [`Open::wait`]).
    NoRoom,
}

/// What an executor calls when it resets a whole answer its client did not take: the request
/// (when the observe layer left it, see [`remember`]) and why.
pub type Report = fn(Option<Asked>, Reset);

/// A stream task's slot: its watch once made, whether its whole answer was handed over, the
/// request it answered (for the log line of a reset), and that request kept open until the task
/// ends ([`keep_open`]).
#[derive(Default)]
struct Slot {
    watch: OnceCell<Arc<Watch>>,
    answered: Cell<bool>,
    asked: Cell<Option<Asked>>,
    open: Cell<Option<Open>>,
    handed: Cell<Option<Handed>>,
}

/// The progress of one HTTP/2 stream.
#[derive(Debug)]
pub struct Watch {
    start: Instant,
    /// Milliseconds after `start` of the last progress.
    last: AtomicU64,
    /// The idle limit in milliseconds; 0 while unarmed.
    idle: AtomicU64,
    armed: Notify,
}

impl Watch {
    fn new() -> Self {
        Self {
            start: Instant::now(),
            last: AtomicU64::new(0),
            idle: AtomicU64::new(0),
            armed: Notify::new(),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Ends the stream after `idle` (at least 1 ms) without [`Watch::progress`]; armed again,
    /// the new limit applies at once (a shorter one is how a stream is dropped on purpose).
    pub fn arm(&self, idle: Duration) {
        self.progress();
        let ms = u64::try_from(idle.as_millis()).unwrap_or(u64::MAX).max(1);
        self.idle.store(ms, Ordering::Relaxed);
        self.armed.notify_one();
    }

    /// Records progress now: a message read or a frame handed to the connection.
    pub fn progress(&self) {
        self.last.store(self.now(), Ordering::Relaxed);
    }

    /// Armed and silent for the idle limit: the stream is (being) dropped for it.
    #[must_use]
    pub fn stalled(&self) -> bool {
        let idle = self.idle.load(Ordering::Relaxed);
        idle != 0 && self.now() >= self.last.load(Ordering::Relaxed).saturating_add(idle)
    }

    /// Resolves once armed and silent for the idle limit.
    async fn expired(&self) {
        loop {
            let idle = self.idle.load(Ordering::Relaxed);
            if idle == 0 {
                self.armed.notified().await;
                continue;
            }
            let last = self.last.load(Ordering::Relaxed);
            let due = last.saturating_add(idle);
            let now = self.now();
            if now >= due {
                return;
            }
            // Armed again meanwhile (sooner, to drop the stream now): look again.
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(due - now)) => {}
                () = self.armed.notified() => {}
            }
        }
    }
}

/// The watch of the HTTP/2 stream whose task is running (made on the first call, the same one
/// afterwards), `None` elsewhere (HTTP/1, tests).
#[must_use]
pub fn current() -> Option<Arc<Watch>> {
    WATCH
        .try_with(|slot| Arc::clone(slot.watch.get_or_init(|| Arc::new(Watch::new()))))
        .ok()
}

/// Marks the running HTTP/2 stream task as having handed its whole answer to hyper: from now
/// on, waiting (for the client's window) is stalling. Nothing outside a stream task.
pub fn answered() {
    let _ = WATCH.try_with(|slot| slot.answered.set(true));
}

/// Keeps the request the running HTTP/2 stream task answered (`open`: counted on its
/// connection and holding its place among the requests open on all connections) until the task
/// ends, dropped then. Outside a stream task, `open` is handed back (the caller keeps it).
///
/// # Errors
/// `open` itself when no stream task is running.
pub fn keep_open(open: Open) -> Result<(), Open> {
    let mut held = Some(open);
    // A task answers once: a previous one (never there) is dropped with the slot's old value.
    let _ = WATCH.try_with(|slot| slot.open.set(held.take()));
    held.map_or(Ok(()), Err)
}

/// Keeps `handed` (a whole answer handed over, see [`crate::http::queued`]) until the running
/// HTTP/2 stream task ends; dropped at once outside a stream task.
pub fn keep_handed(handed: Handed) {
    let _ = WATCH.try_with(|slot| slot.handed.set(Some(handed)));
}

/// Leaves the request the running HTTP/2 stream task answered in its slot, for the report of
/// a reset after the answer; dropped outside a stream task. Only HTTP/2 stream tasks have a
/// slot: callers skip it for other requests (a task-local lookup saved).
pub fn remember(asked: Asked) {
    let _ = WATCH.try_with(|slot| slot.asked.set(Some(asked)));
}

/// hyper's executor: spawns each task on tokio with an empty watch slot, dropping the task
/// when the watch its code asked for is armed and expires, or when it waits `stall` after
/// being [`answered`] (zero, the default: never), which it reports to `report` (when given).
#[derive(Debug, Clone, Copy, Default)]
pub struct Executor {
    stall: Duration,
    report: Option<Report>,
}

impl Executor {
    /// An executor dropping a task that waits `stall` (zero: never) after it [`answered`].
    #[must_use]
    pub fn stalling(stall: Duration) -> Self {
        Self {
            stall,
            report: None,
        }
    }

    /// Calls `report` for each task dropped for waiting after it [`answered`] (the layers
    /// above log and count it; this module only resets).
    #[must_use]
    pub fn reporting(mut self, report: Report) -> Self {
        self.report = Some(report);
        self
    }
}

impl<F> hyper::rt::Executor<F> for Executor
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, fut: F) {
        tokio::spawn(WATCH.scope(
            Slot::default(),
            Watched {
                task: fut,
                expiry: None,
                stall: self.stall,
                report: self.report,
                phase: Phase::Own,
            },
        ));
    }
}

/// How long a whole answer may wait for its client while keeping its request place, before it
/// must trade it for a place among the answers waiting to be taken ([`Open::wait`]): a client
/// that reads, even through a small window, takes its answer well within it and never needs a
/// waiting place, so a flood holding every waiting place cannot get its answers reset. At most
/// half the stall limit.
pub const WAIT_GRACE: Duration = Duration::from_secs(1);

/// Where a stream task's watch stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No watch, or one the task's own code made and armed: its expiry drops the task.
    Own,
    /// Its whole answer handed over and waiting, within [`WAIT_GRACE`], in its request place.
    Grace,
    /// Waiting past the grace in a waiting place, until the stall limit.
    Waiting,
}

pin_project! {
    /// A stream task and, once the task made its watch, the wait for that watch's expiry
    /// (boxed: only streaming handlers and answers that wait make a watch).
    struct Watched<F> {
        #[pin]
        task: F,
        expiry: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
        stall: Duration,
        report: Option<Report>,
        phase: Phase,
    }
}

/// The grace a whole answer waits in its request place, given the stall limit `stall`.
fn grace(stall: Duration) -> Duration {
    WAIT_GRACE.min(stall / 2)
}

/// The running stream task's watch armed for `idle`, and the wait for its expiry; made if
/// missing.
fn armed(idle: Duration) -> Option<Pin<Box<dyn Future<Output = ()> + Send>>> {
    let watch = WATCH
        .try_with(|slot| Arc::clone(slot.watch.get_or_init(|| Arc::new(Watch::new()))))
        .ok()?;
    watch.arm(idle);
    Some(Box::pin(async move { watch.expired().await }))
}

impl<F: Future> Future for Watched<F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.project();
        if this.task.poll(cx).is_ready() {
            return Poll::Ready(());
        }
        let stall = *this.stall;
        if this.expiry.is_none() {
            // Runs inside the scope: the slot is there, with a watch if the task called
            // `current`, or marked if the task waits with its whole answer handed over.
            let (own, answered) = WATCH
                .try_with(|slot| (slot.watch.get().cloned(), slot.answered.get()))
                .unwrap_or((None, false));
            if let Some(watch) = own {
                *this.phase = Phase::Own;
                *this.expiry = Some(Box::pin(async move { watch.expired().await }));
            } else if answered && !stall.is_zero() {
                *this.phase = Phase::Grace;
                *this.expiry = armed(grace(stall));
            }
        }
        loop {
            let Some(expiry) = this.expiry else {
                return Poll::Pending;
            };
            ready!(expiry.as_mut().poll(cx));
            match *this.phase {
                Phase::Own => return Poll::Ready(()),
                Phase::Grace => {
                    // Still waiting for its client: in a waiting place, or reset now.
                    let room = WATCH
                        .try_with(|slot| {
                            let mut open = slot.open.take();
                            let room = open.as_mut().is_none_or(Open::wait);
                            slot.open.set(open);
                            room
                        })
                        .unwrap_or(true);
                    if !room {
                        self::report(*this.report, Reset::NoRoom);
                        return Poll::Ready(());
                    }
                    *this.phase = Phase::Waiting;
                    *this.expiry = armed(stall.saturating_sub(grace(stall)));
                }
                Phase::Waiting => {
                    self::report(*this.report, Reset::Stalled(stall));
                    return Poll::Ready(());
                }
            }
        }
    }
}

/// Calls `report` (when given) for the running stream task's answer, reset `why`.
fn report(report: Option<Report>, why: Reset) {
    if let Some(report) = report {
        let asked = WATCH.try_with(|slot| slot.asked.take()).ok().flatten();
        report(asked, why);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn an_unarmed_watch_never_expires() {
        let watch = Watch::new();
        let waited = tokio::time::timeout(Duration::from_secs(3600), watch.expired()).await;
        assert!(waited.is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn an_armed_watch_expires_after_the_idle_limit_since_the_last_progress() {
        let watch = Arc::new(Watch::new());
        watch.arm(Duration::from_secs(8));
        tokio::time::sleep(Duration::from_secs(5)).await;
        watch.progress();
        let started = Instant::now();
        watch.expired().await;
        let waited = started.elapsed();
        assert!(waited >= Duration::from_secs(8), "{waited:?}");
        assert!(waited < Duration::from_secs(9), "{waited:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn armed_again_sooner_it_expires_at_the_new_limit() {
        let watch = Arc::new(Watch::new());
        watch.arm(Duration::from_secs(60));
        let waiting = tokio::spawn({
            let watch = watch.clone();
            async move { watch.expired().await }
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        let started = Instant::now();
        watch.arm(Duration::from_millis(1));
        waiting.await.unwrap();
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_stuck_armed_task_is_dropped() {
        use hyper::rt::Executor as _;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        Executor::default().execute(async move {
            if let Some(w) = current() {
                w.arm(Duration::from_secs(2));
            }
            let _held = tx;
            std::future::pending::<()>().await;
        });
        // The sender is dropped with the task: the receiver sees it closed.
        assert!(rx.await.is_err());
    }

    #[tokio::test]
    async fn a_task_gets_one_watch_made_on_first_use_and_none_outside_a_stream() {
        use hyper::rt::Executor as _;
        assert!(current().is_none());
        let (tx, rx) = tokio::sync::oneshot::channel();
        Executor::default().execute(async move {
            let first = current();
            let again = current();
            let same = matches!((&first, &again), (Some(a), Some(b)) if Arc::ptr_eq(a, b));
            let _ = tx.send(same);
        });
        assert_eq!(rx.await.ok(), Some(true));
    }

    #[tokio::test(start_paused = true)]
    async fn a_task_waiting_after_its_answer_is_dropped_at_the_stall_limit() {
        use hyper::rt::Executor as _;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        Executor::stalling(Duration::from_secs(2)).execute(async move {
            answered();
            let _held = tx;
            std::future::pending::<()>().await;
        });
        assert!(rx.await.is_err(), "dropped");
        // One that answered and ends at once is not waited on; one that never answered waits.
        let (tx, rx) = tokio::sync::oneshot::channel();
        Executor::stalling(Duration::from_secs(2)).execute(async move {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            let _ = tx.send(());
        });
        assert!(rx.await.is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_waiting_past_its_grace_takes_a_waiting_place_or_is_dropped() {
        use crate::http::activity::Activity;
        use crate::http::shares::{Key, Shares};
        use hyper::rt::Executor as _;
        const STALL: Duration = Duration::from_secs(60);
        let pool = Shares::new(2);
        let peer = std::net::IpAddr::from([127, 0, 0, 2]);
        let _other = pool.place(Key::Peer([127, 0, 0, 9].into()));
        let activity = Arc::new(Activity::waiting_in(pool.clone(), peer));
        // A task that answers, then waits for its client for ever; its channel closes when
        // it is dropped.
        let waiting = |open: Open| {
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            Executor::stalling(STALL).execute(async move {
                let _ = keep_open(open);
                answered();
                let _held = tx;
                std::future::pending::<()>().await;
            });
            rx
        };
        // Room for it: it waits in a place past its grace, until the stall limit.
        let started = Instant::now();
        let rx = waiting(activity.request_started(true, None));
        tokio::time::sleep(WAIT_GRACE + Duration::from_millis(10)).await;
        assert_eq!(pool.held(), 2, "a waiting place, taken for its peer");
        assert!(rx.await.is_err(), "dropped");
        assert!(started.elapsed() >= STALL, "{:?}", started.elapsed());
        assert_eq!(pool.held(), 1, "given back");
        // No room (the pool full): dropped at the end of its grace, not at once.
        let _full = pool.place(Key::Peer([127, 0, 0, 8].into()));
        let started = Instant::now();
        let rx = waiting(activity.request_started(true, None));
        assert!(rx.await.is_err(), "dropped");
        let waited = started.elapsed();
        assert!(waited >= WAIT_GRACE && waited < STALL, "{waited:?}");
        assert_eq!(activity.open(), 0, "its request ended with it");
    }

    #[tokio::test(start_paused = true)]
    async fn a_task_that_never_asks_for_its_watch_runs_to_its_end() {
        use hyper::rt::Executor as _;
        let (tx, rx) = tokio::sync::oneshot::channel();
        Executor::default().execute(async move {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            let _ = tx.send(());
        });
        assert!(rx.await.is_ok());
    }
}
