//! Upload constraints a client declares when it asks for an upload URL. They are signed into
//! the presigned PUT (so the store enforces them) and stamped on the draft as metadata (so
//! confirm can check the stored object against them without a database).

use crate::storage::{Metadata, ObjectInfo};
use base64::Engine;
use thiserror::Error;

/// Metadata key of the stamp recording what was declared.
pub const DECLARED_KEY: &str = "draftstore-declared";
/// S3 objects are at most 5 TiB.
pub const MAX_OBJECT_SIZE: u64 = 5 * 1024 * 1024 * 1024 * 1024;
/// What a client declared for one upload, validated: each part is signed into the presigned PUT
/// (so the store enforces it) and checked again at confirm.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UploadConstraints {
    /// The `Content-Type` the upload must carry: 1..=255 printable ASCII characters.
    pub content_type: Option<String>,
    /// The exact size in bytes, at most [`MAX_OBJECT_SIZE`].
    pub content_length: Option<u64>,
    /// Base64 of 32 bytes, as `x-amz-checksum-sha256` carries it.
    pub checksum_sha256: Option<String>,
    /// User metadata (`x-amz-meta-*`, keys without the prefix) the upload must carry; within
    /// [`UploadConstraints::metadata_budget`].
    pub metadata: Metadata,
    /// Allowed sizes in bytes, `min..=max` (a presigned POST's `content-length-range`): the
    /// store enforces it on upload, confirm checks it again. Set with
    /// [`UploadConstraints::with_length_range`]; never signed into a PUT.
    pub length_range: Option<(u64, u64)>,
}

/// A declared constraint that is malformed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConstraintError {
    /// `content_type` is not a media type (RFC 9110 §8.3.1: `type/subtype`, each a token,
    /// then any `;` parameters), or is longer than 255 or not printable ASCII.
    #[error(
        "content_type must be a media type such as image/jpeg (type/subtype, then any \
         ;parameters), 1..=255 printable ASCII characters"
    )]
    ContentType,
    /// `content_length` is larger than [`MAX_OBJECT_SIZE`].
    #[error("content_length must be at most 5 TiB")]
    ContentLength,
    /// A size range whose minimum passes its maximum, or whose maximum passes
    /// [`MAX_OBJECT_SIZE`].
    #[error("min_content_length ({min}) must be at most max_content_length ({max}), which is at most 5 TiB")]
    LengthRange {
        /// The smallest size asked for, in bytes.
        min: u64,
        /// The largest size asked for, in bytes.
        max: u64,
    },
    /// `checksum_sha256` is not the base64 of 32 bytes.
    #[error("checksum_sha256 must be the base64 of 32 bytes")]
    Checksum,
    /// A metadata key is not 1..=128 of a-z, 0-9, '-' or '_', or is DraftStore's own.
    #[error("metadata key {key:?} must be 1..=128 of a-z, 0-9, '-' or '_' and not start with 'draftstore-'")]
    MetadataKey {
        /// The key (its first 64 characters).
        key: String,
    },
    /// A metadata value is not printable ASCII.
    #[error("metadata value of {key:?} must be printable ASCII")]
    MetadataValue {
        /// Its key.
        key: String,
    },
    /// The caller's metadata does not fit in what S3 keeps once DraftStore's own entries are
    /// counted, at the step where they are largest.
    #[error(
        "metadata is {size} bytes (keys and values); S3 keeps 2048 per object and DraftStore \
         needs up to {reserved} of them, which leaves {budget} for yours"
    )]
    MetadataSize {
        /// Bytes of the caller's metadata, keys and values.
        size: usize,
        /// What is left for the caller's metadata with this declaration.
        budget: usize,
        /// What DraftStore adds at the step where it adds most.
        reserved: usize,
    },
    /// The headers the client would have to send pass what S3 accepts in one request.
    #[error(
        "the upload would need {size} bytes of signed headers; S3 takes 8 KiB of headers per \
         request and {max} are left for these: declare fewer or shorter metadata entries"
    )]
    RequiredHeadersSize {
        /// Bytes of the required headers, each as `name: value` and CRLF.
        size: usize,
        /// [`crate::MAX_REQUIRED_HEADER_BYTES`].
        max: usize,
    },
}

/// How a stored object differs from what was declared.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConstraintViolation {
    /// The stored size is not the declared one.
    #[error("size is {actual} bytes, {declared} were declared")]
    Size {
        /// Bytes declared.
        declared: u64,
        /// Bytes stored.
        actual: u64,
    },
    /// The stored size lies outside the declared range.
    #[error("size is {actual} bytes, {min}..={max} were declared")]
    SizeRange {
        /// The smallest size declared, in bytes.
        min: u64,
        /// The largest size declared, in bytes.
        max: u64,
        /// Bytes stored.
        actual: u64,
    },
    /// The stored content type is not the declared one.
    #[error("content type is {actual:?}, {declared:?} was declared")]
    ContentType {
        /// What was declared.
        declared: String,
        /// What the store holds (`None`: no content type).
        actual: Option<String>,
    },
    /// The store verified a SHA-256 other than the declared one.
    #[error("SHA-256 checksum differs from the declared one")]
    Checksum,
    /// A declared metadata entry is missing or different.
    #[error("metadata {key:?} differs from the declared value")]
    Metadata {
        /// Its key.
        key: String,
    },
    /// The main copy would carry more metadata than S3 keeps (the draft's own plus the source
    /// stamp), so the copy would be refused.
    #[error("the confirmed copy would carry {size} bytes of metadata; S3 keeps at most 2048")]
    MetadataTooLarge {
        /// Bytes, keys and values, of the main copy's metadata.
        size: usize,
    },
}

/// Whether `value` starts as a media type: `type "/" subtype` (RFC 9110 §8.3.1), each a
/// non-empty token (§5.6.2), optionally followed by whitespace and `;` parameters (not parsed
/// further: the caller checks they are printable).
fn is_media_type(value: &str) -> bool {
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim_end_matches([' ', '\t']);
    let is_token = |part: &str| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    };
    essence
        .split_once('/')
        .is_some_and(|(kind, sub)| is_token(kind) && is_token(sub))
}

impl UploadConstraints {
    /// Validates a declaration, including that everything DraftStore will write for it fits
    /// S3's limits at every step (see `limits`).
    ///
    /// # Errors
    /// A [`ConstraintError`] naming what is malformed, or [`ConstraintError::MetadataSize`]
    /// with the real budget, or [`ConstraintError::RequiredHeadersSize`].
    pub fn new(
        content_type: Option<String>,
        content_length: Option<u64>,
        checksum_sha256: Option<String>,
        metadata: Metadata,
    ) -> Result<Self, ConstraintError> {
        if let Some(ct) = &content_type {
            if ct.len() > 255
                || !ct.bytes().all(|b| (0x20..0x7f).contains(&b))
                || !is_media_type(ct)
            {
                return Err(ConstraintError::ContentType);
            }
        }
        if content_length.is_some_and(|n| n > MAX_OBJECT_SIZE) {
            return Err(ConstraintError::ContentLength);
        }
        if let Some(sum) = &checksum_sha256 {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(sum)
                .map_err(|_| ConstraintError::Checksum)?;
            if raw.len() != 32 {
                return Err(ConstraintError::Checksum);
            }
        }
        for (key, value) in &metadata {
            let key_ok = (1..=128).contains(&key.len())
                && key.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'
                })
                && !key.starts_with("draftstore-");
            if !key_ok {
                return Err(ConstraintError::MetadataKey {
                    key: key.chars().take(64).collect(),
                });
            }
            if !value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
                return Err(ConstraintError::MetadataValue { key: key.clone() });
            }
        }
        let declared = Self {
            content_type,
            content_length,
            checksum_sha256,
            metadata,
            length_range: None,
        };
        declared.check_sizes()?;
        Ok(declared)
    }

    /// This declaration with the size range `min..=max` (bytes) added, checked again against
    /// S3's limits (the stamp grows).
    ///
    /// # Errors
    /// [`ConstraintError::LengthRange`] for `min > max` or `max` past [`MAX_OBJECT_SIZE`];
    /// [`ConstraintError::MetadataSize`] when the caller's metadata no longer fits.
    pub fn with_length_range(mut self, min: u64, max: u64) -> Result<Self, ConstraintError> {
        if min > max || max > MAX_OBJECT_SIZE {
            return Err(ConstraintError::LengthRange { min, max });
        }
        self.length_range = Some((min, max));
        self.check_sizes()?;
        Ok(self)
    }

    /// Nothing was declared: the upload needs no headers.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// The headers the client must send for the signature to hold, sorted by name. Empty when
    /// nothing was declared, so a plain `curl -X PUT --upload-file` works.
    #[must_use]
    pub fn required_headers(&self) -> Vec<(String, String)> {
        let mut headers = Vec::new();
        if self.is_empty() {
            return headers;
        }
        if let Some(ct) = &self.content_type {
            headers.push(("content-type".to_owned(), ct.clone()));
        }
        if let Some(n) = self.content_length {
            headers.push(("content-length".to_owned(), n.to_string()));
        }
        if let Some(sum) = &self.checksum_sha256 {
            headers.push(("x-amz-checksum-sha256".to_owned(), sum.clone()));
        }
        for (k, v) in &self.metadata {
            headers.push((format!("x-amz-meta-{k}"), v.clone()));
        }
        headers.push((format!("x-amz-meta-{DECLARED_KEY}"), self.stamp()));
        headers.sort();
        headers
    }

    /// The stamp: `len=N;range=MIN-MAX;sha256=B64;type=1` (what was declared beyond
    /// metadata, which the object carries itself).
    pub(crate) fn stamp(&self) -> String {
        let mut parts = Vec::new();
        if let Some(n) = self.content_length {
            parts.push(format!("len={n}"));
        }
        if let Some((min, max)) = self.length_range {
            parts.push(format!("range={min}-{max}"));
        }
        if let Some(sum) = &self.checksum_sha256 {
            parts.push(format!("sha256={sum}"));
        }
        if self.content_type.is_some() {
            parts.push("type=1".to_owned());
        }
        if parts.is_empty() {
            parts.push("none".to_owned());
        }
        parts.join(";")
    }

    /// What a draft's stamp declared (content type and metadata from the object itself).
    #[must_use]
    pub fn from_stamp(info: &ObjectInfo) -> Option<Self> {
        let stamp = info.metadata.get(DECLARED_KEY)?;
        let mut declared = Self::default();
        for part in stamp.split(';') {
            match part.split_once('=') {
                Some(("len", n)) => declared.content_length = n.parse().ok(),
                Some(("range", r)) => {
                    declared.length_range = r
                        .split_once('-')
                        .and_then(|(min, max)| Some((min.parse().ok()?, max.parse().ok()?)));
                }
                Some(("sha256", s)) => declared.checksum_sha256 = Some(s.to_owned()),
                Some(("type", _)) => declared.content_type.clone_from(&info.content_type),
                _ => {}
            }
        }
        declared.metadata = user_metadata(&info.metadata);
        Some(declared)
    }

    /// Checks a stored object against this declaration.
    ///
    /// # Errors
    /// The first [`ConstraintViolation`] found.
    pub fn check(&self, info: &ObjectInfo) -> Result<(), ConstraintViolation> {
        if let Some(declared) = self.content_length {
            if declared != info.size {
                return Err(ConstraintViolation::Size {
                    declared,
                    actual: info.size,
                });
            }
        }
        if let Some((min, max)) = self.length_range {
            if !(min..=max).contains(&info.size) {
                return Err(ConstraintViolation::SizeRange {
                    min,
                    max,
                    actual: info.size,
                });
            }
        }
        if let Some(declared) = &self.content_type {
            if info.content_type.as_deref() != Some(declared.as_str()) {
                return Err(ConstraintViolation::ContentType {
                    declared: declared.clone(),
                    actual: info.content_type.clone(),
                });
            }
        }
        if let (Some(declared), Some(actual)) = (&self.checksum_sha256, &info.checksum_sha256) {
            if declared != actual {
                return Err(ConstraintViolation::Checksum);
            }
        }
        for (key, value) in &self.metadata {
            if info.metadata.get(key) != Some(value) {
                return Err(ConstraintViolation::Metadata { key: key.clone() });
            }
        }
        Ok(())
    }
}

/// The caller's metadata without DraftStore's own `draftstore-*` keys.
#[must_use]
pub fn user_metadata(metadata: &Metadata) -> Metadata {
    metadata
        .iter()
        .filter(|(k, _)| !k.starts_with("draftstore-"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUM: &str = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";

    fn info(size: u64, ct: Option<&str>) -> ObjectInfo {
        ObjectInfo {
            size,
            etag: "e".into(),
            last_modified: 0,
            content_type: ct.map(String::from),
            metadata: Metadata::new(),
            checksum_sha256: None,
            version_id: None,
        }
    }

    #[test]
    fn malformed_declarations_are_refused() {
        let meta = |k: &str, v: &str| Metadata::from([(k.to_owned(), v.to_owned())]);
        assert_eq!(
            UploadConstraints::new(Some(String::new()), None, None, Metadata::new()),
            Err(ConstraintError::ContentType)
        );
        assert_eq!(
            UploadConstraints::new(Some("a\nb".into()), None, None, Metadata::new()),
            Err(ConstraintError::ContentType)
        );
        for not_a_type in [
            "not a type",
            "image",
            "image/",
            "/jpeg",
            "image/jpeg/x",
            "a b/c",
            ";a/b",
        ] {
            assert_eq!(
                UploadConstraints::new(Some(not_a_type.into()), None, None, Metadata::new()),
                Err(ConstraintError::ContentType),
                "{not_a_type:?}"
            );
        }
        for media_type in [
            "image/jpeg",
            "TEXT/Plain",
            "text/plain; charset=utf-8",
            "text/plain;charset=\"utf-8\"",
            "application/vnd.api+json",
            "application/x-www-form-urlencoded",
        ] {
            assert!(
                UploadConstraints::new(Some(media_type.into()), None, None, Metadata::new())
                    .is_ok(),
                "{media_type:?}"
            );
        }
        assert_eq!(
            UploadConstraints::new(None, Some(MAX_OBJECT_SIZE + 1), None, Metadata::new()),
            Err(ConstraintError::ContentLength)
        );
        assert_eq!(
            UploadConstraints::new(None, None, Some("abc".into()), Metadata::new()),
            Err(ConstraintError::Checksum)
        );
        assert_eq!(
            UploadConstraints::new(None, None, Some("AAAA".into()), Metadata::new()),
            Err(ConstraintError::Checksum)
        );
        assert!(matches!(
            UploadConstraints::new(None, None, None, meta("Upper", "v")),
            Err(ConstraintError::MetadataKey { .. })
        ));
        assert!(matches!(
            UploadConstraints::new(None, None, None, meta("draftstore-x", "v")),
            Err(ConstraintError::MetadataKey { .. })
        ));
        assert!(matches!(
            UploadConstraints::new(None, None, None, meta("k", "é")),
            Err(ConstraintError::MetadataValue { .. })
        ));
        assert_eq!(
            UploadConstraints::new(None, None, None, meta("k", &"v".repeat(2048))),
            Err(ConstraintError::MetadataSize {
                size: 2049,
                budget: 1896,
                reserved: 152
            })
        );
    }

    #[test]
    fn a_size_range_is_stamped_and_checked_at_confirm() {
        let c = UploadConstraints::new(Some("text/plain".into()), None, None, Metadata::new())
            .unwrap()
            .with_length_range(2, 4)
            .unwrap();
        let mut stored = info(3, Some("text/plain"));
        for (n, v) in c.required_headers() {
            if let Some(k) = n.strip_prefix("x-amz-meta-") {
                stored.metadata.insert(k.to_owned(), v);
            }
        }
        assert_eq!(
            stored.metadata.get(DECLARED_KEY).map(String::as_str),
            Some("range=2-4;type=1")
        );
        let back = UploadConstraints::from_stamp(&stored).unwrap();
        assert_eq!(back, c);
        assert_eq!(back.check(&stored), Ok(()));
        for (size, ok) in [(1, false), (2, true), (4, true), (5, false)] {
            stored.size = size;
            assert_eq!(back.check(&stored).is_ok(), ok, "{size}");
        }
        stored.size = 5;
        assert_eq!(
            back.check(&stored),
            Err(ConstraintViolation::SizeRange {
                min: 2,
                max: 4,
                actual: 5
            })
        );
        assert_eq!(
            UploadConstraints::default().with_length_range(5, 4),
            Err(ConstraintError::LengthRange { min: 5, max: 4 })
        );
        assert!(UploadConstraints::default()
            .with_length_range(0, MAX_OBJECT_SIZE + 1)
            .is_err());
    }

    #[test]
    fn nothing_declared_means_no_required_headers() {
        assert!(UploadConstraints::default().required_headers().is_empty());
    }

    #[test]
    fn declared_constraints_become_headers_and_a_stamp() {
        let c = UploadConstraints::new(
            Some("image/jpeg".into()),
            Some(5),
            Some(SUM.into()),
            Metadata::from([("owner".to_owned(), "ann".to_owned())]),
        )
        .unwrap();
        let headers = c.required_headers();
        let names: Vec<&str> = headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "content-length",
                "content-type",
                "x-amz-checksum-sha256",
                "x-amz-meta-draftstore-declared",
                "x-amz-meta-owner"
            ]
        );
        // The store keeps the stamp as metadata; confirm reads it back.
        let mut stored = info(5, Some("image/jpeg"));
        for (n, v) in &headers {
            if let Some(k) = n.strip_prefix("x-amz-meta-") {
                stored.metadata.insert(k.to_owned(), v.clone());
            }
        }
        assert_eq!(UploadConstraints::from_stamp(&stored), Some(c.clone()));
        assert_eq!(c.check(&stored), Ok(()));
    }

    #[test]
    fn each_violation_is_reported() {
        let c = UploadConstraints::new(
            Some("image/png".into()),
            Some(3),
            Some(SUM.into()),
            Metadata::from([("a".to_owned(), "1".to_owned())]),
        )
        .unwrap();
        assert_eq!(
            c.check(&info(4, Some("image/png"))),
            Err(ConstraintViolation::Size {
                declared: 3,
                actual: 4
            })
        );
        assert!(matches!(
            c.check(&info(3, Some("text/html"))),
            Err(ConstraintViolation::ContentType { .. })
        ));
        let mut wrong_sum = info(3, Some("image/png"));
        wrong_sum.checksum_sha256 = Some("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".into());
        assert_eq!(c.check(&wrong_sum), Err(ConstraintViolation::Checksum));
        assert_eq!(
            c.check(&info(3, Some("image/png"))),
            Err(ConstraintViolation::Metadata { key: "a".into() })
        );
    }
}
