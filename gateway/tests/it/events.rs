//! Issue 18: the pre-confirm check (a scanner refusing the EICAR test file; timeouts failing
//! closed and open) over REST and gRPC, and webhooks: signed (checked by our verifier and by
//! the Standard Webhooks reference library), retried with one id, delivered after a SIGKILL,
//! once by two gateways on the same buckets.

use crate::grpc_api::{call, client};
use crate::harness::{http1, start, start_s3, Running};
use crate::stub::{eventually, Gateway, Stub};
use bytes::Bytes;
use draftstore_core::events::queue_key;
use draftstore_gateway::config::Secrets;
use draftstore_gateway::events::sign;
use draftstore_proto::draft::v1 as pb;
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub(crate) const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// The EICAR anti-virus test file: harmless, and refused by every scanner.
pub(crate) const EICAR: &str =
    r"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

fn secrets() -> Secrets {
    use base64::Engine as _;
    let key = base64::engine::general_purpose::STANDARD
        .decode(SECRET.trim_start_matches("whsec_"))
        .unwrap();
    Secrets(vec![key])
}

/// A scanner: checks the signature, downloads the draft through the URL it was given, answers
/// 422 with a reason when it holds EICAR, else 200; or waits `delay` first.
pub(crate) async fn scanner(delay: Duration) -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let calls = counted.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let calls = calls.clone();
                        async move {
                            calls.fetch_add(1, Ordering::SeqCst);
                            let (parts, body) = req.into_parts();
                            let body = body.collect().await.unwrap().to_bytes();
                            let header = |n: &str| {
                                parts.headers.get(n).unwrap().to_str().unwrap().to_owned()
                            };
                            let now = draftstore_gateway::clock::unix_now().unwrap();
                            assert!(
                                sign::verify(
                                    &secrets(),
                                    &header(sign::ID),
                                    &header(sign::TIMESTAMP),
                                    &header(sign::SIGNATURE),
                                    &body,
                                    now
                                ),
                                "the check is signed"
                            );
                            tokio::time::sleep(delay).await;
                            let check: Value = serde_json::from_slice(&body).unwrap();
                            for field in ["object_name", "size", "etag", "metadata", "download_url"]
                            {
                                assert!(check.get(field).is_some(), "{field} in {check}");
                            }
                            let bytes = reqwest::get(check["download_url"].as_str().unwrap())
                                .await
                                .unwrap()
                                .bytes()
                                .await
                                .unwrap();
                            let (status, text) =
                                if bytes.windows(EICAR.len()).any(|w| w == EICAR.as_bytes()) {
                                    (
                                        422,
                                        json!({"reason": "Eicar-Test-Signature\nFOUND \u{202e}"})
                                            .to_string(),
                                    )
                                } else {
                                    (200, "{}".to_owned())
                                };
                            Ok::<_, std::io::Error>(
                                hyper::Response::builder()
                                    .status(status)
                                    .body(Full::new(Bytes::from(text)))
                                    .unwrap(),
                            )
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, calls)
}

pub(crate) async fn post(server: &Running, path: &str, body: Value) -> (u16, Value) {
    let answer = http1()
        .post(server.url(path))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = answer.status().as_u16();
    (status, answer.json().await.unwrap_or_default())
}

/// Uploads `bytes` as draft `name` through a presigned URL.
async fn upload(server: &Running, name: &str, bytes: &str) {
    let (status, _) = post(server, "/api/v1/draft-bucket", json!({})).await;
    assert_eq!(status, 200);
    let (status, url) = post(server, "/api/v1/upload-url", json!({"object_name": name})).await;
    assert_eq!(status, 200, "{url}");
    let put = crate::harness::put_to(url["upload_url"].as_str().unwrap(), bytes.to_owned()).await;
    assert_eq!(put, 200);
}

async fn draft_bytes(server: &Running, name: &str) -> Vec<u8> {
    server
        .storage()
        .get_object(&server.config.buckets.draft, name)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scanner_passes_clean_files_and_refuses_eicar_over_rest_and_grpc() {
    let (addr, calls) = scanner(Duration::ZERO).await;
    let url = format!("http://{addr}/check");
    let Some(server) = start(&[
        ("DRAFTSTORE_PRECONFIRM_URL", &url),
        ("DRAFTSTORE_WEBHOOK_SECRET", SECRET),
    ])
    .await
    else {
        return;
    };
    upload(&server, "clean.txt", "hello").await;
    let (status, done) = post(
        &server,
        "/api/v1/confirm-upload",
        json!({"object_name": "clean.txt"}),
    )
    .await;
    assert_eq!(status, 200, "{done}");
    let (status, again) = post(
        &server,
        "/api/v1/confirm-upload",
        json!({"object_name": "clean.txt"}),
    )
    .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "a confirm already done does not ask again"
    );

    upload(&server, "virus.com", EICAR).await;
    let (status, refused) = post(
        &server,
        "/api/v1/confirm-upload",
        json!({"object_name": "virus.com"}),
    )
    .await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["error"]["code"], "REJECTED");
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("Eicar-Test-Signature?FOUND ?"),
        "cut and sanitised: {message}"
    );
    assert_eq!(
        draft_bytes(&server, "virus.com").await,
        EICAR.as_bytes(),
        "the draft stays"
    );
    assert!(server
        .storage()
        .head_object(&server.config.buckets.main, "virus.com")
        .await
        .is_err());

    let mut grpc = client(server.addr).await;
    let status = call::<_, pb::ConfirmUploadResponse>(
        &mut grpc,
        pb::paths::CONFIRM_UPLOAD,
        pb::ConfirmUploadRequest {
            object_name: "virus.com".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{status:?}");
    assert!(
        status.message().contains("Eicar-Test-Signature"),
        "{status:?}"
    );
    assert_eq!(draft_bytes(&server, "virus.com").await, EICAR.as_bytes());
    upload(&server, "grpc-clean.txt", "fine").await;
    let ok: pb::ConfirmUploadResponse = call(
        &mut grpc,
        pb::paths::CONFIRM_UPLOAD,
        pb::ConfirmUploadRequest {
            object_name: "grpc-clean.txt".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(ok.result.is_some());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scanner_that_does_not_answer_fails_closed_or_open_as_configured() {
    let (addr, _) = scanner(Duration::from_secs(5)).await;
    let url = format!("http://{addr}/check");
    for (policy, rest, grpc_code) in [
        ("reject", 503, Some(tonic::Code::Unavailable)),
        ("allow", 200, None),
    ] {
        let Some(server) = start(&[
            ("DRAFTSTORE_PRECONFIRM_URL", &url),
            ("DRAFTSTORE_PRECONFIRM_TIMEOUT_MS", "200"),
            ("DRAFTSTORE_PRECONFIRM_ON_ERROR", policy),
            ("DRAFTSTORE_WEBHOOK_SECRET", SECRET),
        ])
        .await
        else {
            return;
        };
        upload(&server, "slow.txt", "bytes").await;
        let (status, body) = post(
            &server,
            "/api/v1/confirm-upload",
            json!({"object_name": "slow.txt"}),
        )
        .await;
        assert_eq!(status, rest, "{policy}: {body}");
        if let Some(code) = grpc_code {
            assert_eq!(body["error"]["code"], "CHECK_UNAVAILABLE");
            assert_eq!(
                draft_bytes(&server, "slow.txt").await,
                b"bytes",
                "the draft stays"
            );
            let mut grpc = client(server.addr).await;
            let status = call::<_, pb::ConfirmUploadResponse>(
                &mut grpc,
                pb::paths::CONFIRM_UPLOAD,
                pb::ConfirmUploadRequest {
                    object_name: "slow.txt".into(),
                    ..Default::default()
                },
            )
            .await
            .unwrap_err();
            assert_eq!(status.code(), code, "{status:?}");
        }
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_signed_retried_with_one_id_and_leave_the_queue_once_delivered() {
    // The receiver fails the first attempt (with a Retry-After of 0 s), then takes it.
    let receiver = Stub::start(Box::new(|n, _| {
        if n == 0 {
            (503, String::new())
        } else {
            (204, String::new())
        }
    }))
    .await;
    let hook = format!("{}#object.confirmed", receiver.url("/hook"));
    let Some(server) = start(&[
        ("DRAFTSTORE_WEBHOOK_URLS", &hook),
        ("DRAFTSTORE_WEBHOOK_SECRET", SECRET),
        ("DRAFTSTORE_WEBHOOK_RETRY_SCHEDULE_MS", "0,100,100,100"),
        ("DRAFTSTORE_WEBHOOK_POLL_MS", "50"),
    ])
    .await
    else {
        return;
    };
    let (status, refused) = post(
        &server,
        "/api/v1/upload-url",
        json!({"object_name": ".draftstore/events/x.json"}),
    )
    .await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (400, Some("INVALID_OBJECT_NAME")),
        "the queue is out of reach"
    );
    upload(&server, "photos/cat.jpg", "meow").await;
    let (status, done) = post(
        &server,
        "/api/v1/confirm-upload",
        json!({"object_name": "photos/cat.jpg"}),
    )
    .await;
    assert_eq!(status, 200, "{done}");
    eventually(Duration::from_secs(30), "two attempts", || async {
        receiver.seen().len() >= 2
    })
    .await;
    let seen = receiver.seen();
    let id = seen[0].headers[sign::ID].clone();
    let now = draftstore_gateway::clock::unix_now().unwrap();
    for attempt in &seen {
        assert_eq!(
            attempt.headers[sign::ID],
            id,
            "every attempt carries the same webhook-id"
        );
        assert!(sign::verify(
            &secrets(),
            &id,
            &attempt.headers[sign::TIMESTAMP],
            &attempt.headers[sign::SIGNATURE],
            attempt.body.as_bytes(),
            now
        ));
        let body: Value = serde_json::from_str(&attempt.body).unwrap();
        assert_eq!(body["type"], "object.confirmed");
        assert_eq!(body["data"]["object_name"], "photos/cat.jpg");
        assert_eq!(body["data"]["size"], 4);
        assert!(body["timestamp"].as_str().unwrap().ends_with('Z'));
    }
    eventually(
        Duration::from_secs(30),
        "the delivered event leaves the queue",
        || async { out_of_the_queue(&server, &id).await },
    )
    .await;
    let metrics = http1()
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // The registry is the process's: other tests of this binary count too.
    for outcome in ["delivered", "retry"] {
        let series = format!(
            r#"draftstore_webhook_deliveries_total{{type="object.confirmed",outcome="{outcome}"}} "#
        );
        let count: f64 = metrics
            .lines()
            .find_map(|l| l.strip_prefix(&series))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0);
        assert!(count >= 1.0, "{series}: {metrics}");
    }
    assert!(metrics.contains("draftstore_webhook_queue_depth"));
    assert!(metrics.contains("draftstore_webhook_oldest_pending_seconds"));
    assert_eq!(
        receiver.seen().len(),
        2,
        "delivered once the receiver took it"
    );
    server.stop().await;
}

/// Two gateways on the same SeaweedFS buckets: the event is claimed by one of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_on_the_same_buckets_deliver_an_event_once() {
    let receiver = Stub::start(Box::new(|_, _| (200, String::new()))).await;
    let hook = receiver.url("/hook");
    let bucket = crate::s3::prefix("evt2");
    let settings = [
        ("BUCKET_NAME", bucket.as_str()),
        ("DRAFTSTORE_WEBHOOK_URLS", hook.as_str()),
        ("DRAFTSTORE_WEBHOOK_SECRET", SECRET),
        ("DRAFTSTORE_WEBHOOK_POLL_MS", "20"),
    ];
    let Some(a) = start_s3(&settings).await else {
        return;
    };
    let Some(b) = start_s3(&settings).await else {
        return;
    };
    upload(&a, "twice.txt", "x").await;
    let (status, _) = post(
        &a,
        "/api/v1/confirm-upload",
        json!({"object_name": "twice.txt"}),
    )
    .await;
    assert_eq!(status, 200);
    eventually(Duration::from_secs(30), "delivered", || async {
        !receiver.seen().is_empty()
    })
    .await;
    let id = receiver.seen()[0].headers[sign::ID].clone();
    eventually(
        Duration::from_secs(30),
        "the event leaves the queue",
        || async { out_of_the_queue(&a, &id).await },
    )
    .await;
    // Both keep polling every 20 ms; give them many passes over the (now empty) queue.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        receiver.seen().len(),
        1,
        "claimed by one gateway, delivered once"
    );
    a.stop().await;
    b.stop().await;
}

/// Where the reference library is (scripts/standardwebhooks.sh, run by scripts/test); `None`
/// outside CI when it is not installed.
fn reference_library() -> Option<String> {
    match std::env::var("DRAFTSTORE_TEST_STANDARDWEBHOOKS") {
        Ok(path) if !path.is_empty() => Some(path),
        _ => {
            let default = concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../.tools/standardwebhooks-1.1.0"
            );
            if std::path::Path::new(default)
                .join("standardwebhooks")
                .exists()
            {
                return Some(default.to_owned());
            }
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but standardwebhooks is not installed: run scripts/test"
            );
            eprintln!(
                "SKIP: standardwebhooks not installed; scripts/standardwebhooks.sh installs it"
            );
            None
        }
    }
}

/// The Python receiver (scripts/webhook-receiver.py) on `port`, logging to `log`.
fn python_receiver(library: &str, port: u16, log: &std::path::Path) -> std::process::Child {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scripts/webhook-receiver.py"
    );
    std::process::Command::new("python3")
        .arg(script)
        .arg(log)
        .arg(port.to_string())
        .env("PYTHONPATH", library)
        .env("WEBHOOK_SECRET", SECRET)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

fn received(log: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Receiver down during the confirm; the gateway SIGKILLed right after the confirm answered;
/// the receiver up; a new gateway on the same buckets delivers the event, and the reference
/// library accepts its signature.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_survives_a_sigkill_and_the_reference_library_accepts_it() {
    let Some(library) = reference_library() else {
        return;
    };
    let bucket = crate::s3::prefix("evtk");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let hook = format!("http://127.0.0.1:{port}/hook");
    let Some(env) = crate::s3::env(&[
        ("BUCKET_NAME", &bucket),
        ("DRAFTSTORE_WEBHOOK_URLS", &hook),
        ("DRAFTSTORE_WEBHOOK_SECRET", SECRET),
        (
            "DRAFTSTORE_WEBHOOK_RETRY_SCHEDULE_MS",
            "0,200,200,200,200,200,200,200,200,200",
        ),
        ("DRAFTSTORE_WEBHOOK_POLL_MS", "100"),
    ]) else {
        return;
    };
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let first = Gateway::start(&pairs).await;
    let (status, _) = first.post("/api/v1/draft-bucket", json!({})).await;
    assert_eq!(status, 200);
    let (_, url) = first
        .post("/api/v1/upload-url", json!({"object_name": "kill.txt"}))
        .await;
    assert_eq!(
        crate::harness::put_to(url["upload_url"].as_str().unwrap(), "bytes").await,
        200
    );
    let (status, done) = first
        .post("/api/v1/confirm-upload", json!({"object_name": "kill.txt"}))
        .await;
    assert_eq!(status, 200, "{done}");
    drop(first); // SIGKILL

    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("received.jsonl");
    let mut python = python_receiver(&library, port, &log);
    let second = Gateway::start(&pairs).await;
    eventually(
        Duration::from_secs(120),
        "the event arrives after the restart",
        || async { received(&log).iter().any(|e| e["ok"] == true) },
    )
    .await;
    let got = received(&log);
    assert!(
        got.iter().all(|e| e["ok"] == true),
        "the reference library accepts every delivery: {got:?}"
    );
    assert!(
        got.iter()
            .all(|e| e["id"] == got[0]["id"] && e["type"] == "object.confirmed"),
        "{got:?}"
    );
    drop(second);
    let _ = python.kill();
    let _ = python.wait();
}

fn gateway(env: &std::collections::HashMap<String, String>, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_gateway"))
        .env_clear()
        .envs(env)
        .args(args)
        .output()
        .unwrap()
}

/// Sweep queues one `draft.expired` per delete batch and delivers it; what the receiver
/// refused stays in the queue for `gateway events list` and `deliver`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweep_announces_expired_drafts_and_events_lists_and_delivers_what_is_left() {
    use draftstore_core::{BucketName, PutOptions, Storage};
    let receiver = Stub::start(Box::new(|n, _| {
        if n == 0 {
            (500, String::new())
        } else {
            (204, String::new())
        }
    }))
    .await;
    // A second endpoint takes the event at once; its URL holds a token, as many webhook URLs
    // do, which must never be written into the queue record or printed.
    let taker = Stub::start(Box::new(|_, _| (204, String::new()))).await;
    let token = "tok3n-that-must-not-leak";
    let hooks = format!(
        "{},{}",
        receiver.url("/hook"),
        taker.url(&format!("/hook/{token}?key={token}"))
    );
    let p = crate::s3::prefix("evs");
    let Some(env) = crate::s3::env(&[
        ("BUCKET_NAME", &p),
        ("OBJECT_LIFETIME", "1"),
        ("DRAFTSTORE_WEBHOOK_URLS", &hooks),
        ("DRAFTSTORE_WEBHOOK_SECRET", SECRET),
        ("DRAFTSTORE_WEBHOOK_RETRY_SCHEDULE_MS", "0,0,0"),
    ]) else {
        return;
    };
    let s3 = crate::s3::storage(&env);
    let draft = BucketName::parse(&format!("{p}-draft")).unwrap();
    s3.create_bucket(&draft).await.unwrap();
    for i in 0..5 {
        s3.put_object(
            &draft,
            &format!("old/{i}"),
            vec![1; 10],
            &PutOptions::default(),
        )
        .await
        .unwrap();
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let swept = gateway(&env, &["sweep", "--json"]);
    assert_eq!(
        swept.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&swept.stderr)
    );
    let report: Value = serde_json::from_slice(&swept.stdout).unwrap();
    assert_eq!(report["deleted"], 5, "{report}");
    let seen = receiver.seen();
    assert_eq!(seen.len(), 1, "sweep delivered at its end (refused)");
    let body: Value = serde_json::from_str(&seen[0].body).unwrap();
    assert_eq!(body["type"], "draft.expired");
    assert_eq!(
        body["data"]["keys"].as_array().unwrap().len(),
        5,
        "one event per batch"
    );

    assert_eq!(taker.seen().len(), 1, "the second endpoint took it at once");

    let listed = gateway(&env, &["events", "list", "--json"]);
    assert_eq!(
        listed.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let stored = s3
        .get_object(
            &draft,
            &format!(".draftstore/events/{}.json", seen[0].headers[sign::ID]),
        )
        .await
        .unwrap();
    for (what, text) in [
        (
            "the queue record",
            String::from_utf8_lossy(&stored).into_owned(),
        ),
        (
            "events list",
            String::from_utf8_lossy(&listed.stdout).into_owned(),
        ),
        (
            "events list's log",
            String::from_utf8_lossy(&listed.stderr).into_owned(),
        ),
    ] {
        assert!(
            !text.contains(token),
            "{what} holds the webhook URL's token: {text}"
        );
    }
    let lines: Vec<Value> = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(
        (lines[0]["type"].as_str(), lines[0]["attempts"].as_u64()),
        (Some("draft.expired"), Some(1))
    );
    assert_eq!(
        lines[0]["id"].as_str(),
        Some(seen[0].headers[sign::ID].as_str())
    );

    let delivered = gateway(&env, &["events", "deliver"]);
    assert_eq!(
        delivered.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&delivered.stderr)
    );
    assert_eq!(receiver.seen().len(), 2);
    assert_eq!(
        taker.seen().len(),
        1,
        "an endpoint that has the event does not get it again"
    );
    assert_eq!(
        receiver.seen()[1].headers[sign::ID],
        seen[0].headers[sign::ID],
        "the retry keeps the id"
    );
    let listed = gateway(&env, &["events", "list"]);
    assert!(
        listed.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&listed.stdout)
    );
}

/// The embedded store sees uploads: `gateway serve` on it announces `draft.uploaded`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_store_announces_uploads() {
    let receiver = Stub::start(Box::new(|_, _| (200, String::new()))).await;
    let hook = format!("{}#draft.uploaded", receiver.url("/hook"));
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().display().to_string();
    let server = Gateway::start(&[
        ("DRAFTSTORE_STORAGE", "local"),
        ("DRAFTSTORE_DATA_DIR", &dir),
        ("DRAFTSTORE_WEBHOOK_URLS", &hook),
        ("DRAFTSTORE_WEBHOOK_SECRET", SECRET),
        ("DRAFTSTORE_WEBHOOK_POLL_MS", "50"),
    ])
    .await;
    let (_, url) = server
        .post("/api/v1/upload-url", json!({"object_name": "up/load.bin"}))
        .await;
    assert_eq!(
        crate::harness::put_to(url["upload_url"].as_str().unwrap(), "12345").await,
        200
    );
    eventually(
        Duration::from_secs(30),
        "draft.uploaded arrives",
        || async { !receiver.seen().is_empty() },
    )
    .await;
    let body: Value = serde_json::from_str(&receiver.seen()[0].body).unwrap();
    assert_eq!(body["type"], "draft.uploaded");
    assert_eq!(
        (body["data"]["key"].as_str(), body["data"]["size"].as_u64()),
        (Some("up/load.bin"), Some(5))
    );
    // The same bytes uploaded again are another upload: another event, with its own id (one
    // derived from the key and ETag alone was the first one's, dropped as a duplicate).
    assert_eq!(
        crate::harness::put_to(url["upload_url"].as_str().unwrap(), "12345").await,
        200
    );
    eventually(
        Duration::from_secs(30),
        "the second upload's event arrives",
        || async { announced(&receiver).len() >= 2 },
    )
    .await;
    // A multipart upload is an upload too (it was not announced).
    let (status, created) = server
        .post(
            "/api/v1/multipart-upload",
            json!({"object_name": "up/parts.bin"}),
        )
        .await;
    assert_eq!(status, 200, "{created}");
    let id = created["upload_id"].as_str().unwrap();
    let (status, urls) = server
        .post(
            "/api/v1/multipart-upload/part-urls",
            json!({"object_name": "up/parts.bin", "upload_id": id, "part_numbers": [1]}),
        )
        .await;
    assert_eq!(status, 200, "{urls}");
    assert_eq!(
        crate::harness::put_to(urls["parts"][0]["url"].as_str().unwrap(), "six b").await,
        200
    );
    let (status, done) = server
        .post(
            "/api/v1/multipart-upload/complete",
            json!({"object_name": "up/parts.bin", "upload_id": id}),
        )
        .await;
    assert_eq!(status, 200, "{done}");
    eventually(
        Duration::from_secs(30),
        "the multipart upload's event arrives",
        || async {
            receiver.seen().iter().any(|s| {
                let body: Value = serde_json::from_str(&s.body).unwrap();
                body["data"]["key"] == "up/parts.bin" && body["data"]["etag"] == done["etag"]
            })
        },
    )
    .await;
    // The confirm's event is filtered out for this endpoint (`#draft.uploaded`).
    let (status, _) = server
        .post(
            "/api/v1/confirm-upload",
            json!({"object_name": "up/load.bin"}),
        )
        .await;
    assert_eq!(status, 200);
}

/// A receiver answering 410 is disabled (the event leaves the queue, the next one is not sent
/// to it); one answering 503 with `Retry-After` is not tried again before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gone_disables_an_endpoint_and_retry_after_is_honoured() {
    use draftstore_core::{Buckets, MemoryStorage, Storage};
    use draftstore_gateway::events::queue::{self, Record};
    use draftstore_gateway::events::Deliverer;
    let gone = Stub::start(Box::new(|_, _| (410, String::new()))).await;
    let busy = Stub::start(Box::new(|_, _| (503, String::new()))).await;
    let storage = MemoryStorage::new();
    let buckets = Buckets::new("main", None).unwrap();
    storage.create_bucket(&buckets.draft).await.unwrap();
    let urls = format!("{},{}", gone.url("/gone"), busy.url("/busy"));
    let config = draftstore_gateway::config::events(&|k| match k {
        "DRAFTSTORE_WEBHOOK_URLS" => Some(urls.clone()),
        "DRAFTSTORE_WEBHOOK_SECRET" => Some(SECRET.to_owned()),
        "DRAFTSTORE_WEBHOOK_RETRY_SCHEDULE_MS" => Some("0,0,0".to_owned()),
        _ => None,
    })
    .unwrap();
    let deliverer = Deliverer::new(
        &storage,
        buckets.clone(),
        config,
        draftstore_gateway::events::client(),
    );
    let kind = draftstore_core::events::EventType::DraftExpired;
    let now = draftstore_gateway::events::now_ms();
    queue::enqueue(
        &storage,
        &buckets.draft,
        &Record::new("msg_a".into(), kind, now, json!({})),
    )
    .await
    .unwrap();
    let pass = deliverer.pass().await.unwrap();
    assert_eq!((pass.queued, pass.pending), (1, 1), "{pass:?}");
    assert_eq!((gone.seen().len(), busy.seen().len()), (1, 1));
    // 503 without Retry-After: due again at once (schedule 0); the disabled endpoint is skipped.
    deliverer.pass().await.unwrap();
    assert_eq!(
        (gone.seen().len(), busy.seen().len()),
        (1, 2),
        "410 disabled the endpoint"
    );
    let (record, _) = queue::load(&storage, &buckets.draft, &queue_key("msg_a"))
        .await
        .unwrap()
        .unwrap();
    assert!(
        record.done.is_empty(),
        "a disabled endpoint did not get the event: it stays queued for it: {record:?}"
    );
    assert_eq!(record.attempts, 2);
    assert!(!record.failed);

    // A later event is not marked done for the disabled endpoint either (it was, and with
    // every endpoint done it left an empty tombstone: lost).
    let taker = Stub::start(Box::new(|_, _| (204, String::new()))).await;
    let urls = format!("{},{}", gone.url("/gone"), taker.url("/take"));
    let config = draftstore_gateway::config::events(&|k| match k {
        "DRAFTSTORE_WEBHOOK_URLS" => Some(urls.clone()),
        "DRAFTSTORE_WEBHOOK_SECRET" => Some(SECRET.to_owned()),
        "DRAFTSTORE_WEBHOOK_RETRY_SCHEDULE_MS" => Some("0,0,0".to_owned()),
        _ => None,
    })
    .unwrap();
    let one = Deliverer::new(
        &storage,
        buckets.clone(),
        config.clone(),
        draftstore_gateway::events::client(),
    );
    queue::enqueue(
        &storage,
        &buckets.draft,
        &Record::new("msg_c".into(), kind, now, json!({})),
    )
    .await
    .unwrap();
    queue::remove(&storage, &buckets.draft, "msg_a")
        .await
        .unwrap();
    one.pass().await.unwrap();
    let gone_before = gone.seen().len();
    one.pass().await.unwrap();
    assert_eq!(gone.seen().len(), gone_before, "disabled in this process");
    assert_eq!(taker.seen().len(), 1, "the other endpoint took it once");
    let (record, _) = queue::load(&storage, &buckets.draft, &queue_key("msg_c"))
        .await
        .unwrap()
        .expect("still queued for the disabled endpoint");
    assert_eq!(record.done.len(), 1, "only the taker: {record:?}");
    // Another replica (or a restart) with the endpoint enabled still sends it.
    let other = Deliverer::new(
        &storage,
        buckets.clone(),
        config,
        draftstore_gateway::events::client(),
    );
    other.pass().await.unwrap();
    assert_eq!(
        gone.seen().len(),
        gone_before + 1,
        "another deliverer tries the endpoint again"
    );
    assert_eq!(taker.seen().len(), 1, "not sent twice to the taker");

    let slow = RetryAfter::start().await;
    let urls = slow.url();
    let config = draftstore_gateway::config::events(&|k| match k {
        "DRAFTSTORE_WEBHOOK_URLS" => Some(urls.clone()),
        "DRAFTSTORE_WEBHOOK_SECRET" => Some(SECRET.to_owned()),
        "DRAFTSTORE_WEBHOOK_RETRY_SCHEDULE_MS" => Some("0,0,0".to_owned()),
        _ => None,
    })
    .unwrap();
    let deliverer = Deliverer::new(
        &storage,
        buckets.clone(),
        config,
        draftstore_gateway::events::client(),
    );
    queue::enqueue(
        &storage,
        &buckets.draft,
        &Record::new("msg_b".into(), kind, now, json!({})),
    )
    .await
    .unwrap();
    deliverer.pass().await.unwrap();
    let (record, _) = queue::load(&storage, &buckets.draft, &queue_key("msg_b"))
        .await
        .unwrap()
        .unwrap();
    assert!(
        record.next_ms >= draftstore_gateway::events::now_ms() + 3_500_000,
        "Retry-After: 3600 wins over a schedule of 0: {record:?}"
    );
}

/// A receiver answering 429 with `Retry-After: 3600`.
struct RetryAfter(std::net::SocketAddr);

impl RetryAfter {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        |_req: hyper::Request<hyper::body::Incoming>| async {
                            Ok::<_, std::io::Error>(
                                hyper::Response::builder()
                                    .status(429)
                                    .header("retry-after", "3600")
                                    .body(Full::new(Bytes::new()))
                                    .unwrap(),
                            )
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self(addr)
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.0)
    }
}

/// Five confirms of one draft, started 100 ms apart while the pre-confirm check takes 600 ms:
/// the first copies and its event is delivered while the others are still in their check.
/// Those find the object moved (200, the same answer) and must not queue the event again: the
/// receiver gets it exactly once. On SeaweedFS (`s3`) or the embedded store.
async fn concurrent_confirms_deliver_one_event(s3: bool) {
    let (addr, checks) = scanner(Duration::from_millis(600)).await;
    let receiver = Stub::start(Box::new(|_, _| (204, String::new()))).await;
    let check = format!("http://{addr}/check");
    let hook = receiver.url("/hook");
    let settings = [
        ("DRAFTSTORE_PRECONFIRM_URL", check.as_str()),
        ("DRAFTSTORE_WEBHOOK_URLS", hook.as_str()),
        ("DRAFTSTORE_WEBHOOK_SECRET", SECRET),
        ("DRAFTSTORE_WEBHOOK_POLL_MS", "20"),
    ];
    let server = if s3 {
        let Some(server) = start_s3(&settings).await else {
            return;
        };
        server
    } else {
        crate::harness::start_local(&settings).await
    };
    upload(&server, "once.txt", "one copy").await;
    let mut confirms = Vec::new();
    for i in 0..5_u64 {
        let url = server.url("/api/v1/confirm-upload");
        confirms.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100 * i)).await;
            let answer = http1()
                .post(url)
                .json(&json!({"object_name": "once.txt"}))
                .send()
                .await
                .unwrap();
            let status = answer.status().as_u16();
            (status, answer.json::<Value>().await.unwrap_or_default())
        }));
    }
    for confirm in confirms {
        let (status, body) = confirm.await.unwrap();
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["object_name"], "once.txt");
    }
    assert!(
        checks.load(Ordering::SeqCst) >= 2,
        "several confirms were in the check at once"
    );
    eventually(Duration::from_secs(30), "delivered", || async {
        !receiver.seen().is_empty()
    })
    .await;
    let id = receiver.seen()[0].headers[sign::ID].clone();
    eventually(
        Duration::from_secs(30),
        "the event leaves the queue",
        || async { out_of_the_queue(&server, &id).await },
    )
    .await;
    // The deliverer polls every 20 ms: many passes over the queue.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let ids: Vec<String> = receiver
        .seen()
        .iter()
        .map(|s| s.headers[sign::ID].clone())
        .collect();
    assert_eq!(ids.len(), 1, "one delivery of one event: {ids:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_confirms_deliver_one_event_on_the_embedded_store() {
    concurrent_confirms_deliver_one_event(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_confirms_deliver_one_event_on_s3() {
    concurrent_confirms_deliver_one_event(true).await;
}

/// The event `id` is no longer queued: delivered (an empty marker stays a while, so a late
/// confirm of the same draft does not queue it again) or never queued.
pub(crate) async fn out_of_the_queue(server: &Running, id: &str) -> bool {
    let draft = &server.config.buckets.draft;
    match server.storage().head_object(draft, &queue_key(id)).await {
        Ok(info) => info.size == 0,
        Err(_) => true,
    }
}

/// Confirms `name` (with `overwrite`), expecting 200.
pub(crate) async fn confirm_ok(server: &Running, name: &str, overwrite: bool) {
    let (status, done) = post(
        server,
        "/api/v1/confirm-upload",
        json!({"object_name": name, "overwrite": overwrite}),
    )
    .await;
    assert_eq!(status, 200, "{done}");
}

/// The distinct `webhook-id`s a receiver saw, with the object name and ETag each announced.
pub(crate) fn announced(receiver: &Stub) -> std::collections::BTreeMap<String, (String, String)> {
    receiver
        .seen()
        .iter()
        .map(|s| {
            let body: Value = serde_json::from_str(&s.body).unwrap();
            let data = &body["data"];
            (
                s.headers[sign::ID].clone(),
                (
                    data["object_name"].as_str().unwrap_or_default().to_owned(),
                    data["etag"].as_str().unwrap_or_default().to_owned(),
                ),
            )
        })
        .collect()
}

/// A receiver answering 500 until `up` is set, then 204.
async fn down_until(up: &Arc<std::sync::atomic::AtomicBool>) -> Stub {
    let up = up.clone();
    Stub::start(Box::new(move |_, _| {
        if up.load(Ordering::SeqCst) {
            (204, String::new())
        } else {
            (500, String::new())
        }
    }))
    .await
}

/// An `object.confirmed` whose first attempt failed is still delivered after main's object
/// changed: overwritten by a later confirm (`"overwrite": true`), or deleted from main. The
/// copy happened; what main holds later must not hold the event back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_event_is_delivered_after_main_is_overwritten_or_deleted() {
    let up = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let receiver = down_until(&up).await;
    let hook = receiver.url("/hook");
    let Some(server) = start(&[
        ("DRAFTSTORE_WEBHOOK_URLS", &hook),
        ("DRAFTSTORE_WEBHOOK_SECRET", SECRET),
        (
            "DRAFTSTORE_WEBHOOK_RETRY_SCHEDULE_MS",
            "0,300,300,300,300,300,300,300,300,300,300,300,300,300,300,300,300,300,300,300,300,300,300,300,300,300,300,300,300,300",
        ),
        ("DRAFTSTORE_WEBHOOK_POLL_MS", "50"),
    ])
    .await
    else {
        return;
    };
    upload(&server, "ow.txt", "version one").await;
    confirm_ok(&server, "ow.txt", false).await;
    upload(&server, "del.txt", "to be deleted").await;
    confirm_ok(&server, "del.txt", false).await;
    eventually(
        Duration::from_secs(30),
        "a refused attempt of each",
        || async { announced(&receiver).len() >= 2 },
    )
    .await;
    upload(&server, "ow.txt", "version two!").await;
    confirm_ok(&server, "ow.txt", true).await;
    delete_from_main(&server, "del.txt").await;
    up.store(true, Ordering::SeqCst);
    eventually(Duration::from_secs(60), "every event delivered", || async {
        let ids = announced(&receiver);
        if ids.len() < 3 {
            return false;
        }
        for id in ids.keys() {
            if !out_of_the_queue(&server, id).await {
                return false;
            }
        }
        true
    })
    .await;
    let ids = announced(&receiver);
    let names: Vec<&str> = ids.values().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names.iter().filter(|n| **n == "ow.txt").count(),
        2,
        "v1 and v2 each announced: {ids:?}"
    );
    assert!(names.contains(&"del.txt"), "{ids:?}");
    let delivered: std::collections::BTreeSet<String> = receiver
        .seen()
        .iter()
        .filter(|s| s.headers.contains_key(sign::ID))
        .map(|s| s.headers[sign::ID].clone())
        .collect();
    assert_eq!(delivered.len(), 3);
    server.stop().await;
}

/// Without conditional writes `serve` only queues: nothing tries the event before main
/// changes. The confirm marked it copied right after its copy, so `gateway events deliver`
/// sends v1's event although main now holds v2, and del.txt's although main lost it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirm_marks_its_event_copied_so_a_later_change_in_main_cannot_hold_it_back() {
    let receiver = Stub::start(Box::new(|_, _| (204, String::new()))).await;
    let hook = receiver.url("/hook");
    let bucket = crate::s3::prefix("evcp");
    let settings = [
        ("BUCKET_NAME", bucket.as_str()),
        ("DRAFTSTORE_WEBHOOK_URLS", hook.as_str()),
        ("DRAFTSTORE_WEBHOOK_SECRET", SECRET),
        ("DRAFTSTORE_S3_CONDITIONAL_WRITES", "false"),
    ];
    let Some(server) = start_s3(&settings).await else {
        return;
    };
    let Some(env) = crate::s3::env(&settings) else {
        return;
    };
    upload(&server, "ow.txt", "version one").await;
    confirm_ok(&server, "ow.txt", false).await;
    upload(&server, "ow.txt", "version two!").await;
    confirm_ok(&server, "ow.txt", true).await;
    upload(&server, "del.txt", "to be deleted").await;
    confirm_ok(&server, "del.txt", false).await;
    delete_from_main(&server, "del.txt").await;
    assert!(receiver.seen().is_empty(), "serve only queues");
    let delivered = gateway(&env, &["events", "deliver"]);
    let stderr = String::from_utf8_lossy(&delivered.stderr);
    assert_eq!(delivered.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("3 queued, 3 delivered, 0 pending"),
        "{stderr}"
    );
    let ids = announced(&receiver);
    let mut names: Vec<&str> = ids.values().map(|(name, _)| name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["del.txt", "ow.txt", "ow.txt"], "{ids:?}");
    for id in ids.keys() {
        assert!(out_of_the_queue(&server, id).await, "{id} left the queue");
    }
    server.stop().await;
}

/// Deletes `key` from main behind the gateway's back (as an operator or a lifecycle rule may).
pub(crate) async fn delete_from_main(server: &Running, key: &str) {
    use crate::harness::Direct;
    use draftstore_core::Storage;
    let main = &server.config.buckets.main;
    match server.storage() {
        Direct::S3(s3) => s3.delete_object(main, key).await.unwrap(),
        Direct::Local(local) => local.delete_object(main, key).await.unwrap(),
    }
}

/// `gateway events replay --id` refuses a malformed id (64, not echoed) and fails on an id
/// nothing queued (1); webhook URLs with an empty entry or with credentials are refused at
/// start (64) without printing the password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_cli_and_webhook_urls_refuse_what_cannot_be_right() {
    let p = crate::s3::prefix("evcli");
    let hook = "http://127.0.0.1:9/hook";
    let Some(env) = crate::s3::env(&[
        ("BUCKET_NAME", &p),
        ("DRAFTSTORE_WEBHOOK_URLS", hook),
        ("DRAFTSTORE_WEBHOOK_SECRET", SECRET),
    ]) else {
        return;
    };
    let s3 = crate::s3::storage(&env);
    let draft = draftstore_core::BucketName::parse(&format!("{p}-draft")).unwrap();
    draftstore_core::Storage::create_bucket(&s3, &draft)
        .await
        .unwrap();
    let malformed = gateway(&env, &["events", "replay", "--id", "../../etc/passwd"]);
    let stderr = String::from_utf8_lossy(&malformed.stderr);
    assert_eq!(malformed.status.code(), Some(64), "{stderr}");
    assert!(stderr.contains("--id must be an event id"), "{stderr}");
    assert!(!stderr.contains("passwd"), "not echoed: {stderr}");

    let unknown = gateway(
        &env,
        &[
            "events",
            "replay",
            "--id",
            "msg_0123456789abcdef0123456789abcdef",
        ],
    );
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert_eq!(unknown.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("no queued event msg_0123456789abcdef0123456789abcdef"),
        "{stderr}"
    );
    assert!(!stderr.contains("replayed 0"), "{stderr}");

    for (urls, expected) in [
        (format!("{hook},,"), "entry 2 is empty"),
        (format!(",{hook}"), "entry 1 is empty"),
        (
            "http://user:hunter2@127.0.0.1:9/x".to_owned(),
            "must not hold a user name or password",
        ),
    ] {
        let mut env = env.clone();
        env.insert("DRAFTSTORE_WEBHOOK_URLS".into(), urls.clone());
        let listed = gateway(&env, &["events", "list"]);
        let stderr = String::from_utf8_lossy(&listed.stderr);
        assert_eq!(listed.status.code(), Some(64), "{urls}: {stderr}");
        assert!(stderr.contains(expected), "{urls}: {stderr}");
        assert!(!stderr.contains("hunter2"), "never echoed: {stderr}");
    }
}
