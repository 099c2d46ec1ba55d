//! A time limit that costs nothing when the work is done on its first poll.
//!
//! `tokio::time::timeout` reads the clock and takes a handle on the timer driver when it is
//! created. Most requests here finish on their first poll (the body arrived with the head, no
//! storage call), so [`within`] polls the work first and creates the timer only when the work
//! has to wait; the limit then counts from that moment, a poll's length later than the start.

use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Sleep;

/// The work did not finish within its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed;

/// `work`, cut off after `limit` of waiting.
pub fn within<F: Future>(limit: Duration, work: F) -> Within<F> {
    Within {
        work,
        sleep: None,
        limit,
    }
}

pin_project! {
    /// The future of [`within`].
    pub struct Within<F> {
        #[pin]
        work: F,
        // Boxed: made only when the work waits, and kept out of every request's future.
        sleep: Option<Pin<Box<Sleep>>>,
        limit: Duration,
    }
}

impl<F: Future> Future for Within<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(done) = this.work.poll(cx) {
            return Poll::Ready(Ok(done));
        }
        let limit = *this.limit;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Elapsed)),
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn ready_work_is_returned_and_arms_no_timer() {
        assert_eq!(within(Duration::ZERO, async { 7 }).await, Ok(7));
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_work_is_cut_at_the_limit() {
        let started = tokio::time::Instant::now();
        let slow = tokio::time::sleep(Duration::from_secs(60));
        assert_eq!(within(Duration::from_secs(2), slow).await, Err(Elapsed));
        assert_eq!(started.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_work_that_ends_in_time_is_returned() {
        let work = async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            "done"
        };
        assert_eq!(within(Duration::from_secs(2), work).await, Ok("done"));
    }
}
