//! Tenant rate limits shared by several `gateway serve` processes (each with its own embedded
//! store folder) through one real Redis (started by scripts/test via scripts/redis.sh, which
//! exports `DRAFTSTORE_TEST_REDIS_URL`). Outside CI a missing Redis skips with a printed reason;
//! with `CI=true` it is a failure.

use draftstore_proto::draft::v1 as pb;
use sha2::{Digest, Sha256};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `None` (with a printed reason) when no Redis is configured outside CI.
pub(crate) fn redis_url() -> Option<String> {
    let url = std::env::var("DRAFTSTORE_TEST_REDIS_URL")
        .ok()
        .filter(|v| !v.is_empty());
    if url.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but DRAFTSTORE_TEST_REDIS_URL is unset: run scripts/test"
        );
        eprintln!("SKIP: DRAFTSTORE_TEST_REDIS_URL unset; scripts/test starts Redis");
    }
    url
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for_port(port: u16, what: &str) {
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{what} did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub(crate) fn hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// A Redis key prefix of this run and test, so runs sharing one Redis never meet.
pub(crate) fn prefix(tag: &str) -> String {
    format!(
        "draftstore-test:{tag}:{}:{}:",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

pub(crate) struct Process {
    child: Child,
    pub(crate) port: u16,
    dir: tempfile::TempDir,
}

impl Process {
    /// What the gateway wrote on stderr so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("gateway.log")).unwrap()
    }

    /// The value of one series in `/metrics` (0 when absent).
    pub(crate) async fn metric(&self, series: &str) -> f64 {
        let text = reqwest::get(format!("http://127.0.0.1:{}/metrics", self.port))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or(0.0)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `gateway serve` on the embedded store in a folder of its own, with API keys and `env`.
pub(crate) fn gateway(keys: &str, env: &[(&str, &str)]) -> Process {
    let mut all = vec![("DRAFTSTORE_API_KEYS", keys)];
    all.extend_from_slice(env);
    gateway_with(&all)
}

/// `gateway serve` on the embedded store in a folder of its own, with API keys from `env`.
pub(crate) fn gateway_with(env: &[(&str, &str)]) -> Process {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let log = std::fs::File::create(dir.path().join("gateway.log")).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_gateway"))
        .env_clear()
        .env("DRAFTSTORE_STORAGE", "local")
        .env("DRAFTSTORE_DATA_DIR", dir.path().join("data"))
        .env("DRAFTSTORE_AUTH", "api-keys")
        .envs(env.iter().copied())
        .args(["serve", "--bind", "127.0.0.1", "--http-port"])
        .arg(port.to_string())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    wait_for_port(port, "gateway");
    Process { child, port, dir }
}

pub(crate) fn borrowed<'a>(pairs: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    pairs.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// A REST upload URL: the status, the error code (if any) and `Retry-After` (if any).
pub(crate) async fn rest(port: u16, key: &str) -> (u16, String, Option<String>) {
    rest_with(port, key, &serde_json::json!({"object_name": "a.txt"})).await
}

/// [`rest`] with the request's JSON body.
pub(crate) async fn rest_with(
    port: u16,
    key: &str,
    body: &serde_json::Value,
) -> (u16, String, Option<String>) {
    let response = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/api/v1/upload-url"))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let retry = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let body: serde_json::Value = response.json().await.unwrap();
    let code = body["error"]["code"].as_str().unwrap_or("").to_owned();
    (status, code, retry)
}

/// Asks `key`'s upload URL at `port` every 50 ms until `stop`, counting each 200 in `granted`;
/// anything but 200 or a 429 `RATE_LIMITED` fails the test.
pub(crate) fn ask_until(
    port: u16,
    key: &'static str,
    stop: &Arc<AtomicBool>,
    granted: &Arc<AtomicUsize>,
) -> tokio::task::JoinHandle<()> {
    let (stop, granted) = (stop.clone(), granted.clone());
    tokio::spawn(async move {
        while !stop.load(Ordering::SeqCst) {
            let (status, code, _) = rest(port, key).await;
            match status {
                200 => {
                    granted.fetch_add(1, Ordering::SeqCst);
                }
                429 => assert_eq!(code, "RATE_LIMITED"),
                other => panic!("upload-url answered {other} {code}"),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
}

/// A gRPC GetUploadURL: `Ok` or the status code and message.
async fn grpc(port: u16, key: &str) -> Result<(), (tonic::Code, String)> {
    let channel = tonic::transport::Channel::from_shared(format!("http://127.0.0.1:{port}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = tonic::client::Grpc::new(channel);
    client.ready().await.unwrap();
    let mut request = tonic::Request::new(pb::GetUploadUrlRequest {
        object_name: "a.txt".into(),
        ..Default::default()
    });
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {key}").parse().unwrap());
    client
        .unary(
            request,
            http::uri::PathAndQuery::from_static(pb::paths::GET_UPLOAD_URL),
            tonic_prost::ProstCodec::<pb::GetUploadUrlRequest, pb::GetUploadUrlResponse>::default(),
        )
        .await
        .map(|_| ())
        .map_err(|s| (s.code(), s.message().to_owned()))
}

/// `/ready`'s `rate_limit` field.
pub(crate) async fn limiter_state(port: u16) -> String {
    let body: serde_json::Value = reqwest::get(format!("http://127.0.0.1:{port}/ready"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["status"], "ready", "{body}");
    body["rate_limit"].as_str().unwrap_or("absent").to_owned()
}

/// Polls `/ready` until its `rate_limit` is `want` (bounded: 20 s).
pub(crate) async fn wait_for_state(port: u16, want: &str) {
    let started = Instant::now();
    loop {
        if limiter_state(port).await == want {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "/ready never reported rate_limit={want}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn three_replicas_on_one_redis_grant_a_tenant_its_rate_once_over_rest_and_grpc() {
    let Some(url) = redis_url() else { return };
    let keys = format!(
        "acme {} rate=5/60;acme {} rate=5/60;initech {} rate=5/60;globex {} rate=5/60",
        hash("acme-1"),
        hash("acme-2"),
        hash("initech"),
        hash("globex")
    );
    let prefix = prefix("three");
    let env = [
        ("DRAFTSTORE_RATE_LIMIT_REDIS_URL", url.as_str()),
        ("DRAFTSTORE_RATE_LIMIT_KEY_PREFIX", prefix.as_str()),
        // A loaded test machine: the bound is for production latency, not for this test.
        ("DRAFTSTORE_RATE_LIMIT_TIMEOUT_MS", "2000"),
        ("DRAFTSTORE_RATE_LIMIT_ON_ERROR", "reject"),
    ];
    let replicas = [
        gateway(&keys, &env),
        gateway(&keys, &env),
        gateway(&keys, &env),
    ];
    for r in &replicas {
        assert_eq!(limiter_state(r.port).await, "ok");
    }

    // REST: a burst of 12 spread over the three replicas, alternating the tenant's two keys.
    let mut granted = 0;
    for i in 0..12 {
        let key = if i % 2 == 0 { "acme-1" } else { "acme-2" };
        let (status, code, retry) = rest(replicas[i % 3].port, key).await;
        match status {
            200 => granted += 1,
            429 => {
                assert_eq!(code, "RATE_LIMITED");
                let secs: u64 = retry.expect("429 has Retry-After").parse().unwrap();
                assert!((1..=60).contains(&secs), "Retry-After {secs}");
            }
            other => panic!("upload-url answered {other} {code}"),
        }
    }
    assert_eq!(granted, 5, "acme gets its 5 once, not 5 per replica or key");

    // gRPC alike, and REST and gRPC count against the same bucket.
    let mut granted = 0;
    for i in 0..12 {
        let port = replicas[i % 3].port;
        let result = if i % 2 == 0 {
            grpc(port, "initech").await
        } else {
            match rest(port, "initech").await {
                (200, ..) => Ok(()),
                (status, code, _) => Err((tonic::Code::Unknown, format!("{status} {code}"))),
            }
        };
        match result {
            Ok(()) => granted += 1,
            Err((tonic::Code::ResourceExhausted, _)) => {}
            Err((_, message)) if message == "429 RATE_LIMITED" => {}
            Err(other) => panic!("unexpected refusal {other:?}"),
        }
    }
    assert_eq!(granted, 5, "initech: 5 over REST and gRPC together");
    assert_eq!(
        grpc(replicas[0].port, "initech").await.unwrap_err().0,
        tonic::Code::ResourceExhausted
    );

    // Another tenant is unaffected: its own 5.
    let mut granted = 0;
    for i in 0..6 {
        granted += usize::from(rest(replicas[i % 3].port, "globex").await.0 == 200);
    }
    assert_eq!(granted, 5);

    // The buckets live in Redis under the configured prefix, one per tenant.
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let mut found: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut connection)
        .await
        .unwrap();
    found.sort();
    // The prefix alone is the health probe's key (no tenant's: tenants are never empty), and
    // `<prefix>_replicas` the set of replicas (no tenant's: tenants never hold `_`).
    let replicas = format!("{prefix}_replicas");
    assert!(found.contains(&replicas), "{found:?}");
    found.retain(|k| *k != prefix && *k != replicas);
    assert_eq!(
        found,
        ["acme", "globex", "initech"].map(|t| format!("{prefix}{t}"))
    );
}

/// A Redis server of this test's own, stopped and restarted on the same port.
pub(crate) struct Redis {
    child: Option<Child>,
    pub(crate) port: u16,
    dir: tempfile::TempDir,
    /// More `redis-server` arguments (`--requirepass …`).
    args: Vec<String>,
}

impl Redis {
    pub(crate) fn start() -> Self {
        Self::start_with(&[])
    }

    /// A server with more arguments.
    pub(crate) fn start_with(args: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut redis = Self {
            child: None,
            port: free_port(),
            dir,
            args: args.iter().map(|a| (*a).to_owned()).collect(),
        };
        redis.restart();
        redis
    }

    /// SIGSTOP: the server keeps its sockets but answers nothing until [`Self::thaw`].
    pub(crate) fn freeze(&self) {
        self.signal(rustix::process::Signal::STOP);
    }

    /// SIGCONT: the server runs again, and executes what was queued meanwhile.
    pub(crate) fn thaw(&self) {
        self.signal(rustix::process::Signal::CONT);
    }

    fn signal(&self, signal: rustix::process::Signal) {
        let child = self.child.as_ref().expect("redis-server runs");
        rustix::process::kill_process(rustix::process::Pid::from_child(child), signal)
            .expect("signal redis-server");
    }

    pub(crate) fn restart(&mut self) {
        let server =
            std::env::var("DRAFTSTORE_TEST_REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
        let child = Command::new(server)
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(&self.args)
            .arg("--port")
            .arg(self.port.to_string())
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (scripts/redis.sh install)");
        self.child = Some(child);
        wait_for_port(self.port, "redis-server");
    }

    pub(crate) fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

#[tokio::test]
async fn without_redis_allow_counts_locally_reject_refuses_and_sharing_resumes() {
    if redis_url().is_none() {
        return;
    }
    let mut redis = Redis::start();
    let url = redis.url();
    // One token back an hour: nothing refills while the test runs.
    let keys = format!("acme {} rate=5/3600", hash("acme"));
    let prefix = prefix("outage");
    let settings = |on_error: &str| {
        vec![
            ("DRAFTSTORE_RATE_LIMIT_REDIS_URL", url.clone()),
            ("DRAFTSTORE_RATE_LIMIT_KEY_PREFIX", prefix.clone()),
            ("DRAFTSTORE_RATE_LIMIT_TIMEOUT_MS", "2000".to_owned()),
            ("DRAFTSTORE_RATE_LIMIT_ON_ERROR", on_error.to_owned()),
        ]
    };
    let (allow_env, reject_env) = (settings("allow"), settings("reject"));
    let allow = gateway(&keys, &borrowed(&allow_env));
    let reject = gateway(&keys, &borrowed(&reject_env));

    // Shared while Redis is up: 3 of acme's 5.
    for port in [allow.port, reject.port, allow.port] {
        assert_eq!(rest(port, "acme").await.0, 200);
    }

    redis.stop();
    // allow: keeps serving, counting in the process from what the shared bucket had left after
    // its last decision (2), then 429.
    let mut granted = 0;
    for _ in 0..7 {
        match rest(allow.port, "acme").await {
            (200, ..) => granted += 1,
            (429, code, _) => assert_eq!(code, "RATE_LIMITED"),
            (status, code, _) => panic!("{status} {code}"),
        }
    }
    assert_eq!(granted, 2, "counted locally while Redis is away");
    // reject: 429 / RESOURCE_EXHAUSTED, saying why.
    let (status, code, retry) = rest(reject.port, "acme").await;
    assert_eq!((status, code.as_str()), (429, "RATE_LIMIT_UNAVAILABLE"));
    assert_eq!(retry.as_deref(), Some("1"));
    let (grpc_code, message) = grpc(reject.port, "acme").await.unwrap_err();
    assert_eq!(grpc_code, tonic::Code::ResourceExhausted);
    assert!(message.contains("rate limiter is unavailable"), "{message}");
    // Readiness says so and stays ready.
    wait_for_state(allow.port, "degraded").await;
    wait_for_state(reject.port, "degraded").await;

    // Redis back (empty: acme's shared bucket is full again): both replicas find it by
    // themselves and count together again, and the allow replica charges the 2 it granted
    // alone as soon as Redis decides again.
    redis.restart();
    wait_for_state(allow.port, "ok").await;
    wait_for_state(reject.port, "ok").await;
    let mut granted = 0;
    for _ in 0..4 {
        // The allow replica's own bucket is empty: grants here come from Redis.
        granted += usize::from(rest(allow.port, "acme").await.0 == 200);
    }
    assert_eq!(granted, 3, "5 less the 2 granted during the outage");
    let mut granted = 0;
    for _ in 0..3 {
        granted += usize::from(rest(reject.port, "acme").await.0 == 200);
    }
    assert_eq!(granted, 0, "the other replica spent the rest");

    // Counted, and logged once however many failures (not once per request), then the recovery.
    assert_eq!(
        allow
            .metric("draftstore_rate_limit_fallbacks_total{outcome=\"local_granted\"}")
            .await,
        2.0
    );
    assert!(
        reject
            .metric("draftstore_rate_limit_fallbacks_total{outcome=\"rejected\"}")
            .await
            >= 2.0
    );
    for replica in [&allow, &reject] {
        let log = replica.log();
        assert_eq!(log.matches("Redis makes no decision").count(), 1, "{log}");
        assert!(log.contains("counting is shared again"), "{log}");
    }
}

/// The Lua step itself, through the limiter the gateway uses: a burst of 12 at 5/60 gets exactly
/// 5, the refusals say when a token is back (12 s at most), and the bucket's key expires.
#[tokio::test]
async fn the_redis_bucket_grants_a_burst_exactly_its_limit() {
    use draftstore_gateway::auth::ratelimit::{OnError, RateSpec, RedisConfig};
    use draftstore_gateway::auth::RedisLimiter;
    let Some(url) = redis_url() else { return };
    let limiter = RedisLimiter::start(&RedisConfig {
        url: url.clone(),
        timeout: Duration::from_secs(2),
        on_error: OnError::Reject,
        key_prefix: prefix("lua"),
        replicas: 1,
    })
    .unwrap();
    let spec = RateSpec {
        limit: 5,
        per: Duration::from_secs(60),
    };
    let mut granted = 0;
    for _ in 0..12 {
        match limiter.take("acme", spec).await.expect("Redis answers") {
            Ok(()) => granted += 1,
            Err(wait) => assert!(
                wait > Duration::ZERO && wait <= Duration::from_secs(12),
                "{wait:?}"
            ),
        }
    }
    assert_eq!(granted, 5);
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let ttl: i64 = redis::cmd("PTTL")
        .arg(limiter.key("acme"))
        .query_async(&mut connection)
        .await
        .unwrap();
    assert!(
        ttl > 0 && ttl <= 61_000,
        "expires once full again: {ttl} ms"
    );
}

/// A reload of the key file that changes only a tenant's `max_size` applies the new limit and
/// keeps the tenant's bucket: no fresh burst. In-process counting: no Redis needed.
#[tokio::test]
async fn a_key_reload_changing_only_max_size_keeps_the_tenants_bucket() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("keys");
    let line = |max: u32| format!("acme {} rate=2/3600 max_size={max}\n", hash("acme"));
    std::fs::write(&file, line(10)).unwrap();
    let path = file.to_str().unwrap().to_owned();
    let replica = gateway_with(&[("DRAFTSTORE_API_KEYS_FILE", path.as_str())]);
    let body = |size: u64| serde_json::json!({"object_name": "a.txt", "content_length": size});
    for _ in 0..2 {
        assert_eq!(rest_with(replica.port, "acme", &body(5)).await.0, 200);
    }
    let (status, code, _) = rest_with(replica.port, "acme", &body(5)).await;
    assert_eq!((status, code.as_str()), (429, "RATE_LIMITED"));
    let (status, code, _) = rest_with(replica.port, "acme", &body(15)).await;
    assert_eq!(
        (status, code.as_str()),
        (403, "TENANT_LIMIT"),
        "over max_size=10"
    );

    // The file is looked at once a second at most; its new time tells it changed.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    std::fs::write(&file, line(20)).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_modified(std::time::SystemTime::now() + Duration::from_secs(2))
        .unwrap();
    // 15 bytes: within the new max_size (so the reload happened), and still out of tokens.
    let (status, code, _) = rest_with(replica.port, "acme", &body(15)).await;
    assert_eq!(
        (status, code.as_str()),
        (429, "RATE_LIMITED"),
        "the new max_size applies with the bucket as it was: no fresh burst"
    );
    assert!(replica.log().contains("API keys reloaded"));
}

/// `gateway serve` with `env` on the embedded store: its exit code and stderr, or a failure if
/// it is still running after 20 s.
fn refused_start(env: &[(&str, &str)]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_gateway"))
        .env_clear()
        .env("DRAFTSTORE_STORAGE", "local")
        .env("DRAFTSTORE_DATA_DIR", dir.path().join("data"))
        .envs(env.iter().copied())
        .args(["serve", "--bind", "127.0.0.1", "--http-port", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("gateway serve started with {env:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (out.status.code(), String::from_utf8(out.stderr).unwrap())
}

#[test]
fn disagreeing_key_lines_and_bad_redis_settings_are_one_line_and_exit_64() {
    let keys = format!(
        "acme {} rate=5/60;acme {} rate=50/60",
        hash("acme-1"),
        hash("acme-2")
    );
    let url = "redis://:super-secret@127.0.0.1:6379".to_owned();
    let api_keys = [
        ("DRAFTSTORE_AUTH", "api-keys"),
        ("DRAFTSTORE_API_KEYS", keys.as_str()),
    ];
    let (code, err) = refused_start(&api_keys);
    assert_eq!(code, Some(64), "{err}");
    // After the embedded store's notice: one line saying what is wrong.
    let last = err.lines().last().unwrap();
    assert!(
        last.contains("key entries 1 and 2 give tenant acme different limits"),
        "{err}"
    );
    assert!(!err.contains(&hash("acme-2")), "{err}");
    for (name, value) in [
        (
            "DRAFTSTORE_RATE_LIMIT_REDIS_URL",
            "http://:super-secret@127.0.0.1",
        ),
        ("DRAFTSTORE_RATE_LIMIT_ON_ERROR", "maybe"),
        ("DRAFTSTORE_RATE_LIMIT_TIMEOUT_MS", "0"),
        // Set but empty (a Secret key that resolves to nothing): refused, not "no Redis".
        ("DRAFTSTORE_RATE_LIMIT_REDIS_URL", ""),
        ("DRAFTSTORE_RATE_LIMIT_ON_ERROR", ""),
        // A prefix must end in ':' so that `ab` + `-c` and `ab-` + `c` are different keys.
        ("DRAFTSTORE_RATE_LIMIT_KEY_PREFIX", "ab"),
        ("DRAFTSTORE_RATE_LIMIT_KEY_PREFIX", ""),
        // The replicas to assume: a whole number from 1, never 0 (no refill) or garbage.
        ("DRAFTSTORE_RATE_LIMIT_REPLICAS", "0"),
        ("DRAFTSTORE_RATE_LIMIT_REPLICAS", "twelve"),
        ("DRAFTSTORE_RATE_LIMIT_REPLICAS", ""),
    ] {
        let mut env = vec![("DRAFTSTORE_RATE_LIMIT_REDIS_URL", url.as_str())];
        env.push((name, value));
        let (code, err) = refused_start(&env);
        assert_eq!(code, Some(64), "{name}={value}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(name), "{err}");
        assert!(!err.contains("super-secret"), "{err}");
    }
    // Tuning without the URL (its Secret key missing): refused, not counted in each process.
    let (code, err) = refused_start(&[("DRAFTSTORE_RATE_LIMIT_ON_ERROR", "reject")]);
    assert_eq!(code, Some(64), "{err}");
    assert!(
        err.contains("DRAFTSTORE_RATE_LIMIT_REDIS_URL is not"),
        "{err}"
    );
}
