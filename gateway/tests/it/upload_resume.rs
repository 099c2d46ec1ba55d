//! `gateway upload`'s resume, as issue 15's proof asks: a 64 MiB file in 8 MiB parts, the
//! client killed with half the parts stored, run again; a forwarder in front of the embedded
//! store's URLs counts the part PUTs.

use crate::upload_cli::{main_bucket, random_file, text, upload};
use std::process::Command;

/// A forwarder in front of the embedded store's URLs that records every part PUT
/// (`?partNumber=N`) and lets only `pass` more of them through: the others wait forever, as on
/// a network that died, until the client is killed.
struct PartGate {
    addr: std::net::SocketAddr,
    state: std::sync::Arc<GateState>,
}

#[derive(Default)]
struct GateState {
    upstream: std::sync::Mutex<String>,
    pass: std::sync::atomic::AtomicI64,
    /// How many more part PUTs to answer with 503 `SlowDown` without forwarding.
    fail: std::sync::atomic::AtomicI64,
    /// Part numbers of the PUTs received, in order.
    attempts: std::sync::Mutex<Vec<u32>>,
    /// Part numbers of the PUTs the store answered with 2xx.
    stored: std::sync::Mutex<Vec<u32>>,
}

impl PartGate {
    async fn start(pass: i64) -> Self {
        use hyper::server::conn::http1;
        use hyper::service::service_fn;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = std::sync::Arc::new(GateState::default());
        state.pass.store(pass, std::sync::atomic::Ordering::SeqCst);
        let shared = state.clone();
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            while let Ok((stream, _)) = listener.accept().await {
                let (state, client) = (shared.clone(), client.clone());
                tokio::spawn(async move {
                    let service =
                        service_fn(move |req| forward(req, state.clone(), client.clone()));
                    let _ = http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { addr, state }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn attempts(&self) -> Vec<u32> {
        self.state.attempts.lock().unwrap().clone()
    }

    fn stored(&self) -> Vec<u32> {
        self.state.stored.lock().unwrap().clone()
    }
}

async fn forward(
    req: hyper::Request<hyper::body::Incoming>,
    state: std::sync::Arc<GateState>,
    client: reqwest::Client,
) -> Result<hyper::Response<http_body_util::Full<bytes::Bytes>>, std::io::Error> {
    use http_body_util::BodyExt as _;
    let target = req.uri().path_and_query().unwrap().as_str().to_owned();
    let part: Option<u32> = target
        .split(['?', '&'])
        .find_map(|p| p.strip_prefix("partNumber="))
        .map(|n| n.parse().unwrap());
    if let Some(n) = part.filter(|_| req.method() == hyper::Method::PUT) {
        state.attempts.lock().unwrap().push(n);
        if state.pass.fetch_sub(1, std::sync::atomic::Ordering::SeqCst) <= 0 {
            std::future::pending::<()>().await;
        }
        if state.fail.fetch_sub(1, std::sync::atomic::Ordering::SeqCst) > 0 {
            // Read the part first, as S3 does: answered early, a client still sending may hit
            // the closed connection (a broken pipe) before it reads the answer.
            let _ = req.into_body().collect().await;
            let body = "<Error><Code>SlowDown</Code><Message>injected</Message></Error>";
            return Ok(hyper::Response::builder()
                .status(503)
                .body(http_body_util::Full::new(bytes::Bytes::from(body)))
                .unwrap());
        }
    }
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map_err(std::io::Error::other)?
        .to_bytes();
    let upstream = state.upstream.lock().unwrap().clone();
    let method = reqwest::Method::from_bytes(parts.method.as_str().as_bytes()).unwrap();
    let mut request = client
        .request(method, format!("{upstream}{target}"))
        .body(body);
    for (name, value) in &parts.headers {
        request = request.header(name.as_str(), value.as_bytes());
    }
    let answer = request.send().await.map_err(std::io::Error::other)?;
    if let (Some(n), true) = (part, answer.status().is_success()) {
        state.stored.lock().unwrap().push(n);
    }
    let mut response = hyper::Response::builder().status(answer.status().as_u16());
    for (name, value) in answer.headers() {
        response = response.header(name.as_str(), value.as_bytes());
    }
    let bytes = answer.bytes().await.map_err(std::io::Error::other)?;
    Ok(response.body(http_body_util::Full::new(bytes)).unwrap())
}

/// Issue 15's proof: a 64 MiB file in 8 MiB parts, the client killed (SIGKILL) with half the
/// parts stored, then run again: it sends only the parts the store lacks, each once, and main
/// holds the exact bytes after the confirm. With `keep_state` false the state file is deleted
/// before the second run, and the upload is found again through `list` + `parts`.
async fn killed_half_way_then_resumed(keep_state: bool) {
    const MIB: usize = 1024 * 1024;
    let gate = PartGate::start(4).await;
    let server = crate::harness::start_local(&[("DRAFTSTORE_PUBLIC_URL", &gate.url())]).await;
    *gate.state.upstream.lock().unwrap() = server.url("");
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = random_file(dir.path(), "big.bin", 64 * MIB);
    let endpoint = server.url("");
    let args = [
        "upload",
        path.to_str().unwrap(),
        "--part-size",
        "8388608",
        "--parallel",
        "2",
        "--confirm",
        "--json",
    ];
    let mut child = Command::new(env!("CARGO_BIN_EXE_gateway"))
        .args(args)
        .env_clear()
        .env("DRAFTSTORE_ENDPOINT", &endpoint)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Four parts stored, two more sent and held: kill it there. (A guard, not a timed assert:
    // without it a broken client would hang the suite.)
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    while gate.stored().len() < 4 || gate.attempts().len() < 6 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the client ended early"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "{:?}",
            gate.attempts()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let state_file = dir.path().join("big.bin.draftstore-upload");
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&state_file).unwrap()).unwrap();
    let upload_id = saved["upload_id"].as_str().unwrap().to_owned();
    let listed: serde_json::Value = crate::harness::http1()
        .post(server.url("/api/v1/multipart-upload/parts"))
        .json(&serde_json::json!({"object_name": "big.bin", "upload_id": upload_id}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut before: Vec<u32> = listed["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| u32::try_from(p["part_number"].as_u64().unwrap()).unwrap())
        .collect();
    before.sort_unstable();
    let mut acknowledged = gate.stored();
    acknowledged.sort_unstable();
    assert_eq!(before, acknowledged, "the store holds what it acknowledged");
    assert_eq!(before.len(), 4);
    if !keep_state {
        std::fs::remove_file(&state_file).unwrap();
    }

    let first_run = gate.attempts().len();
    gate.state
        .pass
        .store(i64::MAX / 2, std::sync::atomic::Ordering::SeqCst);
    let out = upload(
        args.get(1..).unwrap(),
        &[("DRAFTSTORE_ENDPOINT", &endpoint)],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut resent = gate.attempts().split_off(first_run);
    resent.sort_unstable();
    let missing: Vec<u32> = (1..=8).filter(|n| !before.contains(n)).collect();
    assert_eq!(
        resent, missing,
        "only the parts not stored are sent, once each"
    );
    let reply: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reply["parts_sent"], 4, "{reply}");
    assert_eq!(reply["confirmed"], true, "{reply}");
    let stored = server
        .storage()
        .get_object(&main_bucket(&server), "big.bin")
        .await
        .unwrap();
    assert!(stored == bytes, "main holds other bytes");
    assert!(!state_file.exists(), "the state file is removed when done");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_upload_resumes_from_its_state_file_without_resending_parts() {
    killed_half_way_then_resumed(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_upload_without_its_state_file_is_found_through_the_api() {
    killed_half_way_then_resumed(false).await;
}

/// Parts the store refuses with 503 are sent again (on a fresh URL, after a backoff) and the
/// upload completes with the exact bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_parts_are_retried() {
    const MIB: usize = 1024 * 1024;
    let gate = PartGate::start(i64::MAX / 2).await;
    gate.state
        .fail
        .store(2, std::sync::atomic::Ordering::SeqCst);
    let server = crate::harness::start_local(&[("DRAFTSTORE_PUBLIC_URL", &gate.url())]).await;
    *gate.state.upstream.lock().unwrap() = server.url("");
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = random_file(dir.path(), "r.bin", 11 * MIB);
    let endpoint = server.url("");
    let out = upload(
        &[
            path.to_str().unwrap(),
            "--part-size",
            "5242880",
            "--multipart-threshold",
            "5242880",
            "--parallel",
            "1",
            "--confirm",
        ],
        &[("DRAFTSTORE_ENDPOINT", &endpoint)],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        gate.attempts(),
        [1, 1, 1, 2, 3],
        "part 1 failed twice, then passed"
    );
    assert_eq!(gate.stored(), [1, 2, 3]);
    let err = text(&out.stderr);
    assert!(
        err.contains("part 1 failed") && err.contains("SlowDown"),
        "{err}"
    );
    let stored = server
        .storage()
        .get_object(&main_bucket(&server), "r.bin")
        .await
        .unwrap();
    assert!(stored == bytes, "main holds other bytes");
}
