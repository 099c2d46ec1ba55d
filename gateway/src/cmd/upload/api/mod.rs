//! The REST calls of the upload flow (README "REST" and issue 15's multipart routes), each a
//! `POST` of JSON answered with JSON or `{"error": {"code", "message"}}`. Calls the server may
//! have failed to answer (no connection, 429, 5xx) are tried again with backoff; what they
//! still cannot do becomes one [`Exit`]: 69 when the API was never reached, else 1 with the
//! server's status, code and message. The token goes in `Authorization` only, never in a message.

mod error;
mod replies;

pub use error::describe;
pub use replies::{Completed, Confirmed, Created, Listed, PartUrl, Presigned, StoredPart};

use super::settings::{Settings, Token};
use super::{failed, transfer::backoff};
use crate::cmd::exit::Exit;
use error::{CallError, ErrorBody};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// Attempts of one API call.
const API_ATTEMPTS: u32 = 4;
/// The longest an API call may take (they are small JSON calls).
const API_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest `complete` and `confirm` may take: each may copy the whole object (the embedded
/// store copies the parts into one file, a confirm copies the draft), seconds per GiB on a busy
/// disk. A client that gave up earlier would try again while the first attempt still ran, and
/// be told the upload is gone once that attempt completed it. The server's own time limit
/// (`DRAFTSTORE_REQUEST_TIMEOUT_MS`) still applies.
const COPY_TIMEOUT: Duration = Duration::from_secs(600);

/// The API client.
#[derive(Debug)]
pub struct Api {
    client: reqwest::Client,
    base: reqwest::Url,
    token: Option<Token>,
}

impl Api {
    /// A client of `settings.endpoint` (HTTP/1.1 or h2 over TLS, 5 s to connect).
    ///
    /// # Errors
    /// Exit 69 when no HTTP client can be built (no TLS roots).
    pub fn new(settings: &Settings) -> Result<Self, Exit> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| Exit::unavailable(format!("cannot build an HTTP client: {e}")))?;
        Ok(Self {
            client,
            base: settings.endpoint.clone(),
            token: settings.token.clone(),
        })
    }

    /// The HTTP client, shared with the PUTs to storage.
    #[must_use]
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// `POST /api/v1/upload-url`.
    ///
    /// # Errors
    /// See the module doc.
    pub async fn upload_url(
        &self,
        object_name: &str,
        content_type: Option<&str>,
        content_length: u64,
        checksum_sha256: Option<&str>,
    ) -> Result<Presigned, Exit> {
        let body = serde_json::json!({
            "object_name": object_name,
            "content_type": content_type,
            "content_length": content_length,
            "checksum_sha256": checksum_sha256,
        });
        self.call("api/v1/upload-url", &body).await
    }

    /// `POST /api/v1/multipart-upload`.
    ///
    /// # Errors
    /// See the module doc.
    pub async fn create(
        &self,
        object_name: &str,
        content_type: Option<&str>,
        content_length: u64,
        part_size: Option<u64>,
        checksum: bool,
    ) -> Result<Created, Exit> {
        let body = serde_json::json!({
            "object_name": object_name,
            "content_type": content_type,
            "content_length": content_length,
            "part_size": part_size,
            "checksum_algorithm": checksum.then_some("SHA256"),
        });
        self.call("api/v1/multipart-upload", &body).await
    }

    /// `POST /api/v1/multipart-upload/part-urls` for one part (a fresh URL per attempt).
    ///
    /// # Errors
    /// See the module doc; an answer without the part is exit 1.
    pub async fn part_url(
        &self,
        object_name: &str,
        upload_id: &str,
        part_number: u32,
        checksum_sha256: Option<&str>,
    ) -> Result<Presigned, Exit> {
        #[derive(Deserialize)]
        struct Parts {
            parts: Vec<PartUrl>,
        }
        let mut body = serde_json::json!({
            "object_name": object_name,
            "upload_id": upload_id,
            "part_numbers": [part_number],
        });
        if let (Some(sum), Some(map)) = (checksum_sha256, body.as_object_mut()) {
            map.insert(
                "checksums_sha256".into(),
                serde_json::json!({ part_number.to_string(): sum }),
            );
        }
        let answer: Parts = self
            .call("api/v1/multipart-upload/part-urls", &body)
            .await?;
        answer
            .parts
            .into_iter()
            .find(|p| p.part_number == part_number)
            .map(|p| p.presigned)
            .ok_or_else(|| failed(format!("part-urls gave no URL for part {part_number}")))
    }

    /// `POST /api/v1/multipart-upload/parts`: every part stored.
    ///
    /// # Errors
    /// See the module doc.
    pub async fn parts(&self, object_name: &str, upload_id: &str) -> Result<Vec<StoredPart>, Exit> {
        #[derive(Deserialize)]
        struct Parts {
            parts: Vec<StoredPart>,
        }
        let body = serde_json::json!({"object_name": object_name, "upload_id": upload_id});
        let answer: Parts = self.call("api/v1/multipart-upload/parts", &body).await?;
        Ok(answer.parts)
    }

    /// `POST /api/v1/multipart-upload/list` for one object name; none from a server without
    /// the route.
    ///
    /// # Errors
    /// See the module doc.
    pub async fn list(&self, object_name: &str) -> Result<Vec<Listed>, Exit> {
        #[derive(Deserialize)]
        struct Uploads {
            uploads: Vec<Listed>,
        }
        let body = serde_json::json!({ "object_name": object_name });
        match self
            .try_call::<Uploads>("api/v1/multipart-upload/list", &body, API_TIMEOUT)
            .await
        {
            Ok(answer) => Ok(answer.uploads),
            Err(e) if e.no_such_route() => Ok(Vec::new()),
            Err(e) => Err(e.into()),
        }
    }

    /// `POST /api/v1/multipart-upload/complete` with every part, in order.
    ///
    /// # Errors
    /// See the module doc.
    pub async fn complete(
        &self,
        object_name: &str,
        upload_id: &str,
        parts: &BTreeMap<u32, String>,
    ) -> Result<Completed, Exit> {
        let parts: Vec<_> = parts
            .iter()
            .map(|(n, etag)| serde_json::json!({"part_number": n, "etag": etag}))
            .collect();
        let body = serde_json::json!({
            "object_name": object_name, "upload_id": upload_id, "parts": parts,
        });
        self.call_within("api/v1/multipart-upload/complete", &body, COPY_TIMEOUT)
            .await
    }

    /// `POST /api/v1/confirm-upload`.
    ///
    /// # Errors
    /// See the module doc.
    pub async fn confirm(&self, object_name: &str, overwrite: bool) -> Result<Confirmed, Exit> {
        let body = serde_json::json!({"object_name": object_name, "overwrite": overwrite});
        self.call_within("api/v1/confirm-upload", &body, COPY_TIMEOUT)
            .await
    }

    /// One call, tried again while the server may not have answered it.
    async fn call<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<T, Exit> {
        self.call_within(path, body, API_TIMEOUT).await
    }

    /// [`Api::call`] with its own time limit per attempt.
    async fn call_within<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &serde_json::Value,
        timeout: Duration,
    ) -> Result<T, Exit> {
        self.try_call(path, body, timeout).await.map_err(Exit::from)
    }

    async fn try_call<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &serde_json::Value,
        timeout: Duration,
    ) -> Result<T, CallError> {
        let route = format!("/{path}");
        let url = self
            .base
            .join(path)
            .map_err(|e| CallError::Broken(format!("{route}: {e}")))?;
        let mut reached = false;
        let mut attempt = 0;
        loop {
            let mut request = self
                .client
                .post(url.clone())
                .timeout(timeout)
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(body.to_string());
            if let Some(Token(value)) = &self.token {
                request = request.header(http::header::AUTHORIZATION, value.clone());
            }
            let (retry, error) = match request.send().await {
                Ok(response) => {
                    reached = true;
                    let status = response.status();
                    let text = response.text().await.unwrap_or_default();
                    if status.is_success() {
                        return serde_json::from_str(&text).map_err(|e| {
                            CallError::Broken(format!(
                                "{route} answered {status} with unreadable JSON: {e}"
                            ))
                        });
                    }
                    let retry = status.is_server_error() || status.as_u16() == 429;
                    let (code, message) = match serde_json::from_str::<ErrorBody>(&text) {
                        Ok(ErrorBody { error }) => (Some(error.code), error.message),
                        Err(_) => (None, text.chars().take(200).collect()),
                    };
                    let refused = CallError::Refused {
                        route: route.clone(),
                        status: status.as_u16(),
                        code,
                        message,
                    };
                    (retry, refused)
                }
                Err(e) if reached => (
                    true,
                    CallError::Broken(format!("{route}: {}", describe(&e))),
                ),
                Err(e) => (
                    true,
                    CallError::Unreachable(format!(
                        "cannot reach the DraftStore API at {}: {}",
                        self.base,
                        describe(&e)
                    )),
                ),
            };
            attempt += 1;
            if !retry || attempt >= API_ATTEMPTS {
                return Err(error);
            }
            tokio::time::sleep(backoff(attempt)).await;
        }
    }
}
