//! The README flow over REST (HTTP/1.1 and h2c) against the real server and SeaweedFS, and
//! every REST error status.

use crate::harness::{h2c, http1, start, status_of};
use draftstore_core::{Metadata, PutOptions, DECLARED_KEY};
use serde_json::{json, Value};

async fn post(
    client: &reqwest::Client,
    url: String,
    body: Value,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let resp = client.post(url).json(&body).send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::Null),
        headers,
    )
}

/// `body` sent as it is, as `application/json`: its status and its JSON answer (`null` if none).
async fn post_text(client: &reqwest::Client, url: String, body: &str) -> (u16, Value) {
    let resp = client
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test]
async fn readme_flow_over_http1_and_h2c() {
    let Some(server) = start(&[]).await else {
        return;
    };
    for (protocol, client) in [("http/1.1", http1()), ("h2c", h2c())] {
        let (status, _, headers) =
            post(&client, server.url("/api/v1/draft-bucket"), json!({})).await;
        assert_eq!(status, 200, "{protocol}");
        assert!(headers.contains_key("x-request-id"));

        let name = format!("{protocol}/photos/cat ሴ+1.jpg");
        let (status, up, _) = post(
            &client,
            server.url("/api/v1/upload-url"),
            json!({"object_name": name}),
        )
        .await;
        assert_eq!(status, 200, "{protocol}: {up}");
        assert_eq!(up["method"], "PUT");
        assert_eq!(up["object_name"], name.as_str());
        assert_eq!(
            up["required_headers"],
            json!({}),
            "nothing declared: a plain PUT works"
        );
        assert!(up["expires_at"].as_str().unwrap().ends_with('Z'));
        let bytes: Vec<u8> = (0..70_000_u32).map(|i| (i % 251) as u8).collect();
        assert_eq!(
            crate::harness::put_to(up["upload_url"].as_str().unwrap(), bytes.clone()).await,
            200,
            "{protocol}: PUT to the presigned URL"
        );

        let (status, down, _) = post(
            &client,
            server.url("/api/v1/download-url"),
            json!({"object_name": name}),
        )
        .await;
        assert_eq!(status, 200, "{protocol}: {down}");
        assert_eq!(
            crate::harness::fetch(down["download_url"].as_str().unwrap()).await,
            bytes,
            "{protocol}: the draft previews"
        );

        let (status, done, _) = post(
            &client,
            server.url("/api/v1/confirm-upload"),
            json!({"object_name": name}),
        )
        .await;
        assert_eq!(status, 200, "{protocol}: {done}");
        assert_eq!(done["success"], true);
        assert_eq!(
            done["final_location"],
            format!("{}/{name}", server.config.buckets.main)
        );
        assert_eq!(done["size"], bytes.len());

        let (status, main, _) = post(
            &client,
            server.url("/api/v1/download-url"),
            json!({"object_name": name, "source": "main"}),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(
            crate::harness::fetch(main["download_url"].as_str().unwrap()).await,
            bytes,
            "{protocol}: main holds the same bytes"
        );
        let (status, _, _) = post(
            &client,
            server.url("/api/v1/download-url"),
            json!({"object_name": name}),
        )
        .await;
        assert_eq!(status, 404, "{protocol}: gone from draft");

        let (status, again, _) = post(
            &client,
            server.url("/api/v1/confirm-upload"),
            json!({"object_name": name}),
        )
        .await;
        assert_eq!(
            (status, &again["etag"]),
            (200, &done["etag"]),
            "{protocol}: confirm is idempotent"
        );
    }
    assert_eq!(status_of(http1().get(server.url("/health"))).await, 200);
    assert_eq!(status_of(h2c().get(server.url("/ready"))).await, 200);
    server.stop().await;
}

#[tokio::test]
async fn declared_constraints_are_signed_and_enforced() {
    let Some(server) = start(&[]).await else {
        return;
    };
    let client = http1();
    post(&client, server.url("/api/v1/draft-bucket"), json!({})).await;
    let body = b"{\"hello\": 1}".to_vec();
    use base64::Engine;
    use sha2::Digest;
    let sum = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(&body));
    let (status, up, _) = post(
        &client,
        server.url("/api/v1/upload-url"),
        json!({"object_name": "doc.json", "content_type": "application/json", "content_length": body.len(), "checksum_sha256": sum, "metadata": {"owner": "ann"}}),
    )
    .await;
    assert_eq!(status, 200, "{up}");
    let required = up["required_headers"].as_object().unwrap().clone();
    for name in [
        "content-type",
        "content-length",
        "x-amz-checksum-sha256",
        "x-amz-meta-owner",
    ] {
        assert!(required.contains_key(name), "{name} in {required:?}");
    }
    let url = up["upload_url"].as_str().unwrap();
    // Without the required headers the store refuses the upload.
    let bare = reqwest::Client::new()
        .put(url)
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status().as_u16(), 403);
    let mut put = reqwest::Client::new().put(url).body(body.clone());
    for (name, value) in &required {
        if name != "content-length" {
            put = put.header(name.as_str(), value.as_str().unwrap());
        }
    }
    assert_eq!(put.send().await.unwrap().status().as_u16(), 200);
    let (status, done, _) = post(
        &client,
        server.url("/api/v1/confirm-upload"),
        json!({"object_name": "doc.json"}),
    )
    .await;
    assert_eq!(status, 200, "{done}");
    let info = server
        .storage()
        .head_object(&server.config.buckets.main, "doc.json")
        .await
        .unwrap();
    assert_eq!(info.content_type.as_deref(), Some("application/json"));
    assert_eq!(info.metadata.get("owner").map(String::as_str), Some("ann"));
    assert!(
        !info.metadata.contains_key(DECLARED_KEY),
        "the declaration stamp stays on the draft"
    );
    server.stop().await;
}

#[tokio::test]
async fn every_rest_error_status() {
    let Some(server) = start(&[("DRAFTSTORE_MAX_BODY_BYTES", "2048")]).await else {
        return;
    };
    let client = http1();
    post(&client, server.url("/api/v1/draft-bucket"), json!({})).await;
    let raw = |path: &str, content_type: &str, body: Vec<u8>| {
        let url = server.url(path);
        let (client, content_type) = (client.clone(), content_type.to_owned());
        async move {
            let resp = client
                .post(url)
                .header("content-type", content_type)
                .body(body)
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            let value: Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
            (
                status,
                value["error"]["code"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        }
    };
    let cases: Vec<(&str, &str, Vec<u8>, u16, &str)> = vec![
        (
            "/api/v1/upload-url",
            "application/json",
            b"{not json".to_vec(),
            400,
            "INVALID_JSON",
        ),
        (
            "/api/v1/upload-url",
            "application/json",
            br#"{"object_name": 5}"#.to_vec(),
            400,
            "INVALID_REQUEST",
        ),
        (
            "/api/v1/upload-url",
            "application/json",
            br#"{"name": "x"}"#.to_vec(),
            400,
            "INVALID_REQUEST",
        ),
        (
            "/api/v1/upload-url",
            "application/json",
            br#"{"object_name": "a//b"}"#.to_vec(),
            400,
            "INVALID_OBJECT_NAME",
        ),
        (
            "/api/v1/upload-url",
            "application/json",
            b"{\"object_name\": \"a\xffb\"}".to_vec(),
            400,
            "INVALID_JSON",
        ),
        (
            "/api/v1/upload-url",
            "application/json",
            br#"{"object_name": "a", "checksum_sha256": "nope"}"#.to_vec(),
            400,
            "INVALID_CONSTRAINTS",
        ),
        (
            // Not a media type: a typo would otherwise be signed into the URL.
            "/api/v1/upload-url",
            "application/json",
            br#"{"object_name": "a", "content_type": "not a type"}"#.to_vec(),
            400,
            "INVALID_CONSTRAINTS",
        ),
        (
            "/api/v1/upload-url",
            "text/plain",
            br#"{"object_name": "a"}"#.to_vec(),
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        (
            // Over the 5 GiB one PUT takes (S3 and the embedded store alike).
            "/api/v1/upload-url",
            "application/json",
            br#"{"object_name": "big.bin", "content_length": 6000000000}"#.to_vec(),
            400,
            "INVALID_CONSTRAINTS",
        ),
        (
            "/api/v1/upload-url",
            "application/json; charset=latin1",
            br#"{"object_name": "a"}"#.to_vec(),
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        (
            "/api/v1/upload-url",
            "application/json",
            format!("{{\"object_name\": \"{}\"}}", "x".repeat(4000)).into_bytes(),
            413,
            "BODY_TOO_LARGE",
        ),
        (
            "/api/v1/download-url",
            "application/json",
            br#"{"object_name": "never-uploaded"}"#.to_vec(),
            404,
            "NOT_FOUND",
        ),
        (
            "/api/v1/confirm-upload",
            "application/json",
            br#"{"object_name": "never-uploaded"}"#.to_vec(),
            404,
            "NOT_FOUND",
        ),
        (
            "/api/v1/nope",
            "application/json",
            b"{}".to_vec(),
            404,
            "NO_SUCH_ROUTE",
        ),
        (
            "/api/v1/upload-url",
            "application/json",
            [b"[".repeat(5000)].concat(),
            413,
            "BODY_TOO_LARGE",
        ),
    ];
    for (path, content_type, body, status, code) in cases {
        let got = raw(path, content_type, body).await;
        assert_eq!(got, (status, code.to_owned()), "{path} {content_type}");
    }
    // Deeply nested JSON within the size limit: a clean 400, not a crash.
    let nested = format!("{}{}", "[".repeat(1000), "]".repeat(1000)).into_bytes();
    let small = start(&[]).await.unwrap();
    let resp = http1()
        .post(small.url("/api/v1/upload-url"))
        .header("content-type", "application/json")
        .body(nested)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    small.stop().await;

    // 405 with Allow.
    let resp = client
        .get(server.url("/api/v1/confirm-upload"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 405);
    assert_eq!(resp.headers()["allow"], "POST");

    // 409: main holds a different object; 422: the draft breaks its declared constraints.
    let s3 = server.storage();
    let b = &server.config.buckets;
    s3.put_object(
        &b.draft,
        "taken.txt",
        b"one".to_vec(),
        &PutOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        post(
            &client,
            server.url("/api/v1/confirm-upload"),
            json!({"object_name": "taken.txt"})
        )
        .await
        .0,
        200
    );
    s3.put_object(
        &b.draft,
        "taken.txt",
        b"two".to_vec(),
        &PutOptions::default(),
    )
    .await
    .unwrap();
    let (status, body, _) = post(
        &client,
        server.url("/api/v1/confirm-upload"),
        json!({"object_name": "taken.txt"}),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("CONFLICT"))
    );
    let (status, _, _) = post(
        &client,
        server.url("/api/v1/confirm-upload"),
        json!({"object_name": "taken.txt", "overwrite": true}),
    )
    .await;
    assert_eq!(status, 200, "overwrite");
    let stamp = PutOptions {
        metadata: Metadata::from([(DECLARED_KEY.to_owned(), "len=100".to_owned())]),
        ..PutOptions::default()
    };
    s3.put_object(&b.draft, "short.bin", b"12345".to_vec(), &stamp)
        .await
        .unwrap();
    let (status, body, _) = post(
        &client,
        server.url("/api/v1/confirm-upload"),
        json!({"object_name": "short.bin"}),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("CONSTRAINT_MISMATCH"))
    );
    server.stop().await;

    // 500: S3 refuses the gateway's credentials. 503: S3 is down.
    // The rest is about S3 itself (its refusal of the gateway's credentials, its absence), so
    // it runs against S3 whatever store the suite uses.
    let Some(denied) = crate::harness::start_s3(&[("AWS_SECRET_ACCESS_KEY", "wrong-secret")]).await
    else {
        return;
    };
    let (status, body, _) = post(
        &http1(),
        denied.url("/api/v1/confirm-upload"),
        json!({"object_name": "x"}),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (500, Some("STORAGE_DENIED"))
    );
    assert!(!body.to_string().contains("wrong-secret"));
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
    let (status, body, _) = post(
        &http1(),
        down.url("/api/v1/confirm-upload"),
        json!({"object_name": "x"}),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (503, Some("STORAGE_UNAVAILABLE"))
    );
    assert_eq!(status_of(http1().get(down.url("/ready"))).await, 503);
    down.stop().await;
}

#[tokio::test]
async fn metrics_count_requests_s3_calls_and_confirms_without_object_names() {
    let Some(server) = start(&[]).await else {
        return;
    };
    let client = http1();
    post(&client, server.url("/api/v1/draft-bucket"), json!({})).await;
    let name = "secret-project/quarterly report.pdf";
    let (_, up, _) = post(
        &client,
        server.url("/api/v1/upload-url"),
        json!({"object_name": name}),
    )
    .await;
    crate::harness::put_to(up["upload_url"].as_str().unwrap(), "x").await;
    assert_eq!(
        post(
            &client,
            server.url("/api/v1/confirm-upload"),
            json!({"object_name": name})
        )
        .await
        .0,
        200
    );
    post(
        &client,
        server.url("/api/v1/confirm-upload"),
        json!({"object_name": "never/there"}),
    )
    .await;

    let resp = client.get(server.url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text"));
    let text = resp.text().await.unwrap();
    let mut expected = vec![
        r#"draftstore_requests_total{route="upload-url",protocol="rest",status="200"}"#,
        r#"draftstore_requests_total{route="confirm-upload",protocol="rest",status="404"}"#,
        r#"draftstore_confirms_total{outcome="confirmed"}"#,
        r#"draftstore_confirms_total{outcome="not_found"}"#,
        "draftstore_request_seconds_bucket{",
        "draftstore_requests_in_flight ",
        "draftstore_confirmed_bytes_total ",
    ];
    if server.is_s3() {
        expected.extend([
            r#"draftstore_s3_calls_total{operation="CopyObject",outcome="ok"}"#,
            "draftstore_s3_seconds_count{",
        ]);
    }
    for series in expected {
        assert!(text.contains(series), "{series} missing from\n{text}");
    }
    assert!(
        !text.contains("quarterly") && !text.contains("secret-project"),
        "object names never become labels"
    );
    server.stop().await;
}

/// Every route in the routes table (the one the OpenAPI document is checked against) is
/// really served: neither "no such route" nor "method not allowed".
#[tokio::test]
async fn every_listed_route_is_served() {
    let Some(server) = start(&[]).await else {
        return;
    };
    let client = http1();
    let routes = draftstore_gateway::api::rest::ROUTES;
    for (method, path) in routes {
        let request = match *method {
            "POST" => client
                .post(server.url(path))
                .json(&json!({"object_name": "probe"})),
            "DELETE" => client.delete(server.url(path)),
            _ => client.get(server.url(path)),
        };
        let resp = request.send().await.unwrap();
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap();
        assert!(
            status != 405 && !body.contains("NO_SUCH_ROUTE"),
            "{method} {path}: {status} {body}"
        );
    }
    // The wrong method gets 405 naming the right ones (a path's every method, HEAD with GET);
    // the GET routes answer HEAD as GET.
    for (method, path) in routes {
        let methods: Vec<&str> = routes
            .iter()
            .filter(|(_, p)| p == path)
            .map(|(m, _)| *m)
            .flat_map(|m| {
                if m == "GET" {
                    vec!["GET", "HEAD"]
                } else {
                    vec![m]
                }
            })
            .collect();
        let wrong = if methods.contains(&"POST") {
            reqwest::Method::GET
        } else {
            reqwest::Method::PUT
        };
        let resp = client
            .request(wrong, server.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 405, "{path}");
        assert_eq!(
            resp.headers()["allow"],
            methods.join(", ").as_str(),
            "{path}"
        );
        if *method == "GET" {
            let get = client.get(server.url(path)).send().await.unwrap();
            let head = client.head(server.url(path)).send().await.unwrap();
            assert_eq!(head.status(), get.status(), "HEAD {path}");
        }
    }
    let doc: Value = client
        .get(server.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["openapi"], "3.0.3");
    server.stop().await;
}

/// A POST to a GET-only route is 405 whatever its size: the method is checked first, a body
/// past the JSON limit is no 413 there. Over HTTP/1.1 and h2c.
#[tokio::test]
async fn a_large_post_to_a_get_route_is_405() {
    let Some(server) = start(&[]).await else {
        return;
    };
    let big = vec![b' '; 100 * 1024];
    for client in [http1(), h2c()] {
        for path in ["/health", "/ready", "/metrics", "/openapi.json"] {
            for body in [b"{}".to_vec(), big.clone()] {
                let resp = client
                    .post(server.url(path))
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await
                    .unwrap();
                let status = resp.status().as_u16();
                let allow = resp.headers().get("allow").cloned();
                let text = resp.text().await.unwrap();
                assert_eq!(status, 405, "POST {path} of {} bytes: {text}", body.len());
                assert_eq!(allow.unwrap(), "GET, HEAD", "{path}");
                assert!(text.contains("METHOD_NOT_ALLOWED"), "{path}: {text}");
            }
        }
    }
    server.stop().await;
}

/// Well-formed JSON with a wrong type or value is `400 INVALID_REQUEST` naming the field and
/// what it accepts; only text that is not JSON is `INVALID_JSON`; `null` in an optional field
/// of any route means absent. Over HTTP/1.1 and h2c.
#[tokio::test]
async fn wrong_field_values_are_named_and_null_is_absent() {
    let Some(server) = start(&[]).await else {
        return;
    };
    let draft_or_main = r#""draft" or "main""#;
    let refused: &[(&str, &str, &str, &str)] = &[
        (
            "/api/v1/download-url",
            r#"{"object_name":"a.txt","source":1}"#,
            "`source`",
            draft_or_main,
        ),
        (
            "/api/v1/download-url",
            r#"{"object_name":"a.txt","source":true}"#,
            "`source`",
            draft_or_main,
        ),
        (
            "/api/v1/download-url",
            r#"{"object_name":"a.txt","source":["main"]}"#,
            "`source`",
            draft_or_main,
        ),
        (
            "/api/v1/download-url",
            r#"{"object_name":"a.txt","source":"MAIN"}"#,
            "`source`",
            "expected one of draft, main, found \"MAIN\"",
        ),
        (
            "/api/v1/confirm-upload",
            r#"{"object_name":"a.txt","overwrite":"yes"}"#,
            "`overwrite`",
            "a boolean",
        ),
        (
            "/api/v1/upload-url",
            r#"{"object_name":"a.txt","content_length":"12"}"#,
            "`content_length`",
            "expected a non-negative integer, found a string (\"12\")",
        ),
        (
            "/api/v1/upload-url",
            r#"{"object_name":"a.txt","metadata":{"note":7}}"#,
            "`metadata.note`",
            "a string",
        ),
        (
            "/api/v1/upload-url",
            r#"{"object_name":["a.txt"]}"#,
            "`object_name`",
            "a string",
        ),
        (
            "/api/v1/upload-url",
            r#""a.txt""#,
            "body",
            "expected an object, found a string",
        ),
    ];
    let absent: &[(&str, &str, u16)] = &[
        (
            "/api/v1/download-url",
            r#"{"object_name":"never.txt","source":null}"#,
            404,
        ),
        (
            "/api/v1/confirm-upload",
            r#"{"object_name":"never.txt","overwrite":null}"#,
            404,
        ),
        (
            "/api/v1/upload-url",
            r#"{"object_name":"n.txt","content_type":null,"content_length":null,"checksum_sha256":null,"metadata":null}"#,
            200,
        ),
    ];
    for (protocol, client) in [("http/1.1", http1()), ("h2c", h2c())] {
        let send = |path: &str, body: &str| {
            client
                .post(server.url(path))
                .header("content-type", "application/json")
                .body(body.to_owned())
                .send()
        };
        for (path, body, field, accepts) in refused {
            let resp = send(path, body).await.unwrap();
            let status = resp.status().as_u16();
            let value: Value = resp.json().await.unwrap();
            let message = value["error"]["message"].as_str().unwrap_or_default();
            assert_eq!(
                (status, value["error"]["code"].as_str()),
                (400, Some("INVALID_REQUEST")),
                "{protocol} {body}: {value}"
            );
            assert!(
                message.contains(field) && message.contains(accepts),
                "{protocol} {body}: {message}"
            );
        }
        for (path, body, want) in absent {
            let resp = send(path, body).await.unwrap();
            let status = resp.status().as_u16();
            assert_eq!(
                status,
                *want,
                "{protocol} {body}: {}",
                resp.text().await.unwrap()
            );
        }
        let resp = send(
            "/api/v1/download-url",
            r#"{"object_name":"a.txt","source":"#,
        )
        .await
        .unwrap();
        let value: Value = resp.json().await.unwrap();
        assert_eq!(
            value["error"]["code"], "INVALID_JSON",
            "{protocol}: {value}"
        );
    }
    server.stop().await;
}

/// JSON errors on our REST routes and the original DraftStore's are in our words: where
/// malformed JSON breaks, and for a wrong type the field, what it takes and what it got; none
/// of serde's terms ("EOF while parsing", "invalid type", "u64", "struct …").
#[tokio::test]
async fn json_errors_are_in_our_words() {
    let Some(server) = start(&[]).await else {
        return;
    };
    let cases: &[(&str, &str, &str)] = &[
        (
            r#"{"object_name":"#,
            "INVALID_JSON",
            "malformed JSON at line 1, column 15: the body ends before its JSON value does",
        ),
        (
            r#"{"object_name":"a.txt"} x"#,
            "INVALID_JSON",
            "text follows the JSON value",
        ),
        (
            r#"{"object_name":5}"#,
            "INVALID_REQUEST",
            "invalid field `object_name`: expected a string, found a number (5)",
        ),
        (
            r#"{"object_name":"a.txt","content_length":true}"#,
            "INVALID_REQUEST",
            "invalid field `content_length`: expected a non-negative integer, found true",
        ),
        (
            r#"[1]"#,
            "INVALID_REQUEST",
            "invalid request body: expected an object, found an array",
        ),
    ];
    let client = http1();
    for (body, code, says) in cases {
        let (status, value) = post_text(&client, server.url("/api/v1/upload-url"), body).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(value["error"]["code"], *code, "{body}: {value}");
        let message = value["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{body}: {message}");
        for serde in [
            "EOF while",
            "invalid type",
            "u64",
            "struct ",
            "line 1 column",
        ] {
            assert!(!message.contains(serde), "{body}: {message}");
        }
        // The original's route: its shape, the same words.
        let (status, value) =
            post_text(&client, server.url("/api/v1/draft/upload-url"), body).await;
        assert_eq!(status, 400, "original {body}");
        let message = value["result"]["error_message"].as_str().unwrap();
        assert!(message.contains(says), "original {body}: {message}");
        assert!(!message.contains("EOF while") && !message.contains("invalid type"));
    }
    server.stop().await;
}

/// The rest of serde's words on REST, told in ours: an unknown enum value, a field given twice,
/// a bad escape, a number in a form serde would echo otherwise (`1e3` as `1000.0`), an empty
/// body; and a request with two `Content-Type` headers is refused (415) as Connect refuses it.
#[tokio::test]
async fn json_errors_of_variants_duplicates_escapes_numbers_and_empty_bodies_are_ours() {
    let Some(server) = start(&[]).await else {
        return;
    };
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "/api/v1/download-url",
            r#"{"object_name":"a.txt","source":"x"}"#,
            "INVALID_REQUEST",
            "invalid field `source`: expected one of draft, main, found \"x\"",
        ),
        (
            "/api/v1/upload-url",
            r#"{"object_name":"a.txt","object_name":"b.txt"}"#,
            "INVALID_REQUEST",
            "the field object_name is given more than once",
        ),
        (
            "/api/v1/upload-url",
            r#"{"object_name":"a\q.txt"}"#,
            "INVALID_JSON",
            "a string has an escape JSON does not define",
        ),
        (
            "/api/v1/upload-url",
            r#"{"object_name":"a.txt","content_length":1e3}"#,
            "INVALID_REQUEST",
            "invalid field `content_length`: expected a non-negative integer, found a number with a fraction or exponent, or out of range",
        ),
        (
            "/api/v1/upload-url",
            r#"{"object_name":"a.txt","content_length":18446744073709551616}"#,
            "INVALID_REQUEST",
            "found a number with a fraction or exponent, or out of range",
        ),
        (
            "/api/v1/upload-url",
            "",
            "INVALID_JSON",
            "the body is empty, expected a JSON object",
        ),
        (
            "/api/v1/upload-url",
            r#"{"object_name":"a.txt","metadata":{"k":"first","k":"second"}}"#,
            "INVALID_REQUEST",
            "`metadata`: the key \"k\" is given more than once",
        ),
        (
            "/api/v1/multipart-upload",
            r#"{"object_name":"a.txt","metadata":{"k":"first","k":"second"}}"#,
            "INVALID_REQUEST",
            "the key \"k\" is given more than once",
        ),
    ];
    let client = http1();
    for (path, body, code, says) in cases {
        let (status, value) = post_text(&client, server.url(path), body).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(value["error"]["code"], *code, "{body}: {value}");
        let message = value["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{body}: {message}");
        for serde in [
            "unknown variant",
            "duplicate field",
            "1000.0",
            "e+19",
            "e19",
            "hex escape",
        ] {
            assert!(!message.contains(serde), "{body}: {message}");
        }
    }
    let resp = client
        .post(server.url("/api/v1/upload-url"))
        .header("content-type", "application/json")
        .header("content-type", "text/plain")
        .body(r#"{"object_name":"a.txt"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 415);
    let value: Value = resp.json().await.unwrap();
    assert_eq!(value["error"]["code"], "UNSUPPORTED_MEDIA_TYPE", "{value}");
    // A body in a content coding would be misread as plain JSON: refused; identity is fine.
    for (coding, status) in [("gzip", 415), ("identity", 200)] {
        let resp = client
            .post(server.url("/api/v1/upload-url"))
            .header("content-type", "application/json; charset=utf-8")
            .header("content-encoding", coding)
            .body(r#"{"object_name":"a.txt"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), status, "{coding}");
    }
    server.stop().await;
}

/// What DraftStore adds must fit S3's limits (#14 items 3 and 7): metadata past the real
/// budget (S3's 2 KiB less DraftStore's own entries) is refused at upload-url naming the
/// budget; metadata of exactly the budget uploads and confirms, and the main copy's metadata
/// fits 2048 bytes as S3 counts it. Names with line separators or bidi controls are refused
/// naming the rule.
#[tokio::test]
async fn metadata_budget_and_log_forging_names_over_rest() {
    let Some(server) = start(&[]).await else {
        return;
    };
    let client = http1();
    post(&client, server.url("/api/v1/draft-bucket"), json!({})).await;
    let (status, body, _) = post(
        &client,
        server.url("/api/v1/upload-url"),
        json!({"object_name": "m.txt", "metadata": {"note": "x".repeat(1968)}}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "INVALID_CONSTRAINTS");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("leaves 1896 for yours"), "{message}");

    let (status, up, _) = post(
        &client,
        server.url("/api/v1/upload-url"),
        json!({"object_name": "m.txt", "metadata": {"note": "x".repeat(1896 - 4)}}),
    )
    .await;
    assert_eq!(status, 200, "{up}");
    let mut put = reqwest::Client::new()
        .put(up["upload_url"].as_str().unwrap())
        .body("1");
    for (name, value) in up["required_headers"].as_object().unwrap() {
        put = put.header(name, value.as_str().unwrap());
    }
    assert_eq!(status_of(put).await, 200);
    let (status, done, _) = post(
        &client,
        server.url("/api/v1/confirm-upload"),
        json!({"object_name": "m.txt"}),
    )
    .await;
    assert_eq!(status, 200, "{done}");
    let info = server
        .storage()
        .head_object(&server.config.buckets.main, "m.txt")
        .await
        .unwrap();
    let counted: usize = info.metadata.iter().map(|(k, v)| k.len() + v.len()).sum();
    assert!(counted <= 2048, "main carries {counted} bytes of metadata");

    for (name, code) in [
        ("log\u{2028}forged", "U+2028"),
        ("a\u{202e}gpj.exe", "U+202E"),
    ] {
        let (status, body, _) = post(
            &client,
            server.url("/api/v1/upload-url"),
            json!({ "object_name": name }),
        )
        .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"]["code"], "INVALID_OBJECT_NAME");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(code) && message.contains("bidirectional"),
            "{message}"
        );
    }
    server.stop().await;
}

/// upload-url refuses what the store would refuse: a declared length over the embedded store's
/// object limit (`DRAFTSTORE_LOCAL_MAX_OBJECT_BYTES`) is 400 at once, not a URL whose PUT fails.
#[tokio::test]
async fn upload_url_refuses_a_length_over_the_stores_limit() {
    let server =
        crate::harness::start_local(&[("DRAFTSTORE_LOCAL_MAX_OBJECT_BYTES", "100000")]).await;
    let url = server.url("/api/v1/upload-url");
    let (status, body) = crate::harness::post_json(
        &url,
        &serde_json::json!({"object_name": "big.bin", "content_length": 100_001}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "INVALID_CONSTRAINTS", "{body}");
    let (status, body) = crate::harness::post_json(
        &url,
        &serde_json::json!({"object_name": "fits.bin", "content_length": 100_000}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    server.stop().await;
}
