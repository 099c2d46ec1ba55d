//! The multipart routes over REST (POST, JSON; issue 15): bodies decoded by the REST adapter's
//! [`decode_json`](crate::api::rest::decode_json) rules, replies in the same shapes as the
//! other routes, errors in the same `{"error": {"code", "message"}}`.

use super::reply::part_urls_reply;
use super::{PartInfo, SHA256};
use crate::api::app::App;
use crate::api::error::{ApiError, Code};
use crate::api::rest::{json, json_text};
use crate::auth::Tenant;
use crate::http::response::Body;
use crate::store::Presign;
use draftstore_core::{Storage, UploadConstraints};
use http::{Response, StatusCode};
use serde::Deserialize;
use serde_json::json as value;
use std::collections::BTreeMap;

/// `POST`: create a multipart upload.
pub const CREATE: &str = "/api/v1/multipart-upload";
/// `POST`: presigned PUTs of parts.
pub const PART_URLS: &str = "/api/v1/multipart-upload/part-urls";
/// `POST`: the parts stored so far.
pub const PARTS: &str = "/api/v1/multipart-upload/parts";
/// `POST`: assemble the parts into the draft.
pub const COMPLETE: &str = "/api/v1/multipart-upload/complete";
/// `POST`: abandon an upload.
pub const ABORT: &str = "/api/v1/multipart-upload/abort";
/// `POST`: the caller's uploads in progress.
pub const LIST: &str = "/api/v1/multipart-upload/list";

/// The multipart routes, each a `POST`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// [`CREATE`].
    Create,
    /// [`PART_URLS`].
    PartUrls,
    /// [`PARTS`].
    Parts,
    /// [`COMPLETE`].
    Complete,
    /// [`ABORT`].
    Abort,
    /// [`LIST`].
    List,
}

impl Op {
    /// Every multipart route.
    pub const ALL: [Self; 6] = [
        Self::Create,
        Self::PartUrls,
        Self::Parts,
        Self::Complete,
        Self::Abort,
        Self::List,
    ];

    /// The route at `path`.
    #[must_use]
    pub fn of(path: &str) -> Option<Self> {
        Some(match path {
            CREATE => Self::Create,
            PART_URLS => Self::PartUrls,
            PARTS => Self::Parts,
            COMPLETE => Self::Complete,
            ABORT => Self::Abort,
            LIST => Self::List,
            _ => return None,
        })
    }

    /// Its path.
    #[must_use]
    pub const fn path(self) -> &'static str {
        match self {
            Self::Create => CREATE,
            Self::PartUrls => PART_URLS,
            Self::Parts => PARTS,
            Self::Complete => COMPLETE,
            Self::Abort => ABORT,
            Self::List => LIST,
        }
    }

    /// Its metrics label.
    #[must_use]
    pub const fn label(self) -> &'static str {
        match self {
            Self::Create => "multipart-upload",
            Self::PartUrls => "multipart-upload/part-urls",
            Self::Parts => "multipart-upload/parts",
            Self::Complete => "multipart-upload/complete",
            Self::Abort => "multipart-upload/abort",
            Self::List => "multipart-upload/list",
        }
    }
}

/// The largest body a complete naming parts may need: 10 000 parts of about 60 bytes each
/// (`{"part_number":10000,"etag":"<32 hex>-…"},`) — more than the default request limit, which
/// every other route keeps. The gRPC call gets the same.
pub const MAX_COMPLETE_BODY: usize = 1024 * 1024;

/// The largest body `op` takes when other bodies take `max` bytes: a complete may be as
/// large as [`MAX_COMPLETE_BODY`].
#[must_use]
pub fn max_body(op: Op, max: usize) -> usize {
    match op {
        Op::Complete => max.max(MAX_COMPLETE_BODY),
        _ => max,
    }
}

/// The body of `POST /api/v1/multipart-upload`.
#[derive(Debug, Deserialize)]
pub struct CreateBody {
    /// The object's name (its tenant's folder is added).
    pub object_name: String,
    /// The `Content-Type` the object gets.
    pub content_type: Option<String>,
    /// The whole object's size in bytes: the parts must add up to it.
    pub content_length: Option<u64>,
    /// Bytes per part, 5 MiB..=5 GiB; absent: the server chooses.
    pub part_size: Option<u64>,
    /// `"SHA256"`: every part URL then needs its checksum.
    pub checksum_algorithm: Option<String>,
    /// Refused (400): with multipart, checksums are per part.
    pub checksum_sha256: Option<String>,
    /// `x-amz-meta-*` pairs the object gets.
    #[serde(default, deserialize_with = "crate::api::rest::unique_map")]
    pub metadata: Option<BTreeMap<String, String>>,
}

/// Whether `algorithm` asks for per-part SHA-256 (`"SHA256"`; absent: none).
///
/// # Errors
/// `INVALID_REQUEST` for any other value.
pub fn checksum_algorithm(algorithm: Option<&str>) -> Result<bool, ApiError> {
    match algorithm {
        None => Ok(false),
        Some(SHA256) => Ok(true),
        Some(other) => Err(ApiError::new(
            Code::InvalidRequest,
            format!(
                "invalid field `checksum_algorithm`: {:?} is not \"SHA256\" (the one algorithm offered)",
                other.chars().take(32).collect::<String>()
            ),
        )),
    }
}

/// The body of `POST /api/v1/multipart-upload/part-urls`.
#[derive(Debug, Deserialize)]
pub struct PartUrlsBody {
    /// The object's name.
    pub object_name: String,
    /// As created.
    pub upload_id: String,
    /// 1..=1000 distinct numbers in 1..=10 000.
    pub part_numbers: Vec<u64>,
    /// Base64 SHA-256 of each part, keyed by its decimal number.
    pub checksums_sha256: Option<BTreeMap<String, String>>,
}

/// The body of `POST /api/v1/multipart-upload/parts` and `/abort`.
#[derive(Debug, Deserialize)]
pub struct UploadBody {
    /// The object's name.
    pub object_name: String,
    /// As created.
    pub upload_id: String,
}

/// One part named at complete.
#[derive(Debug, Deserialize)]
pub struct CompletePart {
    /// Its number.
    pub part_number: u64,
    /// Its ETag, as `parts` or the PUT answered (quotes allowed).
    pub etag: String,
}

/// The body of `POST /api/v1/multipart-upload/complete`.
#[derive(Debug, Deserialize)]
pub struct CompleteBody {
    /// The object's name.
    pub object_name: String,
    /// As created.
    pub upload_id: String,
    /// In ascending order; absent or `null`: every uploaded part, in order.
    pub parts: Option<Vec<CompletePart>>,
}

/// The body of `POST /api/v1/multipart-upload/list`.
#[derive(Debug, Deserialize)]
pub struct ListBody {
    /// Only the uploads of this name; absent: all of the caller's.
    pub object_name: Option<String>,
    /// Only the uploads of names starting with this; absent, `null` or empty: all.
    pub prefix: Option<String>,
}

/// Handles one multipart route with its decoded body (`body`: the JSON text).
///
/// # Errors
/// What the body or the call fails with.
pub async fn handle<B: Storage + Presign>(
    app: &App<B>,
    tenant: Option<&Tenant>,
    op: Op,
    body: &[u8],
) -> Result<Response<Body>, ApiError> {
    use crate::api::rest::decode_json;
    match op {
        Op::Create => create(app, tenant, decode_json(body)?).await,
        Op::PartUrls => {
            let body: PartUrlsBody = decode_json(body)?;
            let checksums = body.checksums_sha256.unwrap_or_default();
            let signed = app
                .part_urls(
                    tenant,
                    &body.object_name,
                    &body.upload_id,
                    &body.part_numbers,
                    &checksums,
                )
                .await?;
            Ok(json_text(StatusCode::OK, part_urls_reply(&signed)))
        }
        Op::Parts => {
            let body: UploadBody = decode_json(body)?;
            let parts = app
                .list_parts(tenant, &body.object_name, &body.upload_id)
                .await?;
            json(
                StatusCode::OK,
                &value!({"parts": parts.iter().map(part).collect::<Vec<_>>()}),
            )
        }
        Op::Complete => {
            let body: CompleteBody = decode_json(body)?;
            let chosen: Option<Vec<(u64, String)>> = body
                .parts
                .map(|parts| parts.into_iter().map(|p| (p.part_number, p.etag)).collect());
            let done = app
                .complete_multipart(
                    tenant,
                    &body.object_name,
                    &body.upload_id,
                    chosen.as_deref(),
                )
                .await?;
            json(
                StatusCode::OK,
                &value!({"object_name": done.object_name, "size": done.size, "etag": done.etag}),
            )
        }
        Op::Abort => {
            let body: UploadBody = decode_json(body)?;
            app.abort_multipart(tenant, &body.object_name, &body.upload_id)
                .await?;
            json(StatusCode::OK, &value!({}))
        }
        Op::List => {
            let body: ListBody = decode_json(body)?;
            let (uploads, truncated) = app
                .list_multipart(
                    tenant,
                    body.object_name.as_deref(),
                    body.prefix.as_deref().unwrap_or_default(),
                )
                .await?;
            let uploads: Vec<_> = uploads
                .iter()
                .map(|u| value!({"upload_id": u.upload_id, "object_name": u.object_name, "initiated": u.initiated}))
                .collect();
            json(
                StatusCode::OK,
                &value!({ "uploads": uploads, "truncated": truncated }),
            )
        }
    }
}

async fn create<B: Storage + Presign>(
    app: &App<B>,
    tenant: Option<&Tenant>,
    body: CreateBody,
) -> Result<Response<Body>, ApiError> {
    let sha256 = checksum_algorithm(body.checksum_algorithm.as_deref())?;
    let declared = UploadConstraints::new(
        body.content_type,
        body.content_length,
        body.checksum_sha256,
        body.metadata.unwrap_or_default(),
    )?;
    let made = app
        .create_multipart(tenant, &body.object_name, &declared, body.part_size, sha256)
        .await?;
    let mut reply = value!({
        "upload_id": made.upload_id,
        "object_name": made.object_name,
        "part_size": made.part_size,
        "expires_at": made.expires_at,
    });
    if let (Some(object), Some(count)) = (reply.as_object_mut(), made.part_count) {
        object.insert("part_count".into(), count.into());
    }
    json(StatusCode::OK, &reply)
}

fn part(p: &PartInfo) -> serde_json::Value {
    value!({"part_number": p.part_number, "etag": p.etag, "size": p.size})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::rest::decode_json;

    #[test]
    fn paths_parse_to_ops_exactly() {
        for op in Op::ALL {
            assert_eq!(Op::of(op.path()), Some(op));
        }
        for unknown in [
            "/api/v1/multipart-upload/",
            "/api/v1/multipart-upload/parts/",
            "/api/v1/multipart-upload/nope",
        ] {
            assert_eq!(Op::of(unknown), None, "{unknown}");
        }
    }

    #[test]
    fn bodies_name_wrong_fields_and_null_is_absent() {
        let e = decode_json::<PartUrlsBody>(
            br#"{"object_name":"a","upload_id":"u","part_numbers":[1,-2]}"#,
        )
        .unwrap_err();
        assert_eq!(e.code, Code::InvalidRequest);
        assert!(e.message.contains("`part_numbers[1]`"), "{}", e.message);
        let e = decode_json::<CompleteBody>(
            br#"{"object_name":"a","upload_id":"u","parts":[{"part_number":1}]}"#,
        )
        .unwrap_err();
        assert!(e.message.contains("etag"), "{}", e.message);
        let body: CompleteBody =
            decode_json(br#"{"object_name":"a","upload_id":"u","parts":null}"#).unwrap();
        assert!(body.parts.is_none());
        let body: CreateBody = decode_json(
            br#"{"object_name":"a","content_type":null,"content_length":null,"part_size":null,"checksum_algorithm":null,"checksum_sha256":null,"metadata":null}"#,
        )
        .unwrap();
        assert!(body.part_size.is_none());
        let _: ListBody = decode_json(br#"{"object_name":null}"#).unwrap();
        let _: ListBody = decode_json(b"{}").unwrap();
    }

    #[test]
    fn sha256_is_the_one_checksum_algorithm() {
        assert!(!checksum_algorithm(None).unwrap());
        assert!(checksum_algorithm(Some("SHA256")).unwrap());
        for bad in ["sha256", "CRC32", ""] {
            let e = checksum_algorithm(Some(bad)).unwrap_err();
            assert!(e.message.contains("`checksum_algorithm`"), "{}", e.message);
        }
    }
}
