//! What a replica owes a tenant's shared bucket: the URLs it granted by counting alone while
//! Redis decided nothing (`DRAFTSTORE_RATE_LIMIT_ON_ERROR=allow`). Redis never saw them, so a
//! Redis that comes back would grant them again; instead the tenant's next decision Redis makes
//! carries them (`ARGV[4]` of the script) and Redis takes them from the bucket in the same
//! atomic step (down to `-max(1, replicas - 1) × limit`: several replicas' debts are paid back by
//! refill, not forgiven at 0); when Redis decides again the probe also charges every debt at
//! once (`debts.rs`), so a tenant whose next request reaches another replica is charged too.
//!
//! A debt shrinks only by refill the local bucket could not hold. Redis's bucket refilled during
//! the outage at the tenant's rate, and so did the local bucket that made the grants: as long as
//! the local bucket stays under its limit, that refill is already spent by the grants it made,
//! and forgiving it again would grant it twice (a tenant requesting through an outage would owe
//! nothing when Redis came back). The debt is "what a bucket without this process's grants
//! would hold, minus what the local bucket holds": both refill at the local bucket's rate (the
//! tenant's divided by the replicas, as `Bucket::take_sharing` refills it) and stop at the
//! limit, so the debt shrinks once the grant-free bucket is full, and a tenant that comes back
//! long after an outage owes nothing. At most one charge is in flight per tenant and
//! process, so decisions made at once do not charge the same grants twice; a charge is taken
//! off the debt only once Redis answered that it applied it, and stays owed when Redis failed,
//! refused it or gave no answer (a charge whose answer was lost may be charged twice: the
//! bucket is never emptier than `-max(1, replicas - 1) × limit`).

use super::bucket::Bucket;
use super::RateSpec;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

/// One tenant's debt in this process (pure arithmetic; time is an argument).
#[derive(Debug)]
pub(crate) struct Owed(Mutex<State>);

#[derive(Debug, Clone, Copy)]
struct State {
    /// Tokens owed as of the local bucket's last look (fractional while they refill).
    tokens: f64,
    /// The local bucket (what it held after this process's last grant, refilled since at the
    /// local bucket's own rate).
    local: Bucket,
    /// The replicas the local bucket shared the tenant's rate with at the last grant (at
    /// least 1): it refills at `limit / (per × replicas)` (`Bucket::take_sharing`), and so
    /// does this copy of it.
    replicas: u32,
    /// Tokens sent with a decision whose outcome is not known yet (0 when none).
    in_flight: f64,
}

impl State {
    /// The debt as of `now`: the grant-free bucket (`local + tokens`) and the local bucket both
    /// refill as the local bucket does (`Bucket::refill`: the tenant's rate divided by the
    /// replicas, up to the limit); what the grant-free one could not hold is no longer owed.
    fn refill(&mut self, spec: RateSpec, now: Instant) {
        let mut without_grants = self.local.plus(self.tokens);
        without_grants.refill(spec, now, self.replicas);
        self.local.refill(spec, now, self.replicas);
        self.tokens = (without_grants.tokens() - self.local.tokens()).max(0.0);
    }
}

impl Owed {
    /// Nothing owed.
    pub(crate) fn new(now: Instant) -> Self {
        Self(Mutex::new(State {
            tokens: 0.0,
            local: Bucket::empty(now),
            replicas: 1,
            in_flight: 0.0,
        }))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records one URL granted in this process without Redis; `local_left` is what the local
    /// bucket holds after granting it, counting alone among `replicas` (at least 1; the local
    /// bucket's refill is the tenant's rate divided by it).
    pub(crate) fn add(&self, spec: RateSpec, now: Instant, local_left: f64, replicas: u32) {
        let mut state = self.state();
        state.refill(spec, now);
        state.tokens += 1.0;
        state.local.mirror(spec, local_left, now);
        state.replicas = replicas.max(1);
    }

    /// Whether anything is owed as of `now` or a charge is in flight: a debt to keep listed.
    pub(crate) fn pending(&self, spec: RateSpec, now: Instant) -> bool {
        let mut state = self.state();
        if state.in_flight > 0.0 {
            return true;
        }
        state.refill(spec, now);
        state.tokens >= 1e-6
    }

    /// Tokens owed as of `now`.
    #[cfg(test)]
    pub(crate) fn tokens(&self, spec: RateSpec, now: Instant) -> f64 {
        let mut state = self.state();
        state.refill(spec, now);
        state.tokens
    }

    /// What one decision should carry, in tokens (at most the tenant's limit: Redis's bucket
    /// holds no more); `None` when nothing is owed or another charge is in flight.
    fn claim(&self, spec: RateSpec, now: Instant) -> Option<f64> {
        let mut state = self.state();
        if state.in_flight > 0.0 {
            return None;
        }
        state.refill(spec, now);
        let tokens = state.tokens.min(f64::from(spec.limit));
        // Below a millionth, the script's unit: nothing to send.
        if tokens < 1e-6 {
            return None;
        }
        state.in_flight = tokens;
        Some(tokens)
    }

    /// The outcome of the charge in flight: `applied` takes it off the debt.
    fn settle(&self, applied: bool, spec: RateSpec, now: Instant) {
        let mut state = self.state();
        let sent = std::mem::take(&mut state.in_flight);
        if applied {
            state.refill(spec, now);
            state.tokens = (state.tokens - sent).max(0.0);
        }
    }
}

/// A charge on its way to Redis with one decision. Dropped without [`Charge::applied`] (Redis
/// failed, answered past the deadline, or the answer never came), the tokens stay owed.
#[derive(Debug)]
pub(crate) struct Charge {
    owed: Arc<Owed>,
    spec: RateSpec,
    tokens: f64,
    applied: bool,
}

impl Charge {
    /// Claims what `owed` holds for one decision (`None`: nothing to charge, or a charge of
    /// this tenant is already in flight).
    pub(crate) fn claim(owed: &Arc<Owed>, spec: RateSpec, now: Instant) -> Option<Self> {
        owed.claim(spec, now).map(|tokens| Self {
            owed: Arc::clone(owed),
            spec,
            tokens,
            applied: false,
        })
    }

    /// The tokens charged, in millionths (the script's unit; at most the limit's).
    #[must_use]
    pub(crate) fn millionths(&self) -> u64 {
        // 0 < tokens <= limit <= u32::MAX: in range of u64 millionths.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let millionths = (self.tokens * 1_000_000.0).round() as u64;
        millionths
    }

    /// Redis ran the script with this charge: the tokens are no longer owed.
    pub(crate) fn applied(mut self) {
        self.applied = true;
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.owed.settle(self.applied, self.spec, Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const FIVE_A_MINUTE: RateSpec = RateSpec {
        limit: 5,
        per: Duration::from_secs(60),
    };

    #[test]
    fn a_charge_is_taken_off_only_when_applied_and_one_at_a_time() {
        let start = Instant::now();
        let owed = Arc::new(Owed::new(start));
        assert!(
            Charge::claim(&owed, FIVE_A_MINUTE, start).is_none(),
            "nothing owed"
        );
        owed.add(FIVE_A_MINUTE, start, 0.0, 1);
        owed.add(FIVE_A_MINUTE, start, 0.0, 1);
        let first = Charge::claim(&owed, FIVE_A_MINUTE, start).unwrap();
        assert!(first.millionths().abs_diff(2_000_000) <= 1);
        assert!(
            Charge::claim(&owed, FIVE_A_MINUTE, start).is_none(),
            "one charge in flight at a time"
        );
        drop(first);
        let second = Charge::claim(&owed, FIVE_A_MINUTE, start).unwrap();
        assert!(
            second.millionths().abs_diff(2_000_000) <= 1,
            "a charge that did not apply stays owed"
        );
        // A grant made while the charge travels is owed after it.
        owed.add(FIVE_A_MINUTE, start, 0.0, 1);
        second.applied();
        // Settled at the real time, a moment after `start`: a little refilled since.
        assert!((owed.tokens(FIVE_A_MINUTE, start) - 1.0).abs() < 1e-3);
    }

    #[test]
    fn a_debt_is_pending_while_owed_or_in_flight() {
        let start = Instant::now();
        let owed = Arc::new(Owed::new(start));
        assert!(!owed.pending(FIVE_A_MINUTE, start), "nothing owed");
        owed.add(FIVE_A_MINUTE, start, 0.0, 1);
        assert!(owed.pending(FIVE_A_MINUTE, start));
        let charge = Charge::claim(&owed, FIVE_A_MINUTE, start).unwrap();
        assert!(owed.pending(FIVE_A_MINUTE, start), "a charge in flight");
        charge.applied();
        assert!(!owed.pending(FIVE_A_MINUTE, start), "applied: nothing owed");
    }

    #[test]
    fn a_debt_shrinks_only_by_refill_the_local_bucket_could_not_hold() {
        // The review's case: Redis's bucket was empty (mirrored locally as 0) when the outage
        // began, and the tenant asks all through it: every token the local bucket refills
        // (one per 12 s at 5/60) is granted at once, leaving it at 0. Redis, seeing none of
        // it, refills to min(5, t/12): that is what is owed, none of it forgiven.
        let start = Instant::now();
        let owed = Owed::new(start);
        let at = |secs| start + Duration::from_secs(secs);
        for grant in 1..=3 {
            owed.add(FIVE_A_MINUTE, at(12 * grant), 0.0, 1);
        }
        let after_three = owed.tokens(FIVE_A_MINUTE, at(36));
        assert!((after_three - 3.0).abs() < 1e-9, "{after_three}");
        for grant in 4..=6 {
            owed.add(FIVE_A_MINUTE, at(12 * grant), 0.0, 1);
        }
        // Redis now holds min(5, 6) = 5, the local bucket 0: 5 owed (not 6: Redis's bucket
        // stopped at the limit too).
        let after_six = owed.tokens(FIVE_A_MINUTE, at(72));
        assert!((after_six - 5.0).abs() < 1e-9, "{after_six}");
        let charge = Charge::claim(&Arc::new(owed), FIVE_A_MINUTE, at(72)).unwrap();
        assert_eq!(charge.millionths(), 5_000_000, "never more than the limit");
    }

    #[test]
    fn a_tenant_back_long_after_an_outage_owes_nothing() {
        let start = Instant::now();
        let owed = Arc::new(Owed::new(start));
        for _ in 0..5 {
            owed.add(FIVE_A_MINUTE, start, 0.0, 1);
        }
        // A full period later the local bucket is full again, as is Redis's: nothing owed.
        let much_later = start + Duration::from_secs(60);
        assert!(Charge::claim(&owed, FIVE_A_MINUTE, much_later).is_none());
    }

    #[test]
    fn among_three_replicas_the_debt_follows_the_local_bucket_refilling_at_a_third() {
        // One replica of three counts alone from an empty bucket at 5/60: its bucket refills one
        // token per 36 s, each granted at once. Its copy must refill at that rate too: six
        // grants leave 5 owed (min(5, 6): the grant-free bucket stops at the limit), not the 3
        // a copy refilling at the full rate (3 tokens per 36 s, "held" by a bucket that never
        // had them) would leave.
        let start = Instant::now();
        let owed = Owed::new(start);
        let at = |secs| start + Duration::from_secs(secs);
        for grant in 1..=6 {
            owed.add(FIVE_A_MINUTE, at(36 * grant), 0.0, 3);
        }
        let after_six = owed.tokens(FIVE_A_MINUTE, at(216));
        assert!((after_six - 5.0).abs() < 1e-9, "{after_six}");
        // A burst of 5 from a full bucket, then a minute: the local bucket is back to 5/3 only,
        // the grant-free one full: 10/3 still owed (at the full rate: 0, all forgiven).
        let burst = Owed::new(start);
        for left in [4.0, 3.0, 2.0, 1.0, 0.0] {
            burst.add(FIVE_A_MINUTE, start, left, 3);
        }
        let later = burst.tokens(FIVE_A_MINUTE, at(60));
        assert!((later - 10.0 / 3.0).abs() < 1e-9, "{later}");
    }

    #[test]
    fn a_debt_from_a_full_bucket_is_forgiven_only_as_the_local_bucket_refills() {
        let start = Instant::now();
        let owed = Owed::new(start);
        // Local bucket full (5), one grant: 4 left, 1 owed.
        owed.add(FIVE_A_MINUTE, start, 4.0, 1);
        // 6 s later the local bucket holds 4.5 and the grant-free one 5 (full): 0.5 owed.
        let later = start + Duration::from_secs(6);
        assert!((owed.tokens(FIVE_A_MINUTE, later) - 0.5).abs() < 1e-9);
        // 12 s after the grant both are full: nothing owed.
        assert!(owed.tokens(FIVE_A_MINUTE, start + Duration::from_secs(12)) < 1e-9);
    }
}
