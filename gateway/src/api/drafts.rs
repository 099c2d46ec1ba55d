//! The caller's drafts, listed (issue 16): what the upload page shows, each with the moment
//! sweep may remove it. REST `POST /api/v1/list-drafts` `{"prefix"?}` →
//! `{"drafts": [{"object_name", "size", "last_modified", "expires_at"}], "truncated"}` and gRPC
//! `ListDrafts`, both thin codecs over [`App::list_drafts`].
//!
//! Only the caller's tenant folder is listed (its folder cut from each name), DraftStore's own
//! `.draftstore/` keys never, and at most [`MAX_DRAFTS`] entries in key order (`truncated`
//! says more follow: narrow the prefix).

use crate::api::app::App;
use crate::api::error::ApiError;
use crate::api::grpc::{decode, success};
use crate::api::prefix::key_prefix;
use crate::auth::Tenant;
use crate::store::Presign;
use bytes::Bytes;
use draftstore_core::Storage;
use draftstore_proto::draft::v1 as pb;
use draftstore_signer::Timestamp;
use serde::{Deserialize, Serialize};

/// `POST`: the caller's drafts.
pub const LIST_DRAFTS: &str = "/api/v1/list-drafts";

/// The most drafts one listing returns.
pub const MAX_DRAFTS: usize = 1000;

/// Keys asked of the store per page.
const PAGE: u16 = 1000;

/// One draft, as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Draft {
    /// The name as the caller gave it (without the tenant's folder).
    pub object_name: String,
    /// Bytes.
    pub size: u64,
    /// When it was stored, RFC 3339 UTC.
    pub last_modified: String,
    /// When sweep may remove it (stored + `OBJECT_LIFETIME`), RFC 3339 UTC.
    pub expires_at: String,
}

/// A listing: the drafts in key order, and whether more follow.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Drafts {
    /// At most [`MAX_DRAFTS`].
    pub drafts: Vec<Draft>,
    /// More drafts match than were returned.
    pub truncated: bool,
}

/// The body of `POST /api/v1/list-drafts`.
#[derive(Debug, Deserialize)]
pub struct ListDraftsBody {
    /// Only names starting with this; absent, `null` or empty: all.
    pub prefix: Option<String>,
}

impl<B: Storage + Presign> App<B> {
    /// The caller's drafts whose names start with `prefix`, at most [`MAX_DRAFTS`].
    ///
    /// # Errors
    /// A prefix no name can start with (400 `INVALID_REQUEST`); storage failures.
    pub async fn list_drafts(
        &self,
        tenant: Option<&Tenant>,
        prefix: &str,
    ) -> Result<Drafts, ApiError> {
        let listed = key_prefix(tenant, prefix)?;
        let folder = tenant.map(|t| format!("{}/", t.folder()));
        let mut out = Drafts::default();
        let mut continuation: Option<String> = None;
        loop {
            let page = self
                .store
                .list_objects(&self.buckets.draft, &listed, continuation.as_deref(), PAGE)
                .await?;
            for object in page.objects {
                if !crate::api::prefix::listed(&object.key) {
                    continue;
                }
                let name = match &folder {
                    Some(folder) => match object.key.strip_prefix(folder.as_str()) {
                        Some(rest) => rest.to_owned(),
                        None => continue,
                    },
                    None => object.key,
                };
                if out.drafts.len() == MAX_DRAFTS {
                    out.truncated = true;
                    return Ok(out);
                }
                let at = |unix: i64| {
                    Timestamp::from_unix(unix)
                        .map(|t| t.rfc3339())
                        .unwrap_or_default()
                };
                let lifetime = i64::try_from(self.object_lifetime).unwrap_or(i64::MAX);
                out.drafts.push(Draft {
                    object_name: name,
                    size: object.size,
                    last_modified: at(object.last_modified),
                    expires_at: at(object.last_modified.saturating_add(lifetime)),
                });
            }
            match page.next {
                Some(next) => continuation = Some(next),
                None => return Ok(out),
            }
        }
    }
}

/// The REST reply of `POST /api/v1/list-drafts` for `body`.
///
/// # Errors
/// As [`App::list_drafts`]; `ENCODE`.
pub async fn rest<B: Storage + Presign>(
    app: &App<B>,
    tenant: Option<&Tenant>,
    body: ListDraftsBody,
) -> Result<http::Response<crate::http::response::Body>, ApiError> {
    let listed = app
        .list_drafts(tenant, body.prefix.as_deref().unwrap_or(""))
        .await?;
    crate::api::rest::json(http::StatusCode::OK, &listed)
}

/// The gRPC `ListDrafts` call on its message; the framed reply.
///
/// # Errors
/// A malformed message, or as [`App::list_drafts`].
pub async fn grpc<B: Storage + Presign>(
    app: &App<B>,
    message: &[u8],
    tenant: Option<&Tenant>,
) -> Result<Bytes, ApiError> {
    use crate::api::grpc::codec::Framed;
    let req: pb::ListDraftsRequest = decode(message)?;
    let listed = app.list_drafts(tenant, &req.prefix).await?;
    Ok(pb::ListDraftsResponse {
        result: success(),
        drafts: listed
            .drafts
            .into_iter()
            .map(|d| pb::DraftObject {
                object_name: d.object_name,
                size: d.size,
                last_modified: d.last_modified,
                expires_at: d.expires_at,
            })
            .collect(),
        truncated: listed.truncated,
    }
    .framed())
}
