//! The embedded store refuses `x-amz-*` headers a presigned request did not sign, as S3 does
//! (403 `AccessDenied`, the header named): a client holding an upload URL cannot add metadata,
//! checksums, ACLs or a payload hash the gateway never agreed to. URLs come from the REST API.

use crate::harness::{h2c, http1, start_local, Running};
use serde_json::{json, Value};

async fn post(server: &Running, path: &str, body: Value) -> Value {
    let resp = http1()
        .post(server.url(path))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200, "{path}");
    resp.json().await.unwrap()
}

/// The status and body of `request`.
async fn send(request: reqwest::RequestBuilder) -> (u16, String) {
    let resp = request.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

#[tokio::test]
async fn unsigned_amz_headers_are_refused_and_nothing_is_stored() {
    let server = start_local(&[]).await;
    let up = post(
        &server,
        "/api/v1/upload-url",
        json!({"object_name": "u.txt", "metadata": {"owner": "ann"}}),
    )
    .await;
    let url = up["upload_url"].as_str().unwrap();
    let required: Vec<(String, String)> = up["required_headers"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect();
    assert!(required.iter().any(|(k, _)| k == "x-amz-meta-owner"));
    let upload = |client: &reqwest::Client, extra: &[(String, String)]| {
        let mut request = client.put(url).body("hello");
        for (name, value) in required.iter().chain(extra) {
            request = request.header(name, value);
        }
        request
    };
    // Metadata nobody signed: 60 KB over HTTP/1.1; 6 KB over h2c, whose header list the
    // server bounds (a larger one ends the connection with COMPRESSION_ERROR).
    let metadata = |each: usize| -> Vec<(String, String)> {
        (0..6)
            .map(|i| (format!("x-amz-meta-extra{i}"), "x".repeat(each)))
            .collect()
    };
    let one = |name: &str, value: &str| vec![(name.to_owned(), value.to_owned())];
    let cases = [
        (metadata(10_000), "x-amz-meta-extra0"),
        (metadata(1_000), "x-amz-meta-extra0"),
        (
            one("x-amz-content-sha256", "UNSIGNED-PAYLOAD"),
            "x-amz-content-sha256",
        ),
        (
            one("x-amz-checksum-crc32", "NhCmhg=="),
            "x-amz-checksum-crc32",
        ),
        (one("x-amz-acl", "public-read"), "x-amz-acl"),
    ];
    for (protocol, client) in [("http/1.1", http1()), ("h2c", h2c())] {
        for (extra, named) in &cases {
            if protocol == "h2c" && extra.len() == 6 && extra[0].1.len() > 1_000 {
                continue;
            }
            let (status, body) = send(upload(&client, extra)).await;
            assert_eq!(status, 403, "{protocol} {named}: {body}");
            assert!(
                body.contains("<Code>AccessDenied</Code>") && body.contains(named),
                "{protocol} {named}: {body}"
            );
            assert!(
                server
                    .storage()
                    .head_object(&server.config.buckets.draft, "u.txt")
                    .await
                    .is_err(),
                "{protocol} {named}: stored anyway"
            );
        }
    }

    // The same upload with the signed headers only (and a header outside `x-amz-`) is stored,
    // with the signed metadata and nothing else.
    let other = one("x-amzn-trace-id", "Root=1-0");
    let (status, body) = send(upload(&http1(), &other)).await;
    assert_eq!(status, 200, "{body}");
    let info = server
        .storage()
        .head_object(&server.config.buckets.draft, "u.txt")
        .await
        .unwrap();
    assert_eq!(info.metadata.get("owner").map(String::as_str), Some("ann"));
    assert!(!info.metadata.keys().any(|k| k.starts_with("extra")));

    // Downloads too: an unsigned `x-amz-*` header on a presigned GET is refused.
    let down = post(
        &server,
        "/api/v1/download-url",
        json!({"object_name": "u.txt"}),
    )
    .await;
    let down = down["download_url"].as_str().unwrap();
    let (status, body) = send(http1().get(down).header("x-amz-request-payer", "requester")).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("x-amz-request-payer"), "{body}");
    let (status, body) = send(http1().get(down)).await;
    assert_eq!((status, body.as_str()), (200, "hello"));
    server.stop().await;
}
