//! The one place the gateway reads the wall clock. Everything below it (signer, core) takes the
//! time as an argument; callers turn `None` — a clock before 1970 or past the signer's range —
//! into their own error.

use draftstore_signer::Timestamp;
use std::cell::Cell;
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
    let secs = unix_now()?;
    LAST.with(|last| match last.get() {
        Some(cached) if cached.unix() == secs => Some(cached),
        _ => {
            let now = Timestamp::from_unix(secs).ok()?;
            last.set(Some(now));
            Some(now)
        }
    })
}

thread_local! {
    /// The last second [`timestamp_now`] turned into a [`Timestamp`] on this thread: requests
    /// on a busy server share their second, and writing a second's SigV4 text costs about
    /// 450 instructions (measured on the upload-url path).
    static LAST: Cell<Option<Timestamp>> = const { Cell::new(None) };
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

    #[test]
    fn the_cached_second_moves_on_with_the_clock() {
        let first = timestamp_now().unwrap();
        while unix_now().unwrap() == first.unix() {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let floor = unix_now().unwrap();
        let next = timestamp_now().unwrap();
        assert!(
            next > first && next.unix() >= floor,
            "{first:?} then {next:?}"
        );
        assert_eq!(
            next.amz_date(),
            Timestamp::from_unix(next.unix()).unwrap().amz_date()
        );
    }
}
