//! The token bucket counted in Redis, shared by every replica: one `EVALSHA` of [`LUA`]
//! (`script.rs`) per decision (atomic on the server, on the server's clock, so replicas'
//! clocks do not matter), through the `redis` crate's `ConnectionManager` (one multiplexed
//! connection, reconnected in the background after an I/O error). A connection whose set-up
//! failed otherwise (refused credentials `WRONGPASS`, `NOAUTH`, `LOADING`, a handshake) is
//! kept by the crate as failed for good; so after a probe failed by one of those the manager is
//! replaced by a fresh one (`RedisLimiter::redial`), and the next probe dials again: at most one
//! dial per probe period, and recovery needs no restart. An I/O error keeps the manager (the
//! crate reconnects by itself), and so does a timeout: a Redis that is only slow keeps its
//! connection. But [`REDIAL_AFTER_TIMEOUTS`] probes in a row timed out (about 6 s) dial anew: a
//! connection that silently stops answering (half-open TCP after a failover behind a virtual
//! IP, a dropped conntrack entry) raises no I/O error, and the crate would keep it for good.
//!
//! A decision waits at most the configured bound (`DRAFTSTORE_RATE_LIMIT_TIMEOUT_MS`, 20 ms by
//! default); a failure or timeout is [`Unanswered`] and the caller applies the fallback. A
//! decision given up on is never also counted in Redis: the script carries the moment the
//! gateway gives up, in Redis's own clock (estimated from the server time of the last reply),
//! and spends nothing when it runs later (a frozen or overloaded Redis runs queued scripts when
//! it catches up); a grant whose reply was still on its way when the gateway gave up is given
//! back ([`REFUND_LUA`]). After [`OPEN_AFTER`] failures in a row Redis is skipped (no request
//! waits for it) until a background decision (`probe.rs`), once a second on a key of its own,
//! succeeds again within the decision's bound: recovery needs nothing from anyone, and is a
//! decision Redis made in time (a Redis that answers but refuses writes, `NOREPLICAS`, `OOM`,
//! `READONLY`, or answers slower than the bound, has not recovered). Each decision's answer
//! says what it left in the shared bucket ([`Shared::left`]), which the caller mirrors into its
//! local bucket (only lowering it when the decision carried a charge, [`Shared::charged`]): a
//! fallback starts from what was left, not from a full bucket; and what the
//! fallback granted is charged to Redis with the tenant's next decision (`owed.rs`), or by the
//! probe as soon as Redis decides again, whichever comes first (`debts.rs`). Failures are
//! counted in `draftstore_rate_limit_redis_calls_total{outcome}` and logged as `outage.rs`
//! says.

mod probe;
mod replicas;
mod script;
mod url;

pub use script::{KEY_ERROR, LUA, REFUND_LUA};
pub use url::check_url;
use url::client;

use super::debts::Debts;
use super::outage::{describe, per_key, timed_out, Link, Outage, Throttle};
use super::owed::{Charge, Owed};
use super::{set_status, Local, OnError, RateSpec, RedisConfig};
use arc_swap::ArcSwap;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use replicas::Replicas;
use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Failures in a row after which requests stop waiting for Redis until it answers again.
pub const OPEN_AFTER: u32 = 3;
/// A probe's bound, and how long an answer given up on is still awaited to be settled.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// Probes in a row that timed out after which the connection is dialled anew (one timeout
/// keeps it: a Redis only slow for a moment keeps its connection).
const REDIAL_AFTER_TIMEOUTS: u32 = 3;
/// `offset_us` before any answer.
const UNKNOWN: i64 = i64::MIN;

/// Redis gave no decision within the bound (down, slow, or an error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unanswered;

/// The shared limiter: a connection to Redis, the scripts, and how healthy Redis looks.
pub struct RedisLimiter {
    /// The current manager; replaced after a failed probe (`redial`). A request's cost is one
    /// load of it.
    connection: ArcSwap<ConnectionManager>,
    /// What a fresh manager is built from (the client holds the credentials; never printed).
    client: redis::Client,
    manager: ConnectionManagerConfig,
    script: Arc<redis::Script>,
    refund: redis::Script,
    prefix: String,
    timeout: Duration,
    on_error: OnError,
    tls: bool,
    /// The origin of this process's µs clock (`local_us`).
    epoch: Instant,
    /// Redis's clock minus ours, in µs, from the last answer ([`UNKNOWN`] before one). An
    /// answer's server time is taken before it travels back, so this errs early: a deadline
    /// computed from it is never later than the moment the gateway gives up.
    offset_us: AtomicI64,
    /// Failures in a row (decisions and probes); at [`OPEN_AFTER`] requests skip Redis.
    failures: AtomicU32,
    /// Probes in a row that timed out; at [`REDIAL_AFTER_TIMEOUTS`] the probe dials anew.
    probe_timeouts: AtomicU32,
    outage: Outage,
    /// The tenants this process owes the shared bucket for, charged by the probe.
    debts: Debts,
    /// How many replicas share the buckets (how deep a charge may take one below 0).
    replicas: Replicas,
    /// The WARNs about keys of the wrong type the scripts replaced.
    repairs: Throttle,
    /// The WARNs about one tenant's decisions failing (not the link's).
    key_errors: Throttle,
}

/// A decision's answer: `granted` 1, 0 (limited), 2 (a charge alone) or -1 (past its
/// deadline); `wait` in µs; the server's clock in µs; the tokens left in millionths; 1 when the
/// script replaced a key of the wrong type.
type Reply = (i64, i64, i64, i64, i64);

/// One decision Redis made, with what it left in the tenant's shared bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shared {
    /// `Ok(())` granted, `Err(wait)` limited (a token is back after `wait`).
    pub decision: Result<(), Duration>,
    /// Tokens left in the shared bucket after this decision (from -max(1, replicas - 1) × limit
    /// to limit, fractional while refilling; below 0 while it pays back what replicas granted
    /// alone).
    pub left: f64,
    /// Redis's clock when it decided, µs since the Unix epoch: orders answers that arrive out
    /// of order.
    pub server_us: i64,
    /// Whether the decision also charged what this replica owed (granted alone): its `left`
    /// then only lowers the local bucket, never raises it.
    pub charged: bool,
}

impl RedisLimiter {
    /// Parses the URL and starts the background probe; connects on first use, so a Redis that
    /// is down at start delays nothing (decisions use the fallback until it answers).
    /// Must be called within a Tokio runtime.
    ///
    /// # Errors
    /// A URL that is not `redis://` or `rediss://` (the message never holds the URL).
    pub fn start(config: &RedisConfig) -> Result<Arc<Self>, String> {
        let client = client(&config.url)?;
        // The connection's own bound is longer than a decision's: an answer given up on is still
        // read (and a late grant given back) for up to PROBE_TIMEOUT more.
        let manager = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(config.timeout + PROBE_TIMEOUT))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        let connection =
            ConnectionManager::new_lazy_with_config(client.clone(), manager.clone())
                .map_err(|e| format!("DRAFTSTORE_RATE_LIMIT_REDIS_URL: {}", e.category()))?;
        let limiter = Arc::new(Self {
            connection: ArcSwap::from_pointee(connection),
            client,
            manager,
            script: Arc::new(redis::Script::new(LUA)),
            refund: redis::Script::new(REFUND_LUA),
            prefix: config.key_prefix.clone(),
            timeout: config.timeout,
            on_error: config.on_error,
            tls: config.url.starts_with("rediss://"),
            epoch: Instant::now(),
            offset_us: AtomicI64::new(UNKNOWN),
            failures: AtomicU32::new(0),
            probe_timeouts: AtomicU32::new(0),
            outage: Outage::default(),
            debts: Debts::default(),
            replicas: Replicas::new(config.replicas),
            repairs: Throttle::default(),
            key_errors: Throttle::default(),
        });
        set_status(true);
        limiter.replicas.publish();
        tokio::spawn(probe::run(Arc::downgrade(&limiter)));
        Ok(limiter)
    }

    /// A manager on the current one's place that dials anew on its first use: the `redis`
    /// crate reconnects by itself only after an I/O error, and keeps a connection whose
    /// set-up failed otherwise (AUTH refused, `LOADING`) failed for good. Called by the probe
    /// after it failed by one of those, so at most once per probe period; decisions in flight keep
    /// the manager they cloned.
    fn redial(&self) {
        match ConnectionManager::new_lazy_with_config(self.client.clone(), self.manager.clone()) {
            Ok(fresh) => self.connection.store(Arc::new(fresh)),
            // Only a push-manager set-up fails here, which this manager has none of.
            Err(e) => tracing::debug!(error = %e.category(), "Redis: no fresh connection"),
        }
    }

    /// The current connection, for one call.
    fn connection(&self) -> ConnectionManager {
        ConnectionManager::clone(&self.connection.load())
    }

    /// What a decision is when Redis does not answer.
    #[must_use]
    pub fn on_error(&self) -> OnError {
        self.on_error
    }

    /// The Redis key of `tenant`'s bucket: the prefix (which ends in `:`, never in a tenant
    /// name) then the tenant, so no two (prefix, tenant) pairs share a key.
    #[must_use]
    pub fn key(&self, tenant: &str) -> String {
        format!("{}{tenant}", self.prefix)
    }

    /// One decision for `tenant` at `spec`: `Ok(Ok(()))` granted, `Ok(Err(wait))` limited.
    /// A decision this returns [`Unanswered`] for spends nothing in Redis.
    ///
    /// # Errors
    /// [`Unanswered`] when Redis failed, took longer than the bound, or is being skipped.
    pub async fn take(
        self: &Arc<Self>,
        tenant: &str,
        spec: RateSpec,
    ) -> Result<Result<(), Duration>, Unanswered> {
        self.take_shared(tenant, spec).await.map(|s| s.decision)
    }

    /// [`Self::take`], with what the decision left in the shared bucket.
    ///
    /// # Errors
    /// [`Unanswered`] when Redis failed, took longer than the bound, or is being skipped.
    pub async fn take_shared(
        self: &Arc<Self>,
        tenant: &str,
        spec: RateSpec,
    ) -> Result<Shared, Unanswered> {
        self.decide_charging(tenant, spec, None).await
    }

    /// [`Self::take_shared`], charging what this process owes `tenant`'s shared bucket (see
    /// `owed.rs`) in the same script call; the debt shrinks only when Redis applied it.
    pub(super) async fn take_owing(
        self: &Arc<Self>,
        tenant: &str,
        spec: RateSpec,
        owed: &Arc<Owed>,
    ) -> Result<Shared, Unanswered> {
        self.decide_charging(tenant, spec, Some(owed)).await
    }

    /// Lists `tenant` as owing `owed` (a URL granted alone), for the probe to charge when Redis
    /// decides again (`debts.rs`).
    pub(super) fn owe(&self, tenant: &str, spec: RateSpec, owed: &Arc<Owed>, local: &Arc<Local>) {
        self.debts.note(tenant, spec, owed, local);
    }

    async fn decide_charging(
        self: &Arc<Self>,
        tenant: &str,
        spec: RateSpec,
        owed: Option<&Arc<Owed>>,
    ) -> Result<Shared, Unanswered> {
        if self.failures.load(Ordering::Relaxed) >= OPEN_AFTER {
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
            Ok(Ok((granted, wait_us, server_us, left, _))) => {
                crate::metrics::get()
                    .rate_limit_redis_seconds
                    .observe(started.elapsed().as_secs_f64());
                self.succeeded();
                let charged = granted >= 0 && charge.is_some();
                if let Some(charge) = charge.filter(|_| granted >= 0) {
                    // The script ran before its deadline: the charge is in the bucket.
                    charge.applied();
                }
                let left = left_tokens(left, spec.limit, self.replicas.depth());
                let shared = |decision| Shared {
                    decision,
                    left,
                    server_us,
                    charged,
                };
                match granted {
                    1 => {
                        count("granted");
                        Ok(shared(Ok(())))
                    }
                    0 => {
                        count("limited");
                        Ok(shared(Err(Duration::from_micros(
                            u64::try_from(wait_us).unwrap_or(0),
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
    async fn decide(
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
        let reply: Reply = invocation.invoke_async(&mut connection).await?;
        self.observe_clock(reply.2, sent);
        if reply.4 == 1 {
            self.repaired(&key);
        }
        Ok(reply)
    }

    /// The tenant whose bucket `key` is (empty for the probe's key, the prefix alone).
    fn tenant_of<'k>(&self, key: &'k str) -> &'k str {
        key.strip_prefix(self.prefix.as_str()).unwrap_or(key)
    }

    /// A script found `key` of the wrong type and replaced it (a string set by hand, a damaged
    /// key): counted as `repaired`, and a WARN naming the key at most once a minute.
    fn repaired(&self, key: &str) {
        count("repaired");
        if let Some(repaired) = self.repairs.due() {
            tracing::warn!(
                tenant = self.tenant_of(key),
                key,
                repaired,
                "rate limits: a Redis key under DRAFTSTORE_RATE_LIMIT_KEY_PREFIX held another type than the limiter writes; replaced by a full bucket (the limiter owns every key under its prefix; logged at most once a minute)"
            );
        }
    }

    /// `tenant`'s decision failed by its key alone ([`per_key`]): counted as `key_error`, a
    /// WARN naming the tenant at most once a minute; Redis is not called failing for others.
    fn key_failed(&self, tenant: &str, e: &redis::RedisError) {
        count("key_error");
        if let Some(failures) = self.key_errors.due() {
            tracing::warn!(
                tenant,
                key = self.key(tenant),
                failures,
                error = describe(e, self.link(self.timeout)),
                "rate limits: Redis failed one tenant's decision by its key; {} for that tenant (logged at most once a minute)",
                match self.on_error {
                    OnError::Allow => "counted in this replica",
                    OnError::Reject => "URLs refused",
                }
            );
        }
    }

    /// Awaits the answer of a decision given up on: a grant that was spent after all is given
    /// back, so the decision counts once (by the fallback) and not again in Redis; a charge the
    /// script applied is no longer owed (one that did not, or with no answer, stays owed).
    async fn settle(
        self: Arc<Self>,
        call: std::pin::Pin<Box<impl std::future::Future<Output = redis::RedisResult<Reply>>>>,
        key: String,
        limit: u32,
        charge: Option<Charge>,
    ) {
        let Ok(Ok((granted, ..))) = tokio::time::timeout(PROBE_TIMEOUT, call).await else {
            return;
        };
        if let Some(charge) = charge.filter(|_| granted >= 0) {
            charge.applied();
        }
        if granted != 1 {
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

    /// Asks Redis its time, records the offset and returns it.
    async fn sync_clock(&self, connection: &mut ConnectionManager) -> redis::RedisResult<i64> {
        let sent = Instant::now();
        let (secs, micros): (i64, i64) = redis::cmd("TIME").query_async(connection).await?;
        Ok(self.observe_clock(secs.saturating_mul(1_000_000).saturating_add(micros), sent))
    }

    /// Records Redis's clock (`now_us`, in an answer to a call `sent` then) against ours;
    /// returns the offset. An answer slower than a decision's bound is kept only when nothing
    /// better is known: it errs early by its slowness, and would make the next deadlines early
    /// (decisions refused as `late`) until a faster one corrects it.
    fn observe_clock(&self, now_us: i64, sent: Instant) -> i64 {
        let received = Instant::now();
        let offset = now_us.saturating_sub(self.local_us(received));
        if received.duration_since(sent) <= self.timeout
            || self.offset_us.load(Ordering::Relaxed) == UNKNOWN
        {
            self.offset_us.store(offset, Ordering::Relaxed);
        }
        offset
    }

    /// The connection's state, to describe a failure measured against `timeout`.
    fn link(&self, timeout: Duration) -> Link {
        Link {
            timeout,
            tls: self.tls,
            never_answered: self.offset_us.load(Ordering::Relaxed) == UNKNOWN,
        }
    }

    /// µs of `at` on this process's clock.
    fn local_us(&self, at: Instant) -> i64 {
        i64::try_from(at.saturating_duration_since(self.epoch).as_micros()).unwrap_or(i64::MAX)
    }

    /// A decision Redis made: recovered if anything failed before.
    fn succeeded(&self) {
        if self.failures.swap(0, Ordering::Relaxed) > 0 {
            self.recovered();
        }
    }

    /// Redis decided again, `failures` having failed before: recovered, unless another failure
    /// came since (then the next probe judges again).
    fn recovered_from(&self, failures: u32) {
        if self
            .failures
            .compare_exchange(failures, 0, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            self.recovered();
        }
    }

    fn recovered(&self) {
        set_status(true);
        self.outage.recovered();
    }

    fn failed(&self, outcome: &'static str, why: &str) {
        count(outcome);
        self.failures.fetch_add(1, Ordering::Relaxed);
        set_status(false);
        self.outage.failed(why, self.on_error);
    }
}

/// The tokens a reply says are left (`left`, in millionths), as tokens, within what the script
/// can leave: `-limit × max(1, depth)..=limit`, `depth` the limits the bucket may owe (the
/// replicas but one, the script's `ARGV[6]`). A damaged or hand-written `tokens` field
/// (`-inf` or `-9e12`, which Lua's `tonumber` accepts, or a huge number) would otherwise reach
/// the local bucket, and a wait computed from it would be periods, or centuries, long.
fn left_tokens(left: i64, limit: u32, depth: u32) -> f64 {
    let limit = f64::from(limit);
    #[allow(clippy::cast_precision_loss)] // millionths: a few ulps do not matter
    let left = left as f64 / 1_000_000.0;
    left.max(-limit * f64::from(depth.max(1))).min(limit)
}

/// µs to refill `spec`'s bucket from empty (the script's `ARGV[2]`).
fn per_us(spec: RateSpec) -> u64 {
    u64::try_from(spec.per.as_micros()).unwrap_or(u64::MAX)
}

fn count(outcome: &'static str) {
    crate::metrics::get()
        .rate_limit_redis_calls
        .get_or_create(&crate::metrics::OutcomeLabels { outcome })
        .inc();
}

/// Counts a decision made without Redis: `local_granted`, `local_limited` or `rejected`.
pub(super) fn count_fallback(outcome: &'static str) {
    crate::metrics::get()
        .rate_limit_fallbacks
        .get_or_create(&crate::metrics::OutcomeLabels { outcome })
        .inc();
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
}
