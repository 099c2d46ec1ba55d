//! Encryption at rest (`DRAFTSTORE_S3_SSE`): the headers are signed into upload URLs and
//! listed in `required_headers`, a PUT without them is refused by the signature, and confirm's
//! copy (and a multipart create) asks for the same encryption — checked on the requests the
//! store receives, through the fault proxy. SeaweedFS 4.48 does SSE-S3 (`AES256`) itself, so
//! that runs end to end; it has no KMS (a PutObject or CopyObject with `aws:kms` answers 500),
//! so `aws:kms` is checked on the wire.

use crate::harness::{self, put_to, status_of};
use crate::proxy::{Proxy, Recorded};
use draftstore_core::{PutOptions, Storage};

const SSE: &str = "x-amz-server-side-encryption";

async fn upload_url(base: &str, name: &str) -> serde_json::Value {
    let answer = reqwest::Client::new()
        .post(format!("{base}/api/v1/upload-url"))
        .json(&serde_json::json!({"object_name": name}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    answer.json().await.unwrap()
}

async fn post(base: &str, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
    let answer = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    (
        answer.status().as_u16(),
        answer.json().await.unwrap_or_default(),
    )
}

/// A PUT of `body` to `reply`'s URL carrying its required headers.
async fn put_with_headers(reply: &serde_json::Value, body: &'static str) -> u16 {
    let mut request = reqwest::Client::new()
        .put(reply["upload_url"].as_str().unwrap())
        .body(body);
    for (name, value) in reply["required_headers"].as_object().unwrap() {
        request = request.header(name, value.as_str().unwrap());
    }
    status_of(request).await
}

fn signed_headers(url: &str) -> Vec<String> {
    let list = url
        .split("X-Amz-SignedHeaders=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    list.split("%3B").map(str::to_owned).collect()
}

/// CopyObject requests (not UploadPartCopy: parts take their encryption from the upload).
fn copies(recorded: &[Recorded]) -> Vec<&Recorded> {
    recorded
        .iter()
        .filter(|r| r.header("x-amz-copy-source").is_some() && !r.target.contains("partNumber="))
        .collect()
}

#[tokio::test]
async fn aes256_is_signed_into_uploads_required_and_kept_by_confirm() {
    let Some(env) = crate::s3::env(&[]) else {
        return;
    };
    let proxy = Proxy::start(env["AWS_ENDPOINT_URL"].clone()).await;
    let gateway = harness::start_s3(&[
        ("AWS_ENDPOINT_URL", &proxy.url()),
        ("DRAFTSTORE_S3_SSE", "AES256"),
    ])
    .await
    .unwrap();
    let base = gateway.url("");
    assert_eq!(
        post(&base, "/api/v1/draft-bucket", serde_json::json!({}))
            .await
            .0,
        200
    );
    let reply = upload_url(&base, "secret.txt").await;
    assert_eq!(reply["required_headers"][SSE], "AES256", "{reply}");
    let url = reply["upload_url"].as_str().unwrap();
    assert!(signed_headers(url).contains(&SSE.to_owned()), "{url}");
    // Without the header the signature does not hold.
    assert_eq!(put_to(url, "plain").await, 403);
    assert_eq!(put_with_headers(&reply, "sealed").await, 200);
    let put = proxy
        .recorded()
        .into_iter()
        .rfind(|r| r.method == "PUT" && r.target.contains("secret.txt"))
        .unwrap();
    assert_eq!(put.header(SSE), Some("AES256"));

    let (status, body) = post(
        &base,
        "/api/v1/confirm-upload",
        serde_json::json!({"object_name": "secret.txt"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let recorded = proxy.recorded();
    let copy = copies(&recorded);
    assert_eq!(copy.len(), 1, "{recorded:?}");
    assert_eq!(copy[0].header(SSE), Some("AES256"));
    // Main holds it encrypted, and the download URL reads it back.
    let (_, download) = post(
        &base,
        "/api/v1/download-url",
        serde_json::json!({"object_name": "secret.txt", "source": "main"}),
    )
    .await;
    let answer = reqwest::get(download["download_url"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(
        answer.headers().get(SSE).map(|v| v.to_str().unwrap()),
        Some("AES256")
    );
    assert_eq!(answer.bytes().await.unwrap(), "sealed");
    gateway.stop().await;
}

#[tokio::test]
async fn kms_headers_are_signed_required_and_sent_on_copies_and_multipart_creates() {
    let Some(env) = crate::s3::env(&[]) else {
        return;
    };
    let proxy = Proxy::start(env["AWS_ENDPOINT_URL"].clone()).await;
    let gateway = harness::start_s3(&[
        ("AWS_ENDPOINT_URL", &proxy.url()),
        ("DRAFTSTORE_S3_SSE", "aws:kms"),
        ("DRAFTSTORE_S3_SSE_KMS_KEY_ID", "alias/draftstore-uploads"),
        ("DRAFTSTORE_S3_SSE_BUCKET_KEY", "true"),
        ("DRAFTSTORE_S3_MAX_ATTEMPTS", "1"),
        ("DRAFTSTORE_S3_MULTIPART_THRESHOLD", "5242880"),
    ])
    .await
    .unwrap();
    let base = gateway.url("");
    assert_eq!(
        post(&base, "/api/v1/draft-bucket", serde_json::json!({}))
            .await
            .0,
        200
    );
    let expected = [
        (SSE, "aws:kms"),
        (
            "x-amz-server-side-encryption-aws-kms-key-id",
            "alias/draftstore-uploads",
        ),
        ("x-amz-server-side-encryption-bucket-key-enabled", "true"),
    ];
    let reply = upload_url(&base, "small.txt").await;
    let url = reply["upload_url"].as_str().unwrap();
    for (name, value) in expected {
        assert_eq!(reply["required_headers"][name], value, "{reply}");
        assert!(signed_headers(url).contains(&name.to_owned()), "{url}");
    }
    assert_eq!(put_to(url, "plain").await, 403, "refused by the signature");

    // Drafts written straight to the store (no KMS here), then confirmed: the copy into main
    // and the multipart create of a large one ask for the same encryption.
    let storage = crate::s3::storage(&env);
    let draft = &gateway.config.buckets.draft;
    storage
        .put_object(draft, "small.txt", b"x".to_vec(), &PutOptions::default())
        .await
        .unwrap();
    storage
        .put_object(
            draft,
            "large.bin",
            vec![7; 5 * 1024 * 1024 + 1],
            &PutOptions::default(),
        )
        .await
        .unwrap();
    for name in ["small.txt", "large.bin"] {
        let _ = post(
            &base,
            "/api/v1/confirm-upload",
            serde_json::json!({"object_name": name}),
        )
        .await;
    }
    let recorded = proxy.recorded();
    let copy = copies(&recorded);
    let create = recorded
        .iter()
        .find(|r| r.method == "POST" && r.target.contains("large.bin?uploads"))
        .unwrap_or_else(|| panic!("no multipart create: {recorded:?}"));
    for request in copy.iter().copied().chain([create]) {
        for (name, value) in expected {
            assert_eq!(request.header(name), Some(value), "{request:?}");
        }
    }
    assert!(!copy.is_empty());
    gateway.stop().await;
}

/// Turns versioning on for `bucket` with a request signed by our signer (the gateway itself
/// never changes it).
async fn enable_versioning(env: &std::collections::HashMap<String, String>, bucket: &str) {
    use draftstore_signer::{Addressing, Credentials, Endpoint, Method, Payload, Request, Signer};
    use sha2::Digest;
    let body = r#"<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Status>Enabled</Status></VersioningConfiguration>"#;
    let hash = hex::encode(sha2::Sha256::digest(body));
    let endpoint = Endpoint::parse(&env["AWS_ENDPOINT_URL"]).unwrap();
    let credentials = Credentials::new(
        env["AWS_ACCESS_KEY_ID"].clone(),
        env["AWS_SECRET_ACCESS_KEY"].clone(),
        None,
    )
    .unwrap();
    let signer = Signer::new(credentials, &env["AWS_REGION"], "s3").unwrap();
    let mut request = Request::new(Method::Put, &endpoint, Addressing::Path, bucket, "");
    request.query = &[("versioning", "")];
    request.payload = Payload::Sha256Hex(&hash);
    let now = draftstore_signer::Timestamp::from_unix(
        i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs(),
        )
        .unwrap(),
    )
    .unwrap();
    let signed = signer.sign_headers(&request, now).unwrap();
    let mut put = reqwest::Client::new().put(&signed.url).body(body);
    for (name, value) in &signed.headers {
        put = put.header(*name, value);
    }
    assert_eq!(status_of(put).await, 200);
}

#[tokio::test]
async fn create_draft_bucket_reports_versioning_and_never_changes_it() {
    let Some(env) = crate::s3::env(&[]) else {
        return;
    };
    let gateway = harness::start_s3(&[]).await.unwrap();
    let base = gateway.url("");
    let (status, reply) = post(&base, "/api/v1/draft-bucket", serde_json::json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(reply["draft_bucket_versioning"], "Disabled", "{reply}");
    enable_versioning(&env, gateway.config.buckets.draft.as_str()).await;
    for _ in 0..2 {
        let (_, reply) = post(&base, "/api/v1/draft-bucket", serde_json::json!({})).await;
        assert_eq!(reply["draft_bucket_versioning"], "Enabled", "{reply}");
    }
    gateway.stop().await;
}
