//! What the gateway keeps beside a multipart upload that declared SHA-256 checksums, for stores
//! whose ListParts does not report them (SeaweedFS 4.48 lists neither `ChecksumAlgorithm` nor a
//! part's `ChecksumSHA256`, yet its CompleteMultipartUpload wants every part's): the upload's
//! algorithm, written at create, and each part checksum the gateway signed into a part URL.
//! CompleteMultipartUpload (AWS "CompleteMultipartUpload", `ChecksumSHA256` per `Part`) then
//! sends the checksum the store listed, else the one kept here.
//!
//! Layout, in the draft bucket under DraftStore's reserved prefix:
//! `.draftstore/multipart/<hex SHA-256 of key, NUL, upload id>/` holds `algorithm` (body
//! `SHA256`) and `signed/<signing time, ns, 20 digits>-<16 hex of the body's SHA-256>`, one
//! object per part-URL call, body one `"<part number> <base64 SHA-256>\n"` line per part. Later
//! calls sort after earlier ones, so a part signed again takes its newest checksum. Everything
//! under the folder is removed when the upload completes or is aborted ([`forget`]).

use crate::bucket::BucketName;
use crate::storage::{DeleteTarget, PutOptions, Storage, StorageError, MAX_DELETE_BATCH};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Where kept state of every upload lives (under core's reserved prefix).
pub const KEPT_PREFIX: &str = ".draftstore/multipart/";

/// The name of the object recording the upload's algorithm.
const ALGORITHM: &str = "algorithm";
/// The folder of signed checksums.
const SIGNED: &str = "signed/";
/// The one algorithm offered.
const SHA256: &str = "SHA256";

/// What is kept about one upload.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Kept {
    /// The upload was created with `checksum_algorithm` SHA256.
    pub sha256: bool,
    /// The newest checksum (base64 SHA-256) signed for each part, by part number.
    pub checksums: BTreeMap<u32, String>,
}

/// The folder (ending in `/`) of what is kept about upload `upload_id` of `key`.
#[must_use]
pub fn kept_prefix(key: &str, upload_id: &str) -> String {
    let mut digest = Sha256::new();
    digest.update(key.as_bytes());
    digest.update([0]);
    digest.update(upload_id.as_bytes());
    format!("{KEPT_PREFIX}{}/", hex::encode(digest.finalize()))
}

/// Records that the upload keeps SHA-256 checksums.
///
/// # Errors
/// The store's.
pub async fn keep_algorithm<S: Storage>(
    store: &S,
    bucket: &BucketName,
    key: &str,
    upload_id: &str,
) -> Result<(), StorageError> {
    let at = format!("{}{ALGORITHM}", kept_prefix(key, upload_id));
    store
        .put_object(bucket, &at, SHA256.into(), &PutOptions::default())
        .await
        .map(drop)
}

/// Records the checksums signed into part URLs at `signed_at_ns` (nanoseconds since the Unix
/// epoch). Nothing is written for an empty list.
///
/// # Errors
/// The store's.
pub async fn keep_signed<S: Storage>(
    store: &S,
    bucket: &BucketName,
    key: &str,
    upload_id: &str,
    checksums: &[(u32, &str)],
    signed_at_ns: u64,
) -> Result<(), StorageError> {
    if checksums.is_empty() {
        return Ok(());
    }
    let body: String = checksums
        .iter()
        .map(|(number, sum)| format!("{number} {sum}\n"))
        .collect();
    let tag = hex::encode(Sha256::digest(body.as_bytes()));
    let at = format!(
        "{}{SIGNED}{signed_at_ns:020}-{}",
        kept_prefix(key, upload_id),
        tag.get(..16).unwrap_or_default()
    );
    store
        .put_object(bucket, &at, body.into_bytes(), &PutOptions::default())
        .await
        .map(drop)
}

/// Whether the upload was recorded as keeping SHA-256 checksums (one GET).
///
/// # Errors
/// The store's, but for a missing record (`false`).
pub async fn keeps_sha256<S: Storage>(
    store: &S,
    bucket: &BucketName,
    key: &str,
    upload_id: &str,
) -> Result<bool, StorageError> {
    let at = format!("{}{ALGORITHM}", kept_prefix(key, upload_id));
    match store.get_object(bucket, &at).await {
        Ok(body) => Ok(body == SHA256.as_bytes()),
        Err(StorageError::NotFound { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Everything kept about the upload: its algorithm and the newest checksum signed per part.
/// A line that does not parse is skipped (its part then has no kept checksum).
///
/// # Errors
/// The store's.
pub async fn kept<S: Storage>(
    store: &S,
    bucket: &BucketName,
    key: &str,
    upload_id: &str,
) -> Result<Kept, StorageError> {
    let sha256 = keeps_sha256(store, bucket, key, upload_id).await?;
    let folder = format!("{}{SIGNED}", kept_prefix(key, upload_id));
    let mut checksums = BTreeMap::new();
    for signed in keys(store, bucket, &folder).await? {
        let body = match store.get_object(bucket, &signed).await {
            Ok(body) => body,
            // Removed by a complete or abort running beside this one.
            Err(StorageError::NotFound { .. }) => continue,
            Err(e) => return Err(e),
        };
        checksums.extend(parse(&body));
    }
    Ok(Kept { sha256, checksums })
}

/// Removes everything kept about the upload (after it completed or was aborted).
///
/// # Errors
/// The store's.
pub async fn forget<S: Storage>(
    store: &S,
    bucket: &BucketName,
    key: &str,
    upload_id: &str,
) -> Result<(), StorageError> {
    let all = keys(store, bucket, &kept_prefix(key, upload_id)).await?;
    for batch in all.chunks(MAX_DELETE_BATCH) {
        let targets: Vec<DeleteTarget> = batch
            .iter()
            .map(|key| DeleteTarget {
                key: key.clone(),
                etag: None,
                version: None,
            })
            .collect();
        for outcome in store.delete_objects(bucket, &targets).await? {
            outcome.result?;
        }
    }
    Ok(())
}

/// Every key under `prefix`, in key order, all pages joined.
async fn keys<S: Storage>(
    store: &S,
    bucket: &BucketName,
    prefix: &str,
) -> Result<Vec<String>, StorageError> {
    let mut found = Vec::new();
    let mut continuation: Option<String> = None;
    loop {
        let page = store
            .list_objects(bucket, prefix, continuation.as_deref(), 1000)
            .await?;
        found.extend(page.objects.into_iter().map(|o| o.key));
        match page.next {
            Some(next) if continuation.as_deref() != Some(next.as_str()) => {
                continuation = Some(next);
            }
            _ => return Ok(found),
        }
    }
}

/// The `(part, checksum)` lines of one signed record.
fn parse(body: &[u8]) -> Vec<(u32, String)> {
    String::from_utf8_lossy(body)
        .lines()
        .filter_map(|line| {
            let (number, sum) = line.split_once(' ')?;
            let number = number.parse().ok()?;
            (!sum.is_empty() && !sum.contains(' ')).then(|| (number, sum.to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryStorage;

    #[tokio::test]
    async fn the_newest_signed_checksum_of_each_part_is_kept_until_forgotten() {
        let store = MemoryStorage::new();
        let bucket = BucketName::parse("draft").unwrap();
        store.create_bucket(&bucket).await.unwrap();
        let empty = kept(&store, &bucket, "k", "u").await.unwrap();
        assert_eq!(empty, Kept::default());
        keep_algorithm(&store, &bucket, "k", "u").await.unwrap();
        keep_signed(&store, &bucket, "k", "u", &[(1, "b25l"), (2, "dHdv")], 20)
            .await
            .unwrap();
        keep_signed(&store, &bucket, "k", "u", &[(2, "bmV3")], 30)
            .await
            .unwrap();
        // An earlier call whose record lands later still sorts first.
        keep_signed(
            &store,
            &bucket,
            "k",
            "u",
            &[(3, "dGhyZWU="), (2, "b2xk")],
            10,
        )
        .await
        .unwrap();
        keep_signed(&store, &bucket, "k", "u", &[], 40)
            .await
            .unwrap();
        // Another upload, or the same id for another key, is kept apart.
        keep_signed(&store, &bucket, "k2", "u", &[(1, "b3RoZXI=")], 50)
            .await
            .unwrap();
        let got = kept(&store, &bucket, "k", "u").await.unwrap();
        assert!(got.sha256);
        assert_eq!(
            got.checksums.into_iter().collect::<Vec<_>>(),
            [
                (1, "b25l".to_owned()),
                (2, "bmV3".to_owned()),
                (3, "dGhyZWU=".to_owned())
            ]
        );
        assert!(!keeps_sha256(&store, &bucket, "k2", "u").await.unwrap());
        forget(&store, &bucket, "k", "u").await.unwrap();
        assert_eq!(
            kept(&store, &bucket, "k", "u").await.unwrap(),
            Kept::default()
        );
        let other = kept(&store, &bucket, "k2", "u").await.unwrap();
        assert_eq!(
            other.checksums.len(),
            1,
            "forget touches its own upload only"
        );
    }

    #[test]
    fn kept_state_is_reserved_and_bad_lines_are_skipped() {
        let at = kept_prefix("acme/a.bin", "id");
        assert!(crate::events::is_reserved(&at) && at.ends_with('/'));
        assert_ne!(at, kept_prefix("acme/a.bi", "nid"));
        assert_eq!(
            parse(b"1 c3Vt\nx y\n2\n3 a b\n 4\n5 ZmluZQ==\n"),
            [(1, "c3Vt".to_owned()), (5, "ZmluZQ==".to_owned())]
        );
    }
}
