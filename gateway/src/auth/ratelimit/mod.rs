//! Tenant rate limits: how many URLs a tenant may mint, counted per tenant (every key of the
//! tenant shares one bucket) and, with `DRAFTSTORE_RATE_LIMIT_REDIS_URL`, shared by every
//! replica through Redis.
//!
//! - [`bucket`]: the refilling token bucket (pure), the one semantics of both counters.
//! - [`redis`]: the same bucket as one atomic Lua step on the Redis server, a decision within a
//!   time bound, and what happens when Redis does not answer ([`OnError`]).
//! - `owed`: what this process granted alone during an outage, charged to Redis afterwards;
//!   `debts`: the tenants owing, charged at once by the probe when Redis decides again.
//! - `outage`: the throttled log lines while Redis makes no decision, and what each failure was.
//!
//! Refusals are logged at most once a minute per tenant (INFO, with how many since the last
//! line), not once per request: an over-limit tenant does not drive the log's volume.
//!
//! Without Redis each process counts alone: with three replicas behind a load balancer, a
//! tenant gets up to three times its rate.
//!
//! With Redis, every shared decision is mirrored into the process's own bucket (the tokens the
//! shared bucket has left; an answer that also carried a charge of this replica's debt only
//! lowers it, see [`lower`]), so when Redis fails and the fallback is `allow`, each replica counts
//! alone from what was left when it last heard from Redis for that tenant, refilling at the
//! tenant's rate divided by the replicas last counted in Redis (R), so the R replicas together
//! refill at the tenant's rate however long or often Redis fails: during an outage a tenant
//! gets at most, per replica, what that replica last saw left plus rate / R × the outage (a
//! replica that never decided for the tenant since it started counts from an empty bucket
//! refilling from its start, so a replica started or restarted during an outage adds no burst).
//! What a replica grants alone is owed to the shared bucket (`owed`) and charged to Redis as
//! soon as it decides again (by the probe, `debts`, or with the tenant's next decision here if
//! that comes first), so a Redis that comes back does not grant those URLs again, whichever
//! replica the tenant asks. A charge may take the shared bucket below 0, down to
//! `-max(1, replicas - 1) × limit`: what several replicas granted alone is paid back by
//! refilling (mirrored here too: a replica told the bucket is in debt grants nothing alone
//! until it has refilled), not forgiven at 0.

mod bucket;
mod debts;
mod outage;
mod owed;
mod redis;

pub use bucket::{retry_after, RateSpec};
pub use redis::{check_url, RedisLimiter, Shared, KEY_ERROR, LUA, OPEN_AFTER, REFUND_LUA};

/// The most replicas the shared limiter counts (more are counted as this many): a shared
/// bucket may owe a limit per replica but one, at most `bucket::MAX_DEPTH` limits. Also the
/// largest `DRAFTSTORE_RATE_LIMIT_REPLICAS` (`config::ratelimit`).
pub const MAX_REPLICAS: u32 = bucket::MAX_DEPTH + 1;

use bucket::Bucket;
use owed::Owed;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// What a decision is when Redis does not answer within the bound
/// (`DRAFTSTORE_RATE_LIMIT_ON_ERROR`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnError {
    /// Count in this process meanwhile (each replica alone, from what Redis last left, at
    /// the tenant's rate divided by the replicas counted: the fleet refills at the rate).
    #[default]
    Allow,
    /// Refuse: 429 / `RESOURCE_EXHAUSTED` until Redis is back.
    Reject,
}

/// The shared limiter's settings. `Debug` hides the URL (it may hold a password).
#[derive(Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// `redis://[user:password@]host[:port][/db]` or `rediss://…` (TLS).
    pub url: String,
    /// Longest wait for one decision before [`OnError`] applies.
    pub timeout: Duration,
    /// What a decision does while Redis does not answer (`DRAFTSTORE_RATE_LIMIT_ON_ERROR`).
    pub on_error: OnError,
    /// Put before the tenant in every Redis key, so deployments can share one Redis. Ends in
    /// `:` (checked by `config`), which tenant names never hold: keys of two prefixes never meet.
    pub key_prefix: String,
    /// The fewest replicas a replica counting alone shares a tenant's rate with
    /// (`DRAFTSTORE_RATE_LIMIT_REPLICAS`, 1..=1000, 1 by default): while Redis is away each
    /// replica refills at the tenant's rate divided by the larger of this and the replicas it
    /// last counted in Redis, so replicas started during an outage (which those counted before
    /// cannot see) still refill within the rate together, up to this many replicas.
    pub replicas: u32,
}

impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &"<redacted>")
            .field("timeout", &self.timeout)
            .field("on_error", &self.on_error)
            .field("key_prefix", &self.key_prefix)
            .field("replicas", &self.replicas)
            .finish()
    }
}

/// One tenant's rate: its spec, its bucket in this process, and the shared limiter when set.
/// A clone shares the original's state (one bucket, one debt): a key reload that changes a
/// tenant's other limits but not its rate keeps the tenant's rate by cloning it.
#[derive(Clone)]
pub struct Rate {
    spec: RateSpec,
    /// The bucket in this process, and Redis's clock (µs) of the shared decision last mirrored
    /// into it (an older answer arriving later is not mirrored).
    local: Arc<Local>,
    /// URLs granted in this process while Redis decided nothing, owed to the shared bucket.
    owed: Arc<Owed>,
    shared: Option<Arc<RedisLimiter>>,
    /// When this tenant's refusals were last logged, and how many since.
    refusals: Arc<Mutex<(Option<Instant>, u64)>>,
}

impl std::fmt::Debug for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rate")
            .field("spec", &self.spec)
            .field("shared", &self.shared.is_some())
            .finish()
    }
}

/// Why a URL was not granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Out of tokens; one is back after this long.
    Limited(Duration),
    /// Redis gave no decision within the bound and `DRAFTSTORE_RATE_LIMIT_ON_ERROR=reject`:
    /// down, slow, refusing the script, or (outcome `late`) answering that the script ran past
    /// the moment the gateway gives up, by Redis's clock, and so decided nothing. Either way no
    /// token was spent, so this is `RATE_LIMIT_UNAVAILABLE` (try again), never `RATE_LIMITED`.
    Unavailable,
}

impl Rate {
    /// `limit` URLs at once, refilled at `limit` per `per`, counted here or through `shared`.
    ///
    /// Without `shared` the bucket starts full. With it, the local bucket (the fallback while
    /// Redis decides nothing) starts EMPTY and refills from now at the rate divided by the
    /// replicas: a replica that has not heard from Redis for the tenant yet knows nothing of
    /// what the others granted, and a full bucket at each start let a replica restarted during
    /// an outage (a crash loop, an OOM kill, a rollout) grant a full limit per start on top of
    /// the fleet's rate. The tenant's first decision through a healthy Redis is Redis's alone
    /// (and mirrored here), so this only costs a fresh replica's grants while Redis is away.
    #[must_use]
    pub fn new(spec: RateSpec, shared: Option<Arc<RedisLimiter>>) -> Self {
        let now = Instant::now();
        let bucket = if shared.is_some() {
            Bucket::empty(now)
        } else {
            Bucket::full(spec, now)
        };
        Self {
            spec,
            local: Arc::new(Mutex::new((bucket, i64::MIN))),
            owed: Arc::new(Owed::new(now)),
            shared,
            refusals: Arc::new(Mutex::new((None, 0))),
        }
    }

    /// The tenant's limit (what two key lines of one tenant must agree on).
    #[must_use]
    pub fn spec(&self) -> RateSpec {
        self.spec
    }

    /// Takes one token of `tenant`'s bucket: in Redis when shared (within its time bound),
    /// else, or when Redis fails and the fallback is `allow`, in this process.
    ///
    /// # Errors
    /// [`Refusal::Limited`] when out of tokens; [`Refusal::Unavailable`] when Redis failed and
    /// the fallback is `reject`.
    pub async fn take(&self, tenant: &str) -> Result<(), Refusal> {
        let decision = self.decide(tenant).await;
        if let Err(refusal) = decision {
            self.log_refusal(tenant, refusal);
        }
        decision
    }

    async fn decide(&self, tenant: &str) -> Result<(), Refusal> {
        if let Some(shared) = &self.shared {
            match shared.take_owing(tenant, self.spec, &self.owed).await {
                Ok(answer) => {
                    self.mirror(answer);
                    return answer.decision.map_err(Refusal::Limited);
                }
                Err(redis::Unanswered) => {
                    if shared.on_error() == OnError::Reject {
                        redis::count_fallback("rejected");
                        return Err(Refusal::Unavailable);
                    }
                }
            }
            let now = Instant::now();
            // Each replica counting alone refills at rate / replicas: together they refill
            // at the tenant's rate, however long Redis stays away or flaps.
            let replicas = shared.replicas();
            let local = self.take_local_at(now, replicas);
            return match local {
                Ok(left) => {
                    // Redis never saw this grant: charged with the tenant's next shared decision.
                    self.owed.add(self.spec, now, left, replicas);
                    shared.owe(tenant, self.spec, &self.owed, &self.local);
                    redis::count_fallback("local_granted");
                    Ok(())
                }
                Err(refusal) => {
                    redis::count_fallback("local_limited");
                    Err(refusal)
                }
            };
        }
        self.take_local()
    }

    /// One INFO line per tenant at most every [`outage::LOG_EVERY`], counting the refusals
    /// since the last (each request's own line is at DEBUG).
    fn log_refusal(&self, tenant: &str, refusal: Refusal) {
        let mut refusals = self.refusals.lock().unwrap_or_else(PoisonError::into_inner);
        refusals.1 += 1;
        if refusals
            .0
            .is_some_and(|at| at.elapsed() < outage::LOG_EVERY)
        {
            return;
        }
        let why = match refusal {
            Refusal::Limited(_) => "over its rate",
            Refusal::Unavailable => "refused while the shared limiter is unavailable",
        };
        tracing::info!(
            tenant,
            refused = refusals.1,
            limit = self.spec.limit,
            period_s = self.spec.per.as_secs_f64(),
            "rate limits: tenant {why} (logged at most once a minute per tenant)"
        );
        *refusals = (Some(Instant::now()), 0);
    }

    fn take_local(&self) -> Result<(), Refusal> {
        self.take_local_at(Instant::now(), 1).map(|_| ())
    }

    /// Takes a token from the local bucket at `now`, refilled at the tenant's rate divided by
    /// `replicas` (at least 1); the tokens left after it.
    fn take_local_at(&self, now: Instant, replicas: u32) -> Result<f64, Refusal> {
        let mut local = self.local.lock().unwrap_or_else(PoisonError::into_inner);
        local
            .0
            .take_sharing(self.spec, now, replicas)
            .map_err(Refusal::Limited)?;
        Ok(local.0.tokens())
    }

    /// Sets the local bucket to what a shared decision left, unless a later one was mirrored;
    /// a decision that also carried a charge only lowers it (see [`lower`]).
    fn mirror(&self, answer: Shared) {
        if answer.charged {
            let replicas = self.shared.as_ref().map_or(1, |shared| shared.replicas());
            lower(
                &self.local,
                self.spec,
                answer.left,
                answer.server_us,
                replicas,
            );
        } else {
            mirror(&self.local, self.spec, answer.left, answer.server_us);
        }
    }
}

/// A tenant's bucket in this process, and Redis's clock (µs since the Unix epoch) of the
/// shared answer last mirrored into it.
pub(crate) type Local = Mutex<(Bucket, i64)>;

/// Sets `local` to `left` tokens, what a shared answer at Redis's `server_us` left, unless a
/// later answer was mirrored (answers may arrive out of order).
pub(crate) fn mirror(local: &Local, spec: RateSpec, left: f64, server_us: i64) {
    let mut local = local.lock().unwrap_or_else(PoisonError::into_inner);
    if server_us >= local.1 {
        local.0.mirror(spec, left, Instant::now());
        local.1 = server_us;
    }
}

/// Lowers `local` to `left` tokens, what the answer to a charge (alone, or with a decision) at
/// Redis's `server_us` says the shared bucket holds, if the local bucket (refilled until now
/// for one of `replicas`) holds more; never raises it (and skips an answer older than the last
/// mirrored). A charge's answer lowers a replica's bucket when other replicas' debts were
/// charged too; it is fuller than the local bucket when Redis refilled at the full rate while
/// this replica counted alone at rate / R (nothing lost by not raising: the tenant's next plain
/// decision here mirrors Redis's figure), or when Redis lost a charge this replica already
/// cleared from its debt (a crash with `appendfsync everysec`): raising the bucket then would
/// let the replica grant those URLs again the next time it counts alone, and again after each
/// such crash.
pub(crate) fn lower(local: &Local, spec: RateSpec, left: f64, server_us: i64, replicas: u32) {
    let mut local = local.lock().unwrap_or_else(PoisonError::into_inner);
    if server_us >= local.1 {
        local.0.lower_to(spec, left, Instant::now(), replicas);
        local.1 = server_us;
    }
}

/// The shared limiter's state, for `/ready`: `None` without Redis. One shared limiter per
/// process (the last one built sets it).
#[must_use]
pub fn shared_status() -> Option<&'static str> {
    match STATUS.load(Ordering::Relaxed) {
        1 => Some("ok"),
        2 => Some("degraded"),
        _ => None,
    }
}

/// 0: no shared limiter; 1: Redis answers; 2: it does not (decisions use the fallback).
static STATUS: AtomicU8 = AtomicU8::new(0);

fn set_status(up: bool) {
    STATUS.store(if up { 1 } else { 2 }, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIVE_AN_HOUR: RateSpec = RateSpec {
        limit: 5,
        per: Duration::from_secs(3600),
    };

    /// The mirroring rule: a plain decision's answer sets the local bucket (up or down); a
    /// charge's answer only lowers it, so a fuller shared bucket (Redis lost a charge this
    /// replica already cleared) never lets the replica grant again alone what it granted.
    #[test]
    fn a_charge_answer_never_raises_the_local_bucket_a_decision_answer_may() {
        let now = Instant::now();
        let local: Local = Mutex::new((Bucket::full(FIVE_AN_HOUR, now), i64::MIN));
        let tokens = |local: &Local| local.lock().unwrap().0.tokens();
        mirror(&local, FIVE_AN_HOUR, 1.0, 10);
        assert!((tokens(&local) - 1.0).abs() < 1e-6);
        lower(&local, FIVE_AN_HOUR, 5.0, 20, 1);
        assert!(
            (tokens(&local) - 1.0).abs() < 1e-3,
            "a fuller charge answer is not taken: {}",
            tokens(&local)
        );
        lower(&local, FIVE_AN_HOUR, -2.0, 30, 1);
        assert!((tokens(&local) + 2.0).abs() < 1e-6, "a lower one is");
        lower(&local, FIVE_AN_HOUR, -4.0, 25, 1);
        assert!(
            (tokens(&local) + 2.0).abs() < 1e-3,
            "an older answer is not"
        );
        mirror(&local, FIVE_AN_HOUR, 4.0, 40);
        assert!((tokens(&local) - 4.0).abs() < 1e-6, "a plain decision's is");
    }
}
