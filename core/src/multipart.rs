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

/// # Errors
/// [`StorageError::InvalidArgument`] for a part number outside 1..=[`MAX_PART_NUMBER`].
pub fn check_part_number(part_number: u32) -> Result<(), StorageError> {
    if (1..=MAX_PART_NUMBER).contains(&part_number) {
        Ok(())
    } else {
        Err(StorageError::InvalidArgument {
            reason: format!("part number {part_number} is outside 1..={MAX_PART_NUMBER}"),
        })
    }
}

/// Checks a CompleteMultipartUpload request against the parts the store holds (`stored`, any
/// order), as S3 does, and returns the stored parts it names, in order.
///
/// # Errors
/// - [`StorageError::InvalidArgument`]: no parts named;
/// - [`StorageError::InvalidPartOrder`]: numbers not strictly ascending (naming the first
///   out of order);
/// - [`StorageError::InvalidPart`]: a part not uploaded, or whose ETag (or SHA-256, when the
///   upload keeps one) differs, naming it;
/// - [`StorageError::EntityTooSmall`]: a part but the last under [`MIN_PART_SIZE`], naming it.
pub fn check_completion<'a>(
    stored: &'a [Part],
    requested: &[CompletedPart],
    checksum: Option<ChecksumAlgorithm>,
) -> Result<Vec<&'a Part>, StorageError> {
    if requested.is_empty() {
        return Err(StorageError::InvalidArgument {
            reason: "a completion must name at least one part".into(),
        });
    }
    let mut previous = 0;
    for p in requested {
        if p.part_number <= previous {
            return Err(StorageError::InvalidPartOrder {
                part_number: p.part_number,
            });
        }
        previous = p.part_number;
    }
    let mut chosen = Vec::with_capacity(requested.len());
    for want in requested {
        let invalid = |reason: &str| StorageError::InvalidPart {
            part_number: want.part_number,
            reason: reason.to_owned(),
        };
        let have = stored
            .iter()
            .find(|s| s.part_number == want.part_number)
            .ok_or_else(|| invalid("it was not uploaded"))?;
        if unquote(&want.etag) != have.etag {
            return Err(invalid("its ETag does not match the uploaded part's"));
        }
        if checksum == Some(ChecksumAlgorithm::Sha256) {
            match (&want.checksum_sha256, &have.checksum_sha256) {
                (Some(w), Some(h)) if w == h => {}
                (None, _) => {
                    return Err(invalid(
                        "the upload keeps SHA-256 checksums: give the part's",
                    ))
                }
                _ => return Err(invalid("its SHA-256 does not match the uploaded part's")),
            }
        }
        chosen.push(have);
    }
    let last = chosen.len().saturating_sub(1);
    for (i, part) in chosen.iter().enumerate() {
        if i < last && part.size < MIN_PART_SIZE {
            return Err(StorageError::EntityTooSmall {
                part_number: part.part_number,
                size: part.size,
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

fn unquote(etag: &str) -> &str {
    etag.trim().trim_matches('"')
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let chosen = check_completion(&parts, &ask(&[2, 3]), None).unwrap();
        assert_eq!(
            chosen.iter().map(|p| p.part_number).collect::<Vec<_>>(),
            [2, 3]
        );
        assert_eq!(
            check_completion(&parts, &ask(&[1, 2]), None),
            Err(StorageError::EntityTooSmall {
                part_number: 1,
                size: MIN_PART_SIZE - 1
            })
        );
        assert_eq!(
            check_completion(&parts, &ask(&[3, 2]), None),
            Err(StorageError::InvalidPartOrder { part_number: 2 })
        );
        assert!(matches!(
            check_completion(&parts, &ask(&[2, 4]), None),
            Err(StorageError::InvalidPart { part_number: 4, .. })
        ));
        assert!(matches!(
            check_completion(&parts, &ask(&[3]), Some(ChecksumAlgorithm::Sha256)),
            Err(StorageError::InvalidPart { part_number: 3, .. })
        ));
        assert!(matches!(
            check_completion(&parts, &[], None),
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
            match check_completion(&stored, &asked, None) {
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
