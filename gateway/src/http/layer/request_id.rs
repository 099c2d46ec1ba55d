//! The request id: the caller's `x-request-id` when sane, else a new one (see
//! [`RequestId`]), put in the request's extensions for the layers inside and returned on the
//! response. tower-http's request-id layers would keep any caller value and index it in HPACK;
//! this keeps today's rules (sanity check, never-indexed header).

use super::{meta_mut, Req, Res};
use crate::http::response::{RequestId, REQUEST_ID_NAME};
use pin_project_lite::pin_project;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tower::{Layer, Service};

/// Sets and returns the request id.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestIdLayer;

impl<S> Layer<S> for RequestIdLayer {
    type Service = SetRequestId<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SetRequestId { inner }
    }
}

/// The service of [`RequestIdLayer`].
#[derive(Debug, Clone)]
pub struct SetRequestId<S> {
    inner: S,
}

impl<S> Service<Req> for SetRequestId<S>
where
    S: Service<Req, Response = Res, Error = Infallible>,
{
    type Response = Res;
    type Error = Infallible;
    type Future = WithId<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Req) -> Self::Future {
        let id = RequestId::of(req.headers().get(&REQUEST_ID_NAME));
        meta_mut(&mut req).id = Some(id.clone());
        WithId {
            inner: self.inner.call(req),
            id: Some(id),
        }
    }
}

pin_project! {
    /// The inner future; its response gets the `x-request-id` header.
    pub struct WithId<F> {
        #[pin]
        inner: F,
        id: Option<RequestId>,
    }
}

impl<F: Future<Output = Result<Res, Infallible>>> Future for WithId<F> {
    type Output = Result<Res, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Ok(mut response) = ready!(this.inner.poll(cx));
        if let Some(id) = this.id.take() {
            response.headers_mut().insert(REQUEST_ID_NAME, id.header());
        }
        Poll::Ready(Ok(response))
    }
}
