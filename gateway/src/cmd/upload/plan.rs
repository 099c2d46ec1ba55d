//! Single PUT or parts, and where each part lies in the file (S3's multipart limits: parts of
//! 5 MiB to 5 GiB, the last one smaller, at most 10 000 of them, numbered from 1).

/// The smallest part S3 accepts (all but the last), in bytes: core's rule, not a copy of it.
pub const MIN_PART: u64 = draftstore_core::MIN_PART_SIZE;
/// The largest part (and the largest single PUT), in bytes.
pub const MAX_PART: u64 = draftstore_core::MAX_PART_SIZE;
/// Most parts in one upload.
pub const MAX_PARTS: u64 = draftstore_core::MAX_PART_NUMBER as u64;

/// How a file is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One presigned PUT.
    Single,
    /// A multipart upload.
    Multipart,
}

/// Files below `threshold` bytes (and empty files) go in one PUT, the rest in parts.
#[must_use]
pub fn choose(size: u64, threshold: u64) -> Mode {
    if size < threshold.clamp(MIN_PART, MAX_PART) {
        Mode::Single
    } else {
        Mode::Multipart
    }
}

/// A file of `size` bytes cut in parts of `part_size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// The file's size in bytes.
    pub size: u64,
    /// Every part's size but the last's, in bytes (≥ 1).
    pub part_size: u64,
}

impl Layout {
    /// The layout, when `part_size` fits S3's limits for `size` bytes.
    #[must_use]
    pub fn new(size: u64, part_size: u64) -> Option<Self> {
        let layout = Self { size, part_size };
        ((MIN_PART..=MAX_PART).contains(&part_size) && u64::from(layout.count()) <= MAX_PARTS)
            .then_some(layout)
    }

    /// The number of parts (one for an empty file).
    #[must_use]
    pub fn count(&self) -> u32 {
        let n = self.size.div_ceil(self.part_size.max(1)).max(1);
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// Part `number`'s `(offset, length)` in bytes; `None` outside `1..=count`.
    #[must_use]
    pub fn range(&self, number: u32) -> Option<(u64, u64)> {
        if number == 0 || number > self.count() {
            return None;
        }
        let offset = u64::from(number - 1) * self.part_size;
        Some((offset, self.part_size.min(self.size - offset)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    #[test]
    fn small_files_go_in_one_put_and_the_threshold_is_at_least_5_mib() {
        assert_eq!(choose(0, 16 * MIB), Mode::Single);
        assert_eq!(choose(16 * MIB - 1, 16 * MIB), Mode::Single);
        assert_eq!(choose(16 * MIB, 16 * MIB), Mode::Multipart);
        assert_eq!(choose(4 * MIB, 1), Mode::Single);
        assert_eq!(choose(5 * MIB, 1), Mode::Multipart);
    }

    #[test]
    fn parts_cover_the_file_exactly() {
        let layout = Layout::new(64 * MIB + 3, 8 * MIB).unwrap();
        assert_eq!(layout.count(), 9);
        assert_eq!(layout.range(1), Some((0, 8 * MIB)));
        assert_eq!(layout.range(9), Some((64 * MIB, 3)));
        assert_eq!(layout.range(0), None);
        assert_eq!(layout.range(10), None);
        let total: u64 = (1..=layout.count())
            .map(|n| layout.range(n).unwrap().1)
            .sum();
        assert_eq!(total, layout.size);
        let even = Layout::new(64 * MIB, 8 * MIB).unwrap();
        assert_eq!(even.count(), 8);
        assert_eq!(even.range(8), Some((56 * MIB, 8 * MIB)));
    }

    #[test]
    fn part_sizes_outside_s3_limits_are_refused() {
        assert!(Layout::new(10 * MIB, MIB).is_none());
        assert!(Layout::new(10 * MIB, 6 * 1024 * MIB).is_none());
        assert!(Layout::new(10_001 * 5 * MIB, 5 * MIB).is_none());
        assert!(Layout::new(10_000 * 5 * MIB, 5 * MIB).is_some());
    }
}
