//! The progress watch of HTTP/2 streams: a stream that has made no progress in either
//! direction (no request message read AND no response frame taken by hyper, which takes one
//! only when flow control has room) for the stream idle limit is dropped, which makes h2 send
//! `RST_STREAM(CANCEL)` and frees everything the stream held (its admission place included).
//!
//! The response body alone cannot do this: once the client's window is full hyper stops
//! polling the body, so nothing in it runs. [`Executor`] therefore runs every HTTP/2 stream
//! task under a [`Watch`] (a task-local, one `Arc` per stream); a streaming handler arms it
//! with [`current`] and reports progress with [`Watch::progress`]. An unarmed watch costs no
//! timer.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

tokio::task_local! {
    static WATCH: Arc<Watch>;
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

    /// Ends the stream after `idle` (at least 1 ms) without [`Watch::progress`].
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
            tokio::time::sleep(Duration::from_millis(due - now)).await;
        }
    }
}

/// The watch of the HTTP/2 stream whose task is running, `None` elsewhere (HTTP/1, tests).
#[must_use]
pub fn current() -> Option<Arc<Watch>> {
    WATCH.try_with(Arc::clone).ok()
}

/// hyper's executor: spawns each task on tokio under a fresh [`Watch`], dropping the task
/// when its armed watch expires.
#[derive(Debug, Clone, Copy, Default)]
pub struct Executor;

impl<F> hyper::rt::Executor<F> for Executor
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, fut: F) {
        let watch = Arc::new(Watch::new());
        let watched = Arc::clone(&watch);
        tokio::spawn(WATCH.scope(watch, async move {
            tokio::select! {
                _ = fut => {}
                () = watched.expired() => {}
            }
        }));
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
    async fn a_stuck_armed_task_is_dropped() {
        use hyper::rt::Executor as _;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        Executor.execute(async move {
            if let Some(w) = current() {
                w.arm(Duration::from_secs(2));
            }
            let _held = tx;
            std::future::pending::<()>().await;
        });
        // The sender is dropped with the task: the receiver sees it closed.
        assert!(rx.await.is_err());
    }
}
