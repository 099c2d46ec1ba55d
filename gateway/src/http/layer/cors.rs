//! CORS as a layer over [`Cors`]'s rules. tower-http's `CorsLayer` answers a disallowed
//! preflight with 200 and no CORS headers; ours stays 403, so the rules of `crate::cors` are
//! kept and only the wrapping is here: a preflight is answered before anything else runs
//! (browsers send no credentials on it), other responses get the headers for an allowed origin.

use super::{Req, Res};
use crate::http::cors::Cors;
use futures_util::future::Either;
use pin_project_lite::pin_project;
use std::convert::Infallible;
use std::future::{ready, Future, Ready};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use tower::{Layer, Service};

/// Applies `cors`.
#[derive(Debug, Clone)]
pub struct CorsLayer {
    cors: Arc<Cors>,
}

impl CorsLayer {
    /// The layer for the configured origins.
    #[must_use]
    pub fn new(cors: Cors) -> Self {
        Self {
            cors: Arc::new(cors),
        }
    }
}

impl<S> Layer<S> for CorsLayer {
    type Service = CorsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CorsService {
            inner,
            cors: self.cors.clone(),
        }
    }
}

/// The service of [`CorsLayer`].
#[derive(Debug, Clone)]
pub struct CorsService<S> {
    inner: S,
    cors: Arc<Cors>,
}

impl<S> Service<Req> for CorsService<S>
where
    S: Service<Req, Response = Res, Error = Infallible>,
{
    type Response = Res;
    type Error = Infallible;
    type Future = Either<Ready<Result<Res, Infallible>>, Decorated<S::Future>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let grpc = crate::api::grpc::is_service_path(req.uri().path());
        if let Some(preflight) = self.cors.preflight(req.method(), req.headers(), grpc) {
            return Either::Left(ready(Ok(preflight)));
        }
        // Only requests with an Origin pay for the check on the way out.
        let origin = req
            .headers()
            .get(http::header::ORIGIN)
            .map(|origin| (self.cors.clone(), origin.clone(), grpc));
        Either::Right(Decorated {
            inner: self.inner.call(req),
            origin,
        })
    }
}

pin_project! {
    /// The inner future; its response gets the CORS headers for an allowed origin.
    pub struct Decorated<F> {
        #[pin]
        inner: F,
        origin: Option<(Arc<Cors>, http::HeaderValue, bool)>,
    }
}

impl<F: Future<Output = Result<Res, Infallible>>> Future for Decorated<F> {
    type Output = Result<Res, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Ok(mut response) = ready!(this.inner.poll(cx));
        if let Some((cors, origin, grpc)) = this.origin.take() {
            cors.decorate(Some(&origin), &mut response, grpc);
        }
        Poll::Ready(Ok(response))
    }
}
