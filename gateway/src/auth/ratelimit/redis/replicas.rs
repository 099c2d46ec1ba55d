//! How many replicas share the buckets, so that a charge may take a tenant's shared bucket as
//! far below 0 as the replicas could have granted alone: each replica owes a tenant at most a
//! limit (`owed.rs`), so with R replicas the bucket may owe (R − 1) limits (the Redis bucket
//! itself holds the first). Each probe Redis decided in time adds this replica to a sorted set
//! of ids ([`REPLICAS_LUA`](super::script::REPLICAS_LUA)) and reads how many probed within
//! [`COUNTED_FOR`]. The count is kept from before an outage until Redis is healthy again (a
//! probe that recovers only raises it), so the debts charged on recovery use the replicas that
//! were serving, not only those whose probes came back first. A replica counting alone shares
//! the rate with at least the configured hint (`DRAFTSTORE_RATE_LIMIT_REPLICAS`, 1 by default),
//! also before its first count: one started while Redis is away would otherwise count itself
//! alone (R = 1) and refill every tenant's bucket at the full rate, and the replicas counted
//! before the outage cannot see it, so only a floor of the most replicas that may run keeps
//! their refills within the rate together.

use super::super::outage::{describe, timed_out, Throttle};
use super::super::MAX_REPLICAS;
use super::{RedisLimiter, PROBE_TIMEOUT};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// A replica counts while it probed within this long (probes come once a second).
const COUNTED_FOR: Duration = Duration::from_secs(10);

/// This process's id among the replicas and how many it last counted.
#[derive(Debug)]
pub(super) struct Replicas {
    id: String,
    /// The sorted set of ids: `<prefix>_replicas`.
    key: String,
    count: AtomicU32,
    /// `DRAFTSTORE_RATE_LIMIT_REPLICAS`: the fewest replicas a replica counting alone assumes.
    hint: u32,
    script: redis::Script,
    /// The WARNs about counts that failed.
    failures: Throttle,
}

impl Replicas {
    /// A random id under `prefix`; `hint` replicas (at least 1, at most [`MAX_REPLICAS`]) until
    /// counted, and never fewer than `hint` when sharing the rate.
    pub(super) fn new(hint: u32, prefix: &str) -> Self {
        let hint = hint.clamp(1, MAX_REPLICAS);
        Self {
            // Ids must only differ between live replicas: not a secret.
            id: hex::encode(fastrand::u64(..).to_le_bytes()),
            key: format!("{prefix}_replicas"),
            count: AtomicU32::new(hint),
            hint,
            script: redis::Script::new(super::script::REPLICAS_LUA),
            failures: Throttle::default(),
        }
    }

    /// How many replicas a replica counting alone shares the tenant's rate with: the replicas
    /// last counted, and at least the hint (clamped to 1.. by `new`). The hint is a floor, not only a start:
    /// replicas counted before an outage cannot see one started during it, so only a floor of
    /// the most replicas that may run keeps their refills together within the rate.
    pub(super) fn count(&self) -> u32 {
        self.count.load(Ordering::Relaxed).max(self.hint)
    }

    /// Sets `draftstore_rate_limit_replicas` to [`Self::count`], so operators see the R every
    /// replica counting alone divides the rate by.
    pub(super) fn publish(&self) {
        crate::metrics::get()
            .rate_limit_replicas
            .set(i64::from(self.count()));
    }

    /// How many limits a charge may take the shared bucket below 0: the replicas but one, at
    /// least 1 (the script's `ARGV[6]`).
    pub(super) fn depth(&self) -> u32 {
        self.count.load(Ordering::Relaxed).saturating_sub(1).max(1)
    }
}

impl RedisLimiter {
    /// How many replicas share the buckets, as last counted in Redis (at least 1; the
    /// configured hint until the first probe counted them).
    pub(in super::super) fn replicas(&self) -> u32 {
        self.replicas.count()
    }

    /// Adds this replica to the count and reads it (bounded by [`PROBE_TIMEOUT`]); while
    /// `recovering`, only raises it. A failure keeps the last count (at least the hint; never 1
    /// unless so counted or configured) and is logged, at most once a minute: the probe that
    /// decided in time judges Redis's health, but a count that keeps failing (a key the
    /// credentials may not touch, a damaged key) leaves each replica sharing the rate with a
    /// stale number.
    pub(super) async fn count_replicas(&self, recovering: bool) {
        let mut connection = self.connection();
        let mut invocation = self.replicas.script.key(&self.replicas.key);
        invocation
            .arg(&self.replicas.id)
            .arg(u64::try_from(COUNTED_FOR.as_micros()).unwrap_or(u64::MAX));
        let call = invocation.invoke_async::<(u32, i64)>(&mut connection);
        let (counted, repaired) = match tokio::time::timeout(PROBE_TIMEOUT, call).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(e)) => return self.count_failed(&describe(&e, self.link(PROBE_TIMEOUT))),
            Err(_) => return self.count_failed(&timed_out(self.link(PROBE_TIMEOUT))),
        };
        if repaired == 1 {
            self.repaired(&self.replicas.key);
        }
        let counted = counted.clamp(1, MAX_REPLICAS);
        if recovering {
            self.replicas.count.fetch_max(counted, Ordering::Relaxed);
        } else {
            self.replicas.count.store(counted, Ordering::Relaxed);
        }
        self.replicas.publish();
    }

    /// A count failed (`why`): the last count stays; a WARN at most once a minute.
    fn count_failed(&self, why: &str) {
        if let Some(failures) = self.replicas.failures.due() {
            tracing::warn!(
                failures,
                error = why,
                replicas = self.replicas(),
                "rate limits: counting the replicas in Redis (the key <prefix>_replicas) failed; the last count is kept (at least DRAFTSTORE_RATE_LIMIT_REPLICAS) until one succeeds (logged at most once a minute)"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn until_counted_a_replica_assumes_the_hint() {
        assert_eq!(
            Replicas::new(1, "p:").count(),
            1,
            "the default: today's behaviour"
        );
        let hinted = Replicas::new(12, "p:");
        assert_eq!((hinted.count(), hinted.depth()), (12, 11));
        // Counted fewer: the hint stays the floor of the sharing, the depth follows the count.
        hinted.count.store(3, Ordering::Relaxed);
        assert_eq!((hinted.count(), hinted.depth()), (12, 2));
        hinted.count.store(20, Ordering::Relaxed);
        assert_eq!((hinted.count(), hinted.depth()), (20, 19));
        assert_eq!(Replicas::new(0, "p:").count(), 1, "never 0");
        assert_eq!(Replicas::new(1, "p:").key, "p:_replicas");
        assert_eq!(Replicas::new(u32::MAX, "p:").count(), MAX_REPLICAS);
    }
}
