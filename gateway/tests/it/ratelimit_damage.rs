//! The shared rate limiter with damaged keys in Redis (a string where the script keeps a hash,
//! a `tokens` field of `-inf`) and behind a connection that silently stops answering: one
//! tenant's damage stays that tenant's, and a dead connection is dialled anew. Real
//! `redis-server`s (the shared one, or each test's own) and real sockets; outside CI a missing
//! Redis skips with a printed reason.

use crate::ratelimit::{prefix, redis_url};
use draftstore_gateway::auth::ratelimit::{OnError, RateSpec, RedisConfig};
use draftstore_gateway::auth::RedisLimiter;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A limiter on `url` under a fresh prefix of `tag`'s.
fn limiter(url: &str, tag: &str, on_error: OnError) -> Arc<RedisLimiter> {
    RedisLimiter::start(&RedisConfig {
        url: url.to_owned(),
        // A loaded test machine: the bound is for production latency, not for these tests.
        timeout: Duration::from_millis(500),
        on_error,
        key_prefix: prefix(tag),
        replicas: 1,
    })
    .unwrap()
}

async fn connection(url: &str) -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(url).unwrap();
    client.get_multiplexed_async_connection().await.unwrap()
}

async fn key_type(connection: &mut redis::aio::MultiplexedConnection, key: &str) -> String {
    redis::cmd("TYPE")
        .arg(key)
        .query_async(connection)
        .await
        .unwrap()
}

/// Waits (bounded) until `limiter` decides for `tenant` through Redis.
async fn until_decided(limiter: &Arc<RedisLimiter>, tenant: &str, spec: RateSpec) {
    let started = Instant::now();
    while limiter.take(tenant, spec).await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "Redis never decided for {tenant}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The reviewer's repro: `SET <prefix>acme oops` (a string where the script keeps a hash).
/// The script replaces the key (acme is decided again, from a full bucket), and beta, whose key
/// is healthy, is decided by Redis every time: under `reject` it got 429 on 17 of 20 when
/// acme's `WRONGTYPE` counted as Redis failing.
#[tokio::test]
async fn a_key_of_the_wrong_type_is_replaced_and_fails_no_other_tenant() {
    let Some(url) = redis_url() else { return };
    let limiter = limiter(&url, "wrongtype", OnError::Reject);
    let spec = RateSpec {
        limit: 100,
        per: Duration::from_secs(60),
    };
    until_decided(&limiter, "beta", spec).await;
    let mut connection = connection(&url).await;
    let acme = limiter.key("acme");
    let _: () = redis::cmd("SET")
        .arg(&acme)
        .arg("oops")
        .query_async(&mut connection)
        .await
        .unwrap();
    let mut answers = Vec::new();
    for _ in 0..10 {
        answers.push(("acme", limiter.take("acme", spec).await));
        answers.push(("beta", limiter.take("beta", spec).await));
    }
    let undecided: Vec<_> = answers.iter().filter(|(_, a)| a.is_err()).collect();
    assert!(
        undecided.is_empty(),
        "every decision made by Redis: {undecided:?} of {}",
        answers.len()
    );
    assert!(answers.iter().all(|(_, a)| *a == Ok(Ok(()))), "{answers:?}");
    assert_eq!(key_type(&mut connection, &acme).await, "hash");
    let _: () = redis::cmd("DEL")
        .arg(&acme)
        .arg(limiter.key("beta"))
        .query_async(&mut connection)
        .await
        .unwrap();
}

/// A `<prefix>_replicas` of the wrong type made every count fail silently: each replica then
/// counted as alone (R = 1), and three replicas broke the bound by a factor of three. The
/// count's script replaces the key and counts again.
#[tokio::test]
async fn a_replicas_key_of_the_wrong_type_is_replaced_and_counted_again() {
    let Some(url) = redis_url() else { return };
    let tag = prefix("replicas-wrongtype");
    let mut connection = connection(&url).await;
    let key = format!("{tag}_replicas");
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg("oops")
        .query_async(&mut connection)
        .await
        .unwrap();
    let limiter = RedisLimiter::start(&RedisConfig {
        url: url.clone(),
        timeout: Duration::from_millis(500),
        on_error: OnError::Allow,
        key_prefix: tag.clone(),
        replicas: 1,
    })
    .unwrap();
    let started = Instant::now();
    while key_type(&mut connection, &key).await != "zset" {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{key} is still a {}",
            key_type(&mut connection, &key).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let counted: u32 = redis::cmd("ZCARD")
        .arg(&key)
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(counted, 1, "this replica counted");
    drop(limiter);
    let _: () = redis::cmd("DEL")
        .arg(&key)
        .arg(&tag)
        .query_async(&mut connection)
        .await
        .unwrap();
}
