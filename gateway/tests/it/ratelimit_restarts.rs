//! A replica restarted while Redis is away (a crash loop, an OOM kill, a rollout during an
//! outage) has not heard from Redis for any tenant: it starts each tenant's local bucket empty,
//! refilling at rate ÷ max(R, H) from its start, so a start adds no burst and README's bound
//! holds however often a replica restarts. Real `redis-server` and real `gateway serve`
//! processes killed (SIGKILL) and started again; outside CI a missing Redis skips with a
//! printed reason.

use crate::ratelimit::{gateway, hash, prefix, redis_url, rest, wait_for_state, Process, Redis};
use std::time::{Duration, Instant};

/// The ninth review's repro, shortened: two warm gateways, `DRAFTSTORE_RATE_LIMIT_REPLICAS=12`,
/// a tenant at `rate=20/10` asking each every 100 ms, Redis (AOF, `appendfsync always`) away
/// from 3 s to 21 s, the second gateway killed and started again five times meanwhile, Redis
/// deciding again until the window ends. The grants stay within README's bound
/// limit + rate × W + (R − 1) × limit with R = 2 (about 40 against 100; with a full bucket at
/// each start, every restart granted 20 more: about 140).
#[tokio::test]
async fn a_replica_restarted_again_and_again_during_an_outage_stays_within_the_bound() {
    if redis_url().is_none() {
        return;
    }
    let mut redis = Redis::start_with(&["--appendonly", "yes", "--appendfsync", "always"]);
    let keys = format!("acme {} rate=20/10", hash("acme"));
    let (url, prefix) = (redis.url(), prefix("restarts"));
    let env = [
        ("DRAFTSTORE_RATE_LIMIT_REDIS_URL", url.as_str()),
        ("DRAFTSTORE_RATE_LIMIT_KEY_PREFIX", prefix.as_str()),
        // A loaded test machine: the bound is for production latency, not for these tests.
        ("DRAFTSTORE_RATE_LIMIT_TIMEOUT_MS", "2000"),
        ("DRAFTSTORE_RATE_LIMIT_REPLICAS", "12"),
    ];
    let steady = gateway(&keys, &env);
    let mut restarted: Process = gateway(&keys, &env);
    for gateway in [&steady, &restarted] {
        wait_for_state(gateway.port, "ok").await;
    }
    // Two more probes each: both have counted two replicas.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (limit, rate, replicas) = (20.0, 2.0, 2.0);

    let started = Instant::now();
    let secs = |s: u64| Duration::from_secs(s);
    let (outage, back, end) = (secs(3), secs(21), secs(30));
    let mut restarts_at = vec![secs(5), secs(8), secs(11), secs(14), secs(17)].into_iter();
    let mut next_restart = restarts_at.next();
    let (mut granted, mut restarts, mut redis_down) = (0_u32, 0_u32, false);
    let mut alone_on_restarted = 0.0;
    while started.elapsed() < end {
        let now = started.elapsed();
        if !redis_down && now >= outage && now < back {
            redis.stop();
            redis_down = true;
        }
        if redis_down && now >= back {
            redis.restart();
            redis_down = false;
        }
        if next_restart.is_some_and(|at| now >= at) {
            alone_on_restarted += restarted
                .metric("draftstore_rate_limit_fallbacks_total{outcome=\"local_granted\"}")
                .await;
            // SIGKILL (Drop), then a fresh process with the same settings.
            drop(restarted);
            restarted = gateway(&keys, &env);
            restarts += 1;
            next_restart = restarts_at.next();
        }
        for port in [steady.port, restarted.port] {
            match rest(port, "acme").await {
                (200, ..) => granted += 1,
                (429, code, _) => assert_eq!(code, "RATE_LIMITED"),
                (status, code, _) => panic!("upload-url answered {status} {code}"),
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let window = started.elapsed().as_secs_f64();
    for gateway in [&steady, &restarted] {
        wait_for_state(gateway.port, "ok").await;
    }
    assert_eq!(
        restarts, 5,
        "the second gateway restarted during the outage"
    );
    let bound = limit + rate * window + (replicas - 1.0) * limit;
    let summary = format!(
        "{granted} granted in {window:.1} s with {restarts} restarts during the outage \
         ({alone_on_restarted} granted alone by the restarted gateway before its restarts)"
    );
    eprintln!("restarts during an outage: {summary}, bound {bound:.1}");
    assert!(
        f64::from(granted) <= bound,
        "{summary}: over README's bound {bound:.1}"
    );
}
