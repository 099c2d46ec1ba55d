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
    let status = head[9..12].parse().unwrap();
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
    let posted = curl_form(&form.url, &fields, b"hello over grpc", &[]).await;
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
    use sha2::{Digest, Sha256};
    let hash = |k: &str| hex::encode(Sha256::digest(k.as_bytes()));
    let keys = format!(
        "acme {} max_size=1000;globex {}",
        hash("acme-key"),
        hash("globex-key")
    );
    let Some(server) = start(&[
        ("DRAFTSTORE_AUTH", "api-keys"),
        ("DRAFTSTORE_API_KEYS", &keys),
    ])
    .await
    else {
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
