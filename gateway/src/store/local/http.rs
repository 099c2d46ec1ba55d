//! The endpoint of the local store's presigned URLs: `/_store/<bucket>/<key>`, SigV4 query auth
//! checked by our verifier. PUT streams to a temporary file (memory bounded by one chunk),
//! checking the signed checksum, then commits atomically; GET (with one `Range`) and HEAD read.
//! Errors are S3-style XML, as a client of S3 expects; a refused upload stores nothing.

use super::files::{self, Meta};
use super::{commit, read_meta, LocalStorage, ACCESS_KEY, PREFIX};
use crate::http::response::{full, Body, CONTENT_TYPE};
use base64::Engine;
use bytes::Bytes;
use draftstore_core::{Metadata, StorageError};
use draftstore_signer::{ReceivedRequest, Timestamp};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use md5::{Digest as _, Md5};
use sha2::Sha256;
use std::convert::Infallible;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

fn s3_error(status: u16, code: &str, message: &str) -> Response<Body> {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{}</Message></Error>",
        quick_xml::escape::escape(message)
    );
    let mut response = Response::new(full(body));
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        CONTENT_TYPE,
        http::HeaderValue::from_static("application/xml"),
    );
    response
}

fn storage_error(e: &StorageError) -> Response<Body> {
    match e {
        StorageError::NotFound { .. } => {
            s3_error(404, "NoSuchKey", "The specified key does not exist.")
        }
        StorageError::PreconditionFailed { .. } => {
            s3_error(412, "PreconditionFailed", "A precondition does not hold.")
        }
        _ => s3_error(
            500,
            "InternalError",
            "The store failed; see the gateway's log.",
        ),
    }
}

/// Why a request to the store was refused: an S3 status, code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl LocalStorage {
    /// Checks a presigned request (signature, scope, time, signed headers) and finds its
    /// target: `(bucket, key, signed x-amz-content-sha256)`. Pure apart from the secret.
    ///
    /// # Errors
    /// A `Refusal` naming the first check that failed.
    pub fn authorize(
        &self,
        method: &str,
        path: &str,
        query: &str,
        headers: &[(&str, &str)],
        now: Timestamp,
    ) -> Result<(String, String, Option<String>), Refusal> {
        let received = ReceivedRequest {
            method,
            path,
            query,
            headers,
        };
        let verified = self
            .verifier
            .verify(&received, now, |ak| {
                (ak == ACCESS_KEY).then_some(self.secret.as_str())
            })
            .map_err(|e| Refusal {
                status: e.http_status(),
                code: e.s3_code(),
                message: e.to_string(),
            })?;
        let (bucket, key) = target(path).ok_or_else(|| Refusal {
            status: 400,
            code: "InvalidURI",
            message: "Expected /_store/<bucket>/<key>.".into(),
        })?;
        Ok((bucket, key, verified.content_sha256))
    }

    /// Serves one request for `/_store/…`.
    pub async fn serve(&self, req: Request<Incoming>) -> Response<Body> {
        if !matches!(*req.method(), Method::PUT | Method::GET | Method::HEAD) {
            return s3_error(
                405,
                "MethodNotAllowed",
                "The store accepts PUT, GET and HEAD.",
            );
        }
        let (parts, body) = req.into_parts();
        let headers: Vec<(&str, &str)> = parts
            .headers
            .iter()
            .filter_map(|(n, v)| Some((n.as_str(), v.to_str().ok()?)))
            .collect();
        let Ok(now) = Timestamp::from_unix(super::now()) else {
            return s3_error(500, "InternalError", "The system clock is out of range.");
        };
        let (bucket, key, content_sha256) = match self.authorize(
            parts.method.as_str(),
            parts.uri.path(),
            parts.uri.query().unwrap_or(""),
            &headers,
            now,
        ) {
            Ok(ok) => ok,
            Err(refusal) => return s3_error(refusal.status, refusal.code, &refusal.message),
        };
        let verified = content_sha256;
        match parts.method {
            Method::PUT => {
                self.put(&bucket, key, &parts.headers, body, verified.as_deref())
                    .await
            }
            method => {
                self.read(&bucket, key, &parts.headers, method == Method::HEAD)
                    .await
            }
        }
    }

    async fn put(
        &self,
        bucket: &str,
        key: String,
        headers: &HeaderMap,
        mut body: Incoming,
        signed_sha256: Option<&str>,
    ) -> Response<Body> {
        let root = self.root.clone();
        let tmp = files::tmp_dir(&root).join(files::tmp_name());
        let written = async {
            let mut file = tokio::fs::File::create(&tmp).await?;
            let (mut md5, mut sha) = (Md5::new(), Sha256::new());
            let mut size = 0_u64;
            while let Some(frame) = body.frame().await {
                let Ok(data) = frame.map_err(std::io::Error::other)?.into_data() else {
                    continue;
                };
                size += data.len() as u64;
                if size > self.max_object {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::FileTooLarge,
                        "too large",
                    ));
                }
                md5.update(&data);
                sha.update(&data);
                file.write_all(&data).await?;
            }
            file.sync_all().await?;
            Ok::<_, std::io::Error>((size, hex::encode(md5.finalize()), sha.finalize()))
        }
        .await;
        let (size, etag, sha) = match written {
            Ok(done) => done,
            Err(e) => {
                let _ = tokio::fs::remove_file(&tmp).await;
                return if e.kind() == std::io::ErrorKind::FileTooLarge {
                    s3_error(
                        400,
                        "EntityTooLarge",
                        "The upload exceeds the store's limit.",
                    )
                } else {
                    s3_error(
                        400,
                        "IncompleteBody",
                        "The upload ended early; nothing was stored.",
                    )
                };
            }
        };
        let checksum = base64::engine::general_purpose::STANDARD.encode(sha);
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        // Both forms a client may send: x-amz-checksum-sha256 (base64) and a signed
        // x-amz-content-sha256 (hex).
        let digest_ok = header("x-amz-checksum-sha256").is_none_or(|want| want == checksum)
            && signed_sha256.is_none_or(|want| want == hex::encode(sha));
        if !digest_ok {
            let _ = tokio::fs::remove_file(&tmp).await;
            return s3_error(
                400,
                "BadDigest",
                "The body does not match the checksum sent; nothing was stored.",
            );
        }
        let metadata: Metadata = headers
            .iter()
            .filter_map(|(n, v)| {
                Some((
                    n.as_str().strip_prefix("x-amz-meta-")?.to_owned(),
                    v.to_str().ok()?.to_owned(),
                ))
            })
            .collect();
        let meta = Meta {
            key,
            data: String::new(),
            size,
            etag: etag.clone(),
            content_type: header("content-type"),
            metadata,
            checksum_sha256: header("x-amz-checksum-sha256").map(|_| checksum),
            stored_at: super::now(),
        };
        let (bucket, lock, tmp2) = (bucket.to_owned(), self.lock.clone(), tmp.clone());
        let committed = tokio::task::spawn_blocking(move || {
            let _guard = lock.lock()?;
            commit(&root, &bucket, meta, &tmp2)
        })
        .await;
        match committed {
            Ok(Ok(())) => {
                let mut response = Response::new(full(Bytes::new()));
                if let Ok(v) = http::HeaderValue::from_str(&format!("\"{etag}\"")) {
                    response.headers_mut().insert("etag", v);
                }
                response
            }
            Ok(Err(e)) => {
                let _ = tokio::fs::remove_file(&tmp).await;
                storage_error(&e)
            }
            Err(_) => s3_error(500, "InternalError", "The store failed."),
        }
    }

    async fn read(
        &self,
        bucket: &str,
        key: String,
        headers: &HeaderMap,
        head_only: bool,
    ) -> Response<Body> {
        let (root, bucket2) = (self.root.clone(), bucket.to_owned());
        let found = tokio::task::spawn_blocking(move || read_meta(&root, &bucket2, &key)).await;
        let (dir, meta) = match found {
            Ok(Ok(found)) => found,
            Ok(Err(e)) => return storage_error(&e),
            Err(_) => return s3_error(500, "InternalError", "The store failed."),
        };
        let range = match headers
            .get("range")
            .and_then(|v| v.to_str().ok())
            .map(|r| parse_range(r, meta.size))
        {
            None => None,
            Some(Some(r)) => Some(r),
            Some(None) => {
                return s3_error(
                    416,
                    "InvalidRange",
                    "The requested range is not satisfiable.",
                )
            }
        };
        let (start, end) = range.unwrap_or((0, meta.size.saturating_sub(1)));
        let length = if meta.size == 0 { 0 } else { end - start + 1 };
        let mut builder = Response::builder()
            .status(if range.is_some() {
                StatusCode::PARTIAL_CONTENT
            } else {
                StatusCode::OK
            })
            .header("etag", format!("\"{}\"", meta.etag))
            .header("content-length", length)
            .header("accept-ranges", "bytes")
            .header(
                "last-modified",
                httpdate::fmt_http_date(
                    std::time::UNIX_EPOCH
                        + std::time::Duration::from_secs(
                            u64::try_from(meta.stored_at).unwrap_or(0),
                        ),
                ),
            );
        if let Some(ct) = &meta.content_type {
            builder = builder.header(CONTENT_TYPE, ct.as_str());
        }
        for (k, v) in &meta.metadata {
            builder = builder.header(format!("x-amz-meta-{k}"), v.as_str());
        }
        if range.is_some() {
            builder = builder.header(
                "content-range",
                format!("bytes {start}-{end}/{}", meta.size),
            );
        }
        let body = if head_only || length == 0 {
            full(Bytes::new())
        } else {
            file_body(dir.join(&meta.data), start, length).await
        };
        builder
            .body(body)
            .unwrap_or_else(|_| s3_error(500, "InternalError", "The store failed."))
    }
}

/// `/_store/<bucket>/<key>` → (bucket, key), percent-decoded.
fn target(path: &str) -> Option<(String, String)> {
    let rest = path.strip_prefix(PREFIX)?;
    let (bucket, key) = rest.split_once('/')?;
    let key = percent_encoding::percent_decode_str(key)
        .decode_utf8()
        .ok()?
        .into_owned();
    let bucket = draftstore_core::BucketName::parse(bucket).ok()?;
    (!key.is_empty()).then(|| (bucket.to_string(), key))
}

/// One `bytes=` range within `size`: `a-b`, `a-`, or `-n` (the last n bytes).
fn parse_range(header: &str, size: u64) -> Option<(u64, u64)> {
    let spec = header.strip_prefix("bytes=")?;
    if spec.contains(',') || size == 0 {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (start, end) = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: u64 = n.parse().ok()?;
            (size.checked_sub(n.min(size))?, size - 1)
        }
        (a, "") => (a.parse().ok()?, size - 1),
        (a, b) => (a.parse().ok()?, b.parse::<u64>().ok()?.min(size - 1)),
    };
    (start <= end && start < size).then_some((start, end))
}

/// Streams `length` bytes of `path` from `start`, 64 KiB at a time.
async fn file_body(path: std::path::PathBuf, start: u64, length: u64) -> Body {
    let Ok(mut file) = tokio::fs::File::open(&path).await else {
        return full(Bytes::new());
    };
    if file.seek(std::io::SeekFrom::Start(start)).await.is_err() {
        return full(Bytes::new());
    }
    let stream = futures_util::stream::unfold((file, length), |(mut file, left)| async move {
        if left == 0 {
            return None;
        }
        let mut buf = vec![0_u8; usize::try_from(left.min(64 * 1024)).unwrap_or(64 * 1024)];
        match file.read(&mut buf).await {
            Ok(0) | Err(_) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((
                    Ok::<_, Infallible>(Frame::data(Bytes::from(buf))),
                    (file, left - n as u64),
                ))
            }
        }
    });
    StreamBody::new(stream).boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Some((0, 9)));
        assert_eq!(parse_range("bytes=90-", 100), Some((90, 99)));
        assert_eq!(parse_range("bytes=-10", 100), Some((90, 99)));
        assert_eq!(parse_range("bytes=50-500", 100), Some((50, 99)));
        for bad in [
            "bytes=100-",
            "bytes=5-1",
            "bytes=a-b",
            "items=0-1",
            "bytes=0-1,3-4",
            "bytes=-",
        ] {
            assert_eq!(parse_range(bad, 100), None, "{bad}");
        }
    }

    #[test]
    fn targets() {
        assert_eq!(
            target("/_store/main-draft/a%20b/c"),
            Some(("main-draft".into(), "a b/c".into()))
        );
        assert_eq!(target("/_store/main-draft/"), None);
        assert_eq!(target("/_store/Bad_Bucket/x"), None);
        assert_eq!(target("/elsewhere/b/k"), None);
        assert_eq!(target("/_store/main-draft/%FF"), None);
    }
}
