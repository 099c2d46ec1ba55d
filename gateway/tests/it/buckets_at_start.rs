//! A fresh install becomes ready: `gateway serve` creates missing buckets at start (on S3 and
//! on the embedded store, idempotently, `DRAFTSTORE_CREATE_BUCKETS`), and when it does not,
//! `/ready` and the gRPC health check name the bucket that is missing.

use draftstore_core::{BucketName, Storage};
use draftstore_proto::grpc::health::v1 as health;
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

/// A `gateway serve` process on 127.0.0.1 and a port it chose (read from its log line); its
/// log is collected. Killed when dropped.
struct Gateway {
    child: Child,
    addr: SocketAddr,
    log: Arc<Mutex<String>>,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Gateway {
    fn start(env: &HashMap<String, String>) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_gateway"))
            .env_clear()
            .envs(env)
            .args(["serve", "--bind", "127.0.0.1", "--http-port", "0"])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (found, address) = mpsc::channel();
        let kept = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some((_, rest)) = line.split_once("addresses=[\"") {
                    let _ = found.send(rest.split('"').next().unwrap_or_default().to_owned());
                }
                kept.lock().unwrap().push_str(&line);
                kept.lock().unwrap().push('\n');
            }
        });
        let addr = address
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("the gateway did not start: {}", log.lock().unwrap()))
            .parse()
            .unwrap();
        Self { child, addr, log }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `/ready`'s status and error message.
    async fn ready(&self) -> (u16, String) {
        let resp = reqwest::get(self.url("/ready")).await.unwrap();
        let status = resp.status().as_u16();
        let body: serde_json::Value = resp.json().await.unwrap();
        let message = body["error"]["message"].as_str().unwrap_or_default();
        (status, message.to_owned())
    }

    /// Polls `/ready` until it answers 200; the bound only keeps a broken build from hanging.
    async fn until_ready(&self) {
        for _ in 0..600 {
            if self.ready().await.0 == 200 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "never ready: {:?}\n{}",
            self.ready().await,
            self.log.lock().unwrap()
        );
    }

    /// The gRPC health check: serving or not, and the `draftstore-not-ready` trailer.
    async fn health(&self) -> (i32, Option<String>) {
        let channel = tonic::transport::Channel::from_shared(self.url(""))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut grpc = tonic::client::Grpc::new(channel);
        grpc.ready().await.unwrap();
        let codec = tonic_prost::ProstCodec::<
            health::HealthCheckRequest,
            health::HealthCheckResponse,
        >::default();
        let response = grpc
            .unary(
                tonic::Request::new(health::HealthCheckRequest::default()),
                http::uri::PathAndQuery::from_static(health::CHECK_PATH),
                codec,
            )
            .await
            .unwrap();
        let why = response
            .metadata()
            .get("draftstore-not-ready")
            .map(|v| v.to_str().unwrap().to_owned());
        (response.into_inner().status, why)
    }

    async fn post(&self, path: &str) -> u16 {
        reqwest::Client::new()
            .post(self.url(path))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }
}

const NOT_SERVING: i32 = health::health_check_response::ServingStatus::NotServing as i32;
const SERVING: i32 = health::health_check_response::ServingStatus::Serving as i32;

/// With creation off, `/ready` and gRPC health name the first missing bucket; the API's
/// draft-bucket call then makes both, and the gateway becomes ready.
async fn missing_buckets_are_named(gateway: &Gateway, main: &str) {
    let (status, message) = gateway.ready().await;
    assert_eq!(status, 503, "{message}");
    assert!(
        message.contains(&format!("main bucket \"{main}\" does not exist"))
            && message.contains("DRAFTSTORE_CREATE_BUCKETS"),
        "{message}"
    );
    let (serving, why) = gateway.health().await;
    assert_eq!(serving, NOT_SERVING);
    assert!(
        why.as_deref()
            .is_some_and(|w| w.contains(&format!("main bucket \"{main}\""))),
        "{why:?}"
    );
    assert_eq!(gateway.post("/api/v1/draft-bucket").await, 200);
    gateway.until_ready().await;
    assert_eq!(gateway.health().await, (SERVING, None));
}

#[tokio::test]
async fn serve_creates_missing_buckets_on_s3() {
    let main = crate::s3::prefix("start");
    let draft = format!("{main}-draft");
    let Some(env) = crate::s3::env(&[("BUCKET_NAME", &main), ("DRAFTSTORE_AUTH", "none")]) else {
        return;
    };
    let direct = crate::s3::storage(&env);
    let first = Gateway::start(&env);
    first.until_ready().await;
    for name in [&main, &draft] {
        direct
            .head_bucket(&BucketName::parse(name).unwrap())
            .await
            .unwrap();
    }
    // Idempotent: a second replica on the same buckets is ready too and logs no error.
    let second = Gateway::start(&env);
    second.until_ready().await;
    assert_eq!(second.health().await, (SERVING, None));
    assert!(
        !second.log.lock().unwrap().contains("cannot create"),
        "{}",
        second.log.lock().unwrap()
    );
    drop((first, second));

    // Creation off: nothing is created, and readiness says which bucket is missing.
    let main = crate::s3::prefix("nocreate");
    let mut env = env;
    env.insert("BUCKET_NAME".into(), main.clone());
    env.insert("DRAFTSTORE_CREATE_BUCKETS".into(), "false".into());
    let gateway = Gateway::start(&env);
    missing_buckets_are_named(&gateway, &main).await;
    drop(gateway);

    // Only the draft bucket missing: that is the one named.
    let main = crate::s3::prefix("halfway");
    direct
        .create_bucket(&BucketName::parse(&main).unwrap())
        .await
        .unwrap();
    env.insert("BUCKET_NAME".into(), main.clone());
    let gateway = Gateway::start(&env);
    let (status, message) = gateway.ready().await;
    assert_eq!(status, 503);
    assert!(
        message.contains(&format!("draft bucket \"{main}-draft\" does not exist")),
        "{message}"
    );
}

#[tokio::test]
async fn serve_creates_missing_buckets_on_the_embedded_store() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut env: HashMap<String, String> = [
        ("DRAFTSTORE_DATA_DIR", data.to_str().unwrap()),
        ("BUCKET_NAME", "photos"),
        ("DRAFTSTORE_STORAGE", "local"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    env.insert("DRAFTSTORE_CREATE_BUCKETS".into(), "false".into());
    let gateway = Gateway::start(&env);
    missing_buckets_are_named(&gateway, "photos").await;
    drop(gateway);

    // The default: a fresh folder with other bucket names is ready at once, and again after a
    // restart.
    env.remove("DRAFTSTORE_CREATE_BUCKETS");
    env.insert("BUCKET_NAME".into(), "media".into());
    for _ in 0..2 {
        let gateway = Gateway::start(&env);
        assert_eq!(gateway.ready().await, (200, String::new()));
        assert_eq!(gateway.health().await, (SERVING, None));
    }
}

/// An S3 that does not answer at start (the fault proxy answers 503) still gets its buckets:
/// creation is tried again in the background while the port already serves `/health`.
#[tokio::test]
async fn buckets_are_created_once_s3_answers() {
    use crate::proxy::{Proxy, ProxyFault};
    let main = crate::s3::prefix("late");
    let Some(mut env) = crate::s3::env(&[
        ("BUCKET_NAME", &main),
        ("DRAFTSTORE_AUTH", "none"),
        ("DRAFTSTORE_S3_MAX_ATTEMPTS", "1"),
    ]) else {
        return;
    };
    let proxy = Proxy::start(env["AWS_ENDPOINT_URL"].clone()).await;
    proxy.push([ProxyFault::Status(503); 3]);
    env.insert("AWS_ENDPOINT_URL".into(), proxy.url());
    let gateway = Gateway::start(&env);
    assert_eq!(
        reqwest::get(gateway.url("/health")).await.unwrap().status(),
        200
    );
    for _ in 0..600 {
        if gateway.log.lock().unwrap().contains("trying again") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        gateway.log.lock().unwrap().contains("trying again"),
        "{}",
        gateway.log.lock().unwrap()
    );
    gateway.until_ready().await;
    assert!(proxy.requests() >= 5, "3 refused, then both created");
}

/// `gateway serve` logs once at start which confirm its draft bucket allows: unversioned, the
/// window against a same-bytes re-upload (and how to close it); versioned, exact copies and
/// deletes (and the lifecycle rule it needs). Issue 18.
#[tokio::test]
async fn serve_logs_whether_the_draft_bucket_is_versioned() {
    let main = crate::s3::prefix("vlog");
    let Some(env) = crate::s3::env(&[("BUCKET_NAME", &main), ("DRAFTSTORE_AUTH", "none")]) else {
        return;
    };
    let logged = |gateway: &Gateway, text: &'static str| {
        let log = gateway.log.clone();
        async move {
            crate::stub::eventually(Duration::from_secs(30), text, || {
                let found = log.lock().unwrap().matches(text).count();
                async move { found > 0 }
            })
            .await;
            log.lock().unwrap().matches(text).count()
        }
    };
    let plain = Gateway::start(&env);
    plain.until_ready().await;
    let text = "the draft bucket is not versioned";
    assert_eq!(logged(&plain, text).await, 1, "once");
    let log = plain.log.lock().unwrap().clone();
    assert!(
        log.contains("enable versioning")
            && log.contains("the old type and metadata")
            && log.contains("be deleted by that confirm"),
        "both windows named: {log}"
    );
    drop(plain);

    let draft = BucketName::parse(&format!("{main}-draft")).unwrap();
    crate::s3::storage(&env)
        .enable_versioning(&draft)
        .await
        .unwrap();
    let versioned = Gateway::start(&env);
    versioned.until_ready().await;
    let text = "the draft bucket is versioned: confirm copies and deletes exactly the version";
    assert_eq!(logged(&versioned, text).await, 1, "once");
    let log = versioned.log.lock().unwrap().clone();
    assert!(
        log.contains("lifecycle rule") && log.contains("s3:DeleteObjectVersion"),
        "{log}"
    );
    // One format for the field, as the unversioned line writes it.
    assert!(
        log.contains("versioning=Enabled") && !log.contains("versioning=\"Enabled\""),
        "{log}"
    );
}

/// Issue 18, review: the draft bucket denies `s3:ListBucketVersions` (a bucket policy). The
/// confirm's copy succeeds but its draft delete cannot list versions: the answer (500
/// STORAGE_DENIED) and the ERROR log line name the action, the bucket and what to grant, not
/// the credentials.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_permission_is_named_in_the_answer_and_the_error_log() {
    let main = crate::s3::prefix("vdeny");
    let Some(env) = crate::s3::env(&[("BUCKET_NAME", &main), ("DRAFTSTORE_AUTH", "none")]) else {
        return;
    };
    let s3 = crate::s3::storage(&env);
    let draft = BucketName::parse(&format!("{main}-draft")).unwrap();
    s3.create_bucket(&BucketName::parse(&main).unwrap())
        .await
        .unwrap();
    s3.create_bucket(&draft).await.unwrap();
    s3.enable_versioning(&draft).await.unwrap();
    s3.put_object(&draft, "p.txt", b"p".to_vec(), &Default::default())
        .await
        .unwrap();
    let deny = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Deny","Principal":"*","Action":"s3:ListBucketVersions","Resource":"arn:aws:s3:::{draft}"}}]}}"#
    );
    s3.put_bucket_policy(&draft, &deny).await.unwrap();
    let gateway = Gateway::start(&env);
    gateway.until_ready().await;
    let answer = reqwest::Client::new()
        .post(gateway.url("/api/v1/confirm-upload"))
        .json(&serde_json::json!({"object_name": "p.txt"}))
        .send()
        .await
        .unwrap();
    let status = answer.status().as_u16();
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (500, Some("STORAGE_DENIED")),
        "{body}"
    );
    let message = body["error"]["message"].as_str().unwrap_or_default();
    let named = format!("lacks s3:ListBucketVersions on bucket {draft}");
    assert!(
        message.contains(&named) && message.contains("grant") && !message.contains("credentials"),
        "{message}"
    );
    // S3's own message stays in the server's log: AWS's names the account id and the role.
    assert!(!message.contains("Access Denied"), "{message}");
    let mut logged = false;
    for _ in 0..100 {
        logged = gateway
            .log
            .lock()
            .unwrap()
            .lines()
            .any(|l| l.contains("ERROR") && l.contains(&named));
        if logged {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(logged, "{}", gateway.log.lock().unwrap());
    let log = gateway.log.lock().unwrap().clone();
    assert!(
        log.lines().any(|l| l.contains("ERROR")
            && l.contains("s3_message=")
            && l.contains("Access Denied")),
        "S3's message is logged: {log}"
    );
    assert!(!log.contains(&env["AWS_SECRET_ACCESS_KEY"]));
}

/// Issue 18, second fresh review: a wrong secret or an unknown access key is not a missing
/// permission. A 403 to a HEAD has no body, so `/ready` (HeadBucket) and confirm (HeadObject)
/// name both possibilities, the credentials first; a call with a body says what S3 said
/// (`SignatureDoesNotMatch`, `InvalidAccessKeyId`: the credentials). None says "lacks".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_are_not_called_a_missing_permission() {
    let main = crate::s3::prefix("badkey");
    let Some(good) = crate::s3::env(&[("BUCKET_NAME", &main), ("DRAFTSTORE_AUTH", "none")]) else {
        return;
    };
    let s3 = crate::s3::storage(&good);
    let draft = BucketName::parse(&format!("{main}-draft")).unwrap();
    s3.create_bucket(&BucketName::parse(&main).unwrap())
        .await
        .unwrap();
    s3.create_bucket(&draft).await.unwrap();
    s3.put_object(&draft, "w.txt", b"w".to_vec(), &Default::default())
        .await
        .unwrap();
    for (variable, value) in [
        ("AWS_SECRET_ACCESS_KEY", "not-the-secret-0123456789abcdef"),
        ("AWS_ACCESS_KEY_ID", "NOSUCHACCESSKEY0000"),
    ] {
        let mut env = good.clone();
        env.insert(variable.into(), value.into());
        let gateway = Gateway::start(&env);
        let (status, message) = gateway.ready().await;
        assert_eq!(status, 503, "{variable}: {message}");
        assert!(
            message.contains("check the gateway's credentials") && !message.contains("lacks"),
            "{variable}: /ready said {message:?}"
        );
        let answer = reqwest::Client::new()
            .post(gateway.url("/api/v1/confirm-upload"))
            .json(&serde_json::json!({"object_name": "w.txt"}))
            .send()
            .await
            .unwrap();
        let status = answer.status().as_u16();
        let body: serde_json::Value = answer.json().await.unwrap();
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (500, Some("STORAGE_DENIED")),
            "{variable}: {body}"
        );
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("check the gateway's credentials")
                && message.contains(&format!("s3:GetObject on bucket {draft}"))
                && !message.contains("lacks")
                && !message.contains(value),
            "{variable}: confirm said {message:?}"
        );
        // A call with a body (the draft listing) hears S3's code: the credentials alone.
        let answer = reqwest::Client::new()
            .post(gateway.url("/api/v1/list-drafts"))
            .json(&serde_json::json!({}))
            .send()
            .await
            .unwrap();
        let body: serde_json::Value = answer.json().await.unwrap();
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("check the gateway's credentials") && !message.contains("lacks"),
            "{variable}: list-drafts said {message:?}"
        );
        assert!(!gateway.log.lock().unwrap().contains(value), "{variable}");
    }
}
