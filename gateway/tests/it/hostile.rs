//! Hostile clients: each gets its documented error or a disconnect, and the server keeps
//! answering other clients meanwhile. (Bad names, bad JSON and bad gRPC frames are in
//! rest_api.rs and grpc_api.rs.)

use crate::harness::{h2c, http1, start, Running};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn still_serving(server: &Running) {
    let resp = h2c()
        .get(server.url("/health"))
        .timeout(Duration::from_secs(2))
        .send()
        .await;
    assert_eq!(
        resp.map(|r| r.status().as_u16()).ok(),
        Some(200),
        "other clients are served"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_megabytes_of_json_are_refused_before_or_while_reading() {
    let Some(server) = start(&[]).await else {
        return;
    };
    let big = format!("{{\"object_name\": \"{}\"}}", "x".repeat(10 << 20));
    // Declared on the head alone, no body sent: refused before anything is read.
    let mut raw = TcpStream::connect(server.addr).await.unwrap();
    let head = format!("POST /api/v1/upload-url HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n", big.len());
    raw.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0_u8; 512];
    let n = tokio::time::timeout(Duration::from_secs(5), raw.read(&mut answer))
        .await
        .unwrap()
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(
        answer.starts_with("HTTP/1.1 413") && answer.contains("BODY_TOO_LARGE"),
        "with content-length: {answer}"
    );
    let stream = futures_util::stream::iter(
        big.into_bytes()
            .chunks(64 * 1024)
            .map(|c| Ok::<_, std::io::Error>(bytes::Bytes::copy_from_slice(c)))
            .collect::<Vec<_>>(),
    );
    let chunked = http1()
        .post(server.url("/api/v1/upload-url"))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await;
    // Refused while reading: a 413, or the connection closed mid-upload.
    assert!(
        chunked.map(|r| r.status().as_u16() == 413).unwrap_or(true),
        "chunked"
    );
    still_serving(&server).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slowloris_client_is_cut_off() {
    let Some(server) = start(&[
        ("DRAFTSTORE_HEADER_TIMEOUT_MS", "500"),
        ("DRAFTSTORE_REQUEST_TIMEOUT_MS", "1000"),
    ])
    .await
    else {
        return;
    };
    // The request head, a byte at a time: closed after the header timeout.
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    let started = Instant::now();
    let mut closed = false;
    for byte in b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: "
        .iter()
        .chain(std::iter::repeat(&b'a'))
    {
        if slow.write_all(&[*byte]).await.is_err() {
            closed = true;
            break;
        }
        let mut buf = [0_u8; 256];
        if let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_millis(100), slow.read(&mut buf)).await
        {
            closed = n == 0 || String::from_utf8_lossy(&buf[..n]).contains("408");
            if closed {
                break;
            }
        }
        still_serving(&server).await;
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the slow head was not cut off"
        );
    }
    assert!(closed);
    // A body that never finishes: answered 408 when the body-read time (the header timeout
    // again) is up, before the request timeout.
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    slow.write_all(b"POST /api/v1/upload-url HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"object").await.unwrap();
    let mut answer = String::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), slow.read_to_string(&mut answer)).await;
    assert!(
        answer.starts_with("HTTP/1.1 408") && answer.contains("BODY_TIMEOUT"),
        "{answer}"
    );
    still_serving(&server).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_rapid_reset_is_stopped() {
    let Some(server) = start(&[]).await else {
        return;
    };
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let (mut client, connection) = h2::client::handshake(tcp).await.unwrap();
    let connection = tokio::spawn(connection);
    let mut sent = 0;
    let started = Instant::now();
    while sent < 20_000 && started.elapsed() < Duration::from_secs(10) {
        let Ok(ready) = client.ready().await else {
            break;
        };
        client = ready;
        let request = http::Request::post(format!("http://{}/api/v1/upload-url", server.addr))
            .header("content-type", "application/json")
            .body(())
            .unwrap();
        let Ok((_response, mut stream)) = client.send_request(request, false) else {
            break;
        };
        stream.send_reset(h2::Reason::CANCEL);
        sent += 1;
    }
    // hyper answers a flood of resets with GOAWAY and closes the connection.
    let closed = tokio::time::timeout(Duration::from_secs(5), connection).await;
    assert!(
        closed.is_ok(),
        "the attacking connection was closed (after {sent} resets)"
    );
    assert!(
        sent < 20_000,
        "the flood was cut short, not absorbed: {sent} resets"
    );
    still_serving(&server).await;
    server.stop().await;
}

/// The kernel's timer on the TCP connection from `local` to `remote`, as `/proc/net/tcp` shows
/// it: 0 none, 1 retransmit, 2 keepalive, ...
fn tcp_timer(local: std::net::SocketAddr, remote: std::net::SocketAddr) -> Option<u8> {
    let hex = |a: std::net::SocketAddr| {
        let std::net::IpAddr::V4(ip) = a.ip() else {
            panic!("IPv4 only")
        };
        format!("{:08X}:{:04X}", u32::from_le_bytes(ip.octets()), a.port())
    };
    let (local, remote) = (hex(local), hex(remote));
    std::fs::read_to_string("/proc/net/tcp")
        .unwrap()
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.get(1) == Some(&local.as_str()) && f.get(2) == Some(&remote.as_str()))
        .and_then(|f| f.get(5)?.split(':').next()?.parse().ok())
}

/// A client that vanishes without closing (pulled cable, dead NAT entry) is found by TCP
/// keepalive, on the server's side of every connection, whatever the protocol.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_carry_tcp_keepalive() {
    let Some(server) = start(&[]).await else {
        return;
    };
    let mut client = TcpStream::connect(server.addr).await.unwrap();
    client
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0_u8; 512];
    let n = client.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let client_addr = client.local_addr().unwrap();
    assert_eq!(
        tcp_timer(server.addr, client_addr),
        Some(2),
        "the server's socket has a keepalive timer"
    );
    assert_eq!(
        tcp_timer(client_addr, server.addr),
        Some(0),
        "and the plain client's has none: the check can tell"
    );
    server.stop().await;
}
