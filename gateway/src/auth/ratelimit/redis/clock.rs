//! Redis's clock as this process knows it: the offset of the server's µs clock from ours, read
//! from every answer (and from `TIME` before the first), so a decision's deadline is written in
//! Redis's own clock.

use super::{RedisLimiter, UNKNOWN};
use redis::aio::ConnectionManager;
use std::sync::atomic::Ordering;
use std::time::Instant;

impl RedisLimiter {
    /// Asks Redis its time, records the offset and returns it.
    pub(super) async fn sync_clock(
        &self,
        connection: &mut ConnectionManager,
    ) -> redis::RedisResult<i64> {
        let sent = Instant::now();
        let (secs, micros): (i64, i64) = redis::cmd("TIME").query_async(connection).await?;
        Ok(self.observe_clock(secs.saturating_mul(1_000_000).saturating_add(micros), sent))
    }

    /// Records Redis's clock (`now_us`, in an answer to a call `sent` then) against ours;
    /// returns the offset. An answer slower than a decision's bound is kept only when nothing
    /// better is known: it errs early by its slowness, and would make the next deadlines early
    /// (decisions refused as `late`) until a faster one corrects it.
    pub(super) fn observe_clock(&self, now_us: i64, sent: Instant) -> i64 {
        let received = Instant::now();
        let offset = now_us.saturating_sub(self.local_us(received));
        if received.duration_since(sent) <= self.timeout
            || self.offset_us.load(Ordering::Relaxed) == UNKNOWN
        {
            self.offset_us.store(offset, Ordering::Relaxed);
        }
        offset
    }

    /// µs of `at` on this process's clock.
    pub(super) fn local_us(&self, at: Instant) -> i64 {
        i64::try_from(at.saturating_duration_since(self.epoch).as_micros()).unwrap_or(i64::MAX)
    }
}
