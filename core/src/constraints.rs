//! Upload constraints a client declares when it asks for an upload URL. They are signed into
//! the presigned PUT (so the store enforces them) and stamped on the draft as metadata (so
//! confirm can check the stored object against them without a database).

use crate::draft::{SOURCE_ETAG_KEY, SOURCE_SIZE_KEY};
use crate::storage::{Metadata, ObjectInfo};
use base64::Engine;
use thiserror::Error;

/// Metadata key of the stamp recording what was declared.
pub const DECLARED_KEY: &str = "draftstore-declared";
/// S3 objects are at most 5 TiB.
pub const MAX_OBJECT_SIZE: u64 = 5 * 1024 * 1024 * 1024 * 1024;
/// S3 keeps at most 2 KiB of user metadata per object, counted as the UTF-8 bytes of every
/// `x-amz-meta-*` key (without the prefix) plus its value; more is `MetadataTooLarge`.
pub const MAX_METADATA_BYTES: usize = 2048;

/// The most DraftStore adds to the main copy's metadata at confirm: the source ETag (a
/// multipart ETag is 32 hex digits, `-` and up to 5 digits of part count) and the source size
/// (up to 13 digits: 5 TiB), each with its key.
pub const MAX_CONFIRM_METADATA_BYTES: usize =
    SOURCE_ETAG_KEY.len() + 38 + SOURCE_SIZE_KEY.len() + 13;

/// Bytes the headers a presigned PUT requires (`name: value` plus CRLF each) may take. AWS
/// refuses a request whose headers pass 8 KiB; this leaves 1 KiB for what every client adds
/// itself (`Host`, `User-Agent`, `Expect`, …).
pub const MAX_REQUIRED_HEADER_BYTES: usize = 7 * 1024;

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
}

/// A declared constraint that is malformed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConstraintError {
    /// `content_type` is empty, longer than 255 or not printable ASCII.
    #[error("content_type must be 1..=255 printable ASCII characters")]
    ContentType,
    /// `content_length` is larger than [`MAX_OBJECT_SIZE`].
    #[error("content_length must be at most 5 TiB")]
    ContentLength,
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
        /// [`MAX_REQUIRED_HEADER_BYTES`].
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

impl UploadConstraints {
    /// Validates a declaration.
    ///
    /// # Errors
    /// A [`ConstraintError`] naming what is malformed.
    pub fn new(
        content_type: Option<String>,
        content_length: Option<u64>,
        checksum_sha256: Option<String>,
        metadata: Metadata,
    ) -> Result<Self, ConstraintError> {
        if let Some(ct) = &content_type {
            if ct.is_empty() || ct.len() > 255 || !ct.bytes().all(|b| (0x20..0x7f).contains(&b)) {
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
        };
        declared.check_sizes()?;
        Ok(declared)
    }

    /// What DraftStore adds to the object's metadata at the step where it adds most: the
    /// declaration stamp on the draft, or the source stamp on the main copy (worst case).
    #[must_use]
    pub fn reserved_metadata(&self) -> usize {
        let draft = if self.is_empty() {
            0
        } else {
            DECLARED_KEY.len() + self.stamp().len()
        };
        draft.max(MAX_CONFIRM_METADATA_BYTES)
    }

    /// Bytes of metadata (keys and values) left for the caller with this declaration: S3's
    /// 2048 less [`UploadConstraints::reserved_metadata`].
    #[must_use]
    pub fn metadata_budget(&self) -> usize {
        MAX_METADATA_BYTES.saturating_sub(self.reserved_metadata())
    }

    /// Everything DraftStore will write must fit S3's limits at every step: the caller's
    /// metadata within [`UploadConstraints::metadata_budget`], the required headers within
    /// [`MAX_REQUIRED_HEADER_BYTES`].
    fn check_sizes(&self) -> Result<(), ConstraintError> {
        let size = metadata_bytes(&self.metadata);
        let budget = self.metadata_budget();
        if size > budget {
            return Err(ConstraintError::MetadataSize {
                size,
                budget,
                reserved: self.reserved_metadata(),
            });
        }
        let size = self
            .required_headers()
            .iter()
            .map(|(n, v)| n.len() + v.len() + 4)
            .sum();
        if size > MAX_REQUIRED_HEADER_BYTES {
            return Err(ConstraintError::RequiredHeadersSize {
                size,
                max: MAX_REQUIRED_HEADER_BYTES,
            });
        }
        Ok(())
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

    /// The stamp: `len=N;sha256=B64;type=1` (what was declared beyond metadata, which the
    /// object carries itself).
    fn stamp(&self) -> String {
        let mut parts = Vec::new();
        if let Some(n) = self.content_length {
            parts.push(format!("len={n}"));
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

/// The size of `metadata` as S3 counts it against [`MAX_METADATA_BYTES`]: the UTF-8 bytes of
/// every key (without `x-amz-meta-`) and value.
#[must_use]
pub fn metadata_bytes(metadata: &Metadata) -> usize {
    metadata.iter().map(|(k, v)| k.len() + v.len()).sum()
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
    use crate::draft::promoted_user_metadata;
    use proptest::prelude::*;

    const SUM: &str = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";

    fn info(size: u64, ct: Option<&str>) -> ObjectInfo {
        ObjectInfo {
            size,
            etag: "e".into(),
            last_modified: 0,
            content_type: ct.map(String::from),
            metadata: Metadata::new(),
            checksum_sha256: None,
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
                budget: 1953,
                reserved: 95
            })
        );
    }

    #[test]
    fn the_issue_example_is_refused_with_the_real_budget() {
        let note = Metadata::from([("note".to_owned(), "x".repeat(1968))]);
        let err = UploadConstraints::new(None, None, None, note).unwrap_err();
        assert_eq!(
            err.to_string(),
            "metadata is 1972 bytes (keys and values); S3 keeps 2048 per object and DraftStore \
             needs up to 95 of them, which leaves 1953 for yours"
        );
        // 500 entries of 3 bytes fit the metadata budget, not a request's headers.
        let many: Metadata = (0..500)
            .map(|i| (format!("{i:03}"), String::new()))
            .collect();
        assert_eq!(
            UploadConstraints::new(None, None, None, many),
            Err(ConstraintError::RequiredHeadersSize {
                size: 500 * 18 + "x-amz-meta-draftstore-declared: none\r\n".len(),
                max: MAX_REQUIRED_HEADER_BYTES
            })
        );
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

    /// Any declaration: content type, length and checksum each present or not.
    fn declaration() -> impl Strategy<Value = (Option<String>, Option<u64>, Option<String>)> {
        (
            proptest::option::of("[a-z]{1,20}/[a-z0-9.+-]{1,40}"),
            proptest::option::of(prop_oneof![Just(MAX_OBJECT_SIZE), 0..=MAX_OBJECT_SIZE]),
            proptest::option::of(Just(SUM.to_owned())),
        )
    }

    /// The metadata S3 would count on the draft (the `x-amz-meta-*` headers the PUT carries)
    /// and on the main copy in the worst case (a multipart ETag of 10000 parts, 5 TiB).
    fn worst_steps(c: &UploadConstraints) -> (usize, usize) {
        let draft: usize = c
            .required_headers()
            .iter()
            .filter_map(|(n, v)| Some(n.strip_prefix("x-amz-meta-")?.len() + v.len()))
            .sum();
        let mut stored = info(MAX_OBJECT_SIZE, None);
        stored.etag = format!("{}-10000", "f".repeat(32));
        stored.metadata.clone_from(&c.metadata);
        stored.metadata.insert(DECLARED_KEY.to_owned(), c.stamp());
        let main = metadata_bytes(&promoted_user_metadata(&stored));
        (draft, main)
    }

    proptest! {
        /// At the boundary: budget−1 and budget are accepted and fit S3 at every step (checked
        /// against the headers and the stamped copy themselves); budget+1 is refused, naming
        /// the budget.
        #[test]
        fn metadata_is_refused_exactly_past_the_real_budget(
            (content_type, length, sum) in declaration(),
            key in "[a-z0-9_-]{1,128}",
            delta in -1_i64..=1,
        ) {
            let probe = UploadConstraints::new(
                content_type.clone(), length, sum.clone(), Metadata::from([(key.clone(), String::new())]),
            ).unwrap();
            let budget = probe.metadata_budget();
            let size = usize::try_from(i64::try_from(budget).unwrap() + delta).unwrap();
            let value = "v".repeat(size - key.len());
            let metadata = Metadata::from([(key.clone(), value)]);
            match UploadConstraints::new(content_type, length, sum, metadata) {
                Ok(c) => {
                    prop_assert!(delta <= 0);
                    let (draft, main) = worst_steps(&c);
                    prop_assert!(draft <= MAX_METADATA_BYTES, "draft carries {}", draft);
                    prop_assert!(main <= MAX_METADATA_BYTES, "main carries {}", main);
                    if delta == 0 {
                        // Not smaller than it needs to be: the worst step is exactly full.
                        prop_assert_eq!(draft.max(main), MAX_METADATA_BYTES);
                    }
                }
                Err(e) => {
                    prop_assert_eq!(delta, 1);
                    prop_assert_eq!(&e, &ConstraintError::MetadataSize { size, budget, reserved: MAX_METADATA_BYTES - budget });
                    prop_assert!(e.to_string().contains(&format!("leaves {budget} for yours")), "{}", e);
                }
            }
        }

        /// Many short entries fit the metadata budget but not in a request's headers: refused
        /// with the header rule, and whatever is accepted fits.
        #[test]
        fn required_headers_stay_within_what_s3_accepts(entries in 1_usize..600, len in 1_usize..4) {
            let metadata: Metadata = (0..entries)
                .map(|i| (format!("{i:0len$}"), String::new()))
                .collect();
            match UploadConstraints::new(None, None, None, metadata) {
                Ok(c) => {
                    let size: usize = c.required_headers().iter().map(|(n, v)| n.len() + v.len() + 4).sum();
                    prop_assert!(size <= MAX_REQUIRED_HEADER_BYTES);
                }
                Err(ConstraintError::RequiredHeadersSize { size, max }) => {
                    prop_assert!(size > max);
                }
                Err(ConstraintError::MetadataSize { size, budget, .. }) => prop_assert!(size > budget),
                Err(e) => prop_assert!(false, "{}", e),
            }
        }
    }
}
