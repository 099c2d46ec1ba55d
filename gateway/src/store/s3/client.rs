//! One signed S3 call over a pooled HTTP client: sign with `draftstore-signer`, send with a
//! timeout, read a bounded body, turn failures into typed errors, and retry what may be retried
//! with jittered backoff within the attempt budget.

use super::credentials::CredentialCache;
use super::errors::classify;
use super::retry::RetryPolicy;
use super::xml::{is_error_document, parse, ErrorBody};
use draftstore_core::StorageError;
use draftstore_signer::{Addressing, Endpoint, Method, Payload, Request, Timestamp, EMPTY_SHA256};
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// One S3 request.
pub struct Call<'a> {
    /// The S3 operation, for metrics (`HeadObject`, …).
    pub op: &'static str,
    /// `bucket/key`, for error messages.
    pub what: String,
    pub method: Method,
    pub bucket: &'a str,
    pub key: &'a str,
    pub query: &'a [(&'a str, &'a str)],
    /// Signed and sent. Names lowercase.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Bodies larger than this are refused (S3's XML answers are small).
    pub max_body: usize,
    /// A 200 answer may still carry an `<Error>` document (copies, multipart completion).
    pub error_in_200: bool,
}

impl<'a> Call<'a> {
    pub fn new(op: &'static str, method: Method, bucket: &'a str, key: &'a str) -> Self {
        let what = if key.is_empty() {
            bucket.to_owned()
        } else {
            format!("{bucket}/{key}")
        };
        Self {
            op,
            what,
            method,
            bucket,
            key,
            query: &[],
            headers: Vec::new(),
            body: Vec::new(),
            max_body: 8 << 20,
            error_in_200: false,
        }
    }

    /// Gives the call `body` with its `content-type` and the `content-md5` S3 requires of
    /// DeleteObjects and of every bucket sub-resource PUT (cors, policy, versioning).
    pub fn with_body(&mut self, content_type: &str, body: Vec<u8>) {
        use base64::Engine;
        use md5::{Digest, Md5};
        self.headers.push((
            "content-md5".into(),
            base64::engine::general_purpose::STANDARD.encode(Md5::digest(&body)),
        ));
        self.headers
            .push(("content-type".into(), content_type.to_owned()));
        self.body = body;
    }
}

/// A successful answer.
pub struct Answer {
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

/// A failed call: the typed error, plus S3's own code for the few callers that need it.
#[derive(Debug)]
pub struct Failure {
    pub code: String,
    pub error: StorageError,
}

impl From<Failure> for StorageError {
    fn from(f: Failure) -> Self {
        f.error
    }
}

fn failure(error: StorageError) -> Failure {
    Failure {
        code: String::new(),
        error,
    }
}

pub struct Client {
    http: reqwest::Client,
    credentials: Arc<CredentialCache>,
    endpoint: Endpoint,
    addressing: Addressing,
    retry: RetryPolicy,
    attempts: AtomicU64,
}

impl Client {
    pub fn new(
        http: reqwest::Client,
        credentials: Arc<CredentialCache>,
        endpoint: Endpoint,
        addressing: Addressing,
        retry: RetryPolicy,
    ) -> Self {
        Self {
            http,
            credentials,
            endpoint,
            addressing,
            retry,
            attempts: AtomicU64::new(0),
        }
    }

    pub fn credentials(&self) -> &CredentialCache {
        &self.credentials
    }

    /// HTTP requests sent so far, retries included.
    pub fn attempts(&self) -> u64 {
        self.attempts.load(Ordering::Relaxed)
    }

    /// Sends `call`, retrying retryable failures.
    pub async fn send(&self, call: &Call<'_>) -> Result<Answer, Failure> {
        let mut attempt = 1;
        loop {
            match self.send_once(call).await {
                Err(f) if f.error.is_retryable() && attempt < self.retry.max_attempts => {
                    crate::metrics::get()
                        .s3_retries
                        .get_or_create(&crate::metrics::OperationLabels { operation: call.op })
                        .inc();
                    tracing::debug!(what = %call.what, attempt, error = %f.error, "retrying S3 call");
                    tokio::time::sleep(self.retry.jittered(attempt)).await;
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    async fn send_once(&self, call: &Call<'_>) -> Result<Answer, Failure> {
        self.attempts.fetch_add(1, Ordering::Relaxed);
        let started = std::time::Instant::now();
        let result = self.attempt(call).await;
        let metrics = crate::metrics::get();
        let outcome = result
            .as_ref()
            .map_or_else(|f| crate::metrics::outcome(&f.error), |_| "ok");
        metrics
            .s3_calls
            .get_or_create(&crate::metrics::S3Labels {
                operation: call.op,
                outcome,
            })
            .inc();
        metrics
            .s3_seconds
            .get_or_create(&crate::metrics::OperationLabels { operation: call.op })
            .observe(started.elapsed().as_secs_f64());
        result
    }

    async fn attempt(&self, call: &Call<'_>) -> Result<Answer, Failure> {
        let payload = if call.body.is_empty() {
            EMPTY_SHA256.to_owned()
        } else {
            hex::encode(Sha256::digest(&call.body))
        };
        let headers: Vec<(&str, &str)> = call
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let request = Request {
            method: call.method,
            endpoint: &self.endpoint,
            addressing: self.addressing,
            bucket: call.bucket,
            key: call.key,
            headers: &headers,
            query: call.query,
            payload: Payload::Sha256Hex(&payload),
        };
        let current = self.credentials.for_call().await.map_err(failure)?;
        let signed = current.signer.sign_headers(&request, now()?).map_err(|e| {
            failure(StorageError::Backend {
                reason: format!("{}: cannot sign: {e}", call.what),
            })
        })?;
        let method =
            reqwest::Method::from_bytes(call.method.as_str().as_bytes()).map_err(|_| {
                failure(StorageError::Backend {
                    reason: "bad method".into(),
                })
            })?;
        let mut builder = self.http.request(method, &signed.url);
        for (name, value) in call
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .chain(signed.headers.iter().map(|(n, v)| (*n, v.as_str())))
        {
            builder = builder.header(name, value);
        }
        let response = builder
            .body(call.body.clone())
            .send()
            .await
            .map_err(|e| transport(&call.what, &e))?;
        let status = response.status().as_u16();
        let response_headers = response.headers().clone();
        let body = read_bounded(response, call.max_body, &call.what).await?;
        if (200..300).contains(&status) && !(call.error_in_200 && is_error_document(&body)) {
            return Ok(Answer {
                headers: response_headers,
                body,
            });
        }
        let parsed: ErrorBody = parse(&body, &call.what).unwrap_or_default();
        // A 200 with an error document is S3 failing mid-way: treat it as a 500.
        let status = if status < 300 { 500 } else { status };
        let mut error = classify(status, &parsed.code, &parsed.message, &call.what);
        if let StorageError::Denied { reason } = &mut error {
            let versioned = call.query.iter().any(|(k, _)| *k == "versionId")
                || call
                    .headers
                    .iter()
                    .any(|(n, v)| n == "x-amz-copy-source" && v.contains("versionId="))
                || (call.op == "DeleteObjects"
                    && call.body.windows(11).any(|w| w == b"<VersionId>"));
            let copy_source = call
                .headers
                .iter()
                .find(|(n, _)| n == "x-amz-copy-source")
                .map(|(_, v)| v.as_str());
            let needs = super::errors::needed(call.op, versioned, copy_source, call.bucket);
            *reason = super::errors::denied_reason(reason, &parsed.code, &needs);
        }
        Err(Failure {
            error,
            code: parsed.code,
        })
    }
}

fn now() -> Result<Timestamp, Failure> {
    crate::clock::timestamp_now().ok_or_else(|| {
        failure(StorageError::Backend {
            reason: "system clock out of range".into(),
        })
    })
}

fn transport(what: &str, e: &reqwest::Error) -> Failure {
    if e.is_builder() {
        return failure(StorageError::Backend {
            reason: format!("{what}: invalid request: {e}"),
        });
    }
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "transport error"
    };
    failure(StorageError::Unavailable {
        reason: format!("{what}: {kind}"),
    })
}

async fn read_bounded(
    mut response: reqwest::Response,
    max: usize,
    what: &str,
) -> Result<Vec<u8>, Failure> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| transport(what, &e))? {
        if body.len() + chunk.len() > max {
            return Err(failure(StorageError::Backend {
                reason: format!("{what}: answer larger than {max} bytes"),
            }));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
