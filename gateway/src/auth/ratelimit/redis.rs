//! The token bucket counted in Redis, shared by every replica: one `EVALSHA` of [`LUA`] per
//! decision (atomic on the server, on the server's clock, so replicas' clocks do not matter),
//! through the `redis` crate's `ConnectionManager` (one multiplexed connection, reconnected in
//! the background).
//!
//! A decision waits at most the configured bound (`DRAFTSTORE_RATE_LIMIT_TIMEOUT_MS`, 20 ms by
//! default); a failure or timeout is [`Unanswered`] and the caller applies the fallback. After
//! [`OPEN_AFTER`] failures in a row Redis is skipped (no request waits for it) until a
//! background PING, once a second, gets an answer again: recovery needs nothing from anyone.
//! Failures are logged at most once a minute, and counted in
//! `draftstore_rate_limit_redis_calls_total{outcome}`.

use super::{set_status, OnError, RateSpec, RedisConfig};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

/// One step of the token bucket of `bucket.rs`, atomically. `KEYS[1]`: the tenant's bucket (a
/// hash of `tokens` and `at`, µs of the server's clock). `ARGV[1]`: tokens when full;
/// `ARGV[2]`: µs to refill from empty. Returns `{1, 0}` for a grant, `{0, µs until a token is
/// back}` otherwise. A missing key is a full bucket, so the key expires once it would be full.
pub const LUA: &str = r"
local limit = tonumber(ARGV[1])
local per = tonumber(ARGV[2])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1])
local at = tonumber(state[2])
if tokens == nil or at == nil then
  tokens = limit
  at = now
end
local elapsed = now - at
if elapsed < 0 then elapsed = 0 end
tokens = math.min(limit, tokens + elapsed / per * limit)
local granted = 0
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
  granted = 1
else
  wait = math.ceil((1 - tokens) / limit * per)
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'at', string.format('%d', now))
redis.call('PEXPIRE', KEYS[1], math.ceil(per / 1000) + 1000)
return {granted, wait}
";

/// Failures in a row after which requests stop waiting for Redis until a PING answers.
pub const OPEN_AFTER: u32 = 3;
/// How often the background task PINGs Redis.
const PROBE_EVERY: Duration = Duration::from_secs(1);
/// A PING's bound (it keeps no request waiting).
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// Failures are logged at most this often.
const LOG_EVERY: Duration = Duration::from_secs(60);

/// Redis gave no decision within the bound (down, slow, or an error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unanswered;

/// The shared limiter: a connection to Redis, the script, and how healthy Redis looks.
pub struct RedisLimiter {
    connection: ConnectionManager,
    script: redis::Script,
    prefix: String,
    timeout: Duration,
    on_error: OnError,
    /// Failures in a row (decisions and PINGs); at [`OPEN_AFTER`] requests skip Redis.
    failures: AtomicU32,
    /// When failures were last logged, and how many since.
    logged: Mutex<(Option<Instant>, u64)>,
}

impl RedisLimiter {
    /// Parses the URL and starts the background PING; connects on first use, so a Redis that
    /// is down at start delays nothing (decisions use the fallback until it answers).
    /// Must be called within a Tokio runtime.
    ///
    /// # Errors
    /// A URL that is not `redis://` or `rediss://` (the message never holds the URL).
    pub fn start(config: &RedisConfig) -> Result<Arc<Self>, String> {
        let client = client(&config.url)?;
        let manager = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(config.timeout.max(Duration::from_millis(1))))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        let connection = ConnectionManager::new_lazy_with_config(client, manager)
            .map_err(|e| format!("DRAFTSTORE_RATE_LIMIT_REDIS_URL: {:?}", e.kind()))?;
        let limiter = Arc::new(Self {
            connection,
            script: redis::Script::new(LUA),
            prefix: config.key_prefix.clone(),
            timeout: config.timeout,
            on_error: config.on_error,
            failures: AtomicU32::new(0),
            logged: Mutex::new((None, 0)),
        });
        set_status(true);
        tokio::spawn(probe(Arc::downgrade(&limiter)));
        Ok(limiter)
    }

    /// What a decision is when Redis does not answer.
    #[must_use]
    pub fn on_error(&self) -> OnError {
        self.on_error
    }

    /// The Redis key of `tenant`'s bucket.
    #[must_use]
    pub fn key(&self, tenant: &str) -> String {
        format!("{}{tenant}", self.prefix)
    }

    /// One decision for `tenant` at `spec`: `Ok(Ok(()))` granted, `Ok(Err(wait))` limited.
    ///
    /// # Errors
    /// [`Unanswered`] when Redis failed, took longer than the bound, or is being skipped.
    pub async fn take(
        &self,
        tenant: &str,
        spec: RateSpec,
    ) -> Result<Result<(), Duration>, Unanswered> {
        if self.failures.load(Ordering::Relaxed) >= OPEN_AFTER {
            count("skipped");
            return Err(Unanswered);
        }
        let per_us = u64::try_from(spec.per.as_micros()).unwrap_or(u64::MAX);
        let mut connection = self.connection.clone();
        let started = Instant::now();
        let mut invocation = self.script.key(self.key(tenant));
        invocation.arg(spec.limit).arg(per_us);
        let call = invocation.invoke_async::<(i64, i64)>(&mut connection);
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok((granted, wait_us))) => {
                crate::metrics::get()
                    .rate_limit_redis_seconds
                    .observe(started.elapsed().as_secs_f64());
                self.succeeded();
                if granted == 1 {
                    count("granted");
                    Ok(Ok(()))
                } else {
                    count("limited");
                    Ok(Err(Duration::from_micros(
                        u64::try_from(wait_us).unwrap_or(0),
                    )))
                }
            }
            Ok(Err(e)) => {
                self.failed("error", &format!("{:?}", e.kind()));
                Err(Unanswered)
            }
            Err(_) => {
                self.failed(
                    "timeout",
                    "no answer within DRAFTSTORE_RATE_LIMIT_TIMEOUT_MS",
                );
                Err(Unanswered)
            }
        }
    }

    /// PINGs Redis (bounded by [`PROBE_TIMEOUT`]) and records the outcome.
    async fn probe(&self) {
        let mut connection = self.connection.clone();
        let command = redis::cmd("PING");
        let ping = command.query_async::<String>(&mut connection);
        match tokio::time::timeout(PROBE_TIMEOUT, ping).await {
            Ok(Ok(_)) => self.succeeded(),
            Ok(Err(e)) => self.failed("error", &format!("{:?}", e.kind())),
            Err(_) => self.failed("timeout", "no answer to PING"),
        }
    }

    fn succeeded(&self) {
        if self.failures.swap(0, Ordering::Relaxed) > 0 {
            set_status(true);
            tracing::info!("rate limits: Redis answers again; counting is shared again");
            let mut logged = self.logged.lock().unwrap_or_else(PoisonError::into_inner);
            *logged = (None, 0);
        }
    }

    fn failed(&self, outcome: &'static str, why: &str) {
        count(outcome);
        self.failures.fetch_add(1, Ordering::Relaxed);
        set_status(false);
        let mut logged = self.logged.lock().unwrap_or_else(PoisonError::into_inner);
        logged.1 += 1;
        if logged.0.is_none_or(|at| at.elapsed() >= LOG_EVERY) {
            let fallback = match self.on_error {
                OnError::Allow => "each replica counts alone",
                OnError::Reject => "URLs are refused",
            };
            tracing::warn!(
                failures = logged.1,
                error = why,
                "rate limits: Redis does not answer; {fallback} until it does (logged at most once a minute)"
            );
            *logged = (Some(Instant::now()), 0);
        }
    }
}

/// A client for `url`, which must be `redis://` or `rediss://`.
fn client(url: &str) -> Result<redis::Client, String> {
    let bad = || {
        "DRAFTSTORE_RATE_LIMIT_REDIS_URL must be redis://[user:password@]host[:port][/db] or rediss://… (TLS)".to_owned()
    };
    if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
        return Err(bad());
    }
    redis::Client::open(url).map_err(|_| bad())
}

/// Checks `url` without connecting.
///
/// # Errors
/// The URL is not `redis://` or `rediss://` (the message never holds it).
pub fn check_url(url: &str) -> Result<(), String> {
    client(url).map(|_| ())
}

/// PINGs at once (connecting before the first request needs it), then once a second while the
/// limiter lives.
async fn probe(limiter: Weak<RedisLimiter>) {
    loop {
        let Some(strong) = limiter.upgrade() else {
            return;
        };
        strong.probe().await;
        drop(strong);
        tokio::time::sleep(PROBE_EVERY).await;
    }
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
