//! The endpoint of the local store's presigned URLs: `/_store/<bucket>/<key>`, SigV4 query auth
//! checked by our verifier, over HTTP/1.1 and HTTP/2 alike (HTTP/2 carries the host in
//! `:authority`). Errors are S3-style XML, as a client of S3 expects, and each one is logged
//! once with the request id.
//!
//! A PUT goes in stages: the checksums it declares are read ([`Checks`]), the body is received
//! into a [`Scratch`] file (memory bounded by one chunk; cut when it stalls for the stall timeout
//! or passes the size limit), the digests are compared, then metadata is taken from the headers
//! and the object committed. Any failure at any stage stores nothing and leaves no file.
//! GET and HEAD follow S3's conditional (`If-Match`, `If-None-Match`, `If-Modified-Since`,
//! `If-Unmodified-Since`, RFC 9110 §13.2.2 order) and range rules (see [`ranged`]).
//! A PUT naming `partNumber` and `uploadId` is an UploadPart, served by `parts` with the same
//! stages. A POST to `/_store/<bucket>` is a browser form upload, served by `form`.

mod form;
mod parts;
mod receive;

use super::files::{self, Meta, Scratch};
use super::{LocalStorage, ACCESS_KEY, PREFIX};
use crate::http::response::{full, Body, CONTENT_TYPE, REQUEST_ID};
use base64::Engine;
use bytes::Bytes;
use draftstore_core::{Metadata, StorageError};
use draftstore_signer::{ReceivedRequest, Timestamp};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::StreamBody;
use hyper::body::{Frame, Incoming};
use md5::{Digest as _, Md5};
use sha2::Sha256;
use std::convert::Infallible;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// Why a request to the store was refused: an S3 status, code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// HTTP status, 4xx.
    pub status: u16,
    /// S3 error code (`SignatureDoesNotMatch`, `AccessDenied`, …).
    pub code: &'static str,
    /// What failed, for the client; never a secret.
    pub message: String,
}

/// A request that failed: what the client is told, and for the log what really happened.
#[derive(Debug)]
struct Failure {
    refusal: Refusal,
    /// The server-side cause (an IO error, …), logged, never sent.
    cause: Option<String>,
    /// Extra headers of the answer (`Content-Range` of a 416).
    headers: Vec<(&'static str, String)>,
}

impl Failure {
    fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            refusal: Refusal {
                status,
                code,
                message: message.into(),
            },
            cause: None,
            headers: Vec::new(),
        }
    }

    fn because(mut self, cause: impl Into<String>) -> Self {
        self.cause = Some(cause.into());
        self
    }

    /// A failed file operation: a full disk is 507 `InsufficientStorage` (S3 has no code for
    /// it; this is WebDAV's status, as other S3 servers answer), anything else 500.
    fn io(what: &str, e: &std::io::Error) -> Self {
        if files::is_disk_full(e) {
            Self::new(
                507,
                "InsufficientStorage",
                "The store's disk is full; nothing was stored.",
            )
        } else {
            Self::new(
                500,
                "InternalError",
                "The store failed; nothing was stored.",
            )
        }
        .because(format!("{what}: {e}"))
    }

    fn storage(e: StorageError) -> Self {
        match e {
            StorageError::NotFound { .. } => {
                Self::new(404, "NoSuchKey", "The specified key does not exist.")
            }
            StorageError::NoSuchUpload { .. } => Self::new(
                404,
                "NoSuchUpload",
                "The specified upload does not exist: it was never created, or was completed or aborted.",
            ),
            StorageError::InvalidArgument { reason } => Self::new(400, "InvalidArgument", reason),
            StorageError::PreconditionFailed { .. } => Self::new(
                412,
                "PreconditionFailed",
                "At least one of the preconditions you specified did not hold.",
            ),
            // The only `Unavailable` the local store makes.
            StorageError::Unavailable { reason } => Self::new(
                507,
                "InsufficientStorage",
                "The store's disk is full; nothing was stored.",
            )
            .because(reason),
            other => Self::new(
                500,
                "InternalError",
                "The store failed; see the gateway's log.",
            )
            .because(other.to_string()),
        }
    }

    fn response(self) -> Response<Body> {
        let mut response = s3_error(
            self.refusal.status,
            self.refusal.code,
            &self.refusal.message,
        );
        for (name, value) in self.headers {
            if let Ok(value) = http::HeaderValue::from_str(&value) {
                response.headers_mut().insert(name, value);
            }
        }
        response
    }
}

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

    /// Serves one request for `/_store/…`. A failure is answered with S3-style XML and logged
    /// once with the request id (`x-request-id`): at ERROR with its cause when the store failed
    /// (5xx), at INFO with its S3 code when the client did.
    pub async fn serve(&self, req: Request<Incoming>) -> Response<Body> {
        let id = req
            .headers()
            .get(REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-")
            .to_owned();
        let method = req.method().clone();
        match self.answer(req).await {
            Ok(response) => response,
            Err(failure) => {
                let Refusal { status, code, .. } = &failure.refusal;
                if *status >= 500 {
                    let cause = failure.cause.as_deref().unwrap_or("");
                    tracing::error!(request_id = %id, %method, status, code, cause, "store failed");
                } else {
                    // The code says it all; messages of refused signatures name query
                    // parameters that logs never carry.
                    tracing::info!(request_id = %id, %method, status, code, "store refused a request");
                }
                failure.response()
            }
        }
    }

    async fn answer(&self, req: Request<Incoming>) -> Result<Response<Body>, Failure> {
        if req.method() == Method::POST {
            // Authenticated by its form's signed policy, not by the URL.
            return self.post_form(req).await;
        }
        if !matches!(*req.method(), Method::PUT | Method::GET | Method::HEAD) {
            return Err(Failure::new(
                405,
                "MethodNotAllowed",
                "The store accepts PUT, POST (form uploads), GET and HEAD.",
            ));
        }
        let (parts, body) = req.into_parts();
        let mut headers: Vec<(&str, &str)> = parts
            .headers
            .iter()
            .filter_map(|(n, v)| Some((n.as_str(), v.to_str().ok()?)))
            .collect();
        // HTTP/2 sends the host as `:authority`, which hyper puts in the URI, not in `Host`.
        if !parts.headers.contains_key(http::header::HOST) {
            if let Some(authority) = parts.uri.authority() {
                headers.push(("host", authority.as_str()));
            }
        }
        let now = Timestamp::from_unix(super::now())
            .map_err(|_| Failure::new(500, "InternalError", "The system clock is out of range."))?;
        let (bucket, key, signed_sha256) = self
            .authorize(
                parts.method.as_str(),
                parts.uri.path(),
                parts.uri.query().unwrap_or(""),
                &headers,
                now,
            )
            .map_err(|refusal| Failure {
                refusal,
                cause: None,
                headers: Vec::new(),
            })?;
        match parts.method {
            Method::PUT => match parts::target(parts.uri.query().unwrap_or(""))? {
                Some(part) => {
                    self.put_part(
                        (bucket, key),
                        part,
                        &parts.headers,
                        body,
                        signed_sha256.as_deref(),
                    )
                    .await
                }
                None => {
                    self.put(bucket, key, &parts.headers, body, signed_sha256.as_deref())
                        .await
                }
            },
            method => {
                self.read(bucket, key, &parts.headers, method == Method::HEAD)
                    .await
            }
        }
    }

    async fn put(
        &self,
        bucket: String,
        key: String,
        headers: &HeaderMap,
        body: Incoming,
        signed_sha256: Option<&str>,
    ) -> Result<Response<Body>, Failure> {
        let checks = Checks::from_headers(headers, signed_sha256)?;
        let declared = headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > self.max_object) {
            return Err(too_large());
        }
        let mut digests = checks.digests();
        let (tmp, size) = self.receive(body, &mut digests, self.max_object).await?;
        let done = digests.finish();
        checks.verify(&done)?;
        let meta = Meta {
            key,
            data: String::new(),
            size,
            etag: done.md5.clone(),
            content_type: header(headers, "content-type"),
            metadata: user_metadata(headers),
            checksum_sha256: checks.kept_sha256(&done),
            stored_at: super::now(),
        };
        let etag = meta.etag.clone();
        let told = self.uploaded.get().map(|_| super::Uploaded {
            bucket: bucket.clone(),
            key: meta.key.clone(),
            size,
            etag: etag.clone(),
        });
        self.commit_upload(bucket, meta, tmp).await?;
        if let (Some(hook), Some(uploaded)) = (self.uploaded.get(), told) {
            hook(uploaded);
        }
        let mut response = Response::new(full(Bytes::new()));
        if let Ok(v) = http::HeaderValue::from_str(&format!("\"{etag}\"")) {
            response.headers_mut().insert("etag", v);
        }
        Ok(response)
    }

    /// Commits a received upload under the lock. When this future is dropped before the
    /// commit begins (the client went), nothing is committed and the scratch file goes.
    async fn commit_upload(&self, bucket: String, meta: Meta, tmp: Scratch) -> Result<(), Failure> {
        self.blocking(move |root, lock, gate| {
            let _guard = lock.lock()?;
            gate.enter()?;
            files::commit(root, &bucket, meta, tmp)
        })
        .await
        .map_err(Failure::storage)
    }

    async fn read(
        &self,
        bucket: String,
        key: String,
        headers: &HeaderMap,
        head_only: bool,
    ) -> Result<Response<Body>, Failure> {
        // The data is opened with its metadata: a PUT replacing the object meanwhile removes
        // the file's name, not the bytes this answer streams.
        let (meta, data) = self
            .blocking(move |root, _, _| {
                let (dir, meta) = files::read_meta(root, &bucket, &key)?;
                let data = std::fs::File::open(dir.join(&meta.data))
                    .map_err(|e| files::io_error("open data", &e))?;
                Ok((meta, data))
            })
            .await
            .map_err(Failure::storage)?;
        let modified = UNIX_EPOCH + Duration::from_secs(u64::try_from(meta.stored_at).unwrap_or(0));
        let etag = format!("\"{}\"", meta.etag);
        let validators = [
            ("etag", etag.clone()),
            ("last-modified", httpdate::fmt_http_date(modified)),
        ];
        match preconditions(headers, &meta.etag, modified) {
            Precondition::Proceed => {}
            Precondition::NotModified => {
                let mut builder = Response::builder().status(StatusCode::NOT_MODIFIED);
                for (name, value) in &validators {
                    builder = builder.header(*name, value.as_str());
                }
                return builder.body(full(Bytes::new())).map_err(|e| {
                    Failure::new(500, "InternalError", "The store failed.").because(e.to_string())
                });
            }
            Precondition::Failed => {
                return Err(Failure::new(
                    412,
                    "PreconditionFailed",
                    "At least one of the preconditions you specified did not hold.",
                ))
            }
        }
        let range = match ranged(header(headers, "range").as_deref(), meta.size) {
            Ranged::Whole => None,
            Ranged::Part(start, end) => Some((start, end)),
            Ranged::Unsatisfiable => {
                let mut failure = Failure::new(
                    416,
                    "InvalidRange",
                    "The requested range is not satisfiable.",
                );
                failure
                    .headers
                    .push(("content-range", format!("bytes */{}", meta.size)));
                return Err(failure);
            }
        };
        let (start, length) = match range {
            Some((start, end)) => (start, end - start + 1),
            None => (0, meta.size),
        };
        let mut builder = Response::builder()
            .status(if range.is_some() {
                StatusCode::PARTIAL_CONTENT
            } else {
                StatusCode::OK
            })
            .header("content-length", length)
            .header("accept-ranges", "bytes");
        for (name, value) in &validators {
            builder = builder.header(*name, value.as_str());
        }
        if let Some(ct) = &meta.content_type {
            builder = builder.header(CONTENT_TYPE, ct.as_str());
        }
        for &(name, value) in active_content_guard(meta.content_type.as_deref()) {
            builder = builder.header(name, value);
        }
        for (k, v) in &meta.metadata {
            builder = builder.header(format!("x-amz-meta-{k}"), v.as_str());
        }
        if let Some((start, end)) = range {
            builder = builder.header(
                "content-range",
                format!("bytes {start}-{end}/{}", meta.size),
            );
        }
        let body = if head_only || length == 0 {
            full(Bytes::new())
        } else {
            file_body(tokio::fs::File::from_std(data), start, length).await
        };
        builder.body(body).map_err(|e| {
            Failure::new(500, "InternalError", "The store failed.").because(e.to_string())
        })
    }
}

/// Headers that keep a stored object from acting as a page of the gateway's own origin, where
/// the upload page and the API live: an uploader chooses the content type, so a draft declared
/// `text/html` (or SVG, XML…) would otherwise run its scripts with the page's storage and
/// credentials (stored XSS). `nosniff` always; a CSP `sandbox` (an opaque origin, no scripts)
/// for everything but PDF, which Chromium's viewer will not show in a sandboxed document and
/// which runs no script of the page's origin. Images, audio and video shown through `<img>` or
/// `<video>` ignore the CSP, so previews are unchanged. S3 serves from its own origin.
fn active_content_guard(content_type: Option<&str>) -> &'static [(&'static str, &'static str)] {
    const NOSNIFF: (&str, &str) = ("x-content-type-options", "nosniff");
    const SANDBOX: (&str, &str) = (
        "content-security-policy",
        "sandbox; default-src 'none'; img-src 'self' data:; media-src 'self'; style-src 'unsafe-inline'",
    );
    if is_plain_pdf(content_type.unwrap_or_default()) {
        &[NOSNIFF]
    } else {
        &[NOSNIFF, SANDBOX]
    }
}

/// `application/pdf`, alone or with parameters, and nothing a browser could read as another
/// type. Fetch's "extract a MIME type" splits a `Content-Type` at commas and takes the last
/// valid type, so `application/pdf;,text/html` renders as HTML in Chromium: any comma (even
/// one a quoted parameter would hide) disqualifies, and so does any control character.
fn is_plain_pdf(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("application/pdf")
        && !content_type.contains(',')
        && !content_type.chars().any(char::is_control)
}

fn too_large() -> Failure {
    Failure::new(
        400,
        "EntityTooLarge",
        "The upload exceeds the store's limit; nothing was stored.",
    )
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The `x-amz-meta-*` headers, prefix removed.
fn user_metadata(headers: &HeaderMap) -> Metadata {
    headers
        .iter()
        .filter_map(|(n, v)| {
            Some((
                n.as_str().strip_prefix("x-amz-meta-")?.to_owned(),
                v.to_str().ok()?.to_owned(),
            ))
        })
        .collect()
}

/// A checksum algorithm S3 defines for `x-amz-checksum-<name>` (values are base64 of the
/// big-endian digest).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Algorithm {
    Crc32,
    Crc32c,
    Crc64Nvme,
    Sha1,
    Sha256,
}

impl Algorithm {
    const ALL: [Self; 5] = [
        Self::Crc32,
        Self::Crc32c,
        Self::Crc64Nvme,
        Self::Sha1,
        Self::Sha256,
    ];

    /// Its name in `x-amz-checksum-<name>` (lowercase) and `x-amz-sdk-checksum-algorithm`.
    fn name(self) -> &'static str {
        match self {
            Self::Crc32 => "crc32",
            Self::Crc32c => "crc32c",
            Self::Crc64Nvme => "crc64nvme",
            Self::Sha1 => "sha1",
            Self::Sha256 => "sha256",
        }
    }

    /// Digest length in bytes.
    fn len(self) -> usize {
        match self {
            Self::Crc32 | Self::Crc32c => 4,
            Self::Crc64Nvme => 8,
            Self::Sha1 => 20,
            Self::Sha256 => 32,
        }
    }
}

/// What a PUT declares about its body: one `x-amz-checksum-*` value at most, `Content-MD5`,
/// and a signed `x-amz-content-sha256`. Built before the body is read, so a malformed or
/// unsupported declaration is refused without storing anything.
#[derive(Debug, Default)]
struct Checks {
    checksum: Option<(Algorithm, Vec<u8>)>,
    md5: Option<Vec<u8>>,
    signed_sha256: Option<Vec<u8>>,
}

impl Checks {
    fn from_headers(headers: &HeaderMap, signed_sha256: Option<&str>) -> Result<Self, Failure> {
        let invalid = |message: String| Failure::new(400, "InvalidRequest", message);
        if headers.contains_key("x-amz-trailer") {
            return Err(Failure::new(
                501,
                "NotImplemented",
                "Trailing checksums (x-amz-trailer) are not supported by this store; send the checksum as a header.",
            ));
        }
        let mut checks = Self::default();
        for (name, value) in headers {
            let Some(suffix) = name.as_str().strip_prefix("x-amz-checksum-") else {
                continue;
            };
            if suffix == "type" {
                if value.as_bytes().eq_ignore_ascii_case(b"FULL_OBJECT") {
                    continue;
                }
                return Err(invalid(
                    "x-amz-checksum-type must be FULL_OBJECT for a single PUT.".into(),
                ));
            }
            let algorithm = Algorithm::ALL
                .into_iter()
                .find(|a| a.name() == suffix)
                .ok_or_else(|| {
                    invalid(format!(
                        "{name} is not a checksum this store supports (crc32, crc32c, crc64nvme, sha1, sha256)."
                    ))
                })?;
            if checks.checksum.is_some() {
                return Err(invalid(
                    "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed."
                        .into(),
                ));
            }
            let digest = decode(value.as_bytes(), algorithm.len())
                .ok_or_else(|| invalid(format!("Value for {name} header is invalid.")))?;
            checks.checksum = Some((algorithm, digest));
        }
        if let Some(wanted) = headers.get("x-amz-sdk-checksum-algorithm") {
            let matches = checks
                .checksum
                .as_ref()
                .is_some_and(|(a, _)| wanted.as_bytes().eq_ignore_ascii_case(a.name().as_bytes()));
            if !matches {
                return Err(invalid(
                    "x-amz-sdk-checksum-algorithm needs its x-amz-checksum-<algorithm> header (trailing checksums are not supported)."
                        .into(),
                ));
            }
        }
        if let Some(value) = headers.get("content-md5") {
            checks.md5 = Some(decode(value.as_bytes(), 16).ok_or_else(|| {
                Failure::new(
                    400,
                    "InvalidDigest",
                    "The Content-MD5 you specified was not valid.",
                )
            })?);
        }
        // The verifier accepted only 64 lowercase hex digits here.
        checks.signed_sha256 = signed_sha256.and_then(|h| hex::decode(h).ok());
        Ok(checks)
    }

    /// Hashers for what must be checked (MD5 always: it is the ETag).
    fn digests(&self) -> Digests {
        let algorithm = self.checksum.as_ref().map(|(a, _)| *a);
        let wants = |a: Algorithm| algorithm == Some(a);
        Digests {
            md5: Md5::new(),
            sha256: (wants(Algorithm::Sha256) || self.signed_sha256.is_some()).then(Sha256::new),
            sha1: wants(Algorithm::Sha1).then(sha1::Sha1::new),
            crc: algorithm.and_then(|a| {
                let crc = match a {
                    Algorithm::Crc32 => crc_fast::CrcAlgorithm::Crc32IsoHdlc,
                    Algorithm::Crc32c => crc_fast::CrcAlgorithm::Crc32Iscsi,
                    Algorithm::Crc64Nvme => crc_fast::CrcAlgorithm::Crc64Nvme,
                    Algorithm::Sha1 | Algorithm::Sha256 => return None,
                };
                Some(crc_fast::Digest::new(crc))
            }),
        }
    }

    /// # Errors
    /// `BadDigest` naming the checksum that does not match the body.
    fn verify(&self, done: &Done) -> Result<(), Failure> {
        let bad = |what: &str| {
            Failure::new(
                400,
                "BadDigest",
                format!("The {what} you specified did not match the calculated checksum; nothing was stored."),
            )
        };
        if let Some((algorithm, want)) = &self.checksum {
            if done.checksum(*algorithm).as_deref() != Some(want.as_slice()) {
                return Err(bad(&format!("x-amz-checksum-{}", algorithm.name())));
            }
        }
        if self
            .md5
            .as_ref()
            .is_some_and(|want| hex::encode(want) != done.md5)
        {
            return Err(bad("Content-MD5"));
        }
        if self
            .signed_sha256
            .as_ref()
            .is_some_and(|want| done.sha256.as_deref() != Some(want.as_slice()))
        {
            return Err(bad("x-amz-content-sha256"));
        }
        Ok(())
    }

    /// The base64 SHA-256 to keep with the object: when the client sent one and it held.
    fn kept_sha256(&self, done: &Done) -> Option<String> {
        let sent = matches!(self.checksum, Some((Algorithm::Sha256, _)));
        sent.then_some(done.sha256.as_ref())
            .flatten()
            .map(|d| base64::engine::general_purpose::STANDARD.encode(d))
    }
}

/// Standard base64 of exactly `len` bytes.
fn decode(value: &[u8], len: usize) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(value.trim_ascii())
        .ok()
        .filter(|d| d.len() == len)
}

/// The hashers a body runs through while it is received.
struct Digests {
    md5: Md5,
    sha256: Option<Sha256>,
    sha1: Option<sha1::Sha1>,
    crc: Option<crc_fast::Digest>,
}

/// What the body hashed to.
struct Done {
    /// Hex: the ETag.
    md5: String,
    sha256: Option<Vec<u8>>,
    sha1: Option<Vec<u8>>,
    /// The CRC, in the big-endian bytes of its width.
    crc: Option<u64>,
}

impl Digests {
    /// No digest at all (a placeholder while the real ones are away being updated).
    fn none() -> Self {
        Self {
            md5: Md5::new(),
            sha256: None,
            sha1: None,
            crc: None,
        }
    }

    fn update(&mut self, data: &[u8]) {
        self.md5.update(data);
        if let Some(h) = &mut self.sha256 {
            h.update(data);
        }
        if let Some(h) = &mut self.sha1 {
            h.update(data);
        }
        if let Some(h) = &mut self.crc {
            h.update(data);
        }
    }

    fn finish(self) -> Done {
        Done {
            md5: hex::encode(self.md5.finalize()),
            sha256: self.sha256.map(|h| h.finalize().to_vec()),
            sha1: self.sha1.map(|h| h.finalize().to_vec()),
            crc: self.crc.map(|h| h.finalize()),
        }
    }
}

impl Done {
    fn checksum(&self, algorithm: Algorithm) -> Option<Vec<u8>> {
        match algorithm {
            Algorithm::Sha256 => self.sha256.clone(),
            Algorithm::Sha1 => self.sha1.clone(),
            Algorithm::Crc32 | Algorithm::Crc32c => self
                .crc
                .and_then(|c| u32::try_from(c).ok())
                .map(|c| c.to_be_bytes().to_vec()),
            Algorithm::Crc64Nvme => self.crc.map(|c| c.to_be_bytes().to_vec()),
        }
    }
}

/// What the conditional headers of a GET or HEAD decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Precondition {
    Proceed,
    /// 304.
    NotModified,
    /// 412.
    Failed,
}

/// S3's rules, which are RFC 9110 §13.2.2's order: `If-Match` (412 when no tag matches), else
/// `If-Unmodified-Since` (412 when modified after it); then `If-None-Match` (304 when a tag
/// matches), else `If-Modified-Since` (304 when not modified after it). So `If-Match` true with
/// `If-Unmodified-Since` false is 200, and `If-None-Match` false with `If-Modified-Since` true
/// is 304, as S3 documents. A date that does not parse is ignored.
fn preconditions(headers: &HeaderMap, etag: &str, modified: SystemTime) -> Precondition {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let date = |name: &str| text(name).and_then(|v| httpdate::parse_http_date(v).ok());
    if let Some(list) = text("if-match") {
        if !tag_listed(list, etag) {
            return Precondition::Failed;
        }
    } else if date("if-unmodified-since").is_some_and(|since| modified > since) {
        return Precondition::Failed;
    }
    if let Some(list) = text("if-none-match") {
        if tag_listed(list, etag) {
            return Precondition::NotModified;
        }
    } else if date("if-modified-since").is_some_and(|since| modified <= since) {
        return Precondition::NotModified;
    }
    Precondition::Proceed
}

/// Whether the comma-separated entity-tag list `list` (or `*`) names `etag`. Quotes and a weak
/// `W/` prefix are ignored, as S3 does (its tags are all strong).
fn tag_listed(list: &str, etag: &str) -> bool {
    list.split(',').map(str::trim).any(|tag| {
        tag == "*" || {
            let tag = tag.strip_prefix("W/").unwrap_or(tag);
            tag.trim_matches('"') == etag
        }
    })
}

/// What a `Range` header asks of an object of `size` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ranged {
    /// 200 with everything: no header, another unit, several ranges, or a malformed one.
    Whole,
    /// 206 with bytes `start..=end`.
    Part(u64, u64),
    /// 416 with `Content-Range: bytes */size`.
    Unsatisfiable,
}

/// S3's range rules: one `bytes=` range — `a-b` (`b` past the end is cut to it), `a-`, `-n`
/// (the last `n` bytes; all of them when `n` exceeds the size). A range starting at or past the
/// end, a suffix of 0, or any range of an empty object is unsatisfiable. Everything else — other
/// units, several ranges, bad syntax — is ignored (the whole object), as S3 answers. (SeaweedFS
/// agrees except on bad syntax such as `bytes=9-5`, which it answers 416; we follow S3.)
fn ranged(header: Option<&str>, size: u64) -> Ranged {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Ranged::Whole;
    };
    if spec.contains(',') {
        return Ranged::Whole;
    }
    let Some((a, b)) = spec.split_once('-') else {
        return Ranged::Whole;
    };
    // Digits past u64 are still a number (RFC 9110 §14.1.1 sets no bound), one past any
    // object's end: a start there is 416, an end or a suffix that long means "to the end".
    let number = |s: &str| {
        (!s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()))
            .then(|| s.parse::<u64>().unwrap_or(u64::MAX))
    };
    let (a, b) = (a.trim(), b.trim());
    let last = size.checked_sub(1);
    match (a, b) {
        ("", n) => match (number(n), last) {
            (None, _) => Ranged::Whole,
            (Some(0), _) | (_, None) => Ranged::Unsatisfiable,
            (Some(n), Some(last)) => Ranged::Part(size - n.min(size), last),
        },
        (a, b) => {
            let Some(start) = number(a) else {
                return Ranged::Whole;
            };
            let end = if b.is_empty() { None } else { number(b) };
            if !b.is_empty() && end.is_none() || end.is_some_and(|e| e < start) {
                return Ranged::Whole;
            }
            match last {
                Some(last) if start <= last => {
                    Ranged::Part(start, end.map_or(last, |e| e.min(last)))
                }
                _ => Ranged::Unsatisfiable,
            }
        }
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

/// How much of a file a download reads at a time (64 KiB): each read is a call on tokio's
/// blocking pool, and 32 KiB reads took a 256 MiB download on loopback 1.4× as long.
const READ: usize = 64 * 1024;

/// The most of a download in one body frame (32 KiB, half a read): over HTTP/2 a frame asked
/// for is the download's progress, so a client must take this much per stall limit (a 15 KB/s
/// reader takes one in about 2 s).
const FRAME: usize = 32 * 1024;

/// Streams `length` bytes of `file` from `start`, read [`READ`] at a time and sent in frames of
/// at most [`FRAME`].
async fn file_body(mut file: tokio::fs::File, start: u64, length: u64) -> Body {
    if file.seek(std::io::SeekFrom::Start(start)).await.is_err() {
        return full(Bytes::new());
    }
    let stream = futures_util::stream::unfold(
        (file, length, Bytes::new()),
        |(mut file, left, mut read)| async move {
            if read.is_empty() {
                if left == 0 {
                    return None;
                }
                let mut buf = vec![0_u8; usize::try_from(left).map_or(READ, |left| left.min(READ))];
                match file.read(&mut buf).await {
                    Ok(0) | Err(_) => return None,
                    Ok(n) => {
                        buf.truncate(n);
                        read = Bytes::from(buf);
                    }
                }
            }
            let frame = read.split_to(read.len().min(FRAME));
            let left = left.saturating_sub(frame.len() as u64);
            Some((Ok::<_, Infallible>(Frame::data(frame)), (file, left, read)))
        },
    );
    Body::new(StreamBody::new(stream))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_plain_pdf_goes_unsandboxed() {
        for plain in [
            "application/pdf",
            "APPLICATION/PDF",
            " application/pdf ; name=a.pdf",
        ] {
            assert!(is_plain_pdf(plain), "{plain:?}");
        }
        // Chromium reads the last valid type of a comma list: each of these renders as HTML.
        for hostile in [
            "application/pdf;,text/html",
            "application/pdf;a=,text/html",
            "application/pdf;x=\"y\",text/xml",
            "application/pdf, text/html",
            "application/pdf;x=\"a,b\"",
            "application/pdf\u{0}",
            "text/html",
            "",
        ] {
            assert!(!is_plain_pdf(hostile), "{hostile:?}");
        }
    }

    #[test]
    fn ranges_as_s3_answers_them() {
        use Ranged::{Part, Unsatisfiable, Whole};
        for (header, want) in [
            ("bytes=0-9", Part(0, 9)),
            ("bytes=90-", Part(90, 99)),
            ("bytes=-10", Part(90, 99)),
            ("bytes=-1000", Part(0, 99)),
            ("bytes=50-500", Part(50, 99)),
            ("bytes=99-99", Part(99, 99)),
            ("bytes=0-", Part(0, 99)),
            ("bytes=100-", Unsatisfiable),
            ("bytes=100-200", Unsatisfiable),
            ("bytes=-0", Unsatisfiable),
            ("bytes=99999999999999999999999-", Unsatisfiable),
            ("bytes=0-99999999999999999999999", Part(0, 99)),
            ("bytes=-99999999999999999999999", Part(0, 99)),
            ("bytes=5-1", Whole),
            ("bytes=a-b", Whole),
            ("bytes=-", Whole),
            ("bytes=+1-2", Whole),
            ("bytes=1", Whole),
            ("items=0-1", Whole),
            ("bytes=0-1,3-4", Whole),
            ("bytes=0-1, 100-", Whole),
        ] {
            assert_eq!(ranged(Some(header), 100), want, "{header}");
        }
        assert_eq!(ranged(None, 100), Whole);
        assert_eq!(ranged(Some("bytes=0-0"), 0), Unsatisfiable);
        assert_eq!(ranged(Some("bytes=-5"), 0), Unsatisfiable);
        assert_eq!(ranged(Some("items=0-0"), 0), Whole);
    }

    #[test]
    fn preconditions_in_s3_order() {
        let etag = "abc";
        let modified = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let before = httpdate::fmt_http_date(modified - Duration::from_secs(10));
        let after = httpdate::fmt_http_date(modified + Duration::from_secs(10));
        let at = httpdate::fmt_http_date(modified);
        let cases: &[(&[(&str, &str)], Precondition)] = &[
            (&[], Precondition::Proceed),
            (&[("if-match", "\"abc\"")], Precondition::Proceed),
            (&[("if-match", "abc")], Precondition::Proceed),
            (&[("if-match", "\"x\", \"abc\"")], Precondition::Proceed),
            (&[("if-match", "*")], Precondition::Proceed),
            (&[("if-match", "\"0000\"")], Precondition::Failed),
            (&[("if-unmodified-since", &before)], Precondition::Failed),
            (&[("if-unmodified-since", &at)], Precondition::Proceed),
            (
                &[("if-unmodified-since", "not a date")],
                Precondition::Proceed,
            ),
            // If-Match true wins over If-Unmodified-Since false.
            (
                &[("if-match", "\"abc\""), ("if-unmodified-since", &before)],
                Precondition::Proceed,
            ),
            (&[("if-none-match", "\"abc\"")], Precondition::NotModified),
            (&[("if-none-match", "W/\"abc\"")], Precondition::NotModified),
            (&[("if-none-match", "*")], Precondition::NotModified),
            (&[("if-none-match", "\"x\"")], Precondition::Proceed),
            (&[("if-modified-since", &at)], Precondition::NotModified),
            (&[("if-modified-since", &after)], Precondition::NotModified),
            (&[("if-modified-since", &before)], Precondition::Proceed),
            // If-None-Match false with If-Modified-Since true: 304 (S3 documents this pair).
            (
                &[("if-none-match", "\"abc\""), ("if-modified-since", &before)],
                Precondition::NotModified,
            ),
            (
                &[("if-none-match", "\"x\""), ("if-modified-since", &after)],
                Precondition::Proceed,
            ),
            // 412 comes before 304.
            (
                &[("if-match", "\"0000\""), ("if-none-match", "\"abc\"")],
                Precondition::Failed,
            ),
        ];
        for (given, want) in cases {
            let mut headers = HeaderMap::new();
            for (n, v) in *given {
                headers.insert(*n, http::HeaderValue::from_str(v).unwrap());
            }
            assert_eq!(preconditions(&headers, etag, modified), *want, "{given:?}");
        }
    }

    #[test]
    fn checksums_of_the_crates_match_s3s_examples() {
        // "123456789": the check values of the CRC catalogue (CRC-32/ISO-HDLC cbf43926,
        // CRC-32/ISCSI e3069283, CRC-64/NVME ae8b14860a799888) and of SHA-1/SHA-256, base64.
        let mut headers = HeaderMap::new();
        for (algorithm, value) in [
            (Algorithm::Crc32, "y/Q5Jg=="),
            (Algorithm::Crc32c, "4waSgw=="),
            (Algorithm::Crc64Nvme, "rosUhgp5mIg="),
            (Algorithm::Sha1, "98O8HYCOBHMq32eZZczDTKeuNEE="),
            (
                Algorithm::Sha256,
                "FeKw08M4keuw8e9gnsQZQgwg4yDOlMZfvIwzEkSOsiU=",
            ),
        ] {
            headers.clear();
            headers.insert(
                http::HeaderName::from_bytes(
                    format!("x-amz-checksum-{}", algorithm.name()).as_bytes(),
                )
                .unwrap(),
                http::HeaderValue::from_static(value),
            );
            let checks = Checks::from_headers(&headers, None).unwrap();
            let mut digests = checks.digests();
            digests.update(b"1234");
            digests.update(b"56789");
            let done = digests.finish();
            assert!(checks.verify(&done).is_ok(), "{algorithm:?}");
            let mut other = checks.digests();
            other.update(b"123456780");
            assert_eq!(
                checks.verify(&other.finish()).unwrap_err().refusal.code,
                "BadDigest",
                "{algorithm:?}"
            );
        }
    }

    #[test]
    fn malformed_or_unsupported_checksum_declarations_are_refused() {
        for (pairs, code) in [
            (&[("x-amz-checksum-crc32", "AAAA")][..], "InvalidRequest"),
            (&[("x-amz-checksum-md5", "AAAAAA==")][..], "InvalidRequest"),
            (
                &[
                    ("x-amz-checksum-crc32", "AAAAAA=="),
                    ("x-amz-checksum-sha1", "CgqfKmdylCVXq1NV12r0Qvj2XgE="),
                ][..],
                "InvalidRequest",
            ),
            (
                &[("x-amz-sdk-checksum-algorithm", "CRC32")][..],
                "InvalidRequest",
            ),
            (
                &[("x-amz-trailer", "x-amz-checksum-crc32")][..],
                "NotImplemented",
            ),
            (
                &[("x-amz-checksum-type", "COMPOSITE")][..],
                "InvalidRequest",
            ),
            (&[("content-md5", "not base64!")][..], "InvalidDigest"),
        ] {
            let mut headers = HeaderMap::new();
            for (n, v) in pairs {
                headers.insert(*n, http::HeaderValue::from_static(v));
            }
            let refused = Checks::from_headers(&headers, None).unwrap_err();
            assert_eq!(refused.refusal.code, code, "{pairs:?}");
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
