//! The shared limiter's background probe, once a second: a decision on a key of its own tells
//! whether Redis decides again within a decision's bound (recovery needs nothing from anyone),
//! and keeps Redis's clock known. Whenever Redis decided in time, the probe then charges every
//! debt this process holds (`debts.rs`), before requests use Redis again: what a replica
//! granted alone reaches the shared bucket at once, not only with the tenant's next request
//! here (which the load balancer may send to another replica).

use super::super::debts::Debt;
use super::super::outage::{describe, per_key, slow, timed_out};
use super::super::owed::Charge;
use super::super::{lower, set_status};
use super::decision::left_tokens;
use super::{count, per_us, RedisLimiter, PROBE_TIMEOUT, REDIAL_AFTER_TIMEOUTS};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// How often the background task probes Redis (its health check and clock sample).
const PROBE_EVERY: Duration = Duration::from_secs(1);
/// Debts charged at once, in flight together on the one multiplexed connection.
const CHARGE_AT_ONCE: usize = 64;

/// Probes at once (connecting, and learning Redis's clock, before the first request needs
/// it), then once a second while the limiter lives.
pub(super) async fn run(limiter: Weak<RedisLimiter>) {
    loop {
        let Some(strong) = limiter.upgrade() else {
            return;
        };
        strong.probe().await;
        drop(strong);
        tokio::time::sleep(PROBE_EVERY).await;
    }
}

/// Whether `e` is a connection set-up failure the `redis` crate keeps for good (it reconnects
/// only after I/O errors): refused credentials (`AuthenticationFailed`, `NOAUTH`,
/// `WRONGPASS`) or a server still loading its data (`LOADING`).
fn needs_redial(e: &redis::RedisError) -> bool {
    e.kind() == redis::ErrorKind::AuthenticationFailed
        || matches!(e.code(), Some("NOAUTH" | "WRONGPASS" | "LOADING"))
}

impl RedisLimiter {
    /// Runs the decision script (bounded by [`PROBE_TIMEOUT`]) on the probe's own key and
    /// records the outcome: recovery is a decision Redis made within a decision's bound, not
    /// merely an answer (a Redis that answers `TIME` but refuses writes, `NOREPLICAS`, `OOM`,
    /// `READONLY`, still decides nothing; one that decides slower than the bound would only
    /// make requests wait the bound and fail again). The key is the prefix alone: no tenant's
    /// key, as tenants are never empty and never hold `:`; one token a second, it expires
    /// within about 2 s. A decision in time counts the replicas (`replicas.rs`), charges the
    /// debts, then counts as recovery.
    async fn probe(self: &Arc<Self>) {
        let started = Instant::now();
        let call = Arc::clone(self).decide(
            self.prefix.clone(),
            1,
            1_000_000,
            started + PROBE_TIMEOUT,
            0,
            1,
        );
        let answer = tokio::time::timeout(PROBE_TIMEOUT, call).await;
        let took = started.elapsed();
        if answer.is_ok() {
            self.probe_timeouts.store(0, Ordering::Relaxed);
        }
        match answer {
            // Past its deadline (a clock estimate just corrected by this answer): the script
            // wrote nothing, so it says nothing of writes; the next probe does.
            Ok(Ok(reply)) if !reply.ran() => {}
            // Slower than the bound while Redis is failing: not a recovery. (While Redis
            // decides, requests' own decisions judge its speed; a slow first connection, its
            // set-up included, is not held against it.)
            Ok(Ok(_)) if took > self.timeout && self.failures.load(Ordering::Relaxed) > 0 => {
                count("slow");
                self.failures.fetch_add(1, Ordering::Relaxed);
                set_status(false);
                self.outage.slow(&slow(took, self.timeout), self.on_error);
            }
            // In time. Healthy: count the replicas and charge what a decision that failed
            // alone left owing. Recovering: the same first, and Redis is called recovered only
            // if every charge applied and no failure came meanwhile (a request's decision
            // failing while the charges ran is newer news than this probe's answer).
            Ok(Ok(_)) => {
                let failures = self.failures.load(Ordering::Relaxed);
                self.count_replicas(failures > 0).await;
                let charged = self.charge_debts().await;
                if failures > 0 && charged {
                    self.recovered_from(failures);
                }
            }
            // A probe failed by a set-up error the crate does not recover from dials anew next
            // time (`redial`); after a timeout or an I/O error the crate reconnects by itself,
            // and a healthy connection to a Redis that is only slow is kept.
            Ok(Err(e)) => {
                self.failed("error", &describe(&e, self.link(PROBE_TIMEOUT)));
                if needs_redial(&e) {
                    self.redial();
                }
            }
            // A connection that stopped answering raises no I/O error (half-open TCP): kept
            // after one timeout (a Redis slow for a moment keeps its connection), dialled anew
            // after REDIAL_AFTER_TIMEOUTS in a row.
            Err(_) => {
                self.failed("timeout", &timed_out(self.link(PROBE_TIMEOUT)));
                let timeouts = self.probe_timeouts.fetch_add(1, Ordering::Relaxed) + 1;
                if timeouts >= REDIAL_AFTER_TIMEOUTS {
                    self.probe_timeouts.store(0, Ordering::Relaxed);
                    self.redial();
                }
            }
        }
    }

    /// Charges every listed debt, [`CHARGE_AT_ONCE`] at a time; after a batch Redis did not
    /// all apply, the rest stays listed for the next probe (bounded work per probe). `true`
    /// when every debt was charged (or none was listed).
    async fn charge_debts(self: &Arc<Self>) -> bool {
        let debts = self.debts.take();
        if debts.is_empty() {
            return true;
        }
        let mut debts = debts.into_iter();
        loop {
            let batch: Vec<Debt> = debts.by_ref().take(CHARGE_AT_ONCE).collect();
            if batch.is_empty() {
                return true;
            }
            let applied = futures_util::future::join_all(batch.into_iter().map(|d| self.charge(d)));
            if applied.await.contains(&false) {
                for debt in debts {
                    self.debts.relist(&debt);
                }
                return false;
            }
        }
    }

    /// Charges one tenant's debt alone (the script with a cost of 0, a deadline of
    /// [`PROBE_TIMEOUT`]): taken off the debt only when Redis answered that it applied it, so
    /// an answer lost after the script ran charges it twice at most (the next charge), never
    /// less; what the answer says the shared bucket holds lowers the local bucket (never raises
    /// it).
    /// `false` when Redis did not apply it (the debt stays listed).
    async fn charge(self: &Arc<Self>, debt: Debt) -> bool {
        let started = Instant::now();
        let Some(charge) = Charge::claim(&debt.owed, debt.spec, started) else {
            // Nothing owed any more, or a request's decision carries it right now (listed
            // again in case that one fails).
            if debt.owed.pending(debt.spec, started) {
                self.debts.relist(&debt);
            }
            return true;
        };
        let call = Arc::clone(self).decide(
            self.key(&debt.tenant),
            debt.spec.limit,
            per_us(debt.spec),
            started + PROBE_TIMEOUT,
            charge.millionths(),
            0,
        );
        let outcome = tokio::time::timeout(PROBE_TIMEOUT, call).await;
        if let Ok(Ok(reply)) = outcome {
            if reply.ran() {
                charge.applied();
                count("charged");
                // What the shared bucket holds now, debt included, if that is less than the
                // local bucket holds: a replica that falls back again counts on from there.
                // Never more (`lower`): a fuller answer may hide a charge Redis lost.
                let left = left_tokens(reply.left, debt.spec.limit, self.replicas.depth());
                lower(
                    &debt.local,
                    debt.spec,
                    left,
                    reply.server_us,
                    self.replicas(),
                );
                return true;
            }
        }
        drop(charge);
        self.debts.relist(&debt);
        if let Ok(Err(e)) = &outcome {
            if per_key(e) {
                // That tenant's key, not Redis: the debt stays listed, and recovery (for every
                // tenant) does not wait for it.
                self.key_failed(&debt.tenant, e);
                return true;
            }
        }
        count(match outcome {
            Ok(Ok(_)) => "late",
            Ok(Err(_)) => "error",
            Err(_) => "timeout",
        });
        false
    }
}

#[cfg(test)]
mod tests {
    use super::needs_redial;

    #[test]
    fn only_set_up_failures_the_crate_keeps_dial_anew() {
        let auth = redis::RedisError::from((redis::ErrorKind::AuthenticationFailed, "refused"));
        assert!(needs_redial(&auth));
        let io = redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut));
        assert!(!needs_redial(&io), "the crate reconnects after I/O errors");
        let reset =
            redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert!(!needs_redial(&reset));
    }
}
