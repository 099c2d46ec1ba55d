//! The shared rate limiter when Redis misbehaves: frozen (SIGSTOP) while decisions are in
//! flight, flapping, refusing the password, or not speaking TLS; and what it logs meanwhile.
//! Each test runs its own `redis-server` (the Debian package scripts/redis.sh installs) and real
//! `gateway serve` processes; outside CI a missing Redis skips with a printed reason.

use crate::ratelimit::{
    gateway, hash, limiter_state, prefix, redis_url, rest, wait_for_state, Redis,
};
use std::time::Duration;

/// Three requests sent at once while Redis is frozen (SIGSTOP): under `reject` all get 429,
/// under `allow` all are counted in the process. When Redis runs again (SIGCONT) it executes
/// the three queued scripts; they must spend nothing, so the tenant's shared bucket still holds
/// the 4 it had left (the reviewer's repro: 1 left).
#[tokio::test]
async fn a_decision_given_up_on_spends_nothing_when_a_frozen_redis_catches_up() {
    if redis_url().is_none() {
        return;
    }
    let redis = Redis::start();
    let url = redis.url();
    // One token back an hour: nothing refills while the test runs.
    let keys = format!("acme {} rate=5/3600", hash("acme"));
    let settings = |on_error: &str| {
        vec![
            ("DRAFTSTORE_RATE_LIMIT_REDIS_URL", url.clone()),
            ("DRAFTSTORE_RATE_LIMIT_KEY_PREFIX", prefix(on_error)),
            // Long enough for a loaded test machine; a frozen Redis answers never.
            ("DRAFTSTORE_RATE_LIMIT_TIMEOUT_MS", "1000".to_owned()),
            ("DRAFTSTORE_RATE_LIMIT_ON_ERROR", on_error.to_owned()),
        ]
    };
    let (allow_env, reject_env) = (settings("allow"), settings("reject"));
    let allow = gateway(&keys, &crate::ratelimit::borrowed(&allow_env));
    let reject = gateway(&keys, &crate::ratelimit::borrowed(&reject_env));
    wait_for_state(allow.port, "ok").await;
    wait_for_state(reject.port, "ok").await;
    // One grant each while Redis answers (Redis then holds the script: a frozen EVALSHA of an
    // unknown script would only come back NOSCRIPT).
    for replica in [&reject, &allow] {
        assert_eq!(rest(replica.port, "acme").await.0, 200);
    }

    redis.freeze();
    let (a, b, c, d, e, f) = tokio::join!(
        rest(reject.port, "acme"),
        rest(reject.port, "acme"),
        rest(reject.port, "acme"),
        rest(allow.port, "acme"),
        rest(allow.port, "acme"),
        rest(allow.port, "acme"),
    );
    for (status, code, _) in [a, b, c] {
        assert_eq!((status, code.as_str()), (429, "RATE_LIMIT_UNAVAILABLE"));
    }
    for (status, code, _) in [d, e, f] {
        assert_eq!((status, code.as_str()), (200, ""), "allow counts locally");
    }
    // Frozen longer than a late answer is awaited (the decision's bound + 1 s): the scripts
    // run with nobody left to give a grant back; they must see for themselves they are late.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    redis.thaw();
    wait_for_state(reject.port, "ok").await;
    wait_for_state(allow.port, "ok").await;

    // The frozen decisions spent nothing: `reject`'s shared bucket holds exactly the 4 left
    // before the freeze; `allow`'s the same 4 less the 3 it granted alone (charged once, when
    // Redis decides again after the thaw), not less 6.
    for (replica, left, what) in [(&reject, 4, "reject"), (&allow, 1, "allow")] {
        let mut statuses = Vec::new();
        for _ in 0..6 {
            statuses.push(rest(replica.port, "acme").await.0);
        }
        let want: Vec<u16> = (0..6).map(|i| if i < left { 200 } else { 429 }).collect();
        assert_eq!(
            statuses, want,
            "{what}: the frozen decisions must not spend the shared bucket"
        );
    }
    for replica in [&allow, &reject] {
        assert!(
            replica
                .metric("draftstore_rate_limit_redis_calls_total{outcome=\"timeout\"}")
                .await
                >= 3.0
        );
    }
}

/// Redis falls and comes back twice within a minute: one WARN (the throttle holds across the
/// recovery) and one INFO for the recovery it announced.
#[tokio::test]
async fn a_flapping_redis_is_logged_once_a_minute_not_once_per_fall() {
    if redis_url().is_none() {
        return;
    }
    let mut redis = Redis::start();
    let url = redis.url();
    let keys = format!("acme {} rate=5/60", hash("acme"));
    let prefix = prefix("flap");
    let env = [
        ("DRAFTSTORE_RATE_LIMIT_REDIS_URL", url.as_str()),
        ("DRAFTSTORE_RATE_LIMIT_KEY_PREFIX", prefix.as_str()),
        ("DRAFTSTORE_RATE_LIMIT_TIMEOUT_MS", "500"),
    ];
    let replica = gateway(&keys, &env);
    wait_for_state(replica.port, "ok").await;
    for _ in 0..2 {
        redis.stop();
        wait_for_state(replica.port, "degraded").await;
        redis.restart();
        wait_for_state(replica.port, "ok").await;
    }
    let log = replica.log();
    assert_eq!(log.matches("Redis makes no decision").count(), 1, "{log}");
    assert_eq!(log.matches("counting is shared again").count(), 1, "{log}");
    assert!(!log.contains("\"Io\""), "{log}");
}

/// Each failure says what happened, and never the password: refused credentials, a frozen
/// server (timed out after N ms, not `Io`), `rediss://` to a port that speaks no TLS.
#[tokio::test]
async fn failures_say_what_happened_and_never_the_password() {
    if redis_url().is_none() {
        return;
    }
    let keys = format!("acme {} rate=5/60", hash("acme"));
    let tag = prefix("words");

    // A wrong password.
    let guarded = Redis::start_with(&["--requirepass", "right-horse-battery"]);
    let wrong = format!("redis://:wrong-staple-4242@127.0.0.1:{}", guarded.port);
    let replica = gateway(
        &keys,
        &[
            ("DRAFTSTORE_RATE_LIMIT_REDIS_URL", wrong.as_str()),
            ("DRAFTSTORE_RATE_LIMIT_KEY_PREFIX", tag.as_str()),
        ],
    );
    wait_for_state(replica.port, "degraded").await;
    let log = replica.log();
    assert!(log.contains("Redis refused the credentials"), "{log}");
    assert!(!log.contains("wrong-staple-4242"), "{log}");
    assert!(!log.contains("right-horse-battery"), "{log}");
    drop(replica);

    // TLS to a plaintext port.
    let plain = Redis::start();
    let tls = format!("rediss://:wrong-staple-4242@127.0.0.1:{}", plain.port);
    let replica = gateway(
        &keys,
        &[
            ("DRAFTSTORE_RATE_LIMIT_REDIS_URL", tls.as_str()),
            ("DRAFTSTORE_RATE_LIMIT_KEY_PREFIX", tag.as_str()),
        ],
    );
    wait_for_state(replica.port, "degraded").await;
    let log = replica.log();
    assert!(log.contains("TLS handshake failed"), "{log}");
    assert!(!log.contains("wrong-staple-4242"), "{log}");
    drop(replica);

    // A frozen server: a decision times out, and says after how long.
    let url = plain.url();
    let replica = gateway(
        &keys,
        &[
            ("DRAFTSTORE_RATE_LIMIT_REDIS_URL", url.as_str()),
            ("DRAFTSTORE_RATE_LIMIT_KEY_PREFIX", tag.as_str()),
            ("DRAFTSTORE_RATE_LIMIT_TIMEOUT_MS", "300"),
        ],
    );
    wait_for_state(replica.port, "ok").await;
    // Heard from Redis: the fallback holds what Redis left (4), not a fresh replica's 0.
    assert_eq!(rest(replica.port, "acme").await.0, 200, "through Redis");
    plain.freeze();
    let (status, ..) = rest(replica.port, "acme").await;
    assert_eq!(status, 200, "allow: counted in the process");
    wait_for_state(replica.port, "degraded").await;
    plain.thaw();
    let log = replica.log();
    assert!(log.contains("timed out: no answer within "), "{log}");
    assert!(!log.contains("\"Io\"") && !log.contains("=Io"), "{log}");
}

/// A tenant over its rate: twelve refusals, one INFO line about it (how many), not one per
/// request. In-process counting: no Redis needed.
#[tokio::test]
async fn an_over_limit_tenant_is_logged_once_not_per_refusal() {
    let keys = format!("acme {} rate=2/3600", hash("acme"));
    let replica = gateway(&keys, &[]);
    let mut statuses = Vec::new();
    for _ in 0..14 {
        statuses.push(rest(replica.port, "acme").await.0);
    }
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 12);
    // The access log's own lines are at DEBUG: give the gateway time to write what it would.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = replica.log();
    assert_eq!(log.matches("RATE_LIMITED").count(), 0, "{log}");
    assert_eq!(log.matches("tenant over its rate").count(), 1, "{log}");
    assert!(log.contains("refused=1"), "{log}");
    // The period, named as one (not `per_s`, which read like a rate).
    assert!(log.contains("limit=2 period_s=3600"), "{log}");
    // Still visible in the metrics, per request.
    let text = reqwest::get(format!("http://127.0.0.1:{}/metrics", replica.port))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.lines()
            .any(|l| l.starts_with("draftstore_requests_total{")
                && l.contains("status=\"429\"")
                && l.ends_with(" 12")),
        "{text}"
    );
}

/// A TCP relay to Redis whose answers can be held back: requests reach Redis at once (the
/// script runs, in time), the answers arrive late (the gateway has already given up), each
/// 400 ms after Redis sent it, however many came before (delays do not add up): a Redis that
/// answers slowly, every time alike.
pub(crate) struct SlowAnswers {
    pub(crate) port: u16,
    hold: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl SlowAnswers {
    pub(crate) async fn start(redis_port: u16) -> Self {
        use std::sync::atomic::Ordering;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let hold = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let held = hold.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let server = tokio::net::TcpStream::connect(("127.0.0.1", redis_port))
                    .await
                    .unwrap();
                let (mut client_read, mut client_write) = client.into_split();
                let (mut server_read, mut server_write) = server.into_split();
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
                });
                // Each answer is due 400 ms after it left Redis, whatever came before it: the
                // reader stamps it, the writer waits for the stamp (in order, never longer).
                let (answers, mut due) =
                    tokio::sync::mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
                let held = held.clone();
                tokio::spawn(async move {
                    let mut buffer = vec![0_u8; 64 * 1024];
                    while let Ok(n) = server_read.read(&mut buffer).await {
                        if n == 0 {
                            return;
                        }
                        let delay = if held.load(Ordering::SeqCst) {
                            Duration::from_millis(400)
                        } else {
                            Duration::ZERO
                        };
                        let at = tokio::time::Instant::now() + delay;
                        if answers.send((at, buffer[..n].to_vec())).is_err() {
                            return;
                        }
                    }
                });
                tokio::spawn(async move {
                    while let Some((at, answer)) = due.recv().await {
                        tokio::time::sleep_until(at).await;
                        if client_write.write_all(&answer).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Self { port, hold }
    }

    pub(crate) fn hold(&self, on: bool) {
        self.hold.store(on, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The script ran in time and spent a token, but its answer arrived after the decision was
/// given up on (and the fallback refused the request): the token is given back, so the tenant's
/// shared bucket holds what it held before.
#[tokio::test]
async fn a_grant_answered_after_the_decision_was_given_up_is_given_back() {
    use draftstore_gateway::auth::ratelimit::{OnError, RateSpec, RedisConfig};
    use draftstore_gateway::auth::RedisLimiter;
    let Some(url) = redis_url() else { return };
    let redis_port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    let relay = SlowAnswers::start(redis_port).await;
    let limiter = RedisLimiter::start(&RedisConfig {
        url: format!("redis://127.0.0.1:{}", relay.port),
        timeout: Duration::from_millis(150),
        on_error: OnError::Reject,
        key_prefix: prefix("late"),
        replicas: 1,
    })
    .unwrap();
    let spec = RateSpec {
        limit: 5,
        per: Duration::from_secs(3600),
    };
    // Answered in time: one of 5 spent (and the limiter knows Redis's clock).
    let mut answered = false;
    for _ in 0..50 {
        if limiter.take("acme", spec).await == Ok(Ok(())) {
            answered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(answered, "Redis answers through the relay");
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let tokens = |mut connection: redis::aio::MultiplexedConnection, key: String| async move {
        let tokens: f64 = redis::cmd("HGET")
            .arg(key)
            .arg("tokens")
            .query_async(&mut connection)
            .await
            .unwrap();
        tokens
    };
    let before = tokens(connection.clone(), limiter.key("acme")).await;
    assert!((4.0..4.01).contains(&before), "{before}");

    relay.hold(true);
    assert!(
        limiter.take("acme", spec).await.is_err(),
        "the answer comes after the 150 ms bound"
    );
    relay.hold(false);
    // The late grant is settled in the background: wait for the bucket to say so (bounded).
    let started = std::time::Instant::now();
    let mut now = tokens(connection.clone(), limiter.key("acme")).await;
    while now < before && started.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        now = tokens(connection.clone(), limiter.key("acme")).await;
    }
    assert!(
        (before..before + 0.01).contains(&now),
        "the decision given up on spent nothing: {before} tokens before, {now} after"
    );
    let _: () = redis::cmd("DEL")
        .arg(limiter.key("acme"))
        .query_async(&mut connection)
        .await
        .unwrap();
}

/// Sets Redis's password to `new`, speaking as `current`; `kill` then drops every client
/// connection (the gateway's included, and this one).
fn set_password(port: u16, current: &str, new: &str, kill: bool) {
    let client = redis::Client::open(format!("redis://:{current}@127.0.0.1:{port}/0")).unwrap();
    let mut admin = client.get_connection().unwrap();
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("requirepass")
        .arg(new)
        .query::<()>(&mut admin)
        .unwrap();
    if kill {
        // Kills this connection too: its answer may never come.
        let _ = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("TYPE")
            .arg("normal")
            .query::<redis::Value>(&mut admin);
    }
}

/// One refused AUTH must not leave a replica degraded for good (the `redis` crate keeps a
/// connection whose set-up failed other than by I/O as failed): the password changed and
/// every connection killed, the replica is degraded; the password restored, it reports `ok`
/// again within a few probes, and its requests are counted in Redis.
#[tokio::test]
async fn a_refused_password_recovers_once_redis_takes_it_again() {
    if redis_url().is_none() {
        return;
    }
    let redis = Redis::start_with(&["--requirepass", "PwA1"]);
    let url = format!("redis://:PwA1@127.0.0.1:{}/0", redis.port);
    let keys = format!("acme {} rate=5/3600", hash("acme"));
    let tag = prefix("reauth");
    let replica = gateway(
        &keys,
        &[
            ("DRAFTSTORE_RATE_LIMIT_REDIS_URL", url.as_str()),
            ("DRAFTSTORE_RATE_LIMIT_KEY_PREFIX", tag.as_str()),
        ],
    );
    wait_for_state(replica.port, "ok").await;
    set_password(redis.port, "PwA1", "PwB2", true);
    wait_for_state(replica.port, "degraded").await;
    // Long enough for the reconnection after the kill to be refused (the reviewer's 2.5 s).
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(limiter_state(replica.port).await, "degraded");
    set_password(redis.port, "PwB2", "PwA1", false);
    wait_for_state(replica.port, "ok").await;
    // Shared counting again: the grant is in Redis's bucket for acme.
    assert_eq!(rest(replica.port, "acme").await.0, 200);
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut admin = client.get_connection().unwrap();
    let exists: bool = redis::cmd("EXISTS")
        .arg(format!("{tag}acme"))
        .query(&mut admin)
        .unwrap();
    assert!(exists, "acme's bucket is in Redis");
}

/// A replica started with a password Redis refuses reports `ok` once Redis is changed to take
/// it, without a restart.
#[tokio::test]
async fn a_replica_started_with_a_refused_password_recovers_when_redis_takes_it() {
    if redis_url().is_none() {
        return;
    }
    let redis = Redis::start_with(&["--requirepass", "PwA1"]);
    let url = format!("redis://:PwB2@127.0.0.1:{}/0", redis.port);
    let keys = format!("acme {} rate=5/3600", hash("acme"));
    let tag = prefix("reauth-start");
    let replica = gateway(
        &keys,
        &[
            ("DRAFTSTORE_RATE_LIMIT_REDIS_URL", url.as_str()),
            ("DRAFTSTORE_RATE_LIMIT_KEY_PREFIX", tag.as_str()),
        ],
    );
    wait_for_state(replica.port, "degraded").await;
    set_password(redis.port, "PwA1", "PwB2", false);
    wait_for_state(replica.port, "ok").await;
    assert_eq!(rest(replica.port, "acme").await.0, 200);
}
