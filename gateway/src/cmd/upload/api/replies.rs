//! The JSON answers of the REST routes the client calls (README "REST", issue 15's
//! multipart routes); fields it does not use are ignored.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A presigned PUT: the URL and the headers it must carry.
#[derive(Debug, Deserialize)]
pub struct Presigned {
    /// The URL (`upload_url` for a single upload, `url` for a part).
    #[serde(alias = "upload_url")]
    pub url: String,
    /// Headers the PUT must send exactly.
    #[serde(default)]
    pub required_headers: BTreeMap<String, String>,
}

/// A part's URL, from `part-urls`.
#[derive(Debug, Deserialize)]
pub struct PartUrl {
    /// Its part number.
    pub part_number: u32,
    /// The URL and headers.
    #[serde(flatten)]
    pub presigned: Presigned,
}

/// A multipart upload just created.
#[derive(Debug, Deserialize)]
pub struct Created {
    /// Its id.
    pub upload_id: String,
    /// The part size the server chose, in bytes.
    pub part_size: u64,
}

/// A part the store holds.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct StoredPart {
    /// Its number.
    pub part_number: u32,
    /// Its ETag (quoted, as S3 gives it).
    pub etag: String,
    /// Its size in bytes.
    #[serde(default)]
    pub size: u64,
}

/// An in-progress multipart upload, from `list`.
#[derive(Debug, Deserialize)]
pub struct Listed {
    /// Its id.
    pub upload_id: String,
    /// Its object name.
    pub object_name: String,
    /// When it was created (RFC 3339).
    #[serde(default)]
    pub initiated: String,
}

/// The draft a `complete` made.
#[derive(Debug, Deserialize)]
pub struct Completed {
    /// Its name.
    pub object_name: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its ETag.
    pub etag: String,
}

/// A confirmed object.
#[derive(Debug, Deserialize)]
pub struct Confirmed {
    /// Its name.
    pub object_name: String,
    /// Where it now lives.
    pub final_location: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its ETag in main.
    pub etag: String,
}
