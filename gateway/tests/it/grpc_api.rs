//! The README flow over gRPC with an independent client (tonic, no code generation: its
//! generic unary call with prost messages), every gRPC status, and raw frames a well-behaved
//! client would never send.

use crate::harness::start;
use draftstore_core::{Metadata, PutOptions, DECLARED_KEY};
use draftstore_proto::draft::v1 as pb;
use draftstore_proto::grpc::health::v1 as health;
use draftstore_proto::prost::Message;
use tonic::Code;

pub async fn client(addr: std::net::SocketAddr) -> tonic::client::Grpc<tonic::transport::Channel> {
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    tonic::client::Grpc::new(channel)
}

pub async fn call<Req, Resp>(
    grpc: &mut tonic::client::Grpc<tonic::transport::Channel>,
    path: &'static str,
    req: Req,
) -> Result<Resp, tonic::Status>
where
    Req: Message + Send + Sync + 'static,
    Resp: Message + Default + Send + Sync + 'static,
{
    grpc.ready().await.unwrap();
    let codec = tonic_prost::ProstCodec::<Req, Resp>::default();
    grpc.unary(
        tonic::Request::new(req),
        http::uri::PathAndQuery::from_static(path),
        codec,
    )
    .await
    .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn readme_flow_over_grpc_with_tonic() {
    use pb::paths::*;
    let Some(server) = start(&[]).await else {
        return;
    };
    let mut grpc = client(server.addr).await;
    let created: pb::CreateDraftBucketResponse = call(
        &mut grpc,
        CREATE_DRAFT_BUCKET,
        pb::CreateDraftBucketRequest {},
    )
    .await
    .unwrap();
    assert!(created.result.unwrap().success);

    let name = "grpc/ሴ cat+.jpg".to_string();
    let up: pb::GetUploadUrlResponse = call(
        &mut grpc,
        GET_UPLOAD_URL,
        pb::GetUploadUrlRequest {
            object_name: name.clone(),
            constraints: None,
        },
    )
    .await
    .unwrap();
    assert!(up.result.as_ref().unwrap().success);
    assert_eq!(
        (up.method.as_str(), up.object_name.as_str()),
        ("PUT", name.as_str())
    );
    assert!(up.required_headers.is_empty());
    let bytes = b"bytes sent straight to S3".to_vec();
    assert_eq!(crate::harness::put_to(&up.url, bytes.clone()).await, 200);

    let down: pb::GetDownloadUrlResponse = call(
        &mut grpc,
        GET_DOWNLOAD_URL,
        pb::GetDownloadUrlRequest {
            object_name: name.clone(),
            source: pb::Source::Draft as i32,
        },
    )
    .await
    .unwrap();
    assert_eq!(crate::harness::fetch(&down.url).await, bytes);

    let done: pb::ConfirmUploadResponse = call(
        &mut grpc,
        CONFIRM_UPLOAD,
        pb::ConfirmUploadRequest {
            object_name: name.clone(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(done.result.as_ref().unwrap().success);
    assert_eq!(
        done.final_location,
        format!("{}/{name}", server.config.buckets.main)
    );
    assert_eq!(done.size, bytes.len() as u64);
    let main: pb::GetDownloadUrlResponse = call(
        &mut grpc,
        GET_DOWNLOAD_URL,
        pb::GetDownloadUrlRequest {
            object_name: name.clone(),
            source: pb::Source::Main as i32,
        },
    )
    .await
    .unwrap();
    assert_eq!(crate::harness::fetch(&main.url).await, bytes);
    let again: pb::ConfirmUploadResponse = call(
        &mut grpc,
        CONFIRM_UPLOAD,
        pb::ConfirmUploadRequest {
            object_name: name.clone(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(again.etag, done.etag, "idempotent");

    let status: health::HealthCheckResponse = call(
        &mut grpc,
        health::CHECK_PATH,
        health::HealthCheckRequest::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        status.status,
        health::health_check_response::ServingStatus::Serving as i32
    );
    server.stop().await;
}

#[tokio::test]
async fn every_grpc_status() {
    use pb::paths::*;
    let Some(server) = start(&[("DRAFTSTORE_MAX_GRPC_MESSAGE_BYTES", "4096")]).await else {
        return;
    };
    let mut grpc = client(server.addr).await;
    let _: pb::CreateDraftBucketResponse = call(
        &mut grpc,
        CREATE_DRAFT_BUCKET,
        pb::CreateDraftBucketRequest {},
    )
    .await
    .unwrap();
    let upload = |name: &str| pb::GetUploadUrlRequest {
        object_name: name.into(),
        constraints: None,
    };
    let confirm = |name: &str| pb::ConfirmUploadRequest {
        object_name: name.into(),
        ..Default::default()
    };

    let err =
        call::<_, pb::GetUploadUrlResponse>(&mut grpc, GET_UPLOAD_URL, upload("../etc/passwd"))
            .await
            .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("'..'"), "{err:?}");
    let err =
        call::<_, pb::GetUploadUrlResponse>(&mut grpc, GET_UPLOAD_URL, upload(&"x".repeat(5000)))
            .await
            .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    let err =
        call::<_, pb::ConfirmUploadResponse>(&mut grpc, CONFIRM_UPLOAD, confirm("never-uploaded"))
            .await
            .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = call::<_, pb::GetDownloadUrlResponse>(
        &mut grpc,
        GET_DOWNLOAD_URL,
        pb::GetDownloadUrlRequest {
            object_name: "nope".into(),
            source: 0,
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    // An enum value this API does not have is refused, not read as the default.
    let err = call::<_, pb::GetDownloadUrlResponse>(
        &mut grpc,
        GET_DOWNLOAD_URL,
        pb::GetDownloadUrlRequest {
            object_name: "nope".into(),
            source: 7,
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("source 7"), "{err:?}");
    for source in [2, -1, i32::MAX] {
        let err = call::<_, pb::GetDownloadUrlResponse>(
            &mut grpc,
            GET_DOWNLOAD_URL,
            pb::GetDownloadUrlRequest {
                object_name: "nope".into(),
                source,
            },
        )
        .await
        .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
        assert!(
            err.message().contains(&format!("source {source}"))
                && err
                    .message()
                    .contains("SOURCE_DRAFT (0) or SOURCE_MAIN (1)"),
            "names the field and what it accepts: {err:?}"
        );
    }
    let err = call::<_, pb::ConfirmUploadResponse>(
        &mut grpc,
        "/draft.v1.DraftService/DeleteEverything",
        confirm("x"),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented);

    let s3 = server.storage();
    let b = &server.config.buckets;
    s3.put_object(&b.draft, "taken", b"one".to_vec(), &PutOptions::default())
        .await
        .unwrap();
    let _: pb::ConfirmUploadResponse = call(&mut grpc, CONFIRM_UPLOAD, confirm("taken"))
        .await
        .unwrap();
    s3.put_object(&b.draft, "taken", b"two".to_vec(), &PutOptions::default())
        .await
        .unwrap();
    let err = call::<_, pb::ConfirmUploadResponse>(&mut grpc, CONFIRM_UPLOAD, confirm("taken"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    let stamp = PutOptions {
        metadata: Metadata::from([(DECLARED_KEY.to_owned(), "len=100".to_owned())]),
        ..PutOptions::default()
    };
    s3.put_object(&b.draft, "short", b"12345".to_vec(), &stamp)
        .await
        .unwrap();
    let err = call::<_, pb::ConfirmUploadResponse>(&mut grpc, CONFIRM_UPLOAD, confirm("short"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    // Constraints given at confirm time are checked too.
    s3.put_object(&b.draft, "typed", b"abc".to_vec(), &PutOptions::default())
        .await
        .unwrap();
    let expect = pb::UploadConstraints {
        content_type: "image/png".into(),
        ..Default::default()
    };
    let err = call::<_, pb::ConfirmUploadResponse>(
        &mut grpc,
        CONFIRM_UPLOAD,
        pb::ConfirmUploadRequest {
            object_name: "typed".into(),
            overwrite: false,
            constraints: Some(expect),
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    server.stop().await;

    // The rest is about S3 itself (its refusal of the gateway's credentials, its absence), so
    // it runs against S3 whatever store the suite uses.
    let Some(denied) = crate::harness::start_s3(&[("AWS_SECRET_ACCESS_KEY", "wrong-secret")]).await
    else {
        return;
    };
    let err = call::<_, pb::ConfirmUploadResponse>(
        &mut client(denied.addr).await,
        CONFIRM_UPLOAD,
        confirm("x"),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::Internal);
    denied.stop().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let down = crate::harness::start_s3(&[
        ("AWS_ENDPOINT_URL", &endpoint),
        ("DRAFTSTORE_S3_MAX_ATTEMPTS", "2"),
    ])
    .await
    .unwrap();
    let mut grpc = client(down.addr).await;
    let err = call::<_, pb::ConfirmUploadResponse>(&mut grpc, CONFIRM_UPLOAD, confirm("x"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    let status: health::HealthCheckResponse = call(
        &mut grpc,
        health::CHECK_PATH,
        health::HealthCheckRequest::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        status.status,
        health::health_check_response::ServingStatus::NotServing as i32
    );
    down.stop().await;
}

/// Raw HTTP/2 requests with hand-made frames: each gets its documented status, and the server
/// keeps serving.
#[tokio::test]
async fn hostile_frames_get_clean_statuses() {
    let Some(server) = start(&[("DRAFTSTORE_MAX_GRPC_MESSAGE_BYTES", "4096")]).await else {
        return;
    };
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let message = pb::GetUploadUrlRequest {
        object_name: "ok.txt".into(),
        constraints: None,
    }
    .encode_to_vec();
    let frame = |flag: u8, len: u32, body: &[u8]| [&[flag][..], &len.to_be_bytes(), body].concat();
    let cases: Vec<(&str, Vec<u8>, &str, i32)> = vec![
        // Flag set without grpc-encoding: ill-constructed, INTERNAL (gRPC compression spec).
        (
            "compressed flag",
            frame(1, message.len() as u32, &message),
            pb::paths::GET_UPLOAD_URL,
            13,
        ),
        (
            "4 GiB length",
            frame(0, u32::MAX, b"tiny"),
            pb::paths::GET_UPLOAD_URL,
            8,
        ),
        ("truncated header", vec![0, 0], pb::paths::GET_UPLOAD_URL, 3),
        (
            "truncated message",
            frame(0, 100, b"short"),
            pb::paths::GET_UPLOAD_URL,
            3,
        ),
        (
            "two messages",
            [frame(0, message.len() as u32, &message), frame(0, 0, b"")].concat(),
            pb::paths::GET_UPLOAD_URL,
            3,
        ),
        (
            "not protobuf",
            frame(0, 3, b"\xff\xff\xff"),
            pb::paths::GET_UPLOAD_URL,
            3,
        ),
        (
            "invalid UTF-8 in a name",
            frame(0, 5, b"\x0a\x03a\xffb"),
            pb::paths::GET_UPLOAD_URL,
            3,
        ),
        (
            "unknown method",
            frame(0, 0, b""),
            "/draft.v1.DraftService/Nope",
            12,
        ),
        (
            "unknown service",
            frame(0, 0, b""),
            "/other.Service/Call",
            12,
        ),
        (
            "fine",
            frame(0, message.len() as u32, &message),
            pb::paths::GET_UPLOAD_URL,
            0,
        ),
    ];
    for (what, body, path, code) in cases {
        let resp = h2
            .post(server.url(path))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200, "{what}");
        let in_headers = resp
            .headers()
            .get("grpc-status")
            .map(|v| v.to_str().unwrap().parse::<i32>().unwrap());
        let status = match in_headers {
            Some(s) => s,
            None => {
                // Success: the status is in the trailers; reqwest does not expose them, so a
                // framed body is the proof.
                let bytes = resp.bytes().await.unwrap();
                assert!(bytes.len() > 5 && bytes[0] == 0, "{what}: framed reply");
                0
            }
        };
        assert_eq!(status, code, "{what}");
    }
    // grpc-timeout: a deadline already passed is DEADLINE_EXCEEDED (4) without doing anything.
    let body = frame(0, message.len() as u32, &message);
    let resp = h2
        .post(server.url(pb::paths::GET_DOWNLOAD_URL))
        .header("content-type", "application/grpc")
        .header("grpc-timeout", "0n")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["grpc-status"], "4");
    // A malformed grpc-timeout (gRPC's TimeoutValue is at most 8 digits, its unit one of
    // HMSmun) is INTERNAL "malformed grpc-timeout", as grpc-go answers it, over native gRPC
    // and gRPC-Web: the call never runs without the deadline its client set.
    for bad in ["1x", "999999999S", "S", "1.5S"] {
        let resp = h2
            .post(server.url(pb::paths::GET_DOWNLOAD_URL))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .header("grpc-timeout", bad)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.headers()["grpc-status"], "13", "{bad}");
        let message = resp.headers()["grpc-message"].to_str().unwrap();
        assert!(
            message.starts_with("malformed grpc-timeout"),
            "{bad}: {message}"
        );
        let web = crate::harness::http1()
            .post(server.url(pb::paths::GET_DOWNLOAD_URL))
            .header("content-type", "application/grpc-web+proto")
            .header("grpc-timeout", bad)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&web.bytes().await.unwrap()).to_lowercase();
        assert!(text.contains("grpc-status:13"), "gRPC-Web {bad}: {text}");
        assert!(
            text.contains("malformed grpc-timeout"),
            "gRPC-Web {bad}: {text}"
        );
    }
    server.stop().await;
}

/// The gRPC compression spec's cases (grpc/doc/compression.md, test cases 4 and 6): the
/// compressed flag without a `grpc-encoding` other than `identity` is INTERNAL; a compression
/// the server does not support is UNIMPLEMENTED with `grpc-accept-encoding` naming what it
/// does (not the one used); an uncompressed message is served whatever `grpc-encoding` says.
#[tokio::test]
async fn compressed_messages_follow_the_grpc_compression_spec() {
    let Some(server) = start(&[]).await else {
        return;
    };
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let message = pb::GetUploadUrlRequest {
        object_name: "packed.txt".into(),
        constraints: None,
    }
    .encode_to_vec();
    let frame = |flag: u8| [&[flag][..], &(message.len() as u32).to_be_bytes(), &message].concat();
    for (what, flag, encoding, code, says) in [
        ("flag, no encoding", 1, None, "13", "compressed flag"),
        (
            "flag, identity",
            1,
            Some("identity"),
            "13",
            "compressed flag",
        ),
        ("flag, gzip", 1, Some("gzip"), "12", "gzip"),
        ("flag, unknown", 1, Some("snappy-x"), "12", "identity only"),
        ("no flag, gzip declared", 0, Some("gzip"), "0", ""),
        ("no flag, identity", 0, Some("identity"), "0", ""),
    ] {
        let mut request = h2
            .post(server.url(pb::paths::GET_UPLOAD_URL))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(frame(flag));
        if let Some(encoding) = encoding {
            request = request.header("grpc-encoding", encoding);
        }
        let resp = request.send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200, "{what}");
        assert_eq!(
            resp.headers()["grpc-accept-encoding"],
            "identity",
            "{what}: says what it accepts, never the encoding used"
        );
        let status = resp
            .headers()
            .get("grpc-status")
            .map(|v| v.to_str().unwrap().to_owned());
        let text = resp
            .headers()
            .get("grpc-message")
            .map(|v| v.to_str().unwrap().replace("%20", " "))
            .unwrap_or_default();
        if code == "0" {
            assert_eq!(status, None, "{what}: {text}");
            let bytes = resp.bytes().await.unwrap();
            assert!(
                bytes.len() > 5 && bytes[0] == 0,
                "{what}: an uncompressed reply"
            );
        } else {
            assert_eq!(status.as_deref(), Some(code), "{what}: {text}");
            assert!(text.contains(says), "{what}: {text}");
        }
    }
    server.stop().await;
}

/// `grpc-timeout` cuts a call whose S3 request is slow (the fault proxy delays it).
#[tokio::test]
async fn grpc_timeout_is_honoured() {
    use crate::proxy::{Proxy, ProxyFault};
    let Some(env) = crate::s3::env(&[]) else {
        return;
    };
    let proxy = Proxy::start(env["AWS_ENDPOINT_URL"].clone()).await;
    let Some(server) = crate::harness::start_s3(&[("AWS_ENDPOINT_URL", &proxy.url())]).await else {
        return;
    };
    proxy.push([ProxyFault::Delay(std::time::Duration::from_secs(2))]);
    let message = pb::GetDownloadUrlRequest {
        object_name: "slow".into(),
        source: 0,
    }
    .encode_to_vec();
    let body = [&[0_u8][..], &(message.len() as u32).to_be_bytes(), &message].concat();
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    let resp = h2
        .post(server.url(pb::paths::GET_DOWNLOAD_URL))
        .header("content-type", "application/grpc")
        .header("grpc-timeout", "200m")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["grpc-status"], "4");
    assert!(
        started.elapsed() < std::time::Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    server.stop().await;
}

/// A client's deadline counts from its request's arrival, its body's reading included: a unary
/// call whose message came whole but whose stream stays open is answered DEADLINE_EXCEEDED at
/// its deadline (300 ms), not at the body-read timeout (10 s). Native gRPC (`grpc-timeout`,
/// trailers-only status 4) and Connect (`Connect-Timeout-Ms`, HTTP 504).
#[tokio::test]
async fn the_deadline_covers_a_body_still_arriving() {
    let Some(server) = start(&[]).await else {
        return;
    };
    let message = pb::GetUploadUrlRequest {
        object_name: "late.txt".into(),
        constraints: None,
    }
    .encode_to_vec();
    let framed = [&[0_u8][..], &(message.len() as u32).to_be_bytes(), &message].concat();
    let cases = [
        ("application/grpc", "grpc-timeout", "300m", framed),
        ("application/proto", "connect-timeout-ms", "300", message),
    ];
    for (media, header, value, body) in cases {
        let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        let (client, _connection) = crate::harness::h2_with_windows(tcp, 65_535, 65_535).await;
        let mut ready = client.ready().await.unwrap();
        let mut request = http::Request::post(server.url(pb::paths::GET_UPLOAD_URL))
            .header("content-type", media)
            .header(header, value);
        if media == "application/proto" {
            request = request.header("connect-protocol-version", "1");
        }
        let (response, mut send) = ready
            .send_request(request.body(()).unwrap(), false)
            .unwrap();
        // The message whole, the stream left open.
        send.send_data(bytes::Bytes::from(body), false).unwrap();
        let started = std::time::Instant::now();
        let response = tokio::time::timeout(std::time::Duration::from_secs(5), response)
            .await
            .unwrap_or_else(|_| panic!("{media}: no answer at the deadline"))
            .unwrap();
        let elapsed = started.elapsed();
        assert!(
            elapsed < std::time::Duration::from_secs(3),
            "{media}: {elapsed:?}"
        );
        if media == "application/grpc" {
            assert_eq!(response.headers()["grpc-status"], "4", "{media}");
        } else {
            assert_eq!(response.status(), 504, "{media}");
        }
        drop(send);
    }
    server.stop().await;
}

/// #14 items 3 and 7 over gRPC: metadata past the real budget and names with line separators
/// or bidi controls are INVALID_ARGUMENT naming the budget or the rule; exactly the budget is
/// accepted.
#[tokio::test]
async fn metadata_budget_and_log_forging_names_over_grpc() {
    use pb::paths::*;
    let Some(server) = start(&[]).await else {
        return;
    };
    let mut grpc = client(server.addr).await;
    let with_note = |len: usize| pb::GetUploadUrlRequest {
        object_name: "m.txt".into(),
        constraints: Some(pb::UploadConstraints {
            metadata: [("note".to_owned(), "x".repeat(len))].into(),
            ..Default::default()
        }),
    };
    let err = call::<_, pb::GetUploadUrlResponse>(&mut grpc, GET_UPLOAD_URL, with_note(1968))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("leaves 1896 for yours"), "{err:?}");
    let up: pb::GetUploadUrlResponse = call(&mut grpc, GET_UPLOAD_URL, with_note(1896 - 4))
        .await
        .unwrap();
    assert!(up.result.unwrap().success);

    for (name, code) in [("log\u{2029}forged", "U+2029"), ("\u{2066}x", "U+2066")] {
        let err = call::<_, pb::GetUploadUrlResponse>(
            &mut grpc,
            GET_UPLOAD_URL,
            pb::GetUploadUrlRequest {
                object_name: name.into(),
                constraints: None,
            },
        )
        .await
        .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
        assert!(err.message().contains(code), "{err:?}");
    }
    server.stop().await;
}
