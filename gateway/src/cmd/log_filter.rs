//! The log filter for other crates' lines about a peer's protocol missteps: the `h2` crate
//! writes a WARN line for each PING acknowledgement it never asked for, and one per connection
//! closed for too many resets, so any client could drive the log's volume with 17-byte frames
//! (117 049 lines, 17.8 MB from 200 000 frames on one connection, before this filter).
//! [`PeerFaultLines`] lets such lines through within the client-fault budget
//! ([`crate::http::layer::log_budget::CLIENT_FAULTS`], 100 lines a second shared with our own
//! client-fault lines), counting the rest as left out; every other line passes untouched, decided
//! once per call site (no per-line cost).
//!
//! Only the `h2` crate's WARN and INFO lines are budgeted: it logs nothing an operator must act on
//! (its connection errors reach us as values), and its DEBUG and TRACE lines are off unless
//! asked for (`DRAFTSTORE_LOG=h2=debug`), then written whole.

use crate::http::layer::log_budget::LineBudget;
use tracing::subscriber::Interest;
use tracing::{Level, Metadata};
use tracing_subscriber::layer::{Context, Filter};

/// A per-layer filter holding the `h2` crate's WARN and INFO lines to `budget` (see the module).
#[derive(Debug, Clone, Copy)]
pub struct PeerFaultLines {
    budget: &'static LineBudget,
}

impl PeerFaultLines {
    /// Holds the `h2` crate's lines to `budget` (the process's: `&CLIENT_FAULTS`).
    #[must_use]
    pub fn new(budget: &'static LineBudget) -> Self {
        Self { budget }
    }
}

/// Whether `meta` is a line this filter budgets: an event of the `h2` crate at WARN or INFO.
fn budgeted(meta: &Metadata<'_>) -> bool {
    let target = meta.target();
    meta.is_event()
        && (*meta.level() == Level::WARN || *meta.level() == Level::INFO)
        && (target == "h2" || target.starts_with("h2::"))
}

impl<S> Filter<S> for PeerFaultLines {
    fn enabled(&self, meta: &Metadata<'_>, _: &Context<'_, S>) -> bool {
        !budgeted(meta) || self.budget.take_quietly_now()
    }

    fn callsite_enabled(&self, meta: &'static Metadata<'static>) -> Interest {
        if budgeted(meta) {
            Interest::sometimes()
        } else {
            Interest::always()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::Layer;

    /// Lines written, kept in memory.
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_h2_crates_warnings_are_held_to_the_budget_and_ours_are_not() {
        static BUDGET: std::sync::LazyLock<LineBudget> =
            std::sync::LazyLock::new(|| LineBudget::new(3));
        let lines = Lines::default();
        let writer = lines.clone();
        let layer = tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .with_filter(PeerFaultLines::new(&BUDGET));
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            for _ in 0..10 {
                tracing::warn!(target: "h2::proto::ping_pong", "recv PING ack that we never sent");
            }
            for _ in 0..5 {
                tracing::warn!(target: "draftstore_gateway::http::server", "ours");
                tracing::error!(target: "h2::proto::streams", "an error line is never held");
                tracing::warn!(target: "h2x", "another crate");
            }
        });
        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        let count = |what: &str| text.lines().filter(|l| l.contains(what)).count();
        assert_eq!(count("recv PING ack"), 3, "{text}");
        assert_eq!(
            (count("ours"), count("never held"), count("another crate")),
            (5, 5, 5)
        );
        // The seven left out wait for the next line of ours that the budget lets through.
        assert_eq!(
            BUDGET.take(u64::MAX),
            crate::http::layer::log_budget::Take::WriteAfter(7)
        );
    }
}
