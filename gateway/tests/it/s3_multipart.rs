//! Multipart uploads on SeaweedFS through the S3 store: presigned UploadPart URLs used by curl
//! (parts 3, 1, 2 of 5 MiB, 5 MiB, 1 MiB), a SHA-256 signed into a part URL, a tampered URL
//! refused by the server, and `gateway sweep` aborting a stale upload. Skips outside CI without
//! a server, as the other S3 tests.

use crate::local_store::curl;
use crate::s3::{env, prefix, storage};
use base64::Engine;
use draftstore_core::{
    every_part, multipart_etag, BucketName, ChecksumAlgorithm, CompletedPart, MultipartOptions,
    ObjectName, Storage, StorageError,
};
use draftstore_gateway::store::s3::S3Storage;
use draftstore_gateway::store::{PartUrl, Presign};
use draftstore_signer::{Expiry, Timestamp};
use std::path::Path;
use std::time::Duration;

const MIB: usize = 1024 * 1024;

fn bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(17).wrapping_add(seed))
        .collect()
}

fn md5_hex(body: &[u8]) -> String {
    hex::encode(<md5::Md5 as md5::Digest>::digest(body))
}

fn now() -> Timestamp {
    Timestamp::from_unix(draftstore_gateway::clock::unix_now().unwrap()).unwrap()
}

fn part_url(
    s3: &S3Storage,
    bucket: &BucketName,
    name: &str,
    upload_id: &str,
    part_number: u32,
    checksum_sha256: Option<&str>,
) -> String {
    s3.presign_upload_part(
        &PartUrl {
            bucket,
            key: &ObjectName::parse(name).unwrap(),
            upload_id,
            part_number,
            checksum_sha256,
        },
        Expiry::new(600).unwrap(),
        now(),
    )
    .unwrap()
}

/// curl PUT of `body` to `url`: (answer, status, lowercase headers).
fn curl_put(dir: &Path, body: &[u8], url: &str, extra: &[&str]) -> (String, String, String) {
    let file = dir.join(format!("part-{}.bin", fastrand::u64(..)));
    std::fs::write(&file, body).unwrap();
    let headers = dir.join("headers.txt");
    let data = format!("@{}", file.display());
    let mut args = vec![
        "-X",
        "PUT",
        "--data-binary",
        data.as_str(),
        "-D",
        headers.to_str().unwrap(),
        url,
    ];
    args.extend_from_slice(extra);
    let (answer, code) = curl(&args);
    let headers = std::fs::read_to_string(&headers)
        .unwrap_or_default()
        .to_ascii_lowercase();
    (answer, code, headers)
}

#[tokio::test]
async fn presigned_parts_with_curl_in_any_order_complete_on_seaweedfs() {
    let Some(map) = env(&[]) else { return };
    let s3 = storage(&map);
    let bucket = BucketName::parse(&prefix("mpp")).unwrap();
    s3.create_bucket(&bucket).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let name = "tenant/big ሴ+file.bin";
    let id = s3
        .create_multipart_upload(
            &bucket,
            name,
            &MultipartOptions {
                content_type: Some("video/mp4".into()),
                ..MultipartOptions::default()
            },
        )
        .await
        .unwrap();
    let parts = [bytes(5 * MIB, 1), bytes(5 * MIB, 2), bytes(MIB, 3)];
    for n in [3_u32, 1, 2] {
        let body = &parts[n as usize - 1];
        let (answer, code, headers) = curl_put(
            dir.path(),
            body,
            &part_url(&s3, &bucket, name, &id, n, None),
            &[],
        );
        assert_eq!(code, "200", "part {n}: {answer}");
        assert!(
            headers.contains(&md5_hex(body)),
            "part {n}'s ETag is its MD5: {headers}"
        );
    }
    let tampered =
        part_url(&s3, &bucket, name, &id, 1, None).replace("partNumber=1", "partNumber=4");
    let (answer, code, _) = curl_put(dir.path(), b"x", &tampered, &[]);
    assert_eq!(code, "403", "a tampered part URL: {answer}");

    let listed = s3.list_parts(&bucket, name, &id).await.unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|p| (p.part_number, p.size))
            .collect::<Vec<_>>(),
        [(1, 5 * MIB as u64), (2, 5 * MIB as u64), (3, MIB as u64)],
        "the tampered PUT stored nothing"
    );
    let done = s3
        .complete_multipart_upload(&bucket, name, &id, &every_part(&listed))
        .await
        .unwrap();
    let whole = parts.concat();
    let etags: Vec<String> = parts.iter().map(|p| md5_hex(p)).collect();
    assert_eq!(done.etag, multipart_etag(etags.iter().map(String::as_str)));
    assert_eq!(done.size, whole.len() as u64);
    assert!(s3.get_object(&bucket, name).await.unwrap() == whole);
    let info = s3.head_object(&bucket, name).await.unwrap();
    assert_eq!(info.content_type.as_deref(), Some("video/mp4"));
}

#[tokio::test]
async fn a_part_url_with_a_signed_sha256_needs_that_header_and_those_bytes() {
    let Some(map) = env(&[]) else { return };
    let s3 = storage(&map);
    let bucket = BucketName::parse(&prefix("mps")).unwrap();
    s3.create_bucket(&bucket).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let name = "checked.bin";
    let id = s3
        .create_multipart_upload(
            &bucket,
            name,
            &MultipartOptions {
                checksum: Some(ChecksumAlgorithm::Sha256),
                ..MultipartOptions::default()
            },
        )
        .await
        .unwrap();
    let body = bytes(1000, 4);
    let sum = base64::engine::general_purpose::STANDARD
        .encode(<sha2::Sha256 as sha2::Digest>::digest(&body));
    let url = part_url(&s3, &bucket, name, &id, 1, Some(&sum));
    assert!(url.contains("x-amz-checksum-sha256"), "signed in: {url}");
    let (answer, code, _) = curl_put(dir.path(), &body, &url, &[]);
    assert_ne!(code, "200", "without the signed header: {answer}");
    let header = format!("x-amz-checksum-sha256: {sum}");
    let (answer, code, _) = curl_put(dir.path(), &bytes(1000, 5), &url, &["-H", &header]);
    assert_ne!(code, "200", "other bytes: {answer}");
    let (answer, code, _) = curl_put(dir.path(), &body, &url, &["-H", &header]);
    assert_eq!(code, "200", "{answer}");
    let listed = s3.list_parts(&bucket, name, &id).await.unwrap();
    assert_eq!(listed.len(), 1);
    // SeaweedFS lists no checksum but wants it at completion: the client gives it.
    let done = s3
        .complete_multipart_upload(
            &bucket,
            name,
            &id,
            &[CompletedPart {
                checksum_sha256: Some(sum.clone()),
                ..CompletedPart::from(&listed[0])
            }],
        )
        .await
        .unwrap();
    assert_eq!(done.size, 1000);
    assert!(s3.get_object(&bucket, name).await.unwrap() == body);
}

#[tokio::test]
async fn sweep_aborts_a_stale_upload_on_seaweedfs() {
    let p = prefix("swm");
    let (main, draft) = (format!("{p}-main"), format!("{p}-drafts"));
    let Some(map) = env(&[
        ("BUCKET_NAME", &main),
        ("DRAFT_BUCKET", &draft),
        ("OBJECT_LIFETIME", "1"),
    ]) else {
        return;
    };
    let s3 = storage(&map);
    let bucket = BucketName::parse(&draft).unwrap();
    s3.create_bucket(&BucketName::parse(&main).unwrap())
        .await
        .unwrap();
    s3.create_bucket(&bucket).await.unwrap();
    let old = s3
        .create_multipart_upload(&bucket, "stale.bin", &MultipartOptions::default())
        .await
        .unwrap();
    s3.upload_part(&bucket, "stale.bin", &old, 1, bytes(1000, 1), None)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let young = s3
        .create_multipart_upload(&bucket, "young.bin", &MultipartOptions::default())
        .await
        .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gateway"))
        .env_clear()
        .envs(&map)
        .args(["sweep", "--json"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["multipart_aborted"].as_u64(), Some(1), "{report}");
    assert!(matches!(
        s3.list_parts(&bucket, "stale.bin", &old).await,
        Err(StorageError::NoSuchUpload { .. })
    ));
    let left = s3.list_uploads(&bucket, "", None).await.unwrap();
    assert_eq!(
        left.uploads
            .iter()
            .map(|u| u.upload_id.as_str())
            .collect::<Vec<_>>(),
        [young.as_str()]
    );
}

/// CompleteMultipartUpload answered 200 with an `<Error>` body (S3 fails after the status
/// line) is retried, not taken for success; S3's own InvalidPart stays typed; a completion that
/// keeps failing leaves the upload whole.
#[tokio::test]
async fn a_completion_answered_200_with_an_error_is_retried_not_trusted() {
    use crate::proxy::{Proxy, ProxyFault};
    let Some(direct_env) = env(&[("DRAFTSTORE_S3_MAX_ATTEMPTS", "2")]) else {
        return;
    };
    let proxy = Proxy::start(direct_env["AWS_ENDPOINT_URL"].clone()).await;
    let mut proxied_env = direct_env.clone();
    proxied_env.insert("AWS_ENDPOINT_URL".into(), proxy.url());
    let (direct, s3) = (storage(&direct_env), storage(&proxied_env));
    let bucket = BucketName::parse(&prefix("mpf")).unwrap();
    direct.create_bucket(&bucket).await.unwrap();
    let parts = [bytes(5 * MIB, 1), bytes(100, 2)];
    let upload = |name: &'static str| {
        let (direct, bucket, parts) = (&direct, &bucket, &parts);
        async move {
            let id = direct
                .create_multipart_upload(bucket, name, &MultipartOptions::default())
                .await
                .unwrap();
            for (n, body) in [(1, &parts[0]), (2, &parts[1])] {
                direct
                    .upload_part(bucket, name, &id, n, body.clone(), None)
                    .await
                    .unwrap();
            }
            let listed = direct.list_parts(bucket, name, &id).await.unwrap();
            (id, every_part(&listed))
        }
    };

    let (id, all) = upload("retried.bin").await;
    // ListParts passes; the first Complete is a 200 carrying an error.
    proxy.push([ProxyFault::Pass, ProxyFault::Answer(200, "InternalError")]);
    let done = s3
        .complete_multipart_upload(&bucket, "retried.bin", &id, &all)
        .await
        .unwrap();
    assert_eq!(done.size, (5 * MIB + 100) as u64);
    assert!(direct.get_object(&bucket, "retried.bin").await.unwrap() == parts.concat());
    let completes = proxy
        .recorded()
        .iter()
        .filter(|r| r.method == "POST" && r.target.contains("uploadId="))
        .count();
    assert_eq!(completes, 2, "the 200-with-error was retried once");

    let (id, all) = upload("refused.bin").await;
    proxy.push([ProxyFault::Pass, ProxyFault::Answer(400, "InvalidPart")]);
    let r = s3
        .complete_multipart_upload(&bucket, "refused.bin", &id, &all)
        .await;
    assert!(
        matches!(r, Err(StorageError::InvalidPart { .. })),
        "S3's InvalidPart: {r:?}"
    );
    proxy.push([
        ProxyFault::Pass,
        ProxyFault::Answer(200, "InternalError"),
        ProxyFault::Answer(200, "InternalError"),
    ]);
    let r = s3
        .complete_multipart_upload(&bucket, "refused.bin", &id, &all)
        .await;
    assert!(
        matches!(r, Err(StorageError::Unavailable { .. })),
        "failing past the retries: {r:?}"
    );
    assert!(matches!(
        direct.head_object(&bucket, "refused.bin").await,
        Err(StorageError::NotFound { .. })
    ));
    assert_eq!(
        direct
            .list_parts(&bucket, "refused.bin", &id)
            .await
            .unwrap()
            .len(),
        2,
        "the upload is whole"
    );
}
