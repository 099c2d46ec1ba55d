//! Exponential backoff with full jitter, within a bounded number of attempts.

use std::time::Duration;

#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base: Duration,
    pub max: Duration,
}

impl RetryPolicy {
    /// The pause before attempt `attempt + 1` (after `attempt` failures): uniform in
    /// `0..=min(max, base * 2^(attempt-1))`.
    pub fn backoff(&self, attempt: u32, unit: f64) -> Duration {
        let exp = self
            .base
            .saturating_mul(1_u32 << attempt.saturating_sub(1).min(20));
        exp.min(self.max).mul_f64(unit.clamp(0.0, 1.0))
    }

    pub fn jittered(&self, attempt: u32) -> Duration {
        self.backoff(attempt, fastrand::f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_and_caps() {
        let p = RetryPolicy {
            max_attempts: 5,
            base: Duration::from_millis(100),
            max: Duration::from_millis(1000),
        };
        assert_eq!(p.backoff(1, 1.0), Duration::from_millis(100));
        assert_eq!(p.backoff(2, 1.0), Duration::from_millis(200));
        assert_eq!(p.backoff(4, 1.0), Duration::from_millis(800));
        assert_eq!(p.backoff(5, 1.0), Duration::from_millis(1000));
        assert_eq!(p.backoff(60, 1.0), Duration::from_millis(1000));
        assert_eq!(p.backoff(3, 0.0), Duration::ZERO);
        assert!(p.jittered(3) <= Duration::from_millis(400));
    }
}
