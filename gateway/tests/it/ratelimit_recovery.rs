//! What the shared rate limiter falls back to, and when it calls Redis recovered: a fallback
//! starts from what the shared bucket had left (not a fresh burst per replica), what a replica
//! granted alone is charged to Redis once it is back, and a Redis that answers but refuses the
//! script (`NOREPLICAS`) or answers slower than the bound has not recovered. Real `redis-server`
//! processes of each test's own and real `gateway serve` processes; outside CI a missing Redis
//! skips with a printed reason.

use crate::ratelimit::{
    borrowed, gateway, hash, prefix, redis_url, rest, wait_for_state, Process, Redis,
};
use std::time::{Duration, Instant};

/// `N` gateways sharing `redis` (under a prefix of `tag`'s), with one tenant `acme` at `rate`
/// (`N/SECS`), once each says Redis decides.
pub(crate) async fn replicas<const N: usize>(redis: &Redis, tag: &str, rate: &str) -> [Process; N] {
    let keys = format!("acme {} rate={rate}", hash("acme"));
    let (url, prefix) = (redis.url(), prefix(tag));
    let env = [
        ("DRAFTSTORE_RATE_LIMIT_REDIS_URL", url.as_str()),
        ("DRAFTSTORE_RATE_LIMIT_KEY_PREFIX", prefix.as_str()),
        // A loaded test machine: the bound is for production latency, not for these tests.
        ("DRAFTSTORE_RATE_LIMIT_TIMEOUT_MS", "2000"),
    ];
    let replicas = std::array::from_fn(|_| gateway(&keys, &env));
    for replica in &replicas {
        wait_for_state(replica.port, "ok").await;
    }
    replicas
}

/// Each of `replicas` decides once for `acme` through Redis, and `acme`'s shared bucket (the
/// only one in this test's own Redis) is deleted after each, full again: each replica's fallback
/// then holds limit − 1, what Redis left, where a replica that never heard from Redis for a
/// tenant falls back from an empty bucket (no burst of its own at each start).
pub(crate) async fn heard<'a>(redis: &Redis, replicas: impl IntoIterator<Item = &'a Process>) {
    let client = redis::Client::open(redis.url().as_str()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    for replica in replicas {
        assert_eq!(rest(replica.port, "acme").await.0, 200, "through Redis");
        let buckets: Vec<String> = redis::cmd("KEYS")
            .arg("*acme")
            .query_async(&mut connection)
            .await
            .unwrap();
        assert_eq!(buckets.len(), 1, "{buckets:?}");
        let _: () = redis::cmd("DEL")
            .arg(&buckets)
            .query_async(&mut connection)
            .await
            .unwrap();
    }
}

/// The reviewer's repro: two gateways share `acme`'s 5 through Redis; Redis stops; each
/// gateway must count on from what was left (nothing), not hand out a full burst of its own.
#[tokio::test]
async fn allow_after_an_outage_counts_on_from_what_redis_left_not_a_fresh_burst() {
    if redis_url().is_none() {
        return;
    }
    let mut redis = Redis::start();
    // One token back an hour: nothing refills while the test runs.
    let replicas: [Process; 2] = replicas(&redis, "burst", "5/3600").await;
    let mut granted = 0;
    for i in 0..12 {
        granted += usize::from(rest(replicas[i % 2].port, "acme").await.0 == 200);
    }
    assert_eq!(granted, 5, "shared while Redis is up");

    redis.stop();
    for replica in &replicas {
        let mut statuses = Vec::new();
        for _ in 0..8 {
            let (status, code, _) = rest(replica.port, "acme").await;
            statuses.push((status, code));
        }
        assert!(
            statuses
                .iter()
                .all(|(s, c)| *s == 429 && c == "RATE_LIMITED"),
            "the shared bucket was empty: no fresh burst per replica: {statuses:?}"
        );
        assert_eq!(
            replica
                .metric("draftstore_rate_limit_fallbacks_total{outcome=\"local_limited\"}")
                .await,
            8.0
        );
    }
}

/// Three shared grants, then Redis stops: the replica that made the last decision counts on
/// from the 2 left, not from 5.
#[tokio::test]
async fn allow_grants_during_an_outage_what_the_shared_bucket_had_left() {
    if redis_url().is_none() {
        return;
    }
    let mut redis = Redis::start();
    let keys = format!("acme {} rate=5/3600", hash("acme"));
    let env = vec![
        ("DRAFTSTORE_RATE_LIMIT_REDIS_URL", redis.url()),
        ("DRAFTSTORE_RATE_LIMIT_KEY_PREFIX", prefix("left")),
        ("DRAFTSTORE_RATE_LIMIT_TIMEOUT_MS", "2000".to_owned()),
    ];
    let replica = gateway(&keys, &borrowed(&env));
    wait_for_state(replica.port, "ok").await;
    for _ in 0..3 {
        assert_eq!(rest(replica.port, "acme").await.0, 200);
    }
    redis.stop();
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(rest(replica.port, "acme").await.0);
    }
    assert_eq!(statuses, [200, 200, 429, 429, 429]);
}

/// Polls `/ready` for `window`, failing if its `rate_limit` is ever other than `want`.
async fn stays(port: u16, want: &str, window: Duration) {
    let started = Instant::now();
    while started.elapsed() < window {
        let body: serde_json::Value = reqwest::get(format!("http://127.0.0.1:{port}/ready"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(body["status"], "ready", "{body}");
        assert_eq!(body["rate_limit"], want, "{body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `min-replicas-to-write 1` with no replica: Redis answers `TIME` but refuses the script
/// (`NOREPLICAS`). That is one WARN naming the error and a steady `degraded`, not a recovery
/// every second; decisions use the fallback meanwhile. Back to 0: recovered, once.
#[tokio::test]
async fn a_redis_that_answers_but_refuses_the_script_has_not_recovered() {
    if redis_url().is_none() {
        return;
    }
    let redis = Redis::start();
    let keys = format!("acme {} rate=5/3600", hash("acme"));
    let env = vec![
        ("DRAFTSTORE_RATE_LIMIT_REDIS_URL", redis.url()),
        ("DRAFTSTORE_RATE_LIMIT_KEY_PREFIX", prefix("noreplicas")),
        ("DRAFTSTORE_RATE_LIMIT_TIMEOUT_MS", "2000".to_owned()),
    ];
    let replica = gateway(&keys, &borrowed(&env));
    wait_for_state(replica.port, "ok").await;
    assert_eq!(rest(replica.port, "acme").await.0, 200);

    let client = redis::Client::open(redis.url().as_str()).unwrap();
    let connection = client.get_multiplexed_async_connection().await.unwrap();
    let set = |value: &'static str| {
        let mut connection = connection.clone();
        async move {
            let _: () = redis::cmd("CONFIG")
                .arg("SET")
                .arg("min-replicas-to-write")
                .arg(value)
                .query_async(&mut connection)
                .await
                .unwrap();
        }
    };
    set("1").await;
    // Counted in the process from the 4 the shared bucket had left.
    assert_eq!(rest(replica.port, "acme").await.0, 200);
    wait_for_state(replica.port, "degraded").await;
    // Several probe rounds (once a second): Redis answers them, but decides nothing.
    stays(replica.port, "degraded", Duration::from_secs(3)).await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(rest(replica.port, "acme").await.0);
    }
    assert_eq!(statuses, [200, 200, 200, 429], "the fallback, from 4 left");
    let log = replica.log();
    assert_eq!(log.matches("Redis makes no decision").count(), 1, "{log}");
    assert!(
        log.contains("NOREPLICAS"),
        "the WARN names the error: {log}"
    );
    assert!(!log.contains("counting is shared again"), "{log}");

    set("0").await;
    wait_for_state(replica.port, "ok").await;
    let log = replica.log();
    assert_eq!(log.matches("counting is shared again").count(), 1, "{log}");
    // Shared again: the shared bucket held 4, and the 4 granted alone meanwhile were charged
    // when Redis decided again; this decision is Redis's (a refusal of Redis's, not the
    // fallback's).
    let before = replica
        .metric("draftstore_rate_limit_redis_calls_total{outcome=\"limited\"}")
        .await;
    let (status, code, _) = rest(replica.port, "acme").await;
    assert_eq!((status, code.as_str()), (429, "RATE_LIMITED"));
    assert_eq!(
        replica
            .metric("draftstore_rate_limit_redis_calls_total{outcome=\"limited\"}")
            .await,
        before + 1.0
    );
}

/// The reviewer's repro: nothing spent, Redis stops, two replicas grant 2 and 1 URLs alone,
/// Redis comes back (empty, so its bucket is full): the shared bucket must grant only the
/// 5 - 3 = 2 left, not a fresh 5 on top of the 3.
#[tokio::test]
async fn grants_made_alone_during_an_outage_are_charged_to_redis_when_it_is_back() {
    if redis_url().is_none() {
        return;
    }
    let mut redis = Redis::start();
    // One token back an hour: nothing refills while the test runs.
    let replicas: [Process; 2] = replicas(&redis, "owed", "5/3600").await;
    heard(&redis, &replicas).await;
    let mut primed = 0.0;
    for replica in &replicas {
        primed += replica
            .metric("draftstore_rate_limit_redis_calls_total{outcome=\"granted\"}")
            .await;
    }

    redis.stop();
    for (replica, alone) in replicas.iter().zip([2, 1]) {
        for _ in 0..alone {
            assert_eq!(rest(replica.port, "acme").await.0, 200, "counted alone");
        }
    }
    redis.restart();
    for replica in &replicas {
        wait_for_state(replica.port, "ok").await;
    }
    let mut statuses = Vec::new();
    for i in 0..6 {
        statuses.push(rest(replicas[i % 2].port, "acme").await.0);
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        2,
        "5 less the 3 granted during the outage: {statuses:?}"
    );
    let mut decided = -primed;
    for replica in &replicas {
        decided += replica
            .metric("draftstore_rate_limit_redis_calls_total{outcome=\"granted\"}")
            .await;
    }
    assert_eq!(decided, 2.0, "Redis decided the grants, not the fallback");
}

/// A Redis that answers, but 400 ms late, with a bound of 200 ms: once a decision failed, a
/// probe answered in time for its own 1 s bound is no recovery (requests would wait 200 ms and
/// fail again, each time): `/ready` stays `degraded` and the WARN says how slow. Answers fast
/// again: recovered.
#[tokio::test]
async fn a_redis_answering_slower_than_the_bound_has_not_recovered() {
    if redis_url().is_none() {
        return;
    }
    let redis = Redis::start();
    let relay = crate::ratelimit_faults::SlowAnswers::start(redis.port).await;
    let keys = format!("acme {} rate=5/3600", hash("acme"));
    let url = format!("redis://127.0.0.1:{}", relay.port);
    let env = vec![
        ("DRAFTSTORE_RATE_LIMIT_REDIS_URL", url),
        ("DRAFTSTORE_RATE_LIMIT_KEY_PREFIX", prefix("slow")),
        ("DRAFTSTORE_RATE_LIMIT_TIMEOUT_MS", "200".to_owned()),
    ];
    let replica = gateway(&keys, &borrowed(&env));
    wait_for_state(replica.port, "ok").await;
    // Heard from Redis: the fallback holds what Redis left (4), not a fresh replica's 0.
    assert_eq!(rest(replica.port, "acme").await.0, 200, "through Redis");

    relay.hold(true);
    assert_eq!(
        rest(replica.port, "acme").await.0,
        200,
        "no answer within 200 ms: counted alone"
    );
    wait_for_state(replica.port, "degraded").await;
    // Probes (one a second), each answered in about 400 ms: the WARN says how slow, and until
    // it does (a loaded machine may stretch a probe past its own 1 s bound, a plain timeout),
    // `/ready` stays `degraded`. Polled with a generous limit, not a fixed wait.
    let started = Instant::now();
    while !replica.log().contains("over the 200 ms bound") {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no WARN saying how slow: {}",
            replica.log()
        );
        stays(replica.port, "degraded", Duration::from_millis(500)).await;
    }
    // A few more probes: still no recovery.
    stays(replica.port, "degraded", Duration::from_secs(2)).await;
    let log = replica.log();
    assert!(log.contains("answered in "), "{log}");
    assert!(!log.contains("counting is shared again"), "{log}");
    assert!(
        replica
            .metric("draftstore_rate_limit_redis_calls_total{outcome=\"slow\"}")
            .await
            >= 1.0
    );

    relay.hold(false);
    wait_for_state(replica.port, "ok").await;
    assert!(replica.log().contains("counting is shared again"));
}

/// A damaged or hand-written `tokens` field in a tenant's bucket (`-inf`, which Lua's
/// `tonumber` accepts, or a debt of trillions of tokens) gets an answer, from Redis and then
/// from the fallback once Redis is gone: a refusal, never a panic (at 1 a year, a wait from
/// such a debt is beyond what a `Duration` holds).
#[tokio::test]
async fn a_damaged_bucket_in_redis_gets_an_answer_not_a_panic() {
    if redis_url().is_none() {
        return;
    }
    let mut redis = Redis::start();
    let (url, prefix) = (redis.url(), prefix("damaged"));
    let keys = format!(
        "acme {} rate=1/31536000\nbeta {} rate=1/31536000",
        hash("acme"),
        hash("beta")
    );
    let env = [
        ("DRAFTSTORE_RATE_LIMIT_REDIS_URL", url.as_str()),
        ("DRAFTSTORE_RATE_LIMIT_KEY_PREFIX", prefix.as_str()),
        ("DRAFTSTORE_RATE_LIMIT_TIMEOUT_MS", "2000"),
    ];
    let replica = gateway(&keys, &env);
    wait_for_state(replica.port, "ok").await;
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    for (tenant, tokens) in [("acme", "-inf"), ("beta", "-9e12")] {
        // Damaged now: a damaged field counts as the floor (−limit here), which a year of
        // refills since an `at` of long ago would have paid back.
        let (secs, micros): (i64, i64) = redis::cmd("TIME")
            .query_async(&mut connection)
            .await
            .unwrap();
        let _: () = redis::cmd("HSET")
            .arg(format!("{prefix}{tenant}"))
            .arg("tokens")
            .arg(tokens)
            .arg("at")
            .arg(secs * 1_000_000 + micros)
            .query_async(&mut connection)
            .await
            .unwrap();
        let (status, code, _) = rest(replica.port, tenant).await;
        assert_eq!(
            (status, code.as_str()),
            (429, "RATE_LIMITED"),
            "{tenant} at tokens={tokens}, from Redis"
        );
    }
    redis.stop();
    for tenant in ["acme", "beta"] {
        let (status, code, retry) = rest(replica.port, tenant).await;
        assert_eq!(
            (status, code.as_str()),
            (429, "RATE_LIMITED"),
            "{tenant}, from the fallback"
        );
        assert!(retry.is_some(), "{tenant}: a Retry-After");
    }
    assert!(!replica.log().contains("panicked"), "{}", replica.log());
}

/// The ids of the clients connected to `redis` other than the asking one.
async fn other_clients(redis: &Redis) -> Vec<String> {
    let client = redis::Client::open(redis.url().as_str()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(&mut connection)
        .await
        .unwrap();
    let me: i64 = redis::cmd("CLIENT")
        .arg("ID")
        .query_async(&mut connection)
        .await
        .unwrap();
    list.lines()
        .filter_map(|l| l.split(' ').find_map(|f| f.strip_prefix("id=")))
        .filter(|id| *id != me.to_string())
        .map(str::to_owned)
        .collect()
}

/// A Redis that is only slow (frozen past a probe's bound, then answering again) keeps the
/// gateway's connection: the probe that timed out does not throw it away and dial anew.
#[tokio::test]
async fn a_probe_that_times_out_keeps_the_connection() {
    if redis_url().is_none() {
        return;
    }
    let redis = Redis::start();
    let [replica]: [Process; 1] = replicas(&redis, "slow-keep", "5/60").await;
    let before = other_clients(&redis).await;
    assert_eq!(before.len(), 1, "one multiplexed connection: {before:?}");
    redis.freeze();
    let timeout = "draftstore_rate_limit_redis_calls_total{outcome=\"timeout\"}";
    let started = Instant::now();
    while replica.metric(timeout).await < 1.0 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no probe timed out"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    redis.thaw();
    wait_for_state(replica.port, "ok").await;
    // A probe or two more on the kept connection.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        other_clients(&redis).await,
        before,
        "the same connection after a timed-out probe"
    );
}
