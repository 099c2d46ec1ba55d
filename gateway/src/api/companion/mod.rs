//! Companion's S3 protocol (issue 16), so that Uppy's `@uppy/aws-s3` 6.x with
//! `companionEndpoint` set to the gateway uploads into the draft bucket through DraftStore's own
//! multipart calls ([`crate::api::multipart`]). The wire format is Uppy's: what the client
//! sends and reads is in `packages/@uppy/aws-s3/src/s3-client/CompanionS3.ts` (6.3.1), what
//! Companion answers in `packages/@uppy/companion/src/server/controllers/s3.ts`
//! (github.com/transloadit/uppy). Uppy calls `<companionEndpoint>/s3/<route>`:
//!
//! | method and path | Uppy sends | answer |
//! |---|---|---|
//! | `GET /s3/params?filename&type&metadata[k]=v` | — | `{"method": "POST", "url", "fields", "expires"}` (a POST form) |
//! | `POST /s3/multipart` | `{"filename", "type", "metadata"}` | `{"key", "uploadId", "bucket"}` |
//! | `GET /s3/multipart/{uploadId}/{partNumber}?key` | — | `{"url", "expires"}` |
//! | `GET /s3/multipart/{uploadId}?key` | — | `[{"PartNumber", "ETag", "Size"}]` |
//! | `POST /s3/multipart/{uploadId}/complete?key` | `{"parts": [{"PartNumber", "ETag"}]}` | `{"location", "key", "bucket"}` |
//! | `DELETE /s3/multipart/{uploadId}?key` | — | `{}` |
//!
//! DraftStore adds `POST /s3/confirm?key` (the draft into main, as `/api/v1/confirm-upload`).
//! Uppy 6 no longer asks `/s3/multipart/{uploadId}/batch`, so it is not served.
//!
//! DraftStore chooses every key, as Companion's default `getKey` does (`<uuid>-<filename>`),
//! inside the caller's tenant folder: `<tenant>/<uuid>-<filename>`, the file name cut from the
//! front to fit and its forbidden characters replaced ([`new_object_name`]). Uppy hands that key
//! back in `?key=`; a key outside the caller's tenant is 403 `FOREIGN_KEY`.
//!
//! Uppy 6's client sends no header of ours, so with authentication on a page first asks an
//! upload token ([`token`]) and uses `companionEndpoint = <base>/s3-token/<token>`: the same
//! routes then live under `/s3-token/<token>/s3/…`. Errors are Companion's `{"message"}` (with
//! our `code` beside it), with our statuses.

mod decode;
pub mod rest;
pub mod token;

pub use token::{TokenError, UploadTokens};

use crate::api::error::{ApiError, Code};
use crate::auth::Tenant;

/// Where Uppy's routes live without a token.
pub const PREFIX: &str = "/s3";
/// Where they live behind an upload token: `/s3-token/<token>/s3/…`.
pub const TOKEN_PREFIX: &str = "/s3-token/";
/// `POST`: mints an upload token for the caller's tenant.
pub const UPLOAD_TOKEN: &str = "/api/v1/upload-token";

/// A route of Companion's S3 protocol, by the shape of its path (the method picks the call).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// `/s3/params`: `GET` (or `HEAD`) a POST form.
    Params,
    /// `/s3/multipart`: `POST` creates an upload.
    Create,
    /// `/s3/multipart/{uploadId}`: `GET` lists its parts, `DELETE` aborts it.
    Upload,
    /// `/s3/multipart/{uploadId}/{partNumber}`: `GET` a part's presigned PUT.
    Part,
    /// `/s3/multipart/{uploadId}/complete`: `POST` assembles the parts.
    Complete,
    /// `/s3/confirm`: `POST` moves the draft into main (DraftStore's own).
    Confirm,
}

impl Op {
    /// Every route.
    pub const ALL: [Self; 6] = [
        Self::Params,
        Self::Create,
        Self::Upload,
        Self::Part,
        Self::Complete,
        Self::Confirm,
    ];

    /// Its metrics label (the path's shape, never its values).
    #[must_use]
    pub const fn label(self) -> &'static str {
        match self {
            Self::Params => "s3/params",
            Self::Create => "s3/multipart",
            Self::Upload => "s3/multipart/{uploadId}",
            Self::Part => "s3/multipart/{uploadId}/{partNumber}",
            Self::Complete => "s3/multipart/{uploadId}/complete",
            Self::Confirm => "s3/confirm",
        }
    }

    /// The `Allow` header of a 405.
    #[must_use]
    pub const fn allowed(self) -> &'static str {
        match self {
            Self::Params | Self::Part => "GET, HEAD",
            Self::Upload => "GET, HEAD, DELETE",
            Self::Create | Self::Complete | Self::Confirm => "POST",
        }
    }
}

/// A path of this protocol, split: the token it carries (if under [`TOKEN_PREFIX`]), the route,
/// and its path parameters as sent (percent-encoded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target<'a> {
    /// The upload token segment, when under [`TOKEN_PREFIX`].
    pub token: Option<&'a str>,
    /// The route.
    pub op: Op,
    /// `{uploadId}`, percent-encoded.
    pub upload_id: Option<&'a str>,
    /// `{partNumber}`, as sent.
    pub part: Option<&'a str>,
}

/// Splits `path` into a [`Target`], or `None` when it is not one of this protocol's routes.
#[must_use]
pub fn parse(path: &str) -> Option<Target<'_>> {
    let (token, rest) = match path.strip_prefix(TOKEN_PREFIX) {
        Some(after) => {
            let (token, rest) = after.split_once('/')?;
            (Some(token).filter(|t| !t.is_empty()), rest)
        }
        None => (None, path.strip_prefix('/')?),
    };
    if path.starts_with(TOKEN_PREFIX) && token.is_none() {
        return None;
    }
    let rest = rest.strip_prefix("s3/")?;
    let mut segments = rest.split('/');
    let target = |op, upload_id, part| Target {
        token,
        op,
        upload_id,
        part,
    };
    let found = match (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) {
        (Some("params"), None, None, None) => target(Op::Params, None, None),
        (Some("confirm"), None, None, None) => target(Op::Confirm, None, None),
        (Some("multipart"), None, None, None) => target(Op::Create, None, None),
        (Some("multipart"), Some(id), None, None) if !id.is_empty() => {
            target(Op::Upload, Some(id), None)
        }
        (Some("multipart"), Some(id), Some("complete"), None) if !id.is_empty() => {
            target(Op::Complete, Some(id), None)
        }
        // Older Uppy's `…/{uploadId}/batch` is not served: no route (404), not a bad part.
        (Some("multipart"), Some(id), Some(part), None)
            if !id.is_empty() && !part.is_empty() && part != "batch" =>
        {
            target(Op::Part, Some(id), Some(part))
        }
        _ => return None,
    };
    Some(found)
}

/// The token segment of `path`, when it is one of this protocol's routes under
/// [`TOKEN_PREFIX`].
#[must_use]
pub fn token_in(path: &str) -> Option<&str> {
    parse(path).and_then(|t| t.token)
}

/// `path` safe to log or quote in an error: an upload token's segment is replaced by
/// `<token>` (a token is a credential).
#[must_use]
pub fn redacted(path: &str) -> std::borrow::Cow<'_, str> {
    match path.strip_prefix(TOKEN_PREFIX) {
        None => std::borrow::Cow::Borrowed(path),
        Some(after) => {
            let rest = after.find('/').and_then(|at| after.get(at..)).unwrap_or("");
            std::borrow::Cow::Owned(format!("{TOKEN_PREFIX}<token>{rest}"))
        }
    }
}

/// Longest file name kept in a key, in bytes (cut from the front, as Companion's
/// `truncateFilename` does, so the extension stays).
pub const MAX_FILENAME_BYTES: usize = 200;

/// A new object name for an upload of `filename`: `<uuid v4>-<filename>`, with the file name's
/// folders dropped, characters object names refuse (controls, line and paragraph separators,
/// bidirectional controls, `\`) replaced by `_`, and cut from the front to
/// [`MAX_FILENAME_BYTES`] (`file` when nothing is left).
///
/// # Errors
/// The system's random source fails.
pub fn new_object_name(filename: &str) -> Result<String, ApiError> {
    let mut id = [0_u8; 16];
    getrandom::getrandom(&mut id)
        .map_err(|e| ApiError::new(Code::Encode, format!("no random bytes for a key: {e}")))?;
    // RFC 9562 §5.4: version 4, variant 10.
    if let Some(b) = id.get_mut(6) {
        *b = (*b & 0x0f) | 0x40;
    }
    if let Some(b) = id.get_mut(8) {
        *b = (*b & 0x3f) | 0x80;
    }
    let hex = hex::encode(id);
    let uuid = format!(
        "{}-{}-{}-{}-{}",
        hex.get(..8).unwrap_or_default(),
        hex.get(8..12).unwrap_or_default(),
        hex.get(12..16).unwrap_or_default(),
        hex.get(16..20).unwrap_or_default(),
        hex.get(20..).unwrap_or_default()
    );
    Ok(format!("{uuid}-{}", clean_filename(filename)))
}

/// `filename` as the last part of an object name (see [`new_object_name`]).
#[must_use]
pub fn clean_filename(filename: &str) -> String {
    let base = filename.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = base
        .chars()
        .map(|c| {
            let refused = c.is_control()
                || matches!(
                    c,
                    '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{061c}'
                )
                || ('\u{202a}'..='\u{202e}').contains(&c)
                || ('\u{2066}'..='\u{2069}').contains(&c);
            if refused {
                '_'
            } else {
                c
            }
        })
        .collect();
    // Cut from the front at a character boundary.
    let mut start = cleaned.len().saturating_sub(MAX_FILENAME_BYTES);
    while !cleaned.is_char_boundary(start) {
        start += 1;
    }
    let kept = cleaned.get(start..).unwrap_or_default().trim();
    if kept.is_empty() {
        "file".to_owned()
    } else {
        kept.to_owned()
    }
}

/// The object name (without the tenant's folder) of a storage `key` Uppy hands back: the key
/// must lie in `tenant`'s folder.
///
/// # Errors
/// 403 `FOREIGN_KEY` for a key outside the tenant's folder.
pub fn name_of<'k>(tenant: Option<&Tenant>, key: &'k str) -> Result<&'k str, ApiError> {
    let Some(tenant) = tenant else {
        return Ok(key);
    };
    key.strip_prefix(tenant.folder().as_str())
        .and_then(|rest| rest.strip_prefix('/'))
        .ok_or_else(|| {
            ApiError::new(
                Code::ForeignKey,
                "the key is not in the caller's tenant: use the key this server returned",
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_parse_with_and_without_a_token() {
        let t = parse("/s3/multipart/abc%2B1/7").unwrap();
        assert_eq!(
            (t.token, t.op, t.upload_id, t.part),
            (None, Op::Part, Some("abc%2B1"), Some("7"))
        );
        let t = parse("/s3-token/tok.en/s3/multipart/id/complete").unwrap();
        assert_eq!(
            (t.token, t.op, t.upload_id),
            (Some("tok.en"), Op::Complete, Some("id"))
        );
        for (path, op) in [
            ("/s3/params", Op::Params),
            ("/s3/multipart", Op::Create),
            ("/s3/multipart/x", Op::Upload),
            ("/s3/confirm", Op::Confirm),
            ("/s3-token/t/s3/params", Op::Params),
        ] {
            assert_eq!(parse(path).map(|t| t.op), Some(op), "{path}");
        }
        for path in [
            "/s3",
            "/s3/",
            "/s3/sts",
            "/s3/multipart/",
            "/s3/multipart//1",
            "/s3/multipart/x/1/2",
            "/s3/multipart/x/",
            "/s3-token//s3/params",
            "/s3-token/t/params",
            "/s3-token/t",
            "/S3/params",
            "/api/v1/upload-url",
        ] {
            assert_eq!(parse(path), None, "{path}");
        }
        assert_eq!(token_in("/s3-token/abc/s3/confirm"), Some("abc"));
        assert_eq!(token_in("/s3/confirm"), None);
        assert_eq!(
            redacted("/s3-token/secret.mac/s3/x"),
            "/s3-token/<token>/s3/x"
        );
        assert_eq!(redacted("/s3-token/secret"), "/s3-token/<token>");
        assert_eq!(redacted("/s3/params"), "/s3/params");
    }

    #[test]
    fn keys_get_a_uuid_and_a_clean_name() {
        let name = new_object_name("photos/cat.jpg").unwrap();
        let (uuid, file) = name.split_at(36);
        assert_eq!(file, "-cat.jpg");
        assert_eq!(uuid.len(), 36);
        assert_eq!(uuid.as_bytes()[14], b'4', "version 4: {uuid}");
        assert_ne!(new_object_name("a").unwrap(), new_object_name("a").unwrap());
        assert_eq!(clean_filename("a\u{202e}b\nc\\d"), "d");
        assert_eq!(clean_filename("a\u{202e}b\nc.txt"), "a_b_c.txt");
        assert_eq!(clean_filename(""), "file");
        assert_eq!(clean_filename("dir/"), "file");
        let long = format!("{}.tar.gz", "é".repeat(300));
        let cut = clean_filename(&long);
        assert!(
            cut.len() <= MAX_FILENAME_BYTES && cut.ends_with(".tar.gz"),
            "{cut}"
        );
        // Every cleaned name is a valid object name after the uuid.
        for odd in ["..", ".", " ", "\u{2028}", "a/../b", "\u{0}"] {
            let name = new_object_name(odd).unwrap();
            draftstore_core::ObjectName::parse(&name).unwrap();
        }
    }

    #[test]
    fn a_key_must_lie_in_the_tenant() {
        let acme = Tenant::parse("acme").unwrap();
        assert_eq!(name_of(Some(&acme), "acme/x-1.bin").unwrap(), "x-1.bin");
        for foreign in ["globex/x.bin", "acmex/y", "acme", "x.bin", "/acme/x"] {
            let e = name_of(Some(&acme), foreign).unwrap_err();
            assert_eq!(e.http_status(), 403, "{foreign}");
        }
        assert_eq!(name_of(None, "any/key").unwrap(), "any/key");
    }
}
