//! The end of a drain as the answers it cuts off see it ([`DrainEnd`]). When the drain's grace
//! period ends (or a second signal comes) before every connection closed,
//! [`crate::http::server::Server::run`] marks it cut before it returns; `gateway serve` then
//! exits, and every call still open is dropped with the runtime. The request log reads the
//! mark ([`crate::http::layer::observe`]): whatever ends unfinished from then on (a request not
//! yet answered, an answer sent frame by frame, a download, a stream) is recorded as 503
//! `DRAIN_CUT`, not as its client's cancel (499 `STREAM_CANCELLED`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Whether the server's drain has ended cutting off what was still open; one per server,
/// shared by the layers whose answers record their own end.
#[derive(Debug, Clone, Default)]
pub struct DrainEnd(Arc<AtomicBool>);

impl DrainEnd {
    /// The drain is over before every connection closed: what is still open is cut off now.
    pub fn cut(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// Whether the drain ended cutting off what is still open (an answer dropped unfinished
    /// from now on was cut by the server).
    #[must_use]
    pub fn is_cut(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_clone_sees_the_cut() {
        let drain = DrainEnd::default();
        let seen = drain.clone();
        assert!(!seen.is_cut());
        drain.cut();
        assert!(seen.is_cut());
    }
}
