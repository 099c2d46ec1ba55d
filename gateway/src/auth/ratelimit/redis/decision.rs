//! One decision in Redis: the script run within the bound (`decide_charging`), what its answer
//! says ([`Reply`]), and a decision given up on settled when its answer comes after all
//! (`settle`: a late grant given back, a late charge no longer owed).

use super::super::outage::{describe, per_key, timed_out};
use super::super::owed::{Charge, Owed};
use super::super::RateSpec;
use super::{count, per_us, RedisLimiter, Shared, Unanswered, PROBE_TIMEOUT, UNKNOWN};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A decision script's answer ([`LUA`](super::LUA)'s `{granted, wait, now, left, repaired}`;
/// `repaired` is acted on when it comes: `RedisLimiter::repaired`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Reply {
    /// 1 granted, 0 limited, 2 a charge alone, -1 past its deadline (nothing done).
    pub(super) granted: i64,
    /// µs until a token is back (when limited).
    pub(super) wait_us: i64,
    /// The server's clock when it decided, µs since the Unix epoch.
    pub(super) server_us: i64,
    /// Tokens left in the shared bucket, in millionths.
    pub(super) left: i64,
}

impl Reply {
    /// Whether the script ran before its deadline: the step, and a charge it carried, is in the
    /// bucket (`granted` is not -1).
    pub(super) fn ran(self) -> bool {
        self.granted >= 0
    }
}

impl RedisLimiter {
    /// One decision for `tenant` at `spec`, carrying what `owed` holds (if any) as a charge.
    pub(super) async fn decide_charging(
        self: &Arc<Self>,
        tenant: &str,
        spec: RateSpec,
        owed: Option<&Arc<Owed>>,
    ) -> Result<Shared, Unanswered> {
        if self.failures.load(Ordering::Relaxed) >= super::OPEN_AFTER {
            count("skipped");
            return Err(Unanswered);
        }
        let started = Instant::now();
        let charge = owed.and_then(|owed| Charge::claim(owed, spec, started));
        let mut call = Box::pin(Arc::clone(self).decide(
            self.key(tenant),
            spec.limit,
            per_us(spec),
            started + self.timeout,
            charge.as_ref().map_or(0, Charge::millionths),
            1,
        ));
        match tokio::time::timeout(self.timeout, &mut call).await {
            Ok(Ok(reply)) => {
                crate::metrics::get()
                    .rate_limit_redis_seconds
                    .observe(started.elapsed().as_secs_f64());
                self.succeeded();
                let charged = match charge {
                    // The script ran before its deadline: the charge is in the bucket.
                    Some(charge) if reply.ran() => {
                        charge.applied();
                        true
                    }
                    _ => false,
                };
                let shared = |decision| Shared {
                    decision,
                    left: left_tokens(reply.left, spec.limit, self.replicas.depth()),
                    server_us: reply.server_us,
                    charged,
                };
                match reply.granted {
                    1 => {
                        count("granted");
                        Ok(shared(Ok(())))
                    }
                    0 => {
                        count("limited");
                        Ok(shared(Err(Duration::from_micros(
                            u64::try_from(reply.wait_us).unwrap_or(0),
                        ))))
                    }
                    // Answered in time but past the deadline (the clock estimate was early,
                    // and is corrected by this answer): nothing was spent.
                    _ => {
                        count("late");
                        Err(Unanswered)
                    }
                }
            }
            // One tenant's key failing the script is that tenant's decision failing, not Redis
            // failing every tenant: the fallback for this decision only.
            Ok(Err(e)) if per_key(&e) => {
                self.key_failed(tenant, &e);
                Err(Unanswered)
            }
            Ok(Err(e)) => {
                self.failed("error", &describe(&e, self.link(self.timeout)));
                Err(Unanswered)
            }
            Err(_) => {
                self.failed("timeout", &timed_out(self.link(self.timeout)));
                tokio::spawn(Arc::clone(self).settle(call, self.key(tenant), spec.limit, charge));
                Err(Unanswered)
            }
        }
    }

    /// Runs the script with a deadline of `give_up` in Redis's clock (asking Redis its time
    /// first when no answer has told it yet), charging `owed` millionths of a token and taking
    /// `cost` tokens (1: a decision; 0: a charge alone).
    pub(super) async fn decide(
        self: Arc<Self>,
        key: String,
        limit: u32,
        per_us: u64,
        give_up: Instant,
        owed: u64,
        cost: u8,
    ) -> redis::RedisResult<Reply> {
        let mut connection = self.connection();
        let mut offset = self.offset_us.load(Ordering::Relaxed);
        if offset == UNKNOWN {
            offset = self.sync_clock(&mut connection).await?;
        }
        let deadline = self.local_us(give_up).saturating_add(offset);
        let mut invocation = self.script.key(&key);
        invocation
            .arg(limit)
            .arg(per_us)
            .arg(deadline)
            .arg(owed)
            .arg(cost)
            .arg(self.replicas.depth());
        let sent = Instant::now();
        let (granted, wait_us, server_us, left, repaired): (i64, i64, i64, i64, i64) =
            invocation.invoke_async(&mut connection).await?;
        self.observe_clock(server_us, sent);
        if repaired == 1 {
            self.repaired(&key);
        }
        Ok(Reply {
            granted,
            wait_us,
            server_us,
            left,
        })
    }

    /// Awaits the answer of a decision given up on: a grant that was spent after all is given
    /// back, so the decision counts once (by the fallback) and not again in Redis; a charge the
    /// script applied is no longer owed (one that did not, or with no answer, stays owed).
    async fn settle(
        self: Arc<Self>,
        call: Pin<Box<impl Future<Output = redis::RedisResult<Reply>>>>,
        key: String,
        limit: u32,
        charge: Option<Charge>,
    ) {
        let Ok(Ok(reply)) = tokio::time::timeout(PROBE_TIMEOUT, call).await else {
            return;
        };
        if let Some(charge) = charge.filter(|_| reply.ran()) {
            charge.applied();
        }
        if reply.granted != 1 {
            return;
        }
        let mut connection = self.connection();
        let mut invocation = self.refund.key(&key);
        invocation.arg(limit);
        let refund = invocation.invoke_async::<i64>(&mut connection);
        match tokio::time::timeout(PROBE_TIMEOUT, refund).await {
            Ok(Ok(_)) => count("refunded"),
            Ok(Err(e)) if per_key(&e) => self.key_failed(self.tenant_of(&key), &e),
            Ok(Err(e)) => self.failed("error", &describe(&e, self.link(PROBE_TIMEOUT))),
            Err(_) => self.failed("timeout", &timed_out(self.link(PROBE_TIMEOUT))),
        }
    }
}

/// The tokens a reply says are left (`left`, in millionths), as tokens, within what the script
/// can leave: `-limit × max(1, depth)..=limit`, `depth` the limits the bucket may owe (the
/// replicas but one, the script's `ARGV[6]`). A damaged or hand-written `tokens` field
/// (`-inf` or `-9e12`, which Lua's `tonumber` accepts, or a huge number) would otherwise reach
/// the local bucket, and a wait computed from it would be periods, or centuries, long.
pub(super) fn left_tokens(left: i64, limit: u32, depth: u32) -> f64 {
    let limit = f64::from(limit);
    #[allow(clippy::cast_precision_loss)] // millionths: a few ulps do not matter
    let left = left as f64 / 1_000_000.0;
    left.max(-limit * f64::from(depth.max(1))).min(limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_reply_says_is_left_is_clamped_to_what_the_script_can_leave() {
        assert!((left_tokens(2_500_000, 5, 2) - 2.5).abs() < 1e-12);
        assert!((left_tokens(-7_000_000, 5, 2) + 7.0).abs() < 1e-12);
        // `tokens=-inf` comes back as about i64::MIN millionths; a huge field as i64::MAX.
        // The floor is the replicas' (here 3: two limits), not 999 limits.
        assert!((left_tokens(i64::MIN, 5, 2) + 10.0).abs() < 1e-9);
        assert!((left_tokens(-9_000_000_000_000_000_000, 5, 2) + 10.0).abs() < 1e-9);
        assert!(
            (left_tokens(i64::MIN, 5, 0) + 5.0).abs() < 1e-9,
            "at least one limit"
        );
        assert!((left_tokens(i64::MAX, 5, 2) - 5.0).abs() < 1e-12);
    }

    #[test]
    fn a_reply_ran_unless_past_its_deadline() {
        let reply = |granted| Reply {
            granted,
            wait_us: 0,
            server_us: 0,
            left: 0,
        };
        assert!([1, 0, 2].into_iter().all(|g| reply(g).ran()));
        assert!(!reply(-1).ran());
    }
}
