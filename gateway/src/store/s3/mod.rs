//! The [`Storage`] implementation for AWS S3 and S3-compatible stores (MinIO, Ceph, R2,
//! SeaweedFS): `reqwest` for HTTP, `draftstore-signer` for every signature; of the AWS SDK only
//! `aws-config`'s credential providers, which fetch temporary credentials (see `chain`).
//!
//! Files: `client` (signed call, timeouts, retries), `credentials` (static or refreshed),
//! `chain` (the AWS credential chain), `errors` (answers → typed errors), `retry` (backoff),
//! `xml` (bodies), `multipart` (copies above the threshold, any object size), `uploads`
//! (multipart uploads: create, parts, complete), `presign` (the URLs handed to clients),
//! `versions` (a versioned draft bucket: confirm's delete of exactly the version it copied).

pub mod chain;
mod client;
mod cors;
pub mod credentials;
mod errors;
mod multipart;
mod presign;
mod retry;
mod uploads;
mod versions;
mod xml;

use crate::config::{ConfigError, CredentialSource, S3Config};
use client::{Call, Client};
use credentials::CredentialCache;
use draftstore_core::{
    BucketName, Capabilities, Completed, CompletedPart, Copied, CopyCondition, CopyRequest,
    DeleteOutcome, DeleteTarget, ListPage, ListedObject, Metadata, MetadataDirective,
    MultipartOptions, ObjectInfo, Part, PutOptions, Storage, StorageError, Upload, UploadChecksum,
    UploadPage,
};
use draftstore_signer::{encode_key, Method};
use reqwest::header::HeaderMap;
use retry::RetryPolicy;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

/// S3 storage. Cheap to share: one pooled HTTP client.
pub struct S3Storage {
    client: Client,
    config: S3Config,
    /// `x-amz-server-side-encryption*` headers sent with every write (empty: bucket default).
    sse: Vec<(String, String)>,
}

impl S3Storage {
    /// A store with the static keys of `config`.
    ///
    /// # Errors
    /// A [`ConfigError`] when the HTTP client cannot be built or the region is unusable, or
    /// when `config` asks for the credential chain (use [`S3Storage::connect`]).
    pub fn new(config: S3Config) -> Result<Self, ConfigError> {
        let CredentialSource::Static(keys) = &config.credentials else {
            return Err(ConfigError(
                "no AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY: the credential chain needs S3Storage::connect".into(),
            ));
        };
        let cache = CredentialCache::fixed(keys.clone(), &config.region).map_err(ConfigError)?;
        Self::with_credentials(config, Arc::new(cache))
    }

    /// A store whose credentials are the static keys of `config`, or else come from the AWS
    /// credential chain (fetched now, within `budget`, then refreshed in the background on the
    /// current tokio runtime).
    ///
    /// # Errors
    /// As [`S3Storage::new`]; no credentials found (the message names what was tried).
    pub async fn connect(config: S3Config, budget: Duration) -> Result<Self, ConfigError> {
        if let CredentialSource::Static(_) = config.credentials {
            return Self::new(config);
        }
        let chain = chain::Chain::new(&config.region);
        let cache = CredentialCache::from_chain(chain, &config.region, budget)
            .await
            .map_err(|e| ConfigError(e.0))?;
        Self::with_credentials(config, cache)
    }

    fn with_credentials(
        config: S3Config,
        credentials: Arc<CredentialCache>,
    ) -> Result<Self, ConfigError> {
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .pool_idle_timeout(std::time::Duration::from_secs(60))
            .pool_max_idle_per_host(64)
            .build()
            .map_err(|e| ConfigError(format!("cannot build the HTTP client: {e}")))?;
        let retry = RetryPolicy {
            max_attempts: config.max_attempts,
            base: config.base_backoff,
            max: config.max_backoff,
        };
        let client = Client::new(
            http,
            credentials,
            config.endpoint.clone(),
            config.addressing,
            retry,
        );
        let sse = config
            .sse
            .as_ref()
            .map(crate::config::Sse::headers)
            .unwrap_or_default();
        Ok(Self {
            client,
            config,
            sse,
        })
    }

    /// HTTP requests sent so far, retries included.
    #[must_use]
    pub fn attempts(&self) -> u64 {
        self.client.attempts()
    }

    /// The settings it was built with.
    #[must_use]
    pub fn config(&self) -> &S3Config {
        &self.config
    }

    /// This store's credentials (presigned URLs use them too).
    #[must_use]
    pub fn credentials(&self) -> &CredentialCache {
        self.client.credentials()
    }

    /// The server-side encryption headers of every object written (sorted; empty for none).
    #[must_use]
    pub fn sse_headers(&self) -> &[(String, String)] {
        &self.sse
    }

    /// The bucket's versioning: `Enabled`, `Suspended`, or `Disabled` (never enabled).
    ///
    /// # Errors
    /// Storage failures (a store without versioning answers `NotImplemented`).
    pub async fn versioning(&self, bucket: &BucketName) -> Result<String, StorageError> {
        let mut call = Call::new("GetBucketVersioning", Method::Get, bucket.as_str(), "");
        call.query = &[("versioning", "")];
        let answer = self.client.send(&call).await?;
        let result: xml::VersioningConfiguration = xml::parse(&answer.body, &call.what)
            .map_err(|reason| StorageError::Backend { reason })?;
        Ok(result
            .status
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "Disabled".into()))
    }

    /// `x-amz-copy-source`: `/<bucket>/<key>`, and `?versionId=<id>` for one stored version.
    fn copy_source(bucket: &BucketName, key: &str, version_id: Option<&str>) -> String {
        match version_id {
            Some(id) => format!("/{bucket}/{}?versionId={}", encode_key(key), encode_key(id)),
            None => format!("/{bucket}/{}", encode_key(key)),
        }
    }
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn unquote(etag: &str) -> String {
    etag.trim().trim_matches('"').to_owned()
}

/// `2026-11-27T12:00:00.000Z` → Unix seconds.
fn parse_iso8601(text: &str) -> Option<i64> {
    let compact: String = text
        .split('.')
        .next()?
        .trim_end_matches('Z')
        .chars()
        .filter(|c| *c != '-' && *c != ':')
        .collect();
    draftstore_signer::Timestamp::parse_amz(&format!("{compact}Z"))
        .ok()
        .map(|t| t.unix())
}

/// Keys in `encoding-type=url` listings: form-encoded (`+` is a space).
fn decode_listed(key: &str, url_encoded: bool) -> Result<String, StorageError> {
    if !url_encoded {
        return Ok(key.to_owned());
    }
    let spaced = key.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .map(std::borrow::Cow::into_owned)
        .map_err(|_| StorageError::Backend {
            reason: format!("listing returned a key that is not UTF-8: {key:?}"),
        })
}

fn metadata_headers(
    content_type: Option<&String>,
    metadata: &Metadata,
    headers: &mut Vec<(String, String)>,
) {
    if let Some(ct) = content_type {
        headers.push(("content-type".into(), ct.clone()));
    }
    for (k, v) in metadata {
        headers.push((format!("x-amz-meta-{k}"), v.clone()));
    }
}

fn object_info(headers: &HeaderMap) -> ObjectInfo {
    let metadata = headers
        .iter()
        .filter_map(|(name, value)| {
            let key = name.as_str().strip_prefix("x-amz-meta-")?;
            Some((key.to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect();
    ObjectInfo {
        size: header(headers, "content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        etag: header(headers, "etag").map(unquote).unwrap_or_default(),
        last_modified: header(headers, "last-modified")
            .and_then(|v| httpdate::parse_http_date(v).ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .and_then(|d| i64::try_from(d.as_secs()).ok())
            .unwrap_or(0),
        content_type: header(headers, "content-type").map(str::to_owned),
        metadata,
        checksum_sha256: header(headers, "x-amz-checksum-sha256").map(str::to_owned),
        version_id: header(headers, "x-amz-version-id")
            .filter(|v| !v.is_empty() && *v != "null")
            .map(str::to_owned),
    }
}

impl Storage for S3Storage {
    fn capabilities(&self) -> Capabilities {
        let on = self.config.conditional_writes;
        Capabilities {
            conditional_copy: on,
            conditional_delete: on,
            conditional_put: on,
            version_conditions: false,
            // A versioned bucket's HEAD names the version: copied and deleted by that id.
            version_ids: true,
        }
    }

    async fn create_bucket(&self, bucket: &BucketName) -> Result<(), StorageError> {
        let mut call = Call::new("CreateBucket", Method::Put, bucket.as_str(), "");
        if self.config.region != "us-east-1" {
            call.body = xml::create_bucket_request(&self.config.region).into_bytes();
        }
        match self.client.send(&call).await {
            Ok(_) => Ok(()),
            Err(f) if f.code == "BucketAlreadyOwnedByYou" => Ok(()),
            // Some S3-compatible servers answer this for a bucket we already own too. A
            // HeadBucket that succeeds with our credentials says we can use it: success. One
            // refused or missing leaves the name someone else's: the 409 stands.
            Err(f) if f.code == "BucketAlreadyExists" => match self.head_bucket(bucket).await {
                Ok(()) => Ok(()),
                Err(StorageError::NotFound { .. } | StorageError::Denied { .. }) => Err(f.error),
                Err(other) => Err(other),
            },
            Err(f) => Err(f.error),
        }
    }

    async fn head_bucket(&self, bucket: &BucketName) -> Result<(), StorageError> {
        self.client
            .send(&Call::new("HeadBucket", Method::Head, bucket.as_str(), ""))
            .await
            .map(|_| ())
            .map_err(Into::into)
    }

    async fn head_object(
        &self,
        bucket: &BucketName,
        key: &str,
    ) -> Result<ObjectInfo, StorageError> {
        let mut call = Call::new("HeadObject", Method::Head, bucket.as_str(), key);
        call.headers
            .push(("x-amz-checksum-mode".into(), "ENABLED".into()));
        let answer = self.client.send(&call).await?;
        Ok(object_info(&answer.headers))
    }

    async fn put_object(
        &self,
        bucket: &BucketName,
        key: &str,
        body: Vec<u8>,
        options: &PutOptions,
    ) -> Result<String, StorageError> {
        let mut call = Call::new("PutObject", Method::Put, bucket.as_str(), key);
        metadata_headers(
            options.content_type.as_ref(),
            &options.metadata,
            &mut call.headers,
        );
        call.headers.extend_from_slice(&self.sse);
        call.body = body;
        let answer = self.client.send(&call).await?;
        Ok(header(&answer.headers, "etag")
            .map(unquote)
            .unwrap_or_default())
    }

    /// With conditional writes: `If-None-Match: *` / `If-Match` on the PutObject (AWS S3 since
    /// 2024, SeaweedFS). Without: a HEAD first, racy (see [`Capabilities::conditional_put`]).
    async fn put_object_if(
        &self,
        bucket: &BucketName,
        key: &str,
        body: Vec<u8>,
        options: &PutOptions,
        condition: &CopyCondition,
    ) -> Result<String, StorageError> {
        if !self.config.conditional_writes && *condition != CopyCondition::Always {
            let existing = match self.head_object(bucket, key).await {
                Ok(info) => Some(info.etag),
                Err(StorageError::NotFound { .. }) => None,
                Err(e) => return Err(e),
            };
            condition.check(existing.as_deref(), bucket.as_str(), key)?;
        }
        let mut call = Call::new("PutObject", Method::Put, bucket.as_str(), key);
        metadata_headers(
            options.content_type.as_ref(),
            &options.metadata,
            &mut call.headers,
        );
        call.headers.extend_from_slice(&self.sse);
        self.condition_headers(condition, &mut call.headers);
        call.body = body;
        let answer = self.client.send(&call).await?;
        Ok(header(&answer.headers, "etag")
            .map(unquote)
            .unwrap_or_default())
    }

    async fn get_object(&self, bucket: &BucketName, key: &str) -> Result<Vec<u8>, StorageError> {
        let mut call = Call::new("GetObject", Method::Get, bucket.as_str(), key);
        call.max_body = 1 << 30;
        Ok(self.client.send(&call).await?.body)
    }

    async fn copy_object(&self, request: &CopyRequest<'_>) -> Result<Copied, StorageError> {
        if request.source_size > self.config.multipart_threshold {
            return multipart::copy(&self.client, &self.config, &self.sse, request).await;
        }
        let mut call = Call::new(
            "CopyObject",
            Method::Put,
            request.to_bucket.as_str(),
            request.to_key,
        );
        call.error_in_200 = true;
        call.headers = self.copy_headers(request);
        match &request.metadata {
            MetadataDirective::Copy => call
                .headers
                .push(("x-amz-metadata-directive".into(), "COPY".into())),
            MetadataDirective::Replace {
                content_type,
                metadata,
            } => {
                call.headers
                    .push(("x-amz-metadata-directive".into(), "REPLACE".into()));
                metadata_headers(content_type.as_ref(), metadata, &mut call.headers);
            }
        }
        self.condition_headers(&request.condition, &mut call.headers);
        // Main gets the same encryption as the draft (a copy does not inherit it).
        call.headers.extend_from_slice(&self.sse);
        let answer = self.client.send(&call).await?;
        let result: xml::EtagResult = xml::parse(&answer.body, &call.what)
            .map_err(|reason| StorageError::Backend { reason })?;
        Ok(Copied {
            etag: unquote(&result.etag),
        })
    }

    async fn delete_object(&self, bucket: &BucketName, key: &str) -> Result<(), StorageError> {
        self.client
            .send(&Call::new(
                "DeleteObject",
                Method::Delete,
                bucket.as_str(),
                key,
            ))
            .await
            .map(|_| ())
            .map_err(Into::into)
    }

    async fn delete_version(
        &self,
        bucket: &BucketName,
        key: &str,
        version_id: &str,
    ) -> Result<(), StorageError> {
        self.delete_version_and_older(bucket, key, version_id).await
    }

    async fn delete_objects(
        &self,
        bucket: &BucketName,
        targets: &[DeleteTarget],
    ) -> Result<Vec<DeleteOutcome>, StorageError> {
        draftstore_core::check_delete_batch(targets)?;
        if targets.is_empty() {
            return Ok(Vec::new());
        }
        let conditional = self.config.conditional_writes;
        let body = xml::delete_request(targets.iter().map(|t| {
            (
                t.key.as_str(),
                t.etag.as_deref().filter(|_| conditional),
                None,
            )
        }))
        .into_bytes();
        let mut call = Call::new("DeleteObjects", Method::Post, bucket.as_str(), "");
        call.query = &[("delete", "")];
        call.with_body("application/xml", body);
        let answer = self.client.send(&call).await?;
        let result: xml::DeleteResult = xml::parse(&answer.body, &call.what)
            .map_err(|reason| StorageError::Backend { reason })?;
        // Looked up by key: a batch holds up to 1000 keys, answered in any order.
        let refused: HashMap<&str, &xml::DeleteError> =
            result.error.iter().map(|e| (e.key.as_str(), e)).collect();
        let deleted: HashSet<&str> = result.deleted.iter().map(|d| d.key.as_str()).collect();
        Ok(targets
            .iter()
            .map(|t| {
                let result = match refused.get(t.key.as_str()) {
                    Some(e) if e.code == "NoSuchKey" => Ok(()),
                    Some(e) => Err(errors::classify(
                        0,
                        &e.code,
                        &e.message,
                        &format!("{bucket}/{}", t.key),
                    )),
                    None if deleted.contains(t.key.as_str()) => Ok(()),
                    None => Err(StorageError::Backend {
                        reason: format!("{bucket}/{}: no result in the batch delete", t.key),
                    }),
                };
                DeleteOutcome {
                    key: t.key.clone(),
                    result,
                }
            })
            .collect())
    }

    async fn list_objects(
        &self,
        bucket: &BucketName,
        prefix: &str,
        continuation: Option<&str>,
        max_keys: u16,
    ) -> Result<ListPage, StorageError> {
        let max = max_keys.clamp(1, 1000).to_string();
        let mut query = vec![
            ("list-type", "2"),
            ("encoding-type", "url"),
            ("max-keys", max.as_str()),
            ("prefix", prefix),
        ];
        if let Some(token) = continuation {
            query.push(("continuation-token", token));
        }
        let mut call = Call::new("ListObjectsV2", Method::Get, bucket.as_str(), "");
        call.query = &query;
        let answer = self.client.send(&call).await?;
        let result: xml::ListBucketResult = xml::parse(&answer.body, &call.what)
            .map_err(|reason| StorageError::Backend { reason })?;
        let encoded = result.encoding_type.as_deref() == Some("url");
        let objects = result
            .contents
            .iter()
            .map(|c| {
                Ok(ListedObject {
                    key: decode_listed(&c.key, encoded)?,
                    size: c.size,
                    etag: unquote(&c.etag),
                    last_modified: parse_iso8601(&c.last_modified).ok_or_else(|| {
                        StorageError::Backend {
                            reason: format!("bad LastModified {:?}", c.last_modified),
                        }
                    })?,
                })
            })
            .collect::<Result<Vec<_>, StorageError>>()?;
        let next = if result.is_truncated {
            result.next_continuation_token
        } else {
            None
        };
        if result.is_truncated && next.is_none() {
            return Err(StorageError::Backend {
                reason: format!("{bucket}: truncated listing without a continuation token"),
            });
        }
        Ok(ListPage { objects, next })
    }

    async fn list_uploads(
        &self,
        bucket: &BucketName,
        prefix: &str,
        continuation: Option<&(String, String)>,
    ) -> Result<UploadPage, StorageError> {
        let mut query = vec![("uploads", ""), ("encoding-type", "url")];
        if !prefix.is_empty() {
            query.push(("prefix", prefix));
        }
        if let Some((key, id)) = continuation {
            query.push(("key-marker", key.as_str()));
            query.push(("upload-id-marker", id.as_str()));
        }
        let mut call = Call::new("ListMultipartUploads", Method::Get, bucket.as_str(), "");
        call.query = &query;
        let answer = self.client.send(&call).await?;
        let result: xml::ListMultipartUploadsResult = xml::parse(&answer.body, &call.what)
            .map_err(|reason| StorageError::Backend { reason })?;
        let uploads = result
            .upload
            .iter()
            .map(|u| {
                Ok(Upload {
                    key: decode_listed(&u.key, true)?,
                    upload_id: u.upload_id.clone(),
                    initiated: parse_iso8601(&u.initiated).unwrap_or(0),
                })
            })
            .collect::<Result<Vec<_>, StorageError>>()?;
        let next = match (
            result.is_truncated,
            result.next_key_marker,
            result.next_upload_id_marker,
        ) {
            (true, Some(k), Some(i)) => Some((decode_listed(&k, true)?, i)),
            _ => None,
        };
        Ok(UploadPage { uploads, next })
    }

    async fn create_multipart_upload(
        &self,
        bucket: &BucketName,
        key: &str,
        options: &MultipartOptions,
    ) -> Result<String, StorageError> {
        self.create_upload(bucket, key, options).await
    }

    async fn upload_part(
        &self,
        bucket: &BucketName,
        key: &str,
        upload_id: &str,
        part_number: u32,
        body: Vec<u8>,
        checksum_sha256: Option<&str>,
    ) -> Result<Part, StorageError> {
        self.put_part(bucket, key, upload_id, part_number, body, checksum_sha256)
            .await
    }

    async fn list_parts(
        &self,
        bucket: &BucketName,
        key: &str,
        upload_id: &str,
    ) -> Result<Vec<Part>, StorageError> {
        Ok(self.parts(bucket, key, upload_id).await?.0)
    }

    async fn upload_checksum(
        &self,
        bucket: &BucketName,
        key: &str,
        upload_id: &str,
    ) -> Result<UploadChecksum, StorageError> {
        self.checksum(bucket, key, upload_id).await
    }

    async fn complete_multipart_upload(
        &self,
        bucket: &BucketName,
        key: &str,
        upload_id: &str,
        parts: &[CompletedPart],
    ) -> Result<Completed, StorageError> {
        self.complete(bucket, key, upload_id, parts).await
    }

    async fn abort_upload(
        &self,
        bucket: &BucketName,
        key: &str,
        upload_id: &str,
    ) -> Result<(), StorageError> {
        let query = [("uploadId", upload_id)];
        let mut call = Call::new("AbortMultipartUpload", Method::Delete, bucket.as_str(), key);
        call.query = &query;
        match self.client.send(&call).await {
            Ok(_) => {}
            Err(f) if f.code == "NoSuchUpload" => {}
            Err(f) => return Err(f.error),
        }
        // The checksums the gateway kept for it (SeaweedFS lists none), whoever aborts.
        draftstore_core::kept_parts::forget(self, bucket, key, upload_id).await
    }
}

impl S3Storage {
    fn copy_headers(&self, request: &CopyRequest<'_>) -> Vec<(String, String)> {
        let mut headers = vec![(
            "x-amz-copy-source".to_owned(),
            Self::copy_source(
                request.from_bucket,
                request.from_key,
                request.source_version_id,
            ),
        )];
        if let Some(etag) = request.source_etag {
            headers.push(("x-amz-copy-source-if-match".into(), format!("\"{etag}\"")));
        }
        headers
    }

    fn condition_headers(&self, condition: &CopyCondition, headers: &mut Vec<(String, String)>) {
        if !self.config.conditional_writes {
            return;
        }
        match condition {
            CopyCondition::Always => {}
            CopyCondition::IfAbsent => headers.push(("if-none-match".into(), "*".into())),
            CopyCondition::IfMatch(etag) => {
                headers.push(("if-match".into(), format!("\"{etag}\"")))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_helpers() {
        assert_eq!(
            parse_iso8601("2026-11-27T12:00:00.000Z"),
            Some(1_795_780_800)
        );
        assert_eq!(parse_iso8601("2026-11-27T12:00:00Z"), Some(1_795_780_800));
        assert_eq!(parse_iso8601("yesterday"), None);
        assert_eq!(
            decode_listed("a+b%2Bc%20%E1%88%B4", true).unwrap(),
            "a b+c ሴ"
        );
        assert_eq!(decode_listed("a+b", false).unwrap(), "a+b");
        assert!(decode_listed("%FF", true).is_err());
        assert_eq!(unquote("\"abc\""), "abc");
        assert_eq!(
            S3Storage::copy_source(&BucketName::parse("src").unwrap(), "a b/c+d?", None),
            "/src/a%20b/c%2Bd%3F"
        );
        assert_eq!(
            S3Storage::copy_source(&BucketName::parse("src").unwrap(), "k", Some("3/L4+k")),
            "/src/k?versionId=3/L4%2Bk"
        );
    }
}
