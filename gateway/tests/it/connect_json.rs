//! Connect's JSON codec as clients see it: the proto3 JSON details a Connect client relies on,
//! pinned on the wire (raw HTTP/1.1 and h2c), and a real Connect client, connect-es
//! (`@connectrpc/connect-node` with its JSON codec, `gateway/tests/connect-es/client.cjs`),
//! calling the RPCs over HTTP/1.1 and HTTP/2. The client comes from `scripts/grpc-tools.sh`
//! (`DRAFTSTORE_TEST_CONNECT_ES`); without it that test says so and skips, except under
//! `CI=true`, where that is a failure.

use crate::grpc_clients::tool;
use crate::harness::{start, Running};
use draftstore_proto::draft::v1 as pb;
use serde_json::{json, Value};
use std::process::Command;

/// A Connect JSON call over `client`: (HTTP status, content type, body as text).
async fn call(
    client: &reqwest::Client,
    server: &Running,
    path: &str,
    body: &str,
) -> (u16, String, String) {
    let response = client
        .post(server.url(path))
        .header("content-type", "application/json")
        .header("connect-protocol-version", "1")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    (status, content_type, response.text().await.unwrap())
}

fn h2c() -> reqwest::Client {
    reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap()
}

/// Every key of `value`, at any depth, except inside the maps named in `maps` (their keys are
/// data).
fn keys(value: &Value, maps: &[&str], out: &mut Vec<String>) {
    match value {
        Value::Object(fields) => {
            for (key, inner) in fields {
                out.push(key.clone());
                if !maps.contains(&key.as_str()) {
                    keys(inner, maps, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| keys(i, maps, out)),
        _ => {}
    }
}

#[tokio::test]
async fn connect_json_on_the_wire_is_proto3_json() {
    let Some(server) = start(&[]).await else {
        return;
    };
    for (protocol, client) in [("h1", crate::harness::http1()), ("h2c", h2c())] {
        let name = format!("wire-{protocol}.txt");
        // Requests by .proto names and 64-bit numbers as JSON numbers are read as well.
        let body = format!(
            r#"{{"object_name": "{name}", "constraints": {{"content_length": 5, "contentType": "text/plain"}}}}"#
        );
        let (status, content_type, text) =
            call(&client, &server, pb::paths::GET_UPLOAD_URL, &body).await;
        assert_eq!(
            (status, content_type.as_str()),
            (200, "application/json"),
            "{text}"
        );
        let upload: Value = serde_json::from_str(&text).unwrap();
        // lowerCamelCase json_names, never the .proto names; defaults (false, "") left out.
        let mut names = Vec::new();
        keys(&upload, &["requiredHeaders"], &mut names);
        names.sort();
        assert_eq!(
            names,
            [
                "expiresAt",
                "method",
                "objectName",
                "requiredHeaders",
                "result",
                "success",
                "url"
            ],
            "{text}"
        );
        assert_eq!(upload["result"], json!({"success": true}));
        assert_eq!(upload["objectName"], name.as_str());
        let mut put = reqwest::Client::new()
            .put(upload["url"].as_str().unwrap())
            .body("hello");
        for (header, value) in upload["requiredHeaders"].as_object().unwrap() {
            put = put.header(header.as_str(), value.as_str().unwrap());
        }
        assert_eq!(put.send().await.unwrap().status(), 200, "{protocol}");
        // A uint64 is written as a string.
        let (status, _, text) = call(
            &client,
            &server,
            pb::paths::CONFIRM_UPLOAD,
            &format!(r#"{{"objectName": "{name}"}}"#),
        )
        .await;
        assert_eq!(status, 200, "{text}");
        assert!(text.contains(r#""size":"5""#), "{text}");
        // Enums are read by name or by number; an unknown name is invalid_argument.
        for source in [r#""SOURCE_MAIN""#, "1"] {
            let (status, _, text) = call(
                &client,
                &server,
                pb::paths::GET_DOWNLOAD_URL,
                &format!(r#"{{"objectName": "{name}", "source": {source}}}"#),
            )
            .await;
            assert_eq!(status, 200, "{source}: {text}");
            let url = serde_json::from_str::<Value>(&text).unwrap()["url"]
                .as_str()
                .unwrap()
                .to_owned();
            assert_eq!(crate::harness::fetch(&url).await, b"hello", "{source}");
        }
        let (status, _, text) = call(
            &client,
            &server,
            pb::paths::GET_DOWNLOAD_URL,
            &format!(r#"{{"objectName": "{name}", "source": "SOURCE_NOPE"}}"#),
        )
        .await;
        assert_eq!(status, 400, "{text}");
        let error: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(error["code"], "invalid_argument");
        assert!(
            error["message"].as_str().unwrap().contains("SOURCE_NOPE"),
            "{text}"
        );
        // Enums are written by name; an empty request is `{}`.
        let (status, _, text) = call(&client, &server, "/grpc.health.v1.Health/Check", "{}").await;
        assert_eq!((status, text.as_str()), (200, r#"{"status":"SERVING"}"#));
        // A message whose fields are all defaults is `{}` inside its parent: here `result` is
        // the only field set.
        let (status, _, text) = call(
            &client,
            &server,
            pb::paths::LIST_DRAFTS,
            r#"{"prefix": "nothing-here/"}"#,
        )
        .await;
        assert_eq!(
            (status, text.as_str()),
            (200, r#"{"result":{"success":true}}"#)
        );
        // `null` leaves a message field unset.
        let (status, _, text) = call(
            &client,
            &server,
            pb::paths::GET_UPLOAD_URL,
            &format!(r#"{{"objectName": "{name}", "constraints": null}}"#),
        )
        .await;
        assert_eq!(status, 200, "{text}");
    }
    server.stop().await;
}

/// Runs connect-es's client (`client.cjs`, its modules from `modules`) with `calls` over
/// HTTP `version`: one answer each.
async fn connect_es(
    modules: &std::path::Path,
    server: &Running,
    version: &str,
    calls: Value,
) -> Vec<Value> {
    let schema = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(schema.path(), draftstore_proto::DESCRIPTORS).unwrap();
    let mut node = Command::new("node");
    node.env("NODE_PATH", modules)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/connect-es/client.cjs"
        ))
        .arg(schema.path())
        .arg(server.url(""))
        .arg(version)
        .arg(calls.to_string());
    let output = tokio::task::spawn_blocking(move || node.output())
        .await
        .unwrap()
        .unwrap();
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "client.cjs failed: {}\n{out}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn draft(method: &str, request: Value) -> Value {
    json!({"service": "draft.v1.DraftService", "method": method, "request": request})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_es_calls_the_rpcs_with_its_json_codec() {
    let Some(modules) = tool("DRAFTSTORE_TEST_CONNECT_ES") else {
        return;
    };
    let Some(server) = start(&[]).await else {
        return;
    };
    for version in ["1.1", "2"] {
        let name = format!("connect-es-{version}.txt");
        let first = connect_es(
            &modules,
            &server,
            version,
            json!([
                draft("CreateDraftBucket", json!({})),
                // connect-es writes the uint64 as a string, the enum-free constraints by
                // their json_names.
                draft(
                    "GetUploadURL",
                    json!({"objectName": name, "constraints": {"contentLength": "5", "metadata": {"by": "connect-es"}}})
                ),
                draft("GetUploadURL", json!({"objectName": "../escape"})),
                draft("ConfirmUpload", json!({"objectName": "never-uploaded.txt"})),
                {"service": "grpc.health.v1.Health", "method": "Check", "request": {}},
            ]),
        )
        .await;
        let [bucket, upload, bad, missing, health] = &first[..] else {
            panic!("{first:?}")
        };
        assert_eq!(bucket["ok"]["result"]["success"], true, "{bucket}");
        assert_eq!(
            bucket["ok"]["mainBucket"],
            server.config.buckets.main.to_string()
        );
        assert_eq!(upload["ok"]["objectName"], name.as_str(), "{upload}");
        assert_eq!(upload["ok"]["method"], "PUT");
        assert_eq!(bad["error"]["code"], "InvalidArgument", "{bad}");
        assert!(
            bad["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{bad}"
        );
        assert_eq!(missing["error"]["code"], "NotFound", "{missing}");
        assert_eq!(health["ok"]["status"], "SERVING", "{health}");
        let upload = &upload["ok"];
        let mut put = reqwest::Client::new()
            .put(upload["url"].as_str().unwrap())
            .body("hello");
        for (header, value) in upload["requiredHeaders"].as_object().unwrap() {
            put = put.header(header.as_str(), value.as_str().unwrap());
        }
        assert_eq!(
            put.send().await.unwrap().status(),
            200,
            "{version}: {upload}"
        );
        let second = connect_es(
            &modules,
            &server,
            version,
            json!([
                draft("ListDrafts", json!({"prefix": "connect-es-"})),
                draft("ConfirmUpload", json!({"objectName": name})),
                draft(
                    "GetDownloadURL",
                    json!({"objectName": name, "source": "SOURCE_MAIN"})
                ),
            ]),
        )
        .await;
        let [listed, confirmed, confirmed_url] = &second[..] else {
            panic!("{second:?}")
        };
        let drafts = listed["ok"]["drafts"].as_array().unwrap();
        let mine = drafts
            .iter()
            .find(|d| d["objectName"] == name.as_str())
            .unwrap_or_else(|| panic!("{listed}"));
        // The client decoded our uint64 (a string on the wire) and wrote it back the same way.
        assert_eq!(mine["size"], "5", "{listed}");
        assert_eq!(confirmed["ok"]["size"], "5", "{confirmed}");
        assert_eq!(
            crate::harness::fetch(confirmed_url["ok"]["url"].as_str().unwrap()).await,
            b"hello",
            "{confirmed_url}"
        );
    }
    server.stop().await;
}

/// A Connect call over `client` with any method, content type and extra headers: (HTTP status,
/// headers, body as JSON or `Null`).
async fn raw_call(
    client: &reqwest::Client,
    request: reqwest::RequestBuilder,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let response = client.execute(request.build().unwrap()).await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.bytes().await.unwrap();
    (
        status,
        headers,
        serde_json::from_slice(&body).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn integers_in_every_proto3_form_and_null_defaults_are_read() {
    let Some(server) = start(&[]).await else {
        return;
    };
    for (protocol, client) in [("h1", crate::harness::http1()), ("h2c", h2c())] {
        // The spec: "Either numbers or strings are accepted. Exponent notation is also
        // accepted." The declared length is signed into the URL: the PUT must send 5 bytes.
        for (i, length) in [
            "5",
            "5.0",
            "5e0",
            "0.5e1",
            r#""5""#,
            r#""5e0""#,
            r#""50e-1""#,
        ]
        .iter()
        .enumerate()
        {
            let name = format!("forms-{protocol}-{i}.txt");
            let body = format!(
                r#"{{"objectName": "{name}", "constraints": {{"contentLength": {length}}}}}"#
            );
            let (status, _, text) = call(&client, &server, pb::paths::GET_UPLOAD_URL, &body).await;
            assert_eq!(status, 200, "{protocol} {length}: {text}");
            let upload: Value = serde_json::from_str(&text).unwrap();
            let mut put = reqwest::Client::new()
                .put(upload["url"].as_str().unwrap())
                .body("hello");
            for (header, value) in upload["requiredHeaders"].as_object().unwrap() {
                put = put.header(header.as_str(), value.as_str().unwrap());
            }
            assert_eq!(
                put.send().await.unwrap().status(),
                200,
                "{protocol} {length}"
            );
            let (status, _, text) = call(
                &client,
                &server,
                pb::paths::CONFIRM_UPLOAD,
                &format!(r#"{{"objectName": "{name}", "overwrite": null}}"#),
            )
            .await;
            assert_eq!(status, 200, "{protocol} {length}: {text}");
            assert!(text.contains(r#""size":"5""#), "{text}");
        }
        // Not an integer, out of range, not a number: invalid_argument naming the field.
        for bad in ["1.5", "1e400", r#""1e400""#, "-1", r#""five""#, "true"] {
            let body =
                format!(r#"{{"objectName": "a.txt", "constraints": {{"contentLength": {bad}}}}}"#);
            let (status, _, text) = call(&client, &server, pb::paths::GET_UPLOAD_URL, &body).await;
            assert_eq!(status, 400, "{protocol} {bad}: {text}");
            let error: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(error["code"], "invalid_argument", "{text}");
            let message = error["message"].as_str().unwrap();
            assert!(
                message.contains("contentLength"),
                "{protocol} {bad}: {message}"
            );
            assert!(!message.contains("untagged"), "{protocol} {bad}: {message}");
        }
        // A 32-bit field past its range.
        let (status, _, text) = call(
            &client,
            &server,
            pb::paths::GET_PART_UPLOAD_URLS,
            r#"{"objectName": "a.txt", "uploadId": "x", "partNumbers": [1, 5e9]}"#,
        )
        .await;
        assert_eq!(status, 400, "{text}");
        assert!(text.contains("partNumbers[1]"), "{text}");
        // `null` is the default for plain scalars, maps and repeated fields too.
        let (status, _, text) = call(
            &client,
            &server,
            pb::paths::GET_UPLOAD_URL,
            &format!(
                r#"{{"objectName": "null-{protocol}.txt", "constraints": {{"contentType": null, "checksumSha256": null, "metadata": null, "contentLength": null}}}}"#
            ),
        )
        .await;
        assert_eq!(status, 200, "{protocol}: {text}");
        let (status, _, text) = call(
            &client,
            &server,
            pb::paths::LIST_DRAFTS,
            r#"{"prefix": null}"#,
        )
        .await;
        assert_eq!(status, 200, "{protocol}: {text}");
    }
    server.stop().await;
}

#[tokio::test]
async fn a_method_path_refuses_other_methods_and_media_types_as_connect_does() {
    let Some(server) = start(&[]).await else {
        return;
    };
    let url = server.url(pb::paths::GET_UPLOAD_URL);
    for (protocol, client) in [("h1", crate::harness::http1()), ("h2c", h2c())] {
        // No content type, or one no protocol of the path takes: 415 naming the ones it takes.
        for content_type in [None, Some("text/plain"), Some("application/xml")] {
            let mut request = client.post(&url).body(r#"{"objectName": "a.txt"}"#);
            if let Some(content_type) = content_type {
                request = request.header("content-type", content_type);
            }
            let (status, headers, body) = raw_call(&client, request).await;
            assert_eq!(status, 415, "{protocol} {content_type:?}: {body}");
            let accepted = headers["accept-post"].to_str().unwrap();
            for media in [
                "application/json",
                "application/proto",
                "application/grpc",
                "application/grpc-web-text+proto",
                "application/connect+proto",
            ] {
                assert!(accepted.contains(media), "{accepted}");
            }
            assert_eq!(body["code"], "invalid_argument", "{body}");
        }
        // Another method (Connect's GET form included: no method of ours is free of side
        // effects): 405 with Allow: POST.
        let get =
            format!("{url}?connect=v1&encoding=json&message=%7B%22objectName%22%3A%22a.txt%22%7D");
        for request in [
            client.get(&get),
            client.put(&url).header("content-type", "application/json"),
            client.delete(&url),
        ] {
            let (status, headers, body) = raw_call(&client, request).await;
            assert_eq!(status, 405, "{protocol}: {body}");
            assert_eq!(headers["allow"], "POST");
            assert!(body["message"].as_str().unwrap().contains("POST"), "{body}");
        }
        // A compressed request: unimplemented, naming the one encoding served.
        let request = client
            .post(&url)
            .header("content-type", "application/json")
            .header("content-encoding", "gzip")
            .body("{}");
        let (status, headers, body) = raw_call(&client, request).await;
        assert_eq!(status, 501, "{protocol}: {body}");
        assert_eq!(body["code"], "unimplemented");
        assert_eq!(headers["accept-encoding"], "identity");
        // REST's routes answer as before.
        let request = client
            .post(server.url("/api/v1/nope"))
            .header("content-type", "application/json")
            .body("{}");
        let (status, _, body) = raw_call(&client, request).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (404, Some("NO_SUCH_ROUTE"))
        );
    }
    server.stop().await;
}
