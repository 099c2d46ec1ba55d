//! A replica started while Redis is away (the autoscaler scaling up during an outage) has never
//! counted the replicas in Redis, and those counted before cannot see it: every replica counting
//! alone shares the rate with at least `DRAFTSTORE_RATE_LIMIT_REPLICAS` replicas, so together
//! they refill within the rate, not at the full rate for the new one on top of the others. Real `redis-server` and real
//! `gateway serve` processes; outside CI a missing Redis skips with a printed reason.

use crate::ratelimit::{
    ask_until, gateway, hash, prefix, redis_url, wait_for_state, Process, Redis,
};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The seventh review's repro, with the hint: two warm gateways, a tenant at `rate=20/10` asking
/// each every 50 ms, Redis away from 5 s to 45 s, a third gateway started at 15 s with
/// `DRAFTSTORE_RATE_LIMIT_REPLICAS=3`, Redis deciding again until 55 s: within README's bound
/// limit + rate × W + (R − 1) × limit with R = 3 (126 grants against 170; 153 when the hint
/// only set where a replica starts, not a floor for every replica counting alone). (The review
/// ran it at `rate=5/10` too, 47 in 60.6 s against 45.3; at 20/10 the margins are wider.)
#[tokio::test]
async fn a_replica_started_during_an_outage_with_the_hint_stays_within_the_bound() {
    let Some((granted, bound, summary)) = scale_up_during_an_outage("3").await else {
        return;
    };
    assert!(
        granted <= bound,
        "{summary}: over the bound {bound:.1} with the hint"
    );
}

/// The same without the hint (the default 1): the third gateway counts itself alone and refills
/// at the full rate for 30 s, past the bound (about 190 against 170; the review: 222 against
/// 198.2). This is what the hint is for, and why the Redis overlay sets it.
#[tokio::test]
async fn a_replica_started_during_an_outage_without_the_hint_exceeds_the_bound() {
    let Some((granted, bound, summary)) = scale_up_during_an_outage("1").await else {
        return;
    };
    assert!(
        granted > bound,
        "{summary}: within the bound {bound:.1} without the hint"
    );
}

/// Runs the review's scenario with `DRAFTSTORE_RATE_LIMIT_REPLICAS=hint` on every gateway:
/// the grants, README's bound for the window (R = 3) and a line saying what happened. The
/// window ends 10 s after Redis is back (every gateway said so, its debts charged).
async fn scale_up_during_an_outage(hint: &str) -> Option<(f64, f64, String)> {
    redis_url()?;
    let mut redis = Redis::start_with(&["--appendonly", "yes", "--appendfsync", "always"]);
    let keys = format!("acme {} rate=20/10", hash("acme"));
    let (url, prefix) = (redis.url(), prefix("scaleup"));
    let env = [
        ("DRAFTSTORE_RATE_LIMIT_REDIS_URL", url.as_str()),
        ("DRAFTSTORE_RATE_LIMIT_KEY_PREFIX", prefix.as_str()),
        // A loaded test machine: the bound is for production latency, not for these tests.
        ("DRAFTSTORE_RATE_LIMIT_TIMEOUT_MS", "2000"),
        ("DRAFTSTORE_RATE_LIMIT_REPLICAS", hint),
    ];
    let warm: [Process; 2] = std::array::from_fn(|_| gateway(&keys, &env));
    for gateway in &warm {
        wait_for_state(gateway.port, "ok").await;
    }
    // Two more probes each: both have counted two replicas.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (limit, rate, replicas) = (20.0, 2.0, 3.0);

    let stop = Arc::new(AtomicBool::new(false));
    let granted = Arc::new(AtomicUsize::new(0));
    let ask = |port: u16| ask_until(port, "acme", &stop, &granted);
    let started = Instant::now();
    let at = |secs| tokio::time::Instant::from_std(started + Duration::from_secs(secs));
    let mut clients: Vec<_> = warm.iter().map(|g| ask(g.port)).collect();
    tokio::time::sleep_until(at(5)).await;
    redis.stop();
    tokio::time::sleep_until(at(15)).await;
    let late = gateway(&keys, &env);
    clients.push(ask(late.port));
    let late_started = Instant::now();
    tokio::time::sleep_until(at(45)).await;
    let alone_for = late_started.elapsed().as_secs_f64();
    redis.restart();
    for gateway in warm.iter().chain([&late]) {
        wait_for_state(gateway.port, "ok").await;
    }
    // Redis decides for 10 s more: the debts it was charged keep the tenant waiting.
    tokio::time::sleep_until(at(55)).await;
    let window = started.elapsed().as_secs_f64();
    let total = granted.load(Ordering::SeqCst);
    stop.store(true, Ordering::SeqCst);
    for client in clients {
        client.await.unwrap();
    }
    // Not vacuous: the late gateway served alone before Redis came back.
    let late_alone = late
        .metric("draftstore_rate_limit_fallbacks_total{outcome=\"local_granted\"}")
        .await;
    assert!(
        late_alone >= limit,
        "the late gateway granted {late_alone} alone"
    );

    let bound = limit + rate * window + (replicas - 1.0) * limit;
    #[allow(clippy::cast_precision_loss)]
    let total = total as f64;
    let summary = format!(
        "hint {hint}: {total} granted in {window:.1} s, the late gateway {late_alone} alone in {alone_for:.1} s"
    );
    eprintln!("scale-up during an outage, {summary}, bound {bound:.1}");
    Some((total, bound, summary))
}
