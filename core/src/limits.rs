//! S3's limits that what DraftStore writes must fit at every step: the 2 KiB of user metadata
//! (the caller's entries plus DraftStore's own stamps, on the draft and on the main copy) and
//! the 8 KiB of request headers a presigned PUT is sent with. Upload-url checks a declaration
//! against the worst case of every later step, so a draft it accepts can always be confirmed.

use crate::constraints::{ConstraintError, UploadConstraints, DECLARED_KEY};
use crate::draft::{DRAFT_VERSION_LEN, SOURCE_ETAG_KEY, SOURCE_SIZE_KEY, SOURCE_VERSION_KEY};
use crate::storage::Metadata;

/// S3 keeps at most 2 KiB of user metadata per object, counted as the UTF-8 bytes of every
/// `x-amz-meta-*` key (without the prefix) plus its value; more is `MetadataTooLarge`.
pub const MAX_METADATA_BYTES: usize = 2048;

/// The most DraftStore adds to the main copy's metadata at confirm: the source ETag (a
/// multipart ETag is 32 hex digits, `-` and up to 5 digits of part count), the source size
/// (up to 13 digits: 5 TiB) and the draft's version (32 hex digits), each with its key: 152
/// bytes.
pub const MAX_CONFIRM_METADATA_BYTES: usize = SOURCE_ETAG_KEY.len()
    + 38
    + SOURCE_SIZE_KEY.len()
    + 13
    + SOURCE_VERSION_KEY.len()
    + DRAFT_VERSION_LEN;

/// Bytes the headers a presigned PUT requires (`name: value` plus CRLF each) may take. AWS
/// refuses a request whose headers pass 8 KiB; this leaves 1 KiB for what every client adds
/// itself (`Host`, `User-Agent`, `Expect`, …).
pub const MAX_REQUIRED_HEADER_BYTES: usize = 7 * 1024;

/// The size of `metadata` as S3 counts it against [`MAX_METADATA_BYTES`]: the UTF-8 bytes of
/// every key (without `x-amz-meta-`) and value.
#[must_use]
pub fn metadata_bytes(metadata: &Metadata) -> usize {
    metadata.iter().map(|(k, v)| k.len() + v.len()).sum()
}

impl UploadConstraints {
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
    pub(crate) fn check_sizes(&self) -> Result<(), ConstraintError> {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::draft::promoted_user_metadata;
    use crate::storage::ObjectInfo;
    use crate::MAX_OBJECT_SIZE;
    use proptest::prelude::*;

    const SUM: &str = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";

    #[test]
    fn the_issue_example_is_refused_with_the_real_budget() {
        let note = Metadata::from([("note".to_owned(), "x".repeat(1968))]);
        let err = UploadConstraints::new(None, None, None, note).unwrap_err();
        assert_eq!(
            err.to_string(),
            "metadata is 1972 bytes (keys and values); S3 keeps 2048 per object and DraftStore \
             needs up to 152 of them, which leaves 1896 for yours"
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
        let mut stored = ObjectInfo {
            size: MAX_OBJECT_SIZE,
            etag: String::new(),
            last_modified: 0,
            content_type: None,
            metadata: Metadata::new(),
            checksum_sha256: None,
            version_id: None,
        };
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
