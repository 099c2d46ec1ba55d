//! Names with a `/`-separated part over 255 bytes on SeaweedFS, which refuses them where AWS S3
//! and the embedded store take 1024-byte keys: a PUT or form ends in SeaweedFS's clear 400; a
//! multipart completion in a 503 (SeaweedFS's InternalError, which on AWS would be transient)
//! whose message names the 255-byte rule (README, SeaweedFS notes).

use crate::harness::{http1, start_s3, Running};
use crate::s3::{env, prefix, storage};
use draftstore_core::{BucketName, PutOptions, Storage, StorageError};
use serde_json::{json, Value};

async fn call(server: &Running, path: &str, body: Value) -> (u16, Value) {
    let resp = http1()
        .post(server.url(path))
        .json(&body)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

/// A PUT of `body` to a presigned URL: status and body text.
async fn put(url: &str, body: &'static str) -> (u16, String) {
    let resp = reqwest::Client::new()
        .put(url)
        .body(body)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// Posts a presigned form's fields and a file with curl: the answer's status line and body.
async fn post_form(form: &Value) -> String {
    let mut args: Vec<String> = vec!["-sS".into(), "-i".into()];
    for (name, value) in form["fields"].as_object().unwrap() {
        args.push("--form-string".into());
        args.push(format!("{name}={}", value.as_str().unwrap()));
    }
    args.extend([
        "-F".into(),
        "file=x".into(),
        form["url"].as_str().unwrap().into(),
    ]);
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
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn a_gateway_write_of_a_too_long_key_part_is_invalid_not_a_backend_failure() {
    let Some(map) = env(&[]) else {
        return;
    };
    let s3 = storage(&map);
    let bucket = BucketName::parse(&prefix("long")).unwrap();
    s3.create_bucket(&bucket).await.unwrap();
    let key = format!("dir/{}", "k".repeat(256));
    let err = s3
        .put_object(&bucket, &key, b"x".to_vec(), &PutOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StorageError::InvalidArgument { reason } if reason.contains("KeyTooLongError")),
        "{err:?}"
    );
    let fits = format!("dir/{}", "k".repeat(255));
    s3.put_object(&bucket, &fits, b"x".to_vec(), &PutOptions::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn every_way_to_upload_a_name_with_a_part_over_255_bytes_is_answered_naming_the_rule() {
    let Some(server) = start_s3(&[]).await else {
        return;
    };
    let name = format!("dir/{}.bin", "a".repeat(300));

    // A presigned PUT: SeaweedFS's own S3 error, before any byte is kept.
    let (status, made) = call(&server, "/api/v1/upload-url", json!({"object_name": name})).await;
    assert_eq!(status, 200, "{made}");
    let (status, body) = put(made["upload_url"].as_str().unwrap(), "put").await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("<Code>KeyTooLongError</Code>"), "{body}");
    let (status, reply) = call(
        &server,
        "/api/v1/confirm-upload",
        json!({"object_name": name}),
    )
    .await;
    assert_eq!(
        (status, &reply["error"]["code"]),
        (404, &json!("NOT_FOUND")),
        "{reply}"
    );

    // A POST form: the same.
    let (status, form) = call(&server, "/api/v1/upload-form", json!({"object_name": name})).await;
    assert_eq!(status, 200, "{form}");
    let answer = post_form(&form).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("<Code>KeyTooLongError</Code>"), "{answer}");

    // Multipart: SeaweedFS creates the upload and takes its parts; completing is answered
    // InternalError. That is a 503 STORAGE_UNAVAILABLE, not a 400: AWS takes such keys, so the
    // same answer from it is transient and a 400 ("abort the upload") would be wrong advice.
    // The message names the 255-byte rule for SeaweedFS.
    let (status, created) = call(
        &server,
        "/api/v1/multipart-upload",
        json!({"object_name": name}),
    )
    .await;
    assert_eq!(status, 200, "{created}");
    let id = created["upload_id"].as_str().unwrap();
    let (status, urls) = call(
        &server,
        "/api/v1/multipart-upload/part-urls",
        json!({"object_name": name, "upload_id": id, "part_numbers": [1]}),
    )
    .await;
    assert_eq!(status, 200, "{urls}");
    let (status, body) = put(urls["parts"][0]["url"].as_str().unwrap(), "part").await;
    assert_eq!(status, 200, "{body}");
    let (status, reply) = call(
        &server,
        "/api/v1/multipart-upload/complete",
        json!({"object_name": name, "upload_id": id}),
    )
    .await;
    assert_eq!(
        (status, &reply["error"]["code"]),
        (503, &json!("STORAGE_UNAVAILABLE")),
        "{reply}"
    );
    let message = reply["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("part of 304 bytes")
            && message.contains("over 255 bytes")
            && message.contains("if the store is SeaweedFS"),
        "{message}"
    );
    let (status, reply) = call(
        &server,
        "/api/v1/multipart-upload/abort",
        json!({"object_name": name, "upload_id": id}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");

    // 255 bytes fit.
    let fits = format!("dir/{}", "a".repeat(255));
    let (_, made) = call(&server, "/api/v1/upload-url", json!({"object_name": fits})).await;
    assert_eq!(
        put(made["upload_url"].as_str().unwrap(), "fits").await.0,
        200
    );
    let (status, reply) = call(
        &server,
        "/api/v1/confirm-upload",
        json!({"object_name": fits}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    server.stop().await;
}
