//! Calls the gateway refuses by their path and protocol alone are answered from their head,
//! while the client still holds the request body open (as a streaming client does): over
//! native gRPC, gRPC-Web and Connect, for an unknown method, an unknown service and server
//! reflection (a bidirectional stream) over the protocols that cannot carry it; native gRPC
//! over HTTP/1.1 too. A refusal that waited for the body would answer the body timeout's
//! DEADLINE_EXCEEDED instead of UNIMPLEMENTED. Then `buf curl` without `--schema` over
//! gRPC-Web and Connect, which asks reflection with the call's own protocol.

use crate::grpc_clients::tool;
use crate::harness::{start, Running};
use draftstore_proto::grpc::reflection::v1 as reflection;
use std::process::Command;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Opens a call over raw h2 and sends a first chunk without ending the stream; the
/// response's status, headers and body read whole, the send stream kept open meanwhile.
pub(crate) async fn open_call(
    server: &Running,
    path: &str,
    content_type: &str,
) -> (http::StatusCode, http::HeaderMap, Vec<u8>) {
    let mut client = crate::harness::h2_client(server).await;
    let request = http::Request::builder()
        .method("POST")
        .uri(server.url(path))
        .header("content-type", content_type)
        .header("te", "trailers")
        .body(())
        .unwrap();
    let (response, mut send) = client.send_request(request, false).unwrap();
    send.send_data(bytes::Bytes::from_static(&[0, 0, 0, 0, 0]), false)
        .unwrap();
    let (head, mut body) = response.await.unwrap().into_parts();
    let mut bytes = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.unwrap();
        body.flow_control().release_capacity(chunk.len()).unwrap();
        bytes.extend_from_slice(&chunk);
    }
    let mut headers = head.headers;
    if let Some(trailers) = body.trailers().await.unwrap() {
        headers.extend(trailers);
    }
    // Dropped only now: the answer did not wait for the end of the request.
    drop(send);
    (head.status, headers, bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_calls_are_answered_while_their_body_is_still_open() {
    let Some(server) = start(&[]).await else {
        return;
    };
    let unknown_method = "/draft.v1.DraftService/Nope";
    let unknown_service = "/acme.v1.Nope/Call";
    for path in [unknown_method, unknown_service] {
        let (status, headers, _) = open_call(&server, path, "application/grpc").await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(headers["grpc-status"], "12", "gRPC {path}: {headers:?}");
    }
    let (_, headers, _) = open_call(&server, unknown_service, "application/grpc").await;
    let message = headers["grpc-message"].to_str().unwrap();
    assert!(message.contains("acme.v1.Nope"), "{message}");
    assert!(message.contains("draft.v1.DraftService"), "{message}");
    for path in [reflection::INFO_PATH, unknown_method, unknown_service] {
        for web in ["application/grpc-web", "application/grpc-web+proto"] {
            let (status, _, body) = open_call(&server, path, web).await;
            assert_eq!(status, 200, "{web} {path}");
            let text = String::from_utf8_lossy(&body);
            assert!(text.contains("grpc-status:12"), "{web} {path}: {text}");
        }
    }
    for path in [
        reflection::INFO_PATH,
        reflection::INFO_PATH_V1ALPHA,
        unknown_method,
    ] {
        for connect in ["application/json", "application/proto"] {
            let (status, _, body) = open_call(&server, path, connect).await;
            assert_eq!(
                status, 501,
                "Connect's status for unimplemented: {connect} {path}"
            );
            let error: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(error["code"], "unimplemented", "{connect} {path}: {error}");
        }
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_grpc_over_http1_is_refused_before_its_body_ends() {
    let Some(server) = start(&[]).await else {
        return;
    };
    let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "POST {} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/grpc\r\n\
         transfer-encoding: chunked\r\n\r\n5\r\n\0\0\0\0\0\r\n",
        draftstore_proto::draft::v1::paths::GET_UPLOAD_URL,
        server.addr
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    // The chunked body never ends; the answer comes anyway.
    let mut answer = Vec::new();
    let mut buf = [0; 4096];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tcp.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed without an answer");
        answer.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&answer).to_lowercase();
    assert!(text.contains("grpc-status: 12"), "{text}");
    assert!(
        text.contains("http%2f2") || text.contains("http/2"),
        "{text}"
    );
    server.stop().await;
}

/// `buf curl` without `--schema`: it asks reflection over the call's own protocol, which
/// must refuse at once with UNIMPLEMENTED (buf then says it found no such service), not
/// wait for the body timeout's DEADLINE_EXCEEDED.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buf_curl_without_a_schema_gets_unimplemented_reflection_at_once() {
    let Some(buf) = tool("DRAFTSTORE_TEST_BUF") else {
        return;
    };
    let Some(server) = start(&[]).await else {
        return;
    };
    let url = server.url("/draft.v1.DraftService/GetUploadURL");
    for (protocol, h2c) in [("grpcweb", true), ("grpcweb", false)] {
        let mut args = vec![
            "curl",
            "-v",
            "--protocol",
            protocol,
            "-d",
            r#"{"object_name":"cat.jpg"}"#,
        ];
        if h2c {
            args.push("--http2-prior-knowledge");
        }
        args.push(&url);
        let (buf, args) = (
            buf.clone(),
            args.iter().map(ToString::to_string).collect::<Vec<_>>(),
        );
        let output = tokio::task::spawn_blocking(move || Command::new(buf).args(args).output())
            .await
            .unwrap()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr).to_lowercase();
        assert!(!output.status.success(), "{protocol} h2c={h2c}: {stderr}");
        assert!(
            // buf's words for a server whose reflection answered UNIMPLEMENTED.
            stderr.contains("failed to find service named"),
            "{protocol} h2c={h2c}: {stderr}"
        );
        // Its verbose trace: both reflection versions answered UNIMPLEMENTED.
        assert_eq!(
            stderr.matches("grpc-status: 12").count(),
            2,
            "{protocol} h2c={h2c}: {stderr}"
        );
        assert!(
            !stderr.contains("deadline"),
            "{protocol} h2c={h2c}: {stderr}"
        );
    }
    server.stop().await;
}

/// Runs buf with `args`: (success, stdout, stderr lower-cased).
pub(crate) async fn buf_run(buf: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let (buf, args) = (
        buf.to_path_buf(),
        args.iter().map(ToString::to_string).collect::<Vec<_>>(),
    );
    let output = tokio::task::spawn_blocking(move || Command::new(buf).args(args).output())
        .await
        .unwrap()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).to_lowercase(),
    )
}

/// Connect's JSON is UTF-8: another charset is 415, `utf-8` (any case, quoted or not) is
/// served; two `Content-Type` headers are 415 whatever they say, not the first winning.
#[tokio::test]
async fn connect_content_types_are_exact() {
    let Some(server) = start(&[]).await else {
        return;
    };
    let post = |types: &'static [&'static str]| {
        let mut request = crate::harness::http1()
            .post(server.url("/draft.v1.DraftService/GetUploadURL"))
            .body(r#"{"objectName": "charset.txt"}"#);
        for t in types {
            request = request.header("content-type", *t);
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let body: serde_json::Value = response.json().await.unwrap();
            (status, body)
        }
    };
    for served in [
        &["application/json"][..],
        &["application/json; charset=utf-8"],
        &["application/json;charset=\"UTF-8\""],
    ] {
        let (status, body) = post(served).await;
        assert_eq!(status, 200, "{served:?}: {body}");
        assert_eq!(body["method"], "PUT", "{served:?}: {body}");
    }
    for refused in [
        &["application/json; charset=iso-8859-1"][..],
        &["application/json; charset=utf-16"],
        &["application/json", "application/proto"],
        &["application/proto", "application/json"],
        &["application/json", "application/json"],
    ] {
        let (status, body) = post(refused).await;
        assert_eq!(status, 415, "{refused:?}: {body}");
        assert_eq!(body["code"], "invalid_argument", "{refused:?}: {body}");
        let message = body["message"].as_str().unwrap();
        assert!(
            message.contains("UTF-8") || message.contains("exactly one Content-Type"),
            "{refused:?}: {message}"
        );
    }
    server.stop().await;
}
