//! Each attack of a hostile client, scaled down (a few places, a few streams) and run one at a
//! time against the real binary on the embedded store, with its outcome: probes and other
//! clients keep being answered, idle and silent connections are closed, look-alike protocols
//! are refused, signals do what the README says, and request text reaches the log cut and
//! escaped. Attacker and victim connect from distinct 127.x.y.z addresses.

use bytes::Bytes;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// One attack at a time: they measure who gets answered, which other load would blur.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const ATTACKER: [u8; 4] = [127, 0, 0, 2];
const VICTIM: [u8; 4] = [127, 0, 0, 3];
const SCRAPER: [u8; 4] = [127, 0, 0, 4];

struct Gateway {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Gateway {
    /// The exit status once the process has ended, polled every 20 ms; panics with `why` (and
    /// the log) if it is still running after `limit`.
    async fn exit_within(&mut self, limit: Duration, why: &str) -> std::process::ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(started.elapsed() < limit, "{why}: {}", self.log());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `gateway serve` on the embedded store in a new folder, its log in a file.
    fn start(env: &[(&str, &str)]) -> Self {
        Self::start_with_files(env, None)
    }

    /// The same with at most `files` open descriptors (`ulimit -n`), when given.
    fn start_with_files(env: &[(&str, &str)], files: Option<u32>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("gateway.log");
        let limit = files.map_or_else(String::new, |n| format!("ulimit -n {n} && "));
        let (child, port) = crate::harness::spawn_on_free_port(
            |port| {
                Command::new("sh")
                    .arg("-c")
                    .arg(format!("{limit}exec \"$0\" \"$@\""))
                    .arg(env!("CARGO_BIN_EXE_gateway"))
                    .env_clear()
                    .envs(env.iter().copied())
                    .current_dir(dir.path())
                    .args([
                        "serve",
                        "--bind",
                        "127.0.0.1",
                        "--http-port",
                        &port.to_string(),
                    ])
                    .stderr(std::fs::File::create(&log).unwrap())
                    .stdout(Stdio::null())
                    .spawn()
                    .unwrap()
            },
            Duration::from_secs(20),
        );
        Self {
            child,
            port,
            log,
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap()
    }

    fn signal(&self, name: &str) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill")
            .args([&format!("-{name}"), &pid])
            .status()
            .unwrap()
            .success());
    }

    /// A TCP connection from `source`.
    async fn connect_from(&self, source: [u8; 4]) -> TcpStream {
        self.connect_with(source, None).await
    }

    /// A connection from `source`, with a `receive_buffer`-byte socket when given.
    async fn connect_with(&self, source: [u8; 4], receive_buffer: Option<u32>) -> TcpStream {
        let socket = TcpSocket::new_v4().unwrap();
        if let Some(bytes) = receive_buffer {
            socket.set_recv_buffer_size(bytes).unwrap();
        }
        socket
            .bind(SocketAddr::new(IpAddr::from(source), 0))
            .unwrap();
        socket
            .connect(SocketAddr::from(([127, 0, 0, 1], self.port)))
            .await
            .unwrap()
    }

    /// An h2c connection from `source`.
    async fn h2_from(&self, source: [u8; 4]) -> h2::client::SendRequest<Bytes> {
        let (client, connection) = h2::client::handshake(self.connect_from(source).await)
            .await
            .unwrap();
        tokio::spawn(connection);
        client
    }

    /// An HTTP client whose connections come from `source`.
    fn client_from(source: [u8; 4]) -> reqwest::Client {
        reqwest::Client::builder()
            .local_address(IpAddr::from(source))
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap()
    }
}

/// What the attacker's slow-body streams were answered, as they arrive.
#[derive(Default)]
struct Answers {
    shed: AtomicUsize,
    body_timeout: AtomicUsize,
    other: AtomicUsize,
    /// Streams that got no answer at all (reset, or the connection broke).
    unanswered: AtomicUsize,
}

/// Opens `streams` upload-url calls on one h2c connection from `source`, each announcing a
/// 100-byte body it never sends; the streams stay open until the server answers.
async fn slow_bodies(
    gateway: &Gateway,
    source: [u8; 4],
    streams: usize,
    key: Option<&str>,
    answers: &Arc<Answers>,
) {
    let mut client = gateway.h2_from(source).await;
    for _ in 0..streams {
        client = client.ready().await.unwrap();
        let mut request = http::Request::post(gateway.url("/api/v1/upload-url"))
            .header("content-type", "application/json")
            .header("content-length", "100");
        if let Some(key) = key {
            request = request.header("authorization", format!("Bearer {key}"));
        }
        let (response, body) = client
            .send_request(request.body(()).unwrap(), false)
            .unwrap();
        let answers = answers.clone();
        tokio::spawn(async move {
            let _body_never_sent = body;
            // Counted, not unwrapped: a panic in this detached task would not fail the test.
            let Ok(response) = response.await else {
                answers.unanswered.fetch_add(1, Ordering::SeqCst);
                return;
            };
            let counter = match response.status().as_u16() {
                503 => {
                    assert_eq!(response.headers()["retry-after"], "1");
                    &answers.shed
                }
                408 => &answers.body_timeout,
                _ => &answers.other,
            };
            counter.fetch_add(1, Ordering::SeqCst);
        });
    }
}

/// Waits (up to 20 s) until `done` holds.
async fn eventually(what: &str, done: impl Fn() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < Duration::from_secs(20), "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The starvation attack: slow bodies on many streams. The attacker's bodies are read (never
/// holding a place) up to its share of the bodies read at once, until the body timeout (3 s),
/// and the streams past it are shed; meanwhile `/health` and another client's upload-url are
/// answered (each within 2 s, before the attack's timeout).
async fn starvation(key: Option<(&str, &str)>, env: &[(&str, &str)]) {
    let mut all = vec![
        ("DRAFTSTORE_MAX_IN_FLIGHT", "8"),
        ("DRAFTSTORE_HEADER_TIMEOUT_MS", "3000"),
    ];
    all.extend_from_slice(env);
    let gateway = Gateway::start(&all);
    let answers = Arc::new(Answers::default());
    let (attacker_key, victim_key) = match key {
        Some((a, v)) => (Some(a), Some(v)),
        None => (None, None),
    };
    slow_bodies(&gateway, ATTACKER, 16, attacker_key, &answers).await;
    // 8 bodies read at once, so the attacker alone may have 8 / 2 = 4: 12 are shed at once.
    eventually("the streams past the attacker's share are shed", || {
        answers.shed.load(Ordering::SeqCst) == 12
    })
    .await;
    let victim = Gateway::client_from(VICTIM);
    let health = victim.get(gateway.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let mut upload = victim
        .post(gateway.url("/api/v1/upload-url"))
        .json(&serde_json::json!({"object_name": "victim.txt"}));
    if let Some(key) = victim_key {
        upload = upload.bearer_auth(key);
    }
    let upload = upload.send().await.unwrap();
    assert_eq!(upload.status(), 200, "another client is served");
    assert_eq!(
        answers.body_timeout.load(Ordering::SeqCst),
        0,
        "the attacker's bodies were still being read while the others were answered"
    );
    eventually("the slow bodies end in 408", || {
        answers.body_timeout.load(Ordering::SeqCst) == 4
    })
    .await;
    assert_eq!(answers.other.load(Ordering::SeqCst), 0);
    assert_eq!(answers.unanswered.load(Ordering::SeqCst), 0);
    let log = gateway.log();
    assert!(
        !log.contains("ERROR"),
        "client faults are not errors: {log}"
    );
    assert!(
        log.contains("BODY_TIMEOUT") && log.contains("OVERLOADED"),
        "{log}"
    );
}

/// Keeps `streams` upload-url calls in flight on `client` (as `h2load -m` does), counting the
/// answers in `answered`, until `stop`.
async fn flood(
    client: h2::client::SendRequest<Bytes>,
    url: String,
    streams: usize,
    answered: Arc<AtomicUsize>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) {
    use futures_util::stream::{FuturesUnordered, StreamExt};
    let mut in_flight = FuturesUnordered::new();
    while !stop.load(Ordering::SeqCst) {
        while in_flight.len() < streams {
            let Ok(mut ready) = client.clone().ready().await else {
                return;
            };
            let request = http::Request::post(url.as_str())
                .header("content-type", "application/json")
                .body(())
                .unwrap();
            let Ok((response, mut body)) = ready.send_request(request, false) else {
                return;
            };
            let _ = body.send_data(Bytes::from_static(br#"{"object_name":"flood.txt"}"#), true);
            in_flight.push(response);
        }
        if in_flight.next().await.is_some() {
            answered.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// One address floods HTTP/2 streams (8 connections keeping 100 upload-url calls in flight
/// each, as `h2load -c 8 -m 100` does), far past the cap on requests open on all connections
/// (2 x MAX_IN_FLIGHT = 16): it holds at most its half of them, and a client on another address
/// is answered every time meanwhile (each of its calls found the whole cap taken before).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_flood_from_one_address_leaves_room_for_other_clients() {
    let _serial = SERIAL.lock().await;
    let gateway = Gateway::start(&[("DRAFTSTORE_MAX_IN_FLIGHT", "8")]);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));
    let mut floods = Vec::new();
    for _ in 0..8 {
        let client = gateway.h2_from(ATTACKER).await;
        floods.push(tokio::spawn(flood(
            client,
            gateway.url("/api/v1/upload-url"),
            100,
            answered.clone(),
            stop.clone(),
        )));
    }
    eventually("the flood is answered", || {
        answered.load(Ordering::SeqCst) > 2000
    })
    .await;
    let victim = reqwest::Client::builder()
        .local_address(IpAddr::from(VICTIM))
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut refused = Vec::new();
    for i in 0..20 {
        let upload = victim
            .post(gateway.url("/api/v1/upload-url"))
            .json(&serde_json::json!({"object_name": format!("victim-{i}.txt")}))
            .send()
            .await
            .unwrap();
        if upload.status() != 200 {
            refused.push(upload.text().await.unwrap_or_default());
        }
    }
    let during = answered.load(Ordering::SeqCst);
    stop.store(true, Ordering::SeqCst);
    for flood in floods {
        flood.abort();
    }
    assert!(
        refused.is_empty(),
        "{} of 20 refused during the flood: {refused:?}",
        refused.len()
    );
    assert!(during > 2000, "the flood ran: {during} answered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_bodies_cannot_starve_probes_or_other_clients() {
    let _serial = SERIAL.lock().await;
    starvation(None, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_bodies_with_a_tenant_key_cannot_starve_other_tenants() {
    let _serial = SERIAL.lock().await;
    let hash = |key: &str| hex::encode(<sha2::Sha256 as sha2::Digest>::digest(key.as_bytes()));
    let keys = format!(
        "attacker {}\nvictim {}",
        hash("attacker-key"),
        hash("victim-key")
    );
    starvation(
        Some(("attacker-key", "victim-key")),
        &[
            ("DRAFTSTORE_AUTH", "api-keys"),
            ("DRAFTSTORE_API_KEYS", &keys),
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_idle_connections_are_closed() {
    let _serial = SERIAL.lock().await;
    let gateway = Gateway::start(&[
        ("DRAFTSTORE_HEADER_TIMEOUT_MS", "500"),
        ("DRAFTSTORE_IDLE_TIMEOUT_MS", "1000"),
    ]);
    // A connection that never sends a byte: closed (EOF) after the header timeout.
    let mut silent = gateway.connect_from(ATTACKER).await;
    let mut byte = [0_u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(10), silent.read(&mut byte)).await;
    assert!(
        matches!(read, Ok(Ok(0) | Err(_))),
        "a silent connection is closed: {read:?}"
    );
    // An h2c connection idle after one request: GOAWAY, then the connection ends.
    let (mut client, connection) = h2::client::handshake(gateway.connect_from(ATTACKER).await)
        .await
        .unwrap();
    let connection = tokio::spawn(connection);
    let request = http::Request::get(gateway.url("/health")).body(()).unwrap();
    let (response, _) = client.send_request(request, true).unwrap();
    assert_eq!(response.await.unwrap().status(), 200);
    let ended = tokio::time::timeout(Duration::from_secs(10), connection).await;
    assert!(ended.is_ok(), "an idle h2c connection is closed");
    // The server still serves new connections.
    let health = Gateway::client_from(VICTIM)
        .get(gateway.url("/health"))
        .send()
        .await;
    assert_eq!(health.unwrap().status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_look_alike_media_types_are_refused() {
    let _serial = SERIAL.lock().await;
    let gateway = Gateway::start(&[]);
    let mut client = gateway.h2_from(ATTACKER).await;
    let path = gateway.url("/draft.v1.DraftService/GetUploadURL");
    let mut call = |method: &str, content_type: &str| {
        let request = http::Request::builder()
            .method(method)
            .uri(&path)
            .header("content-type", content_type)
            .body(())
            .unwrap();
        client.send_request(request, true).unwrap().0
    };
    // A method path answers in Connect's error shape (the protocol a browser client on these
    // paths reads), naming the media types it takes.
    for (content_type, code) in [
        ("application/grpc-web+json", "\"code\":\"invalid_argument\""),
        ("application/grpc+json", "\"code\":\"invalid_argument\""),
        ("application/grpcfoo", "\"code\":\"invalid_argument\""),
    ] {
        let response = call("POST", content_type).await.unwrap();
        assert_eq!(response.status(), 415, "{content_type}");
        assert!(
            response.headers().get("grpc-status").is_none(),
            "not answered as gRPC"
        );
        let mut body = response.into_body();
        let mut text = Vec::new();
        while let Some(chunk) = body.data().await {
            text.extend_from_slice(&chunk.unwrap());
        }
        let text = String::from_utf8(text).unwrap();
        assert!(text.contains(code), "{content_type}: {text}");
        assert!(
            text.contains("application/grpc+proto"),
            "{content_type}: {text}"
        );
    }
    let get = call("GET", "application/grpc").await.unwrap();
    assert_eq!(get.status(), 405);
    assert_eq!(get.headers()["allow"], "POST");
    // The exact types, with parameters and in any case, are gRPC.
    let native = call("POST", "Application/GRPC+proto; charset=x")
        .await
        .unwrap();
    assert_eq!(native.status(), 200);
    assert!(
        native.headers().contains_key("grpc-status"),
        "gRPC status, in trailers-only form"
    );
}

/// The status line the server answers a raw HTTP/1.1 request `head` with.
async fn status_line(gateway: &Gateway, head: &[u8]) -> String {
    let mut stream = gateway.connect_from(ATTACKER).await;
    stream.write_all(head).await.unwrap();
    let mut answer = vec![0_u8; 256];
    let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut answer))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(answer.get(..n).unwrap()).into_owned();
    text.lines().next().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_requests_need_exactly_one_host() {
    let _serial = SERIAL.lock().await;
    let gateway = Gateway::start(&[]);
    for head in [
        &b"GET /health HTTP/1.1\r\n\r\n"[..],
        b"GET /health HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        b"GET /health HTTP/1.1\r\nHost: a b\r\n\r\n",
        b"GET /health HTTP/1.1\r\nHost: user@a\r\n\r\n",
    ] {
        assert_eq!(
            status_line(&gateway, head).await,
            "HTTP/1.1 400 Bad Request"
        );
    }
    let one = status_line(&gateway, b"GET /health HTTP/1.1\r\nHost: a\r\n\r\n").await;
    assert_eq!(one, "HTTP/1.1 200 OK");
    assert!(gateway.log().contains("BAD_HOST"));
}

/// One address opening as many connections as the server takes (`DRAFTSTORE_MAX_CONNECTIONS`
/// = 20), keeping each alive with a request: it holds at most half of them, the others closed
/// at once, and a client on another address is still answered (before, it waited in the
/// kernel's backlog until the attacker let go).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_hold_every_connection() {
    let _serial = SERIAL.lock().await;
    let gateway = Gateway::start(&[("DRAFTSTORE_MAX_CONNECTIONS", "20")]);
    let mut held = Vec::new();
    let mut closed = 0;
    for _ in 0..20 {
        let mut tcp = gateway.connect_from(ATTACKER).await;
        let _ = tcp
            .write_all(b"GET /health HTTP/1.1\r\nHost: a\r\n\r\n")
            .await;
        let mut answer = [0_u8; 12];
        match tokio::time::timeout(Duration::from_secs(5), tcp.read_exact(&mut answer)).await {
            Ok(Ok(_)) if answer.starts_with(b"HTTP/1.1 200") => held.push(tcp),
            Ok(_) => closed += 1,
            Err(_) => panic!("a connection neither answered nor closed"),
        }
    }
    assert_eq!((held.len(), closed), (10, 10), "half held, half closed");
    let health = Gateway::client_from(VICTIM)
        .get(gateway.url("/health"))
        .send()
        .await
        .expect("another address is served");
    assert_eq!(health.status(), 200);
    assert!(gateway.log().contains("holds its share of the connections"));
}

/// A flood of client faults (1000 unknown paths, 100 streams at a time, no credentials needed)
/// writes at most 100 INFO lines a second; the lines left out are counted in one line of a
/// later second, and the metrics count every request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_client_faults_cannot_drive_the_logs_volume() {
    use futures_util::stream::{FuturesUnordered, StreamExt};
    let _serial = SERIAL.lock().await;
    let gateway = Gateway::start(&[]);
    let client = gateway.h2_from(ATTACKER).await;
    // A first call, so that the client has the server's SETTINGS (its stream cap, 100) before
    // the flood: opened before them, streams past the cap are refused (`REFUSED_STREAM`).
    let first = http::Request::get(gateway.url("/health")).body(()).unwrap();
    assert_eq!(crate::harness::h2_send(&client, first).await.status(), 200);
    let started = Instant::now();
    let mut calls: FuturesUnordered<_> = (0..1000)
        .map(|i| {
            let request = http::Request::get(gateway.url(&format!("/api/v1/nope-{i}")))
                .body(())
                .unwrap();
            crate::harness::h2_send(&client, request)
        })
        .collect();
    let mut not_found = 0;
    while let Some(response) = calls.next().await {
        not_found += usize::from(response.status() == 404);
    }
    let seconds = started.elapsed().as_secs() + 1;
    assert_eq!(not_found, 1000);
    // One more fault in a later second says how many were left out.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let late = Gateway::client_from(VICTIM)
        .get(gateway.url("/api/v1/nope-late"))
        .send()
        .await
        .unwrap();
    assert_eq!(late.status(), 404);
    let log = gateway.log();
    let written = log.lines().filter(|l| l.contains("status=404")).count();
    assert!(
        written as u64 <= 100 * (seconds + 1) + 1,
        "{written} lines in about {seconds} s"
    );
    let left_out: u64 = log
        .lines()
        .filter_map(|l| l.split("left_out=").nth(1))
        .filter_map(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    assert_eq!(
        written as u64 + left_out,
        1001,
        "every fault is written or counted: {written} written, {left_out} left out"
    );
    let metrics =
        crate::harness::text_of(Gateway::client_from(VICTIM).get(gateway.url("/metrics"))).await;
    let counted: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("draftstore_requests_total") && l.contains("status=\"404\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(counted, 1001.0, "{metrics}");
}

/// Client text in a failure's message cannot pass for the line's fields: text lines quote the
/// message (its own quotes escaped); JSON lines hold it as one string, with no quotes added.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_quoting_client_text_stays_one_field() {
    let _serial = SERIAL.lock().await;
    let forged = r#"x" request_id=deadbeef status=200"#;
    for json in [false, true] {
        let gateway =
            Gateway::start(&[("DRAFTSTORE_LOG_JSON", if json { "true" } else { "false" })]);
        let response = Gateway::client_from(VICTIM)
            .post(gateway.url("/api/v1/download-url"))
            .header("x-request-id", "quoted-1")
            .json(&serde_json::json!({"object_name": forged}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404);
        let log = gateway.log();
        let line = log
            .lines()
            .find(|l| l.contains("quoted-1") && l.contains("404"))
            .unwrap_or_else(|| panic!("not logged: {log}"));
        if json {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            let message = value["fields"]["message"].as_str().unwrap();
            assert!(
                message.contains(forged) && !message.starts_with('"'),
                "{line}"
            );
        } else {
            assert!(
                line.contains(r#"x\u{0022} request_id=deadbeef status=200"#),
                "{line}"
            );
            assert_eq!(line.matches("request_id=").count(), 2, "{line}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_methods_and_separators_are_logged_cut_and_escaped() {
    let _serial = SERIAL.lock().await;
    let gateway = Gateway::start(&[]);
    let long = format!(
        "{} /health HTTP/1.1\r\nHost: a\r\n\r\n",
        "X".repeat(200_000)
    );
    assert_eq!(
        status_line(&gateway, long.as_bytes()).await,
        "HTTP/1.1 405 Method Not Allowed"
    );
    // A raw U+2028 cannot be in a request line (400 from the HTTP parser), and object names
    // holding one are refused by name rules that only name its code point; a bad enum value
    // still carries the client's text into the error message, and so into the log.
    let forged = "a\u{2028}2026-01-01 ERROR forged\u{202E}b";
    let response = Gateway::client_from(VICTIM)
        .post(gateway.url("/api/v1/download-url"))
        .json(&serde_json::json!({"object_name": "a.txt", "source": forged}))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_client_error(), "{}", response.status());
    let log = gateway.log();
    assert!(
        log.contains("… [200000 bytes]"),
        "the method's length is noted: {log}"
    );
    assert!(
        log.lines().all(|line| line.len() < 4096),
        "no line holds the whole method"
    );
    assert!(
        log.contains("a\\u{2028}2026-01-01 ERROR forged\\u{202E}b"),
        "separators escaped: {log}"
    );
    assert!(
        !log.contains('\u{2028}') && !log.contains('\u{202E}'),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_is_survived_and_a_second_sigterm_ends_the_drain() {
    let _serial = SERIAL.lock().await;
    let gateway = Gateway::start(&[
        ("DRAFTSTORE_SHUTDOWN_GRACE_MS", "60000"),
        ("DRAFTSTORE_HEADER_TIMEOUT_MS", "60000"),
    ]);
    gateway.signal("HUP");
    let client = Gateway::client_from(VICTIM);
    eventually("SIGHUP is logged", || gateway.log().contains("SIGHUP")).await;
    let health = client.get(gateway.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), 200, "still serving after SIGHUP");

    // A request in flight (its body never comes) keeps the drain going after one SIGTERM.
    let answers = Arc::new(Answers::default());
    slow_bodies(&gateway, ATTACKER, 1, None, &answers).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    gateway.signal("TERM");
    eventually("the drain starts", || {
        gateway.log().contains("shutting down")
    })
    .await;
    let mut gateway = gateway;
    assert!(
        gateway.child.try_wait().unwrap().is_none(),
        "draining, not gone"
    );
    gateway.signal("TERM");
    let status = gateway
        .exit_within(Duration::from_secs(20), "the second SIGTERM ends it")
        .await;
    assert_eq!(status.code(), Some(75), "a cut drain is exit 75");
    let log = gateway.log();
    assert!(
        log.contains("second signal") && log.contains("cut=1"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_out_of_descriptors_is_logged_once_a_second_and_accepting_resumes() {
    let _serial = SERIAL.lock().await;
    // 64 descriptors, and a connection cap above them, so accepting fails with EMFILE.
    let gateway = Gateway::start_with_files(&[("DRAFTSTORE_MAX_CONNECTIONS", "1000")], Some(64));
    let started = Instant::now();
    let mut held = Vec::new();
    for _ in 0..120 {
        held.push(gateway.connect_from(ATTACKER).await);
    }
    eventually("accept failures are logged", || {
        gateway.log().contains("accept failed")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let lines = gateway
        .log()
        .lines()
        .filter(|l| l.contains("accept failed"))
        .count();
    let seconds = started.elapsed().as_secs() as usize;
    assert!(
        lines <= seconds + 1,
        "{lines} lines in {seconds} s: at most one a second"
    );
    assert!(gateway.log().contains("failures="), "with a count");
    // Descriptors come free: the server accepts again.
    drop(held);
    let client = Gateway::client_from(VICTIM);
    let started = Instant::now();
    loop {
        if let Ok(response) = client.get(gateway.url("/health")).send().await {
            assert_eq!(response.status(), 200);
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "accepting resumed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickling_body_holds_no_place() {
    let _serial = SERIAL.lock().await;
    let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"acme-key"));
    let keys = format!("acme {hash}");
    let gateway = Gateway::start(&[
        ("DRAFTSTORE_MAX_IN_FLIGHT", "8"),
        ("DRAFTSTORE_HEADER_TIMEOUT_MS", "3000"),
        ("DRAFTSTORE_AUTH", "api-keys"),
        ("DRAFTSTORE_API_KEYS", &keys),
    ]);
    // The tenant's share of the 8 places is 4, and 4 of its bodies trickle in from one
    // address: were a body to hold a place while it arrives, the tenant would have none left.
    let answers = Arc::new(Answers::default());
    slow_bodies(&gateway, ATTACKER, 4, Some("acme-key"), &answers).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let other_address = Gateway::client_from([127, 0, 0, 4]);
    for _ in 0..4 {
        let upload = other_address
            .post(gateway.url("/api/v1/upload-url"))
            .bearer_auth("acme-key")
            .json(&serde_json::json!({"object_name": "a.txt"}))
            .send()
            .await
            .unwrap();
        assert_eq!(upload.status(), 200, "the tenant's places are free");
    }
    assert_eq!(
        answers.body_timeout.load(Ordering::SeqCst) + answers.shed.load(Ordering::SeqCst),
        0,
        "the trickling bodies were still being read"
    );
    eventually("the trickling bodies end in 408", || {
        answers.body_timeout.load(Ordering::SeqCst) == 4
    })
    .await;
}

/// What a PUT was answered: status, `Retry-After`, body.
type Answered = (u16, Option<String>, String);

/// Opens `streams` PUTs of `url` on one h2c connection from `source`, each announcing 1000
/// bytes it never sends; returns the answers of those answered within 2 s.
async fn stalled_puts(
    gateway: &Gateway,
    source: [u8; 4],
    url: &str,
    streams: usize,
) -> Vec<Answered> {
    let mut client = gateway.h2_from(source).await;
    let mut pending = Vec::new();
    for _ in 0..streams {
        client = client.ready().await.unwrap();
        let request = http::Request::put(url)
            .header("content-length", "1000")
            .body(())
            .unwrap();
        let (response, body) = client.send_request(request, false).unwrap();
        // The body is never sent: the stream stays open until the store's stall timeout.
        std::mem::forget(body);
        pending.push(response);
    }
    let mut answered = Vec::new();
    for response in pending {
        if let Ok(Ok(response)) = tokio::time::timeout(Duration::from_secs(2), response).await {
            let status = response.status().as_u16();
            let retry = response
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
            let mut body = response.into_body();
            let mut text = Vec::new();
            while let Some(chunk) = body.data().await {
                text.extend_from_slice(&chunk.unwrap());
            }
            answered.push((status, retry, String::from_utf8(text).unwrap()));
        }
    }
    answered
}

/// A fresh presigned PUT URL for `name`.
async fn upload_url(gateway: &Gateway, name: &str) -> String {
    let (status, answer) = crate::harness::json_answer(
        Gateway::client_from(VICTIM)
            .post(gateway.url("/api/v1/upload-url"))
            .json(&serde_json::json!({"object_name": name})),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    answer["upload_url"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_presigned_url_or_peer_takes_every_transfer_slot() {
    let _serial = SERIAL.lock().await;
    // 8 transfer slots: one URL, or one peer, may hold 8 / 2 = 4 alone.
    let gateway = Gateway::start(&[("DRAFTSTORE_MAX_IN_FLIGHT", "8")]);
    let crowded = upload_url(&gateway, "crowded.bin").await;
    let answered = stalled_puts(&gateway, ATTACKER, &crowded, 6).await;
    assert_eq!(
        answered.len(),
        2,
        "4 transfers hold slots, 2 are shed: {answered:?}"
    );
    for (status, retry, body) in &answered {
        assert_eq!(*status, 503);
        assert_eq!(retry.as_deref(), Some("1"));
        assert!(body.contains("<Code>SlowDown</Code>"), "{body}");
    }
    // The crowded URL is at its share, for anyone; another URL, from another peer, uploads.
    let (status, _, body) = stalled_puts(&gateway, VICTIM, &crowded, 1)
        .await
        .pop()
        .unwrap();
    assert_eq!(status, 503, "{body}");
    let other = upload_url(&gateway, "other.bin").await;
    let put = Gateway::client_from(VICTIM)
        .put(&other)
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200, "another URL is served");
    // The attacker's address holds its share too: a URL of its own does not help it.
    let own = upload_url(&gateway, "own.bin").await;
    let (status, _, body) = stalled_puts(&gateway, ATTACKER, &own, 1)
        .await
        .pop()
        .unwrap();
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("SlowDown"), "{body}");
    let health = Gateway::client_from(VICTIM)
        .get(gateway.url("/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    // Every transfer shed (2 + 1 + 1) is counted and logged at INFO with its peer.
    let metrics =
        crate::harness::text_of(Gateway::client_from(VICTIM).get(gateway.url("/metrics"))).await;
    let shed = metrics
        .lines()
        .find_map(|l| l.strip_prefix("draftstore_transfers_shed_total "))
        .unwrap_or_else(|| panic!("no shed counter: {metrics}"));
    assert_eq!(shed.trim(), "4", "{metrics}");
    let log = gateway.log();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("INFO") && l.contains("was shed (503 SlowDown)"))
        .collect();
    assert_eq!(lines.len(), 4, "{log}");
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.contains("peer=127.0.0.2"))
            .count(),
        3,
        "{log}"
    );
    assert!(lines.iter().all(|l| l.contains("request_id=")), "{lines:?}");
}

/// One HTTP/2 frame: its header (length, type, flags, stream) and payload.
fn h2_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap().to_be_bytes();
    let mut frame = vec![len[1], len[2], len[3], kind, flags];
    frame.extend_from_slice(&stream.to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

/// Reads one HTTP/2 frame from `tcp`: type, flags, stream, payload (`None` at the end).
async fn read_h2_frame(tcp: &mut TcpStream) -> Option<(u8, u8, u32, Vec<u8>)> {
    let mut head = [0_u8; 9];
    tcp.read_exact(&mut head).await.ok()?;
    let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
    let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
    let mut payload = vec![0_u8; len];
    tcp.read_exact(&mut payload).await.ok()?;
    Some((head[3], head[4], stream, payload))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_answers_the_drains_ping_does_not_hold_the_drain() {
    let _serial = SERIAL.lock().await;
    let mut gateway = Gateway::start(&[
        ("DRAFTSTORE_SHUTDOWN_GRACE_MS", "30000"),
        ("DRAFTSTORE_HEADER_TIMEOUT_MS", "60000"),
        // The stall limit: how long a connection with nothing left is waited for.
        ("DRAFTSTORE_IDLE_TIMEOUT_MS", "2000"),
    ]);
    // A raw h2c client: one GET /health answered whole, then it reads and answers nothing.
    let mut tcp = gateway.connect_from(ATTACKER).await;
    let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    hello.extend(h2_frame(0x4, 0, 0, &[]));
    let authority = b"127.0.0.1";
    // HPACK: :method GET, :scheme http, :path /health, :authority 127.0.0.1.
    let mut block = vec![0x82, 0x86, 0x44, 7];
    block.extend_from_slice(b"/health");
    block.extend([0x41, u8::try_from(authority.len()).unwrap()]);
    block.extend_from_slice(authority);
    hello.extend(h2_frame(0x1, 0x5, 1, &block));
    tcp.write_all(&hello).await.unwrap();
    let answered = tokio::time::timeout(Duration::from_secs(10), async {
        let mut status = None;
        while let Some((kind, flags, stream, payload)) = read_h2_frame(&mut tcp).await {
            match (kind, stream) {
                (0x4, 0) if flags & 1 == 0 => {
                    tcp.write_all(&h2_frame(0x4, 1, 0, &[])).await.unwrap();
                }
                // `:status 200` is static index 8.
                (0x1, 1) => status = payload.first().copied(),
                (0x0, 1) if flags & 1 == 1 => return status,
                _ => {}
            }
        }
        None
    })
    .await
    .expect("answered within 10 s");
    assert_eq!(answered, Some(0x88), "GET /health answered 200 whole");
    tokio::time::sleep(Duration::from_millis(200)).await;
    gateway.signal("TERM");
    let started = Instant::now();
    let status = gateway
        .exit_within(
            Duration::from_secs(20),
            "the drain waits for the PING's answer",
        )
        .await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "{took:?}");
    let log = gateway.log();
    assert_eq!(status.code(), Some(0), "nothing was cut off: {log}");
    assert!(log.contains("all connections closed"), "{log}");
    drop(tcp);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_answer_reset_at_the_stall_limit_is_logged_with_its_request() {
    let _serial = SERIAL.lock().await;
    let gateway = Gateway::start(&[("DRAFTSTORE_IDLE_TIMEOUT_MS", "1000")]);
    let (client, connection) =
        crate::harness::h2_windowed(gateway.connect_from(ATTACKER).await, 0).await;
    let request = http::Request::get(gateway.url("/health"))
        .header("x-request-id", "stalled-health-7")
        .body(())
        .unwrap();
    let response = crate::harness::h2_send(&client, request).await;
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let how = tokio::time::timeout(Duration::from_secs(10), body.data())
        .await
        .expect("reset within ten stall limits");
    assert!(
        matches!(&how, Some(Err(e)) if e.reason() == Some(h2::Reason::CANCEL)),
        "{how:?}"
    );
    eventually("the reset is logged", || {
        gateway.log().contains("STREAM_IDLE")
    })
    .await;
    let log = gateway.log();
    let line = log
        .lines()
        .find(|l| l.contains("STREAM_IDLE"))
        .unwrap_or_default();
    for field in ["request_id=stalled-health-7", "method=GET", "path=/health"] {
        assert!(line.contains(field), "{field} missing: {line}");
    }
    connection.abort();
}

/// Reads from `stream` until `end` has arrived (or EOF); returns what came.
async fn read_until(stream: &mut TcpStream, end: &str) -> String {
    let mut text = Vec::new();
    let mut buf = [0_u8; 1024];
    while !String::from_utf8_lossy(&text).contains(end) {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .unwrap()
            .unwrap_or(0);
        if n == 0 {
            break;
        }
        text.extend_from_slice(buf.get(..n).unwrap());
    }
    String::from_utf8_lossy(&text).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_keep_alive_follows_the_idle_timeout_not_the_header_timeout() {
    let _serial = SERIAL.lock().await;
    let gateway = Gateway::start(&[
        ("DRAFTSTORE_HEADER_TIMEOUT_MS", "500"),
        ("DRAFTSTORE_IDLE_TIMEOUT_MS", "4000"),
    ]);
    let request = b"GET /health HTTP/1.1\r\nHost: a\r\n\r\n";
    let mut kept = gateway.connect_from(VICTIM).await;
    kept.write_all(request).await.unwrap();
    assert!(read_until(&mut kept, "\"ok\"}")
        .await
        .starts_with("HTTP/1.1 200"));
    // Idle for four header timeouts, well within the idle timeout: the connection serves on.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    kept.write_all(request).await.unwrap();
    let again = read_until(&mut kept, "\"ok\"}").await;
    assert!(again.starts_with("HTTP/1.1 200"), "kept alive: {again:?}");
    // Then idle past the idle timeout: closed.
    let mut byte = [0_u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(15), kept.read(&mut byte)).await;
    assert!(
        matches!(read, Ok(Ok(0) | Err(_))),
        "closed when idle: {read:?}"
    );
    // A new connection sending half a head is closed (its head had the header timeout).
    let mut half = gateway.connect_from(ATTACKER).await;
    half.write_all(b"GET /health HTTP/1.1\r\n").await.unwrap();
    let read = tokio::time::timeout(Duration::from_secs(10), half.read(&mut byte)).await;
    assert!(
        matches!(read, Ok(Ok(0) | Err(_))),
        "a half head is cut: {read:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_that_cuts_off_answers_still_being_sent_exits_75() {
    let _serial = SERIAL.lock().await;
    let mut gateway = Gateway::start(&[("DRAFTSTORE_SHUTDOWN_GRACE_MS", "1000")]);
    // Three answers logged and counted as answered, their bodies still waiting for a client
    // that gives no window.
    let (client, connection) =
        crate::harness::h2_windowed(gateway.connect_from(ATTACKER).await, 0).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let request = http::Request::get(gateway.url("/health")).body(()).unwrap();
        let response = crate::harness::h2_send(&client, request).await;
        assert_eq!(response.status(), 200);
        held.push(response.into_body());
    }
    // Connections with no request (silent, half a head) are not answering: not counted.
    let silent = gateway.connect_from(VICTIM).await;
    let mut half = gateway.connect_from(VICTIM).await;
    half.write_all(b"GET /health HTTP/1.1\r\nHo").await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    gateway.signal("TERM");
    let status = gateway
        .exit_within(Duration::from_secs(20), "the grace period ends the drain")
        .await;
    let log = gateway.log();
    assert_eq!(status.code(), Some(75), "answers were cut off: {log}");
    assert!(log.contains("connections=1"), "{log}");
    assert!(!log.contains("no request was cut off"), "{log}");
    connection.abort();
    drop((silent, half));
}

/// A presigned download URL of a new `size`-byte draft named `name`.
async fn download_url(gateway: &Gateway, name: &str, size: usize) -> String {
    let body: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    let put = Gateway::client_from(VICTIM)
        .put(upload_url(gateway, name).await)
        .timeout(Duration::from_secs(20))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    let (status, answer) = crate::harness::json_answer(
        Gateway::client_from(VICTIM)
            .post(gateway.url("/api/v1/download-url"))
            .json(&serde_json::json!({"object_name": name, "source": "draft"})),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    answer["download_url"].as_str().unwrap().to_owned()
}

/// Starts an HTTP/2 download of `url` (request id `id`) on a connection of its own with a
/// 64 KiB window: its body and its send half (to reset it).
async fn h2_download(
    gateway: &Gateway,
    url: &str,
    id: &str,
) -> (h2::RecvStream, h2::SendStream<Bytes>) {
    let (client, _connection) =
        crate::harness::h2_windowed(gateway.connect_from(ATTACKER).await, 64 * 1024).await;
    let mut client = client.ready().await.unwrap();
    let request = http::Request::get(url)
        .header("x-request-id", id)
        .body(())
        .unwrap();
    let (response, send) = client.send_request(request, true).unwrap();
    let response = response.await.unwrap();
    assert_eq!(response.status(), 200, "{id}");
    (response.into_body(), send)
}

/// A connection from the attacker's address with a 4 KiB receive buffer: the server's answers
/// fill it at once and then wait in the server's socket.
async fn small_buffered(gateway: &Gateway) -> TcpStream {
    gateway.connect_with(ATTACKER, Some(4096)).await
}

/// Starts an HTTP/1.1 download of `url` (request id `id`) on a connection of its own with a
/// 4 KiB receive buffer, and reads its status line (asserted 200).
async fn h1_download(gateway: &Gateway, url: &str, id: &str) -> TcpStream {
    let uri: http::Uri = url.parse().unwrap();
    let mut tcp = small_buffered(gateway).await;
    // The URL's host: it is signed.
    let head = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nX-Request-Id: {id}\r\n\r\n",
        uri.path_and_query().unwrap(),
        uri.authority().unwrap()
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    let mut line = [0_u8; 12];
    tcp.read_exact(&mut line).await.unwrap();
    assert_eq!(&line, b"HTTP/1.1 200", "{id}");
    tcp
}

/// The access-log line of request `id` saying `code`, if written.
fn line_of(log: &str, id: &str, code: &str) -> Option<String> {
    log.lines()
        .find(|l| l.contains(&format!("request_id={id} ")) && l.contains(code))
        .map(str::to_owned)
}

/// Opens an HTTP/1.1 upload-url call with id `id` whose 100-byte body stops after 10 bytes:
/// unanswered until its body-read timeout.
async fn unanswered_http1(gateway: &Gateway, id: &str) -> TcpStream {
    let mut tcp = gateway.connect_from(ATTACKER).await;
    let head = format!(
        "POST /api/v1/upload-url HTTP/1.1\r\nHost: x\r\nX-Request-Id: {id}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"object_n"
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    tcp
}

/// Asks for 1000 part URLs (~469 KB, handed over frame by frame) over h2c with id `id`, on a
/// connection that never opens its window past 64 KiB: the answer's head comes, its body stays
/// unsent.
async fn paced_unread(gateway: &Gateway, id: &str) -> (h2::RecvStream, h2::SendStream<Bytes>) {
    let upload = crate::harness::create_multipart(&gateway.url("/api/v1/multipart-upload")).await;
    let body = serde_json::to_vec(&crate::harness::part_urls_call(&upload)).unwrap();
    let (client, _connection) =
        crate::harness::h2_windowed(gateway.connect_from(ATTACKER).await, 64 * 1024).await;
    let mut client = client.ready().await.unwrap();
    let request = http::Request::post(gateway.url("/api/v1/multipart-upload/part-urls"))
        .header("x-request-id", id)
        .header("content-type", "application/json")
        .body(())
        .unwrap();
    let (response, mut send) = client.send_request(request, false).unwrap();
    send.send_data(Bytes::from(body), true).unwrap();
    let response = response.await.unwrap();
    assert_eq!(response.status(), 200, "{id}");
    (response.into_body(), send)
}

/// Every kind of call still open when the drain's grace period ends is logged as the server's
/// cut (503 `DRAIN_CUT`), not as its client's cancel: a download being taken slowly (over
/// HTTP/2 and HTTP/1.1), a request whose body is still arriving, a big API answer its client
/// does not read. A client that reset its own download, or closed its HTTP/1.1 connection
/// during it, before the drain is still its cancel (499); neither is logged as a 200.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_cut_at_the_drains_end_are_logged_as_the_servers_cut_not_the_clients() {
    let _serial = SERIAL.lock().await;
    // 2 MiB taken at about 300 KB/s: still being sent when the 1 s grace period ends.
    const SIZE: usize = 2 * 1024 * 1024;
    let mut gateway = Gateway::start(&[
        ("DRAFTSTORE_SHUTDOWN_GRACE_MS", "1000"),
        // The unanswered request's body may take 30 s: only the drain's end cuts it.
        ("DRAFTSTORE_HEADER_TIMEOUT_MS", "30000"),
        // The access log: a download logged as a 200 when its head went out would show.
        (
            "DRAFTSTORE_LOG",
            "info,draftstore_gateway::http::server=debug",
        ),
    ]);
    let _unanswered = unanswered_http1(&gateway, "cut-request").await;
    let _paced = paced_unread(&gateway, "cut-answer").await;
    let cancelled = download_url(&gateway, "cancelled.bin", SIZE).await;
    let cut = download_url(&gateway, "cut.bin", SIZE).await;
    // Over HTTP/1.1 the server's socket buffer (up to 4 MiB here) takes much of an answer
    // whatever the client reads: 8 MiB is still being sent when the grace period ends.
    let cut_h1 = download_url(&gateway, "cut-h1.bin", 4 * SIZE).await;
    // An HTTP/1.1 client that closes its connection during its download: 499.
    let closed = h1_download(&gateway, &cut_h1, "closed-download-h1").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(closed);
    eventually("the HTTP/1.1 client's close is logged", || {
        line_of(&gateway.log(), "closed-download-h1", "STREAM_CANCELLED").is_some()
    })
    .await;
    // A slow HTTP/1.1 reader, still taking its download when the drain ends.
    let mut tcp = h1_download(&gateway, &cut_h1, "cut-download-h1").await;
    let reading_h1 = tokio::spawn(async move {
        let mut got = 0;
        let mut buf = vec![0_u8; 16 * 1024];
        while let Ok(n @ 1..) = tcp.read(&mut buf).await {
            got += n;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        got
    });
    // A client that resets its download itself: 499 STREAM_CANCELLED, as before.
    let (mut body, mut send) = h2_download(&gateway, &cancelled, "cancelled-download").await;
    assert!(matches!(body.data().await, Some(Ok(_))));
    send.send_reset(h2::Reason::CANCEL);
    eventually("the client's reset is logged", || {
        line_of(&gateway.log(), "cancelled-download", "STREAM_CANCELLED").is_some()
    })
    .await;
    // A slow reader, still taking its download when the drain ends.
    let (mut body, _send) = h2_download(&gateway, &cut, "cut-download").await;
    let reading = tokio::spawn(async move {
        let mut got = 0;
        while let Some(Ok(data)) = body.data().await {
            got += data.len();
            tokio::time::sleep(Duration::from_millis(50)).await;
            let _ = body.flow_control().release_capacity(data.len());
        }
        got
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    gateway.signal("TERM");
    let status = gateway
        .exit_within(Duration::from_secs(20), "the grace period ends the drain")
        .await;
    let got = reading.await.unwrap();
    let got_h1 = reading_h1.await.unwrap();
    let log = gateway.log();
    assert_eq!(status.code(), Some(75), "the download was cut off: {log}");
    assert!(got < SIZE, "the download was not cut: {got} bytes");
    assert!(
        got_h1 < 4 * SIZE,
        "the HTTP/1.1 download was not cut: {got_h1} bytes"
    );
    let line = line_of(&log, "cut-download", "code=")
        .unwrap_or_else(|| panic!("the cut download is not logged: {log}"));
    assert!(line.contains("code=\"DRAIN_CUT\""), "{line}");
    assert!(line.contains("status=503"), "{line}");
    for id in ["cut-request", "cut-answer", "cut-download-h1"] {
        let line =
            line_of(&log, id, "code=").unwrap_or_else(|| panic!("{id} is not logged: {log}"));
        assert!(line.contains("code=\"DRAIN_CUT\""), "{line}");
        assert!(line.contains("status=503"), "{line}");
    }
    for id in ["cancelled-download", "closed-download-h1"] {
        let line = line_of(&log, id, "code=").unwrap_or_default();
        assert!(line.contains("code=\"STREAM_CANCELLED\""), "{id}: {line}");
        assert!(line.contains("status=499"), "{id}: {line}");
    }
    // The cut downloads have their one line: none was first logged as a 200.
    for id in ["cut-download-h1", "closed-download-h1", "cut-download"] {
        let lines = log
            .lines()
            .filter(|l| l.contains(&format!("request_id={id} ")))
            .count();
        assert_eq!(lines, 1, "{id}: {log}");
    }
}

/// The gateway's resident memory (`VmRSS` of `/proc/<pid>/status`) in MiB, for the test's
/// output only (a figure to report, not asserted).
fn rss_mib(gateway: &Gateway) -> u64 {
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", gateway.child.id())).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024)
}

/// A gauge's value in a `/metrics` scrape.
fn gauge(metrics: &str, name: &str) -> Option<f64> {
    metrics.lines().find_map(|l| {
        l.strip_prefix(name)
            .and_then(|rest| rest.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
    })
}

/// Many HTTP/1.1 connections from one address, each asking a big answer (1000 part URLs,
/// ~469 KB) and never reading it (a 4 KiB receive buffer): the answers are held within the
/// byte budget (128 places: 2 MiB, at most 512 KiB per peer, bound 2.5 MiB), those past it
/// shed with 503, and a client on another address still gets its big answer, room made for
/// it by closing the attacker's stale connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_answers_nobody_reads_are_held_within_the_byte_budget() {
    const CONNECTIONS: usize = 24;
    const TOTAL: f64 = 2.0 * 1024.0 * 1024.0;
    const BOUND: f64 = TOTAL * 1.25;
    let _serial = SERIAL.lock().await;
    let gateway = Gateway::start(&[
        ("DRAFTSTORE_MAX_IN_FLIGHT", "128"),
        ("DRAFTSTORE_IDLE_TIMEOUT_MS", "60000"),
    ]);
    let upload = crate::harness::create_multipart(&gateway.url("/api/v1/multipart-upload")).await;
    let body = serde_json::to_vec(&crate::harness::part_urls_call(&upload)).unwrap();
    let head = format!(
        "POST /api/v1/multipart-upload/part-urls HTTP/1.1\r\nHost: x\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let rss_before = rss_mib(&gateway);
    let mut attacker = Vec::new();
    for _ in 0..CONNECTIONS {
        let mut tcp = small_buffered(&gateway).await;
        tcp.write_all(head.as_bytes()).await.unwrap();
        tcp.write_all(&body).await.unwrap();
        attacker.push(tcp);
        // One after another, as answers fill the budget.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Only the status line of each answer is read (12 bytes), never the body.
    let mut statuses = Vec::new();
    for tcp in &mut attacker {
        let mut line = [0_u8; 12];
        let read = tokio::time::timeout(Duration::from_secs(20), tcp.read_exact(&mut line)).await;
        assert!(
            matches!(read, Ok(Ok(_))),
            "every request is answered: {read:?}"
        );
        statuses.push(String::from_utf8_lossy(&line).into_owned());
    }
    let answered = statuses.iter().filter(|s| s.ends_with("200")).count();
    let shed = statuses.iter().filter(|s| s.ends_with("503")).count();
    // The attacker, over its share of a full budget, has its API calls shed, its scrapes of
    // /metrics too (they are answers like any other); its probes are not, and a scraper on
    // another address is served.
    let from_attacker = Gateway::client_from(ATTACKER);
    let refused = from_attacker
        .post(gateway.url("/api/v1/upload-url"))
        .json(&serde_json::json!({"object_name": "a.bin"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 503, "over its share of a full budget");
    let scrape = from_attacker
        .get(gateway.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        scrape.status(),
        503,
        "the attacker's scrape is shed like its calls"
    );
    // Once the attacker's answers are stale (a second), other addresses are served: a scraper,
    // then a big answer.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let scrape = Gateway::client_from(SCRAPER)
        .get(gateway.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(scrape.status(), 200, "a scraper under its share is served");
    let metrics = scrape.text().await.unwrap();
    let health = from_attacker.get(gateway.url("/health")).send().await;
    assert_eq!(health.unwrap().status(), 200);
    let unsent = gauge(&metrics, "draftstore_answer_bytes_unsent");
    eprintln!(
        "{CONNECTIONS} unread HTTP/1.1 answers: {answered} answered, {shed} shed; \
         gauge {unsent:?} bytes; RSS {rss_before} -> {} MiB",
        rss_mib(&gateway)
    );
    assert_eq!(answered + shed, CONNECTIONS, "{statuses:?}");
    assert!(answered > 0, "the budget has room at first: {statuses:?}");
    assert!(shed > 0, "answers past the budget are shed: {statuses:?}");
    let unsent = unsent.expect("the gauge of bytes charged and not yet taken");
    assert!(
        unsent > TOTAL / 2.0 && unsent <= BOUND,
        "the attacker's answers are charged, within the bound: {unsent}"
    );
    let victim = reqwest::Client::builder()
        .local_address(IpAddr::from(VICTIM))
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let big = victim
        .post(gateway.url("/api/v1/multipart-upload/part-urls"))
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(big.status(), 200, "a newcomer is served");
    assert!(big.bytes().await.unwrap().len() > 400_000);
    // Room was made by closing answered attacker connections (HTTP/1.1 cannot reset one
    // answer), long before the stall limit: read now, they end; the others stay open.
    let ends = attacker
        .iter_mut()
        .zip(&statuses)
        .filter(|(_, status)| status.ends_with("200"))
        .map(|(tcp, _)| async move {
            let mut rest = Vec::new();
            let read =
                tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut rest)).await;
            read.is_ok()
        });
    let closed = futures_util::future::join_all(ends)
        .await
        .into_iter()
        .filter(|&closed| closed)
        .count();
    assert!(closed > 0, "an answered attacker connection was closed");
    let metrics =
        crate::harness::text_of(reqwest::Client::new().get(gateway.url("/metrics"))).await;
    let unsent = gauge(&metrics, "draftstore_answer_bytes_unsent").unwrap_or(f64::NAN);
    assert!(unsent <= BOUND, "{unsent}");
}

/// Sends on `client` a part-urls call of `body` to `gateway`; its response future.
async fn ask_part_urls(
    client: &h2::client::SendRequest<Bytes>,
    gateway: &Gateway,
    body: &Bytes,
) -> h2::client::ResponseFuture {
    let request = http::Request::post(gateway.url("/api/v1/multipart-upload/part-urls"))
        .header("content-type", "application/json")
        .body(())
        .unwrap();
    let mut ready = client.clone().ready().await.unwrap();
    let (response, mut send) = ready.send_request(request, false).unwrap();
    send.send_data(body.clone(), true).unwrap();
    response
}

/// Reads `answer`'s body whole, opening the window as it goes: its length, or the error that
/// cut it.
async fn read_whole(answer: http::Response<h2::RecvStream>) -> Result<usize, String> {
    let mut stream = answer.into_body();
    let mut got = 0;
    while let Some(chunk) = stream.data().await {
        let chunk = chunk.map_err(|e| format!("{e}"))?;
        got += chunk.len();
        let _ = stream.flow_control().release_capacity(chunk.len());
    }
    Ok(got)
}

/// Asks `count` part-urls calls of `body` (~15 KB answers) one after another, 75 ms apart, on one
/// h2c connection from `source` that opens no window, each answered before the next; returns
/// the answers (their bodies never read) and the connection's task.
async fn unread_small_answers(
    gateway: &Gateway,
    source: [u8; 4],
    body: &Bytes,
    count: usize,
) -> (
    Vec<http::Response<h2::RecvStream>>,
    tokio::task::JoinHandle<()>,
) {
    let (client, connection) =
        crate::harness::h2_windowed(gateway.connect_from(source).await, 0).await;
    let mut answers = Vec::new();
    for _ in 0..count {
        let response = ask_part_urls(&client, gateway, body).await;
        let response = tokio::time::timeout(Duration::from_secs(10), response)
            .await
            .expect("every call is answered at once")
            .unwrap();
        assert_eq!(
            response.status(),
            200,
            "a new request is never refused for them"
        );
        answers.push(response);
        // Within its second of grace an answer holds its request place: at most 14 at a time
        // here, under the peer's share of 16.
        tokio::time::sleep(Duration::from_millis(75)).await;
    }
    (answers, connection)
}

/// How many of `answers` (bodies never read, no window; kept, so that those waiting still
/// wait) were reset, and how many still wait.
async fn reset_and_waiting(answers: &mut [http::Response<h2::RecvStream>]) -> (usize, usize) {
    // Past the grace an answer waits in its request place.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let mut reset = 0;
    let mut waiting = 0;
    for answer in answers {
        let body = answer.body_mut();
        match tokio::time::timeout(Duration::from_millis(100), body.data()).await {
            Ok(Some(Err(e))) if e.reason() == Some(h2::Reason::CANCEL) => reset += 1,
            Err(_) => waiting += 1,
            other => panic!("neither reset nor waiting: {other:?}"),
        }
    }
    (reset, waiting)
}

/// HTTP/2 answers under one frame (16 KiB) go to h2 whole, outside the byte budget: a client
/// that opens no window (and so never takes them) once held one in h2's buffers per stream it
/// asked, however many (300 connections x 100 streams of 15.8 KB: 551 MB). An answer not taken
/// within a second now waits in a place among the answers waiting to be taken (as many as the requests
/// open on all connections: 32 here, a peer's share of them as for the requests) once past its
/// second of grace, or is reset. Waiting answers hold no request place: three addresses filling
/// the waiting places still leave another address served, over HTTP/1.1 and HTTP/2, `/metrics`
/// scraped, and a client reading through a 4 KiB window gets all its answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_http2_answers_nobody_reads_are_bounded_and_keep_nobody_out() {
    let _serial = SERIAL.lock().await;
    let gateway = Gateway::start(&[
        ("DRAFTSTORE_MAX_IN_FLIGHT", "16"),
        ("DRAFTSTORE_IDLE_TIMEOUT_MS", "60000"),
    ]);
    let upload = crate::harness::create_multipart(&gateway.url("/api/v1/multipart-upload")).await;
    let mut call = crate::harness::part_urls_call(&upload);
    call["part_numbers"] = serde_json::json!((1..=30).collect::<Vec<u32>>());
    let body = Bytes::from(serde_json::to_vec(&call).unwrap());
    // Alone, the attacker's share is half the 32 waiting places; its other answers are reset.
    let (mut answers, first) = unread_small_answers(&gateway, ATTACKER, &body, 40).await;
    assert_eq!(reset_and_waiting(&mut answers).await, (24, 16));
    // Two more addresses take the rest (10, then the 6 left of a share of 8).
    let (mut second_answers, second) =
        unread_small_answers(&gateway, [127, 0, 0, 4], &body, 20).await;
    assert_eq!(reset_and_waiting(&mut second_answers).await, (10, 10));
    let (mut third_answers, third) =
        unread_small_answers(&gateway, [127, 0, 0, 5], &body, 20).await;
    assert_eq!(reset_and_waiting(&mut third_answers).await, (14, 6));
    // Every waiting place is held: a client reading through a small window (4 KiB) takes its
    // answers within their grace, and none is reset.
    let (small, small_connection) =
        crate::harness::h2_windowed(gateway.connect_from(VICTIM).await, 4096).await;
    let calls = (0..8).map(|_| async {
        let response = ask_part_urls(&small, &gateway, &body).await;
        read_whole(response.await.unwrap()).await
    });
    let read = futures_util::future::join_all(calls).await;
    assert!(
        read.iter().all(|r| matches!(r, Ok(n) if *n > 12_000)),
        "a reader's answers are taken whole: {read:?}"
    );
    small_connection.abort();
    // Another address is still served, and reads its answers.
    let victim = Gateway::client_from(VICTIM);
    let served = victim
        .post(gateway.url("/api/v1/multipart-upload/part-urls"))
        .json(&call)
        .send()
        .await
        .unwrap();
    assert_eq!(served.status(), 200, "HTTP/1.1 is served");
    assert!(served.bytes().await.unwrap().len() > 12_000);
    let client = gateway.h2_from(VICTIM).await;
    let response = ask_part_urls(&client, &gateway, &body).await.await.unwrap();
    assert_eq!(response.status(), 200, "HTTP/2 is served");
    let got = read_whole(response).await;
    assert!(matches!(got, Ok(n) if n > 12_000), "{got:?}");
    let scrape = victim.get(gateway.url("/metrics")).send().await.unwrap();
    assert_eq!(scrape.status(), 200);
    let metrics = scrape.text().await.unwrap();
    assert!(
        metrics.contains("draftstore_small_answers_stalled_total 48"),
        "the 48 resets are counted"
    );
    assert!(gateway.log().contains("UNTAKEN_ANSWERS"));
    // Gone, the attackers give their waiting places back.
    drop((answers, second_answers, third_answers));
    for connection in [first, second, third] {
        connection.abort();
    }
    let mut last = (0, 0);
    for _ in 0..50 {
        let (mut answers, connection) = unread_small_answers(&gateway, ATTACKER, &body, 17).await;
        last = reset_and_waiting(&mut answers).await;
        connection.abort();
        if last == (1, 16) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(last, (1, 16), "the waiting places came back");
}

/// A PING acknowledgement the server never asked for makes the `h2` crate write a WARN line,
/// one per 17-byte frame (117 049 lines, 17.8 MB from 200 000 frames, before): those lines are
/// held to the client-fault budget with ours, and the ones left out are counted in a line of a
/// later second, without waiting for another fault.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_unasked_ping_acks_cannot_drive_the_logs_volume() {
    const FRAMES: usize = 20_000;
    let _serial = SERIAL.lock().await;
    let gateway = Gateway::start(&[]);
    let mut tcp = gateway.connect_from(ATTACKER).await;
    let started = Instant::now();
    let mut flood = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    flood.extend(h2_frame(4, 0, 0, b""));
    for _ in 0..FRAMES {
        flood.extend(h2_frame(6, 1, 0, b"unasked!"));
    }
    // Then a PING of our own: its acknowledgement comes once every frame before it was read.
    flood.extend(h2_frame(6, 0, 0, b"the-last"));
    tcp.write_all(&flood).await.unwrap();
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(20), read_h2_frame(&mut tcp))
            .await
            .expect("the PING is acknowledged")
            .expect("the connection stays open");
        if frame.0 == 6 && frame.1 & 1 == 1 && frame.3 == b"the-last" {
            break;
        }
    }
    let seconds = started.elapsed().as_secs() + 1;
    // The server's own reports (once a second) say how many lines were left out.
    let counts = || {
        let log = gateway.log();
        let written = log.lines().filter(|l| l.contains("PING ack")).count() as u64;
        let left_out: u64 = log
            .lines()
            .filter_map(|l| l.split("left_out=").nth(1))
            .filter_map(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
            .sum();
        (written, left_out)
    };
    eventually("every line is written or counted", || {
        let (written, left_out) = counts();
        written + left_out >= FRAMES as u64
    })
    .await;
    let (written, left_out) = counts();
    assert!(
        written <= 100 * (seconds + 1),
        "{written} lines in about {seconds} s"
    );
    assert_eq!(
        written + left_out,
        FRAMES as u64,
        "{written} written, {left_out} left out"
    );
}

/// A TCP connection from `source` with a 4 KiB receive buffer, that reads its socket only while
/// its [`ReadSwitch`] is on: a client that opens its windows and stops reading its socket.
struct Halted {
    tcp: TcpStream,
    switch: ReadSwitch,
}

/// Whether a [`Halted`] connection reads, switched by the test.
#[derive(Clone, Default)]
struct ReadSwitch(
    Arc<(
        std::sync::atomic::AtomicBool,
        std::sync::Mutex<Option<std::task::Waker>>,
    )>,
);

impl ReadSwitch {
    /// Stops reading.
    fn halt(&self) {
        self.0 .0.store(true, Ordering::SeqCst);
    }

    /// Reads again.
    fn go(&self) {
        self.0 .0.store(false, Ordering::SeqCst);
        if let Some(waker) = self.0 .1.lock().unwrap().take() {
            waker.wake();
        }
    }
}

impl Halted {
    /// A connection that reads nothing until its switch says `go`.
    async fn from(gateway: &Gateway, source: [u8; 4]) -> (Self, ReadSwitch) {
        let (tcp, switch) = Self::reading(gateway, source).await;
        switch.halt();
        (tcp, switch)
    }

    /// A connection that reads until its switch says `halt`.
    async fn reading(gateway: &Gateway, source: [u8; 4]) -> (Self, ReadSwitch) {
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        socket
            .bind(SocketAddr::new(IpAddr::from(source), 0))
            .unwrap();
        let tcp = socket
            .connect(SocketAddr::from(([127, 0, 0, 1], gateway.port)))
            .await
            .unwrap();
        let switch = ReadSwitch::default();
        (
            Self {
                tcp,
                switch: switch.clone(),
            },
            switch,
        )
    }
}

impl tokio::io::AsyncRead for Halted {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let halted = || self.switch.0 .0.load(Ordering::SeqCst);
        if halted() {
            *self.switch.0 .1.lock().unwrap() = Some(cx.waker().clone());
            if halted() {
                return std::task::Poll::Pending;
            }
        }
        std::pin::Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Halted {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

/// A part-urls call of `parts` parts on a new multipart upload, as a request body.
async fn part_urls_body(gateway: &Gateway, parts: u32) -> Bytes {
    let upload = crate::harness::create_multipart(&gateway.url("/api/v1/multipart-upload")).await;
    let mut call = crate::harness::part_urls_call(&upload);
    call["part_numbers"] = serde_json::json!((1..=parts).collect::<Vec<u32>>());
    Bytes::from(serde_json::to_vec(&call).unwrap())
}

/// How one call of a client that stopped reading ended, once it reads again.
#[derive(Debug, PartialEq)]
enum Ended {
    /// Its whole answer arrived: the status.
    Whole(u16),
    /// Its stream was reset (before or after its head).
    Reset,
}

/// Reads `answer` to its end: whole, or reset.
async fn ended(answer: h2::client::ResponseFuture) -> Ended {
    let ending = async {
        let Ok(response) = answer.await else {
            return Ended::Reset;
        };
        let status = response.status().as_u16();
        match read_whole(response).await {
            Ok(_) => Ended::Whole(status),
            Err(_) => Ended::Reset,
        }
    };
    tokio::time::timeout(Duration::from_secs(20), ending)
        .await
        .expect("every call ends once its client reads")
}

/// A client that opens wide windows (16 MiB) and then stops reading its socket once had every
/// answer taken by h2 at once, queued on the connection until the stall limit (a review: 1.1
/// GiB for 600 connections x 100 streams of 15.9 KB). Now a connection queues at most 64 KiB
/// plus one answer before its socket writes; the answers past that wait like answers the
/// client's window has no room for: a second of grace in their request place, then a waiting
/// place (the peer's share: 16) or a reset. Of 40 calls of ~15 KB, once the client reads
/// again: the few the kernel and the queue took, and the 16 that waited, arrive whole; the rest
/// were reset. (Before: all 40 arrived whole, none reset.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_answers_to_a_client_that_stops_reading_its_socket_are_bounded_per_connection() {
    const CALLS: usize = 40;
    let _serial = SERIAL.lock().await;
    let gateway = Gateway::start(&[
        ("DRAFTSTORE_MAX_IN_FLIGHT", "16"),
        ("DRAFTSTORE_IDLE_TIMEOUT_MS", "60000"),
    ]);
    let body = part_urls_body(&gateway, 30).await;
    let (tcp, go) = Halted::from(&gateway, ATTACKER).await;
    let (client, connection) = crate::harness::h2_with_windows(tcp, 16 << 20, 16 << 20).await;
    // One call every 75 ms, as a steady client would: within its second of grace an answer
    // holds its request place, at most 14 at a time, under the peer's share of 16.
    let mut calls = Vec::new();
    for _ in 0..CALLS {
        calls.push(ask_part_urls(&client, &gateway, &body).await);
        tokio::time::sleep(Duration::from_millis(75)).await;
    }
    // Past the grace: each answer not handed over holds a waiting place or was reset.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // Another address is served meanwhile.
    let victim = Gateway::client_from(VICTIM);
    let health = victim.get(gateway.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    go.go();
    let ends = futures_util::future::join_all(calls.into_iter().map(ended)).await;
    let whole = ends.iter().filter(|e| matches!(e, Ended::Whole(_))).count();
    let reset = ends.iter().filter(|e| **e == Ended::Reset).count();
    assert!(
        ends.iter()
            .all(|e| matches!(e, Ended::Whole(200 | 503) | Ended::Reset)),
        "{ends:?}"
    );
    // 16 waiting, and at most about 10 taken by the kernel (64 KiB unsent plus the 4 KiB
    // receive buffer) and the queue (64 KiB plus one answer).
    assert!(
        (16..=30).contains(&whole) && reset == CALLS - whole,
        "{whole} whole, {reset} reset: {ends:?}"
    );
    assert!(
        ends.iter().all(|e| *e != Ended::Whole(503)),
        "a steady client is not refused: {ends:?}"
    );
    assert!(
        gateway.log().contains("UNTAKEN_ANSWERS"),
        "{}",
        gateway.log()
    );
    connection.abort();
}

/// The same client asking big answers (1000 part URLs, ~469 KB each, handed over a frame at a
/// time): h2 once took every frame as soon as the window had room, so they left the byte
/// budget at once and sat queued on the connection (a review: 465 MiB for 200 connections x 13
/// streams). Now a frame waits for room in the connection's queue, so bytes the client has not
/// taken stay charged to the budget (where a client behind the floor rate is dropped to make
/// room); once the client reads, every answer arrives whole and the budget is empty again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_answers_to_a_client_that_stops_reading_its_socket_stay_in_the_byte_budget() {
    const CALLS: usize = 4;
    let _serial = SERIAL.lock().await;
    let gateway = Gateway::start(&[("DRAFTSTORE_IDLE_TIMEOUT_MS", "60000")]);
    let body = part_urls_body(&gateway, 1000).await;
    let (tcp, go) = Halted::from(&gateway, ATTACKER).await;
    let (client, connection) = crate::harness::h2_with_windows(tcp, 16 << 20, 16 << 20).await;
    let mut calls = Vec::new();
    for _ in 0..CALLS {
        calls.push(ask_part_urls(&client, &gateway, &body).await);
    }
    let victim = Gateway::client_from(VICTIM);
    let unsent = || async {
        let metrics = crate::harness::text_of(victim.get(gateway.url("/metrics"))).await;
        gauge(&metrics, "draftstore_answer_bytes_unsent").unwrap_or(-1.0)
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // 1.9 MB asked; at most about 220 KB taken (the kernel's 64 KiB unsent and 4 KiB, the
    // connection's queue of 64 KiB plus a frame, each answer's last two frames).
    let held = unsent().await;
    assert!(held > 1_500_000.0, "charged while not taken: {held}");
    go.go();
    let ends = futures_util::future::join_all(calls.into_iter().map(ended)).await;
    assert_eq!(ends, [(); CALLS].map(|()| Ended::Whole(200)));
    let mut left = held;
    for _ in 0..100 {
        left = unsent().await;
        if left == 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(left, 0.0, "all given back once taken");
    connection.abort();
}

/// An HTTP/2 client over `io` with 16 MiB stream windows and the connection window of the
/// protocol's start (64 KiB, never reopened), and a sender that widens the connection window to
/// 1 GiB when told to (one WINDOW_UPDATE); with the task driving the connection.
async fn h2_widening(
    io: Halted,
) -> (
    h2::client::SendRequest<Bytes>,
    tokio::task::JoinHandle<()>,
    tokio::sync::oneshot::Sender<()>,
) {
    let (client, mut connection) = h2::client::Builder::new()
        .initial_window_size(16 << 20)
        .handshake::<_, Bytes>(io)
        .await
        .unwrap();
    let (widen, mut widened) = tokio::sync::oneshot::channel::<()>();
    let mut waiting = true;
    let driving = tokio::spawn(futures_util::future::poll_fn(move |cx| {
        if waiting && std::future::Future::poll(std::pin::Pin::new(&mut widened), cx).is_ready() {
            waiting = false;
            connection.set_target_window_size(1 << 30);
        }
        std::future::Future::poll(std::pin::Pin::new(&mut connection), cx).map(|_| ())
    }));
    (client.ready().await.unwrap(), driving, widen)
}

/// A client that used up its connection window (an unread `/metrics` scrape) while it still
/// read its socket, asked calls, then opened a 1 GiB connection window and stopped reading:
/// once, the bytes counted as queued on the connection were forgotten while the answers waited
/// for the window (the socket quiet, no write blocked), so every answer was handed to h2; the
/// window opened, their tasks ended and h2 held them all, bounded by nothing (a review: 347
/// answers over 10 connections in turn). Now nothing is forgotten while a handed answer still
/// waits for its window: each connection queues at most 64 KiB plus one answer, the rest wait
/// in places (a peer's share) or are reset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_queued_behind_a_used_up_window_are_not_forgotten() {
    const CONNECTIONS: usize = 4;
    // With the scrapes held open, within the peer's share of 32 requests open at once.
    const CALLS: usize = 24;
    let _serial = SERIAL.lock().await;
    let gateway = Gateway::start(&[
        ("DRAFTSTORE_MAX_IN_FLIGHT", "32"),
        ("DRAFTSTORE_IDLE_TIMEOUT_MS", "60000"),
    ]);
    let body = part_urls_body(&gateway, 30).await;
    let mut kept = Vec::new();
    let mut answers = Vec::new();
    for _ in 0..CONNECTIONS {
        let (tcp, switch) = Halted::reading(&gateway, ATTACKER).await;
        let (client, connection, widen) = h2_widening(tcp).await;
        let scrape = crate::harness::h2_send(
            &client,
            http::Request::get(gateway.url("/metrics"))
                .body(())
                .unwrap(),
        )
        .await;
        assert_eq!(scrape.status(), 200);
        // One after another (each gives its admission place back once answered).
        for _ in 0..CALLS {
            let answer = tokio::time::timeout(
                Duration::from_secs(10),
                ask_part_urls(&client, &gateway, &body).await,
            )
            .await
            .expect("answered at once")
            .unwrap();
            assert_eq!(answer.status(), 200);
            answers.push(answer);
        }
        // Quiet for more than the 100 ms after which slack is forgotten, within the answers'
        // second of grace.
        tokio::time::sleep(Duration::from_millis(300)).await;
        switch.halt();
        widen.send(()).unwrap();
        // Past the grace: the answers handed over were sent (their tasks ended), the others
        // wait in a waiting place or were reset.
        tokio::time::sleep(Duration::from_millis(1300)).await;
        kept.push((client, connection, switch, scrape));
    }
    for (_, _, switch, _) in &kept {
        switch.go();
    }
    let ends = futures_util::future::join_all(answers.into_iter().map(|answer| async {
        tokio::time::timeout(Duration::from_secs(20), read_whole(answer))
            .await
            .expect("every answer ends once its client reads")
    }))
    .await;
    let whole = ends.iter().filter(|e| e.is_ok()).count();
    let reset = ends.len() - whole;
    eprintln!("{whole} whole, {reset} reset of {}", ends.len());
    // At most about 12 per connection taken by the queue (64 KiB plus one answer) and the
    // kernel (64 KiB unsent, the 4 KiB receive buffer), and 32 in the peer's waiting places:
    // 54 whole, 42 reset in a run. Forgotten, all 96 were handed over and arrived whole.
    assert!(
        whole <= CONNECTIONS * 12 + 32 && reset >= 8,
        "{whole} whole, {reset} reset: {ends:?}"
    );
    for (_, connection, _, _) in kept {
        connection.abort();
    }
}

/// Downloads on the embedded store's URLs to a client that opens wide windows and stops
/// reading its socket: h2 took up to its send buffer (about 400 KiB) of every one at once, so
/// 24 downloads of 1 MiB on one connection grew the server by 14-15 MiB (debug build). h2 now
/// holds at most 64 KiB unsent per stream (and the frame that passed it), so each waiting
/// download holds about 200 KiB (4-6 MiB here). Once the client reads again, all arrive whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_to_a_client_that_stops_reading_its_socket_are_bounded_per_connection() {
    const DOWNLOADS: usize = 24;
    const SIZE: usize = 1 << 20;
    let _serial = SERIAL.lock().await;
    let gateway = Gateway::start(&[("DRAFTSTORE_IDLE_TIMEOUT_MS", "60000")]);
    let url = download_url(&gateway, "big.bin", SIZE).await;
    let (tcp, go) = Halted::from(&gateway, ATTACKER).await;
    let (client, connection) = crate::harness::h2_with_windows(tcp, 16 << 20, 64 << 20).await;
    let before = rss_mib(&gateway);
    let mut downloads = Vec::new();
    for _ in 0..DOWNLOADS {
        let mut ready = client.clone().ready().await.unwrap();
        let request = http::Request::get(url.as_str()).body(()).unwrap();
        downloads.push(ready.send_request(request, true).unwrap().0);
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let grown = rss_mib(&gateway).saturating_sub(before);
    go.go();
    let lengths = futures_util::future::join_all(downloads.into_iter().map(|download| async {
        let response = download.await.map_err(|e| e.to_string())?;
        assert_eq!(response.status(), 200);
        read_whole(response).await
    }))
    .await;
    eprintln!("{DOWNLOADS} downloads to a halted client: server grew {grown} MiB");
    assert!(
        lengths.iter().all(|l| *l == Ok(SIZE)),
        "every download arrives whole once the client reads: {lengths:?}"
    );
    assert!(grown <= 8, "what h2 holds is bounded: grew {grown} MiB");
    connection.abort();
}

/// `/metrics` scrapes (about 140 KB each) that their client never reads (window 0) are charged
/// to the byte budget like any big answer. Exempt from it, they were bounded only by the
/// places an address may hold: all 24 asked here were answered and held (in a review 30 × 100
/// streams held 2048 and took RSS from 13 to 308 MiB). Now the client is shed once it holds its
/// share of the budget, which stays within its bound, and a scraper on another address is
/// served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrapes_nobody_reads_are_held_within_the_byte_budget() {
    const SCRAPES: usize = 24;
    // 64 places: the budget's floor of 1 MiB, bounded by 1.25 MiB plus one answer.
    const BOUND: f64 = 1.25 * 1024.0 * 1024.0 + 200_000.0;
    let _serial = SERIAL.lock().await;
    let gateway = Gateway::start(&[
        ("DRAFTSTORE_MAX_IN_FLIGHT", "64"),
        ("DRAFTSTORE_IDLE_TIMEOUT_MS", "60000"),
    ]);
    let (client, connection) =
        crate::harness::h2_windowed(gateway.connect_from(ATTACKER).await, 0).await;
    let mut statuses = Vec::new();
    let mut held = Vec::new();
    for _ in 0..SCRAPES {
        let request = http::Request::get(gateway.url("/metrics"))
            .body(())
            .unwrap();
        let mut ready = client.clone().ready().await.unwrap();
        let (response, _) = ready.send_request(request, true).unwrap();
        let response = tokio::time::timeout(Duration::from_secs(10), response)
            .await
            .expect("every scrape is answered at once")
            .unwrap();
        statuses.push(response.status().as_u16());
        held.push(response);
    }
    let answered = statuses.iter().filter(|&&s| s == 200).count();
    let shed = statuses.iter().filter(|&&s| s == 503).count();
    // Once the held scrapes are stale (a second), room is made for another address.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let scraper = Gateway::client_from(SCRAPER);
    let scrape = scraper.get(gateway.url("/metrics")).send().await.unwrap();
    assert_eq!(
        scrape.status(),
        200,
        "a scraper on another address is served"
    );
    let metrics = scrape.text().await.unwrap();
    let unsent = gauge(&metrics, "draftstore_answer_bytes_unsent").unwrap_or(f64::NAN);
    eprintln!("{SCRAPES} unread scrapes: {answered} answered, {shed} shed; gauge {unsent} bytes");
    assert_eq!(answered + shed, SCRAPES, "{statuses:?}");
    assert!(answered >= 4, "the budget has room at first: {statuses:?}");
    assert!(shed > 0, "scrapes past the budget are shed: {statuses:?}");
    assert!(
        unsent > 512.0 * 1024.0 && unsent <= BOUND,
        "the unread scrapes are charged, within the bound: {unsent}"
    );
    drop(held);
    connection.abort();
}

/// `HEAD` over HTTP/2 gets the head alone, with the length a `GET` would have: hyper sent the
/// body too, and curl failed the stream (`PROTOCOL_ERROR`, exit 92).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_over_http2_sends_no_body() {
    let _serial = SERIAL.lock().await;
    let gateway = Gateway::start(&[]);
    let client = gateway.h2_from(VICTIM).await;
    for path in ["/health", "/metrics"] {
        let request = http::Request::head(gateway.url(path)).body(()).unwrap();
        let response = crate::harness::h2_send(&client, request).await;
        assert_eq!(response.status(), 200, "{path}");
        let length: usize = response.headers()[http::header::CONTENT_LENGTH]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(length > 0, "{path}");
        assert!(response.body().is_end_stream(), "{path}: no body");
        let got = read_whole(response).await;
        assert_eq!(got, Ok(0), "{path}");
    }
    let curl = Command::new("curl")
        .args(["-sI", "--http2-prior-knowledge", &gateway.url("/health")])
        .output()
        .unwrap();
    assert!(curl.status.success(), "{curl:?}");
}
