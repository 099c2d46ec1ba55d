//! A budget on the log lines of client faults, so that no client can drive the log's volume:
//! a flood of 401s, 404s or shed requests would otherwise write one INFO line each (42 MB in
//! 1.5 s, measured). At most [`LINES_PER_SECOND`] such lines are written per second, process
//! wide; past it they are counted, and the first line of a later second is preceded by one
//! saying how many were left out, or, when no line comes, the server's once-a-second report
//! says it ([`LineBudget::left_out_before`]). The metrics still count every request, and errors an operator
//! must act on (ERROR) are never held back.
//!
//! The same budget ([`CLIENT_FAULTS`]) holds the lines the `h2` crate writes about a peer's
//! protocol missteps (`recv PING ack that we never sent`, one per frame: 117 049 lines, 17.8 MB
//! from 200 000 frames on one connection, measured): see [`crate::cmd::log_filter`]. Those are
//! taken quietly ([`LineBudget::take_quietly`]): their lines left out are reported by the next
//! client-fault line of ours.
//!
//! Pure logic ([`LineBudget::take`], the second passed in) apart from the clock
//! ([`LineBudget::take_now`]).

use std::sync::{Mutex, PoisonError};
use std::time::Instant;

/// Client-fault lines written per second at most.
pub const LINES_PER_SECOND: u32 = 100;

/// The budget of client-fault lines, process wide: the observe layer's lines and the `h2` crate's.
pub static CLIENT_FAULTS: std::sync::LazyLock<LineBudget> =
    std::sync::LazyLock::new(|| LineBudget::new(LINES_PER_SECOND));

/// The lines of one second, and those left out since the last line written.
#[derive(Debug)]
pub struct LineBudget {
    per_second: u32,
    state: Mutex<State>,
    started: Instant,
}

#[derive(Debug, Default)]
struct State {
    second: u64,
    written: u32,
    left_out: u64,
}

/// What to do with one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    /// Write it.
    Write,
    /// Write it, after a line saying this many were left out before it.
    WriteAfter(u64),
    /// Leave it out (counted).
    LeaveOut,
}

impl LineBudget {
    /// A budget of `per_second` lines a second (at least 1).
    #[must_use]
    pub fn new(per_second: u32) -> Self {
        Self {
            per_second: per_second.max(1),
            state: Mutex::new(State::default()),
            started: Instant::now(),
        }
    }

    /// [`Self::take`] at the current second (of a monotonic clock).
    pub fn take_now(&self) -> Take {
        self.take(self.started.elapsed().as_secs())
    }

    /// [`Self::take_quietly`] at the current second (of a monotonic clock).
    pub fn take_quietly_now(&self) -> bool {
        self.take_quietly(self.started.elapsed().as_secs())
    }

    /// Whether a line that cannot say what was left out before it (another crate's) may be
    /// written in `second`: counted in the second's lines if so, else counted as left out, to
    /// be reported by the next line [`Self::take`] lets through.
    pub fn take_quietly(&self, second: u64) -> bool {
        self.admit(second).is_some()
    }

    /// Counts one line in `second`: the state to read further if it is written, `None` (and
    /// counted as left out) past the second's budget.
    fn admit(&self, second: u64) -> Option<std::sync::MutexGuard<'_, State>> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if second != state.second {
            state.second = second;
            state.written = 0;
        }
        if state.written >= self.per_second {
            state.left_out += 1;
            return None;
        }
        state.written += 1;
        Some(state)
    }

    /// The lines left out in seconds before `second` and not yet reported, taken to be reported
    /// now; `None` when there are none (or they were all left out in `second` itself, which
    /// may still let a line through to report them).
    pub fn left_out_before(&self, second: u64) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.left_out == 0 || state.second >= second {
            return None;
        }
        Some(std::mem::take(&mut state.left_out))
    }

    /// [`Self::left_out_before`] the current second (of a monotonic clock).
    pub fn left_out_before_now(&self) -> Option<u64> {
        self.left_out_before(self.started.elapsed().as_secs())
    }

    /// Whether a line may be written in `second` (seconds of a monotonic clock).
    pub fn take(&self, second: u64) -> Take {
        let Some(mut state) = self.admit(second) else {
            return Take::LeaveOut;
        };
        match std::mem::take(&mut state.left_out) {
            0 => Take::Write,
            n => Take::WriteAfter(n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_past_the_budget_are_left_out_and_counted_in_the_next_second() {
        let budget = LineBudget::new(3);
        let first: Vec<Take> = (0..5).map(|_| budget.take(7)).collect();
        assert_eq!(
            first,
            [
                Take::Write,
                Take::Write,
                Take::Write,
                Take::LeaveOut,
                Take::LeaveOut
            ]
        );
        assert_eq!(budget.take(8), Take::WriteAfter(2));
        assert_eq!(budget.take(8), Take::Write);
        // Nothing left out since: a later second writes plainly.
        assert_eq!(budget.take(20), Take::Write);
    }

    #[test]
    fn lines_left_out_are_reported_once_their_second_has_passed() {
        let budget = LineBudget::new(1);
        assert_eq!(budget.take(5), Take::Write);
        assert_eq!(budget.take(5), Take::LeaveOut);
        assert_eq!(budget.left_out_before(5), None, "the second is not over");
        assert_eq!(budget.left_out_before(6), Some(1));
        assert_eq!(budget.left_out_before(7), None, "reported once");
        assert_eq!(budget.take(8), Take::Write, "nothing left to report");
    }

    #[test]
    fn quiet_lines_share_the_budget_and_leave_the_report_to_the_next_line() {
        let budget = LineBudget::new(2);
        assert!(budget.take_quietly(3));
        assert_eq!(budget.take(3), Take::Write);
        // The second is full for both kinds.
        assert!(!budget.take_quietly(3));
        assert_eq!(budget.take(3), Take::LeaveOut);
        // A quiet line of a later second does not take the report over.
        assert!(budget.take_quietly(4));
        assert_eq!(budget.take(4), Take::WriteAfter(2));
    }
}
