//! Presigned POST forms (`POST /api/v1/upload-form`, gRPC `GetUploadForm`): the form posted
//! with curl `-F` to where it points (the embedded store's `/_store/<bucket>`, or SeaweedFS
//! with `DRAFTSTORE_TEST_STORE=s3`), previewed, confirmed and swept like any draft; every
//! refusal the policy carries, with nothing stored and no file left; confirm checks the range;
//! tenants.

use crate::grpc_api::{call, client};
use crate::harness::{fetch, http1, start, Running};
use draftstore_core::{BucketName, PutOptions, StorageError, DECLARED_KEY};
use draftstore_gateway::config::StorageChoice;
use draftstore_proto::draft::v1 as pb;
use serde_json::{json, Value};
use std::path::PathBuf;

async fn post(server: &Running, path: &str, key: Option<&str>, body: Value) -> (u16, Value) {
    let mut request = http1().post(server.url(path)).json(&body);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let resp = request.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// What the store answered a form: status, headers (lowercase `name: value` lines), body.
struct Posted {
    status: u16,
    headers: String,
    body: String,
}

/// Posts `fields` (each with `--form-string`, so values are taken literally) and then `file`
/// with curl, as a browser form would.
async fn curl_form(url: &str, fields: &[(String, String)], file: &[u8], extra: &[&str]) -> Posted {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("upload.bin");
    std::fs::write(&path, file).unwrap();
    let mut args: Vec<String> = vec!["-sS".into(), "-D".into(), "-".into()];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    for (name, value) in fields {
        args.push("--form-string".into());
        args.push(format!("{name}={value}"));
    }
    args.push("-F".into());
    args.push(format!("file=@{};filename=upload.bin", path.display()));
    args.push(url.into());
    let out = tokio::process::Command::new("curl")
        .args(&args)
        .output()
        .await
        .expect("curl runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    // The last response (after any `100 Continue`): its head, a blank line, its body.
    let last = text.rfind("HTTP/").unwrap();
    let (head, body) = text[last..].split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    Posted {
        status,
        headers: head.to_ascii_lowercase(),
        body: body.to_owned(),
    }
}

fn fields_of(form: &Value) -> Vec<(String, String)> {
    form["fields"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect()
}

fn with(fields: &[(String, String)], name: &str, value: &str) -> Vec<(String, String)> {
    fields
        .iter()
        .map(|(n, v)| {
            let v = if n == name { value } else { v.as_str() };
            (n.clone(), v.to_owned())
        })
        .collect()
}

fn data_dir(server: &Running) -> Option<PathBuf> {
    match &server.config.storage {
        StorageChoice::Local(local) => Some(local.data_dir.clone()),
        StorageChoice::S3(_) => None,
    }
}

/// Files in the embedded store's scratch folder (`<data>/tmp`).
fn scratch_files(server: &Running) -> usize {
    data_dir(server).map_or(0, |d| {
        std::fs::read_dir(d.join("tmp")).map_or(0, Iterator::count)
    })
}

async fn draft_exists(server: &Running, key: &str) -> bool {
    match server
        .storage()
        .head_object(&server.config.buckets.draft, key)
        .await
    {
        Ok(_) => true,
        Err(StorageError::NotFound { .. }) => false,
        Err(e) => panic!("{e}"),
    }
}

fn bytes(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 % 251) as u8).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_upload_with_curl_is_stored_previewed_and_confirmed() {
    let Some(server) = start(&[("DRAFTSTORE_CORS_ORIGINS", "https://app.example")]).await else {
        return;
    };
    let name = "forms/cat ሴ+1.txt";
    let (status, form) = post(
        &server,
        "/api/v1/upload-form",
        None,
        json!({"object_name": name, "content_type": "text/plain", "max_content_length": 5000,
               "min_content_length": 10, "metadata": {"owner": "ann"}}),
    )
    .await;
    assert_eq!(status, 200, "{form}");
    assert_eq!(form["object_name"], name);
    assert!(form["expires_at"].as_str().unwrap().ends_with('Z'));
    let fields = fields_of(&form);
    // serde_json's map sorts the names; the reply keeps the signer's order.
    let names: Vec<&str> = fields.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "Content-Type",
            "key",
            "policy",
            "x-amz-algorithm",
            "x-amz-credential",
            "x-amz-date",
            "x-amz-meta-draftstore-declared",
            "x-amz-meta-owner",
            "x-amz-signature"
        ]
    );
    assert!(
        fields.iter().any(|(n, v)| n == "key" && v == name),
        "no tenant: the key is the name"
    );
    let url = form["url"].as_str().unwrap();
    if !server.is_s3() {
        assert_eq!(url, server.url("/_store/main-draft"));
    }
    let body = bytes(3000);
    let posted = curl_form(url, &fields, &body, &["-H", "Origin: https://app.example"]).await;
    assert_eq!(posted.status, 204, "{}", posted.body);
    let etag = format!("{:x}", md5_of(&body));
    assert!(
        posted.headers.contains(&format!("etag: \"{etag}\"")),
        "{}",
        posted.headers
    );
    if !server.is_s3() {
        // A browser page reads the ETag: it is exposed to the allowed origin.
        assert!(posted
            .headers
            .contains("access-control-allow-origin: https://app.example"));
        assert!(posted
            .headers
            .contains("access-control-expose-headers: etag"));
    }
    let stored = server
        .storage()
        .head_object(&server.config.buckets.draft, name)
        .await
        .unwrap();
    assert_eq!(stored.size, 3000);
    assert_eq!(stored.content_type.as_deref(), Some("text/plain"));
    assert_eq!(
        stored.metadata.get("owner").map(String::as_str),
        Some("ann")
    );
    assert_eq!(
        stored.metadata.get(DECLARED_KEY).map(String::as_str),
        Some("range=10-5000;type=1")
    );

    let (status, preview) = post(
        &server,
        "/api/v1/download-url",
        None,
        json!({"object_name": name}),
    )
    .await;
    assert_eq!(status, 200, "{preview}");
    assert_eq!(fetch(preview["download_url"].as_str().unwrap()).await, body);
    let (status, done) = post(
        &server,
        "/api/v1/confirm-upload",
        None,
        json!({"object_name": name}),
    )
    .await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["size"], 3000);
    let main = server
        .storage()
        .get_object(&server.config.buckets.main, name)
        .await
        .unwrap();
    assert_eq!(main, body, "main holds the exact bytes");
    assert_eq!(scratch_files(&server), 0);
}

fn md5_of(data: &[u8]) -> impl std::fmt::LowerHex {
    use md5::Digest as _;
    md5::Md5::digest(data)
}

/// What is changed, the form sent, the file's size, the S3 codes accepted.
type Case<'a> = (&'a str, Vec<(String, String)>, usize, &'a [&'a str]);

/// Every way a form can break its policy is refused with S3's code; nothing is stored and no
/// file is left behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forms_outside_their_policy_are_refused_and_store_nothing() {
    let Some(server) = start(&[]).await else {
        return;
    };
    let name = "forms/refused.bin";
    let (status, form) = post(
        &server,
        "/api/v1/upload-form",
        None,
        json!({"object_name": name, "content_type": "image/png", "max_content_length": 100,
               "min_content_length": 10, "metadata": {"owner": "ann"}}),
    )
    .await;
    assert_eq!(status, 200, "{form}");
    let url = form["url"].as_str().unwrap();
    let fields = fields_of(&form);
    let mut signature = fields
        .iter()
        .find(|(n, _)| n == "x-amz-signature")
        .unwrap()
        .1
        .clone();
    signature.replace_range(0..1, if signature.starts_with('0') { "1" } else { "0" });
    let cases: Vec<Case> = vec![
        ("over the range", fields.clone(), 101, &["EntityTooLarge"]),
        ("under the range", fields.clone(), 9, &["EntityTooSmall"]),
        (
            "another content type",
            with(&fields, "Content-Type", "text/html"),
            50,
            &["AccessDenied"],
        ),
        (
            "another key",
            with(&fields, "key", "forms/other.bin"),
            50,
            &["AccessDenied"],
        ),
        (
            "a tampered metadata value",
            with(&fields, "x-amz-meta-owner", "mallory"),
            50,
            &["AccessDenied"],
        ),
        (
            "a tampered signature",
            with(&fields, "x-amz-signature", &signature),
            50,
            &["SignatureDoesNotMatch", "AccessDenied"],
        ),
        (
            "a tampered policy",
            with(
                &fields,
                "policy",
                &fields
                    .iter()
                    .find(|(n, _)| n == "policy")
                    .unwrap()
                    .1
                    .replacen('A', "B", 1),
            ),
            50,
            &[
                "SignatureDoesNotMatch",
                "AccessDenied",
                "InvalidPolicyDocument",
            ],
        ),
    ];
    for (what, fields, size, codes) in cases {
        let posted = curl_form(url, &fields, &bytes(size), &[]).await;
        assert!(
            (400..500).contains(&posted.status),
            "{what}: {} {}",
            posted.status,
            posted.body
        );
        assert!(
            codes
                .iter()
                .any(|c| posted.body.contains(&format!("<Code>{c}</Code>"))),
            "{what}: {}",
            posted.body
        );
        assert!(!draft_exists(&server, name).await, "{what}: nothing stored");
        assert!(
            !draft_exists(&server, "forms/other.bin").await,
            "{what}: nothing stored"
        );
        assert_eq!(scratch_files(&server), 0, "{what}: no file left");
    }
    // The untouched form still works: the refusals were about the changes.
    let posted = curl_form(url, &fields, &bytes(100), &[]).await;
    assert_eq!(posted.status, 204, "{}", posted.body);
    assert!(draft_exists(&server, name).await);
}

/// A form past its expiry is refused (AccessDenied) and stores nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_form_is_refused() {
    let Some(server) = start(&[("UPLOAD_TTL", "1")]).await else {
        return;
    };
    let (status, form) = post(
        &server,
        "/api/v1/upload-form",
        None,
        json!({"object_name": "forms/late.bin", "max_content_length": 100}),
    )
    .await;
    assert_eq!(status, 200, "{form}");
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let posted = curl_form(
        form["url"].as_str().unwrap(),
        &fields_of(&form),
        b"late",
        &[],
    )
    .await;
    assert_eq!(posted.status, 403, "{}", posted.body);
    assert!(
        posted.body.contains("<Code>AccessDenied</Code>"),
        "{}",
        posted.body
    );
    assert!(!draft_exists(&server, "forms/late.bin").await);
    assert_eq!(scratch_files(&server), 0);
}

/// Confirm checks the stored size against the range the form recorded, not an exact length.
#[tokio::test]
async fn confirm_checks_the_size_against_the_recorded_range() {
    let Some(server) = start(&[]).await else {
        return;
    };
    let draft: &BucketName = &server.config.buckets.draft;
    for (name, size, want) in [
        ("in.bin", 15, 200),
        ("over.bin", 21, 422),
        ("under.bin", 9, 422),
    ] {
        let mut options = PutOptions::default();
        options
            .metadata
            .insert(DECLARED_KEY.to_owned(), "range=10-20".to_owned());
        server
            .storage()
            .put_object(draft, name, bytes(size), &options)
            .await
            .unwrap();
        let (status, body) = post(
            &server,
            "/api/v1/confirm-upload",
            None,
            json!({"object_name": name}),
        )
        .await;
        assert_eq!(status, want, "{name}: {body}");
        if want == 422 {
            assert_eq!(body["error"]["code"], "CONSTRAINT_MISMATCH", "{body}");
            let message = body["error"]["message"].as_str().unwrap();
            assert!(message.contains("10..=20"), "{message}");
        }
    }
}

/// Bad requests for a form: each a 400 naming what is wrong.
#[tokio::test]
async fn bad_form_requests_are_refused() {
    let Some(server) = start(&[]).await else {
        return;
    };
    for (body, code) in [
        (json!({"object_name": "/abs"}), "INVALID_OBJECT_NAME"),
        (
            json!({"object_name": "a", "min_content_length": 10, "max_content_length": 5}),
            "INVALID_CONSTRAINTS",
        ),
        (
            json!({"object_name": "a", "max_content_length": 6_000_000_000_000_u64}),
            "INVALID_CONSTRAINTS",
        ),
        (
            json!({"object_name": "a", "content_type": "a\nb"}),
            "INVALID_CONSTRAINTS",
        ),
        (
            json!({"object_name": "a", "content_type": "not a type"}),
            "INVALID_CONSTRAINTS",
        ),
        (
            json!({"object_name": "a", "metadata": {"Upper": "x"}}),
            "INVALID_CONSTRAINTS",
        ),
        (
            json!({"object_name": "a", "metadata": {"k": "v".repeat(2000)}}),
            "INVALID_CONSTRAINTS",
        ),
        (
            json!({"object_name": "a", "max_content_length": "big"}),
            "INVALID_REQUEST",
        ),
    ] {
        let (status, reply) = post(&server, "/api/v1/upload-form", None, body.clone()).await;
        assert_eq!(status, 400, "{body}: {reply}");
        assert_eq!(reply["error"]["code"], code, "{body}: {reply}");
    }
}

/// GetUploadForm over gRPC: the same form, usable with curl; errors are gRPC statuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_upload_form_over_grpc() {
    let Some(server) = start(&[]).await else {
        return;
    };
    let mut grpc = client(server.addr).await;
    let form: pb::GetUploadFormResponse = call(
        &mut grpc,
        pb::paths::GET_UPLOAD_FORM,
        pb::GetUploadFormRequest {
            object_name: "grpc/form.txt".into(),
            content_type: "text/plain".into(),
            max_content_length: Some(64),
            min_content_length: None,
            metadata: [("k".to_owned(), "v".to_owned())].into(),
        },
    )
    .await
    .unwrap();
    assert!(form.result.unwrap().success);
    assert_eq!(form.key, "grpc/form.txt");
    assert_eq!(form.object_name, "grpc/form.txt");
    let fields: Vec<(String, String)> =
        form.fields.into_iter().map(|f| (f.name, f.value)).collect();
    assert!(fields
        .iter()
        .any(|(n, v)| n == "key" && v == "grpc/form.txt"));
    // The embedded store takes the form over h2c as over HTTP/1.1.
    let protocol: &[&str] = if server.is_s3() {
        &[]
    } else {
        &["--http2-prior-knowledge"]
    };
    let posted = curl_form(&form.url, &fields, b"hello over grpc", protocol).await;
    assert!(
        server.is_s3() || posted.headers.starts_with("http/2 "),
        "{}",
        posted.headers
    );
    assert_eq!(posted.status, 204, "{}", posted.body);
    let posted = curl_form(&form.url, &fields, &bytes(65), &[]).await;
    assert!(
        posted.body.contains("<Code>EntityTooLarge</Code>"),
        "{}",
        posted.body
    );
    let done: pb::ConfirmUploadResponse = call(
        &mut grpc,
        pb::paths::CONFIRM_UPLOAD,
        pb::ConfirmUploadRequest {
            object_name: "grpc/form.txt".into(),
            overwrite: false,
            constraints: None,
        },
    )
    .await
    .unwrap();
    assert_eq!(done.size, 15);
    let bad: Result<pb::GetUploadFormResponse, _> = call(
        &mut grpc,
        pb::paths::GET_UPLOAD_FORM,
        pb::GetUploadFormRequest {
            object_name: "x".into(),
            min_content_length: Some(9),
            max_content_length: Some(1),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(bad.unwrap_err().code(), tonic::Code::InvalidArgument);
}

/// Tenants: the form's key lies in the caller's folder, a form cannot be turned to another
/// tenant's key, the tenant's size limit is the form's default maximum and caps it, and another
/// tenant cannot confirm the draft.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forms_keep_tenants_apart() {
    let hash = crate::harness::key_hash;
    let keys = format!(
        "acme {} max_size=1000;globex {}",
        hash("acme-key"),
        hash("globex-key")
    );
    let Some(server) = crate::harness::start_with_keys(&keys).await else {
        return;
    };
    let (status, _) = post(
        &server,
        "/api/v1/upload-form",
        None,
        json!({"object_name": "a.txt"}),
    )
    .await;
    assert_eq!(status, 401, "credentials as for upload-url");
    let (status, reply) = post(
        &server,
        "/api/v1/upload-form",
        Some("acme-key"),
        json!({"object_name": "a.txt", "max_content_length": 1001}),
    )
    .await;
    assert_eq!(
        (status, &reply["error"]["code"]),
        (403, &json!("TENANT_LIMIT")),
        "{reply}"
    );
    let (status, form) = post(
        &server,
        "/api/v1/upload-form",
        Some("acme-key"),
        json!({"object_name": "a.txt"}),
    )
    .await;
    assert_eq!(status, 200, "{form}");
    let fields = fields_of(&form);
    assert!(fields.iter().any(|(n, v)| n == "key" && v == "acme/a.txt"));
    let url = form["url"].as_str().unwrap();
    let posted = curl_form(url, &fields, &bytes(1001), &[]).await;
    assert!(
        posted.body.contains("<Code>EntityTooLarge</Code>"),
        "the tenant's max_size is the form's maximum: {}",
        posted.body
    );
    let stolen = curl_form(url, &with(&fields, "key", "globex/a.txt"), b"x", &[]).await;
    assert_eq!(stolen.status, 403, "{}", stolen.body);
    assert!(!draft_exists(&server, "globex/a.txt").await);
    let posted = curl_form(url, &fields, b"acme's", &[]).await;
    assert_eq!(posted.status, 204, "{}", posted.body);
    let (status, _) = post(
        &server,
        "/api/v1/confirm-upload",
        Some("globex-key"),
        json!({"object_name": "a.txt"}),
    )
    .await;
    assert_eq!(status, 404, "globex has no a.txt");
    let (status, done) = post(
        &server,
        "/api/v1/confirm-upload",
        Some("acme-key"),
        json!({"object_name": "a.txt"}),
    )
    .await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(
        done["final_location"],
        format!("{}/acme/a.txt", server.config.buckets.main)
    );
}

/// The embedded store: a form draft is swept like any draft once it is older than the
/// object lifetime; a malformed POST is S3 XML.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_draft_is_swept_and_malformed_posts_are_refused() {
    let server = crate::harness::start_local(&[]).await;
    let (_, form) = post(
        &server,
        "/api/v1/upload-form",
        None,
        json!({"object_name": "old.txt"}),
    )
    .await;
    let url = form["url"].as_str().unwrap();
    let posted = curl_form(url, &fields_of(&form), b"old", &[]).await;
    assert_eq!(posted.status, 204, "{}", posted.body);
    for (content_type, body, code) in [
        ("text/plain", "x", "PreconditionFailed"),
        (
            "multipart/form-data; boundary=zz",
            "--zz\r\nbroken",
            "MalformedPOSTRequest",
        ),
        (
            "multipart/form-data; boundary=zz",
            "--zz\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nold.txt\r\n--zz--\r\n",
            "InvalidArgument",
        ),
    ] {
        let resp = http1()
            .post(url)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_client_error(), "{content_type}");
        let text = resp.text().await.unwrap();
        assert!(text.contains(&format!("<Code>{code}</Code>")), "{text}");
    }
    assert_eq!(scratch_files(&server), 0);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gateway"))
        .env_clear()
        .env("DRAFTSTORE_DATA_DIR", data_dir(&server).unwrap())
        .env("OBJECT_LIFETIME", "1")
        .args(["sweep", "--json"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!draft_exists(&server, "old.txt").await, "swept");
}

/// Preflight of a browser POST to the embedded store: allowed for the configured origin with
/// ETag exposed, not for another; bucket creation reports that the gateway answers CORS.
#[tokio::test]
async fn the_embedded_store_answers_cors_for_form_posts() {
    let server =
        crate::harness::start_local(&[("DRAFTSTORE_CORS_ORIGINS", "https://app.example")]).await;
    let (status, created) = post(&server, "/api/v1/draft-bucket", None, json!({})).await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(created["draft_bucket_cors"]["status"], "gateway");
    let url = server.url("/_store/main-draft");
    for (origin, allowed) in [
        ("https://app.example", true),
        ("https://evil.example", false),
    ] {
        let resp = http1()
            .request(reqwest::Method::OPTIONS, &url)
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .send()
            .await
            .unwrap();
        let headers = resp.headers();
        let allow_origin = headers.get("access-control-allow-origin");
        assert_eq!(allow_origin.is_some(), allowed, "{origin}: {headers:?}");
        if allowed {
            let methods = headers["access-control-allow-methods"].to_str().unwrap();
            assert!(methods.contains("POST"), "{methods}");
        }
    }
}

/// On S3, bucket creation gives a draft bucket without CORS rules DraftStore's rule for the
/// configured origins (PutBucketCors), and reports rules it finds without changing them;
/// SeaweedFS then answers a browser's preflight for a form POST.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_draft_bucket_sets_the_draft_buckets_cors_on_s3() {
    let Some(server) = crate::harness::start_s3(&[(
        "DRAFTSTORE_CORS_ORIGINS",
        "https://app.example,https://b.example",
    )])
    .await
    else {
        return;
    };
    let (status, created) = post(&server, "/api/v1/draft-bucket", None, json!({})).await;
    assert_eq!(status, 200, "{created}");
    let cors = &created["draft_bucket_cors"];
    assert_eq!(cors["status"], "set", "{created}");
    let rule = json!({"AllowedOrigins": ["https://app.example", "https://b.example"],
        "AllowedMethods": ["PUT", "POST", "GET", "HEAD"], "AllowedHeaders": ["*"],
        "ExposeHeaders": ["ETag"], "MaxAgeSeconds": 3000});
    assert_eq!(cors["CORSRules"], json!([rule]));
    let crate::harness::Direct::S3(s3) = server.storage() else {
        unreachable!()
    };
    let stored = s3
        .bucket_cors(&server.config.buckets.draft)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].expose_headers, ["ETag"]);
    // A browser on an allowed origin may POST a form to the bucket. (SeaweedFS 4.48 answers
    // every preflight with its global `-s3.allowedOrigins`, `*` by default, whatever the
    // bucket's rules: that another origin is refused cannot be seen there; AWS applies them.)
    let (_, form) = post(
        &server,
        "/api/v1/upload-form",
        None,
        json!({"object_name": "cors.txt"}),
    )
    .await;
    let resp = http1()
        .request(reqwest::Method::OPTIONS, form["url"].as_str().unwrap())
        .header("origin", "https://b.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    let allow = resp.headers().get("access-control-allow-origin").cloned();
    assert!(
        allow
            .as_ref()
            .is_some_and(|v| v == "https://b.example" || v == "*"),
        "{allow:?}"
    );

    // Rules found are reported, never replaced: an operator's own rule stays.
    let own = draftstore_gateway::store::CorsRule {
        allowed_origins: vec!["https://ops.example".into()],
        allowed_methods: vec!["GET".into()],
        ..Default::default()
    };
    s3.put_bucket_cors(&server.config.buckets.draft, std::slice::from_ref(&own))
        .await
        .unwrap();
    let mut grpc = client(server.addr).await;
    let again: pb::CreateDraftBucketResponse = call(
        &mut grpc,
        pb::paths::CREATE_DRAFT_BUCKET,
        pb::CreateDraftBucketRequest {},
    )
    .await
    .unwrap();
    assert_eq!(again.draft_bucket_cors, "existing");
    assert_eq!(again.draft_bucket_cors_rules.len(), 1);
    assert_eq!(
        again.draft_bucket_cors_rules[0].allowed_origins,
        ["https://ops.example"]
    );
    let stored = s3
        .bucket_cors(&server.config.buckets.draft)
        .await
        .unwrap()
        .unwrap();
    // SeaweedFS answers an unset MaxAgeSeconds as 0.
    let kept: Vec<(&[String], &[String])> = stored
        .iter()
        .map(|r| (r.allowed_origins.as_slice(), r.allowed_methods.as_slice()))
        .collect();
    assert_eq!(
        kept,
        [(
            own.allowed_origins.as_slice(),
            own.allowed_methods.as_slice()
        )],
        "left as it was"
    );
}

/// Sends the form's fields and the first `sent` bytes of a file declared (by Content-Length)
/// to be `declared` bytes, over a raw connection, then waits for the store's XML answer
/// without sending the rest.
async fn partial_form(server: &Running, form: &Value, sent: usize, declared: usize) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut body = String::new();
    for (name, value) in fields_of(form) {
        body.push_str(&format!(
            "--zz\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        ));
    }
    body.push_str("--zz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f\"\r\n\r\n");
    body.push_str(&"x".repeat(sent));
    let head = format!(
        "POST /_store/main-draft HTTP/1.1\r\nHost: {}\r\nContent-Type: multipart/form-data; boundary=zz\r\nContent-Length: {}\r\n\r\n",
        server.addr,
        body.len() + declared - sent
    );
    let socket = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let (mut read, mut write) = socket.into_split();
    // Written aside: the store may stop reading before all of it is taken.
    let writer = tokio::spawn(async move {
        let _ = write.write_all(head.as_bytes()).await;
        let _ = write.write_all(body.as_bytes()).await;
        write
    });
    let mut answer = Vec::new();
    let mut buf = [0_u8; 4096];
    while !String::from_utf8_lossy(&answer).contains("</Error>") {
        let n = read.read(&mut buf).await.unwrap();
        assert!(
            n > 0,
            "closed without an answer: {}",
            String::from_utf8_lossy(&answer)
        );
        answer.extend_from_slice(&buf[..n]);
    }
    writer.abort();
    String::from_utf8_lossy(&answer).into_owned()
}

/// A file over the range is refused while it streams, without waiting for the rest of the
/// body: nothing stored, no file left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_file_over_the_range_is_cut_while_streaming() {
    let server =
        crate::harness::start_local(&[("DRAFTSTORE_STORE_STALL_TIMEOUT_MS", "60000")]).await;
    let (_, form) = post(
        &server,
        "/api/v1/upload-form",
        None,
        json!({"object_name": "big.bin", "max_content_length": 1_048_576}),
    )
    .await;
    // 2 MiB sent of 64 MiB declared: an answer before the stall timeout comes from the cut.
    let text = partial_form(&server, &form, 2 << 20, 64 << 20).await;
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert!(text.contains("<Code>EntityTooLarge</Code>"), "{text}");
    assert!(!draft_exists(&server, "big.bin").await);
    assert_eq!(scratch_files(&server), 0, "the partial file is gone");
}

/// A form upload that stops sending mid-file is cut after the stall timeout with S3's
/// `RequestTimeout`: nothing stored, no file left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_form_upload_is_cut_and_leaves_nothing() {
    let server = crate::harness::start_local(&[("DRAFTSTORE_STORE_STALL_TIMEOUT_MS", "300")]).await;
    let (_, form) = post(
        &server,
        "/api/v1/upload-form",
        None,
        json!({"object_name": "stalled.bin", "max_content_length": 100000}),
    )
    .await;
    let text = partial_form(&server, &form, 20000, 100_000).await;
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert!(text.contains("<Code>RequestTimeout</Code>"), "{text}");
    assert!(!draft_exists(&server, "stalled.bin").await);
    assert_eq!(scratch_files(&server), 0, "the partial file is gone");
}

/// Signs a policy document by hand as AWS documents it (HMAC-SHA256 of the base64 policy under
/// the day's SigV4 key): an independent check of the store's verification, and a way to allow
/// fields DraftStore's own forms never carry.
fn hand_signed(secret: &str, conditions: &[Value], key: &str) -> Vec<(String, String)> {
    use base64::Engine as _;
    use hmac::{Hmac, Mac};
    let mac = |k: &[u8], data: &str| {
        let mut m = Hmac::<sha2::Sha256>::new_from_slice(k).unwrap();
        m.update(data.as_bytes());
        m.finalize().into_bytes().to_vec()
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let amz = draftstore_signer::Timestamp::from_unix(now as i64).unwrap();
    let later = draftstore_signer::Timestamp::from_unix(now as i64 + 600).unwrap();
    let (date, later) = (amz.amz_date().to_owned(), later.amz_date().to_owned());
    let iso = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &later[0..4],
        &later[4..6],
        &later[6..8],
        &later[9..11],
        &later[11..13],
        &later[13..15]
    );
    let credential = format!("draftstore-local/{}/us-east-1/s3/aws4_request", &date[..8]);
    let mut all = conditions.to_vec();
    all.extend([
        json!({"bucket": "main-draft"}),
        json!({"key": key}),
        json!({"x-amz-algorithm": "AWS4-HMAC-SHA256"}),
        json!({"x-amz-credential": credential}),
        json!({"x-amz-date": date}),
    ]);
    let policy = json!({"expiration": iso, "conditions": all}).to_string();
    let policy = base64::engine::general_purpose::STANDARD.encode(policy);
    let mut k = mac(format!("AWS4{secret}").as_bytes(), &date[..8]);
    for part in ["us-east-1", "s3", "aws4_request"] {
        k = mac(&k, part);
    }
    let signature = hex::encode(mac(&k, &policy));
    [
        ("key", key.to_owned()),
        ("x-amz-algorithm", "AWS4-HMAC-SHA256".to_owned()),
        ("x-amz-credential", credential),
        ("x-amz-date", date),
        ("policy", policy),
        ("x-amz-signature", signature),
    ]
    .into_iter()
    .map(|(n, v)| (n.to_owned(), v))
    .collect()
}

/// `success_action_status`, when the policy allows it: 201 with S3's `PostResponse` XML, 200
/// with no body; the default 204. A field the policy does not name is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_action_status_picks_the_answer() {
    const SECRET: &str = "form-test-secret";
    let server = crate::harness::start_local(&[("DRAFTSTORE_LOCAL_SECRET", SECRET)]).await;
    let url = server.url("/_store/main-draft");
    for (status, want) in [("201", 201), ("200", 200), ("299", 204)] {
        let key = format!("status-{status}.txt");
        let mut fields = vec![("success_action_status".to_owned(), status.to_owned())];
        fields.extend(hand_signed(
            SECRET,
            &[json!({"success_action_status": status})],
            &key,
        ));
        let posted = curl_form(&url, &fields, b"hello", &[]).await;
        assert_eq!(posted.status, want, "{status}: {}", posted.body);
        let etag = format!("\"{:x}\"", md5_of(b"hello"));
        assert!(
            posted.headers.contains(&format!("etag: {etag}")),
            "{}",
            posted.headers
        );
        if want == 201 {
            assert!(
                posted.body.contains("<Bucket>main-draft</Bucket>"),
                "{}",
                posted.body
            );
            assert!(
                posted.body.contains(&format!("<Key>{key}</Key>")),
                "{}",
                posted.body
            );
            assert!(
                posted
                    .body
                    .contains(&format!("<ETag>&quot;{}&quot;</ETag>", &etag[1..33])),
                "{}",
                posted.body
            );
        } else {
            assert!(posted.body.is_empty(), "{}", posted.body);
        }
        assert!(draft_exists(&server, &key).await);
    }
    let mut fields = vec![("success_action_status".to_owned(), "201".to_owned())];
    fields.extend(hand_signed(SECRET, &[], "extra.txt"));
    let posted = curl_form(&url, &fields, b"hello", &[]).await;
    assert_eq!(posted.status, 403, "{}", posted.body);
    assert!(
        posted.body.contains("<Code>AccessDenied</Code>"),
        "{}",
        posted.body
    );
    assert!(
        posted.body.contains("success_action_status"),
        "{}",
        posted.body
    );
    assert!(!draft_exists(&server, "extra.txt").await);
}
