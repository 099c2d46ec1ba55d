//! The embedded local store: the conformance suite, the README flow with nothing but the run
//! command and curl, refused uploads that store nothing, a kill -9 mid-upload, and concurrent
//! uploads to one key.

use draftstore_core::{BucketName, Storage};
use draftstore_gateway::backend::Backend;
use draftstore_gateway::config::LocalConfig;
use draftstore_gateway::local::LocalStorage;
use draftstore_signer::{Expiry, Method, Timestamp};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn config(dir: &std::path::Path, public_url: &str) -> LocalConfig {
    LocalConfig {
        data_dir: dir.to_path_buf(),
        public_url: public_url.into(),
        secret: None,
        max_object: 1 << 40,
        stall_timeout: std::time::Duration::from_secs(20),
    }
}

fn open(dir: &std::path::Path, public_url: &str) -> LocalStorage {
    LocalStorage::open(&config(dir, public_url)).unwrap()
}

#[tokio::test]
async fn conformance_on_the_local_store() {
    let dir = tempfile::tempdir().unwrap();
    draftstore_core::conformance::run_all(&open(dir.path(), "http://127.0.0.1:1"), "local").await;
}

struct Gateway {
    child: Child,
    port: u16,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `gateway serve` with an empty environment (no AWS anything) in `dir`.
fn serve(dir: &std::path::Path) -> Gateway {
    serve_with(dir, &[])
}

fn serve_with(dir: &std::path::Path, env: &[(&str, &str)]) -> Gateway {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(env!("CARGO_BIN_EXE_gateway"))
        .env_clear()
        .envs(env.iter().copied())
        .current_dir(dir)
        .args([
            "serve",
            "--bind",
            "127.0.0.1",
            "--http-port",
            &port.to_string(),
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "gateway did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Gateway { child, port }
}

/// A second handle on a running gateway's data folder: it signs with the secret the gateway
/// made, for URLs pointing at the gateway. Also the draft bucket and the current time.
fn signer_for(dir: &std::path::Path, gateway: &Gateway) -> (LocalStorage, BucketName, Timestamp) {
    // Not `open`: the gateway serves this folder.
    let store = LocalStorage::open_existing(&config(
        &dir.join("draftstore-data"),
        &format!("http://127.0.0.1:{}", gateway.port),
    ))
    .unwrap();
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    (
        store,
        BucketName::parse("main-draft").unwrap(),
        Timestamp::from_unix(secs as i64).unwrap(),
    )
}

fn curl(args: &[&str]) -> (String, String) {
    let out = Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl is installed");
    let text = String::from_utf8(out.stdout).unwrap();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (body.to_owned(), code.to_owned())
}

fn post(port: u16, path: &str, json: &str) -> serde_json::Value {
    let (body, code) = curl(&[
        "-XPOST",
        &format!("http://127.0.0.1:{port}{path}"),
        "-H",
        "content-type: application/json",
        "-d",
        json,
    ]);
    assert_eq!(code, "200", "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

#[test]
fn readme_flow_with_the_run_command_and_curl() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = serve(dir.path());
    let port = gateway.port;
    let file = dir.path().join("cat.jpg");
    let bytes: Vec<u8> = (0..200_000_u32).map(|i| (i * 7 % 256) as u8).collect();
    std::fs::write(&file, &bytes).unwrap();

    let up = post(
        port,
        "/api/v1/upload-url",
        r#"{"object_name": "photos/cat ሴ+1.jpg"}"#,
    );
    assert_eq!(up["required_headers"], serde_json::json!({}));
    let (_, code) = curl(&[
        "-X",
        "PUT",
        "--upload-file",
        file.to_str().unwrap(),
        up["upload_url"].as_str().unwrap(),
    ]);
    assert_eq!(code, "200", "curl -X PUT --upload-file");

    let down = post(
        port,
        "/api/v1/download-url",
        r#"{"object_name": "photos/cat ሴ+1.jpg"}"#,
    );
    let got = Command::new("curl")
        .args(["-s", down["download_url"].as_str().unwrap()])
        .output()
        .unwrap()
        .stdout;
    assert_eq!(got, bytes, "curl GET returns the same bytes");

    let done = post(
        port,
        "/api/v1/confirm-upload",
        r#"{"object_name": "photos/cat ሴ+1.jpg"}"#,
    );
    assert_eq!(done["final_location"], "main/photos/cat ሴ+1.jpg");
    let main = post(
        port,
        "/api/v1/download-url",
        r#"{"object_name": "photos/cat ሴ+1.jpg", "source": "main"}"#,
    );
    let got = Command::new("curl")
        .args(["-s", main["download_url"].as_str().unwrap()])
        .output()
        .unwrap()
        .stdout;
    assert_eq!(got, bytes, "the file is in main");
    let (_, code) = curl(&[
        "-XPOST",
        &format!("http://127.0.0.1:{port}/api/v1/download-url"),
        "-H",
        "content-type: application/json",
        "-d",
        r#"{"object_name": "photos/cat ሴ+1.jpg"}"#,
    ]);
    assert_eq!(code, "404", "gone from draft");
    let secret = dir.path().join("draftstore-data/.secret");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&secret).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_expired_and_mismatched_uploads_store_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = serve(dir.path());
    let (store, draft, now) = signer_for(dir.path(), &gateway);
    let hour = Expiry::new(3600).unwrap();
    let client = reqwest::Client::new();
    let put = |url: String, headers: Vec<(&'static str, String)>, body: &'static [u8]| {
        let client = client.clone();
        async move {
            let mut request = client.put(url).body(body);
            for (n, v) in headers {
                request = request.header(n, v);
            }
            let resp = request.send().await.unwrap();
            (resp.status().as_u16(), resp.text().await.unwrap())
        }
    };

    let url = store
        .presign(Method::Put, &draft, "k1", &[], hour, now)
        .unwrap();
    let tampered = format!(
        "{}{}",
        &url[..url.len() - 1],
        if url.ends_with('0') { '1' } else { '0' }
    );
    let (status, body) = put(tampered, vec![], b"x").await;
    assert_eq!(status, 403);
    assert!(
        body.contains("<Code>SignatureDoesNotMatch</Code>"),
        "{body}"
    );

    let old = Timestamp::from_unix(now.unix() - 7200).unwrap();
    let expired = store
        .presign(
            Method::Put,
            &draft,
            "k2",
            &[],
            Expiry::new(60).unwrap(),
            old,
        )
        .unwrap();
    let (status, body) = put(expired, vec![], b"x").await;
    assert_eq!(
        (status, body.contains("AccessDenied")),
        (403, true),
        "{body}"
    );

    let other_bucket = store
        .presign(
            Method::Put,
            &BucketName::parse("main").unwrap(),
            "k3",
            &[],
            hour,
            now,
        )
        .unwrap();
    let wrong_scope = other_bucket.replace("/_store/main/", "/_store/main-draft/");
    assert_eq!(
        put(wrong_scope, vec![], b"x").await.0,
        403,
        "a URL for another bucket"
    );

    let typed = store
        .presign(
            Method::Put,
            &draft,
            "k4",
            &[("content-type", "image/png")],
            hour,
            now,
        )
        .unwrap();
    assert_eq!(
        put(
            typed.clone(),
            vec![("content-type", "text/html".into())],
            b"x"
        )
        .await
        .0,
        403,
        "content type differs from the signed one"
    );
    let sized = store
        .presign(
            Method::Put,
            &draft,
            "k5",
            &[("content-length", "5")],
            hour,
            now,
        )
        .unwrap();
    assert_eq!(
        put(sized, vec![], b"too long!").await.0,
        403,
        "length differs from the signed one"
    );
    let wrong_sum = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
    let summed = store
        .presign(
            Method::Put,
            &draft,
            "k6",
            &[("x-amz-checksum-sha256", wrong_sum)],
            hour,
            now,
        )
        .unwrap();
    let (status, body) = put(
        summed,
        vec![("x-amz-checksum-sha256", wrong_sum.into())],
        b"not empty",
    )
    .await;
    assert_eq!((status, body.contains("BadDigest")), (400, true), "{body}");

    for key in ["k1", "k2", "k3", "k4", "k5", "k6"] {
        assert!(
            store.head_object(&draft, key).await.is_err(),
            "{key} must not be stored"
        );
    }
    assert_eq!(
        put(typed, vec![("content-type", "image/png".into())], b"fine")
            .await
            .0,
        200,
        "the honest upload works"
    );
    let resp = client
        .delete(
            store
                .presign(Method::Delete, &draft, "k4", &[], hour, now)
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 405, "only PUT, GET, HEAD");
    assert_eq!(
        std::fs::read_dir(dir.path().join("draftstore-data/tmp"))
            .unwrap()
            .count(),
        0,
        "no temporary files left"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_upload_leaves_no_partial_object_and_restart_works() {
    let dir = tempfile::tempdir().unwrap();
    let mut gateway = serve(dir.path());
    let (store, draft, now) = signer_for(dir.path(), &gateway);
    let url = store
        .presign(
            Method::Put,
            &draft,
            "big.bin",
            &[],
            Expiry::new(3600).unwrap(),
            now,
        )
        .unwrap();
    // A 64 MiB upload sent slowly, so the kill lands in the middle.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(4);
    let body = reqwest::Body::wrap_stream(tokio_stream(rx));
    let upload = tokio::spawn(
        reqwest::Client::new()
            .put(url)
            .header("content-length", (64 << 20).to_string())
            .body(body)
            .send(),
    );
    for _ in 0..8 {
        tx.send(Ok(bytes::Bytes::from(vec![1_u8; 1 << 20])))
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    gateway.child.kill().unwrap();
    gateway.child.wait().unwrap();
    drop(tx);
    let _ = upload.await;
    assert!(
        store.head_object(&draft, "big.bin").await.is_err(),
        "no partial object is visible"
    );

    let restarted = serve(dir.path());
    let (store, _, _) = signer_for(dir.path(), &restarted);
    assert_eq!(
        std::fs::read_dir(dir.path().join("draftstore-data/tmp"))
            .unwrap()
            .count(),
        0,
        "leftovers cleared at start"
    );
    let url = store
        .presign(
            Method::Put,
            &draft,
            "big.bin",
            &[],
            Expiry::new(3600).unwrap(),
            now,
        )
        .unwrap();
    assert_eq!(crate::harness::put_to(&url, vec![2_u8; 1000]).await, 200);
    assert_eq!(
        store.get_object(&draft, "big.bin").await.unwrap(),
        vec![2_u8; 1000]
    );
}

fn tokio_stream(
    mut rx: tokio::sync::mpsc::Receiver<Result<bytes::Bytes, std::io::Error>>,
) -> impl futures_util::Stream<Item = Result<bytes::Bytes, std::io::Error>> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_puts_to_one_key_end_with_one_complete_object() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = serve(dir.path());
    let (store, draft, now) = signer_for(dir.path(), &gateway);
    let url = store
        .presign(
            Method::Put,
            &draft,
            "same",
            &[],
            Expiry::new(3600).unwrap(),
            now,
        )
        .unwrap();
    let bodies: Vec<Vec<u8>> = (0..8_u8).map(|i| vec![i; 2 << 20]).collect();
    let mut tasks = Vec::new();
    for body in bodies.clone() {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            crate::harness::put_to(&url, body).await
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), 200);
    }
    let stored = store.get_object(&draft, "same").await.unwrap();
    assert!(bodies.contains(&stored), "one of the uploads, whole");
    let data_files = walk(&dir.path().join("draftstore-data/buckets/main-draft"));
    assert_eq!(data_files, 1, "replaced bytes are removed");
}

fn walk(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| {
            if e.path().is_dir() {
                walk(&e.path())
            } else {
                usize::from(e.path().extension().is_some_and(|x| x == "data"))
            }
        })
        .sum()
}

/// Even at debug level, no log line carries a signature, a credential scope, a presigned URL's
/// query or the store's secret.
#[test]
fn logs_never_carry_signatures_urls_or_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let mut gateway = serve_with(dir.path(), &[("DRAFTSTORE_LOG", "debug")]);
    let port = gateway.port;
    let up = post(
        port,
        "/api/v1/upload-url",
        r#"{"object_name": "logged.txt"}"#,
    );
    let url = up["upload_url"].as_str().unwrap().to_owned();
    assert_eq!(
        curl(&["-X", "PUT", "--data-binary", "hello", &url]).1,
        "200"
    );
    let _ = curl(&["-X", "PUT", "--data-binary", "tampered", &format!("{url}0")]);
    post(
        port,
        "/api/v1/confirm-upload",
        r#"{"object_name": "logged.txt"}"#,
    );
    let _ = curl(&[
        "-XPOST",
        &format!("http://127.0.0.1:{port}/api/v1/confirm-upload"),
        "-H",
        "content-type: application/json",
        "-d",
        r#"{"object_name": "../x"}"#,
    ]);
    gateway.child.kill().unwrap();
    let mut logs = String::new();
    std::io::Read::read_to_string(gateway.child.stderr.as_mut().unwrap(), &mut logs).unwrap();
    let secret = std::fs::read_to_string(dir.path().join("draftstore-data/.secret")).unwrap();
    assert!(
        logs.contains("INVALID_OBJECT_NAME") && logs.contains("request_id"),
        "the error was logged with its id:\n{logs}"
    );
    for forbidden in [
        "X-Amz-Signature",
        "X-Amz-Credential",
        "Signature=",
        secret.trim(),
        &url[url.find('?').unwrap()..],
    ] {
        assert!(
            !logs.contains(forbidden),
            "{forbidden:?} in the logs:\n{logs}"
        );
    }
}

/// The access log the README documents: one line per answered request, nothing else at debug.
#[test]
fn the_documented_filter_gives_one_line_per_request() {
    let dir = tempfile::tempdir().unwrap();
    let mut gateway = serve_with(
        dir.path(),
        &[("DRAFTSTORE_LOG", "info,draftstore_gateway::server=debug")],
    );
    let (body, code) = curl(&[&format!("http://127.0.0.1:{}/health", gateway.port)]);
    assert_eq!(code, "200", "{body}");
    gateway.child.kill().unwrap();
    let mut logs = String::new();
    std::io::Read::read_to_string(gateway.child.stderr.as_mut().unwrap(), &mut logs).unwrap();
    let lines: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("path=/health"))
        .collect();
    assert_eq!(lines.len(), 1, "{logs}");
    for field in ["request_id=", "method=GET", "status=200", "elapsed_us="] {
        assert!(lines.iter().all(|l| l.contains(field)), "{field}: {logs}");
    }
}

#[test]
fn one_server_per_data_folder() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), "http://127.0.0.1:8080");
    let first = LocalStorage::open(&config).unwrap();
    let Err(second) = LocalStorage::open(&config) else {
        panic!("a second server opened the same folder")
    };
    assert!(second.contains("another gateway serves"), "{second}");
    // A sweep may run beside the server.
    assert!(LocalStorage::open_existing(&config).is_ok());
    drop(first);
    assert!(LocalStorage::open(&config).is_ok());
}

#[test]
fn a_second_gateway_on_the_same_folder_exits_69_and_the_first_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let first = serve(dir.path());
    let second = Command::new(env!("CARGO_BIN_EXE_gateway"))
        .env_clear()
        .current_dir(dir.path())
        .args(["serve", "--bind", "127.0.0.1", "--http-port", "0"])
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(69));
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains("another gateway serves"), "{stderr}");
    let (body, code) = curl(&[&format!("http://127.0.0.1:{}/ready", first.port)]);
    assert_eq!(code, "200", "{body}");
}
