//! The embedded local store: the conformance suite, the README flow with nothing but the run
//! command and curl, refused uploads that store nothing, a kill -9 mid-upload, and concurrent
//! uploads to one key.

use draftstore_core::{BucketName, ObjectName, Storage};
use draftstore_gateway::config::LocalConfig;
use draftstore_gateway::store::local::LocalStorage;
use draftstore_gateway::store::Presign;
use draftstore_signer::{Expiry, Method, Timestamp};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) fn config(dir: &std::path::Path, public_url: &str) -> LocalConfig {
    LocalConfig {
        data_dir: dir.to_path_buf(),
        public_url: public_url.into(),
        secret: None,
        max_object: 1 << 40,
        stall_timeout: std::time::Duration::from_secs(20),
    }
}

pub(crate) fn key(name: &str) -> ObjectName {
    ObjectName::parse(name).unwrap()
}

fn open(dir: &std::path::Path, public_url: &str) -> LocalStorage {
    LocalStorage::open(&config(dir, public_url)).unwrap()
}

#[tokio::test]
async fn conformance_on_the_local_store() {
    let dir = tempfile::tempdir().unwrap();
    draftstore_core::conformance::run_all(&open(dir.path(), "http://127.0.0.1:1"), "local").await;
}

pub(crate) struct Gateway {
    pub(crate) child: Child,
    pub(crate) port: u16,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `gateway serve` with an empty environment (no AWS anything) in `dir`.
pub(crate) fn serve(dir: &std::path::Path) -> Gateway {
    serve_with(dir, &[])
}

pub(crate) fn serve_with(dir: &std::path::Path, env: &[(&str, &str)]) -> Gateway {
    let (child, port) = crate::harness::spawn_on_free_port(
        |port| {
            Command::new(env!("CARGO_BIN_EXE_gateway"))
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
                .unwrap()
        },
        Duration::from_secs(10),
    );
    Gateway { child, port }
}

/// A second handle on a running gateway's data folder: it signs with the secret the gateway
/// made, for URLs pointing at the gateway. Also the draft bucket and the current time.
pub(crate) fn signer_for(
    dir: &std::path::Path,
    gateway: &Gateway,
) -> (LocalStorage, BucketName, Timestamp) {
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

pub(crate) fn curl(args: &[&str]) -> (String, String) {
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
        .presign(Method::Put, &draft, &key("k1"), &[], hour, now)
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

    // Not presigned at all (a browser or curl on the bare URL): S3's 403 AccessDenied, for the
    // PUT and the GET alike; a URL with some auth parameters missing is S3's 400.
    let bare = url.split('?').next().unwrap_or_default().to_owned();
    let (status, body) = put(bare.clone(), vec![], b"x").await;
    assert_eq!(
        (status, body.contains("<Code>AccessDenied</Code>")),
        (403, true),
        "{body}"
    );
    let fetched = client.get(&bare).send().await.unwrap();
    assert_eq!(fetched.status(), 403);
    let partial = url
        .split('&')
        .filter(|kv| !kv.starts_with("X-Amz-Signature="))
        .collect::<Vec<_>>()
        .join("&");
    let (status, body) = put(partial, vec![], b"x").await;
    assert_eq!(
        (
            status,
            body.contains("<Code>AuthorizationQueryParametersError</Code>")
        ),
        (400, true),
        "{body}"
    );

    let old = Timestamp::from_unix(now.unix() - 7200).unwrap();
    let expired = store
        .presign(
            Method::Put,
            &draft,
            &key("k2"),
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
            &key("k3"),
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
            &key("k4"),
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
            &key("k5"),
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
            &key("k6"),
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
                .presign(Method::Delete, &draft, &key("k4"), &[], hour, now)
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
            &key("big.bin"),
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
    // What a crash between placing data and writing its metadata would leave.
    let shard = dir.path().join("draftstore-data/buckets/main-draft/ab");
    std::fs::create_dir_all(&shard).unwrap();
    std::fs::write(shard.join("ab12.0123456789abcdef.data"), b"orphan").unwrap();

    let restarted = serve(dir.path());
    let (store, _, _) = signer_for(dir.path(), &restarted);
    assert_eq!(
        std::fs::read_dir(dir.path().join("draftstore-data/tmp"))
            .unwrap()
            .count(),
        0,
        "leftovers cleared at start"
    );
    assert_eq!(
        std::fs::read_dir(&shard).unwrap().count(),
        0,
        "data without metadata removed at start"
    );
    let url = store
        .presign(
            Method::Put,
            &draft,
            &key("big.bin"),
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

pub(crate) fn tokio_stream(
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
            &key("same"),
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
        &[(
            "DRAFTSTORE_LOG",
            "info,draftstore_gateway::http::server=debug",
        )],
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

/// The bytes of a file, path and mode, for every file and folder under `dir`.
pub(crate) fn modes(dir: &std::path::Path, out: &mut Vec<(std::path::PathBuf, u32)>) {
    use std::os::unix::fs::PermissionsExt;
    out.push((
        dir.to_owned(),
        std::fs::metadata(dir).unwrap().permissions().mode() & 0o777,
    ));
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            modes(&path, out);
        } else {
            out.push((
                path.clone(),
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            ));
        }
    }
}

/// Every file under `dir` (recursively).
fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut all = Vec::new();
    modes(dir, &mut all);
    all.into_iter()
        .map(|(p, _)| p)
        .filter(|p| p.is_file())
        .collect()
}

/// The path and query of a presigned URL, for a request written by hand.
fn path_and_query(url: &str) -> String {
    let rest = url.strip_prefix("http://").unwrap();
    rest[rest.find('/').unwrap()..].to_owned()
}

/// Starts an HTTP/1.1 PUT of `declared` bytes by hand and sends only `sent` of them.
pub(crate) fn partial_put(
    port: u16,
    url: &str,
    declared: usize,
    sent: usize,
) -> std::net::TcpStream {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "PUT {} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {declared}\r\n\r\n",
        path_and_query(url)
    )
    .unwrap();
    stream.write_all(&vec![7_u8; sent]).unwrap();
    stream
}

/// Waits (bounded, so a regression fails instead of hanging) until `done` holds.
pub(crate) fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < Duration::from_secs(30), "never: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub(crate) fn tmp_files(data: &std::path::Path) -> usize {
    std::fs::read_dir(data.join("tmp")).unwrap().count()
}

/// Item: every presigned URL works the same over HTTP/1.1 and h2c (HTTP/2 carries the host in
/// `:authority`), for PUT, GET and HEAD, with curl and with reqwest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presigned_urls_work_the_same_over_http1_and_h2c() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = serve(dir.path());
    let (store, draft, now) = signer_for(dir.path(), &gateway);
    let hour = Expiry::new(3600).unwrap();
    let url = |method, k: &str| {
        store
            .presign(method, &draft, &key(k), &[], hour, now)
            .unwrap()
    };
    let file = dir.path().join("a.txt");
    std::fs::write(&file, b"hello over h2").unwrap();

    for (key, version) in [
        ("h1.txt", "--http1.1"),
        ("h2.txt", "--http2-prior-knowledge"),
    ] {
        let (body, code) = curl(&[
            version,
            "-X",
            "PUT",
            "--upload-file",
            file.to_str().unwrap(),
            &url(Method::Put, key),
        ]);
        assert_eq!(code, "200", "{version} PUT: {body}");
        let (body, code) = curl(&[version, &url(Method::Get, key)]);
        assert_eq!(
            (code.as_str(), body.as_str()),
            ("200", "hello over h2"),
            "{version} GET"
        );
        let (_, code) = curl(&[version, "-I", &url(Method::Head, key)]);
        assert_eq!(code, "200", "{version} HEAD");
    }

    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let put = h2
        .put(url(Method::Put, "reqwest.txt"))
        .body("from reqwest")
        .send()
        .await
        .unwrap();
    assert_eq!(put.version(), reqwest::Version::HTTP_2);
    assert_eq!(put.status(), 200, "{}", put.text().await.unwrap());
    let got = h2
        .get(url(Method::Get, "reqwest.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.text().await.unwrap(), "from reqwest");
    let head = h2
        .head(url(Method::Head, "reqwest.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-length"], "12");
    // Still checked: a URL for another key is refused over HTTP/2 too.
    let wrong = url(Method::Get, "reqwest.txt").replace("reqwest.txt", "h1.txt");
    assert_eq!(h2.get(wrong).send().await.unwrap().status(), 403);
}

/// Item: an upload that stops sending is cut after the stall timeout with S3-style XML and
/// leaves nothing; one that keeps moving (for longer than that timeout) is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_upload_is_cut_and_a_slow_steady_one_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = serve_with(dir.path(), &[("DRAFTSTORE_STORE_STALL_TIMEOUT_MS", "1000")]);
    let (store, draft, now) = signer_for(dir.path(), &gateway);
    let data = dir.path().join("draftstore-data");
    let hour = Expiry::new(3600).unwrap();

    let stalled = store
        .presign(Method::Put, &draft, &key("stalled"), &[], hour, now)
        .unwrap();
    let mut stream = partial_put(gateway.port, &stalled, 1000, 10);
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut stream, &mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("<Code>RequestTimeout</Code>"), "{answer}");
    assert!(answer.contains("application/xml"), "{answer}");
    assert!(store.head_object(&draft, "stalled").await.is_err());
    assert_eq!(tmp_files(&data), 0, "the partial file is gone");

    // 12 chunks, 150 ms apart: 1.8 s in all, longer than the stall timeout, but never near
    // 1 s without a byte.
    let steady = store
        .presign(Method::Put, &draft, &key("steady"), &[], hour, now)
        .unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(1);
    let upload = tokio::spawn(
        reqwest::Client::new()
            .put(steady)
            .header("content-length", (12 * 1024).to_string())
            .body(reqwest::Body::wrap_stream(tokio_stream(rx)))
            .send(),
    );
    for _ in 0..12 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        tx.send(Ok(bytes::Bytes::from(vec![3_u8; 1024])))
            .await
            .unwrap();
    }
    drop(tx);
    assert_eq!(upload.await.unwrap().unwrap().status(), 200);
    assert_eq!(
        store.get_object(&draft, "steady").await.unwrap(),
        vec![3_u8; 12 * 1024]
    );
}

/// Item: nothing partial stays after a client that goes away mid-upload, nor after a shutdown
/// that cuts an upload off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_cut_by_a_client_gone_or_a_shutdown_leave_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut gateway = serve_with(dir.path(), &[("DRAFTSTORE_SHUTDOWN_GRACE_MS", "300")]);
    let (store, draft, now) = signer_for(dir.path(), &gateway);
    let data = dir.path().join("draftstore-data");
    let url = |k: &str| {
        store
            .presign(
                Method::Put,
                &draft,
                &key(k),
                &[],
                Expiry::new(3600).unwrap(),
                now,
            )
            .unwrap()
    };

    let gone = partial_put(gateway.port, &url("gone"), 1 << 20, 64 * 1024);
    eventually("the upload's file appears", || tmp_files(&data) == 1);
    drop(gone);
    eventually("the file of a client gone is removed", || {
        tmp_files(&data) == 0
    });

    let _cut = partial_put(gateway.port, &url("cut"), 1 << 20, 64 * 1024);
    eventually("the upload's file appears", || tmp_files(&data) == 1);
    let status = Command::new("kill")
        .args(["-TERM", &gateway.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    gateway.child.wait().unwrap();
    assert_eq!(tmp_files(&data), 0, "a shutdown leaves no partial file");
    assert!(store.head_object(&draft, "gone").await.is_err());
    assert!(store.head_object(&draft, "cut").await.is_err());
}

/// Item: the store's files are 0600 and its folders 0700 (the data is users' files).
#[test]
fn files_are_0600_and_folders_0700() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = serve(dir.path());
    let port = gateway.port;
    let up = post(port, "/api/v1/upload-url", r#"{"object_name": "m/d.txt"}"#);
    let (_, code) = curl(&[
        "-X",
        "PUT",
        "--data-binary",
        "private",
        up["upload_url"].as_str().unwrap(),
    ]);
    assert_eq!(code, "200");
    post(
        port,
        "/api/v1/confirm-upload",
        r#"{"object_name": "m/d.txt"}"#,
    );
    let up = post(
        port,
        "/api/v1/upload-url",
        r#"{"object_name": "draft.txt"}"#,
    );
    let (_, code) = curl(&[
        "-X",
        "PUT",
        "--data-binary",
        "x",
        up["upload_url"].as_str().unwrap(),
    ]);
    assert_eq!(code, "200");
    let mut all = Vec::new();
    modes(&dir.path().join("draftstore-data"), &mut all);
    assert!(
        all.iter().filter(|(p, _)| p.is_file()).count() >= 7,
        "{all:?}"
    );
    for (path, mode) in all {
        let want = if path.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode, want, "{} is {mode:o}", path.display());
    }
}

/// Item: GET and HEAD, on draft and main, follow S3's conditional headers and range forms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditional_and_range_requests_as_s3_answers_them() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = serve(dir.path());
    let port = gateway.port;
    let (store, draft, now) = signer_for(dir.path(), &gateway);
    let main = BucketName::parse("main").unwrap();
    let hour = Expiry::new(3600).unwrap();
    let client = reqwest::Client::new();
    let body: Vec<u8> = (0..100_u8).collect();
    for k in ["in-main", "in-draft"] {
        let put = store
            .presign(Method::Put, &draft, &key(k), &[], hour, now)
            .unwrap();
        assert_eq!(crate::harness::put_to(&put, body.clone()).await, 200);
    }
    post(
        port,
        "/api/v1/confirm-upload",
        r#"{"object_name": "in-main"}"#,
    );
    let etag = format!(
        "\"{}\"",
        store.head_object(&draft, "in-draft").await.unwrap().etag
    );
    let later = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(3600));
    let earlier = "Mon, 01 Jan 2001 00:00:00 GMT";

    for (bucket, k) in [(&draft, "in-draft"), (&main, "in-main")] {
        for method in [Method::Get, Method::Head] {
            let url = store
                .presign(method, bucket, &key(k), &[], hour, now)
                .unwrap();
            let send = |headers: &[(&str, &str)]| {
                let mut request = client.request(
                    reqwest::Method::from_bytes(method.as_str().as_bytes()).unwrap(),
                    url.clone(),
                );
                for (n, v) in headers {
                    request = request.header(*n, *v);
                }
                async move {
                    let resp = request.send().await.unwrap();
                    let status = resp.status().as_u16();
                    let range = resp
                        .headers()
                        .get("content-range")
                        .map(|v| v.to_str().unwrap().to_owned());
                    let length = resp
                        .headers()
                        .get("content-length")
                        .map(|v| v.to_str().unwrap().to_owned());
                    (status, range, length, resp.bytes().await.unwrap().to_vec())
                }
            };
            let what = format!("{} {k}", method.as_str());
            let etag = etag.as_str();
            for (headers, want) in [
                (vec![("if-none-match", etag)], 304),
                (vec![("if-none-match", "\"other\"")], 200),
                (vec![("if-match", "\"0000\"")], 412),
                (vec![("if-match", etag)], 200),
                (vec![("if-modified-since", later.as_str())], 304),
                (vec![("if-modified-since", earlier)], 200),
                (vec![("if-unmodified-since", earlier)], 412),
                (
                    vec![("if-match", etag), ("if-unmodified-since", earlier)],
                    200,
                ),
                (
                    vec![("if-none-match", etag), ("if-modified-since", earlier)],
                    304,
                ),
            ] {
                assert_eq!(send(&headers).await.0, want, "{what} {headers:?}");
            }
            for (range, status, content_range, length) in [
                ("bytes=0-1,5-6", 200, None, "100"),
                ("items=0-1", 200, None, "100"),
                ("bytes=9-5", 200, None, "100"),
                ("bytes=10-19", 206, Some("bytes 10-19/100"), "10"),
                ("bytes=-10", 206, Some("bytes 90-99/100"), "10"),
                ("bytes=95-", 206, Some("bytes 95-99/100"), "5"),
                ("bytes=90-1000", 206, Some("bytes 90-99/100"), "10"),
                ("bytes=100-", 416, Some("bytes */100"), ""),
            ] {
                let (got, got_range, got_length, bytes) = send(&[("range", range)]).await;
                assert_eq!(
                    (got, got_range.as_deref()),
                    (status, content_range),
                    "{what} {range}"
                );
                if status != 416 {
                    assert_eq!(got_length.as_deref(), Some(length), "{what} {range}");
                }
                if method == Method::Get && status == 206 {
                    let (a, b) = content_range.unwrap()[6..]
                        .split_once('/')
                        .unwrap()
                        .0
                        .split_once('-')
                        .unwrap();
                    let (a, b): (usize, usize) = (a.parse().unwrap(), b.parse().unwrap());
                    assert_eq!(bytes, body[a..=b], "{what} {range}");
                }
                if method == Method::Get && status == 200 {
                    assert_eq!(bytes, body, "{what} {range}");
                }
                if method == Method::Get && status == 416 {
                    assert!(String::from_utf8_lossy(&bytes).contains("<Code>InvalidRange</Code>"));
                }
            }
        }
    }
}

/// Item: every checksum S3 defines is verified; a mismatch stores nothing (BadDigest), an
/// unknown one is refused, a matching one is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_s3_checksum_is_verified_and_a_mismatch_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = serve(dir.path());
    let (store, draft, now) = signer_for(dir.path(), &gateway);
    let hour = Expiry::new(3600).unwrap();
    let client = reqwest::Client::new();
    // Base64 digests of "123456789".
    let good = [
        ("x-amz-checksum-crc32", "y/Q5Jg=="),
        ("x-amz-checksum-crc32c", "4waSgw=="),
        ("x-amz-checksum-crc64nvme", "rosUhgp5mIg="),
        ("x-amz-checksum-sha1", "98O8HYCOBHMq32eZZczDTKeuNEE="),
        (
            "x-amz-checksum-sha256",
            "FeKw08M4keuw8e9gnsQZQgwg4yDOlMZfvIwzEkSOsiU=",
        ),
        ("content-md5", "JfnnlDI7RTiF9RgfG2JNCw=="),
    ];
    let wrong = [
        ("x-amz-checksum-crc32", "AAAAAA=="),
        ("x-amz-checksum-crc32c", "AAAAAA=="),
        ("x-amz-checksum-crc64nvme", "AAAAAAAAAAA="),
        ("x-amz-checksum-sha1", "AAAAAAAAAAAAAAAAAAAAAAAAAAA="),
        (
            "x-amz-checksum-sha256",
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
        ),
        ("content-md5", "1B2M2Y8AsgTpgAmY7PhCfg=="),
        ("x-amz-checksum-md4", "AAAAAA=="),
    ];
    let put = |key: String, header: (&'static str, &'static str)| {
        let url = store
            .presign(Method::Put, &draft, &self::key(&key), &[header], hour, now)
            .unwrap();
        let request = client.put(url).header(header.0, header.1).body("123456789");
        async move {
            let resp = request.send().await.unwrap();
            (resp.status().as_u16(), resp.text().await.unwrap())
        }
    };
    for (i, header) in wrong.into_iter().enumerate() {
        let key = format!("wrong-{i}");
        let (status, body) = put(key.clone(), header).await;
        let code = if header.0.ends_with("md4") {
            "InvalidRequest"
        } else {
            "BadDigest"
        };
        assert_eq!(status, 400, "{header:?}: {body}");
        assert!(
            body.contains(&format!("<Code>{code}</Code>")),
            "{header:?}: {body}"
        );
        assert!(
            store.head_object(&draft, &key).await.is_err(),
            "{header:?} stored"
        );
    }
    for (i, header) in good.into_iter().enumerate() {
        let key = format!("good-{i}");
        let (status, body) = put(key.clone(), header).await;
        assert_eq!(status, 200, "{header:?}: {body}");
        assert_eq!(store.get_object(&draft, &key).await.unwrap(), b"123456789");
    }
    assert_eq!(tmp_files(&dir.path().join("draftstore-data")), 0);
}

/// Mounts a 4 MiB tmpfs at `at`: `None` (with the reason printed) where mounting is not
/// permitted, which under CI is a failure.
pub(crate) fn small_disk(at: &std::path::Path) -> Option<SmallDisk> {
    let out = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs"])
        .arg(at)
        .output();
    match out {
        Ok(out) if out.status.success() => Some(SmallDisk(at.to_owned())),
        other => {
            let why = format!("cannot mount a tmpfs: {other:?}");
            assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}");
            eprintln!("SKIP: {why}");
            None
        }
    }
}

pub(crate) struct SmallDisk(std::path::PathBuf);

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Item: a full disk. An upload that does not fit is 507 InsufficientStorage XML; a confirm
/// whose copy does not fit is an API error naming the full disk; each failure is logged once
/// with its request id; nothing is left behind and the draft is intact.
#[test]
fn a_full_disk_is_named_logged_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("small");
    std::fs::create_dir(&data).unwrap();
    let Some(_disk) = small_disk(&data) else {
        return;
    };
    let mut gateway = serve_with(
        dir.path(),
        &[("DRAFTSTORE_DATA_DIR", data.to_str().unwrap())],
    );
    let port = gateway.port;
    let file = dir.path().join("big");
    std::fs::write(&file, vec![1_u8; 3 << 20]).unwrap();
    let up = post(port, "/api/v1/upload-url", r#"{"object_name": "big"}"#);
    let (body, code) = curl(&[
        "-X",
        "PUT",
        "--upload-file",
        file.to_str().unwrap(),
        up["upload_url"].as_str().unwrap(),
    ]);
    assert_eq!(code, "200", "3 MiB fit: {body}");

    // Another 3 MiB does not fit beside it.
    let up = post(port, "/api/v1/upload-url", r#"{"object_name": "too-big"}"#);
    let (body, code) = curl(&[
        "-X",
        "PUT",
        "-H",
        "x-request-id: upload-disk-full",
        "--upload-file",
        file.to_str().unwrap(),
        up["upload_url"].as_str().unwrap(),
    ]);
    assert_eq!(code, "507", "{body}");
    assert!(body.contains("<Code>InsufficientStorage</Code>"), "{body}");
    assert_eq!(tmp_files(&data), 0, "the partial upload is gone");

    // Confirm copies 3 MiB into main: no room either.
    let (body, code) = curl(&[
        "-XPOST",
        &format!("http://127.0.0.1:{port}/api/v1/confirm-upload"),
        "-H",
        "content-type: application/json",
        "-H",
        "x-request-id: confirm-disk-full",
        "-d",
        r#"{"object_name": "big"}"#,
    ]);
    assert!(code.starts_with('5'), "{code} {body}");
    assert!(body.contains("disk is full"), "{body}");
    assert_eq!(tmp_files(&data), 0, "the partial copy is gone");
    let (_, code) = curl(&[
        "-XPOST",
        &format!("http://127.0.0.1:{port}/api/v1/download-url"),
        "-H",
        "content-type: application/json",
        "-d",
        r#"{"object_name": "big", "source": "main"}"#,
    ]);
    assert_eq!(code, "404", "nothing in main");
    let down = post(port, "/api/v1/download-url", r#"{"object_name": "big"}"#);
    let got = Command::new("curl")
        .args(["-s", down["download_url"].as_str().unwrap()])
        .output()
        .unwrap()
        .stdout;
    assert_eq!(got.len(), 3 << 20, "the draft is intact");
    let data_files = files_under(&data)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "data"))
        .count();
    assert_eq!(data_files, 1, "no data without metadata");

    gateway.child.kill().unwrap();
    let mut logs = String::new();
    std::io::Read::read_to_string(gateway.child.stderr.as_mut().unwrap(), &mut logs).unwrap();
    for id in ["upload-disk-full", "confirm-disk-full"] {
        let lines: Vec<&str> = logs.lines().filter(|l| l.contains(id)).collect();
        assert_eq!(lines.len(), 1, "one line for {id}:\n{logs}");
        assert!(
            lines[0].contains("disk is full") || lines[0].contains("No space left"),
            "{logs}"
        );
    }
}

/// The store serves drafts from the gateway's own origin, where the upload page and the API
/// live, with the type the uploader declared: an HTML (or SVG) draft must not run as a page of
/// that origin (stored XSS reading the page's API key), and nothing is sniffed. PDFs stay
/// viewable; images keep working in `<img>`, which ignores the CSP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drafts_never_run_as_pages_of_the_gateways_origin() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = serve(dir.path());
    let (store, draft, now) = signer_for(dir.path(), &gateway);
    let hour = Expiry::new(3600).unwrap();
    let client = reqwest::Client::new();
    for (name, content_type, sandboxed) in [
        ("evil.pdf", "text/html", true),
        ("evil.html", "text/html; charset=utf-8", true),
        ("evil.svg", "image/svg+xml", true),
        ("no-type.bin", "", true),
        ("cat.png", "image/png", true),
        ("doc.pdf", "application/pdf", false),
        ("listed.pdf", "application/pdf;,text/html", true),
        ("param.pdf", "application/pdf;a=,text/html", true),
        ("quoted.pdf", "application/pdf;x=\"y\",text/xml", true),
    ] {
        let put = store
            .presign(Method::Put, &draft, &key(name), &[], hour, now)
            .unwrap();
        let mut request = client
            .put(put)
            .body("<script>parent.document.title=sessionStorage.key</script>");
        if !content_type.is_empty() {
            request = request.header("content-type", content_type);
        }
        let stored = request.send().await.unwrap();
        assert_eq!(stored.status(), 200, "{name}");
        let get = store
            .presign(Method::Get, &draft, &key(name), &[], hour, now)
            .unwrap();
        let got = client.get(get).send().await.unwrap();
        assert_eq!(got.status(), 200, "{name}");
        let headers = got.headers();
        assert_eq!(
            headers
                .get("x-content-type-options")
                .and_then(|v| v.to_str().ok()),
            Some("nosniff"),
            "{name}"
        );
        let csp = headers
            .get("content-security-policy")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert_eq!(
            csp.split(';').any(|d| d.trim() == "sandbox"),
            sandboxed,
            "{name} ({content_type}): content-security-policy {csp:?}"
        );
    }
}
