//! The one check of a listing's `prefix`, shared by every route that takes one (list-drafts,
//! multipart-upload/list, over REST and gRPC): a prefix is accepted when some valid name could
//! start with it, so `photos/` is, and `../`, a control character, an empty segment and
//! DraftStore's reserved `.draftstore/` are not (400 `INVALID_REQUEST`, the same message on
//! every route). Listings also skip keys under the reserved prefix themselves, since a prefix
//! such as `.draft` could reach them.

use crate::api::app::object_key;
use crate::api::error::{ApiError, Code};
use crate::auth::Tenant;

/// The storage key prefix listed for `prefix` in `tenant`'s folder (the folder itself for an
/// empty prefix).
///
/// # Errors
/// `INVALID_REQUEST` naming the field when no object name can start with `prefix`.
pub fn key_prefix(tenant: Option<&Tenant>, prefix: &str) -> Result<String, ApiError> {
    let folder = tenant.map(|t| format!("{}/", t.folder()));
    if prefix.is_empty() {
        return Ok(folder.unwrap_or_default());
    }
    let probe = format!("{prefix}x");
    let key = object_key(tenant, &probe).map_err(|e| {
        ApiError::new(
            Code::InvalidRequest,
            format!("invalid field `prefix`: no object name can start with it ({e})"),
        )
    })?;
    let key = key.as_str();
    Ok(key
        .get(..key.len().saturating_sub(1))
        .unwrap_or(key)
        .to_owned())
}

/// Whether a listed storage key is shown: never one under DraftStore's reserved prefix.
#[must_use]
pub fn listed(key: &str) -> bool {
    !draftstore_core::events::is_reserved(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_those_a_name_can_start_with() {
        assert_eq!(key_prefix(None, "").unwrap(), "");
        assert_eq!(key_prefix(None, "photos/").unwrap(), "photos/");
        assert_eq!(key_prefix(None, "ca").unwrap(), "ca");
        assert_eq!(key_prefix(None, ".draft").unwrap(), ".draft");
        for bad in ["../", "/a", "a\\", "a\u{7}", ".draftstore/", "a//"] {
            let e = key_prefix(None, bad).unwrap_err();
            assert_eq!(e.code.as_str(), "INVALID_REQUEST", "{bad:?}");
            assert!(e.message.contains("`prefix`"), "{}", e.message);
        }
        assert!(listed("photos/cat.jpg"));
        assert!(!listed(".draftstore/events/msg_1.json"));
    }
}
