//! What Uppy sends, decoded: the query string as the browser's `URLSearchParams` writes it,
//! part numbers, and Uppy's file metadata as S3 user metadata.

use crate::api::error::{ApiError, Code};
use serde_json::Value;
use std::collections::BTreeMap;

/// The query string, decoded as `application/x-www-form-urlencoded` (what the browser's
/// `URLSearchParams` writes: `+` is a space).
pub(super) struct Query(Vec<(String, String)>);

impl Query {
    pub(super) fn of(query: Option<&str>) -> Self {
        Self(
            form_urlencoded::parse(query.unwrap_or_default().as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// `?key=`, as Companion requires it.
    pub(super) fn key(&self) -> Result<&str, ApiError> {
        self.get("key").filter(|k| !k.is_empty()).ok_or_else(|| {
            ApiError::new(
                Code::InvalidRequest,
                "s3: the object key must be passed as a query parameter. For example: \"?key=abc.jpg\"",
            )
        })
    }

    /// The `metadata[name]=value` pairs.
    pub(super) fn metadata(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().filter_map(|(k, v)| {
            let name = k.strip_prefix("metadata[")?.strip_suffix(']')?;
            Some((name, v.as_str()))
        })
    }
}

/// A part number as Uppy sends it: 1..=10 000.
pub(super) fn part_number(text: &str) -> Result<u64, ApiError> {
    text.parse::<u64>()
        .ok()
        .filter(|n| (1..=10_000).contains(n))
        .ok_or_else(|| {
            ApiError::new(
                Code::InvalidPart,
                "s3: the part number must be a number between 1 and 10000.",
            )
        })
}

/// Uppy's metadata as S3 user metadata: names lowercased (S3 keeps them so), values that are
/// not printable ASCII encoded as RFC 2047 `=?UTF-8?B?…?=` (as Companion's
/// `rfc2047EncodeMetadata` does), `null` values dropped, other non-strings as JSON text.
pub(super) fn user_metadata<'a>(
    pairs: impl Iterator<Item = (&'a str, Option<String>)>,
) -> BTreeMap<String, String> {
    pairs
        .filter_map(|(name, text)| {
            let text = text?;
            let printable = text.bytes().all(|b| (0x20..0x7f).contains(&b));
            let text = if printable {
                text
            } else {
                use base64::Engine;
                format!(
                    "=?UTF-8?B?{}?=",
                    base64::engine::general_purpose::STANDARD.encode(text.as_bytes())
                )
            };
            Some((name.to_ascii_lowercase(), text))
        })
        .collect()
}

/// A JSON metadata value as text (`None` for `null`).
pub(super) fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json as value;

    #[test]
    fn queries_decode_as_url_search_params_write_them() {
        let q = Query::of(Some(
            "filename=my+cat%20(1).jpg&type=image%2Fjpeg&metadata%5Bname%5D=caf%C3%A9&metadata[x]=1&key=",
        ));
        assert_eq!(q.get("filename"), Some("my cat (1).jpg"));
        assert_eq!(q.get("type"), Some("image/jpeg"));
        let meta: Vec<_> = q.metadata().collect();
        assert_eq!(meta, vec![("name", "café"), ("x", "1")]);
        assert_eq!(q.key().unwrap_err().http_status(), 400, "empty key");
        assert_eq!(Query::of(None).key().unwrap_err().http_status(), 400);
    }

    #[test]
    fn metadata_is_kept_as_s3_can_hold_it() {
        let pairs = [
            ("Name", Some("café.jpg".to_owned())),
            ("type", Some("image/jpeg".to_owned())),
            ("relativePath", None),
            ("size", Some("12".to_owned())),
        ];
        let meta = user_metadata(pairs.into_iter());
        assert_eq!(meta["name"], "=?UTF-8?B?Y2Fmw6kuanBn?=");
        assert_eq!(meta["type"], "image/jpeg");
        assert_eq!(meta["size"], "12");
        assert!(!meta.contains_key("relativepath"));
        assert_eq!(text_of(&value!(5)), Some("5".to_owned()));
        assert_eq!(text_of(&Value::Null), None);
    }

    #[test]
    fn part_numbers_are_1_to_10000() {
        assert_eq!(part_number("1").unwrap(), 1);
        assert_eq!(part_number("10000").unwrap(), 10_000);
        for bad in ["0", "10001", "-1", "x", "", "1.5", "complete"] {
            assert_eq!(
                part_number(bad).unwrap_err().code,
                Code::InvalidPart,
                "{bad}"
            );
        }
    }
}
