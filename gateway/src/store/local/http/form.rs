//! Browser form uploads on the embedded store (AWS "Browser-based uploads using POST",
//! SigV4): `POST /_store/<bucket>` with a `multipart/form-data` body, as
//! [`Presign::presign_post`](crate::store::Presign::presign_post) makes the form.
//!
//! In stages, as a PUT: the fields before the file (at most 20 KiB together, as S3) are read
//! and the form checked against its signed policy by the signer's [`PostVerifier`]
//! (signature, expiry, every condition, no field outside them); only then is the `file` part
//! streamed into a [`Scratch`] file (memory bounded by one chunk; cut when it stalls, once it
//! passes the policy's `content-length-range` maximum or the store's limit), its size checked
//! against the range's minimum, and the object committed with the form's `Content-Type` and
//! `x-amz-meta-*` fields. Fields after the file are ignored, as S3 ignores them. Any failure
//! stores nothing and leaves no file. `success_action_status` (when the policy allows it) picks
//! 200, 201 (with S3's `PostResponse` XML) or 204 (the default); the ETag is in a header.
//!
//! [`PostVerifier`]: draftstore_signer::PostVerifier

use super::{header, too_large, Checks, Failure};
use crate::http::response::{full, Body, CONTENT_TYPE};
use crate::store::local::files::{Meta, Scratch};
use crate::store::local::{LocalStorage, ACCESS_KEY, PREFIX};
use bytes::Bytes;
use draftstore_core::Metadata;
use draftstore_signer::{PostError, Timestamp, VerifiedPost};
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use std::future::Future;
use tokio::io::AsyncWriteExt;

/// The most bytes the fields before the file may take together (names and values): S3's
/// 20 KB for POST form fields.
const MAX_FIELD_BYTES: usize = 20 * 1024;

/// `/_store/<bucket>` or `/_store/<bucket>/` → the bucket.
fn bucket_of(path: &str) -> Option<String> {
    let rest = path.strip_prefix(PREFIX)?;
    let bucket = rest.strip_suffix('/').unwrap_or(rest);
    draftstore_core::BucketName::parse(bucket)
        .ok()
        .map(|b| b.to_string())
}

fn malformed(why: impl std::fmt::Display) -> Failure {
    Failure::new(
        400,
        "MalformedPOSTRequest",
        "The body of your POST request is not well-formed multipart/form-data.",
    )
    .because(why.to_string())
}

fn refused(e: &PostError) -> Failure {
    Failure::new(e.http_status(), e.s3_code(), e.to_string())
}

impl LocalStorage {
    /// Serves one form upload (see the module doc).
    pub(super) async fn post_form(
        &self,
        req: Request<Incoming>,
    ) -> Result<Response<Body>, Failure> {
        let (parts, body) = req.into_parts();
        let bucket = bucket_of(parts.uri.path()).ok_or_else(|| {
            Failure::new(
                400,
                "InvalidURI",
                "A POST form upload goes to /_store/<bucket>.",
            )
        })?;
        let content_type = header(&parts.headers, "content-type").unwrap_or_default();
        let boundary = multer::parse_boundary(&content_type).map_err(|_| {
            Failure::new(
                412,
                "PreconditionFailed",
                "Bucket POST must be of the enclosure-type multipart/form-data.",
            )
        })?;
        let mut form = multer::Multipart::new(body.into_data_stream(), boundary);
        let mut fields: Vec<(String, String)> = Vec::new();
        let mut field_bytes = 0_usize;
        loop {
            let Some(mut field) = self
                .unstalled(form.next_field())
                .await?
                .map_err(malformed)?
            else {
                return Err(Failure::new(
                    400,
                    "InvalidArgument",
                    "POST requires exactly one file upload per request.",
                ));
            };
            let name = field.name().unwrap_or_default().to_owned();
            if name.eq_ignore_ascii_case("file") {
                let verified = self.verify_form(&bucket, &fields)?;
                let (tmp, size, etag) = self.receive_file(&mut field, &verified).await?;
                return self
                    .commit_form(bucket, &fields, verified, (tmp, size, etag))
                    .await;
            }
            if name.is_empty() {
                return Err(malformed("a form part without a name"));
            }
            field_bytes += name.len();
            let mut value = Vec::new();
            while let Some(chunk) = self.unstalled(field.chunk()).await?.map_err(malformed)? {
                field_bytes += chunk.len();
                if field_bytes > MAX_FIELD_BYTES {
                    return Err(Failure::new(
                        400,
                        "MaxPostPreDataLengthExceeded",
                        "Your POST request fields preceding the upload file were too large.",
                    ));
                }
                value.extend_from_slice(&chunk);
            }
            let value = String::from_utf8(value).map_err(|_| malformed("a field is not UTF-8"))?;
            fields.push((name, value));
        }
    }

    /// `step`, cut with 400 `RequestTimeout` when no byte arrives for the stall timeout.
    async fn unstalled<T>(&self, step: impl Future<Output = T>) -> Result<T, Failure> {
        tokio::time::timeout(self.stall_timeout, step)
            .await
            .map_err(|_| {
                Failure::new(
                    400,
                    "RequestTimeout",
                    format!(
                        "No data arrived for {} ms; the upload was cut and nothing was stored.",
                        self.stall_timeout.as_millis()
                    ),
                )
            })
    }

    /// The form's fields against their policy, at the store's clock.
    fn verify_form(
        &self,
        bucket: &str,
        fields: &[(String, String)],
    ) -> Result<VerifiedPost, Failure> {
        let now = Timestamp::from_unix(super::super::now())
            .map_err(|_| Failure::new(500, "InternalError", "The system clock is out of range."))?;
        let refs: Vec<(&str, &str)> = fields
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let verified = self
            .post_verifier
            .verify(bucket, &refs, now, |ak| {
                (ak == ACCESS_KEY).then_some(self.secret.as_str())
            })
            .map_err(|e| refused(&e))?;
        if verified.key.is_empty() || verified.key.len() > draftstore_core::MAX_KEY_BYTES {
            return Err(Failure::new(
                400,
                "KeyTooLongError",
                "The key must be 1 to 1024 bytes.",
            ));
        }
        Ok(verified)
    }

    /// Streams the file part into a scratch file, fsynced: `(file, size, md5 hex)`. Refused
    /// past the policy's maximum or the store's limit, or under the policy's minimum.
    async fn receive_file(
        &self,
        field: &mut multer::Field<'_>,
        verified: &VerifiedPost,
    ) -> Result<(Scratch, u64, String), Failure> {
        let (_, policy_max) = verified.length_range;
        let mut digests = Checks::from_headers(&HeaderMap::new(), None)?.digests();
        let (tmp, file) = Scratch::create(&self.root).map_err(|e| Failure::io("create", &e))?;
        let mut file = tokio::fs::File::from_std(file);
        let mut size = 0_u64;
        while let Some(chunk) = self.unstalled(field.chunk()).await?.map_err(malformed)? {
            size += chunk.len() as u64;
            if size > policy_max {
                return Err(refused(&PostError::EntityTooLarge {
                    size,
                    max: policy_max,
                }));
            }
            if size > self.max_object {
                return Err(too_large());
            }
            digests.update(&chunk);
            file.write_all(&chunk)
                .await
                .map_err(|e| Failure::io("write", &e))?;
        }
        verified.check_size(size).map_err(|e| refused(&e))?;
        file.flush().await.map_err(|e| Failure::io("write", &e))?;
        file.sync_all().await.map_err(|e| Failure::io("sync", &e))?;
        Ok((tmp, size, digests.finish().md5))
    }

    /// Commits the received file as `bucket/<key>` and answers as S3 does.
    async fn commit_form(
        &self,
        bucket: String,
        fields: &[(String, String)],
        verified: VerifiedPost,
        (tmp, size, etag): (Scratch, u64, String),
    ) -> Result<Response<Body>, Failure> {
        let status = fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("success_action_status"))
            .map(|(_, v)| v.as_str());
        let meta = Meta {
            key: verified.key,
            data: String::new(),
            size,
            etag: etag.clone(),
            content_type: verified.content_type,
            metadata: verified.metadata.into_iter().collect::<Metadata>(),
            checksum_sha256: None,
            stored_at: super::super::now(),
        };
        let key = meta.key.clone();
        let told = self.uploaded.get().map(|_| crate::store::local::Uploaded {
            bucket: bucket.clone(),
            key: key.clone(),
            size,
            etag: etag.clone(),
        });
        self.commit_upload(bucket.clone(), meta, tmp).await?;
        if let (Some(hook), Some(uploaded)) = (self.uploaded.get(), told) {
            hook(uploaded);
        }
        let location = format!(
            "{}://{}{PREFIX}{bucket}/{}",
            self.public_url().scheme().as_str(),
            self.public_url().authority(),
            draftstore_signer::encode_key(&key)
        );
        let quoted = format!("\"{etag}\"");
        let (status, body) = match status {
            Some("200") => (StatusCode::OK, Bytes::new()),
            Some("201") => (
                StatusCode::CREATED,
                Bytes::from(format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<PostResponse><Location>{}</Location><Bucket>{}</Bucket><Key>{}</Key><ETag>{}</ETag></PostResponse>",
                    quick_xml::escape::escape(location.as_str()),
                    quick_xml::escape::escape(bucket.as_str()),
                    quick_xml::escape::escape(key.as_str()),
                    quick_xml::escape::escape(quoted.as_str()),
                )),
            ),
            _ => (StatusCode::NO_CONTENT, Bytes::new()),
        };
        let mut builder = Response::builder()
            .status(status)
            .header("etag", quoted.as_str())
            .header("location", location.as_str());
        if status == StatusCode::CREATED {
            builder = builder.header(CONTENT_TYPE, "application/xml");
        }
        builder.body(full(body)).map_err(|e| {
            Failure::new(500, "InternalError", "The store failed.").because(e.to_string())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_posts_to_a_bucket() {
        assert_eq!(bucket_of("/_store/drafts").as_deref(), Some("drafts"));
        assert_eq!(bucket_of("/_store/drafts/").as_deref(), Some("drafts"));
        for bad in [
            "/_store/",
            "/_store/drafts/key",
            "/_store/UP",
            "/other/drafts",
        ] {
            assert_eq!(bucket_of(bad), None, "{bad}");
        }
    }
}
