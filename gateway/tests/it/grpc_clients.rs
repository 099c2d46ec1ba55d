//! Every gRPC client on the one port: server reflection driven by grpcurl (v1alpha) and
//! `buf curl` (v1), every RPC over gRPC-Web and Connect with `buf curl`, and raw frames for
//! what those clients never send: `-text` bodies, trailers frames, errors, CORS preflights,
//! Connect errors, a silent or oversized reflection stream. The tools come from
//! `scripts/grpc-tools.sh` (`DRAFTSTORE_TEST_GRPCURL`, `DRAFTSTORE_TEST_BUF`); without them a
//! test says so and skips, except under `CI=true`, where that is a failure.

use crate::harness::{put_to, start, Running};
use base64::Engine;
use draftstore_proto::draft::v1 as pb;
use draftstore_proto::grpc::reflection::v1 as reflection;
use draftstore_proto::prost::Message;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The tool at `$variable`, or `None` (printed) outside CI.
pub(crate) fn tool(variable: &str) -> Option<PathBuf> {
    match std::env::var_os(variable) {
        Some(path) => Some(PathBuf::from(path)),
        None if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("{variable} is not set: scripts/grpc-tools.sh installs the tool (CI=true)")
        }
        None => {
            eprintln!("skipped: {variable} is not set (run scripts/grpc-tools.sh)");
            None
        }
    }
}

/// Runs `program args`: whether it succeeded, its stdout and its stderr, and the command line.
async fn output(program: PathBuf, args: Vec<String>) -> (bool, String, String, String) {
    let shown = format!("{} {}", program.display(), args.join(" "));
    let output = tokio::task::spawn_blocking(move || Command::new(program).args(args).output())
        .await
        .unwrap()
        .unwrap();
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    (
        output.status.success(),
        text(&output.stdout),
        text(&output.stderr),
        shown,
    )
}

/// Runs `program args`; its stdout, or a panic with its stderr.
async fn run(program: PathBuf, args: Vec<String>) -> String {
    let (ok, stdout, stderr, shown) = output(program, args).await;
    assert!(ok, "{shown} failed: {stderr}\n{stdout}");
    stdout
}

/// Runs `program args`, which must fail; its stdout and stderr.
async fn run_failing(program: PathBuf, args: Vec<String>) -> String {
    let (ok, stdout, stderr, shown) = output(program, args).await;
    assert!(!ok, "{shown} succeeded: {stdout}");
    stdout + &stderr
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(ToString::to_string).collect()
}

/// Every service reflection lists, in its order.
pub(crate) const SERVICES: [&str; 4] = [
    "draft.v1.DraftService",
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcurl_lists_describes_and_calls_by_reflection_alone() {
    let Some(grpcurl) = tool("DRAFTSTORE_TEST_GRPCURL") else {
        return;
    };
    let Some(server) = start(&[]).await else {
        return;
    };
    let addr = server.addr.to_string();
    let list = run(grpcurl.clone(), strings(&["-plaintext", &addr, "list"])).await;
    let listed: Vec<&str> = list.lines().collect();
    assert_eq!(listed, SERVICES, "{list}");
    let described = run(
        grpcurl.clone(),
        strings(&["-plaintext", &addr, "describe", "draft.v1.DraftService"]),
    )
    .await;
    for rpc in [
        "CreateDraftBucket",
        "GetUploadURL",
        "GetDownloadURL",
        "ConfirmUpload",
    ] {
        assert!(described.contains(&format!("rpc {rpc}")), "{described}");
    }
    let message = run(
        grpcurl.clone(),
        strings(&[
            "-plaintext",
            &addr,
            "describe",
            "draft.v1.GetUploadURLRequest",
        ]),
    )
    .await;
    assert!(message.contains("string object_name = 1;"), "{message}");
    run(
        grpcurl.clone(),
        strings(&[
            "-plaintext",
            &addr,
            "draft.v1.DraftService/CreateDraftBucket",
        ]),
    )
    .await;
    let answer = run(
        grpcurl.clone(),
        strings(&[
            "-plaintext",
            "-d",
            r#"{"object_name": "grpcurl.txt"}"#,
            &addr,
            "draft.v1.DraftService/GetUploadURL",
        ]),
    )
    .await;
    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
    let url = answer["url"].as_str().unwrap();
    assert_eq!(answer["objectName"], "grpcurl.txt");
    assert_eq!(put_to(url, "from grpcurl").await, 200, "the URL works");
    server.stop().await;
}

/// grpcurl, finding the error details' types by reflection like any message, prints an error's
/// `google.rpc.ErrorInfo` (DraftStore's code as its reason) and, for a rate limit, its
/// `google.rpc.RetryInfo` (the delay REST sends as `Retry-After`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcurl_reads_the_error_details_by_reflection() {
    let Some(grpcurl) = tool("DRAFTSTORE_TEST_GRPCURL") else {
        return;
    };
    let keys = format!("acme {} rate=1/3600", crate::harness::key_hash("acme-key"));
    let Some(server) = crate::harness::start_with_keys(&keys).await else {
        return;
    };
    let addr = server.addr.to_string();
    let call = |name: &str| {
        strings(&[
            "-plaintext",
            "-H",
            "authorization: Bearer acme-key",
            "-d",
            &format!(r#"{{"object_name": "{name}"}}"#),
            &addr,
            "draft.v1.DraftService/GetUploadURL",
        ])
    };
    let bad = run_failing(grpcurl.clone(), call("../x")).await;
    assert!(bad.contains("Code: InvalidArgument"), "{bad}");
    assert!(
        bad.contains(r#""@type":"type.googleapis.com/google.rpc.ErrorInfo","domain":"draftstore","reason":"INVALID_OBJECT_NAME""#),
        "{bad}"
    );
    assert!(!bad.contains("RetryInfo"), "{bad}");
    // The tenant's one URL an hour, then a rate limit saying when to retry.
    run(grpcurl.clone(), call("first.txt")).await;
    let limited = run_failing(grpcurl, call("second.txt")).await;
    assert!(limited.contains("Code: ResourceExhausted"), "{limited}");
    assert!(limited.contains(r#""reason":"RATE_LIMITED""#), "{limited}");
    let retry = limited
        .lines()
        .find(|l| l.contains("type.googleapis.com/google.rpc.RetryInfo"))
        .unwrap_or_else(|| panic!("no RetryInfo: {limited}"));
    let seconds: u64 = retry
        .split(r#""retryDelay":""#)
        .nth(1)
        .and_then(|rest| rest.split('s').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no retryDelay: {retry}"));
    assert!((3500..=3600).contains(&seconds), "{retry}");
    server.stop().await;
}

/// The descriptor set as a file `buf curl --schema` reads (an image is a descriptor set).
fn schema() -> tempfile::TempPath {
    let file = tempfile::Builder::new()
        .suffix(".binpb")
        .tempfile()
        .unwrap();
    std::fs::write(file.path(), draftstore_proto::DESCRIPTORS).unwrap();
    file.into_temp_path()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buf_curl_lists_services_over_reflection_v1() {
    let Some(buf) = tool("DRAFTSTORE_TEST_BUF") else {
        return;
    };
    let Some(server) = start(&[]).await else {
        return;
    };
    let list = run(
        buf,
        strings(&[
            "curl",
            "--protocol",
            "grpc",
            "--http2-prior-knowledge",
            "--reflect-protocol",
            "grpc-v1",
            "--list-services",
            &server.url(""),
        ]),
    )
    .await;
    let mut listed: Vec<&str> = list.lines().collect();
    listed.sort_unstable();
    assert_eq!(listed, SERVICES, "{list}");
    server.stop().await;
}

/// `buf curl` of `method` with `body` over `protocol`: the JSON answer.
async fn buf_curl(
    buf: &Path,
    schema: &tempfile::TempPath,
    server: &Running,
    protocol: &str,
    h2c: bool,
    method: &str,
    body: &str,
) -> serde_json::Value {
    let schema = schema.to_str().unwrap();
    let url = server.url(&format!("/{method}"));
    let mut args = strings(&[
        "curl",
        "--protocol",
        protocol,
        "--schema",
        schema,
        "-d",
        body,
    ]);
    if h2c {
        args.push("--http2-prior-knowledge".into());
    }
    args.push(url);
    let out = run(buf.to_path_buf(), args).await;
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{method}: {e}: {out}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buf_curl_calls_every_rpc_over_grpc_web_and_connect() {
    let Some(buf) = tool("DRAFTSTORE_TEST_BUF") else {
        return;
    };
    let Some(server) = start(&[]).await else {
        return;
    };
    let schema = schema();
    for (protocol, h2c) in [
        ("grpcweb", false),
        ("grpcweb", true),
        ("connect", false),
        ("connect", true),
    ] {
        let name = format!("{protocol}-{h2c}.txt");
        let call = |method: &'static str, body: String| {
            let (buf, schema, server) = (&buf, &schema, &server);
            async move { buf_curl(buf, schema, server, protocol, h2c, method, &body).await }
        };
        let bucket = call("draft.v1.DraftService/CreateDraftBucket", "{}".into()).await;
        assert_eq!(bucket["result"]["success"], true, "{protocol}: {bucket}");
        assert_eq!(bucket["mainBucket"], server.config.buckets.main.to_string());
        let upload = call(
            "draft.v1.DraftService/GetUploadURL",
            format!(
                r#"{{"objectName": "{name}", "constraints": {{"contentType": "text/plain"}}}}"#
            ),
        )
        .await;
        assert_eq!(upload["method"], "PUT", "{protocol}: {upload}");
        let url = upload["url"].as_str().unwrap();
        let mut put = reqwest::Client::new().put(url).body("hello");
        for (name, value) in upload["requiredHeaders"].as_object().unwrap() {
            put = put.header(name.as_str(), value.as_str().unwrap());
        }
        assert_eq!(
            put.send().await.unwrap().status(),
            200,
            "{protocol}: the URL works"
        );
        let preview = call(
            "draft.v1.DraftService/GetDownloadURL",
            format!(r#"{{"objectName": "{name}"}}"#),
        )
        .await;
        assert_eq!(
            crate::harness::fetch(preview["url"].as_str().unwrap()).await,
            b"hello"
        );
        let confirmed = call(
            "draft.v1.DraftService/ConfirmUpload",
            format!(r#"{{"objectName": "{name}"}}"#),
        )
        .await;
        assert_eq!(confirmed["size"], "5", "{protocol}: {confirmed}");
        let health = call("grpc.health.v1.Health/Check", "{}".into()).await;
        assert_eq!(health["status"], "SERVING", "{protocol}");
    }
    server.stop().await;
}

/// `message` framed as gRPC frames it (and Connect's streaming form envelopes it).
pub(crate) fn frame(flag: u8, message: &[u8]) -> Vec<u8> {
    [&[flag][..], &(message.len() as u32).to_be_bytes(), message].concat()
}

/// A reflection request asking `q`, framed.
pub(crate) fn ask(q: reflection::server_reflection_request::MessageRequest) -> Vec<u8> {
    let request = reflection::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(q),
    };
    frame(0, &request.encode_to_vec())
}

/// The frames of a gRPC-Web body: (flag, payload) each.
fn frames(mut body: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    while !body.is_empty() {
        let len = u32::from_be_bytes(body[1..5].try_into().unwrap()) as usize;
        out.push((body[0], body[5..5 + len].to_vec()));
        body = &body[5 + len..];
    }
    out
}

/// A raw gRPC-Web call over HTTP/1.1: (HTTP status, content type, frames).
async fn web_call(
    server: &Running,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, String, Vec<(u8, Vec<u8>)>) {
    let text = content_type.contains("-text");
    let body = if text {
        base64::engine::general_purpose::STANDARD
            .encode(&body)
            .into_bytes()
    } else {
        body
    };
    let response = crate::harness::http1()
        .post(server.url(path))
        .header("content-type", content_type)
        .header("x-grpc-web", "1")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let mirrored = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    let bytes = response.bytes().await.unwrap();
    let bytes = if text {
        base64::engine::general_purpose::STANDARD
            .decode(&bytes)
            .unwrap()
    } else {
        bytes.to_vec()
    };
    (status, mirrored, frames(&bytes))
}

fn trailer(frames: &[(u8, Vec<u8>)], name: &str) -> Option<String> {
    let (flag, lines) = frames.last()?;
    assert_eq!(*flag, 0x80, "the last frame holds the trailers");
    String::from_utf8_lossy(lines)
        .split("\r\n")
        .find_map(|line| line.strip_prefix(&format!("{name}:")).map(str::to_owned))
}

#[tokio::test]
async fn grpc_web_raw_frames_text_trailers_and_errors() {
    let Some(server) = start(&[("DRAFTSTORE_MAX_GRPC_MESSAGE_BYTES", "4096")]).await else {
        return;
    };
    let ok = pb::GetUploadUrlRequest {
        object_name: "web.txt".into(),
        constraints: None,
    }
    .encode_to_vec();
    for content_type in [
        "application/grpc-web",
        "application/grpc-web+proto",
        "application/grpc-web-text",
        "application/grpc-web-text+proto",
    ] {
        let (status, mirrored, frames) = web_call(
            &server,
            pb::paths::GET_UPLOAD_URL,
            content_type,
            frame(0, &ok),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(mirrored, content_type, "content type mirrored");
        assert_eq!(frames.len(), 2, "{content_type}: a message, then trailers");
        assert_eq!(frames[0].0, 0);
        let answer = pb::GetUploadUrlResponse::decode(&frames[0].1[..]).unwrap();
        assert_eq!(answer.object_name, "web.txt");
        assert_eq!(trailer(&frames, "grpc-status").as_deref(), Some("0"));
    }
    let bad_name = pb::GetUploadUrlRequest {
        object_name: "../x".into(),
        constraints: None,
    }
    .encode_to_vec();
    let cases: Vec<(&str, &str, Vec<u8>, &str)> = vec![
        (
            "bad name",
            pb::paths::GET_UPLOAD_URL,
            frame(0, &bad_name),
            "3",
        ),
        (
            "4 GiB length",
            pb::paths::GET_UPLOAD_URL,
            [0, 0xff, 0xff, 0xff, 0xff].to_vec(),
            "8",
        ),
        (
            "truncated",
            pb::paths::GET_UPLOAD_URL,
            vec![0, 0, 0, 0, 9, 1],
            "3",
        ),
        (
            "unknown method",
            "/draft.v1.DraftService/Nope",
            frame(0, b""),
            "12",
        ),
        ("reflection", reflection::INFO_PATH, frame(0, b""), "12"),
    ];
    for (what, path, body, code) in cases {
        for content_type in ["application/grpc-web+proto", "application/grpc-web-text"] {
            let (status, _, frames) = web_call(&server, path, content_type, body.clone()).await;
            assert_eq!(status, 200, "{what}");
            assert_eq!(frames.len(), 1, "{what}: trailers alone");
            assert_eq!(
                trailer(&frames, "grpc-status").as_deref(),
                Some(code),
                "{what}"
            );
            assert!(
                trailer(&frames, "grpc-message").is_some(),
                "{what}: says why"
            );
        }
    }
    // Not base64.
    let response = crate::harness::http1()
        .post(server.url(pb::paths::GET_UPLOAD_URL))
        .header("content-type", "application/grpc-web-text")
        .body("!!not base64!!")
        .send()
        .await
        .unwrap();
    let body = base64::engine::general_purpose::STANDARD
        .decode(response.bytes().await.unwrap())
        .unwrap();
    let frames = frames(&body);
    assert_eq!(trailer(&frames, "grpc-status").as_deref(), Some("3"));
    assert!(trailer(&frames, "grpc-message").unwrap().contains("base64"));
    server.stop().await;
}

#[tokio::test]
async fn grpc_web_cors_preflight_allows_its_headers_and_exposes_the_status() {
    let origin = "https://app.example.com";
    let Some(server) = start(&[("DRAFTSTORE_CORS_ORIGINS", origin)]).await else {
        return;
    };
    let client = crate::harness::http1();
    let preflight = client
        .request(
            reqwest::Method::OPTIONS,
            server.url(pb::paths::GET_UPLOAD_URL),
        )
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    let allowed = preflight.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap();
    for header in ["x-grpc-web", "x-user-agent", "grpc-timeout", "content-type"] {
        assert!(allowed.contains(header), "{header} in {allowed}");
    }
    let ok = pb::GetUploadUrlRequest {
        object_name: "cors.txt".into(),
        constraints: None,
    }
    .encode_to_vec();
    let response = client
        .post(server.url(pb::paths::GET_UPLOAD_URL))
        .header("origin", origin)
        .header("content-type", "application/grpc-web+proto")
        .body(frame(0, &ok))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["access-control-allow-origin"], origin);
    let exposed = response.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap();
    for header in ["grpc-status", "grpc-message"] {
        assert!(exposed.contains(header), "{header} in {exposed}");
    }
    // REST answers exactly as before.
    let rest = client
        .post(server.url("/api/v1/upload-url"))
        .header("origin", origin)
        .header("content-type", "application/json")
        .body(r#"{"object_name": "cors.txt"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(
        rest.headers()["access-control-expose-headers"],
        "etag, x-request-id"
    );
    server.stop().await;
}

/// What, path, content type, `Connect-Protocol-Version`, body, HTTP status, Connect code.
type ConnectCase<'a> = (&'a str, &'a str, &'a str, &'a str, Vec<u8>, u16, &'a str);

#[tokio::test]
async fn connect_errors_carry_connect_codes_and_statuses() {
    let Some(server) = start(&[]).await else {
        return;
    };
    let client = crate::harness::http1();
    let post = |path: &str, content_type: &str, version: &str, body: Vec<u8>| {
        client
            .post(server.url(path))
            .header("content-type", content_type)
            .header("connect-protocol-version", version)
            .body(body)
            .send()
    };
    let cases: Vec<ConnectCase<'_>> = vec![
        (
            "bad name",
            pb::paths::GET_UPLOAD_URL,
            "application/json",
            "1",
            br#"{"objectName": "../x"}"#.to_vec(),
            400,
            "invalid_argument",
        ),
        (
            "not JSON",
            pb::paths::GET_UPLOAD_URL,
            "application/json",
            "1",
            b"{".to_vec(),
            400,
            "invalid_argument",
        ),
        (
            "wrong type",
            pb::paths::GET_UPLOAD_URL,
            "application/json",
            "1",
            br#"{"objectName": 5}"#.to_vec(),
            400,
            "invalid_argument",
        ),
        (
            "bad proto",
            pb::paths::GET_UPLOAD_URL,
            "application/proto",
            "1",
            vec![0xff, 0xff],
            400,
            "invalid_argument",
        ),
        (
            "version 2",
            pb::paths::GET_UPLOAD_URL,
            "application/json",
            "2",
            b"{}".to_vec(),
            400,
            "invalid_argument",
        ),
        (
            "unknown method",
            "/draft.v1.DraftService/Nope",
            "application/json",
            "1",
            b"{}".to_vec(),
            501,
            "unimplemented",
        ),
        (
            "reflection",
            reflection::INFO_PATH,
            "application/proto",
            "1",
            vec![],
            501,
            "unimplemented",
        ),
        (
            "missing draft",
            pb::paths::CONFIRM_UPLOAD,
            "application/json",
            "1",
            br#"{"objectName": "never.txt"}"#.to_vec(),
            404,
            "not_found",
        ),
    ];
    for (what, path, content_type, version, body, status, code) in cases {
        let response = post(path, content_type, version, body).await.unwrap();
        assert_eq!(response.status(), status, "{what}");
        assert_eq!(
            response.headers()["content-type"],
            "application/json",
            "{what}"
        );
        let error: serde_json::Value = response.json().await.unwrap();
        assert_eq!(error["code"], code, "{what}: {error}");
        assert!(
            error["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{what}"
        );
    }
    // A binary success, and REST's route with the same media type is REST as before.
    let ok = post(
        pb::paths::GET_UPLOAD_URL,
        "application/proto",
        "1",
        pb::GetUploadUrlRequest {
            object_name: "connect.bin".into(),
            constraints: None,
        }
        .encode_to_vec(),
    )
    .await
    .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.headers()["content-type"], "application/proto");
    let answer = pb::GetUploadUrlResponse::decode(ok.bytes().await.unwrap()).unwrap();
    assert_eq!(answer.object_name, "connect.bin");
    // Fields this server does not know (a client built from a newer draft.proto) are dropped
    // over JSON as over protobuf, as connect-go's JSON codec does.
    let newer = post(
        pb::paths::GET_UPLOAD_URL,
        "application/json",
        "1",
        br#"{"objectName": "newer.bin", "fieldFromTheFuture": 1}"#.to_vec(),
    )
    .await
    .unwrap();
    assert_eq!(newer.status(), 200);
    let newer: serde_json::Value = newer.json().await.unwrap();
    assert_eq!(newer["objectName"], "newer.bin", "{newer}");
    let rest = post(
        "/api/v1/upload-url",
        "application/json",
        "1",
        br#"{"object_name": 5}"#.to_vec(),
    )
    .await
    .unwrap();
    assert_eq!(rest.status(), 400);
    let rest: serde_json::Value = rest.json().await.unwrap();
    assert_eq!(
        rest["error"]["code"], "INVALID_REQUEST",
        "REST's own error shape"
    );
    server.stop().await;
}

/// Opens a reflection stream over raw h2: the response and the stream to send on.
async fn reflection_stream(
    server: &Running,
) -> (h2::client::ResponseFuture, h2::SendStream<bytes::Bytes>) {
    let mut client = crate::harness::h2_client(server).await;
    let request = http::Request::builder()
        .method("POST")
        .uri(server.url(reflection::INFO_PATH))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .unwrap();
    client.send_request(request, false).unwrap()
}

/// Reads the response's messages and its trailers.
async fn read_stream(response: h2::client::ResponseFuture) -> (Vec<Vec<u8>>, http::HeaderMap) {
    let mut body = response.await.unwrap().into_body();
    let mut bytes = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.unwrap();
        body.flow_control().release_capacity(chunk.len()).unwrap();
        bytes.extend_from_slice(&chunk);
    }
    let trailers = body.trailers().await.unwrap().unwrap_or_default();
    (
        frames(&bytes).into_iter().map(|(_, m)| m).collect(),
        trailers,
    )
}

#[tokio::test]
async fn reflection_streams_answer_in_order_and_end_cleanly() {
    let Some(server) = start(&[
        ("DRAFTSTORE_IDLE_TIMEOUT_MS", "1000"),
        ("DRAFTSTORE_MAX_GRPC_MESSAGE_BYTES", "4096"),
    ])
    .await
    else {
        return;
    };
    use reflection::server_reflection_request::MessageRequest;
    // Two questions in one stream, then a half-close: two answers in order, status 0.
    let (response, mut send) = reflection_stream(&server).await;
    let mut both = ask(MessageRequest::ListServices(String::new()));
    both.extend(ask(MessageRequest::FileContainingSymbol(
        "draft.v1.DraftService".into(),
    )));
    send.send_data(both.into(), true).unwrap();
    let (messages, trailers) = read_stream(response).await;
    assert_eq!(trailers["grpc-status"], "0");
    assert_eq!(messages.len(), 2);
    let first = reflection::ServerReflectionResponse::decode(&messages[0][..]).unwrap();
    assert!(matches!(
        first.message_response,
        Some(reflection::server_reflection_response::MessageResponse::ListServicesResponse(_))
    ));
    let second = reflection::ServerReflectionResponse::decode(&messages[1][..]).unwrap();
    assert!(matches!(
        second.message_response,
        Some(reflection::server_reflection_response::MessageResponse::FileDescriptorResponse(_))
    ));
    // A silent stream ends at the idle limit, with DEADLINE_EXCEEDED.
    let (response, _send) = reflection_stream(&server).await;
    let (messages, trailers) = read_stream(response).await;
    assert!(messages.is_empty());
    assert_eq!(trailers["grpc-status"], "4");
    // A message over the limit ends the stream before it is sent.
    let (response, mut send) = reflection_stream(&server).await;
    send.send_data(vec![0, 0, 1, 0, 0].into(), false).unwrap();
    let (_, trailers) = read_stream(response).await;
    assert_eq!(trailers["grpc-status"], "8");
    server.stop().await;
}

/// The gRPC status of a reflection stream asking for the service list, without credentials.
async fn list_services_status(server: &Running) -> String {
    use reflection::server_reflection_request::MessageRequest;
    let (response, mut send) = reflection_stream(server).await;
    let ask = reflection::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    send.send_data(frame(0, &ask.encode_to_vec()).into(), true)
        .unwrap();
    let response = response.await.unwrap();
    if let Some(status) = response.headers().get("grpc-status") {
        return status.to_str().unwrap().to_owned(); // trailers-only
    }
    let mut body = response.into_body();
    while let Some(chunk) = body.data().await {
        body.flow_control()
            .release_capacity(chunk.unwrap().len())
            .unwrap();
    }
    let trailers = body.trailers().await.unwrap().unwrap();
    trailers["grpc-status"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn reflection_and_health_are_public_unless_configured_otherwise() {
    use sha2::Digest;
    let keys = format!("acme {}", hex::encode(sha2::Sha256::digest(b"acme-key")));
    for public in ["true", "false"] {
        let Some(server) = start(&[
            ("DRAFTSTORE_AUTH", "api-keys"),
            ("DRAFTSTORE_API_KEYS", &keys),
            ("DRAFTSTORE_PUBLIC_GRPC_DISCOVERY", public),
        ])
        .await
        else {
            return;
        };
        let connect = |path: &'static str| {
            crate::harness::http1()
                .post(server.url(path))
                .header("content-type", "application/json")
                .body("{}")
                .send()
        };
        let health = connect("/grpc.health.v1.Health/Check").await.unwrap();
        let upload = connect(pb::paths::GET_UPLOAD_URL).await.unwrap();
        assert_eq!(upload.status(), 401, "the API always needs a key");
        let reflection = list_services_status(&server).await;
        if public == "true" {
            assert_eq!(health.status(), 200);
            assert_eq!(reflection, "0");
        } else {
            assert_eq!(health.status(), 401);
            assert_eq!(reflection, "16", "UNAUTHENTICATED");
        }
        server.stop().await;
    }
}

/// `Connect-Protocol-Version` sent more than once is refused like a single wrong one, whatever
/// comes first: `1` then `2` is no version 1 call.
#[tokio::test]
async fn connect_protocol_version_twice_is_refused() {
    let Some(server) = start(&[]).await else {
        return;
    };
    for client in [crate::harness::http1(), crate::harness::h2c()] {
        for versions in [["1", "2"], ["2", "1"], ["1", "1"]] {
            let resp = client
                .post(server.url(pb::paths::GET_UPLOAD_URL))
                .header("content-type", "application/json")
                .header("connect-protocol-version", versions[0])
                .header("connect-protocol-version", versions[1])
                .body(r#"{"objectName": "twice.txt"}"#)
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            let body: serde_json::Value = resp.json().await.unwrap();
            assert_eq!(status, 400, "{versions:?}: {body}");
            assert_eq!(body["code"], "invalid_argument", "{versions:?}: {body}");
            assert!(
                body["message"]
                    .as_str()
                    .unwrap()
                    .contains("Connect-Protocol-Version"),
                "{versions:?}: {body}"
            );
        }
        let once = client
            .post(server.url(pb::paths::GET_UPLOAD_URL))
            .header("content-type", "application/json")
            .header("connect-protocol-version", "1")
            .body(r#"{"objectName": "once.txt"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(once.status(), 200);
    }
    server.stop().await;
}
