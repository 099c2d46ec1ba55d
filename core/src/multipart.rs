//! Multipart uploads (S3 "Uploading and copying objects using multipart upload"): the types of
//! the [`Storage`](crate::Storage) calls that create, list, complete and abort them, S3's limits,
//! and the rules every store applies the same way: which part lists a completion accepts
//! ([`check_completion`]) and the ETag of the finished object ([`multipart_etag`]).
//!
//! Only UploadPart carries bytes, and clients send it to a presigned URL; the gateway makes the
//! other calls itself.

use crate::storage::{Metadata, StorageError};
use md5::{Digest, Md5};

/// The smallest part but the last: 5 MiB (S3's `EntityTooSmall` below it).
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
/// The largest part: 5 GiB.
pub const MAX_PART_SIZE: u64 = 5 * 1024 * 1024 * 1024;
/// Part numbers run from 1 to this (S3's limit on parts per upload).
pub const MAX_PART_NUMBER: u32 = 10_000;

/// The checksum S3 keeps per part when the upload is created with one
/// (`x-amz-checksum-algorithm`). Only SHA-256 is offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumAlgorithm {
    /// `SHA256`: each part carries `x-amz-checksum-sha256` (base64 of its digest).
    Sha256,
}

impl ChecksumAlgorithm {
    /// As S3 names it in `x-amz-checksum-algorithm`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Sha256 => "SHA256",
        }
    }
}

/// What a store says of an upload's per-part checksums without listing every part
/// ([`Storage::upload_checksum`](crate::Storage::upload_checksum)): what a call for part URLs
/// needs to know, at a cost that does not grow with the parts stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadChecksum {
    /// The store says it: the upload was created with [`ChecksumAlgorithm::Sha256`] (`true`)
    /// or with no checksum (`false`), and its ListParts shows each stored part's checksum.
    Known(bool),
    /// The store does not say (S3 shows the algorithm only through stored parts' checksums,
    /// and SeaweedFS not even then); `parts_stored` tells whether any part is stored.
    Unknown {
        /// At least one part is stored.
        parts_stored: bool,
    },
}

impl UploadChecksum {
    /// What `parts` (an upload's ListParts) tell: [`Self::Known`]`(true)` when a part shows a
    /// SHA-256, else [`Self::Unknown`].
    #[must_use]
    pub fn of_parts(parts: &[Part]) -> Self {
        if parts.iter().any(|p| p.checksum_sha256.is_some()) {
            Self::Known(true)
        } else {
            Self::Unknown {
                parts_stored: !parts.is_empty(),
            }
        }
    }
}

/// What CreateMultipartUpload sets on the object the upload will make.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MultipartOptions {
    /// `Content-Type` of the object.
    pub content_type: Option<String>,
    /// User metadata of the object (DraftStore's stamps included).
    pub metadata: Metadata,
    /// Per-part checksums the store must check and keep, if any.
    pub checksum: Option<ChecksumAlgorithm>,
}

/// One part of an incomplete upload, as ListParts reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// 1..=[`MAX_PART_NUMBER`].
    pub part_number: u32,
    /// Hex MD5 of the part's bytes, without quotes.
    pub etag: String,
    /// Bytes.
    pub size: u64,
    /// Base64 SHA-256 of the part, when the store checked and kept one.
    pub checksum_sha256: Option<String>,
}

/// One entry of a CompleteMultipartUpload request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletedPart {
    /// The part's number.
    pub part_number: u32,
    /// The ETag its upload answered, without quotes.
    pub etag: String,
    /// Its base64 SHA-256, for an upload created with [`ChecksumAlgorithm::Sha256`].
    pub checksum_sha256: Option<String>,
}

impl From<&Part> for CompletedPart {
    fn from(p: &Part) -> Self {
        Self {
            part_number: p.part_number,
            etag: p.etag.clone(),
            checksum_sha256: p.checksum_sha256.clone(),
        }
    }
}

/// What a completed upload made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completed {
    /// S3's multipart ETag, `<hex MD5 of the parts' binary MD5s>-<part count>`, without quotes.
    pub etag: String,
    /// Bytes of the object (the parts' sizes added up).
    pub size: u64,
}

/// The request to complete "with every uploaded part": each listed part, in order.
#[must_use]
pub fn every_part(parts: &[Part]) -> Vec<CompletedPart> {
    let mut all: Vec<CompletedPart> = parts.iter().map(CompletedPart::from).collect();
    all.sort_by_key(|p| p.part_number);
    all
}

/// The part number `number` as S3 numbers parts (1..=[`MAX_PART_NUMBER`]), `None` outside:
/// the one home of that rule (stores and the API's checks use it).
#[must_use]
pub fn valid_part_number(number: u64) -> Option<u32> {
    u32::try_from(number)
        .ok()
        .filter(|n| (1..=MAX_PART_NUMBER).contains(n))
}

/// # Errors
/// [`StorageError::InvalidArgument`] for a part number outside 1..=[`MAX_PART_NUMBER`].
pub fn check_part_number(part_number: u32) -> Result<(), StorageError> {
    match valid_part_number(u64::from(part_number)) {
        Some(_) => Ok(()),
        None => Err(StorageError::InvalidArgument {
            reason: format!("part number {part_number} is outside 1..={MAX_PART_NUMBER}"),
        }),
    }
}

/// The completion rule a list of parts breaks (S3 "CompleteMultipartUpload" errors): the one
/// home of these rules. Stores answer it as [`StorageError`] (S3's codes); the API's own check
/// before calling the store answers it as a `PartError` (400 naming the part).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompletionError {
    /// No parts named.
    Empty,
    /// Part `number` comes after part `after` (`number <= after`; equal: listed twice).
    Order {
        /// The part out of order.
        number: u32,
        /// The part before it.
        after: u32,
    },
    /// A part named that was never uploaded.
    NotUploaded {
        /// The part.
        number: u32,
    },
    /// A part named with another ETag than the stored part's.
    ETag {
        /// The part.
        number: u32,
        /// The ETag given (its first 80 characters).
        given: String,
        /// The stored part's ETag, without quotes.
        uploaded: String,
    },
    /// The upload keeps SHA-256 checksums and the part's was not given (`given: false`) or
    /// differs from the stored part's.
    Checksum {
        /// The part.
        number: u32,
        /// A checksum was given (and differs).
        given: bool,
    },
    /// A part other than the last under [`MIN_PART_SIZE`].
    TooSmall {
        /// The part.
        number: u32,
        /// Its bytes.
        size: u64,
    },
    /// A part over [`MAX_PART_SIZE`].
    TooLarge {
        /// The part.
        number: u32,
        /// Its bytes.
        size: u64,
    },
}

impl From<CompletionError> for StorageError {
    fn from(e: CompletionError) -> Self {
        let invalid = |part_number: u32, reason: &str| Self::InvalidPart {
            part_number,
            reason: reason.to_owned(),
        };
        match e {
            CompletionError::Empty => Self::InvalidArgument {
                reason: "a completion must name at least one part".into(),
            },
            CompletionError::Order { number, .. } => Self::InvalidPartOrder {
                part_number: number,
            },
            CompletionError::NotUploaded { number } => invalid(number, "it was not uploaded"),
            CompletionError::ETag { number, .. } => {
                invalid(number, "its ETag does not match the uploaded part's")
            }
            CompletionError::Checksum {
                number,
                given: false,
            } => invalid(
                number,
                "the upload keeps SHA-256 checksums: give the part's",
            ),
            CompletionError::Checksum { number, .. } => {
                invalid(number, "its SHA-256 does not match the uploaded part's")
            }
            CompletionError::TooSmall { number, size } => Self::EntityTooSmall {
                part_number: number,
                size,
            },
            CompletionError::TooLarge { number, size } => Self::InvalidArgument {
                reason: format!("part {number} is {size} bytes, over 5 GiB"),
            },
        }
    }
}

/// Checks a CompleteMultipartUpload request against the parts the store holds (`stored`, any
/// order), as S3 does, and returns the stored parts it names, in order. Rules, in the order
/// they are checked: at least one part; numbers strictly ascending; each part uploaded, with
/// its ETag (quotes ignored) and, when the upload keeps one, its SHA-256; none over 5 GiB;
/// every part but the last at least 5 MiB.
///
/// # Errors
/// The first [`CompletionError`], naming the part (as [`StorageError`]: `InvalidArgument`,
/// `InvalidPartOrder`, `InvalidPart`, `EntityTooSmall`).
pub fn check_completion<'a>(
    stored: &'a [Part],
    requested: &[CompletedPart],
    checksum: Option<ChecksumAlgorithm>,
) -> Result<Vec<&'a Part>, CompletionError> {
    if requested.is_empty() {
        return Err(CompletionError::Empty);
    }
    let mut previous: Option<u32> = None;
    for p in requested {
        match previous {
            Some(after) if p.part_number <= after => {
                return Err(CompletionError::Order {
                    number: p.part_number,
                    after,
                })
            }
            _ => previous = Some(p.part_number),
        }
    }
    let by_number: std::collections::BTreeMap<u32, &Part> =
        stored.iter().map(|p| (p.part_number, p)).collect();
    let mut chosen = Vec::with_capacity(requested.len());
    for want in requested {
        let number = want.part_number;
        let have = *by_number
            .get(&number)
            .ok_or(CompletionError::NotUploaded { number })?;
        if unquote(&want.etag) != unquote(&have.etag) {
            return Err(CompletionError::ETag {
                number,
                given: want.etag.chars().take(80).collect(),
                uploaded: unquote(&have.etag).to_owned(),
            });
        }
        if checksum == Some(ChecksumAlgorithm::Sha256) {
            match (&want.checksum_sha256, &have.checksum_sha256) {
                (Some(w), Some(h)) if w == h => {}
                (given, _) => {
                    return Err(CompletionError::Checksum {
                        number,
                        given: given.is_some(),
                    })
                }
            }
        }
        chosen.push(have);
    }
    if let Some(large) = chosen.iter().find(|p| p.size > MAX_PART_SIZE) {
        return Err(CompletionError::TooLarge {
            number: large.part_number,
            size: large.size,
        });
    }
    if let Some((_, rest)) = chosen.split_last() {
        if let Some(small) = rest.iter().find(|p| p.size < MIN_PART_SIZE) {
            return Err(CompletionError::TooSmall {
                number: small.part_number,
                size: small.size,
            });
        }
    }
    Ok(chosen)
}

/// S3's ETag of a multipart object from its parts' ETags (hex MD5s, in order):
/// `hex(MD5(md5_1 ‖ … ‖ md5_n))-n`. An ETag that is not 32 hex digits goes in as its text.
#[must_use]
pub fn multipart_etag<'a>(etags: impl IntoIterator<Item = &'a str>) -> String {
    let mut md5 = Md5::new();
    let mut n = 0_usize;
    for etag in etags {
        match hex::decode(etag) {
            Ok(bytes) if bytes.len() == 16 => md5.update(&bytes),
            _ => md5.update(etag.as_bytes()),
        }
        n += 1;
    }
    format!("{}-{n}", hex::encode(md5.finalize()))
}

/// An ETag without surrounding whitespace and quotes.
pub(crate) fn unquote(etag: &str) -> &str {
    etag.trim().trim_matches('"')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rules as a store answers them.
    fn check<'a>(
        stored: &'a [Part],
        requested: &[CompletedPart],
        checksum: Option<ChecksumAlgorithm>,
    ) -> Result<Vec<&'a Part>, StorageError> {
        check_completion(stored, requested, checksum).map_err(StorageError::from)
    }

    fn stored(n: u32, size: u64) -> Part {
        Part {
            part_number: n,
            etag: format!("{n:032x}"),
            size,
            checksum_sha256: None,
        }
    }

    #[test]
    fn the_multipart_etag_is_the_md5_of_the_binary_md5s() {
        let (a, b) = (Md5::digest(b"first"), Md5::digest(b"second"));
        let joined = Md5::digest([a.as_slice(), b.as_slice()].concat());
        assert_eq!(
            multipart_etag([hex::encode(a).as_str(), hex::encode(b).as_str()]),
            format!("{}-2", hex::encode(joined))
        );
    }

    #[test]
    fn completion_rules_name_the_part() {
        let parts = [
            stored(2, MIN_PART_SIZE),
            stored(1, MIN_PART_SIZE - 1),
            stored(3, 1),
        ];
        let ask = |numbers: &[u32]| -> Vec<CompletedPart> {
            numbers
                .iter()
                .map(|&n| CompletedPart {
                    part_number: n,
                    etag: format!("\"{n:032x}\""),
                    checksum_sha256: None,
                })
                .collect()
        };
        let chosen = check(&parts, &ask(&[2, 3]), None).unwrap();
        assert_eq!(
            chosen.iter().map(|p| p.part_number).collect::<Vec<_>>(),
            [2, 3]
        );
        assert_eq!(
            check(&parts, &ask(&[1, 2]), None),
            Err(StorageError::EntityTooSmall {
                part_number: 1,
                size: MIN_PART_SIZE - 1
            })
        );
        assert_eq!(
            check(&parts, &ask(&[3, 2]), None),
            Err(StorageError::InvalidPartOrder { part_number: 2 })
        );
        assert!(matches!(
            check(&parts, &ask(&[2, 4]), None),
            Err(StorageError::InvalidPart { part_number: 4, .. })
        ));
        assert!(matches!(
            check(&parts, &ask(&[3]), Some(ChecksumAlgorithm::Sha256)),
            Err(StorageError::InvalidPart { part_number: 3, .. })
        ));
        assert!(matches!(
            check(&parts, &[], None),
            Err(StorageError::InvalidArgument { .. })
        ));
        assert!(check_part_number(0).is_err() && check_part_number(10_001).is_err());
        assert!(check_part_number(1).is_ok() && check_part_number(10_000).is_ok());
    }

    proptest::proptest! {
        /// Whatever is stored and asked, an accepted completion obeys every S3 rule, and a
        /// refusal names a part that breaks one.
        #[test]
        fn completion_accepts_exactly_the_lists_s3_accepts(
            stored in proptest::collection::btree_map(1_u32..8, (0_u64..3, 0_u8..3), 0..6),
            asked in proptest::collection::vec((1_u32..9, 0_u8..3), 0..6),
        ) {
            let stored: Vec<Part> = stored
                .iter()
                .map(|(&n, &(mib, tag))| Part {
                    part_number: n,
                    etag: format!("{n}-{tag}"),
                    size: mib * MIN_PART_SIZE / 2 + mib,
                    checksum_sha256: None,
                })
                .collect();
            let asked: Vec<CompletedPart> = asked
                .iter()
                .map(|&(n, tag)| CompletedPart {
                    part_number: n,
                    etag: format!("{n}-{tag}"),
                    checksum_sha256: None,
                })
                .collect();
            let find = |n: u32| stored.iter().find(|p| p.part_number == n);
            match check(&stored, &asked, None) {
                Ok(chosen) => {
                    proptest::prop_assert_eq!(chosen.len(), asked.len());
                    for (i, (c, a)) in chosen.iter().zip(&asked).enumerate() {
                        proptest::prop_assert_eq!(c.part_number, a.part_number);
                        proptest::prop_assert_eq!(&c.etag, &a.etag);
                        if i > 0 {
                            proptest::prop_assert!(asked[i - 1].part_number < a.part_number);
                        }
                        if i + 1 < chosen.len() {
                            proptest::prop_assert!(c.size >= MIN_PART_SIZE);
                        }
                    }
                }
                Err(StorageError::InvalidArgument { .. }) => proptest::prop_assert!(asked.is_empty()),
                Err(StorageError::InvalidPartOrder { part_number }) => {
                    proptest::prop_assert!(asked
                        .windows(2)
                        .any(|w| w[1].part_number == part_number && w[0].part_number >= part_number));
                }
                Err(StorageError::InvalidPart { part_number, .. }) => {
                    let a = asked.iter().find(|a| a.part_number == part_number);
                    proptest::prop_assert!(a.is_some_and(|a| find(part_number).is_none_or(|s| s.etag != a.etag)));
                }
                Err(StorageError::EntityTooSmall { part_number, size }) => {
                    proptest::prop_assert!(find(part_number).is_some_and(|s| s.size == size && size < MIN_PART_SIZE));
                    proptest::prop_assert!(asked.last().is_some_and(|l| l.part_number != part_number));
                }
                Err(other) => proptest::prop_assert!(false, "unexpected {other:?}"),
            }
        }
    }
}
