//! The request time limit (`DRAFTSTORE_REQUEST_TIMEOUT_MS`) as a layer: 504 `TIMEOUT` (gRPC
//! `DEADLINE_EXCEEDED`) when the work is not done in time, through [`within`], which arms no
//! timer for work done on its first poll. The embedded store's object transfers are not API
//! calls and have no such limit.

use super::{reply, Req, Res};
use crate::api::error::{ApiError, Code};
use crate::http::deadline::{within, Within};
use crate::http::server::Call;
use pin_project_lite::pin_project;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tower::{Layer, Service};

/// Cuts API work off after `limit`.
#[derive(Debug, Clone, Copy)]
pub struct TimeoutLayer {
    limit: Duration,
}

impl TimeoutLayer {
    /// API calls get `limit`.
    #[must_use]
    pub const fn new(limit: Duration) -> Self {
        Self { limit }
    }
}

impl<S> Layer<S> for TimeoutLayer {
    type Service = Timeout<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Timeout {
            inner,
            limit: self.limit,
        }
    }
}

/// The service of [`TimeoutLayer`].
#[derive(Debug, Clone)]
pub struct Timeout<S> {
    inner: S,
    limit: Duration,
}

impl<S> Service<Req> for Timeout<S>
where
    S: Service<Req, Response = Res, Error = Infallible>,
{
    type Response = Res;
    type Error = Infallible;
    type Future = Limited<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let call = Call::from_request(&req);
        if call.is_store() {
            return Limited::Unlimited {
                inner: self.inner.call(req),
            };
        }
        Limited::Within {
            inner: within(self.limit, self.inner.call(req)),
            call,
        }
    }
}

pin_project! {
    /// The inner future, within the limit or (object transfers) without one. Its fields are
    /// the inner future and the call (pin-project-lite takes no docs on variant fields).
    #[allow(missing_docs)]
    #[project = LimitedProj]
    pub enum Limited<F> {
        /// An API call.
        Within { #[pin] inner: Within<F>, call: Call },
        /// An object transfer.
        Unlimited { #[pin] inner: F },
    }
}

impl<F: Future<Output = Result<Res, Infallible>>> Future for Limited<F> {
    type Output = Result<Res, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            LimitedProj::Unlimited { inner } => inner.poll(cx),
            LimitedProj::Within { inner, call } => Poll::Ready(match ready!(inner.poll(cx)) {
                Ok(done) => done,
                Err(_) => Ok(reply(
                    *call,
                    ApiError::new(Code::Timeout, "the request took too long"),
                )),
            }),
        }
    }
}
