//! The upload page as a layer: a `GET` or `HEAD` of one of the page's files is answered at
//! once, before body reading, admission and authentication (the files are public and cost
//! nothing); every other request goes on. Without a page (`DRAFTSTORE_UI=false`) it passes
//! everything on.

use super::Page;
use crate::http::layer::{Req, Res};
use futures_util::future::Either;
use std::convert::Infallible;
use std::future::{ready, Ready};
use std::sync::Arc;
use std::task::{Context, Poll};
use tower::{Layer, Service};

/// Serves `page`, when there is one.
#[derive(Debug, Clone)]
pub struct UiLayer {
    page: Option<Arc<Page>>,
}

impl UiLayer {
    /// The layer serving `page` (`None`: no page).
    #[must_use]
    pub fn new(page: Option<Page>) -> Self {
        Self {
            page: page.map(Arc::new),
        }
    }
}

impl<S> Layer<S> for UiLayer {
    type Service = Ui<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Ui {
            inner,
            page: self.page.clone(),
        }
    }
}

/// The service of [`UiLayer`].
#[derive(Debug, Clone)]
pub struct Ui<S> {
    inner: S,
    page: Option<Arc<Page>>,
}

impl<S> Service<Req> for Ui<S>
where
    S: Service<Req, Response = Res, Error = Infallible>,
{
    type Response = Res;
    type Error = Infallible;
    type Future = Either<Ready<Result<Res, Infallible>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let answer = self
            .page
            .as_ref()
            .and_then(|page| page.answer(req.method(), req.uri().path()));
        match answer {
            Some(response) => Either::Left(ready(Ok(response))),
            None => Either::Right(self.inner.call(req)),
        }
    }
}
