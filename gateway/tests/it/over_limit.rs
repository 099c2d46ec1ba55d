//! Bodies past their limit, of every kind, get their error answer before the stream is reset
//! or the connection closed: declared by `content-length` (answered at once, with no
//! `100 Continue` to a client that asked for one), chunked or streamed and crossing the limit
//! as it comes, and HTTP/2 DATA past the limit; on REST, Connect, gRPC-Web and native gRPC,
//! over HTTP/1.1 and h2c, from curl (which says `Expect: 100-continue` for a large body on
//! HTTP/1.1) and reqwest. Each check reads the status and the error body a user would read.

use crate::harness::{h2c, http1, start, Running};
use draftstore_proto::draft::v1 as pb;
use std::path::Path;
use std::process::Command;

/// The size every refused body has: ten megabytes, past every limit by default.
const BIG: usize = 10 << 20;

/// One protocol's over-limit request and the answer it must get.
struct Case {
    name: &'static str,
    path: &'static str,
    content_type: &'static str,
    /// HTTP status of the answer.
    status: u16,
    /// Text the answer (headers and body) holds.
    says: &'static str,
    /// Native gRPC: HTTP/2 only.
    h2_only: bool,
    /// Refused by its declared length before a byte is read.
    by_length: bool,
}

const CASES: [Case; 4] = [
    Case {
        name: "REST",
        path: "/api/v1/upload-url",
        content_type: "application/json",
        status: 413,
        says: "BODY_TOO_LARGE",
        h2_only: false,
        by_length: true,
    },
    Case {
        name: "Connect",
        path: pb::paths::GET_UPLOAD_URL,
        content_type: "application/json",
        status: 429,
        says: r#""code":"resource_exhausted""#,
        h2_only: false,
        by_length: true,
    },
    Case {
        name: "gRPC-Web",
        path: pb::paths::GET_UPLOAD_URL,
        content_type: "application/grpc-web+proto",
        status: 200,
        says: "grpc-status:8",
        h2_only: false,
        by_length: false,
    },
    Case {
        name: "gRPC",
        path: pb::paths::GET_UPLOAD_URL,
        content_type: "application/grpc",
        status: 200,
        says: r#""grpc-status": "8""#,
        h2_only: true,
        by_length: false,
    },
];

impl Case {
    /// The body: a JSON object of [`BIG`] bytes, or one gRPC frame announcing them.
    fn body(&self) -> Vec<u8> {
        if self.content_type == "application/json" {
            let mut json = br#"{"object_name": ""#.to_vec();
            json.resize(BIG - 2, b'x');
            json.extend_from_slice(br#""}"#);
            json
        } else {
            let mut frame = vec![0_u8];
            frame.extend_from_slice(&u32::try_from(BIG - 5).unwrap().to_be_bytes());
            frame.resize(BIG, 0);
            frame
        }
    }
}

/// Sends `case`'s body with `client`, whole (`content-length`) or streamed in 64 KiB chunks
/// (chunked on HTTP/1.1): the answer's status, headers and body as text.
async fn send(client: &reqwest::Client, server: &Running, case: &Case, streamed: bool) -> String {
    let body = case.body();
    let body = if streamed {
        let chunks: Vec<_> = body
            .chunks(64 << 10)
            .map(|c| Ok::<_, std::io::Error>(bytes::Bytes::copy_from_slice(c)))
            .collect();
        reqwest::Body::wrap_stream(futures_util::stream::iter(chunks))
    } else {
        reqwest::Body::from(body)
    };
    let response = client
        .post(server.url(case.path))
        .header("content-type", case.content_type)
        .body(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{} streamed={streamed}: no answer: {e:?}", case.name));
    let status = response.status().as_u16();
    let headers = format!("{:?}", response.headers());
    let text = response.bytes().await.map_or_else(
        |e| format!("(body cut: {e})"),
        |b| String::from_utf8_lossy(&b).into_owned(),
    );
    format!("{status}\n{headers}\n{text}")
}

/// curl sending `file` to `case`'s path with `extra` arguments: its exit code, the headers it
/// received (every response, `100 Continue` included) and the body.
fn curl(server: &Running, case: &Case, file: &Path, extra: &[&str]) -> (i32, String, String) {
    let dir = file.parent().unwrap();
    let headers = dir.join(format!("headers-{}.txt", fastrand::u64(..)));
    let out = Command::new("curl")
        .args(["-sS", "-X", "POST", "-H"])
        .arg(format!("content-type: {}", case.content_type))
        .arg("--data-binary")
        .arg(format!("@{}", file.display()))
        .arg("-D")
        .arg(&headers)
        .args(extra)
        .arg(server.url(case.path))
        .output()
        .expect("curl is installed");
    let received = std::fs::read_to_string(&headers).unwrap_or_default();
    let _ = std::fs::remove_file(&headers);
    let body = String::from_utf8_lossy(&out.stdout).into_owned();
    let code = out.status.code().unwrap_or(-1);
    (
        code,
        received,
        format!("{body}\n(stderr: {})", String::from_utf8_lossy(&out.stderr)),
    )
}

fn assert_answered(case: &Case, how: &str, answer: &str) {
    let status = answer.split(['\n', ' ']).next().unwrap_or_default();
    assert_eq!(
        status,
        case.status.to_string(),
        "{} {how}: {answer:.600}",
        case.name
    );
    assert!(
        answer.contains(case.says),
        "{} {how}: {answer:.600}",
        case.name
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_over_limit_body_gets_its_answer_from_reqwest() {
    let Some(server) = start(&[]).await else {
        return;
    };
    for case in &CASES {
        for streamed in [false, true] {
            let how = format!("h2c streamed={streamed}");
            let answer = send(&h2c(), &server, case, streamed).await;
            assert_answered(case, &how, &answer);
            if case.h2_only {
                continue;
            }
            let how = format!("HTTP/1.1 streamed={streamed}");
            let answer = send(&http1(), &server, case, streamed).await;
            assert_answered(case, &how, &answer);
            // The connection is closed after the answer, which says so.
            assert!(
                answer.contains(r#""connection": "close""#),
                "{how}: {answer:.600}"
            );
        }
    }
    // The server still answers on a fresh connection.
    let health = http1().get(server.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    server.stop().await;
}

/// What curl printed as the status of the last response in `headers` (after any 100).
fn last_status(headers: &str) -> String {
    headers
        .lines()
        .rfind(|l| l.starts_with("HTTP/"))
        .and_then(|l| l.split(' ').nth(1))
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_over_limit_body_gets_its_answer_from_curl() {
    let Some(server) = start(&[]).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = std::sync::Arc::new(server);
    for (index, case) in CASES.iter().enumerate() {
        let file = dir.path().join(format!("{}.bin", case.name));
        std::fs::write(&file, case.body()).unwrap();
        // curl is no gRPC client (native gRPC is checked with reqwest above). curl 7.88, told
        // 200 (gRPC-Web's error) early over HTTP/2, stops sending yet never ends its
        // request: reqwest checks that case.
        if case.h2_only {
            continue;
        }
        let mut runs: Vec<(&'static str, Vec<&'static str>)> = Vec::new();
        if case.status != 200 {
            runs.push(("h2c prior knowledge", vec!["--http2-prior-knowledge"]));
        }
        {
            runs.extend([
                // curl says `Expect: 100-continue` for a body this large on HTTP/1.1.
                ("HTTP/1.1 content-length, Expect", vec!["--http1.1"]),
                (
                    "HTTP/1.1 chunked, Expect",
                    vec![
                        "--http1.1",
                        "-H",
                        "transfer-encoding: chunked",
                        "-H",
                        "expect: 100-continue",
                    ],
                ),
                (
                    "HTTP/1.1 chunked, no Expect",
                    vec![
                        "--http1.1",
                        "-H",
                        "transfer-encoding: chunked",
                        "-H",
                        "expect:",
                    ],
                ),
                (
                    "HTTP/1.1 content-length, no Expect",
                    vec!["--http1.1", "-H", "expect:"],
                ),
            ]);
        }
        for (how, extra) in runs {
            let (running, path) = (server.clone(), file.clone());
            let (code, headers, body) = tokio::task::spawn_blocking(move || {
                let case = CASES.get(index).unwrap();
                curl(&running, case, &path, &extra)
            })
            .await
            .unwrap();
            let all = format!("{headers}\n{body}");
            assert_eq!(code, 0, "{} {how}: curl failed: {all:.800}", case.name);
            assert_eq!(
                last_status(&headers),
                case.status.to_string(),
                "{} {how}: {all:.800}",
                case.name
            );
            assert!(all.contains(case.says), "{} {how}: {all:.800}", case.name);
            // Refused by its declared length: answered at once, never told to send.
            if case.by_length && how.contains("content-length, Expect") {
                assert!(
                    !headers.contains(" 100"),
                    "{} {how}: 100 Continue sent: {headers}",
                    case.name
                );
            }
        }
        std::fs::remove_file(&file).unwrap();
    }
    match std::sync::Arc::try_unwrap(server) {
        Ok(server) => server.stop().await,
        Err(_) => panic!("server still shared"),
    }
}
