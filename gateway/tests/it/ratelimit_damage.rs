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
    // Three of acme's in a row (as many failures as open the breaker when they count as
    // Redis failing), then beta's.
    let mut answers = Vec::new();
    for _ in 0..5 {
        for _ in 0..3 {
            answers.push(("acme", limiter.take("acme", spec).await));
        }
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

/// Entries of `<prefix>_replicas` scored `+inf` or in the future (hand-written, or from a Redis
/// whose clock stepped back after a failover) never aged out: 500 fake `+inf` entries made
/// R = 502 (a damaged tokens field then locked a tenant out 5012 s at `rate=5/10`), entries an
/// hour ahead R = 7. The count's script removes entries beyond now + the liveness window, and
/// `draftstore_rate_limit_replicas` shows the count.
#[tokio::test]
async fn replicas_scored_in_the_future_are_not_counted() {
    let Some(url) = redis_url() else { return };
    let tag = prefix("replicas-future");
    let mut connection = connection(&url).await;
    let key = format!("{tag}_replicas");
    let (secs, micros): (i64, i64) = redis::cmd("TIME")
        .query_async(&mut connection)
        .await
        .unwrap();
    let hour_ahead = (secs + 3600) * 1_000_000 + micros;
    for n in 0..98 {
        let _: () = redis::cmd("ZADD")
            .arg(&key)
            .arg("+inf")
            .arg(format!("fake-inf-{n}"))
            .query_async(&mut connection)
            .await
            .unwrap();
    }
    for n in 0..5 {
        let _: () = redis::cmd("ZADD")
            .arg(&key)
            .arg(hour_ahead)
            .arg(format!("fake-ahead-{n}"))
            .query_async(&mut connection)
            .await
            .unwrap();
    }
    let keys = format!("acme {} rate=5/10", crate::ratelimit::hash("acme"));
    let env = [
        ("DRAFTSTORE_RATE_LIMIT_REDIS_URL", url.as_str()),
        ("DRAFTSTORE_RATE_LIMIT_KEY_PREFIX", tag.as_str()),
        ("DRAFTSTORE_RATE_LIMIT_TIMEOUT_MS", "2000"),
    ];
    let gateway = crate::ratelimit::gateway(&keys, &env);
    crate::ratelimit::wait_for_state(gateway.port, "ok").await;
    // The count runs with every probe (once a second): bounded wait for the first.
    let started = Instant::now();
    let mut counted: u32 = 0;
    while started.elapsed() < Duration::from_secs(20) {
        counted = redis::cmd("ZCARD")
            .arg(&key)
            .query_async(&mut connection)
            .await
            .unwrap();
        if counted < 100 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Two more probes: the gauge follows the last count.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(counted, 1, "only this replica is left in {key}");
    assert_eq!(
        gateway.metric("draftstore_rate_limit_replicas").await,
        1.0,
        "R as counted"
    );
    let _: () = redis::cmd("DEL")
        .arg(&key)
        .arg(&tag)
        .arg(format!("{tag}acme"))
        .query_async(&mut connection)
        .await
        .unwrap();
}

/// A TCP relay to Redis that, on demand, silently swallows what travels on the connections it
/// already holds (both ways, nothing closed: a half-open connection after a failover behind a
/// virtual IP, or a dropped conntrack entry); connections made after that pass through.
struct BlackHole {
    port: u16,
    /// Connections accepted so far.
    accepted: Arc<std::sync::atomic::AtomicUsize>,
    /// Connections numbered below this are swallowed.
    cut_below: Arc<std::sync::atomic::AtomicUsize>,
}

impl BlackHole {
    async fn start(redis_port: u16) -> Self {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let cut_below = Arc::new(AtomicUsize::new(0));
        let (count, cut) = (accepted.clone(), cut_below.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let number = count.fetch_add(1, Ordering::SeqCst);
                let server = tokio::net::TcpStream::connect(("127.0.0.1", redis_port))
                    .await
                    .unwrap();
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                tokio::spawn(Self::pipe(client_read, server_write, number, cut.clone()));
                tokio::spawn(Self::pipe(server_read, client_write, number, cut.clone()));
            }
        });
        Self {
            port,
            accepted,
            cut_below,
        }
    }

    /// Copies `from` to `to` until either closes; drops what it reads once connection
    /// `number` is cut (keeping both open).
    async fn pipe(
        mut from: tokio::net::tcp::OwnedReadHalf,
        mut to: tokio::net::tcp::OwnedWriteHalf,
        number: usize,
        cut_below: Arc<std::sync::atomic::AtomicUsize>,
    ) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut buffer = vec![0_u8; 64 * 1024];
        while let Ok(n) = from.read(&mut buffer).await {
            if n == 0 {
                return;
            }
            if number < cut_below.load(std::sync::atomic::Ordering::SeqCst) {
                continue;
            }
            if to.write_all(&buffer[..n]).await.is_err() {
                return;
            }
        }
    }

    /// From now on, every connection accepted so far answers nothing.
    fn swallow_existing(&self) {
        use std::sync::atomic::Ordering;
        self.cut_below
            .store(self.accepted.load(Ordering::SeqCst), Ordering::SeqCst);
    }

    fn accepted(&self) -> usize {
        self.accepted.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// The reviewer's repro: the connection to Redis silently stops answering (no RST, no FIN)
/// while a fresh dial works. The probe keeps the connection after one timeout, but dials anew
/// after a few in a row, and Redis decides again; before, the replica stayed degraded (5 min
/// through the reviewer's proxy) on a connection that would never answer.
#[tokio::test]
async fn a_connection_that_stops_answering_is_dialled_anew() {
    let Some(url) = redis_url() else { return };
    let redis_port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    let hole = BlackHole::start(redis_port).await;
    let limiter = limiter(
        &format!("redis://127.0.0.1:{}", hole.port),
        "half-open",
        OnError::Reject,
    );
    let spec = RateSpec {
        limit: 100,
        per: Duration::from_secs(60),
    };
    until_decided(&limiter, "acme", spec).await;
    let dialled = hole.accepted();
    assert_eq!(dialled, 1, "one multiplexed connection");
    hole.swallow_existing();
    assert!(
        limiter.take("acme", spec).await.is_err(),
        "the connection answers nothing any more"
    );
    // Bounded: three probe timeouts take about 6 s; allow a loaded machine far more.
    let started = Instant::now();
    while limiter.take("acme", spec).await != Ok(Ok(())) {
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "still no decision through Redis after {:?}; connections dialled: {}",
            started.elapsed(),
            hole.accepted()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        hole.accepted() > dialled,
        "decided on a fresh connection: {} dialled",
        hole.accepted()
    );
    let mut connection = connection(&url).await;
    let _: () = redis::cmd("DEL")
        .arg(limiter.key("acme"))
        .query_async(&mut connection)
        .await
        .unwrap();
}

/// A count of the replicas that keeps failing (here the credentials may not touch
/// `<prefix>_replicas`, an ACL that only lists the tenants' keys) is logged, with the count
/// kept; before, it failed silently and each replica went on sharing the rate with the hint (1
/// by default), the bound broken by a factor of R.
#[tokio::test]
async fn a_count_of_the_replicas_that_fails_is_logged() {
    use crate::ratelimit::{gateway, hash, wait_for_state};
    let Some(url) = redis_url() else { return };
    let tag = prefix("replicas-denied");
    let user = format!("gw{}", std::process::id());
    let mut admin = connection(&url).await;
    // Every key under the prefix but those starting with `_`, and the probe's (the prefix).
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg(&user)
        .arg("reset")
        .arg("on")
        .arg(">pw-of-the-test")
        .arg(format!("~{tag}[^_]*"))
        .arg(format!("~{tag}"))
        .arg("+@all")
        .query_async(&mut admin)
        .await
        .unwrap();
    let authority = url.strip_prefix("redis://").unwrap();
    let as_user = format!("redis://{user}:pw-of-the-test@{authority}");
    let keys = format!("acme {} rate=5/60", hash("acme"));
    let replica = gateway(
        &keys,
        &[
            ("DRAFTSTORE_RATE_LIMIT_REDIS_URL", as_user.as_str()),
            ("DRAFTSTORE_RATE_LIMIT_KEY_PREFIX", tag.as_str()),
            ("DRAFTSTORE_RATE_LIMIT_TIMEOUT_MS", "2000"),
            ("DRAFTSTORE_RATE_LIMIT_REPLICAS", "3"),
        ],
    );
    wait_for_state(replica.port, "ok").await;
    let started = Instant::now();
    while !replica.log().contains("counting the replicas in Redis") {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no WARN about the count: {}",
            replica.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = replica.log();
    let line = log
        .lines()
        .find(|l| l.contains("counting the replicas"))
        .unwrap();
    assert!(line.contains("WARN") && line.contains("NOPERM"), "{line}");
    assert!(line.contains("replicas=3"), "the hint kept: {line}");
    assert!(!log.contains("pw-of-the-test"), "{log}");
    let _: () = redis::cmd("ACL")
        .arg("DELUSER")
        .arg(&user)
        .query_async(&mut admin)
        .await
        .unwrap();
}

/// The reviewer's repro: a damaged `tokens` field (`-inf`, `-9e12`) locked the tenant out for
/// 999 periods (`Retry-After` 9989 s at `rate=5/10`); it now counts as the replicas' floor
/// (one replica: −limit), so the wait is at most a period and a token.
#[tokio::test]
async fn a_damaged_tokens_field_locks_a_tenant_out_no_longer_than_the_floor() {
    let Some(url) = redis_url() else { return };
    let limiter = limiter(&url, "tokens-inf", OnError::Reject);
    let spec = RateSpec {
        limit: 5,
        per: Duration::from_secs(10),
    };
    until_decided(&limiter, "acme", spec).await;
    let mut connection = connection(&url).await;
    let acme = limiter.key("acme");
    for damage in ["-inf", "-9e12"] {
        let (secs, micros): (i64, i64) = redis::cmd("TIME")
            .query_async(&mut connection)
            .await
            .unwrap();
        let _: () = redis::cmd("HSET")
            .arg(&acme)
            .arg("tokens")
            .arg(damage)
            .arg("at")
            .arg(secs * 1_000_000 + micros)
            .query_async(&mut connection)
            .await
            .unwrap();
        let answer = limiter.take("acme", spec).await;
        let Ok(Err(wait)) = answer else {
            panic!("tokens={damage}: limited, not {answer:?}");
        };
        // −5 tokens: 6 to refill at 5 per 10 s, 12 s (a period and a token).
        assert!(
            wait <= Duration::from_secs(12),
            "tokens={damage}: Retry-After {wait:?}"
        );
        let tokens: f64 = redis::cmd("HGET")
            .arg(&acme)
            .arg("tokens")
            .query_async(&mut connection)
            .await
            .unwrap();
        assert!((-5.0..-4.9).contains(&tokens), "tokens={damage}: {tokens}");
    }
    let _: () = redis::cmd("DEL")
        .arg(&acme)
        .query_async(&mut connection)
        .await
        .unwrap();
}

/// One key's failure is told by the decision script's own error code (`KEY_ERROR`), not by
/// Redis's wording of a script error (`user_script`, Redis 7's only): a runtime error in the
/// step comes back with that code and writes nothing; a string key is repaired by the script
/// (its `HMGET` under `redis.pcall`, no `TYPE` per decision) and answered as a grant.
#[tokio::test]
async fn a_runtime_error_in_the_step_comes_back_with_the_scripts_own_code() {
    use draftstore_gateway::auth::ratelimit::{KEY_ERROR, LUA};
    let Some(url) = redis_url() else { return };
    let mut connection = connection(&url).await;
    let key = format!("{}acme", prefix("key-error"));
    let script = redis::Script::new(LUA);
    // A limit that is not a number: the step's arithmetic fails (the deadline is far ahead).
    let e = script
        .key(&key)
        .arg("not-a-number")
        .arg(60_000_000)
        .arg(i64::MAX)
        .invoke_async::<redis::Value>(&mut connection)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(KEY_ERROR), "{e:?}");
    assert!(
        e.detail().is_some_and(|d| d.contains("arithmetic")),
        "Lua's message follows the code: {e:?}"
    );
    let exists: bool = redis::cmd("EXISTS")
        .arg(&key)
        .query_async(&mut connection)
        .await
        .unwrap();
    assert!(!exists, "a failed step writes nothing");
    // A string where the bucket is a hash: repaired, granted from a full bucket.
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg("oops")
        .query_async(&mut connection)
        .await
        .unwrap();
    let (granted, _, _, left, repaired): (i64, i64, i64, i64, i64) = script
        .key(&key)
        .arg(5)
        .arg(60_000_000)
        .arg(i64::MAX)
        .invoke_async(&mut connection)
        .await
        .unwrap();
    assert_eq!((granted, left, repaired), (1, 4_000_000, 1));
    assert_eq!(key_type(&mut connection, &key).await, "hash");
    let _: () = redis::cmd("DEL")
        .arg(&key)
        .query_async(&mut connection)
        .await
        .unwrap();
}
