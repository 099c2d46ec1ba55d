//! Connect's streaming form for server reflection: `buf curl` with its defaults (Connect)
//! lists services and methods and calls a method without `--schema`, as README says; raw
//! h2 streams check the envelopes (messages, then the end-of-stream envelope with `{}` or an
//! error), and what is refused from the head (HTTP/1.1, `application/connect+json`, a unary
//! method in streaming form).

use crate::grpc_clients::{ask, frame, tool, SERVICES};
use crate::grpc_refusals::{buf_run, open_call};
use crate::harness::{start, Running};
use draftstore_proto::grpc::reflection::v1 as reflection;
use draftstore_proto::prost::Message;
use reflection::server_reflection_request::MessageRequest;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buf_curl_with_its_defaults_lists_and_calls_by_reflection() {
    let Some(buf) = tool("DRAFTSTORE_TEST_BUF") else {
        return;
    };
    let Some(server) = start(&[]).await else {
        return;
    };
    let root = server.url("");
    let call = server.url("/draft.v1.DraftService/GetUploadURL");
    // README's command (buf's default protocol is Connect), then native gRPC.
    for protocol in [
        &["--http2-prior-knowledge"][..],
        &[],
        &["--protocol", "grpc", "--http2-prior-knowledge"],
    ] {
        let args = |tail: &[&'static str]| {
            let mut args = vec!["curl"];
            args.extend_from_slice(protocol);
            args.extend_from_slice(tail);
            args
        };
        let (ok, list, stderr) =
            buf_run(&buf, &[&args(&["--list-services"])[..], &[&root]].concat()).await;
        assert!(ok, "{protocol:?}: {stderr}");
        let mut listed: Vec<&str> = list.lines().collect();
        listed.sort_unstable();
        assert_eq!(listed, SERVICES, "{protocol:?}");
        let (ok, methods, stderr) =
            buf_run(&buf, &[&args(&["--list-methods"])[..], &[&root]].concat()).await;
        assert!(ok, "{protocol:?}: {stderr}");
        assert!(
            methods
                .lines()
                .any(|m| m == "draft.v1.DraftService/GetUploadURL"),
            "{methods}"
        );
        // A call built from reflection alone.
        let (ok, answer, stderr) = buf_run(
            &buf,
            &[&args(&["-d", r#"{"object_name":"cat.jpg"}"#])[..], &[&call]].concat(),
        )
        .await;
        assert!(ok, "{protocol:?}: {stderr}");
        let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
        assert_eq!(answer["method"], "PUT", "{protocol:?}: {answer}");
    }
    server.stop().await;
}

/// Sends `body` on a Connect reflection stream over h2 and half-closes: the HTTP status, the
/// content type and the envelopes received.
async fn connect_stream(server: &Running, body: Vec<u8>) -> (u16, String, Vec<(u8, Vec<u8>)>) {
    let mut client = crate::harness::h2_client(server).await;
    let request = http::Request::builder()
        .method("POST")
        .uri(server.url(reflection::INFO_PATH))
        .header("content-type", "application/connect+proto")
        .header("connect-protocol-version", "1")
        .body(())
        .unwrap();
    let (response, mut send) = client.send_request(request, false).unwrap();
    send.send_data(body.into(), true).unwrap();
    let (head, mut body) = response.await.unwrap().into_parts();
    let mut bytes = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.unwrap();
        body.flow_control().release_capacity(chunk.len()).unwrap();
        bytes.extend_from_slice(&chunk);
    }
    let mut envelopes = Vec::new();
    let mut rest = &bytes[..];
    while !rest.is_empty() {
        let len = u32::from_be_bytes(rest[1..5].try_into().unwrap()) as usize;
        envelopes.push((rest[0], rest[5..5 + len].to_vec()));
        rest = &rest[5 + len..];
    }
    let content_type = head.headers["content-type"].to_str().unwrap().to_owned();
    (head.status.as_u16(), content_type, envelopes)
}

#[tokio::test]
async fn connect_reflection_streams_end_with_an_end_of_stream_envelope() {
    let Some(server) = start(&[("DRAFTSTORE_MAX_GRPC_MESSAGE_BYTES", "4096")]).await else {
        return;
    };
    // Two questions, two answers in order, then `{}`.
    let mut both = ask(MessageRequest::ListServices(String::new()));
    both.extend(ask(MessageRequest::FileContainingSymbol(
        "draft.v1.DraftService".into(),
    )));
    let (status, content_type, envelopes) = connect_stream(&server, both).await;
    assert_eq!(status, 200);
    assert_eq!(content_type, "application/connect+proto");
    assert_eq!(envelopes.len(), 3, "{envelopes:?}");
    let first = reflection::ServerReflectionResponse::decode(&envelopes[0].1[..]).unwrap();
    let Some(reflection::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        first.message_response
    else {
        panic!("{first:?}")
    };
    assert_eq!(list.service.len(), 4);
    assert_eq!(envelopes[1].0, 0);
    assert_eq!(envelopes[2], (0x02, b"{}".to_vec()), "end of stream");
    // Errors come in the end-of-stream envelope, with HTTP 200.
    for (body, code) in [
        (frame(0, &[0xff, 0xff]), "invalid_argument"),
        (frame(1, b"x"), "internal"),
        (vec![0, 0, 1, 0, 0], "resource_exhausted"),
    ] {
        let (status, _, envelopes) = connect_stream(&server, body).await;
        assert_eq!(status, 200);
        let (flag, end) = envelopes.last().unwrap();
        assert_eq!(*flag, 0x02);
        let end: serde_json::Value = serde_json::from_slice(end).unwrap();
        assert_eq!(end["error"]["code"], code, "{end}");
        assert!(
            end["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{end}"
        );
        // A compressed flag is refused naming Connect's header, not gRPC's.
        if code == "internal" {
            let message = end["error"]["message"].as_str().unwrap_or_default();
            assert!(
                message.contains("Connect-Content-Encoding") && !message.contains("grpc-encoding"),
                "{end}"
            );
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn connect_streaming_refusals_come_from_the_head() {
    let Some(server) = start(&[]).await else {
        return;
    };
    // JSON streaming is not served: 415 naming what is.
    let (status, _, body) =
        open_call(&server, reflection::INFO_PATH, "application/connect+json").await;
    assert_eq!(status, 415);
    let error: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("application/connect+proto only"),
        "{message}"
    );
    // A unary method in streaming form: a streaming answer (connectrpc.com/docs/protocol/
    // #streaming-response): 200, the error in the end-of-stream envelope, and the message
    // encodings taken in `Connect-Accept-Encoding`.
    let (status, headers, body) = open_call(
        &server,
        "/draft.v1.DraftService/GetUploadURL",
        "application/connect+proto",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "application/connect+proto");
    assert_eq!(headers["connect-accept-encoding"], "identity");
    assert!(headers.get("accept-encoding").is_none(), "{headers:?}");
    let error = end_of_stream(&body);
    assert_eq!(error["error"]["code"], "unimplemented", "{error}");
    // HTTP/1.1 cannot carry a bidirectional stream: refused before its (open) body ends.
    let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "POST {} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/connect+proto\r\n\
         transfer-encoding: chunked\r\n\r\n5\r\n\0\0\0\0\0\r\n",
        reflection::INFO_PATH,
        server.addr
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let mut buf = [0; 4096];
    while !String::from_utf8_lossy(&answer).contains("HTTP/2\"}") {
        let n = tcp.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&answer));
        answer.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("application/connect+proto"), "{text}");
    assert!(text.contains("\"code\":\"unimplemented\""), "{text}");
    assert!(text.contains("needs HTTP/2"), "{text}");
    server.stop().await;
}

/// The JSON of `body`, one Connect end-of-stream envelope (flag `0x02`).
fn end_of_stream(body: &[u8]) -> serde_json::Value {
    assert_eq!(body.first(), Some(&0x02), "{body:?}");
    let len = u32::from_be_bytes(body[1..5].try_into().unwrap()) as usize;
    assert_eq!(body.len(), 5 + len, "one envelope: {body:?}");
    serde_json::from_slice(&body[5..]).unwrap()
}

/// Reflection over Connect streaming is public like over gRPC, unless configured otherwise
/// (refused: 200 with `unauthenticated` in the end-of-stream envelope, as Connect streams
/// answer every error).
#[tokio::test]
async fn connect_reflection_is_public_unless_configured_otherwise() {
    use sha2::Digest;
    let keys = format!("acme {}", hex::encode(sha2::Sha256::digest(b"acme-key")));
    for (public, want) in [("true", None), ("false", Some("unauthenticated"))] {
        let Some(server) = start(&[
            ("DRAFTSTORE_AUTH", "api-keys"),
            ("DRAFTSTORE_API_KEYS", &keys),
            ("DRAFTSTORE_PUBLIC_GRPC_DISCOVERY", public),
        ])
        .await
        else {
            return;
        };
        let mut client = crate::harness::h2_client(&server).await;
        let request = http::Request::builder()
            .method("POST")
            .uri(server.url(reflection::INFO_PATH))
            .header("content-type", "application/connect+proto")
            .body(())
            .unwrap();
        let (response, mut send) = client.send_request(request, false).unwrap();
        let ask = reflection::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        send.send_data(frame(0, &ask.encode_to_vec()).into(), true)
            .unwrap();
        let (head, mut body) = response.await.unwrap().into_parts();
        assert_eq!(head.status, 200, "public={public}");
        let mut bytes = Vec::new();
        while let Some(chunk) = body.data().await {
            let chunk = chunk.unwrap();
            body.flow_control().release_capacity(chunk.len()).unwrap();
            bytes.extend_from_slice(&chunk);
        }
        // The last envelope ends the stream: `{}`, or the error.
        let mut rest = &bytes[..];
        let mut last = Vec::new();
        while !rest.is_empty() {
            let len = u32::from_be_bytes(rest[1..5].try_into().unwrap()) as usize;
            last = rest[..5 + len].to_vec();
            rest = &rest[5 + len..];
        }
        let end = end_of_stream(&last);
        assert_eq!(
            end["error"]["code"].as_str(),
            want,
            "public={public}: {end}"
        );
        server.stop().await;
    }
}
