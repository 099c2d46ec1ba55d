//! A versioned draft bucket: confirm deletes exactly the upload it copied (S3
//! [ListObjectVersions] then [DeleteObjects] with `VersionId`s), never a newer upload of the
//! name, and no older upload of it comes back as current (deleting the current version by its
//! id makes the previous one current, so older versions of the key go too). Every page of the
//! key's versions is read (`key-marker`, `version-id-marker`), at most [`MAX_VERSION_PAGES`] of
//! 1000; the older ones are deleted first, in batches of at most 1000, oldest first, and the
//! copied version alone last, only once every older one is gone: a failure midway (a whole
//! batch or some of its keys) leaves it current for a retry to finish, and no older upload
//! becomes the draft.
//!
//! [ListObjectVersions]: https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjectVersions.html
//! [DeleteObjects]: https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteObjects.html

use super::client::Call;
use super::{decode_listed, errors, parse_iso8601, xml, S3Storage};
use draftstore_core::{BucketName, StorageError};
use draftstore_signer::Method;

/// Pages of 1000 versions read for one key before confirm gives up (100,000 versions, a few
/// MB in memory, about 100 round trips): a key with more has a lifecycle rule missing.
pub const MAX_VERSION_PAGES: usize = 100;

/// One stored version of the exact key, in the listing's order (newest first).
struct Listed {
    version_id: String,
    last_modified: i64,
}

impl S3Storage {
    /// Turns versioning on for `bucket` (PutBucketVersioning `Enabled`): for operators' tools
    /// and tests. The gateway never calls it (it reports a bucket's versioning, never changes
    /// it).
    ///
    /// # Errors
    /// Storage failures (a store without versioning answers `NotImplemented`).
    pub async fn enable_versioning(&self, bucket: &BucketName) -> Result<(), StorageError> {
        let body = b"<VersioningConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Status>Enabled</Status></VersioningConfiguration>".to_vec();
        let mut call = Call::new("PutBucketVersioning", Method::Put, bucket.as_str(), "");
        call.query = &[("versioning", "")];
        call.with_body("application/xml", body);
        self.client
            .send(&call)
            .await
            .map(|_| ())
            .map_err(Into::into)
    }

    /// PutBucketPolicy: sets `bucket`'s policy to `policy` (an IAM policy document, JSON), for
    /// operators' scripts and tests that deny one action.
    ///
    /// # Errors
    /// As any S3 call ([`StorageError`]).
    pub async fn put_bucket_policy(
        &self,
        bucket: &BucketName,
        policy: &str,
    ) -> Result<(), StorageError> {
        let body = policy.as_bytes().to_vec();
        let mut call = Call::new("PutBucketPolicy", Method::Put, bucket.as_str(), "");
        call.query = &[("policy", "")];
        call.with_body("application/json", body);
        self.client
            .send(&call)
            .await
            .map(|_| ())
            .map_err(Into::into)
    }

    /// Deletes version `version_id` of `bucket/key` and every version of the key listed after
    /// it (older: S3 lists a key's versions newest first) that is not newer than it by
    /// Last-Modified. A version newer than `version_id` (an upload made since the HEAD that
    /// gave it) stays, and stays current. Delete markers are left (a lifecycle rule removes
    /// them). A version already gone is a success.
    ///
    /// # Errors
    /// Storage failures; a version the store refuses to delete (named).
    pub(super) async fn delete_version_and_older(
        &self,
        bucket: &BucketName,
        key: &str,
        version_id: &str,
    ) -> Result<(), StorageError> {
        let listed = self.versions_of(bucket, key).await?;
        let Some(at) = listed.iter().position(|v| v.version_id == version_id) else {
            return Ok(());
        };
        let copied_at = listed.get(at).map_or(i64::MAX, |v| v.last_modified);
        let doomed: Vec<&str> = listed
            .iter()
            .skip(at)
            .filter(|v| v.version_id == version_id || v.last_modified <= copied_at)
            .map(|v| v.version_id.as_str())
            .collect();
        // Newest first as listed: the copied version first, then the older ones. The older
        // ones go first, oldest batch first, every batch of them; the copied version alone
        // last, once every older one is gone. Deleted in one batch with older ones, S3 may
        // delete it and fail some of them per key: an older upload would become the draft.
        let Some((copied, older)) = doomed.split_first() else {
            return Ok(());
        };
        for batch in older.rchunks(draftstore_core::MAX_DELETE_BATCH) {
            self.delete_versions(bucket, key, batch).await?;
        }
        self.delete_versions(bucket, key, &[*copied]).await
    }

    /// DeleteObjects of version `version_id` of `bucket/key` alone, no older one (a version
    /// already gone is a success): for operators' tools and tests. Unlike
    /// `Storage::delete_version`, which deletes that version and every older one.
    ///
    /// # Errors
    /// As any S3 call ([`StorageError`]); a per-key error names the version.
    pub async fn delete_one_version(
        &self,
        bucket: &BucketName,
        key: &str,
        version_id: &str,
    ) -> Result<(), StorageError> {
        self.delete_versions(bucket, key, &[version_id]).await
    }

    /// One DeleteObjects of `version_ids` (at most 1000) of `key`; a version already gone is
    /// not an error. The first per-key error fails it, naming its version.
    async fn delete_versions(
        &self,
        bucket: &BucketName,
        key: &str,
        version_ids: &[&str],
    ) -> Result<(), StorageError> {
        let body =
            xml::delete_request(version_ids.iter().map(|id| (key, None, Some(*id)))).into_bytes();
        let mut call = Call::new("DeleteObjects", Method::Post, bucket.as_str(), "");
        call.query = &[("delete", "")];
        call.with_body("application/xml", body);
        let answer = self.client.send(&call).await?;
        let result: xml::DeleteResult = xml::parse(&answer.body, &call.what)
            .map_err(|reason| StorageError::Backend { reason })?;
        match result
            .error
            .iter()
            .find(|e| !matches!(e.code.as_str(), "NoSuchKey" | "NoSuchVersion"))
        {
            Some(e) => Err(
                match errors::classify(
                    0,
                    &e.code,
                    &e.message,
                    &format!("{bucket}/{key}?versionId={}", e.version_id),
                ) {
                    StorageError::Denied { reason } => StorageError::Denied {
                        reason: errors::denied_reason(
                            &reason,
                            &e.code,
                            &errors::needed("DeleteObjects", true, None, bucket.as_str()),
                        ),
                    },
                    other => other,
                },
            ),
            None => Ok(()),
        }
    }

    /// Every version of exactly `key`, newest first, read page by page (at most
    /// [`MAX_VERSION_PAGES`]: more is an error, nothing deleted).
    async fn versions_of(
        &self,
        bucket: &BucketName,
        key: &str,
    ) -> Result<Vec<Listed>, StorageError> {
        let mut listed = Vec::new();
        let mut markers: Option<(String, String)> = None;
        for _ in 0..MAX_VERSION_PAGES {
            let mut query = vec![
                ("versions", ""),
                ("encoding-type", "url"),
                ("max-keys", "1000"),
                ("prefix", key),
            ];
            if let Some((key_marker, version_marker)) = &markers {
                query.push(("key-marker", key_marker.as_str()));
                query.push(("version-id-marker", version_marker.as_str()));
            }
            let mut call = Call::new("ListObjectVersions", Method::Get, bucket.as_str(), "");
            call.query = &query;
            let answer = self.client.send(&call).await?;
            let result: xml::ListVersionsResult = xml::parse(&answer.body, &call.what)
                .map_err(|reason| StorageError::Backend { reason })?;
            let encoded = result.encoding_type.as_deref() == Some("url");
            for version in result.version {
                // Listed by key: past `key` (a longer key it prefixes), its versions are done.
                if decode_listed(&version.key, encoded)? != key {
                    return Ok(listed);
                }
                listed.push(Listed {
                    version_id: version.version_id,
                    last_modified: parse_iso8601(&version.last_modified).ok_or_else(|| {
                        StorageError::Backend {
                            reason: format!("bad LastModified {:?}", version.last_modified),
                        }
                    })?,
                });
            }
            if !result.is_truncated {
                return Ok(listed);
            }
            let (Some(next_key), Some(next_version)) =
                (result.next_key_marker, result.next_version_id_marker)
            else {
                return Err(StorageError::Backend {
                    reason: format!(
                        "{bucket}: a truncated version listing without its next markers"
                    ),
                });
            };
            let next_key = decode_listed(&next_key, encoded)?;
            if next_key != key {
                return Ok(listed);
            }
            markers = Some((next_key, next_version));
        }
        Err(StorageError::Backend {
            reason: format!(
                "{bucket}/{key}: more than {} versions; give the draft bucket a lifecycle rule that expires noncurrent versions (see README)",
                MAX_VERSION_PAGES * 1000
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delete_names_each_version_of_the_key() {
        assert_eq!(
            xml::delete_request(["v1", "v<0"].into_iter().map(|id| ("a&b", None, Some(id)))),
            "<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Quiet>false</Quiet>\
             <Object><Key>a&amp;b</Key><VersionId>v1</VersionId></Object>\
             <Object><Key>a&amp;b</Key><VersionId>v&lt;0</VersionId></Object></Delete>"
        );
    }

    #[test]
    fn a_listing_of_versions_parses() {
        let body = br#"<?xml version="1.0" encoding="UTF-8"?>
<ListVersionsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>b</Name><Prefix>k</Prefix><EncodingType>url</EncodingType><IsTruncated>false</IsTruncated>
  <Version><Key>k</Key><VersionId>v2</VersionId><IsLatest>true</IsLatest>
    <LastModified>2026-11-27T12:00:01.000Z</LastModified><ETag>"e"</ETag><Size>1</Size></Version>
  <DeleteMarker><Key>k</Key><VersionId>m1</VersionId><IsLatest>false</IsLatest>
    <LastModified>2026-11-27T12:00:00.500Z</LastModified></DeleteMarker>
  <Version><Key>k</Key><VersionId>v1</VersionId><IsLatest>false</IsLatest>
    <LastModified>2026-11-27T12:00:00.000Z</LastModified><ETag>"e"</ETag><Size>1</Size></Version>
  <Version><Key>k%2Bx</Key><VersionId>w1</VersionId><IsLatest>true</IsLatest>
    <LastModified>2026-11-27T12:00:00.000Z</LastModified><ETag>"e"</ETag><Size>1</Size></Version>
</ListVersionsResult>"#;
        let result: xml::ListVersionsResult = xml::parse(body, "b").unwrap();
        let ids: Vec<&str> = result
            .version
            .iter()
            .map(|v| v.version_id.as_str())
            .collect();
        assert_eq!(ids, ["v2", "v1", "w1"]);
        assert_eq!(result.encoding_type.as_deref(), Some("url"));
    }

    #[test]
    fn a_truncated_listing_gives_its_next_markers() {
        let body = br#"<ListVersionsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <IsTruncated>true</IsTruncated><NextKeyMarker>k%2Bx</NextKeyMarker>
  <NextVersionIdMarker>v9</NextVersionIdMarker><EncodingType>url</EncodingType>
</ListVersionsResult>"#;
        let result: xml::ListVersionsResult = xml::parse(body, "b").unwrap();
        assert!(result.is_truncated);
        assert_eq!(result.next_key_marker.as_deref(), Some("k%2Bx"));
        assert_eq!(result.next_version_id_marker.as_deref(), Some("v9"));
    }
}
