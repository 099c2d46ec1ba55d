//! The one place the gateway reads the wall clock. Everything below it (signer, core) takes the
//! time as an argument; callers turn `None` — a clock before 1970 or past the signer's range —
//! into their own error.

use draftstore_signer::Timestamp;
use std::time::{SystemTime, UNIX_EPOCH};

/// Whole seconds since the Unix epoch, or `None` when the clock is before 1970.
#[must_use]
pub fn unix_now() -> Option<i64> {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_secs()).ok())
}

/// The current time as a signer [`Timestamp`], or `None` when the clock is out of its range.
#[must_use]
pub fn timestamp_now() -> Option<Timestamp> {
    unix_now().and_then(|s| Timestamp::from_unix(s).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_now_lies_between_two_unix_readings() {
        let before = Timestamp::from_unix(unix_now().unwrap()).unwrap();
        let stamp = timestamp_now().unwrap();
        let after = Timestamp::from_unix(unix_now().unwrap()).unwrap();
        assert!(
            before <= stamp && stamp <= after,
            "{before:?} {stamp:?} {after:?}"
        );
        assert!(before > Timestamp::from_unix(1_700_000_000).unwrap());
    }
}
