//! Timestamps in SigV4's `YYYYMMDDTHHMMSSZ` form. The signer never reads a clock: callers pass
//! the time in, which keeps signing deterministic and testable.

use crate::Error;
use std::fmt;

/// A UTC second within years 1970..=9999, with its SigV4 text form precomputed.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    unix: i64,
    amz: [u8; 16],
}

const MAX_UNIX: i64 = 253_402_300_799; // 9999-12-31T23:59:59Z

impl Timestamp {
    /// From seconds since the Unix epoch.
    ///
    /// # Errors
    /// [`Error::InvalidTimestamp`] outside 1970-01-01T00:00:00Z..=9999-12-31T23:59:59Z.
    pub fn from_unix(secs: i64) -> Result<Self, Error> {
        if !(0..=MAX_UNIX).contains(&secs) {
            return Err(Error::InvalidTimestamp);
        }
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        // Every field is a small non-negative number here (year ≤ 9999), so u32 holds it.
        let field = |v: i64| u32::try_from(v).unwrap_or(0);
        let (y, rem) = (field(y), field(rem));
        let [y0, y1] = two_digits(y / 100);
        let [y2, y3] = two_digits(y % 100);
        let [mo0, mo1] = two_digits(field(m));
        let [d0, d1] = two_digits(field(d));
        let [h0, h1] = two_digits(rem / 3600);
        let [mi0, mi1] = two_digits(rem % 3600 / 60);
        let [s0, s1] = two_digits(rem % 60);
        let amz = [
            y0, y1, y2, y3, mo0, mo1, d0, d1, b'T', h0, h1, mi0, mi1, s0, s1, b'Z',
        ];
        Ok(Self { unix: secs, amz })
    }

    /// Parses `YYYYMMDDTHHMMSSZ` (the `X-Amz-Date` form), checking that the date exists.
    ///
    /// # Errors
    /// [`Error::InvalidTimestamp`] for any other text.
    pub fn parse_amz(text: &str) -> Result<Self, Error> {
        let b: &[u8; 16] = text
            .as_bytes()
            .try_into()
            .map_err(|_| Error::InvalidTimestamp)?;
        let num = |from: usize, len: usize| -> Result<i64, Error> {
            b.get(from..from + len)
                .filter(|s| s.iter().all(u8::is_ascii_digit))
                .map(|s| s.iter().fold(0_i64, |n, d| n * 10 + i64::from(d - b'0')))
                .ok_or(Error::InvalidTimestamp)
        };
        if b.get(8) != Some(&b'T') || b.get(15) != Some(&b'Z') {
            return Err(Error::InvalidTimestamp);
        }
        let (y, mo, d) = (num(0, 4)?, num(4, 2)?, num(6, 2)?);
        let (h, mi, s) = (num(9, 2)?, num(11, 2)?, num(13, 2)?);
        if !(1..=12).contains(&mo)
            || d < 1
            || d > days_in_month(y, mo)
            || h > 23
            || mi > 59
            || s > 59
        {
            return Err(Error::InvalidTimestamp);
        }
        Self::from_unix(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s)
    }

    /// Seconds since the Unix epoch.
    #[must_use]
    pub const fn unix(&self) -> i64 {
        self.unix
    }

    /// `YYYYMMDDTHHMMSSZ`, as in `X-Amz-Date`.
    #[must_use]
    pub fn amz_date(&self) -> &str {
        std::str::from_utf8(&self.amz).unwrap_or_default()
    }

    /// `YYYYMMDD`, the date of the credential scope.
    #[must_use]
    pub fn date_stamp(&self) -> &str {
        self.amz_date().get(..8).unwrap_or_default()
    }

    /// RFC 3339 in UTC, to the second: `YYYY-MM-DDTHH:MM:SSZ` (20 ASCII bytes), e.g.
    /// `2026-11-27T12:00:00Z` for `20261127T120000Z`. The same text as ISO 8601's extended
    /// form, which S3 POST policies (`expiration`) and JSON APIs expect. Never fails: every
    /// [`Timestamp`] is within years 1970..=9999.
    #[must_use]
    pub fn rfc3339(&self) -> String {
        let mut out = String::with_capacity(20);
        self.write_rfc3339(&mut out);
        out
    }

    /// Appends [`Timestamp::rfc3339`]'s text to `out` (no allocation when it has room).
    pub(crate) fn write_rfc3339(&self, out: &mut String) {
        let [y0, y1, y2, y3, mo0, mo1, d0, d1, _, h0, h1, mi0, mi1, s0, s1, _] = self.amz;
        let text = [
            y0, y1, y2, y3, b'-', mo0, mo1, b'-', d0, d1, b'T', h0, h1, b':', mi0, mi1, b':', s0,
            s1, b'Z',
        ];
        // Every byte is an ASCII digit or separator, so this is UTF-8.
        out.push_str(std::str::from_utf8(&text).unwrap_or_default());
    }

    /// This time plus `secs`, or `None` past year 9999.
    #[must_use]
    pub fn checked_add(&self, secs: u64) -> Option<Self> {
        let secs = i64::try_from(secs).ok()?;
        Self::from_unix(self.unix.checked_add(secs)?).ok()
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.amz_date())
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.amz_date())
    }
}

/// The two ASCII digits of `v` (0..=99; higher values keep their last two digits).
const fn two_digits(v: u32) -> [u8; 2] {
    // Both are below 10, so the casts keep the values.
    #[allow(clippy::cast_possible_truncation)]
    [b'0' + (v / 10 % 10) as u8, b'0' + (v % 10) as u8]
}

const fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

const fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Howard Hinnant's `days_from_civil`: days since 1970-01-01 of a proleptic Gregorian date.
const fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
const fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_instants_format() {
        assert_eq!(
            Timestamp::from_unix(0).unwrap().amz_date(),
            "19700101T000000Z"
        );
        let t = Timestamp::from_unix(1_764_244_800).unwrap();
        assert_eq!(t.amz_date(), "20251127T120000Z");
        assert_eq!(t.date_stamp(), "20251127");
        assert_eq!(
            Timestamp::from_unix(MAX_UNIX).unwrap().amz_date(),
            "99991231T235959Z"
        );
    }

    #[test]
    fn out_of_range_and_malformed_are_errors() {
        assert_eq!(Timestamp::from_unix(-1), Err(Error::InvalidTimestamp));
        assert_eq!(
            Timestamp::from_unix(MAX_UNIX + 1),
            Err(Error::InvalidTimestamp)
        );
        for bad in [
            "",
            "20261127T120000",
            "20261127 120000Z",
            "20261327T120000Z",
            "20260230T120000Z",
            "20261127T240000Z",
            "2026112aT120000Z",
            "20261127T120000ZZ",
            "２0261127T120000Z",
        ] {
            assert_eq!(
                Timestamp::parse_amz(bad),
                Err(Error::InvalidTimestamp),
                "{bad}"
            );
        }
        assert!(Timestamp::parse_amz("20240229T000000Z").is_ok());
        assert!(Timestamp::parse_amz("20230229T000000Z").is_err());
    }

    #[test]
    fn rfc3339_is_the_extended_form_of_the_same_instant() {
        let t = Timestamp::parse_amz("20261127T120509Z").unwrap();
        assert_eq!(t.rfc3339(), "2026-11-27T12:05:09Z");
        assert_eq!(
            Timestamp::from_unix(0).unwrap().rfc3339(),
            "1970-01-01T00:00:00Z"
        );
        assert_eq!(
            Timestamp::from_unix(MAX_UNIX).unwrap().rfc3339(),
            "9999-12-31T23:59:59Z"
        );
    }

    #[test]
    fn checked_add_stops_at_year_9999() {
        let t = Timestamp::from_unix(MAX_UNIX - 1).unwrap();
        assert_eq!(t.checked_add(1).map(|t| t.unix()), Some(MAX_UNIX));
        assert_eq!(t.checked_add(2), None);
        assert_eq!(t.checked_add(u64::MAX), None);
    }

    proptest! {
        #[test]
        fn parse_inverts_format(secs in 0..=MAX_UNIX) {
            let t = Timestamp::from_unix(secs).unwrap();
            prop_assert_eq!(Timestamp::parse_amz(t.amz_date()).unwrap().unix(), secs);
            let text = t.rfc3339();
            let amz: String = text.chars().filter(|c| !matches!(c, '-' | ':')).collect();
            prop_assert_eq!(amz, t.amz_date());
        }
    }
}
