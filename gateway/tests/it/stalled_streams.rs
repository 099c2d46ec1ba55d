//! A streaming client that stops reading (its window never reopened) while sending nothing
//! holds no stream and no admission place past the stream idle limit: the stream is reset,
//! over native gRPC and Connect, and the same peer is admitted again. So is a unary answer
//! that the client never reads, and a client past its byte budget of unread answers is shed
//! (others still served) until it reads them or its streams are reset.

use crate::grpc_clients::ask;
use crate::harness::{start, Running};
use draftstore_proto::grpc::reflection::v1 as reflection;
use reflection::server_reflection_request::MessageRequest;
use std::time::Duration;

const IDLE: Duration = Duration::from_millis(1500);

fn request(server: &Running, connect: bool) -> http::Request<()> {
    let builder = http::Request::builder()
        .method("POST")
        .uri(server.url(reflection::INFO_PATH));
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

/// Opens a reflection stream with a 16-byte window that is never reopened, sends many
/// requests and then nothing (the stream left open); resolves when the stream ends, with
/// how it ended.
async fn stall(server: &Running, connect: bool) -> tokio::task::JoinHandle<String> {
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let (mut client, _connection) = crate::harness::h2_windowed(tcp, 16).await;
    let (response, mut send) = client
        .send_request(request(server, connect), false)
        .unwrap();
    let mut body = Vec::new();
    for _ in 0..1200 {
        body.extend(ask(MessageRequest::FileContainingSymbol(
            "draft.v1.DraftService".to_owned(),
        )));
    }
    send.send_data(body.into(), false).unwrap();
    tokio::spawn(async move {
        let _open = (send, client);
        let (_, mut body) = match response.await {
            Ok(r) => r.into_parts(),
            Err(e) => return format!("no response: {e}"),
        };
        // Read what the window lets in, never releasing capacity.
        loop {
            match body.data().await {
                Some(Ok(_)) => {}
                Some(Err(e)) => return format!("reset: {:?}", e.reason()),
                None => return "ended".to_owned(),
            }
        }
    })
}

/// A list_services call read whole: its `grpc-status`.
async fn list_services(server: &Running) -> String {
    let mut client = crate::harness::h2_client(server).await;
    let (response, mut send) = client.send_request(request(server, false), false).unwrap();
    send.send_data(
        ask(MessageRequest::ListServices(String::new())).into(),
        true,
    )
    .unwrap();
    let (head, mut body) = response.await.unwrap().into_parts();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.unwrap();
        body.flow_control().release_capacity(chunk.len()).unwrap();
    }
    let mut headers = head.headers;
    if let Some(trailers) = body.trailers().await.unwrap() {
        headers.extend(trailers);
    }
    headers
        .get("grpc-status")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_whose_client_stops_reading_is_reset_and_frees_its_place() {
    let idle = IDLE.as_millis().to_string();
    let Some(server) = start(&[
        ("DRAFTSTORE_IDLE_TIMEOUT_MS", &idle),
        ("DRAFTSTORE_MAX_IN_FLIGHT", "4"),
    ])
    .await
    else {
        return;
    };
    let connect = stall(&server, true).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let grpc = stall(&server, false).await;
    // A peer alone holds at most half of the 4 places: both are held, the peer is turned
    // away meanwhile.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_ne!(
        list_services(&server).await,
        "0",
        "the stalled streams hold both places"
    );
    // Ended within twice the idle limit and some slack, not left open.
    let slack = IDLE * 2 + Duration::from_secs(5);
    for (name, stalled) in [("gRPC", grpc), ("Connect", connect)] {
        let how = tokio::time::timeout(slack, stalled)
            .await
            .unwrap_or_else(|_| panic!("{name}: the stalled stream is still open"))
            .unwrap();
        assert!(how.starts_with("reset"), "{name}: {how}");
    }
    assert_eq!(
        list_services(&server).await,
        "0",
        "the peer is admitted again"
    );
    server.stop().await;
}

/// Opens an HTTP/2 `part-urls` call for 1000 parts (an answer of about 100 KB) with a
/// 1 KiB window that is never reopened; resolves when the stream ends, with how it ended.
async fn unread_answer(
    server: &Running,
    upload: &serde_json::Value,
) -> tokio::task::JoinHandle<String> {
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let (mut client, _connection) = crate::harness::h2_windowed(tcp, 1024).await;
    let url = server.url("/api/v1/multipart-upload/part-urls");
    let (response, send) = crate::harness::send_part_urls(&mut client, &url, upload);
    tokio::spawn(async move {
        let _open = (send, client);
        let (head, mut body) = match response.await {
            Ok(r) => r.into_parts(),
            Err(e) => return format!("no response: {e}"),
        };
        if head.status != 200 {
            return format!("status {}", head.status);
        }
        // Read what the window lets in, never releasing capacity.
        loop {
            match body.data().await {
                Some(Ok(_)) => {}
                Some(Err(e)) => return format!("reset: {:?}", e.reason()),
                None => return "ended".to_owned(),
            }
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unread_http2_answer_is_reset_and_frees_its_place() {
    let idle = IDLE.as_millis().to_string();
    let Some(server) = start(&[
        ("DRAFTSTORE_IDLE_TIMEOUT_MS", &idle),
        ("DRAFTSTORE_MAX_IN_FLIGHT", "4"),
    ])
    .await
    else {
        return;
    };
    let upload = crate::harness::create_multipart(&server.url("/api/v1/multipart-upload")).await;
    let first = unread_answer(&server, &upload).await;
    let second = unread_answer(&server, &upload).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let upload_url = || {
        crate::harness::h2c()
            .post(server.url("/api/v1/upload-url"))
            .json(&serde_json::json!({"object_name": "a.bin"}))
    };
    // A peer alone holds at most half of the 4 places: the unread answers hold both, or the
    // first answered alone puts the peer over its byte budget (see the last test) and the
    // other is shed.
    assert_eq!(
        crate::harness::status_of(upload_url()).await,
        503,
        "the unread answers hold the peer's places"
    );
    let slack = IDLE + Duration::from_secs(5);
    let mut resets = 0;
    for stalled in [first, second] {
        let how = tokio::time::timeout(slack, stalled)
            .await
            .expect("the unread answer's stream is still open")
            .unwrap();
        resets += usize::from(how.starts_with("reset"));
        assert!(
            how.starts_with("reset") || how.starts_with("status 503"),
            "{how}"
        );
    }
    assert!(resets >= 1, "no unread answer was reset");
    assert_eq!(
        crate::harness::status_of(upload_url()).await,
        200,
        "the peer is admitted again"
    );
    server.stop().await;
}

/// Opens, on a connection of its own from `source`, an HTTP/2 `part-urls` call for 1000 parts
/// with a 1 KiB window never reopened; returns its status and the tasks keeping the stream and
/// its connection open (abort them to close the connection).
pub(crate) async fn unread_from(
    server: &Running,
    source: [u8; 4],
    upload: &serde_json::Value,
) -> (u16, [tokio::task::JoinHandle<()>; 2]) {
    let tcp = crate::harness::connect_from(server.addr, source).await;
    let (mut client, connection) = crate::harness::h2_windowed(tcp, 1024).await;
    let url = server.url("/api/v1/multipart-upload/part-urls");
    let (response, send) = crate::harness::send_part_urls(&mut client, &url, upload);
    let response = response.await.unwrap();
    let status = response.status().as_u16();
    let open = tokio::spawn(async move {
        let _open = (send, client, response);
        std::future::pending::<()>().await;
    });
    (status, [open, connection])
}

/// An HTTP/2 client from `source`.
pub(crate) fn h2c_from(source: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .http2_prior_knowledge()
        .local_address(std::net::IpAddr::from(source))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unread_answers_past_the_byte_budget_shed_their_peer_only_until_given_back() {
    const ATTACKER: [u8; 4] = [127, 0, 0, 2];
    const VICTIM: [u8; 4] = [127, 0, 0, 3];
    // 16 places: a peer alone holds 8; the byte budget is its least, 1 MiB in all, 256 KiB a
    // peer's fair share once that is full (an unread answer of 1000 part URLs is about 468 KB:
    // three fill it).
    // No stream is reset for idleness.
    let Some(server) = start(&[
        ("DRAFTSTORE_IDLE_TIMEOUT_MS", "60000"),
        ("DRAFTSTORE_MAX_IN_FLIGHT", "16"),
    ])
    .await
    else {
        return;
    };
    let upload = crate::harness::create_multipart(&server.url("/api/v1/multipart-upload")).await;
    let mut open = Vec::new();
    let mut shed_at = None;
    for n in 0..8 {
        let (status, tasks) = unread_from(&server, ATTACKER, &upload).await;
        open.extend(tasks);
        if status == 503 {
            shed_at = Some(n);
            break;
        }
        assert_eq!(status, 200);
    }
    let shed_at = shed_at.expect("a client that never reads is shed before its 8 places");
    assert!(shed_at >= 1, "the first answer is admitted");
    let upload_url = |client: &reqwest::Client| {
        client
            .post(server.url("/api/v1/upload-url"))
            .json(&serde_json::json!({"object_name": "a.bin"}))
            .send()
    };
    let refused = upload_url(&h2c_from(ATTACKER)).await.unwrap();
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "1");
    let error: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(error["error"]["code"], "OVERLOADED", "{error}");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("holds its fair share"),
        "{error}"
    );
    // Over native gRPC too: UNAVAILABLE, in the head (trailers-only).
    let grpc = h2c_from(ATTACKER)
        .post(server.url("/draft.v1.DraftService/GetUploadURL"))
        .header("content-type", "application/grpc")
        .body(vec![0_u8; 5])
        .send()
        .await
        .unwrap();
    assert_eq!(grpc.headers()["grpc-status"], "14", "{:?}", grpc.headers());
    let health = h2c_from(ATTACKER).get(server.url("/health")).send();
    assert_eq!(health.await.unwrap().status(), 200, "probes are never shed");
    let victim = h2c_from(VICTIM);
    assert_eq!(upload_url(&victim).await.unwrap().status(), 200);
    // Closing the connections resets the streams: their bytes are given back.
    for task in open {
        task.abort();
    }
    let attacker = h2c_from(ATTACKER);
    let mut status = 0;
    for _ in 0..100 {
        status = upload_url(&attacker).await.unwrap().status().as_u16();
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, 200, "the reset answers' bytes are given back");
    // Answers read to their end give their bytes back as they go: reading more than the whole
    // budget, one after another, is never shed.
    for _ in 0..4 {
        let read = attacker
            .post(server.url("/api/v1/multipart-upload/part-urls"))
            .json(&serde_json::json!({
                "object_name": upload["object_name"],
                "upload_id": upload["upload_id"],
                "part_numbers": (1..=1000).collect::<Vec<u32>>(),
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(read.status(), 200);
        read.bytes().await.unwrap();
    }
    assert_eq!(upload_url(&attacker).await.unwrap().status(), 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_answer_whose_window_opens_a_byte_at_a_time_is_reset_at_the_stall_limit() {
    let Some(server) = start(&[("DRAFTSTORE_IDLE_TIMEOUT_MS", "1500")]).await else {
        return;
    };
    // A window of one byte (stream and connection), opened by one more byte every 300 ms: the
    // watch must not see each byte as progress, or the answer would stay forever.
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let (mut client, connection) = crate::harness::h2_windowed(tcp, 1).await;
    let request = http::Request::builder()
        .method("POST")
        .uri(server.url("/api/v1/upload-url"))
        .header("content-type", "application/json")
        .body(())
        .unwrap();
    let (response, mut send) = client.send_request(request, false).unwrap();
    send.send_data(
        bytes::Bytes::from_static(br#"{"object_name":"trickle.bin"}"#),
        true,
    )
    .unwrap();
    let response = response.await.unwrap();
    assert_eq!(response.status(), 200);
    let length: usize = response.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(length > 100, "{length}");
    let mut body = response.into_body();
    let mut got = 0;
    let ended = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            match body.data().await {
                Some(Ok(data)) => {
                    got += data.len();
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    let _ = body.flow_control().release_capacity(data.len());
                }
                Some(Err(e)) => break format!("reset: {:?}", e.reason()),
                None => break "ended".to_owned(),
            }
        }
    })
    .await
    .expect("the trickled answer is reset, not kept open");
    assert_eq!(ended, "reset: Some(CANCEL)");
    assert!(got < length, "{got} of {length}");
    connection.abort();
    server.stop().await;
}
