//! Multipart copy: S3 copies at most 5 GiB in one call, so larger objects (or those above the
//! configured threshold) are copied as parts in parallel (`UploadPartCopy` with byte ranges),
//! then completed; any failure aborts the upload so no parts are left behind.

use super::client::{Call, Client};
use super::xml;
use super::S3Storage;
use crate::config::S3Config;
use draftstore_core::{Copied, CopyRequest, MetadataDirective, StorageError};
use draftstore_signer::Method;
use futures_util::stream::{self, StreamExt, TryStreamExt};

/// S3 accepts at most this many parts.
const MAX_PARTS: u64 = draftstore_core::MAX_PART_NUMBER as u64;

/// `(part number, first byte, last byte)` for an object of `size` bytes.
pub fn plan(size: u64, part_size: u64) -> Vec<(u32, u64, u64)> {
    let part = part_size.max(size.div_ceil(MAX_PARTS)).max(1);
    (0..size.div_ceil(part))
        .map(|i| {
            (
                u32::try_from(i + 1).unwrap_or(u32::MAX),
                i * part,
                ((i + 1) * part).min(size) - 1,
            )
        })
        .collect()
}

/// `sse`: the server-side encryption headers of the new object (set when it is created).
pub async fn copy(
    client: &Client,
    config: &S3Config,
    sse: &[(String, String)],
    request: &CopyRequest<'_>,
) -> Result<Copied, StorageError> {
    let bucket = request.to_bucket.as_str();
    let key = request.to_key;
    let mut create = Call::new("CreateMultipartUpload", Method::Post, bucket, key);
    create.query = &[("uploads", "")];
    let (content_type, metadata) = match &request.metadata {
        MetadataDirective::Replace {
            content_type,
            metadata,
        } => (content_type.clone(), metadata.clone()),
        // Multipart uploads do not inherit metadata: copy it from the source explicitly.
        MetadataDirective::Copy => {
            let mut head = Call::new(
                "HeadObject",
                Method::Head,
                request.from_bucket.as_str(),
                request.from_key,
            );
            head.max_body = 0;
            let info = super::object_info(&client.send(&head).await?.headers);
            (info.content_type, info.metadata)
        }
    };
    super::metadata_headers(content_type.as_ref(), &metadata, &mut create.headers);
    create.headers.extend_from_slice(sse);
    let answer = client.send(&create).await?;
    let started: xml::InitiateMultipartUploadResult = xml::parse(&answer.body, &create.what)
        .map_err(|reason| StorageError::Backend { reason })?;
    let upload_id = started.upload_id;
    match copy_parts_and_complete(client, config, request, &upload_id).await {
        Ok(copied) => Ok(copied),
        Err(e) => {
            let query = [("uploadId", upload_id.as_str())];
            let mut abort = Call::new("AbortMultipartUpload", Method::Delete, bucket, key);
            abort.query = &query;
            if let Err(abort_error) = client.send(&abort).await {
                tracing::warn!(what = %abort.what, error = %abort_error.error, "could not abort a failed multipart copy; sweep will");
            }
            Err(e)
        }
    }
}

async fn copy_parts_and_complete(
    client: &Client,
    config: &S3Config,
    request: &CopyRequest<'_>,
    upload_id: &str,
) -> Result<Copied, StorageError> {
    let source = S3Storage::copy_source(
        request.from_bucket,
        request.from_key,
        request.source_version_id,
    );
    let parts = plan(request.source_size, config.part_size);
    let mut done: Vec<(u32, String)> = stream::iter(parts)
        .map(|(number, first, last)| {
            let source = source.clone();
            async move {
                let number_text = number.to_string();
                let query = [
                    ("partNumber", number_text.as_str()),
                    ("uploadId", upload_id),
                ];
                let mut call = Call::new(
                    "UploadPartCopy",
                    Method::Put,
                    request.to_bucket.as_str(),
                    request.to_key,
                );
                call.query = &query;
                call.error_in_200 = true;
                call.headers.push(("x-amz-copy-source".into(), source));
                call.headers.push((
                    "x-amz-copy-source-range".into(),
                    format!("bytes={first}-{last}"),
                ));
                if let Some(etag) = request.source_etag {
                    call.headers
                        .push(("x-amz-copy-source-if-match".into(), format!("\"{etag}\"")));
                }
                let answer = client.send(&call).await?;
                let result: xml::EtagResult = xml::parse(&answer.body, &call.what)
                    .map_err(|reason| StorageError::Backend { reason })?;
                Ok::<_, StorageError>((number, super::unquote(&result.etag)))
            }
        })
        .buffer_unordered(config.copy_concurrency)
        .try_collect()
        .await?;
    done.sort_by_key(|(n, _)| *n);
    let query = [("uploadId", upload_id)];
    let mut complete = Call::new(
        "CompleteMultipartUpload",
        Method::Post,
        request.to_bucket.as_str(),
        request.to_key,
    );
    complete.query = &query;
    complete.error_in_200 = true;
    complete.body = xml::complete_request(&done).into_bytes();
    if config.conditional_writes {
        match &request.condition {
            draftstore_core::CopyCondition::Always => {}
            draftstore_core::CopyCondition::IfAbsent => {
                complete.headers.push(("if-none-match".into(), "*".into()))
            }
            draftstore_core::CopyCondition::IfMatch(etag) => complete
                .headers
                .push(("if-match".into(), format!("\"{etag}\""))),
        }
    }
    let answer = client.send(&complete).await?;
    let result: xml::EtagResult = xml::parse(&answer.body, &complete.what)
        .map_err(|reason| StorageError::Backend { reason })?;
    Ok(Copied {
        etag: super::unquote(&result.etag),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_cover_every_byte_once() {
        let mib = 1024 * 1024;
        assert_eq!(
            plan(12 * mib, 5 * mib),
            vec![
                (1, 0, 5 * mib - 1),
                (2, 5 * mib, 10 * mib - 1),
                (3, 10 * mib, 12 * mib - 1)
            ]
        );
        assert_eq!(plan(10 * mib, 5 * mib).len(), 2);
        assert_eq!(plan(1, 5 * mib), vec![(1, 0, 0)]);
        assert!(plan(0, 5 * mib).is_empty());
        // 5 TiB in 5 MiB parts would be a million parts: the part size grows to fit 10,000.
        let huge = plan(5 * 1024 * 1024 * mib, 5 * mib);
        assert!(huge.len() <= 10_000);
        assert_eq!(huge.last().map(|p| p.2), Some(5 * 1024 * 1024 * mib - 1));
    }
}
