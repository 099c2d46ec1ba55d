//! Multipart uploads, the same on every store: parts in any order, a re-uploaded part replacing
//! the first, ListParts, completion with every part or a chosen few, S3's completion errors
//! naming the part, abort freeing the upload, unknown ids, and SHA-256 part checksums (listed,
//! and as [`Storage::upload_checksum`] tells them).

use super::bucket;
use crate::{
    every_part, multipart_etag, ChecksumAlgorithm, CompletedPart, Metadata, MultipartOptions,
    Storage, StorageError, UploadChecksum, MIN_PART_SIZE,
};
use base64::Engine;
use sha2::Digest;

const MIB: usize = 1024 * 1024;

/// `len` bytes that differ with `seed`.
fn bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn md5_hex(body: &[u8]) -> String {
    hex::encode(<md5::Md5 as md5::Digest>::digest(body))
}

fn sha256_b64(body: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(body))
}

fn part(part_number: u32, etag: &str) -> CompletedPart {
    CompletedPart {
        part_number,
        etag: etag.to_owned(),
        checksum_sha256: None,
    }
}

/// Runs every multipart check.
pub async fn multipart<S: Storage>(storage: &S, prefix: &str) {
    multipart_flow(storage, prefix).await;
    multipart_chosen_parts(storage, prefix).await;
    multipart_errors(storage, prefix).await;
    multipart_abort(storage, prefix).await;
    multipart_checksums(storage, prefix).await;
}

/// Parts 3, 1, 2 (1 MiB, 5 MiB, 5 MiB) uploaded out of order, part 2 twice; listed; completed
/// with every part: the object has the bytes in part order, S3's multipart ETag, the content
/// type and metadata given at creation, and the upload is gone.
pub async fn multipart_flow<S: Storage>(storage: &S, prefix: &str) {
    let b = bucket(storage, prefix, "mpu").await;
    let key = "tenant-a/big file ሴ.bin";
    let options = MultipartOptions {
        content_type: Some("application/x-big".into()),
        metadata: Metadata::from([("owner".to_owned(), "alice".to_owned())]),
        checksum: None,
    };
    let id = storage
        .create_multipart_upload(&b, key, &options)
        .await
        .expect("create multipart upload");
    assert!(!id.is_empty(), "an upload id");
    let (p1, p2, p3) = (bytes(5 * MIB, 1), bytes(5 * MIB, 2), bytes(MIB, 3));
    let stale = bytes(5 * MIB, 9);
    for (n, body) in [(3, &p3), (1, &p1), (2, &stale), (2, &p2)] {
        if std::ptr::eq(body, &p2) {
            // SeaweedFS lists every upload of a part number, with times in whole seconds: the
            // latest is known only a second later.
            std::thread::sleep(std::time::Duration::from_millis(1100));
        }
        let stored = storage
            .upload_part(&b, key, &id, n, body.clone(), None)
            .await
            .unwrap_or_else(|e| panic!("upload part {n}: {e}"));
        assert_eq!(stored.part_number, n);
        assert_eq!(stored.etag, md5_hex(body), "part {n}'s ETag is its MD5");
        assert_eq!(stored.size, body.len() as u64);
    }
    let listed = storage.list_parts(&b, key, &id).await.expect("list parts");
    let summary: Vec<(u32, u64, String)> = listed
        .iter()
        .map(|p| (p.part_number, p.size, p.etag.clone()))
        .collect();
    assert_eq!(
        summary,
        vec![
            (1, p1.len() as u64, md5_hex(&p1)),
            (2, p2.len() as u64, md5_hex(&p2)),
            (3, p3.len() as u64, md5_hex(&p3)),
        ],
        "every part once, by number; part 2 as re-uploaded"
    );
    let uploads = storage
        .list_uploads(&b, "tenant-a/", None)
        .await
        .expect("list uploads");
    let found = uploads
        .uploads
        .iter()
        .find(|u| u.upload_id == id)
        .expect("the upload is listed under its key's prefix");
    assert_eq!(found.key, key);
    assert!(
        found.initiated > 1_600_000_000,
        "initiated: {}",
        found.initiated
    );
    let elsewhere = storage.list_uploads(&b, "tenant-b/", None).await.unwrap();
    assert!(
        elsewhere.uploads.is_empty(),
        "another prefix lists none: {elsewhere:?}"
    );

    let done = storage
        .complete_multipart_upload(&b, key, &id, &every_part(&listed))
        .await
        .expect("complete");
    let whole: Vec<u8> = [p1.as_slice(), &p2, &p3].concat();
    assert_eq!(done.size, whole.len() as u64, "completed size");
    let expected_etag = multipart_etag(
        [md5_hex(&p1), md5_hex(&p2), md5_hex(&p3)]
            .iter()
            .map(String::as_str),
    );
    assert_eq!(done.etag, expected_etag, "S3's multipart ETag");
    let info = storage.head_object(&b, key).await.expect("head completed");
    assert_eq!(info.size, whole.len() as u64);
    assert_eq!(info.etag, expected_etag);
    assert_eq!(info.content_type.as_deref(), Some("application/x-big"));
    assert_eq!(
        info.metadata.get("owner").map(String::as_str),
        Some("alice")
    );
    assert!(
        storage.get_object(&b, key).await.unwrap() == whole,
        "the object holds the parts' bytes in part order"
    );
    assert!(
        matches!(
            storage.list_parts(&b, key, &id).await,
            Err(StorageError::NoSuchUpload { .. })
        ),
        "a completed upload is gone"
    );
    let after = storage.list_uploads(&b, "", None).await.unwrap();
    assert!(
        after.uploads.iter().all(|u| u.upload_id != id),
        "a completed upload is not listed"
    );
}

/// Completing with a chosen subset (parts 1 and 3 of 3) makes the object of those parts only.
pub async fn multipart_chosen_parts<S: Storage>(storage: &S, prefix: &str) {
    let b = bucket(storage, prefix, "mpc").await;
    let key = "chosen";
    let id = storage
        .create_multipart_upload(&b, key, &MultipartOptions::default())
        .await
        .unwrap();
    let (p1, p2, p3) = (bytes(5 * MIB, 4), bytes(5 * MIB, 5), bytes(1000, 6));
    for (n, body) in [(1, &p1), (2, &p2), (3, &p3)] {
        storage
            .upload_part(&b, key, &id, n, body.clone(), None)
            .await
            .unwrap();
    }
    let done = storage
        .complete_multipart_upload(
            &b,
            key,
            &id,
            &[
                part(1, &md5_hex(&p1)),
                part(3, &format!("\"{}\"", md5_hex(&p3))),
            ],
        )
        .await
        .expect("complete with parts 1 and 3 (a quoted ETag is accepted)");
    assert_eq!(done.size, (p1.len() + p3.len()) as u64);
    assert!(done.etag.ends_with("-2"), "two parts: {}", done.etag);
    assert!(
        storage.get_object(&b, key).await.unwrap() == [p1.as_slice(), &p3].concat(),
        "parts 1 and 3 only"
    );
}

/// S3's completion errors, each naming the part; unknown ids and ids of another key are
/// `NoSuchUpload`; bad part numbers are refused. A refused completion leaves the upload whole.
pub async fn multipart_errors<S: Storage>(storage: &S, prefix: &str) {
    let b = bucket(storage, prefix, "mpe").await;
    let key = "errs";
    let id = storage
        .create_multipart_upload(&b, key, &MultipartOptions::default())
        .await
        .unwrap();
    let (small, big, last) = (bytes(MIB, 7), bytes(5 * MIB, 8), bytes(10, 9));
    for (n, body) in [(1, &small), (2, &big), (3, &last)] {
        storage
            .upload_part(&b, key, &id, n, body.clone(), None)
            .await
            .unwrap();
    }
    let (e1, e2, e3) = (md5_hex(&small), md5_hex(&big), md5_hex(&last));
    let complete = |parts: Vec<CompletedPart>| {
        let id = id.clone();
        let b = b.clone();
        async move {
            storage
                .complete_multipart_upload(&b, key, &id, &parts)
                .await
        }
    };
    let r = complete(vec![part(2, &e2), part(1, &e1)]).await;
    assert!(
        matches!(r, Err(StorageError::InvalidPartOrder { part_number: 1 })),
        "descending: {r:?}"
    );
    let r = complete(vec![part(2, &e2), part(2, &e2)]).await;
    assert!(
        matches!(r, Err(StorageError::InvalidPartOrder { part_number: 2 })),
        "repeated: {r:?}"
    );
    let r = complete(vec![part(2, &e2), part(4, &e3)]).await;
    assert!(
        matches!(r, Err(StorageError::InvalidPart { part_number: 4, .. })),
        "never uploaded: {r:?}"
    );
    let r = complete(vec![part(2, &e2), part(3, &e1)]).await;
    assert!(
        matches!(r, Err(StorageError::InvalidPart { part_number: 3, .. })),
        "wrong ETag: {r:?}"
    );
    let r = complete(vec![part(1, &e1), part(2, &e2), part(3, &e3)]).await;
    assert!(
        matches!(
            r,
            Err(StorageError::EntityTooSmall { part_number: 1, size }) if size == small.len() as u64
        ),
        "a 1 MiB part before others: {r:?}"
    );
    assert!(MIN_PART_SIZE > small.len() as u64);
    let r = complete(vec![]).await;
    assert!(
        matches!(r, Err(StorageError::InvalidArgument { .. })),
        "no parts: {r:?}"
    );
    for n in [0, 10_001] {
        let r = storage.upload_part(&b, key, &id, n, vec![1], None).await;
        assert!(
            matches!(r, Err(StorageError::InvalidArgument { .. })),
            "part number {n}: {r:?}"
        );
    }
    assert_eq!(
        storage.list_parts(&b, key, &id).await.unwrap().len(),
        3,
        "refused completions leave the upload as it was"
    );
    assert!(
        matches!(
            storage.head_object(&b, key).await,
            Err(StorageError::NotFound { .. })
        ),
        "and make no object"
    );

    let unknown = "bm8tc3VjaC11cGxvYWQ";
    assert!(matches!(
        storage.list_parts(&b, key, unknown).await,
        Err(StorageError::NoSuchUpload { .. })
    ));
    assert!(matches!(
        storage
            .upload_part(&b, key, unknown, 1, vec![1], None)
            .await,
        Err(StorageError::NoSuchUpload { .. })
    ));
    assert!(matches!(
        complete_unknown(storage, &b, key, unknown, &e1).await,
        Err(StorageError::NoSuchUpload { .. })
    ));
    let r = storage.list_parts(&b, "another-key", &id).await;
    assert!(
        matches!(r, Err(StorageError::NoSuchUpload { .. })),
        "an upload id of another key: {r:?}"
    );
    let r = complete_unknown(storage, &b, "another-key", &id, &e2).await;
    assert!(
        matches!(r, Err(StorageError::NoSuchUpload { .. })),
        "completing another key's upload: {r:?}"
    );
    for (k, upload) in [(key, unknown), ("another-key", id.as_str())] {
        let r = storage.upload_checksum(&b, k, upload).await;
        assert!(
            matches!(r, Err(StorageError::NoSuchUpload { .. })),
            "upload_checksum of {k} {upload}: {r:?}"
        );
    }
    let said = storage.upload_checksum(&b, key, &id).await.unwrap();
    assert!(
        matches!(
            said,
            UploadChecksum::Known(false) | UploadChecksum::Unknown { parts_stored: true }
        ),
        "an upload without checksums, parts stored: {said:?}"
    );
    storage.abort_upload(&b, key, &id).await.unwrap();
}

async fn complete_unknown<S: Storage>(
    storage: &S,
    b: &crate::BucketName,
    key: &str,
    id: &str,
    etag: &str,
) -> Result<crate::Completed, StorageError> {
    storage
        .complete_multipart_upload(b, key, id, &[part(1, etag)])
        .await
}

/// Abort frees the upload and its parts; aborting again, or an unknown id, is a success.
pub async fn multipart_abort<S: Storage>(storage: &S, prefix: &str) {
    let b = bucket(storage, prefix, "mpa").await;
    let key = "dropped";
    let id = storage
        .create_multipart_upload(&b, key, &MultipartOptions::default())
        .await
        .unwrap();
    storage
        .upload_part(&b, key, &id, 1, bytes(1000, 1), None)
        .await
        .unwrap();
    storage.abort_upload(&b, key, &id).await.expect("abort");
    assert!(matches!(
        storage.list_parts(&b, key, &id).await,
        Err(StorageError::NoSuchUpload { .. })
    ));
    let listed = storage.list_uploads(&b, "", None).await.unwrap();
    assert!(
        listed.uploads.iter().all(|u| u.upload_id != id),
        "an aborted upload is not listed"
    );
    assert!(matches!(
        storage.head_object(&b, key).await,
        Err(StorageError::NotFound { .. })
    ));
    storage
        .abort_upload(&b, key, &id)
        .await
        .expect("aborting twice is a success");
}

/// An upload created with SHA-256 part checksums refuses a part whose checksum is wrong, keeps
/// the right one, and completes.
pub async fn multipart_checksums<S: Storage>(storage: &S, prefix: &str) {
    let b = bucket(storage, prefix, "mps").await;
    let key = "checked";
    let options = MultipartOptions {
        checksum: Some(ChecksumAlgorithm::Sha256),
        ..MultipartOptions::default()
    };
    let id = storage
        .create_multipart_upload(&b, key, &options)
        .await
        .unwrap();
    let said = storage.upload_checksum(&b, key, &id).await.unwrap();
    assert!(
        matches!(
            said,
            UploadChecksum::Known(true)
                | UploadChecksum::Unknown {
                    parts_stored: false
                }
        ),
        "a SHA-256 upload before any part: {said:?}"
    );
    let body = bytes(1000, 3);
    let wrong = sha256_b64(b"other bytes");
    let r = storage
        .upload_part(&b, key, &id, 1, body.clone(), Some(&wrong))
        .await;
    assert!(r.is_err(), "a wrong SHA-256 is refused: {r:?}");
    let sum = sha256_b64(&body);
    let stored = storage
        .upload_part(&b, key, &id, 1, body.clone(), Some(&sum))
        .await
        .expect("a part with its SHA-256");
    assert_eq!(stored.checksum_sha256.as_deref(), Some(sum.as_str()));
    let listed = storage.list_parts(&b, key, &id).await.unwrap();
    // AWS, the memory and the embedded store report it; SeaweedFS checks it but lists none.
    let reported = listed.first().and_then(|p| p.checksum_sha256.as_deref());
    assert!(
        reported.is_none_or(|r| r == sum),
        "ListParts reports the part's SHA-256, if any: {reported:?}"
    );
    // A store that says the upload keeps checksums lists them.
    let said = storage.upload_checksum(&b, key, &id).await.unwrap();
    let shown = match reported {
        Some(_) => UploadChecksum::Known(true),
        None => UploadChecksum::Unknown { parts_stored: true },
    };
    assert_eq!(said, shown, "upload_checksum after a part");
    let done = storage
        .complete_multipart_upload(&b, key, &id, &[CompletedPart::from(&stored)])
        .await
        .expect("complete with checksums");
    assert_eq!(done.size, body.len() as u64);
    assert!(storage.get_object(&b, key).await.unwrap() == body);
}
