//! The multipart calls of `draft.v1.DraftService` (issue 15): decode, call the protocol-free
//! [`App`] methods of `api::multipart`, encode. Errors map as every other call's.

use super::codec::Framed;
use super::{constraints, decode, success};
use crate::api::app::App;
use crate::api::error::ApiError;
use crate::api::multipart::rest::checksum_algorithm;
use crate::auth::Tenant;
use crate::store::Presign;
use bytes::Bytes;
use draftstore_core::Storage;
use draftstore_proto::draft::v1 as pb;

/// The multipart RPCs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Call {
    /// `CreateMultipartUpload`.
    Create,
    /// `GetPartUploadURLs`.
    PartUrls,
    /// `ListParts`.
    ListParts,
    /// `CompleteMultipartUpload`.
    Complete,
    /// `AbortMultipartUpload`.
    Abort,
    /// `ListMultipartUploads`.
    List,
}

impl Call {
    /// Every multipart RPC.
    pub const ALL: [Self; 6] = [
        Self::Create,
        Self::PartUrls,
        Self::ListParts,
        Self::Complete,
        Self::Abort,
        Self::List,
    ];

    /// The call at `path`.
    #[must_use]
    pub fn of(path: &str) -> Option<Self> {
        use pb::paths::*;
        Some(match path {
            CREATE_MULTIPART_UPLOAD => Self::Create,
            GET_PART_UPLOAD_URLS => Self::PartUrls,
            LIST_PARTS => Self::ListParts,
            COMPLETE_MULTIPART_UPLOAD => Self::Complete,
            ABORT_MULTIPART_UPLOAD => Self::Abort,
            LIST_MULTIPART_UPLOADS => Self::List,
            _ => return None,
        })
    }

    /// Its method name (the metrics label).
    #[must_use]
    pub const fn label(self) -> &'static str {
        match self {
            Self::Create => "CreateMultipartUpload",
            Self::PartUrls => "GetPartUploadURLs",
            Self::ListParts => "ListParts",
            Self::Complete => "CompleteMultipartUpload",
            Self::Abort => "AbortMultipartUpload",
            Self::List => "ListMultipartUploads",
        }
    }
}

/// The largest message `call` reads: a complete naming its parts may be as large as REST's
/// [`MAX_COMPLETE_BODY`](crate::api::multipart::rest::MAX_COMPLETE_BODY), whatever smaller
/// `DRAFTSTORE_MAX_GRPC_MESSAGE_BYTES` (`max`) says.
#[must_use]
pub fn max_message(call: Call, max: usize) -> usize {
    match call {
        Call::Complete => max.max(crate::api::multipart::rest::MAX_COMPLETE_BODY),
        _ => max,
    }
}

/// Runs one multipart call on its message; the framed response.
///
/// # Errors
/// A malformed message, or what the call fails with.
pub async fn dispatch<B: Storage + Presign>(
    app: &App<B>,
    call: Call,
    message: &[u8],
    tenant: Option<&Tenant>,
) -> Result<Bytes, ApiError> {
    Ok(match call {
        Call::Create => {
            let req: pb::CreateMultipartUploadRequest = decode(message)?;
            let algorithm = Some(req.checksum_algorithm.as_str()).filter(|a| !a.is_empty());
            let sha256 = checksum_algorithm(algorithm)?;
            let declared = constraints(req.constraints)?;
            let made = app
                .create_multipart(tenant, &req.object_name, &declared, req.part_size, sha256)
                .await?;
            pb::CreateMultipartUploadResponse {
                result: success(),
                upload_id: made.upload_id,
                object_name: made.object_name,
                part_size: made.part_size,
                part_count: made.part_count,
                expires_at: made.expires_at,
            }
            .framed()
        }
        Call::PartUrls => {
            let req: pb::GetPartUploadUrlsRequest = decode(message)?;
            let numbers: Vec<u64> = req.part_numbers.iter().map(|&n| u64::from(n)).collect();
            let sums = req
                .checksums_sha256
                .into_iter()
                .map(|(n, sum)| (n.to_string(), sum))
                .collect();
            let signed = app
                .part_urls(tenant, &req.object_name, &req.upload_id, &numbers, &sums)
                .await?;
            pb::GetPartUploadUrlsResponse {
                result: success(),
                parts: signed
                    .iter()
                    .map(|u| pb::PartUploadUrl {
                        part_number: u.part_number,
                        url: u.url.to_owned(),
                        method: "PUT".into(),
                        expires_at: u.expires_at.to_owned(),
                        required_headers: u
                            .required_headers()
                            .map(|(name, value)| (name.to_owned(), value.to_owned()))
                            .collect(),
                        expires_at_cut_by_credentials: u.cut_by_credentials,
                    })
                    .collect(),
            }
            .framed()
        }
        Call::ListParts => {
            let req: pb::ListPartsRequest = decode(message)?;
            let parts = app
                .list_parts(tenant, &req.object_name, &req.upload_id)
                .await?;
            pb::ListPartsResponse {
                result: success(),
                parts: parts
                    .into_iter()
                    .map(|p| pb::UploadedPart {
                        part_number: p.part_number,
                        etag: p.etag,
                        size: p.size,
                    })
                    .collect(),
            }
            .framed()
        }
        Call::Complete => {
            let req: pb::CompleteMultipartUploadRequest = decode(message)?;
            let chosen: Vec<(u64, String)> = req
                .parts
                .into_iter()
                .map(|p| (u64::from(p.part_number), p.etag))
                .collect();
            let chosen = (!chosen.is_empty()).then_some(chosen.as_slice());
            let done = app
                .complete_multipart(tenant, &req.object_name, &req.upload_id, chosen)
                .await?;
            pb::CompleteMultipartUploadResponse {
                result: success(),
                object_name: done.object_name,
                size: done.size,
                etag: done.etag,
            }
            .framed()
        }
        Call::Abort => {
            let req: pb::AbortMultipartUploadRequest = decode(message)?;
            app.abort_multipart(tenant, &req.object_name, &req.upload_id)
                .await?;
            pb::AbortMultipartUploadResponse { result: success() }.framed()
        }
        Call::List => {
            let req: pb::ListMultipartUploadsRequest = decode(message)?;
            let name = Some(req.object_name.as_str()).filter(|n| !n.is_empty());
            let (uploads, truncated) = app.list_multipart(tenant, name, &req.prefix).await?;
            pb::ListMultipartUploadsResponse {
                result: success(),
                uploads: uploads
                    .into_iter()
                    .map(|u| pb::MultipartUpload {
                        upload_id: u.upload_id,
                        object_name: u.object_name,
                        initiated: u.initiated,
                    })
                    .collect(),
                truncated,
            }
            .framed()
        }
    })
}
