//! A byte budget for big answers (HTTP/1.1 and HTTP/2) handed towards their client but not
//! yet taken by it.
//!
//! An answer larger than one frame ([`super::admission::CHUNK`]) is handed over frame by frame
//! (see [`super::admission`]); while its frames wait for a client that does not read, its
//! bytes stay in memory. [`Unsent`] counts those bytes, per TCP peer address and in all: an
//! answer is charged its whole length when it starts, and given back as its client takes it:
//! over HTTP/2 a frame's bytes once h2 has flow-control window for all of it (when hyper asks
//! for the frame after the next, see [`super::admission`]'s pacing), over HTTP/1.1 as the
//! connection's socket writes them to the kernel ([`crate::http::socket::Written`]); the rest
//! when the answer ends or is dropped (its stream reset, or over HTTP/1.1, which cannot reset
//! one answer, its connection closed).
//!
//! The rule, with `T` the total (one frame per API place) and `P = T / 4` the per-peer limit:
//! - **Work-conserving.** While the bytes not being dropped are under `T`, every answer is
//!   charged and every request admitted, whoever holds them: a client that reads fast is never
//!   shed while the budget has room, however many big answers it asks at once.
//! - **Fair share once full.** At `T`, a peer's fair share is `min(P, T / peers holding bytes)`
//!   (a peer holding nothing counts itself in). A peer holding its fair share or more has its
//!   new API requests shed (503 `OVERLOADED`, `Retry-After: 1`; gRPC `UNAVAILABLE`; probes
//!   never; a `/metrics` scrape is an API request here), and an answer of it finished meanwhile
//!   is replaced by that 503. A peer under its fair share (a newcomer) is admitted, and its
//!   answer is charged after making room: answers of peers over their fair share whose client
//!   is **stale** are dropped (an HTTP/2 stream gets `RST_STREAM` within a millisecond, through
//!   the stream's watch; an
//!   HTTP/1.1 answer has its connection closed), stalest first across all those peers, until
//!   its answer fits. **An answer its client takes at the floor rate is never dropped**: if the
//!   stale answers are not enough, the newcomer's answer is refused (503 `OVERLOADED`) instead.
//!   A dropped answer is logged and counted as `OVERLOADED` (dropped to make room), not as the
//!   client's stall.
//! - **Stale: behind a floor-rate clock.** Each answer has a clock that starts when it is
//!   charged and moves forward one second per [`FLOOR_RATE`] (64 KiB) its client takes, never
//!   ahead of now and never more than [`LAG`] (2 s) behind it. Its client is stale once the
//!   clock is [`STALE`] (1 s) or more behind now: it took less than 64 KiB/s of that answer
//!   for a while. (A rule of "no frame taken for 1 s" let a client opening 16 KiB of window per
//!   answer per second keep about 140 answers never dropped, holding the default 64 MiB with
//!   about 2.2 MB/s of reading; with the floor it must read at about 9 MB/s.) The cap on the
//!   lag lets a client that paused and reads again at more than the floor rate be fresh again
//!   within seconds.
//! - **Bound.** Live bytes (not being dropped) are under `T` before an answer is charged, or
//!   brought back to `T` by the drops it chose; while dropped answers still hold bytes (a
//!   millisecond or so), no answer is charged once the total with them reaches `T + P`. So
//!   memory held by answers stays under `max(T + P, T + one answer)` plus one answer (the
//!   largest are a `parts` listing of 10 000 parts, under 1 MB, and a part-urls answer for the
//!   most a call takes, 1000 parts, 469 KB): 80 MiB plus one answer at the default `T` = 64 MiB.
//!   Nothing of an answer escapes the count while the answer lives; once its last frame is
//!   handed over, only its last byte (held back as a frame of its own) may still wait (over
//!   HTTP/1.1, with the head of the answer).
//!
//! An answer of one frame or less goes to hyper whole and is never counted. The bytes charged
//! and not yet given back, in all, are the gauge `draftstore_answer_bytes_unsent`.
//!
//! [`Unsent::admits`], on every API request, reads one atomic while the total is under `T`
//! and takes the lock only past it: a request admitted on a stale read costs nothing, as the
//! bound is kept by [`Unsent::try_charge`] under the lock. Making room pops a heap of the
//! stale answers only as far as needed.

use crate::http::socket::Written;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;
use tokio::time::Instant;

/// The least total budget in bytes (1 MiB), whatever `DRAFTSTORE_MAX_IN_FLIGHT` is.
pub const LEAST_TOTAL: usize = 1024 * 1024;

/// How soon a stream whose answer is dropped to make room is reset (its watch's limit).
const RESET_NOW: Duration = Duration::from_millis(1);

/// How far behind now an answer's floor-rate clock must be before it may be dropped to make
/// room for a newcomer (1 s): its client took less than [`FLOOR_RATE`] of it for a while.
pub const STALE: Duration = Duration::from_secs(1);

/// The floor rate, in bytes per second (64 KiB/s): each answer's clock moves one second per
/// this many bytes its client takes (see the module doc).
pub const FLOOR_RATE: u64 = 64 * 1024;

/// The most an answer's clock falls behind now (2 s): a client that paused and reads again at
/// more than the floor rate catches up within a few seconds.
pub const LAG: Duration = Duration::from_secs(2);

/// Moves `clock` (an answer's floor-rate clock) forward for `bytes` taken at `now`: first no
/// more than [`LAG`] behind `now`, then one second per [`FLOOR_RATE`] bytes, never past `now`.
#[must_use]
pub fn advance(clock: Instant, now: Instant, bytes: usize) -> Instant {
    let behind = now.checked_sub(LAG).map_or(clock, |least| clock.max(least));
    let nanos = u64::try_from(bytes)
        .unwrap_or(u64::MAX)
        .saturating_mul(1_000_000_000)
        / FLOOR_RATE;
    behind
        .checked_add(Duration::from_nanos(nanos))
        .map_or(now, |moved| moved.min(now))
}

type Map<K, V> = HashMap<K, V, foldhash::quality::RandomState>;

/// Bytes of answers not yet taken, per peer and in all, against their limits.
#[derive(Debug)]
pub struct Unsent {
    total_limit: usize,
    peer_limit: usize,
    /// How far behind now an answer's clock makes it stale ([`STALE`]).
    stale: Duration,
    /// Every charged byte, those of answers being dropped included.
    total: AtomicUsize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Bytes of answers being dropped to make room, in all.
    dropping: usize,
    by_peer: Map<Option<IpAddr>, Held>,
    answers: Map<u64, Answer>,
    /// Numbers answers.
    next: u64,
}

/// What one peer holds: `bytes` in all, `dropping` of them in answers being dropped.
#[derive(Debug, Default, Clone, Copy)]
struct Held {
    bytes: usize,
    dropping: usize,
}

impl Held {
    fn live(self) -> usize {
        self.bytes - self.dropping
    }
}

#[derive(Debug)]
struct Answer {
    peer: Option<IpAddr>,
    left: usize,
    /// Its floor-rate clock ([`advance`]).
    clock: Instant,
    dropping: bool,
    signal: Arc<Signal>,
}

/// How an answer chosen to be dropped is told so.
#[derive(Debug, Default)]
pub struct Signal {
    dropped: AtomicBool,
    watch: OnceLock<Arc<crate::http::watch::Watch>>,
    connection: OnceLock<Arc<Written>>,
}

impl Signal {
    fn drop_now(&self) {
        self.dropped.store(true, Ordering::SeqCst);
        // With the fences in `closes` and `watched_by`: of this side and the one registering,
        // at least one sees the other (a store then a load on each side, Dekker's pattern).
        std::sync::atomic::fence(Ordering::SeqCst);
        if let Some(watch) = self.watch.get() {
            watch.arm(RESET_NOW);
        }
        if let Some(connection) = self.connection.get() {
            connection.close();
        }
    }

    /// Over HTTP/1.1: `connection` (its socket's count) is closed when the answer is chosen
    /// (now, if it was already). This is the only place that closes an HTTP/1.1 connection for
    /// an answer dropped to make room (HTTP/1.1 cannot reset one answer): it runs when the
    /// answer is chosen, in the chooser's task, because the answer's own body (admission's
    /// `Paced`) is not polled again while its client reads nothing; the body only stops
    /// handing frames over.
    pub fn closes(&self, connection: &Arc<Written>) {
        let set = self.connection.set(connection.clone()).is_ok();
        std::sync::atomic::fence(Ordering::SeqCst);
        if set && self.dropped() {
            connection.close();
        }
    }

    /// Whether the answer was chosen to be dropped: it must hand over nothing more.
    #[must_use]
    pub fn dropped(&self) -> bool {
        self.dropped.load(Ordering::SeqCst)
    }

    /// `watch` resets the answer's stream when it is chosen (now, if it was already).
    pub fn watched_by(&self, watch: &Arc<crate::http::watch::Watch>) {
        let set = self.watch.set(watch.clone()).is_ok();
        std::sync::atomic::fence(Ordering::SeqCst);
        if set && self.dropped() {
            watch.arm(RESET_NOW);
        }
    }
}

/// Why an answer was not charged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The budget is full and its peer holds its fair share or more.
    Share,
    /// The total is at its bound (`T + P`), answers being dropped (still holding bytes)
    /// included.
    Bound,
    /// The budget is full and not enough answers of peers over their share are stale to make
    /// room: the other answers are being taken at the floor rate or more, and none is dropped
    /// for this one.
    Busy,
}

impl Unsent {
    /// A budget of `total` bytes in all (at least 1), a quarter of it (at least 1) per peer.
    #[must_use]
    pub fn new(total: usize) -> Arc<Self> {
        Self::with_stale(total, STALE)
    }

    /// As [`Unsent::new`], answers stale once their clock is `stale` behind now.
    fn with_stale(total: usize, stale: Duration) -> Arc<Self> {
        let total = total.max(1);
        Arc::new(Self {
            total_limit: total,
            peer_limit: (total / 4).max(1),
            stale,
            total: AtomicUsize::new(0),
            state: Mutex::new(State::default()),
        })
    }

    /// The budget derived from `DRAFTSTORE_MAX_IN_FLIGHT`: one 16 KiB frame per place in all
    /// (64 MiB at the default 4096 places, at least [`LEAST_TOTAL`]), a quarter of it per peer
    /// (16 MiB at the default).
    #[must_use]
    pub fn for_places(places: usize) -> Arc<Self> {
        Self::new(
            places
                .saturating_mul(super::admission::CHUNK)
                .max(LEAST_TOTAL),
        )
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether `peer` may start a new API request: the budget has room, or `peer` holds less
    /// than its fair share. One atomic load while the total is under its limit.
    #[must_use]
    pub fn admits(&self, peer: Option<IpAddr>) -> bool {
        if self.total.load(Ordering::Relaxed) < self.total_limit {
            return true;
        }
        let state = self.lock();
        self.total
            .load(Ordering::Relaxed)
            .saturating_sub(state.dropping)
            < self.total_limit
            || state.holds(peer) < self.fair_share(&state, peer)
    }

    /// `min(P, T / peers holding bytes)`, counting `peer` in (at least 1).
    fn fair_share(&self, state: &State, peer: Option<IpAddr>) -> usize {
        let peers = state.by_peer.len() + usize::from(!state.by_peer.contains_key(&peer));
        (self.total_limit / peers).min(self.peer_limit).max(1)
    }

    /// Bytes charged now, in all.
    #[must_use]
    pub fn total(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }

    /// Charges `bytes` to `peer` until given back through the [`Charge`], by the rule of the
    /// module doc (making room if `peer` is under its fair share).
    ///
    /// # Errors
    /// [`Refused`] when it may not be charged now.
    pub fn try_charge(
        self: &Arc<Self>,
        peer: Option<IpAddr>,
        bytes: usize,
    ) -> Result<Charge, Refused> {
        let mut chosen = Vec::new();
        let charge = {
            let mut state = self.lock();
            let total = self.total.load(Ordering::Relaxed);
            if state.dropping > 0 && total >= self.total_limit.saturating_add(self.peer_limit) {
                return Err(Refused::Bound);
            }
            let live = total.saturating_sub(state.dropping);
            let now = Instant::now();
            if live >= self.total_limit {
                let share = self.fair_share(&state, peer);
                if state.holds(peer) >= share {
                    return Err(Refused::Share);
                }
                let need = (live + bytes).saturating_sub(self.total_limit);
                let made = now.checked_sub(self.stale).is_some_and(|stale_since| {
                    let least = now.checked_sub(LAG);
                    state.make_room(peer, share, (stale_since, least), need, &mut chosen)
                });
                if !made {
                    drop(state);
                    for signal in chosen {
                        signal.drop_now();
                    }
                    return Err(Refused::Busy);
                }
            }
            state.next += 1;
            let id = state.next;
            let signal = Arc::new(Signal::default());
            state.answers.insert(
                id,
                Answer {
                    peer,
                    left: bytes,
                    clock: now,
                    dropping: false,
                    signal: signal.clone(),
                },
            );
            state.by_peer.entry(peer).or_default().bytes += bytes;
            self.total.fetch_add(bytes, Ordering::Relaxed);
            crate::metrics::get()
                .answer_bytes_unsent
                .inc_by(i64::try_from(bytes).unwrap_or(i64::MAX));
            Charge {
                unsent: self.clone(),
                id,
                signal,
            }
        };
        for signal in chosen {
            signal.drop_now();
        }
        Ok(charge)
    }

    /// Gives back up to `bytes` of answer `id` (all it has left: `usize::MAX`), as progress;
    /// `last` ends it.
    fn give_back(&self, id: u64, bytes: usize, last: bool) {
        let mut state = self.lock();
        let State {
            dropping,
            by_peer,
            answers,
            next: _,
        } = &mut *state;
        let Some(answer) = answers.get_mut(&id) else {
            return;
        };
        let n = bytes.min(answer.left);
        answer.left -= n;
        if !last {
            answer.clock = advance(answer.clock, Instant::now(), n);
        }
        let (peer, was_dropping) = (answer.peer, answer.dropping);
        if last {
            answers.remove(&id);
        }
        if let Some(held) = by_peer.get_mut(&peer) {
            held.bytes = held.bytes.saturating_sub(n);
            if was_dropping {
                held.dropping = held.dropping.saturating_sub(n);
            }
            if held.bytes == 0 {
                by_peer.remove(&peer);
            }
        }
        if was_dropping {
            *dropping = dropping.saturating_sub(n);
        }
        // Under the lock, so `total` never lags the map for long.
        self.total.fetch_sub(n, Ordering::Relaxed);
        if n > 0 {
            crate::metrics::get()
                .answer_bytes_unsent
                .dec_by(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }
}

impl State {
    /// Bytes `peer` holds, not counting answers being dropped.
    fn holds(&self, peer: Option<IpAddr>) -> usize {
        self.by_peer.get(&peer).map_or(0, |h| h.live())
    }

    /// Chooses answers to drop until `need` bytes are on their way out: of peers other than
    /// `asking` holding more than `share`, answers whose clock is at or before `stale_since`,
    /// stalest first (clocks count as no further behind than `least`, then the oldest first),
    /// from a heap popped only as far as needed. Whether enough were found (those found are
    /// chosen either way: they are stale and over their share).
    fn make_room(
        &mut self,
        asking: Option<IpAddr>,
        share: usize,
        (stale_since, least): (Instant, Option<Instant>),
        need: usize,
        chosen: &mut Vec<Arc<Signal>>,
    ) -> bool {
        let mut stale: BinaryHeap<Reverse<(Instant, u64)>> = self
            .answers
            .iter()
            .filter(|(_, a)| {
                a.peer != asking && !a.dropping && a.left > 0 && a.clock <= stale_since
            })
            .map(|(id, a)| Reverse((least.map_or(a.clock, |l| a.clock.max(l)), *id)))
            .collect();
        let mut freed = 0;
        while freed < need {
            let Some(Reverse((_, id))) = stale.pop() else {
                break;
            };
            let Some(answer) = self.answers.get_mut(&id) else {
                continue;
            };
            let Some(held) = self.by_peer.get_mut(&answer.peer) else {
                continue;
            };
            if held.live() <= share {
                continue;
            }
            answer.dropping = true;
            let left = answer.left;
            held.dropping += left;
            chosen.push(answer.signal.clone());
            freed += left;
            self.dropping += left;
        }
        freed >= need
    }
}

/// Bytes of one answer still charged; what is left is given back when dropped.
#[derive(Debug)]
pub struct Charge {
    unsent: Arc<Unsent>,
    id: u64,
    signal: Arc<Signal>,
}

impl Charge {
    /// `bytes` were taken by the connection (h2 has window for them, or the socket wrote
    /// them): gives them back (at most what is left), moving the answer's floor-rate clock.
    pub fn taken(&mut self, bytes: usize) {
        if bytes > 0 {
            self.unsent.give_back(self.id, bytes, false);
        }
    }

    /// How this answer learns it is dropped to make room.
    #[must_use]
    pub fn signal(&self) -> &Arc<Signal> {
        &self.signal
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.unsent.give_back(self.id, usize::MAX, true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(last: u8) -> Option<IpAddr> {
        Some(IpAddr::from([127, 0, 0, last]))
    }

    #[test]
    fn a_peer_may_pass_its_share_while_the_budget_has_room_and_bytes_come_back() {
        let unsent = Unsent::with_stale(400, Duration::ZERO);
        let reader = peer(2);
        let mut first = unsent.try_charge(reader, 150).unwrap();
        let second = unsent.try_charge(reader, 150).unwrap();
        assert!(
            unsent.admits(reader),
            "300 of 400: its 100 passed, room left"
        );
        first.taken(30);
        assert_eq!(unsent.total(), 270);
        drop(second);
        drop(first);
        assert_eq!(unsent.total(), 0, "dropped charges give back what is left");
        assert!(unsent.lock().answers.is_empty() && unsent.lock().by_peer.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn once_full_the_peer_over_its_share_is_shed_and_a_newcomer_makes_room() {
        let unsent = Unsent::with_stale(400, Duration::ZERO);
        let (hog, victim) = (peer(2), peer(3));
        let mut hogged: Vec<Charge> = [101, 100, 100, 100]
            .into_iter()
            .map(|n| unsent.try_charge(hog, n).unwrap())
            .collect();
        // A clock never runs ahead of now: the progress below counts once time has passed.
        tokio::time::advance(Duration::from_millis(1)).await;
        // The first answer made progress since: the second is now the stalest.
        hogged[0].taken(1);
        assert!(!unsent.admits(hog), "at the total, over its share");
        assert_eq!(unsent.try_charge(hog, 1).unwrap_err(), Refused::Share);
        assert!(
            unsent.admits(victim),
            "a newcomer holds less than its share"
        );
        let mine = unsent.try_charge(victim, 150).unwrap();
        let chosen: Vec<bool> = hogged.iter().map(|c| c.signal().dropped()).collect();
        assert_eq!(
            chosen,
            [false, true, true, false],
            "the stalest, as many as needed"
        );
        assert!(!mine.signal().dropped());
        // Dropping them frees their bytes.
        let kept: Vec<Charge> = hogged
            .into_iter()
            .filter(|c| !c.signal().dropped())
            .collect();
        assert_eq!(unsent.total(), 100 + 100 + 150);
        assert!(unsent.admits(hog), "room again");
        drop((kept, mine));
        assert_eq!(unsent.total(), 0);
    }

    #[test]
    fn bytes_being_dropped_never_let_the_total_pass_its_bound() {
        let unsent = Unsent::with_stale(400, Duration::ZERO);
        let hog = peer(2);
        let _hogged: Vec<Charge> = (0..4)
            .map(|_| unsent.try_charge(hog, 100).unwrap())
            .collect();
        // Newcomers each make room, but the dropped answers are not gone yet.
        let _a = unsent.try_charge(peer(3), 100).unwrap();
        let refused = unsent.try_charge(peer(4), 60);
        assert_eq!(refused.unwrap_err(), Refused::Bound, "500 >= 400 + 100");
        assert_eq!(unsent.total(), 500);
    }

    #[tokio::test(start_paused = true)]
    async fn only_answers_nobody_takes_are_reset_to_make_room_else_the_newcomer_is_refused() {
        const K: usize = 1024;
        let unsent = Unsent::new(1000 * K);
        let (reader, idler, newcomer) = (peer(2), peer(3), peer(4));
        // The reader holds over its share (250 KiB) of a full budget once the idler's answer
        // fills the rest, and takes 64 KiB/s of each answer: the floor rate.
        let mut read: Vec<Charge> = (0..3)
            .map(|_| unsent.try_charge(reader, 200 * K).unwrap())
            .collect();
        let idle = unsent.try_charge(idler, 688 * K).unwrap();
        // Fresh answers are never reset: the newcomer is refused, nothing dropped.
        assert_eq!(
            unsent.try_charge(newcomer, 100 * K).unwrap_err(),
            Refused::Busy
        );
        assert!(read.iter().chain([&idle]).all(|c| !c.signal().dropped()));
        // The reader takes 32 KiB of each answer every half second; the idler never takes any.
        for _ in 0..3 {
            tokio::time::advance(STALE / 2).await;
            for charge in &mut read {
                charge.taken(32 * K);
            }
        }
        assert_eq!(unsent.total(), 1000 * K, "still full");
        // Only the idler's answer is stale: it goes, though the reader holds more than its share.
        let mine = unsent.try_charge(newcomer, 100 * K).unwrap();
        assert!(idle.signal().dropped() && !mine.signal().dropped());
        assert!(read.iter().all(|c| !c.signal().dropped()), "being taken");
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_trickling_under_the_floor_rate_is_stale_and_makes_room() {
        const K: usize = 1024;
        let unsent = Unsent::new(1000 * K);
        let (trickler, newcomer) = (peer(2), peer(3));
        let mut trickled: Vec<Charge> = (0..3)
            .map(|_| unsent.try_charge(trickler, 400 * K).unwrap())
            .collect();
        // 16 KiB of each answer a second: a frame taken every second, but under the floor.
        for _ in 0..4 {
            tokio::time::advance(Duration::from_secs(1)).await;
            for charge in &mut trickled {
                charge.taken(16 * K);
            }
        }
        let mine = unsent.try_charge(newcomer, 100 * K);
        assert!(mine.is_ok(), "the trickler's answers are stale");
        assert!(trickled.iter().any(|c| c.signal().dropped()));
    }

    #[test]
    fn the_floor_rate_clock_moves_a_second_per_64_kib_never_ahead_nor_over_2_s_behind() {
        let start = Instant::now();
        let at = |s: u64| start + Duration::from_secs(s);
        // 64 KiB taken: one second on.
        assert_eq!(advance(start, at(2), 64 * 1024), at(1));
        assert_eq!(
            advance(start, at(2), 32 * 1024),
            start + Duration::from_millis(500)
        );
        // Never ahead of now: taking much at once banks nothing for later.
        assert_eq!(advance(start, at(1), 10 << 20), at(1));
        // At most 2 s behind: a client that paused 10 s, then takes 3 s worth, is on time.
        assert_eq!(advance(start, at(10), 3 * 64 * 1024), at(10));
        assert_eq!(advance(start, at(10), 0), at(8));
        assert_eq!(advance(start, at(10), 64 * 1024), at(9));
    }

    #[test]
    fn the_default_budget_follows_the_places() {
        let unsent = Unsent::for_places(4096);
        assert_eq!(
            (unsent.total_limit, unsent.peer_limit),
            (64 << 20, 16 << 20)
        );
        let small = Unsent::for_places(4);
        assert_eq!(small.total_limit, LEAST_TOTAL);
    }
}
