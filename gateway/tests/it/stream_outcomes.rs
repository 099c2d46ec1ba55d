//! A stream's access-log line and metrics are written once, when it ends, with its final
//! status and its whole duration: a reflection stream ended by a bad message, cut by the
//! client, ended by the idle limit or by the stall limit (a client that stops reading) is not
//! logged or counted as a success when its reply head goes out. The real binary, its log read from its stderr, its own `/metrics`.

use crate::ratelimit::{gateway_with, Process};
use bytes::Bytes;
use draftstore_proto::grpc::reflection::v1 as reflection;
use draftstore_proto::prost::Message;
use reflection::server_reflection_request::MessageRequest;
use std::time::{Duration, Instant};

/// The stream idle limit of the gateway under test.
const IDLE_MS: u64 = 1000;

fn envelope(message: &[u8]) -> Bytes {
    let mut out = vec![0];
    out.extend_from_slice(&u32::try_from(message.len()).unwrap().to_be_bytes());
    out.extend_from_slice(message);
    out.into()
}

fn list_services() -> Bytes {
    envelope(
        &reflection::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        }
        .encode_to_vec(),
    )
}

/// A reflection stream's request over native gRPC or Connect streaming.
fn request(port: u16, connect: bool) -> http::Request<()> {
    let builder = http::Request::builder()
        .method("POST")
        .uri(format!("http://127.0.0.1:{port}{}", reflection::INFO_PATH));
    let builder = if connect {
        builder
            .header("content-type", "application/connect+proto")
            .header("connect-protocol-version", "1")
    } else {
        builder
            .header("content-type", "application/grpc")
            .header("te", "trailers")
    };
    builder.body(()).unwrap()
}

async fn h2c(port: u16) -> h2::client::SendRequest<Bytes> {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let (client, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(connection);
    client.ready().await.unwrap()
}

/// The access-log lines of reflection streams, once `n` are written (at most 30 s).
async fn stream_lines(gateway: &Process, n: usize) -> Vec<String> {
    let started = Instant::now();
    loop {
        let lines: Vec<String> = gateway
            .log()
            .lines()
            .filter(|l| l.contains("ServerReflectionInfo") && l.contains("elapsed_us="))
            .map(str::to_owned)
            .collect();
        if lines.len() >= n || started.elapsed() > Duration::from_secs(30) {
            return lines;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `key=value` of a log line.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
}

/// The `draftstore_requests_total` lines of `protocol` with a non-zero count, as
/// `(status, count)`.
async fn counted(gateway: &Process, protocol: &str) -> Vec<(String, f64)> {
    let text = crate::harness::text_of(
        reqwest::Client::new().get(format!("http://127.0.0.1:{}/metrics", gateway.port)),
    )
    .await;
    text.lines()
        .filter(|l| l.starts_with("draftstore_requests_total{"))
        .filter(|l| l.contains(&format!("protocol=\"{protocol}\"")))
        .filter_map(|l| {
            let status = l.split("status=\"").nth(1)?.split('"').next()?.to_owned();
            let count: f64 = l.rsplit(' ').next()?.parse().ok()?;
            (count > 0.0).then_some((status, count))
        })
        .collect()
}

#[tokio::test]
async fn a_stream_is_logged_and_counted_when_it_ends_with_its_final_status() {
    let gateway = gateway_with(&[
        ("DRAFTSTORE_AUTH", "none"),
        (
            "DRAFTSTORE_LOG",
            "info,draftstore_gateway::http::server=debug",
        ),
        ("DRAFTSTORE_IDLE_TIMEOUT_MS", &IDLE_MS.to_string()),
    ]);
    let port = gateway.port;

    // 1. Ended by an error mid-stream: an answered request, then a message that is no
    //    reflection request (INVALID_ARGUMENT, 3).
    let mut client = h2c(port).await;
    let (response, mut send) = client.send_request(request(port, false), false).unwrap();
    send.send_data(list_services(), false).unwrap();
    send.send_data(envelope(&[0xff, 0xff, 0xff]), false)
        .unwrap();
    let mut body = response.await.unwrap().into_body();
    while body.data().await.is_some() {}
    let trailers = body.trailers().await.unwrap().unwrap();
    assert_eq!(trailers["grpc-status"], "3");
    let lines = stream_lines(&gateway, 1).await;
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(field(&lines[0], "grpc_status"), Some("3"), "{}", lines[0]);

    // 2. Cut by the client (RST_STREAM CANCEL) after one answer: CANCELLED, 1.
    let (response, mut send) = client.send_request(request(port, false), false).unwrap();
    send.send_data(list_services(), false).unwrap();
    let mut body = response.await.unwrap().into_body();
    assert!(body.data().await.unwrap().is_ok());
    send.send_reset(h2::Reason::CANCEL);
    let lines = stream_lines(&gateway, 2).await;
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(field(&lines[1], "grpc_status"), Some("1"), "{}", lines[1]);
    assert!(lines[1].contains("STREAM_CANCELLED"), "{}", lines[1]);

    // 3. Ended by the idle limit (no message at all): DEADLINE_EXCEEDED, 4, its whole
    //    duration logged (at least the idle limit, not the moment the head went out).
    let (response, send) = client.send_request(request(port, false), false).unwrap();
    let mut body = response.await.unwrap().into_body();
    while body.data().await.is_some() {}
    let trailers = body.trailers().await.unwrap().unwrap();
    assert_eq!(trailers["grpc-status"], "4");
    drop(send);
    let lines = stream_lines(&gateway, 3).await;
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(field(&lines[2], "grpc_status"), Some("4"), "{}", lines[2]);
    let elapsed_us: u64 = field(&lines[2], "elapsed_us").unwrap().parse().unwrap();
    assert!(elapsed_us >= IDLE_MS * 1000, "{}", lines[2]);
    assert!(
        !lines[2].contains("ERROR"),
        "the client's doing: {}",
        lines[2]
    );

    // 4. A stream the client half-closes after its requests: OK, 0.
    let (response, mut send) = client.send_request(request(port, false), false).unwrap();
    send.send_data(list_services(), true).unwrap();
    let mut body = response.await.unwrap().into_body();
    while body.data().await.is_some() {}
    let trailers = body.trailers().await.unwrap().unwrap();
    assert_eq!(trailers["grpc-status"], "0");
    let lines = stream_lines(&gateway, 4).await;
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert_eq!(field(&lines[3], "grpc_status"), Some("0"), "{}", lines[3]);

    // 5. Connect streaming, ended by a bad message: its end-of-stream code, 3.
    let (response, mut send) = client.send_request(request(port, true), false).unwrap();
    send.send_data(envelope(&[0xff, 0xff, 0xff]), true).unwrap();
    let mut body = response.await.unwrap().into_body();
    let mut got = Vec::new();
    while let Some(chunk) = body.data().await {
        got.extend_from_slice(&chunk.unwrap());
    }
    assert!(
        String::from_utf8_lossy(&got).contains("invalid_argument"),
        "{got:?}"
    );
    let lines = stream_lines(&gateway, 5).await;
    assert_eq!(lines.len(), 5, "{lines:?}");
    assert_eq!(field(&lines[4], "grpc_status"), Some("3"), "{}", lines[4]);

    // 6. A client that stops reading (a 16-byte window never reopened): the stream is dropped
    //    at the stall limit, DEADLINE_EXCEEDED (4, STREAM_IDLE), not CANCELLED.
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let (mut stalled, _connection) = crate::harness::h2_windowed(tcp, 16).await;
    let (response, mut send) = stalled.send_request(request(port, false), false).unwrap();
    let many: Vec<u8> = (0..1200).flat_map(|_| list_services().to_vec()).collect();
    send.send_data(many.into(), false).unwrap();
    let _head = response.await.unwrap();
    let lines = stream_lines(&gateway, 6).await;
    assert_eq!(lines.len(), 6, "{lines:?}");
    assert_eq!(field(&lines[5], "grpc_status"), Some("4"), "{}", lines[5]);
    assert!(lines[5].contains("STREAM_IDLE"), "{}", lines[5]);
    drop((send, stalled));

    // Counted once each, by final status; the head going out counted nothing.
    let mut grpc = counted(&gateway, "grpc").await;
    grpc.sort_by(|a, b| a.0.cmp(&b.0));
    let want: Vec<(String, f64)> = [("0", 1.0), ("1", 1.0), ("3", 1.0), ("4", 2.0)]
        .iter()
        .map(|(s, n)| ((*s).to_owned(), *n))
        .collect();
    assert_eq!(grpc, want);
    assert_eq!(counted(&gateway, "connect").await, [("3".to_owned(), 1.0)]);
}

/// One HTTP/2 frame: `kind`, `flags`, `stream`, `payload` (RFC 9113 §4.1).
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap().to_be_bytes();
    let mut out = len[1..].to_vec();
    out.extend_from_slice(&[kind, flags]);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// A literal HPACK header field without indexing, new name (RFC 7541 §6.2.2).
fn literal(name: &str, value: &str) -> Vec<u8> {
    let mut out = vec![0, u8::try_from(name.len()).unwrap()];
    out.extend_from_slice(name.as_bytes());
    out.push(u8::try_from(value.len()).unwrap());
    out.extend_from_slice(value.as_bytes());
    out
}

/// The access-log lines of `path`, once `n` are written (at most 10 s).
async fn lines_of(gateway: &Process, path: &str, n: usize) -> Vec<String> {
    let started = Instant::now();
    loop {
        let lines: Vec<String> = gateway
            .log()
            .lines()
            .filter(|l| l.contains(&format!("path={path}")) && l.contains("elapsed_us="))
            .map(str::to_owned)
            .collect();
        if lines.len() >= n || started.elapsed() > Duration::from_secs(10) {
            return lines;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A unary call the client resets right after sending it (HEADERS, DATA with END_STREAM and
/// RST_STREAM CANCEL in one write) is carried out or not, but never unseen: each has its one
/// access-log line and is counted, as answered or as `STREAM_CANCELLED` (499 / CANCELLED).
#[tokio::test]
async fn a_unary_call_reset_after_sending_is_still_logged_and_counted() {
    use tokio::io::AsyncWriteExt;
    let gateway = gateway_with(&[
        ("DRAFTSTORE_AUTH", "none"),
        (
            "DRAFTSTORE_LOG",
            "info,draftstore_gateway::http::server=debug",
        ),
    ]);
    let port = gateway.port;
    const CALLS: u32 = 20;
    let json = br#"{"object_name":"hidden.txt"}"#.to_vec();
    let grpc = envelope(
        &draftstore_proto::draft::v1::GetUploadUrlRequest {
            object_name: "hidden.txt".into(),
            constraints: None,
        }
        .encode_to_vec(),
    )
    .to_vec();
    for (path, content_type, protocol, body) in [
        (
            "/api/v1/multipart-upload",
            "application/json",
            "rest",
            &json,
        ),
        (
            "/draft.v1.DraftService/GetUploadURL",
            "application/json",
            "connect",
            &json,
        ),
        (
            "/draft.v1.DraftService/GetUploadURL",
            "application/grpc",
            "grpc",
            &grpc,
        ),
    ] {
        let head: Vec<u8> = [
            literal(":method", "POST"),
            literal(":scheme", "http"),
            literal(":path", path),
            literal(":authority", "127.0.0.1"),
            literal("content-type", content_type),
            literal("te", "trailers"),
        ]
        .concat();
        let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        out.extend(frame(4, 0, 0, &[]));
        for stream in (1..2 * CALLS).step_by(2) {
            out.extend(frame(1, 4, stream, &head));
            out.extend(frame(0, 1, stream, body));
            out.extend(frame(3, 0, stream, &8u32.to_be_bytes()));
        }
        let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        tcp.write_all(&out).await.unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        drop(tcp);

        // Connect and gRPC share the path: their lines so far.
        let n = usize::try_from(CALLS).unwrap() * if protocol == "grpc" { 2 } else { 1 };
        let lines = lines_of(&gateway, path, n).await;
        assert_eq!(lines.len(), n, "{protocol}: {lines:?}");
        for line in &lines {
            let status = field(line, "status");
            assert!(
                status == Some("200") || line.contains("STREAM_CANCELLED"),
                "{line}"
            );
        }
        let total: f64 = counted(&gateway, protocol).await.iter().map(|c| c.1).sum();
        assert!(
            (total - f64::from(CALLS)).abs() < 0.5,
            "{protocol}: {total}"
        );
    }
}

/// Asserts that the gateway's REST requests, summed by status over every series, are `want`
/// exactly: no other status counted, none missing.
async fn assert_rest_counted(gateway: &Process, want: &[(&str, f64)]) {
    let mut rest = std::collections::BTreeMap::<String, f64>::new();
    for (status, n) in counted(gateway, "rest").await {
        *rest.entry(status).or_default() += n;
    }
    let want: std::collections::BTreeMap<String, f64> =
        want.iter().map(|(s, n)| ((*s).to_owned(), *n)).collect();
    assert_eq!(rest, want);
}

/// Opens an HTTP/2 `part-urls` call for 1000 parts (an answer of about 100 KB, handed over
/// frame by frame) from a client with a 1 KiB window that never reads: the answer is stuck.
async fn unread_part_urls(
    port: u16,
    upload: &serde_json::Value,
) -> (h2::SendStream<Bytes>, tokio::task::JoinHandle<()>) {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let (mut client, _connection) = crate::harness::h2_windowed(tcp, 1024).await;
    let url = format!("http://127.0.0.1:{port}/api/v1/multipart-upload/part-urls");
    let (response, send) = crate::harness::send_part_urls(&mut client, &url, upload);
    let head = response.await.unwrap();
    assert_eq!(head.status(), 200);
    let reading = tokio::spawn(async move {
        let _open = client;
        let mut body = head.into_body();
        while let Some(Ok(_)) = body.data().await {}
    });
    (send, reading)
}

/// A gateway with no authentication, the stall limit `IDLE_MS` and its HTTP server's debug
/// lines logged, and a multipart upload made on it: the setup of the big-answer tests.
async fn logged_gateway_with_upload() -> (Process, serde_json::Value) {
    let gateway = gateway_with(&[
        ("DRAFTSTORE_AUTH", "none"),
        (
            "DRAFTSTORE_LOG",
            "info,draftstore_gateway::http::server=debug",
        ),
        ("DRAFTSTORE_IDLE_TIMEOUT_MS", &IDLE_MS.to_string()),
    ]);
    let port = gateway.port;
    let upload = crate::harness::create_multipart(&format!(
        "http://127.0.0.1:{port}/api/v1/multipart-upload"
    ))
    .await;
    (gateway, upload)
}

/// POSTs on `client` the 1000-part `part-urls` call of `upload` to the gateway on `port` and
/// reads the answer whole: asserts it is a 200 and returns its body's length.
async fn read_part_urls_whole(
    client: &reqwest::Client,
    port: u16,
    upload: &serde_json::Value,
) -> usize {
    let whole = client
        .post(format!(
            "http://127.0.0.1:{port}/api/v1/multipart-upload/part-urls"
        ))
        .json(&crate::harness::part_urls_call(upload))
        .send()
        .await
        .unwrap();
    assert_eq!(whole.status(), 200);
    whole.bytes().await.unwrap().len()
}

/// A unary HTTP/2 answer over 16 KiB is logged and counted when its last frame is taken, or
/// when it is dropped unfinished: at the stall limit as `STREAM_IDLE` (504), reset by the
/// client as `STREAM_CANCELLED` (499), never as a success when its head went out.
#[tokio::test]
async fn an_unfinished_big_answer_is_logged_and_counted_as_it_ended() {
    let (gateway, upload) = logged_gateway_with_upload().await;
    let port = gateway.port;
    let path = "/api/v1/multipart-upload/part-urls";

    // Stalled: dropped at the stall limit.
    let (send, reading) = unread_part_urls(port, &upload).await;
    tokio::time::timeout(Duration::from_secs(30), reading)
        .await
        .unwrap()
        .unwrap();
    drop(send);
    let lines = lines_of(&gateway, path, 1).await;
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(field(&lines[0], "status"), Some("504"), "{}", lines[0]);
    assert!(lines[0].contains("STREAM_IDLE"), "{}", lines[0]);

    // Reset by the client mid-answer.
    let (mut send, reading) = unread_part_urls(port, &upload).await;
    send.send_reset(h2::Reason::CANCEL);
    tokio::time::timeout(Duration::from_secs(30), reading)
        .await
        .unwrap()
        .unwrap();
    let lines = lines_of(&gateway, path, 2).await;
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[1].contains("STREAM_CANCELLED"), "{}", lines[1]);

    // Read to its end: a success, counted once.
    let client = crate::harness::h2c();
    assert!(read_part_urls_whole(&client, port, &upload).await > 16 * 1024);
    let lines = lines_of(&gateway, path, 3).await;
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(field(&lines[2], "status"), Some("200"), "{}", lines[2]);

    // By status, over both calls (the upload made, the three part-urls answers).
    assert_rest_counted(&gateway, &[("200", 2.0), ("499", 1.0), ("504", 1.0)]).await;
}

/// A big answer reset to make room for another client's is logged and counted as such (503
/// `OVERLOADED`, saying so), not as its client's stall (`STREAM_IDLE`).
#[tokio::test]
async fn an_answer_dropped_to_make_room_is_logged_and_counted_as_overloaded() {
    // 64 places: a byte budget of 1 MiB, filled by three unread answers of 468 KB.
    let gateway = gateway_with(&[
        ("DRAFTSTORE_AUTH", "none"),
        ("DRAFTSTORE_MAX_IN_FLIGHT", "64"),
        ("DRAFTSTORE_IDLE_TIMEOUT_MS", "60000"),
    ]);
    let port = gateway.port;
    let upload = crate::harness::create_multipart(&format!(
        "http://127.0.0.1:{port}/api/v1/multipart-upload"
    ))
    .await;
    let path = "/api/v1/multipart-upload/part-urls";
    let mut hog = Vec::new();
    for _ in 0..3 {
        hog.push(unread_part_urls(port, &upload).await);
    }
    // Once the hog's answers are stale, a newcomer on another address makes room.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let newcomer = crate::stalled_streams::h2c_from([127, 0, 0, 3]);
    assert!(read_part_urls_whole(&newcomer, port, &upload).await > 400_000);
    let lines = lines_of(&gateway, path, 2).await;
    let dropped: Vec<&String> = lines
        .iter()
        .filter(|l| field(l, "status") == Some("503"))
        .collect();
    assert!(!dropped.is_empty(), "{lines:?}");
    for line in &dropped {
        assert!(line.contains("OVERLOADED"), "{line}");
        assert!(line.contains("make room"), "{line}");
        assert!(!line.contains("STREAM_IDLE"), "{line}");
    }
    let rest: Vec<(String, f64)> = counted(&gateway, "rest").await;
    assert!(
        rest.iter().any(|(status, n)| status == "503" && *n >= 1.0),
        "{rest:?}"
    );
    assert!(rest.iter().all(|(status, _)| status != "504"), "{rest:?}");
    for (send, reading) in hog {
        drop(send);
        reading.abort();
    }
}

/// A small HTTP/2 answer (one frame) its client never takes is reset at the stall limit, and
/// that reset is logged and counted, not only the 200 it was answered with.
#[tokio::test]
async fn a_small_answer_reset_at_the_stall_limit_is_logged_and_counted() {
    let gateway = gateway_with(&[
        ("DRAFTSTORE_AUTH", "none"),
        ("DRAFTSTORE_IDLE_TIMEOUT_MS", &IDLE_MS.to_string()),
    ]);
    let port = gateway.port;
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    // A window of 0: not a byte of the answer can be sent.
    let (mut client, connection) = crate::harness::h2_windowed(tcp, 0).await;
    let request = http::Request::builder()
        .method("POST")
        .uri(format!("http://127.0.0.1:{port}/api/v1/upload-url"))
        .header("content-type", "application/json")
        .body(())
        .unwrap();
    let (response, mut send) = client.send_request(request, false).unwrap();
    send.send_data(Bytes::from_static(br#"{"object_name":"w0.bin"}"#), true)
        .unwrap();
    let response = response.await.unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let ended = tokio::time::timeout(Duration::from_secs(30), body.data())
        .await
        .expect("reset at the stall limit");
    assert!(matches!(ended, Some(Err(_))), "{ended:?}");
    let started = Instant::now();
    let line = loop {
        let line = gateway
            .log()
            .lines()
            .find(|l| l.contains("did not take all of it within the stall limit"))
            .map(str::to_owned);
        if line.is_some() || started.elapsed() > Duration::from_secs(10) {
            break line;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let line = line.expect("the reset is logged");
    assert!(line.contains("STREAM_IDLE"), "{line}");
    let metrics = crate::harness::text_of(
        reqwest::Client::new().get(format!("http://127.0.0.1:{port}/metrics")),
    )
    .await;
    assert!(
        metrics
            .lines()
            .any(|l| l == "draftstore_small_answers_stalled_total 1"),
        "{metrics}"
    );
    connection.abort();
}

/// A big HTTP/1.1 answer (1000 part URLs, ~469 KB, paced by its socket) its client leaves
/// unread is logged and counted when it ends: its connection closed at the stall limit, 504
/// `STREAM_IDLE`, not the 200 its head went out with; one read whole is a 200, once.
#[tokio::test]
async fn an_unfinished_big_http1_answer_is_logged_as_it_ended() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (gateway, upload) = logged_gateway_with_upload().await;
    let port = gateway.port;
    let path = "/api/v1/multipart-upload/part-urls";
    let body = serde_json::to_vec(&crate::harness::part_urls_call(&upload)).unwrap();
    // A 4 KiB receive buffer, nothing read: the answer waits for the client.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut tcp = socket
        .connect(std::net::SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    tcp.write_all(&body).await.unwrap();
    tokio::time::sleep(Duration::from_millis(IDLE_MS * 3)).await;
    let lines = lines_of(&gateway, path, 1).await;
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(field(&lines[0], "status"), Some("504"), "{}", lines[0]);
    assert!(lines[0].contains("STREAM_IDLE"), "{}", lines[0]);
    // Read now: its head went out as a 200, but the connection was closed before its end.
    let mut got = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(30), tcp.read_to_end(&mut got)).await;
    assert!(read.is_ok(), "the connection was closed");
    assert!(got.starts_with(b"HTTP/1.1 200"));
    assert!(got.len() < 400_000, "cut short: {}", got.len());

    // Read to its end: a success, counted once.
    let client = reqwest::Client::new();
    assert!(read_part_urls_whole(&client, port, &upload).await > 400_000);
    let lines = lines_of(&gateway, path, 2).await;
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(field(&lines[1], "status"), Some("200"), "{}", lines[1]);
    // The upload made, the part-urls answer read whole, the one left unread.
    assert_rest_counted(&gateway, &[("200", 2.0), ("504", 1.0)]).await;
}
