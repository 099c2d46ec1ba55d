//! Multipart uploads on the embedded store, with the real binary: parts PUT with curl to
//! presigned UploadPart URLs (HTTP/1.1 and h2c) in the order 3, 1, 2; completion and reads;
//! refused parts (tampered URL, unknown upload, wrong checksum, too large) answered with S3 XML
//! and storing nothing; kill -9 mid-part and a restart that continues the upload; `gateway
//! sweep` aborting a stale upload and freeing its files.

use crate::local_store::{
    curl, eventually, key, modes, serve, serve_with, signer_for, tmp_files, tokio_stream,
};
use base64::Engine;
use draftstore_core::{
    every_part, multipart_etag, ChecksumAlgorithm, MultipartOptions, Storage, StorageError,
};
use draftstore_gateway::store::local::LocalStorage;
use draftstore_gateway::store::{PartUrl, Presign};
use draftstore_signer::{Expiry, Method, Timestamp};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const MIB: usize = 1024 * 1024;

fn md5_hex(body: &[u8]) -> String {
    hex::encode(<md5::Md5 as md5::Digest>::digest(body))
}

fn sha256_b64(body: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(<sha2::Sha256 as sha2::Digest>::digest(body))
}

fn bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(13).wrapping_add(seed))
        .collect()
}

fn part_url(
    store: &LocalStorage,
    name: &str,
    upload_id: &str,
    part_number: u32,
    checksum_sha256: Option<&str>,
    now: Timestamp,
) -> String {
    let (bucket, key) = (
        draftstore_core::BucketName::parse("main-draft").unwrap(),
        key(name),
    );
    store
        .presign_upload_part(
            &PartUrl {
                bucket: &bucket,
                key: &key,
                upload_id,
                part_number,
                checksum_sha256,
            },
            Expiry::new(3600).unwrap(),
            now,
        )
        .unwrap()
}

/// `curl -X PUT --data-binary @file URL [extra…]`: (body, status, headers).
fn curl_put(dir: &Path, body: &[u8], url: &str, extra: &[&str]) -> (String, String, String) {
    let file = dir.join(format!("part-{}.bin", fastrand::u64(..)));
    std::fs::write(&file, body).unwrap();
    let headers = dir.join("headers.txt");
    let mut args = vec![
        "-X",
        "PUT",
        "--data-binary",
        file.to_str().map(|f| format!("@{f}")).unwrap().leak(),
        "-D",
        headers.to_str().unwrap(),
        url,
    ];
    args.extend_from_slice(extra);
    let (answer, code) = curl(&args);
    std::fs::remove_file(&file).unwrap();
    let headers = std::fs::read_to_string(&headers).unwrap_or_default();
    (answer, code, headers.to_ascii_lowercase())
}

fn upload_files(data: &Path) -> usize {
    let mut all = Vec::new();
    let uploads = data.join("uploads");
    if uploads.exists() {
        modes(&uploads, &mut all);
    }
    all.iter().filter(|(p, _)| p.is_file()).count()
}

/// The proof of the issue on the embedded store: three parts (5 MiB, 5 MiB, 1 MiB) PUT with
/// curl in the order 3, 1, 2, one of them over h2c; ListParts; complete; the object reads back
/// whole and by ranges across part boundaries, with S3's multipart ETag; modes 0600/0700.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parts_put_with_curl_in_any_order_complete_into_the_exact_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = serve(dir.path());
    let (store, draft, now) = signer_for(dir.path(), &gateway);
    let name = "videos/big ሴ.bin";
    let options = MultipartOptions {
        content_type: Some("video/mp4".into()),
        ..MultipartOptions::default()
    };
    let id = store
        .create_multipart_upload(&draft, name, &options)
        .await
        .unwrap();
    let parts = [bytes(5 * MIB, 1), bytes(5 * MIB, 2), bytes(MIB, 3)];
    for (n, h2) in [(3_u32, false), (1, true), (2, false)] {
        let body = &parts[n as usize - 1];
        let url = part_url(&store, name, &id, n, None, now);
        let extra: &[&str] = if h2 {
            &["--http2-prior-knowledge"]
        } else {
            &[]
        };
        let (answer, code, headers) = curl_put(dir.path(), body, &url, extra);
        assert_eq!(code, "200", "part {n}: {answer}");
        assert!(
            headers.contains(&format!("etag: \"{}\"", md5_hex(body))),
            "part {n} answers its MD5 as ETag: {headers}"
        );
        if h2 {
            assert!(headers.starts_with("http/2"), "over h2c: {headers}");
        }
    }
    let listed = store.list_parts(&draft, name, &id).await.unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|p| (p.part_number, p.size))
            .collect::<Vec<_>>(),
        [(1, 5 * MIB as u64), (2, 5 * MIB as u64), (3, MIB as u64)]
    );
    let done = store
        .complete_multipart_upload(&draft, name, &id, &every_part(&listed))
        .await
        .unwrap();
    let whole = parts.concat();
    let etag = multipart_etag(
        parts
            .iter()
            .map(|p| md5_hex(p))
            .collect::<Vec<_>>()
            .iter()
            .map(String::as_str),
    );
    assert_eq!(
        (done.size, done.etag.as_str()),
        (whole.len() as u64, etag.as_str())
    );

    let get = store
        .presign(
            Method::Get,
            &draft,
            &key(name),
            &[],
            Expiry::new(600).unwrap(),
            now,
        )
        .unwrap();
    let got = crate::harness::fetch(&get).await;
    assert!(got == whole, "the object is the parts in order");
    let boundary = 5 * MIB;
    let range = format!("bytes={}-{}", boundary - 10, boundary + 9);
    let response = reqwest::Client::new()
        .get(&get)
        .header("range", &range)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 206);
    assert_eq!(
        response.headers()["etag"].to_str().unwrap(),
        format!("\"{etag}\""),
        "GET answers the multipart ETag"
    );
    assert_eq!(
        response.bytes().await.unwrap().to_vec(),
        whole[boundary - 10..boundary + 10].to_vec(),
        "a range across parts 1 and 2"
    );
    let info = store.head_object(&draft, name).await.unwrap();
    assert_eq!(info.content_type.as_deref(), Some("video/mp4"));
    assert_eq!(
        upload_files(&dir.path().join("draftstore-data")),
        0,
        "parts freed"
    );
    let mut all = Vec::new();
    modes(&dir.path().join("draftstore-data"), &mut all);
    for (path, mode) in all {
        let want = if path.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode, want, "{}", path.display());
    }
}

/// Refused parts answer S3-style XML and store nothing: a tampered part number (403), an
/// upload id that does not exist (404), a wrong SHA-256 (400 BadDigest), a missing one on an
/// upload that keeps them (400), a part past the store's limit (400 EntityTooLarge).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_parts_answer_s3_xml_and_store_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = serve_with(
        dir.path(),
        &[("DRAFTSTORE_LOCAL_MAX_OBJECT_BYTES", "100000")],
    );
    let (store, draft, now) = signer_for(dir.path(), &gateway);
    let name = "refused.bin";
    let id = store
        .create_multipart_upload(
            &draft,
            name,
            &MultipartOptions {
                checksum: Some(ChecksumAlgorithm::Sha256),
                ..MultipartOptions::default()
            },
        )
        .await
        .unwrap();
    let body = bytes(1000, 5);
    let sum = sha256_b64(&body);
    let good = part_url(&store, name, &id, 1, Some(&sum), now);
    let checksum = format!("x-amz-checksum-sha256: {sum}");

    let tampered = good.replace("partNumber=1", "partNumber=2");
    assert_ne!(tampered, good);
    let (answer, code, _) = curl_put(dir.path(), &body, &tampered, &["-H", &checksum]);
    assert_eq!(code, "403", "{answer}");
    assert!(
        answer.contains("<Code>SignatureDoesNotMatch</Code>"),
        "{answer}"
    );

    let unknown = part_url(&store, name, &"0".repeat(32), 1, Some(&sum), now);
    let (answer, code, _) = curl_put(dir.path(), &body, &unknown, &["-H", &checksum]);
    assert_eq!(code, "404", "{answer}");
    assert!(answer.contains("<Code>NoSuchUpload</Code>"), "{answer}");

    let other_key = part_url(&store, "another.bin", &id, 1, Some(&sum), now);
    let (answer, code, _) = curl_put(dir.path(), &body, &other_key, &["-H", &checksum]);
    assert_eq!(code, "404", "an upload id used for another key: {answer}");

    let wrong = sha256_b64(b"something else");
    let mismatched = part_url(&store, name, &id, 1, Some(&wrong), now);
    let (answer, code, _) = curl_put(
        dir.path(),
        &body,
        &mismatched,
        &["-H", &format!("x-amz-checksum-sha256: {wrong}")],
    );
    assert_eq!(code, "400", "{answer}");
    assert!(answer.contains("<Code>BadDigest</Code>"), "{answer}");

    let unchecked = part_url(&store, name, &id, 1, None, now);
    let (answer, code, _) = curl_put(dir.path(), &body, &unchecked, &[]);
    assert_eq!(code, "400", "{answer}");
    assert!(
        answer.contains("<Code>InvalidRequest</Code>") && answer.contains("SHA-256"),
        "{answer}"
    );

    let big = bytes(200_000, 6);
    let big_sum = sha256_b64(&big);
    let too_large = part_url(&store, name, &id, 2, Some(&big_sum), now);
    let (answer, code, _) = curl_put(
        dir.path(),
        &big,
        &too_large,
        &["-H", &format!("x-amz-checksum-sha256: {big_sum}")],
    );
    assert_eq!(code, "400", "{answer}");
    assert!(answer.contains("<Code>EntityTooLarge</Code>"), "{answer}");

    assert!(
        store
            .list_parts(&draft, name, &id)
            .await
            .unwrap()
            .is_empty(),
        "no refused part was kept"
    );
    let data = dir.path().join("draftstore-data");
    eventually("no temporary file stays", || tmp_files(&data) == 0);

    let (answer, code, _) = curl_put(dir.path(), &body, &good, &["-H", &checksum]);
    assert_eq!(code, "200", "the untouched URL works: {answer}");
    let listed = store.list_parts(&draft, name, &id).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].checksum_sha256.as_deref(), Some(sum.as_str()));
    let r = store
        .complete_multipart_upload(
            &draft,
            name,
            &id,
            &[draftstore_core::CompletedPart {
                part_number: 1,
                etag: listed[0].etag.clone(),
                checksum_sha256: None,
            }],
        )
        .await;
    assert!(
        matches!(r, Err(StorageError::InvalidPart { part_number: 1, .. })),
        "an upload keeping SHA-256 completes only with each part's: {r:?}"
    );
}

/// kill -9 while a part is being sent: after a restart ListParts shows only the whole parts,
/// no temporary file is left, and the upload goes on to completion.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_part_then_restart_and_continue() {
    let dir = tempfile::tempdir().unwrap();
    let mut gateway = serve(dir.path());
    let (store, draft, now) = signer_for(dir.path(), &gateway);
    let name = "resumed.bin";
    let id = store
        .create_multipart_upload(&draft, name, &MultipartOptions::default())
        .await
        .unwrap();
    let p1 = bytes(5 * MIB, 7);
    let url = part_url(&store, name, &id, 1, None, now);
    assert_eq!(crate::harness::put_to(&url, p1.clone()).await, 200);

    // Part 2: 16 MiB declared, 8 sent, then the server is killed.
    let url2 = part_url(&store, name, &id, 2, None, now);
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(4);
    let upload = tokio::spawn(
        reqwest::Client::new()
            .put(url2)
            .header("content-length", (16 * MIB).to_string())
            .body(reqwest::Body::wrap_stream(tokio_stream(rx)))
            .send(),
    );
    for _ in 0..8 {
        tx.send(Ok(bytes::Bytes::from(vec![9_u8; MIB])))
            .await
            .unwrap();
    }
    let data = dir.path().join("draftstore-data");
    eventually("part 2 is being received", || {
        std::fs::read_dir(data.join("tmp"))
            .unwrap()
            .flatten()
            .any(|e| e.metadata().is_ok_and(|m| m.len() > 0))
    });
    gateway.child.kill().unwrap();
    gateway.child.wait().unwrap();
    drop(tx);
    let _ = upload.await;

    let restarted = serve(dir.path());
    let (store, _, _) = signer_for(dir.path(), &restarted);
    assert_eq!(
        tmp_files(&data),
        0,
        "the cut part's bytes were cleared at start"
    );
    let listed = store.list_parts(&draft, name, &id).await.unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|p| (p.part_number, p.size))
            .collect::<Vec<_>>(),
        [(1, 5 * MIB as u64)],
        "only the whole part"
    );
    let p2 = bytes(2 * MIB, 8);
    let url2 = part_url(&store, name, &id, 2, None, now);
    assert_eq!(crate::harness::put_to(&url2, p2.clone()).await, 200);
    let listed = store.list_parts(&draft, name, &id).await.unwrap();
    store
        .complete_multipart_upload(&draft, name, &id, &every_part(&listed))
        .await
        .unwrap();
    assert!(store.get_object(&draft, name).await.unwrap() == [p1, p2].concat());
}

/// `gateway sweep` aborts an upload older than the object lifetime and removes its files; a
/// young one stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweep_aborts_a_stale_upload_and_frees_its_files() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = serve(dir.path());
    let (store, draft, now) = signer_for(dir.path(), &gateway);
    let old = store
        .create_multipart_upload(&draft, "stale.bin", &MultipartOptions::default())
        .await
        .unwrap();
    let url = part_url(&store, "stale.bin", &old, 1, None, now);
    assert_eq!(crate::harness::put_to(&url, bytes(1000, 1)).await, 200);
    let data = dir.path().join("draftstore-data");
    assert_eq!(
        upload_files(&data),
        3,
        "upload.json, the part's metadata and its bytes"
    );
    let mut all = Vec::new();
    modes(&data.join("uploads"), &mut all);
    for (path, mode) in all {
        let want = if path.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode, want, "{}", path.display());
    }
    // Older than a lifetime of 1 s.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let young = store
        .create_multipart_upload(&draft, "young.bin", &MultipartOptions::default())
        .await
        .unwrap();

    // A queued event: the embedded store's listing of drafts hides it, yet sweep counts it
    // as S3 does (it reported 0 while `events list` showed it).
    store
        .put_object(
            &draft,
            ".draftstore/events/msg_x.json",
            b"{}".to_vec(),
            &draftstore_core::PutOptions::default(),
        )
        .await
        .unwrap();
    // A dry run counts the stale upload it would abort (it said 0) and aborts nothing.
    let dry = Command::new(env!("CARGO_BIN_EXE_gateway"))
        .env_clear()
        .env("DRAFTSTORE_DATA_DIR", &data)
        .env("OBJECT_LIFETIME", "1")
        .args(["sweep", "--json", "--dry-run"])
        .output()
        .unwrap();
    assert_eq!(dry.status.code(), Some(0));
    let report: serde_json::Value = serde_json::from_slice(&dry.stdout).unwrap();
    assert_eq!(
        (
            report["multipart_stale"].as_u64(),
            report["multipart_aborted"].as_u64()
        ),
        (Some(1), Some(0)),
        "{report}"
    );
    assert_eq!(report["reserved"].as_u64(), Some(1), "{report}");
    assert_eq!(
        store
            .list_uploads(&draft, "", None)
            .await
            .unwrap()
            .uploads
            .len(),
        2
    );

    let out = Command::new(env!("CARGO_BIN_EXE_gateway"))
        .env_clear()
        .env("DRAFTSTORE_DATA_DIR", &data)
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
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["multipart_aborted"].as_u64(), Some(1), "{report}");
    assert!(matches!(
        store.list_parts(&draft, "stale.bin", &old).await,
        Err(StorageError::NoSuchUpload { .. })
    ));
    let left = store.list_uploads(&draft, "", None).await.unwrap();
    assert_eq!(
        left.uploads
            .iter()
            .map(|u| u.upload_id.as_str())
            .collect::<Vec<_>>(),
        [young.as_str()],
        "the young upload stays"
    );
    assert_eq!(
        upload_files(&data),
        1,
        "only the young upload's upload.json is left"
    );
    assert_eq!(tmp_files(&data), 0, "nothing parked in tmp/");
}

/// A full disk: a part that does not fit is 507 InsufficientStorage XML and leaves nothing; a
/// completion whose object does not fit fails naming the full disk, and the upload stays whole
/// to be completed once there is room.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_parts_and_completions_and_keeps_the_upload() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("small");
    std::fs::create_dir(&data).unwrap();
    let Some(_disk) = crate::local_store::small_disk(&data) else {
        return;
    };
    let gateway = serve_with(
        dir.path(),
        &[("DRAFTSTORE_DATA_DIR", data.to_str().unwrap())],
    );
    let store = LocalStorage::open_existing(&crate::local_store::config(
        &data,
        &format!("http://127.0.0.1:{}", gateway.port),
    ))
    .unwrap();
    let draft = draftstore_core::BucketName::parse("main-draft").unwrap();
    let now = Timestamp::from_unix(draftstore_gateway::clock::unix_now().unwrap()).unwrap();
    let name = "full.bin";
    let id = store
        .create_multipart_upload(&draft, name, &MultipartOptions::default())
        .await
        .unwrap();
    let url = part_url(&store, name, &id, 1, None, now);
    let (answer, code, _) = curl_put(dir.path(), &bytes(5 * MIB, 1), &url, &[]);
    assert_eq!(code, "507", "{answer}");
    assert!(
        answer.contains("<Code>InsufficientStorage</Code>"),
        "{answer}"
    );
    eventually("no temporary file stays", || tmp_files(&data) == 0);
    assert!(store
        .list_parts(&draft, name, &id)
        .await
        .unwrap()
        .is_empty());

    let part = bytes(2 * MIB + MIB / 2, 2);
    let (answer, code, _) = curl_put(dir.path(), &part, &url, &[]);
    assert_eq!(code, "200", "2.5 MiB fit: {answer}");
    let listed = store.list_parts(&draft, name, &id).await.unwrap();
    let r = store
        .complete_multipart_upload(&draft, name, &id, &every_part(&listed))
        .await;
    assert!(
        matches!(&r, Err(StorageError::Unavailable { reason }) if reason.contains("disk is full")),
        "a second copy of 2.5 MiB does not fit: {r:?}"
    );
    assert_eq!(tmp_files(&data), 0, "the partial object is gone");
    assert!(store.head_object(&draft, name).await.is_err(), "no object");
    assert_eq!(
        store.list_parts(&draft, name, &id).await.unwrap(),
        listed,
        "the upload is intact"
    );
}

/// A completion that would pass the store's object limit is refused; the upload stays.
#[tokio::test]
async fn a_completion_past_the_object_limit_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStorage::open(&draftstore_gateway::config::LocalConfig {
        max_object: 6 * MIB as u64,
        ..crate::local_store::config(dir.path(), "http://127.0.0.1:1")
    })
    .unwrap();
    let draft = draftstore_core::BucketName::parse("main-draft").unwrap();
    store.create_bucket(&draft).await.unwrap();
    let id = store
        .create_multipart_upload(&draft, "k", &MultipartOptions::default())
        .await
        .unwrap();
    for (n, len) in [(1, 5 * MIB), (2, 2 * MIB)] {
        store
            .upload_part(&draft, "k", &id, n, bytes(len, 1), None)
            .await
            .unwrap();
    }
    let listed = store.list_parts(&draft, "k", &id).await.unwrap();
    let r = store
        .complete_multipart_upload(&draft, "k", &id, &every_part(&listed))
        .await;
    assert!(
        matches!(&r, Err(StorageError::InvalidArgument { reason }) if reason.contains("limit")),
        "{r:?}"
    );
    assert_eq!(store.list_parts(&draft, "k", &id).await.unwrap().len(), 2);
}

/// A part that stops sending is cut after the stall timeout (400 RequestTimeout XML) and keeps
/// nothing; the upload takes the part again afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_part_is_cut_and_keeps_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = serve_with(dir.path(), &[("DRAFTSTORE_STORE_STALL_TIMEOUT_MS", "500")]);
    let (store, draft, now) = signer_for(dir.path(), &gateway);
    let id = store
        .create_multipart_upload(&draft, "stalled.bin", &MultipartOptions::default())
        .await
        .unwrap();
    let url = part_url(&store, "stalled.bin", &id, 1, None, now);
    let mut stream = crate::local_store::partial_put(gateway.port, &url, 1000, 10);
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut stream, &mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("<Code>RequestTimeout</Code>"), "{answer}");
    assert!(store
        .list_parts(&draft, "stalled.bin", &id)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(tmp_files(&dir.path().join("draftstore-data")), 0);
    assert_eq!(crate::harness::put_to(&url, bytes(1000, 1)).await, 200);
    assert_eq!(
        store
            .list_parts(&draft, "stalled.bin", &id)
            .await
            .unwrap()
            .len(),
        1
    );
}
