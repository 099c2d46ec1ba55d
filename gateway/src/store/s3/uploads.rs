//! Multipart uploads on S3: CreateMultipartUpload, UploadPart (tests and tools; clients use
//! presigned URLs), ListParts (every page, or one page of one part when a call for part URLs
//! only needs to know the upload and its checksums), CompleteMultipartUpload and its errors.
//!
//! A completion is checked against ListParts first with core's [`check_completion`], so every
//! store refuses the same requests with the same typed errors naming the part (S3-compatible
//! servers differ: SeaweedFS, for one, takes parts under 5 MiB); S3 still checks again.

use super::client::{Call, Client, Failure};
use super::{header, unquote, xml, S3Storage};
use draftstore_core::{
    check_completion, check_part_number, BucketName, ChecksumAlgorithm, Completed, CompletedPart,
    MultipartOptions, Part, StorageError, UploadChecksum, MAX_PART_SIZE,
};
use draftstore_signer::Method;

/// Parts asked for per ListParts page (S3's maximum).
const PAGE: &str = "1000";
/// ListParts pages read at most: 10 000 parts fit in 10; more means a server that loops.
const MAX_PAGES: usize = 20;

/// The longest `/`-separated part of a key SeaweedFS stores, in bytes (a file name in its
/// filer). Past it a PutObject or POST gets `KeyTooLongError`, but a multipart upload is created
/// and takes its parts, and only its completion fails, with `InternalError` (retried, then
/// reported). AWS S3 takes any key up to 1024 bytes.
const SEAWEEDFS_MAX_SEGMENT: usize = 255;

/// The longest `/`-separated part of `key`, in bytes.
fn longest_segment(key: &str) -> usize {
    key.split('/').map(str::len).max().unwrap_or(0)
}

/// S3's multipart errors with what we know of them; anything else as the client classified it.
fn multipart_error(f: Failure, upload_id: &str) -> StorageError {
    match f.code.as_str() {
        "NoSuchUpload" => StorageError::NoSuchUpload {
            upload_id: upload_id.to_owned(),
        },
        "InvalidPart" => StorageError::InvalidPart {
            part_number: 0,
            reason: f.error.to_string(),
        },
        "InvalidPartOrder" => StorageError::InvalidPartOrder { part_number: 0 },
        "EntityTooSmall" => StorageError::EntityTooSmall {
            part_number: 0,
            size: 0,
        },
        "BadDigest" | "InvalidDigest" | "InvalidArgument" | "InvalidRequest" => {
            StorageError::InvalidArgument {
                reason: f.error.to_string(),
            }
        }
        _ => f.error,
    }
}

impl S3Storage {
    pub(super) async fn create_upload(
        &self,
        bucket: &BucketName,
        key: &str,
        options: &MultipartOptions,
    ) -> Result<String, StorageError> {
        let mut call = Call::new("CreateMultipartUpload", Method::Post, bucket.as_str(), key);
        call.query = &[("uploads", "")];
        super::metadata_headers(
            options.content_type.as_ref(),
            &options.metadata,
            &mut call.headers,
        );
        if let Some(algorithm) = options.checksum {
            call.headers
                .push(("x-amz-checksum-algorithm".into(), algorithm.as_str().into()));
        }
        call.headers.extend_from_slice(self.sse_headers());
        let answer = self.client.send(&call).await?;
        let started: xml::InitiateMultipartUploadResult = xml::parse(&answer.body, &call.what)
            .map_err(|reason| StorageError::Backend { reason })?;
        if started.upload_id.is_empty() {
            return Err(StorageError::Backend {
                reason: format!("{}: no UploadId in the answer", call.what),
            });
        }
        Ok(started.upload_id)
    }

    pub(super) async fn put_part(
        &self,
        bucket: &BucketName,
        key: &str,
        upload_id: &str,
        part_number: u32,
        body: Vec<u8>,
        checksum_sha256: Option<&str>,
    ) -> Result<Part, StorageError> {
        check_part_number(part_number)?;
        let size = body.len() as u64;
        if size > MAX_PART_SIZE {
            return Err(StorageError::InvalidArgument {
                reason: format!("part {part_number} is over 5 GiB"),
            });
        }
        let number = part_number.to_string();
        let query = [("partNumber", number.as_str()), ("uploadId", upload_id)];
        let mut call = Call::new("UploadPart", Method::Put, bucket.as_str(), key);
        call.query = &query;
        if let Some(sum) = checksum_sha256 {
            call.headers
                .push(("x-amz-checksum-sha256".into(), sum.trim().to_owned()));
        }
        call.body = body;
        let answer = send(&self.client, &call, upload_id).await?;
        Ok(Part {
            part_number,
            etag: header(&answer.headers, "etag")
                .map(unquote)
                .unwrap_or_default(),
            size,
            checksum_sha256: header(&answer.headers, "x-amz-checksum-sha256")
                .map(str::to_owned)
                .or_else(|| checksum_sha256.map(|s| s.trim().to_owned())),
        })
    }

    /// One ListParts page of at most `max` parts after `marker` (empty: from the first).
    async fn parts_page(
        &self,
        bucket: &BucketName,
        key: &str,
        upload_id: &str,
        marker: &str,
        max: &str,
    ) -> Result<xml::ListPartsResult, StorageError> {
        let mut query = vec![("uploadId", upload_id), ("max-parts", max)];
        if !marker.is_empty() {
            query.push(("part-number-marker", marker));
        }
        let mut call = Call::new("ListParts", Method::Get, bucket.as_str(), key);
        call.query = &query;
        let answer = send(&self.client, &call, upload_id).await?;
        let page: xml::ListPartsResult = xml::parse(&answer.body, &call.what)
            .map_err(|reason| StorageError::Backend { reason })?;
        // S3 answers NoSuchUpload for an id begun for another key; a server that lists
        // it anyway says so in `Key`.
        if page
            .key
            .as_deref()
            .is_some_and(|k| !k.is_empty() && k != key)
        {
            return Err(StorageError::NoSuchUpload {
                upload_id: upload_id.to_owned(),
            });
        }
        Ok(page)
    }

    /// What one ListParts page of one part tells of the upload's checksums: it exists, and a
    /// part that shows a SHA-256 says the upload keeps them (and that this server lists them).
    pub(super) async fn checksum(
        &self,
        bucket: &BucketName,
        key: &str,
        upload_id: &str,
    ) -> Result<UploadChecksum, StorageError> {
        let page = self.parts_page(bucket, key, upload_id, "", "1").await?;
        let shown = page
            .part
            .iter()
            .any(|p| p.checksum_sha256.as_deref().is_some_and(|s| !s.is_empty()));
        Ok(if shown {
            UploadChecksum::Known(true)
        } else {
            UploadChecksum::Unknown {
                parts_stored: !page.part.is_empty(),
            }
        })
    }

    pub(super) async fn parts(
        &self,
        bucket: &BucketName,
        key: &str,
        upload_id: &str,
    ) -> Result<(Vec<Part>, Option<ChecksumAlgorithm>), StorageError> {
        let mut parts = Vec::new();
        let mut marker = String::new();
        let mut checksum = None;
        for _ in 0..MAX_PAGES {
            let page = self
                .parts_page(bucket, key, upload_id, &marker, PAGE)
                .await?;
            if page.checksum_algorithm.eq_ignore_ascii_case("SHA256") {
                checksum = Some(ChecksumAlgorithm::Sha256);
            }
            parts.extend(page.part.into_iter().map(|p| {
                let at = super::parse_iso8601(&p.last_modified).unwrap_or(0);
                let part = Part {
                    part_number: p.part_number,
                    etag: unquote(&p.etag),
                    size: p.size,
                    checksum_sha256: p.checksum_sha256.filter(|s| !s.is_empty()),
                };
                (at, part)
            }));
            match page.next_part_number_marker {
                Some(next) if page.is_truncated && next != marker => marker = next,
                _ => return Ok((latest(parts), checksum)),
            }
        }
        Err(StorageError::Backend {
            reason: format!("{bucket}/{key}: ListParts did not end after {MAX_PAGES} pages"),
        })
    }

    pub(super) async fn complete(
        &self,
        bucket: &BucketName,
        key: &str,
        upload_id: &str,
        requested: &[CompletedPart],
    ) -> Result<Completed, StorageError> {
        let (stored, checksum) = self.parts(bucket, key, upload_id).await?;
        let chosen = check_completion(&stored, requested, checksum)?;
        let size = chosen.iter().map(|p| p.size).sum();
        let body = xml::complete_parts_request(chosen.iter().map(|p| {
            (
                p.part_number,
                p.etag.as_str(),
                requested
                    .iter()
                    .find(|r| r.part_number == p.part_number)
                    .and_then(|r| r.checksum_sha256.as_deref()),
            )
        }));
        let query = [("uploadId", upload_id)];
        let mut call = Call::new(
            "CompleteMultipartUpload",
            Method::Post,
            bucket.as_str(),
            key,
        );
        call.query = &query;
        call.error_in_200 = true;
        call.headers
            .push(("content-type".into(), "application/xml".into()));
        call.body = body.into_bytes();
        // SeaweedFS answers a completion for a key with a part over 255 bytes InternalError;
        // AWS takes such keys, so it stays what it is (a 503 to retry) with a hint for
        // operators of SeaweedFS.
        let answer = send(&self.client, &call, upload_id)
            .await
            .map_err(|e| with_segment_hint(e, key))?;
        let result: xml::EtagResult = xml::parse(&answer.body, &call.what)
            .map_err(|reason| StorageError::Backend { reason })?;
        Ok(Completed {
            etag: unquote(&result.etag),
            size,
        })
    }
}

/// One part per number: the latest upload of each (S3 lists only that; SeaweedFS lists every
/// upload of a number, oldest first), by number. `listed` holds (last modified, part) in
/// listing order.
fn latest(listed: Vec<(i64, Part)>) -> Vec<Part> {
    let mut by_number: std::collections::BTreeMap<u32, (i64, Part)> =
        std::collections::BTreeMap::new();
    for (at, part) in listed {
        match by_number.get(&part.part_number) {
            Some((seen, _)) if *seen > at => {}
            _ => {
                by_number.insert(part.part_number, (at, part));
            }
        }
    }
    by_number.into_values().map(|(_, p)| p).collect()
}

/// `e` with a hint appended to its reason when it is a failure to retry and `key` has a
/// `/`-separated part over [`SEAWEEDFS_MAX_SEGMENT`] bytes: SeaweedFS refuses those (its
/// completion answers `InternalError`), where AWS S3 takes 1024-byte keys.
fn with_segment_hint(e: StorageError, key: &str) -> StorageError {
    let segment = longest_segment(key);
    match e {
        StorageError::Unavailable { reason } if segment > SEAWEEDFS_MAX_SEGMENT => {
            StorageError::Unavailable {
                reason: format!(
                    "{reason}; if the store is SeaweedFS, a key part over \
                     {SEAWEEDFS_MAX_SEGMENT} bytes is refused (this name has a part of \
                     {segment} bytes)"
                ),
            }
        }
        other => other,
    }
}

async fn send(
    client: &Client,
    call: &Call<'_>,
    upload_id: &str,
) -> Result<super::client::Answer, StorageError> {
    client
        .send(call)
        .await
        .map_err(|f| multipart_error(f, upload_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(n: u32, etag: &str) -> Part {
        Part {
            part_number: n,
            etag: etag.into(),
            size: 1,
            checksum_sha256: None,
        }
    }

    /// A retryable failure stays retryable; the hint only when a part is over 255 bytes.
    #[test]
    fn a_long_key_part_adds_a_hint_not_a_client_error() {
        let long = format!("d/{}", "a".repeat(300));
        let failed = || StorageError::Unavailable {
            reason: "b/k: InternalError (HTTP 500)".into(),
        };
        let StorageError::Unavailable { reason } = with_segment_hint(failed(), &long) else {
            panic!("still unavailable")
        };
        assert!(
            reason.contains("if the store is SeaweedFS") && reason.contains("part of 300 bytes"),
            "{reason}"
        );
        assert_eq!(with_segment_hint(failed(), "d/short"), failed());
        let denied = StorageError::Denied { reason: "x".into() };
        assert_eq!(with_segment_hint(denied.clone(), &long), denied);
    }

    #[test]
    fn a_part_uploaded_twice_counts_once_as_its_latest_upload() {
        let listed = vec![
            (10, part(2, "old")),
            (5, part(1, "one")),
            (12, part(2, "new")),
            (12, part(2, "newer, same second")),
            (11, part(3, "three")),
        ];
        let etags: Vec<(u32, String)> = latest(listed)
            .into_iter()
            .map(|p| (p.part_number, p.etag))
            .collect();
        assert_eq!(
            etags,
            [
                (1, "one".to_owned()),
                (2, "newer, same second".to_owned()),
                (3, "three".to_owned())
            ]
        );
    }
}
