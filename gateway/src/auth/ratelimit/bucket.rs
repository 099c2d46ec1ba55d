//! The refilling token bucket, pure (time is an argument): a tenant with `rate=N/SECS` holds at
//! most `N` tokens, starts full, and gets `N` back per `SECS`, continuously. Minting a URL takes
//! one. So a burst of 12 requests within a few seconds at `rate=5/60` gets exactly 5, and one more
//! every 12 s after that. The Redis script (`redis.rs`) computes the same thing on the server's
//! clock.

use std::time::{Duration, Instant};

/// A tenant's limit: at most `limit` URLs at once, refilled at `limit` per `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateSpec {
    /// Tokens when full (1..).
    pub limit: u32,
    /// Time to refill from empty to full (> 0).
    pub per: Duration,
}

impl RateSpec {
    /// Time for one token to come back.
    #[must_use]
    pub fn interval(self) -> Duration {
        self.per / self.limit.max(1)
    }
}

/// How many limits below 0 a shared bucket, and so a mirrored one, may be: its deepest debt
/// (the replicas but one, counted up to 1000). A reply's `left` and the script's stored
/// `tokens` are clamped to it too.
pub(crate) const MAX_DEPTH: u32 = 999;

/// One bucket's state: tokens left (fractional while refilling) when last looked at.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    /// A full bucket.
    pub(crate) fn full(spec: RateSpec, now: Instant) -> Self {
        Self {
            tokens: f64::from(spec.limit),
            at: now,
        }
    }

    /// An empty bucket, refilling from `now`: where a replica sharing the tenant's rate through
    /// Redis starts each tenant, so that a start (a crash loop, a rollout while Redis is away)
    /// adds no burst of its own to what the replicas grant alone.
    pub(crate) fn empty(now: Instant) -> Self {
        Self {
            tokens: 0.0,
            at: now,
        }
    }

    /// Sets the tokens to `tokens` (at most the limit; below 0 as far as Redis bounds a debt)
    /// as of `now`: what the shared bucket held after its last decision, so a fallback counts
    /// on from there (from a debt too: a shared bucket below 0 grants nothing until it has
    /// refilled to 1).
    pub(crate) fn mirror(&mut self, spec: RateSpec, tokens: f64, now: Instant) {
        self.tokens = clamped(spec, tokens);
        self.at = now;
    }

    /// Lowers the tokens to `tokens` as of `now` if the bucket, refilled until then for one of
    /// `replicas` (as [`Self::take_sharing`] refills it), holds more; never raises them. What a
    /// charge's answer says is left may be fuller than this bucket for a reason it must not
    /// count on: Redis lost a charge already cleared here (a crash with `appendfsync everysec`),
    /// and raising the bucket to it would let this replica grant those URLs again alone.
    pub(crate) fn lower_to(&mut self, spec: RateSpec, tokens: f64, now: Instant, replicas: u32) {
        self.refill(spec, now, replicas);
        self.tokens = self.tokens.min(clamped(spec, tokens));
    }

    /// This bucket with `tokens` more as of its last look, not yet bounded by the limit (the
    /// next [`Self::refill`] bounds it): what the bucket would hold had it not granted them.
    #[must_use]
    pub(super) fn plus(mut self, tokens: f64) -> Self {
        self.tokens += tokens;
        self
    }

    /// Refills for the time since the last look, for one of `replicas` (at least 1): at
    /// `limit / replicas` per `per`. Returns that period, `per × replicas`, in seconds. The one
    /// refill rule of this process's counting (`owed.rs` refills its copies with it too).
    pub(super) fn refill(&mut self, spec: RateSpec, now: Instant, replicas: u32) -> f64 {
        let limit = f64::from(spec.limit);
        let per = spec.per.as_secs_f64() * f64::from(replicas.max(1));
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed / per * limit).min(limit);
        self.at = now;
        per
    }

    /// Tokens left as of the last look (fractional while refilling).
    pub(crate) fn tokens(&self) -> f64 {
        self.tokens
    }

    /// Refills for the time since the last look, then takes one token.
    ///
    /// # Errors
    /// The wait until a token is back, when none is left.
    #[cfg(test)]
    pub(crate) fn take(&mut self, spec: RateSpec, now: Instant) -> Result<(), Duration> {
        self.take_sharing(spec, now, 1)
    }

    /// Refills for the time since the last look, then takes one token, for one of `replicas`
    /// (at least 1; 1 without Redis) counting the same tenant alone: the bucket refills at
    /// `limit / replicas` per `per`, so the replicas together refill at the tenant's rate
    /// however long they count alone. The wait is at that rate too.
    ///
    /// # Errors
    /// The wait until a token is back, when none is left.
    pub(crate) fn take_sharing(
        &mut self,
        spec: RateSpec,
        now: Instant,
        replicas: u32,
    ) -> Result<(), Duration> {
        let per = self.refill(spec, now, replicas);
        let limit = f64::from(spec.limit);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            // Saturating: a huge debt at a slow rate is a wait beyond u64::MAX s.
            let wait = (1.0 - self.tokens) / limit * per;
            Err(Duration::try_from_secs_f64(wait).unwrap_or(Duration::MAX))
        }
    }
}

/// `tokens` within what a bucket may hold: at most the limit, at least [`MAX_DEPTH`] limits
/// below 0 (the deepest debt). `NaN.max(x)` is `x`: a NaN is the floor, never a NaN bucket.
fn clamped(spec: RateSpec, tokens: f64) -> f64 {
    let limit = f64::from(spec.limit);
    tokens.max(-limit * f64::from(MAX_DEPTH)).min(limit)
}

/// Whole seconds to put in `Retry-After`: rounded up, at least 1.
#[must_use]
pub fn retry_after(wait: Duration) -> u64 {
    let secs = wait.as_secs();
    let secs = if wait.subsec_nanos() > 0 {
        secs + 1
    } else {
        secs
    };
    secs.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIVE_A_MINUTE: RateSpec = RateSpec {
        limit: 5,
        per: Duration::from_secs(60),
    };

    #[test]
    fn a_burst_of_twelve_at_five_a_minute_gets_exactly_five() {
        let start = Instant::now();
        let mut bucket = Bucket::full(FIVE_A_MINUTE, start);
        let granted = (0..12_u64)
            .filter(|i| {
                bucket
                    .take(FIVE_A_MINUTE, start + Duration::from_millis(200 * i))
                    .is_ok()
            })
            .count();
        assert_eq!(granted, 5);
    }

    #[test]
    fn tokens_come_back_one_per_interval_and_never_beyond_the_limit() {
        let start = Instant::now();
        let mut bucket = Bucket::full(FIVE_A_MINUTE, start);
        for _ in 0..5 {
            bucket.take(FIVE_A_MINUTE, start).unwrap();
        }
        let wait = bucket.take(FIVE_A_MINUTE, start).unwrap_err();
        assert_eq!(wait, Duration::from_secs(12));
        assert_eq!(retry_after(wait), 12);
        let mut early = bucket;
        assert!(early
            .take(FIVE_A_MINUTE, start + Duration::from_secs(11))
            .is_err());
        assert!(bucket
            .take(FIVE_A_MINUTE, start + Duration::from_secs(12))
            .is_ok());
        // An hour idle fills the bucket, to 5 and no more.
        let later = start + Duration::from_secs(3600);
        let granted = (0..10)
            .filter(|_| bucket.take(FIVE_A_MINUTE, later).is_ok())
            .count();
        assert_eq!(granted, 5);
    }

    #[test]
    fn a_mirrored_bucket_counts_on_from_what_was_left_and_refills_from_then() {
        let start = Instant::now();
        let mut bucket = Bucket::full(FIVE_A_MINUTE, start);
        bucket.mirror(FIVE_A_MINUTE, 0.5, start);
        assert_eq!(
            bucket.take(FIVE_A_MINUTE, start).unwrap_err(),
            Duration::from_secs(6)
        );
        assert!(bucket
            .take(FIVE_A_MINUTE, start + Duration::from_secs(6))
            .is_ok());
        // A shared bucket in debt: nothing until it has refilled to 1 (from -2: 36 s at 5/60).
        bucket.mirror(FIVE_A_MINUTE, -2.0, start);
        assert_eq!(
            bucket.take(FIVE_A_MINUTE, start).unwrap_err(),
            Duration::from_secs(36)
        );
        bucket.mirror(FIVE_A_MINUTE, 99.0, start);
        let granted = (0..10)
            .filter(|_| bucket.take(FIVE_A_MINUTE, start).is_ok())
            .count();
        assert_eq!(granted, 5, "never beyond the limit");
    }

    #[test]
    fn a_replica_among_three_refills_at_a_third_of_the_rate() {
        let start = Instant::now();
        let mut bucket = Bucket::full(FIVE_A_MINUTE, start);
        bucket.mirror(FIVE_A_MINUTE, 0.0, start);
        // One token every 12 s for the tenant, so every 36 s for one replica of three.
        assert_eq!(
            bucket.take_sharing(FIVE_A_MINUTE, start, 3).unwrap_err(),
            Duration::from_secs(36)
        );
        let minute = start + Duration::from_secs(60);
        let granted = (0..10)
            .filter(|_| bucket.take_sharing(FIVE_A_MINUTE, minute, 3).is_ok())
            .count();
        assert_eq!(granted, 1, "5/3 tokens refilled in a minute");
        // The burst stays the limit: an hour alone fills it, to 5 and no more.
        let hour = start + Duration::from_secs(3600);
        let granted = (0..10)
            .filter(|_| bucket.take_sharing(FIVE_A_MINUTE, hour, 3).is_ok())
            .count();
        assert_eq!(granted, 5);
        // Zero replicas counts as one.
        bucket.mirror(FIVE_A_MINUTE, 0.0, start);
        assert_eq!(
            bucket.take_sharing(FIVE_A_MINUTE, start, 0).unwrap_err(),
            Duration::from_secs(12)
        );
    }

    #[test]
    fn a_lowered_bucket_takes_the_smaller_of_its_own_count_and_the_answer() {
        let start = Instant::now();
        let mut bucket = Bucket::full(FIVE_A_MINUTE, start);
        bucket.mirror(FIVE_A_MINUTE, 1.0, start);
        // A fuller answer (5) leaves the bucket at its own count: 1, refilled at a third of the
        // rate for 18 s (5 a minute for three: half a token) = 1.5.
        let later = start + Duration::from_secs(18);
        bucket.lower_to(FIVE_A_MINUTE, 5.0, later, 3);
        assert!((bucket.tokens() - 1.5).abs() < 1e-9, "{}", bucket.tokens());
        // An emptier one (a debt charged) lowers it, and it refills from there.
        bucket.lower_to(FIVE_A_MINUTE, -2.0, later, 3);
        assert!((bucket.tokens() + 2.0).abs() < 1e-9);
        assert_eq!(
            bucket.take_sharing(FIVE_A_MINUTE, later, 1).unwrap_err(),
            Duration::from_secs(36)
        );
        bucket.lower_to(FIVE_A_MINUTE, f64::NAN, later, 1);
        assert!(bucket.tokens() >= -5.0 * f64::from(MAX_DEPTH));
    }

    #[test]
    fn an_extreme_mirrored_value_gives_a_wait_not_a_panic() {
        let start = Instant::now();
        let yearly = RateSpec {
            limit: 1,
            per: Duration::from_secs(365 * 24 * 3600),
        };
        let mut bucket = Bucket::full(yearly, start);
        for tokens in [f64::NEG_INFINITY, -9.2e12, f64::NAN, f64::MIN] {
            bucket.mirror(yearly, tokens, start);
            assert!(
                bucket.tokens() >= -f64::from(MAX_DEPTH),
                "{tokens} mirrored as {}",
                bucket.tokens()
            );
            let wait = bucket.take_sharing(yearly, start, 1000).unwrap_err();
            assert!(wait > Duration::from_secs(1), "{tokens}: {wait:?}");
        }
        // Not clamped on the way in, a debt this deep still saturates instead of panicking.
        let mut deep = Bucket {
            tokens: -9.2e12,
            at: start,
        };
        assert_eq!(deep.take_sharing(yearly, start, 3), Err(Duration::MAX));
        bucket.mirror(yearly, f64::INFINITY, start);
        assert!(bucket.take(yearly, start).is_ok(), "+inf mirrors as full");
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after(Duration::from_millis(1)), 1);
        assert_eq!(retry_after(Duration::from_millis(12_001)), 13);
        assert_eq!(retry_after(Duration::ZERO), 1);
    }
}
