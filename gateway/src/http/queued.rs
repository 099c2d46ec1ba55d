//! A bound on the answer bytes one HTTP/2 connection queues in hyper and h2 before its socket
//! writes them.
//!
//! h2 takes an answer as soon as the client's flow-control window has room for it, whether or
//! not the socket can write it: a client that opens a large window and then stops reading its
//! socket has every answer it asks for taken into h2's send queue, where it stays until the
//! write-stall timer closes the connection. A review measured 1.1 GiB for 600 connections × 100
//! streams of 15.9 KB answers, and 465 MiB for 200 × 13 of 469 KB; nothing but connections ×
//! streams bounded it.
//!
//! So every HTTP/2 answer passes [`Queued::poll_room`] before it is handed to hyper: a whole
//! answer (the connection layer) and each frame of a bigger one (admission's pacing). The
//! connection counts the bytes handed (the answer's data plus the least its frames can take:
//! 9 bytes a frame header, at least 1 of header block), and its socket the bytes written to the
//! kernel ([`crate::http::socket::Written`]); the difference is what may still be queued. An
//! answer is handed when that is nothing, or when it fits within [`QUEUED_LIMIT`] with it;
//! otherwise its task waits, woken as the socket writes. So a connection queues at most
//! [`QUEUED_LIMIT`] plus one answer (a whole answer is at most one 16 KiB frame; a bigger one
//! goes a frame at a time): 80 KiB, besides the kernel's own buffers (and, with TLS, rustls's,
//! up to 64 KiB of ciphertext). The embedded store's downloads are not counted here: they are
//! bounded per stream ([`crate::http::server::STREAM_SEND_BUFFER`], see
//! [`crate::http::layer::transfer`]).
//!
//! A whole answer waiting here has been answered but not taken: it keeps its request's place,
//! for a second of grace, then trades it for a waiting place or is reset, like one waiting for
//! the client's window ([`crate::http::watch`]); a bigger one waits with its bytes charged to
//! the byte budget ([`crate::http::layer::unsent`]), its client falling behind the floor rate.
//!
//! The count is the least the frames take, so the socket's count only ever catches up with it
//! sooner: the HPACK bytes of the headers, control frames (SETTINGS, PING acknowledgements,
//! WINDOW_UPDATE) and a frame split by flow control are written but not counted. That slack is
//! forgotten whenever the count is caught up (nothing counted as queued: the next answer counts
//! from the socket's count), so it never adds up over a connection's life. The other way, bytes
//! counted that the socket will never write: an answer h2 holds for lack of flow-control window
//! (not the socket's doing), and one reset before it was written, which h2 discards. Those stay
//! counted as queued until the socket has written nothing for [`FORGET_AFTER`] with no write
//! waiting and no handed answer's stream task alive (hyper ends a whole answer's task once h2
//! had window for all of it): then h2 has nothing it can send, nor will have, and they are
//! forgotten. An answer waiting for its client's window is never forgotten while it lives: a
//! client that used up its window and reads its socket would otherwise have answer after answer
//! forgotten, all written (queued) at once when it opens a wide window and stops reading. A socket that
//! waits for its client (a write pending) forgets nothing; its own stall timer closes it.
//!
//! Cost: on the way of every HTTP/2 answer, two atomic loads and a compare-and-swap; on every
//! socket write, two more atomic loads. (Sequentially consistent: a task that registers to
//! wait and a write that looks for waiters must not both miss the other.) Waiting tasks wait
//! on a [`Notify`], woken all at once when the socket's count reaches the least one of them
//! needs, or when a write stops waiting; a task that stops waiting leaves it.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::futures::OwnedNotified;
use tokio::sync::Notify;
use tokio::time::{Instant, Sleep};

/// The most answer bytes one HTTP/2 connection queues before its socket writes them (64 KiB;
/// plus one answer, see the module doc).
pub const QUEUED_LIMIT: u64 = 64 * 1024;

/// How long a connection's socket must have written nothing, with no write waiting, before
/// the bytes counted as queued are taken to be ones h2 cannot send (no flow-control window, or
/// a reset stream's) and forgotten (100 ms).
pub const FORGET_AFTER: Duration = Duration::from_millis(100);

/// The least bytes of framing a whole answer of `data_frames` DATA frames (and `trailers` or
/// not) takes on the wire besides its data: a HEADERS frame (a 9-byte header and at least one
/// byte of header block), 9 bytes per DATA frame, and for trailers another HEADERS frame.
#[must_use]
pub fn least_framing(data_frames: u64, trailers: bool) -> u64 {
    10 + 9 * data_frames + if trailers { 10 } else { 0 }
}

/// The least bytes one body frame takes on the wire: a DATA frame's data and its 9-byte
/// header, or a trailers HEADERS frame (a header and at least one byte of block: 10).
#[must_use]
pub fn least_frame_len(frame: &hyper::body::Frame<bytes::Bytes>) -> u64 {
    frame.data_ref().map_or(10, |data| {
        u64::try_from(data.len())
            .unwrap_or(u64::MAX)
            .saturating_add(9)
    })
}

/// One connection's answer bytes handed over, against its socket's count of bytes written
/// (given to each call: [`crate::http::socket::Written`] keeps both).
#[derive(Debug)]
pub struct Queued {
    /// The bytes handed over, counted from the socket's count whenever nothing was queued.
    handed: AtomicU64,
    /// A write of the socket waits for its client.
    blocked: AtomicBool,
    /// Whole answers handed over whose stream task still lives: each waits for its client's
    /// window (hyper ends the task once h2 had window for all of it), and will be written
    /// whenever the client opens it.
    alive: AtomicUsize,
    /// The least socket count that gives a waiting task room (`u64::MAX`: none waits).
    wake_at: AtomicU64,
    /// The waiting tasks: a task that stops waiting (or is dropped, its stream reset) leaves
    /// it, so nothing of it is kept.
    waiting: Arc<Notify>,
}

impl Default for Queued {
    fn default() -> Self {
        Self {
            handed: AtomicU64::new(0),
            blocked: AtomicBool::new(false),
            alive: AtomicUsize::new(0),
            wake_at: AtomicU64::new(u64::MAX),
            waiting: Arc::new(Notify::new()),
        }
    }
}

/// A task's wait for room ([`Queued::poll_room`]): kept by the caller between polls, `None`
/// until it first waits.
#[derive(Debug)]
pub struct RoomWait {
    /// The socket's count when the socket was last seen to write.
    since: u64,
    /// Armed while no write waits: at [`FORGET_AFTER`] without a write, the queued count is
    /// forgotten.
    timer: Option<Pin<Box<Sleep>>>,
    /// Its place among the waiting tasks.
    woken: Option<Pin<Box<OwnedNotified>>>,
}

impl Queued {
    /// `Ready` once `bytes` more may be handed over (counted then), with the socket's count
    /// `written` now (`gone`: the socket will write nothing more, all is let through); else
    /// `Pending`, the task woken when the socket writes enough, or when it may forget (see the
    /// module doc). `wait` is the caller's, kept between polls.
    pub fn poll_room(
        &self,
        cx: &mut Context<'_>,
        bytes: u64,
        written: impl Fn() -> u64,
        gone: bool,
        wait: &mut Option<RoomWait>,
    ) -> Poll<()> {
        loop {
            let now = written();
            let handed = self.handed.load(Ordering::SeqCst);
            let queued = handed.saturating_sub(now);
            if queued == 0 || queued.saturating_add(bytes) <= QUEUED_LIMIT || gone {
                let counted = handed.max(now).saturating_add(bytes);
                if self
                    .handed
                    .compare_exchange_weak(handed, counted, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok()
                {
                    *wait = None;
                    return Poll::Ready(());
                }
                continue;
            }
            let blocked = self.blocked.load(Ordering::SeqCst);
            let wait = wait.get_or_insert(RoomWait {
                since: now,
                timer: None,
                woken: None,
            });
            if wait.since != now {
                wait.since = now;
                wait.timer = None;
            }
            let alive = self.alive.load(Ordering::SeqCst) > 0;
            if blocked || alive {
                // The socket's own stall timer rules, or an answer waits for its client's
                // window (counted, and written once the client opens it): nothing is
                // forgotten. Woken when the socket writes, or the write goes.
                wait.timer = None;
            } else {
                let timer = wait
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(FORGET_AFTER)));
                if timer.as_mut().poll(cx).is_ready() {
                    // Nothing written for a while, no write waiting: h2 holds nothing it can
                    // send; what is counted as queued is not.
                    wait.timer = None;
                    let _ = self.handed.compare_exchange(
                        handed,
                        now,
                        Ordering::SeqCst,
                        Ordering::SeqCst,
                    );
                    continue;
                }
            }
            let woken = wait
                .woken
                .get_or_insert_with(|| Box::pin(self.waiting.clone().notified_owned()));
            woken.as_mut().enable();
            self.wake_at.fetch_min(
                handed.saturating_add(bytes).saturating_sub(QUEUED_LIMIT),
                Ordering::SeqCst,
            );
            // Written, unblocked or the last handed answer ended meanwhile (its wake may have
            // come before `wake_at` was set), or woken: looked at again.
            if written() != now
                || self.blocked.load(Ordering::SeqCst) != blocked
                || (self.alive.load(Ordering::SeqCst) > 0) != alive
                || woken.as_mut().poll(cx).is_ready()
            {
                wait.woken = None;
                continue;
            }
            return Poll::Pending;
        }
    }

    /// The socket's count is now `written`: wakes the waiting tasks when one may have room.
    pub fn wrote(&self, written: u64) {
        if written >= self.wake_at.load(Ordering::SeqCst) {
            self.wake_all();
        }
    }

    /// A write of the socket waits for its client (`true`), or one that waited went.
    pub fn set_blocked(&self, blocked: bool) {
        // Stored only when it changes: this runs on every write.
        if self.blocked.load(Ordering::Relaxed) != blocked {
            self.blocked.store(blocked, Ordering::SeqCst);
            if !blocked {
                self.wake_all();
            }
        }
    }

    /// A whole answer was handed over; its stream task lives on (waiting for its client's window) until
    /// [`Queued::answer_ended`].
    pub fn answer_handed(&self) {
        self.alive.fetch_add(1, Ordering::SeqCst);
    }

    /// The stream task of an answer counted by [`Queued::answer_handed`] ended (its answer
    /// all taken by h2, or its stream reset).
    pub fn answer_ended(&self) {
        let before = self
            .alive
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if before == Ok(1) {
            // The last: a waiting task may forget now.
            self.wake_all();
        }
    }

    /// Wakes every waiting task (each looks again), as when the socket is gone.
    pub fn wake_all(&self) {
        if self.wake_at.load(Ordering::SeqCst) != u64::MAX
            && self.wake_at.swap(u64::MAX, Ordering::SeqCst) != u64::MAX
        {
            self.waiting.notify_waiters();
        }
    }
}

impl RoomWait {
    /// When its forgetting timer fires, if armed (for tests).
    #[must_use]
    pub fn deadline(&self) -> Option<Instant> {
        self.timer.as_ref().map(|t| t.deadline())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;
    use std::sync::Arc;

    fn poll(
        queued: &Queued,
        written: &AtomicU64,
        bytes: u64,
        wait: &mut Option<RoomWait>,
    ) -> Poll<()> {
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        queued.poll_room(
            &mut cx,
            bytes,
            || written.load(Ordering::Acquire),
            false,
            wait,
        )
    }

    #[tokio::test(start_paused = true)]
    async fn answers_wait_once_the_connection_queues_its_limit_and_go_as_the_socket_writes() {
        let queued = Queued::default();
        let written = AtomicU64::new(0);
        let mut wait = None;
        // Four 16 KB answers fit; a fifth waits while a write waits for the client.
        for _ in 0..4 {
            assert!(poll(&queued, &written, 16_000, &mut wait).is_ready());
        }
        queued.set_blocked(true);
        assert!(poll(&queued, &written, 16_000, &mut wait).is_pending());
        // However long: a socket waiting for its client forgets nothing.
        tokio::time::sleep(FORGET_AFTER * 50).await;
        assert!(poll(&queued, &written, 16_000, &mut wait).is_pending());
        // The client takes 10 KB: not room enough (54 KB queued); then 16 KB: room for it.
        written.store(10_000, Ordering::Release);
        queued.wrote(10_000);
        assert!(poll(&queued, &written, 16_000, &mut wait).is_pending());
        written.store(16_000, Ordering::Release);
        queued.wrote(16_000);
        assert!(poll(&queued, &written, 16_000, &mut wait).is_ready());
        assert!(wait.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_lone_answer_bigger_than_the_limit_goes_when_nothing_is_queued() {
        let queued = Queued::default();
        let written = AtomicU64::new(0);
        let mut wait = None;
        assert!(poll(&queued, &written, QUEUED_LIMIT * 2, &mut wait).is_ready());
        queued.set_blocked(true);
        assert!(poll(&queued, &written, 1, &mut wait).is_pending());
        // Written, with more than was counted (the frames' HPACK bytes): nothing is queued,
        // and the slack is not carried over.
        written.store(QUEUED_LIMIT * 2 + 500, Ordering::Release);
        assert!(poll(&queued, &written, QUEUED_LIMIT - 10, &mut wait).is_ready());
        assert!(poll(&queued, &written, 10, &mut wait).is_ready());
        assert!(poll(&queued, &written, 1, &mut wait).is_pending());
    }

    #[tokio::test(start_paused = true)]
    async fn bytes_h2_cannot_send_are_forgotten_once_the_socket_is_quiet_and_not_waiting() {
        let queued = Queued::default();
        let written = AtomicU64::new(0);
        let mut wait = None;
        // Handed, never written (no window), and no write waits.
        assert!(poll(&queued, &written, QUEUED_LIMIT, &mut wait).is_ready());
        assert!(poll(&queued, &written, 1_000, &mut wait).is_pending());
        let deadline = wait.as_ref().and_then(RoomWait::deadline);
        assert_eq!(deadline, Some(Instant::now() + FORGET_AFTER));
        tokio::time::sleep(FORGET_AFTER / 2).await;
        assert!(poll(&queued, &written, 1_000, &mut wait).is_pending());
        tokio::time::sleep(FORGET_AFTER / 2).await;
        assert!(poll(&queued, &written, 1_000, &mut wait).is_ready());
        // Counted from the socket's count again: room for the limit less that answer.
        assert!(poll(&queued, &written, QUEUED_LIMIT - 1_000, &mut wait).is_ready());
        assert!(poll(&queued, &written, 1, &mut wait).is_pending());
    }

    #[tokio::test(start_paused = true)]
    async fn bytes_of_an_answer_still_waiting_for_its_window_are_never_forgotten() {
        let queued = Queued::default();
        let written = AtomicU64::new(0);
        let mut wait = None;
        // Handed; its task lives on, waiting for the client's window (a client that used up
        // its connection window and reads its socket: no write waits).
        assert!(poll(&queued, &written, QUEUED_LIMIT, &mut wait).is_ready());
        queued.answer_handed();
        assert!(poll(&queued, &written, 1_000, &mut wait).is_pending());
        tokio::time::sleep(FORGET_AFTER * 50).await;
        assert!(poll(&queued, &written, 1_000, &mut wait).is_pending());
        // Its task ended (reset): its bytes will never be written, and are forgotten then.
        queued.answer_ended();
        assert!(poll(&queued, &written, 1_000, &mut wait).is_pending());
        tokio::time::sleep(FORGET_AFTER).await;
        assert!(poll(&queued, &written, 1_000, &mut wait).is_ready());
    }

    #[tokio::test]
    async fn a_waiting_task_is_woken_by_the_write_that_gives_it_room() {
        let queued = Arc::new(Queued::default());
        let written = Arc::new(AtomicU64::new(0));
        let mut wait = None;
        assert!(poll(&queued, &written, QUEUED_LIMIT, &mut wait).is_ready());
        queued.set_blocked(true);
        let waiting = tokio::spawn({
            let (queued, written) = (queued.clone(), written.clone());
            async move {
                let mut wait = None;
                std::future::poll_fn(|cx| {
                    queued.poll_room(
                        cx,
                        8_000,
                        || written.load(Ordering::Acquire),
                        false,
                        &mut wait,
                    )
                })
                .await;
            }
        });
        tokio::task::yield_now().await;
        // Not enough yet.
        written.store(4_000, Ordering::Release);
        queued.wrote(4_000);
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        written.store(8_000, Ordering::Release);
        queued.wrote(8_000);
        tokio::time::timeout(Duration::from_secs(10), waiting)
            .await
            .expect("woken")
            .unwrap();
    }
}
