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
//!
//! Here: the limiter, its connection and health. `decision.rs`: one decision (the script call
//! within the bound, its reply, a late answer settled); `clock.rs`: Redis's clock as known
//! here; `probe.rs`: the background probe and the debts it charges; `replicas.rs`: how many
//! replicas share the buckets; `script.rs`: the Lua scripts; `url.rs`: the URL's checks.

mod clock;
mod decision;
mod probe;
mod replicas;
mod script;
mod url;

pub use script::{KEY_ERROR, LUA, REFUND_LUA};
pub use url::check_url;
use url::client;

use super::debts::Debts;
use super::outage::{describe, Link, Outage, Throttle};
use super::owed::Owed;
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
pub(super) const UNKNOWN: i64 = i64::MIN;

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
            replicas: Replicas::new(config.replicas, &config.key_prefix),
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

    /// `tenant`'s decision failed by its key alone (`outage::per_key`): counted as `key_error`, a
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

    /// The connection's state, to describe a failure measured against `timeout`.
    fn link(&self, timeout: Duration) -> Link {
        Link {
            timeout,
            tls: self.tls,
            never_answered: self.offset_us.load(Ordering::Relaxed) == UNKNOWN,
        }
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
