//! Nothing a client leaves unread lives past the stall limit (the idle timeout): a connection
//! whose client takes no byte of its answers is closed, over HTTP/1.1 too, where the answer
//! would otherwise wait in the kernel's buffers for as long as the connection lives; over
//! HTTP/2 a small answer (one frame) waiting for the client's window has its stream reset.

use crate::harness::start;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const IDLE: Duration = Duration::from_millis(1500);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http1_answer_never_read_closes_its_connection_at_the_stall_limit() {
    let idle = IDLE.as_millis().to_string();
    let Some(server) = start(&[("DRAFTSTORE_IDLE_TIMEOUT_MS", &idle)]).await else {
        return;
    };
    let upload: serde_json::Value = reqwest::Client::new()
        .post(server.url("/api/v1/multipart-upload"))
        .json(&serde_json::json!({"object_name": "mp.bin"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let body = serde_json::to_vec(&serde_json::json!({
        "object_name": upload["object_name"],
        "upload_id": upload["upload_id"],
        "part_numbers": (1..=1000).collect::<Vec<u32>>(),
    }))
    .unwrap();
    // Twenty 468 KB answers (pipelined: 9 MB, more than the kernel buffers hold, at most
    // 4 MiB on Linux) to a client whose receive buffer is 4 KiB and who reads nothing.
    const CALLS: usize = 20;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut tcp = socket.connect(server.addr).await.unwrap();
    let head = format!(
        "POST /api/v1/multipart-upload/part-urls HTTP/1.1\r\nHost: x\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    for _ in 0..CALLS {
        tcp.write_all(head.as_bytes()).await.unwrap();
        tcp.write_all(&body).await.unwrap();
    }
    tokio::time::sleep(IDLE * 3).await;
    // Now read: a connection still open would deliver every answer; one closed ends early.
    let mut got = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(60), async {
        let mut buf = vec![0_u8; 64 * 1024];
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) => return "closed",
                Ok(n) => got.extend_from_slice(buf.get(..n).unwrap()),
                Err(_) => return "reset",
            }
        }
    })
    .await;
    let how = read.expect("the connection ends");
    let text = String::from_utf8_lossy(got.get(..got.len().min(200)).unwrap());
    assert!(text.starts_with("HTTP/1.1 200"), "{how}: {text}");
    let length: usize = text
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length: ")
                .map(|v| v.trim().parse().unwrap())
        })
        .expect("a content-length");
    assert!(
        got.len() < CALLS * length,
        "{how} after {} bytes: every answer was sent",
        got.len()
    );
    // The server still serves this client.
    let again = reqwest::Client::new()
        .get(server.url("/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_http2_answer_never_read_is_reset_at_the_stall_limit() {
    let idle = IDLE.as_millis().to_string();
    let Some(server) = start(&[("DRAFTSTORE_IDLE_TIMEOUT_MS", &idle)]).await else {
        return;
    };
    // A client whose streams get no window at all: every answer's data waits.
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let (client, connection) = crate::harness::h2_windowed(tcp, 0).await;
    let calls = [
        ("POST", "/api/v1/upload-url", r#"{"object_name":"a.bin"}"#),
        ("GET", "/health", ""),
    ];
    let mut ended = Vec::new();
    for (method, path, body) in calls {
        let mut client = client.clone().ready().await.unwrap();
        let request = http::Request::builder()
            .method(method)
            .uri(server.url(path))
            .header("content-type", "application/json")
            .body(())
            .unwrap();
        let (response, mut send) = client.send_request(request, body.is_empty()).unwrap();
        if !body.is_empty() {
            send.send_data(body.as_bytes().to_vec().into(), true)
                .unwrap();
        }
        ended.push(tokio::spawn(async move {
            let _open = send;
            let (head, mut body) = response.await.unwrap().into_parts();
            match body.data().await {
                Some(Ok(data)) => format!("{}: {} bytes taken", head.status, data.len()),
                Some(Err(e)) => format!("{}: reset {:?}", head.status, e.reason()),
                None => format!("{}: ended", head.status),
            }
        }));
    }
    for (stream, (_, path, _)) in ended.into_iter().zip(calls) {
        let how = tokio::time::timeout(IDLE * 10, stream)
            .await
            .unwrap_or_else(|_| panic!("{path}: its answer still waits after ten stall limits"))
            .unwrap();
        assert_eq!(how, "200 OK: reset Some(CANCEL)", "{path}");
    }
    connection.abort();
    server.stop().await;
}
