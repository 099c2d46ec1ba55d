//! The rules of a multipart upload that DraftStore checks itself, pure and without IO: the
//! part size and count chosen at create, the part numbers (and per-part checksums) a call for
//! part URLs may ask for, and what a complete may assemble. S3's limits (AWS "Amazon S3
//! multipart upload limits"): parts numbered 1..=10 000, each 5 MiB..=5 GiB except the last,
//! which may be smaller.
//!
//! A multipart draft carries the same declaration stamp as a single upload
//! ([`upload_metadata`]), so confirm checks it the same way; its ETag is S3's multipart
//! `"<md5 of the parts' md5s>-N"`, which confirm's stamp compares like any other.

use crate::constraints::{ConstraintViolation, UploadConstraints, DECLARED_KEY};
use crate::multipart::{
    check_completion, every_part, valid_part_number, CompletedPart, CompletionError, Part,
    MAX_PART_NUMBER as MAX_PARTS, MAX_PART_SIZE, MIN_PART_SIZE,
};
use crate::storage::{Metadata, ObjectInfo};
use base64::Engine;
use std::collections::BTreeMap;
use thiserror::Error;

/// One mebibyte.
const MIB: u64 = 1024 * 1024;
/// The part size chosen when the caller gives none and the length allows it (8 MiB, as the
/// AWS CLI's default).
pub const DEFAULT_PART_SIZE: u64 = 8 * MIB;
/// One call signs at most this many part URLs.
pub const MAX_PART_URLS: usize = 1000;

/// A multipart rule broken, naming the part and the rule (the gateway answers 400). The sum
/// of the parts against the declared length is checked on the completed object, by its stamp,
/// as confirm does ([`check_completed`]): S3 keeps an upload's metadata out of reach until then.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PartError {
    /// A `part_size` outside 5 MiB..=5 GiB.
    #[error("part_size is {size} bytes; it must be 5 MiB (5242880) to 5 GiB (5368709120)")]
    PartSize {
        /// Bytes asked for.
        size: u64,
    },
    /// The declared length needs more than 10 000 parts of the given size.
    #[error("{length} bytes in parts of {part_size} need {count} parts; at most 10000: choose a larger part_size")]
    TooManyParts {
        /// Bytes declared.
        length: u64,
        /// Bytes per part.
        part_size: u64,
        /// Parts that would take.
        count: u64,
    },
    /// A whole-object SHA-256 was declared for a multipart upload.
    #[error("checksum_sha256 covers a whole object, which S3 cannot check for a multipart upload: with multipart, checksums are per part (checksum_algorithm \"SHA256\" and checksums_sha256 per part URL)")]
    WholeObjectChecksum,
    /// A part number outside 1..=10 000.
    #[error("part {number}: part numbers run from 1 to 10000")]
    PartNumber {
        /// The number given.
        number: u64,
    },
    /// The same part number twice in one call.
    #[error("part {number} is listed twice")]
    Duplicate {
        /// The number.
        number: u32,
    },
    /// A complete's parts are not in ascending order.
    #[error("part {number} comes after part {after}: parts must be listed in ascending order")]
    Order {
        /// The part out of order.
        number: u32,
        /// The part before it.
        after: u32,
    },
    /// No part numbers, or more than one call signs.
    #[error("part_numbers lists {count} parts; one call signs 1 to 1000")]
    UrlCount {
        /// How many were asked for.
        count: usize,
    },
    /// A checksum for a part that was not asked for (or a key that is not a part number).
    #[error("checksums_sha256 has {key:?}, which is not one of part_numbers")]
    ChecksumUnrequested {
        /// The key given (its first 32 characters).
        key: String,
    },
    /// Per-part checksums for an upload that did not declare `checksum_algorithm`.
    #[error(
        "checksums_sha256 given, but this upload was created without checksum_algorithm \"SHA256\""
    )]
    ChecksumNotDeclared,
    /// The upload declared SHA-256 and a part URL was asked for without its checksum.
    #[error("part {number}: this upload declared checksum_algorithm \"SHA256\", so every part URL needs its checksum in checksums_sha256")]
    ChecksumMissing {
        /// The part.
        number: u32,
    },
    /// The upload keeps SHA-256 checksums, and neither the store's listing nor what the
    /// gateway kept when signing holds one for this part (its URL was signed elsewhere, or
    /// before the gateway kept them).
    #[error("part {number}: this upload declared checksum_algorithm \"SHA256\" and the part's checksum is not known (the store lists none and no part URL signed by DraftStore carried one): ask for its part URL with its checksum in checksums_sha256, upload it again, then complete")]
    ChecksumUnknown {
        /// The part.
        number: u32,
    },
    /// A part checksum that is not the base64 of 32 bytes.
    #[error("part {number}: a SHA-256 checksum is the base64 of 32 bytes")]
    ChecksumFormat {
        /// The part.
        number: u32,
    },
    /// Nothing to complete.
    #[error("no parts: upload at least one part before completing")]
    NoParts,
    /// A part named at complete that was never uploaded.
    #[error("part {number} was not uploaded")]
    NotUploaded {
        /// The part.
        number: u32,
    },
    /// A part named at complete with another ETag than the stored part's.
    #[error("part {number}: ETag {given:?} is not the uploaded part's ({uploaded:?})")]
    ETag {
        /// The part.
        number: u32,
        /// The ETag the caller gave (its first 80 characters).
        given: String,
        /// The stored part's ETag.
        uploaded: String,
    },
    /// A part other than the last under 5 MiB.
    #[error(
        "part {number} is {size} bytes; every part but the last must be at least 5 MiB (5242880)"
    )]
    TooSmall {
        /// The part.
        number: u32,
        /// Its bytes.
        size: u64,
    },
    /// A part over 5 GiB.
    #[error("part {number} is {size} bytes; a part is at most 5 GiB (5368709120)")]
    TooLarge {
        /// The part.
        number: u32,
        /// Its bytes.
        size: u64,
    },
}

/// The part size of an upload and, when its length is known, how many parts it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartPlan {
    /// Bytes per part (the last may be smaller).
    pub part_size: u64,
    /// Parts the declared length takes (at least 1); `None` when no length was declared.
    pub part_count: Option<u32>,
}

/// Parts of `part_size` (> 0) that `length` bytes take: at least one (an empty object is one
/// empty part).
#[must_use]
pub fn part_count(length: u64, part_size: u64) -> u64 {
    length.div_ceil(part_size.max(1)).max(1)
}

/// The part size and count of an upload of `length` bytes (if declared). A given `part_size`
/// is checked (5 MiB..=5 GiB, at most 10 000 parts for the length); without one, the size is
/// [`DEFAULT_PART_SIZE`], grown to the next MiB that keeps the length within 10 000 parts.
///
/// # Errors
/// [`PartError::PartSize`], [`PartError::TooManyParts`].
pub fn plan(length: Option<u64>, part_size: Option<u64>) -> Result<PartPlan, PartError> {
    let part_size = match part_size {
        Some(size) if (MIN_PART_SIZE..=MAX_PART_SIZE).contains(&size) => size,
        Some(size) => return Err(PartError::PartSize { size }),
        None => {
            let least = length.map_or(0, |n| n.div_ceil(u64::from(MAX_PARTS)));
            least
                .div_ceil(MIB)
                .saturating_mul(MIB)
                .max(DEFAULT_PART_SIZE)
        }
    };
    let part_count = match length {
        None => None,
        Some(length) => {
            let count = part_count(length, part_size);
            match u32::try_from(count) {
                Ok(n) if n <= MAX_PARTS => Some(n),
                _ => {
                    return Err(PartError::TooManyParts {
                        length,
                        part_size,
                        count,
                    })
                }
            }
        }
    };
    Ok(PartPlan {
        part_size,
        part_count,
    })
}

/// Refuses what a multipart upload cannot honour among single-upload constraints: a
/// whole-object checksum.
///
/// # Errors
/// [`PartError::WholeObjectChecksum`].
pub fn check_declared(declared: &UploadConstraints) -> Result<(), PartError> {
    if declared.checksum_sha256.is_some() {
        return Err(PartError::WholeObjectChecksum);
    }
    Ok(())
}

/// The metadata a multipart upload is created with: the caller's, plus the declaration stamp
/// a single upload's URL requires (`draftstore-declared`), so confirm checks both alike.
#[must_use]
pub fn upload_metadata(declared: &UploadConstraints) -> Metadata {
    let mut metadata = declared.metadata.clone();
    if !declared.is_empty() {
        metadata.insert(DECLARED_KEY.to_owned(), declared.stamp());
    }
    metadata
}

fn part_number(number: u64) -> Result<u32, PartError> {
    valid_part_number(number).ok_or(PartError::PartNumber { number })
}

/// One part URL a call signs: its number and the checksum signed in, if any (borrowed from
/// the call's request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartToSign<'a> {
    /// 1..=10 000.
    pub part_number: u32,
    /// Base64 SHA-256 of the part (32 bytes), signed in as `x-amz-checksum-sha256`.
    pub checksum_sha256: Option<&'a str>,
}

/// Words of [`Seen`]: one bit for each number up to 10 000 ([`MAX_PARTS`]).
const SEEN_WORDS: usize = 10_000 / 64 + 1;

/// Part numbers 1..=10 000 seen, one bit each: a call's duplicate check without a map.
struct Seen([u64; SEEN_WORDS]);

impl Seen {
    const fn new() -> Self {
        Self([0; SEEN_WORDS])
    }

    /// The word and bit of `n`.
    fn slot(&mut self, n: u32) -> Option<(&mut u64, u64)> {
        let word = self.0.get_mut(usize::try_from(n / 64).ok()?)?;
        Some((word, 1 << (n % 64)))
    }

    /// Marks `n`; whether it was marked before.
    fn insert(&mut self, n: u32) -> bool {
        self.slot(n).is_some_and(|(word, bit)| {
            let before = *word & bit != 0;
            *word |= bit;
            before
        })
    }

    fn contains(&self, n: u32) -> bool {
        usize::try_from(n / 64)
            .ok()
            .and_then(|i| self.0.get(i))
            .is_some_and(|word| word & (1 << (n % 64)) != 0)
    }
}

/// Whether `sum` is the base64 of 32 bytes (a SHA-256), decoded on the stack.
fn is_sha256(sum: &str) -> bool {
    let mut raw = [0_u8; 48];
    matches!(
        base64::engine::general_purpose::STANDARD.decode_slice(sum, &mut raw),
        Ok(32)
    )
}

/// The parts a call for part URLs may sign, in the order asked, each with the checksum to
/// sign in (borrowed from `checksums`): 1..=1000 distinct numbers in 1..=10 000; `checksums`
/// (keyed by the decimal part number) only when the upload declared SHA-256 (`sha256`), and
/// then one for every part. `sha256` is `None` when that is not known yet (no part stored:
/// S3 reports the algorithm only through its parts): the checksums given are signed, and the
/// store refuses a part without one when the upload needs it. Each number is checked once.
///
/// # Errors
/// The first rule broken, naming the part.
pub fn part_urls<'a>(
    numbers: &[u64],
    checksums: &'a BTreeMap<String, String>,
    sha256: Option<bool>,
) -> Result<Vec<PartToSign<'a>>, PartError> {
    if numbers.is_empty() || numbers.len() > MAX_PART_URLS {
        return Err(PartError::UrlCount {
            count: numbers.len(),
        });
    }
    if sha256 == Some(false) && !checksums.is_empty() {
        return Err(PartError::ChecksumNotDeclared);
    }
    let mut seen = Seen::new();
    let mut wanted = Vec::with_capacity(numbers.len());
    for &number in numbers {
        let n = part_number(number)?;
        if seen.insert(n) {
            return Err(PartError::Duplicate { number: n });
        }
        wanted.push(PartToSign {
            part_number: n,
            checksum_sha256: None,
        });
    }
    if !checksums.is_empty() {
        let mut sums = BTreeMap::new();
        for (key, sum) in checksums {
            let n = key
                .parse::<u32>()
                .ok()
                .filter(|n| seen.contains(*n) && n.to_string() == *key)
                .ok_or_else(|| PartError::ChecksumUnrequested {
                    key: key.chars().take(32).collect(),
                })?;
            if !is_sha256(sum) {
                return Err(PartError::ChecksumFormat { number: n });
            }
            sums.insert(n, sum.as_str());
        }
        for part in &mut wanted {
            part.checksum_sha256 = sums.get(&part.part_number).copied();
        }
    }
    if sha256 == Some(true) {
        if let Some(part) = wanted.iter().find(|p| p.checksum_sha256.is_none()) {
            return Err(PartError::ChecksumMissing {
                number: part.part_number,
            });
        }
    }
    Ok(wanted)
}

/// A part the store holds, as listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredPart<'a> {
    /// Its number.
    pub number: u32,
    /// Its ETag (quotes allowed).
    pub etag: &'a str,
    /// Its bytes.
    pub size: u64,
}

/// What a complete assembles: the parts in order, by number and the stored ETag, and the
/// object's size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assembly {
    /// `(number, etag)` in ascending order; ETags as the store listed them.
    pub parts: Vec<(u32, String)>,
    /// Bytes of the object.
    pub size: u64,
}

impl From<CompletionError> for PartError {
    fn from(e: CompletionError) -> Self {
        match e {
            CompletionError::Empty => Self::NoParts,
            CompletionError::Order { number, after } if number == after => {
                Self::Duplicate { number }
            }
            CompletionError::Order { number, after } => Self::Order { number, after },
            CompletionError::NotUploaded { number } => Self::NotUploaded { number },
            CompletionError::ETag {
                number,
                given,
                uploaded,
            } => Self::ETag {
                number,
                given,
                uploaded,
            },
            // `assemble` names no algorithm: the store checks checksums.
            CompletionError::Checksum { number, .. } => Self::ChecksumUnknown { number },
            CompletionError::TooSmall { number, size } => Self::TooSmall { number, size },
            CompletionError::TooLarge { number, size } => Self::TooLarge { number, size },
        }
    }
}

/// Checks a complete before the store is asked: `chosen` (`None`: every stored part, in
/// order) must name part numbers in 1..=10 000, then pass S3's completion rules, whose one
/// home is [`check_completion`](crate::check_completion) (ascending, uploaded, same ETag, at
/// most 5 GiB, all but the last at least 5 MiB).
///
/// # Errors
/// The first rule broken, naming the part.
pub fn assemble(
    stored: &[StoredPart<'_>],
    chosen: Option<&[(u64, String)]>,
) -> Result<Assembly, PartError> {
    let stored: Vec<Part> = stored
        .iter()
        .map(|p| Part {
            part_number: p.number,
            etag: p.etag.to_owned(),
            size: p.size,
            checksum_sha256: None,
        })
        .collect();
    let requested: Vec<CompletedPart> = match chosen {
        None => every_part(&stored),
        Some(chosen) => chosen
            .iter()
            .map(|(number, etag)| {
                Ok(CompletedPart {
                    part_number: part_number(*number)?,
                    etag: etag.clone(),
                    checksum_sha256: None,
                })
            })
            .collect::<Result<_, PartError>>()?,
    };
    let picked = check_completion(&stored, &requested, None)?;
    Ok(Assembly {
        parts: picked
            .iter()
            .map(|part| (part.part_number, part.etag.clone()))
            .collect(),
        size: picked.iter().map(|p| p.size).sum(),
    })
}

/// Checks a completed multipart object against the declaration stamped on it at create
/// (length, type, metadata), as confirm will: the parts must add up to the declared length.
///
/// # Errors
/// The first [`ConstraintViolation`] (a [`ConstraintViolation::Size`] when the parts do not
/// add up).
pub fn check_completed(object: &ObjectInfo) -> Result<(), ConstraintViolation> {
    UploadConstraints::from_stamp(object).map_or(Ok(()), |declared| declared.check(object))
}

pub mod kept;

#[cfg(test)]
mod tests;
