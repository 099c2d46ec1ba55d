//! Authentication as a layer: a request to a non-public path must carry valid credentials
//! ([`Authenticator`]); its [`Tenant`](crate::auth::Tenant), when there is one, goes into the
//! request's extensions for the tenant admission stage and the handlers. Companion's routes
//! under `/s3-token/<token>/` carry an upload token in their path instead (Uppy sends no
//! header of ours); `POST /api/v1/upload-token` gets the token minter in its extensions.

use super::body::early;
use super::{reply, Req, Res};
use crate::api::companion;
use crate::api::error::{ApiError, Code};
use crate::api::rest::Route;
use crate::auth::Authenticator;
use crate::http::server::Call;
use futures_util::future::Either;
use std::convert::Infallible;
use std::future::{ready, Ready};
use std::sync::Arc;
use std::task::{Context, Poll};
use tower::{Layer, Service};

/// Checks credentials with `auth`.
#[derive(Clone)]
pub struct AuthLayer {
    auth: Arc<Authenticator>,
}

impl AuthLayer {
    /// The layer for `auth`.
    #[must_use]
    pub fn new(auth: Authenticator) -> Self {
        Self {
            auth: Arc::new(auth),
        }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Authenticate<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Authenticate {
            inner,
            auth: self.auth.clone(),
        }
    }
}

/// The service of [`AuthLayer`].
#[derive(Clone)]
pub struct Authenticate<S> {
    inner: S,
    auth: Arc<Authenticator>,
}

impl<S> Service<Req> for Authenticate<S>
where
    S: Service<Req, Response = Res, Error = Infallible>,
{
    type Response = Res;
    type Error = Infallible;
    type Future = Either<Ready<Result<Res, Infallible>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Req) -> Self::Future {
        let call = Call::from_request(&req);
        if let Call::Rest(Some(route)) = call {
            if let Some(token) = companion::token_in(req.uri().path()) {
                return match self.auth.authenticate_upload_token(token) {
                    Ok(tenant) => {
                        if let Some(tenant) = tenant {
                            req.extensions_mut().insert(tenant);
                        }
                        Either::Right(self.inner.call(req))
                    }
                    Err(e) => Either::Left(ready(Ok(early(reply(call, e), req)))),
                };
            }
            if route == Route::UploadToken {
                if let Some(tokens) = self.auth.upload_tokens() {
                    req.extensions_mut().insert(tokens.clone());
                }
            }
        }
        // Under the upload-token prefix the token stands in for the bearer key: a path there
        // that is no route (an empty token, `…/batch`, `/api/…`) is the router's 404, not a
        // 401 asking for a key the client was told not to send.
        if matches!(call, Call::Rest(None)) && req.uri().path().starts_with(companion::TOKEN_PREFIX)
        {
            return Either::Right(self.inner.call(req));
        }
        // The store's presigned URLs carry their own SigV4 signature, checked by the store.
        if !call.is_store() && !self.auth.is_public(req.uri().path(), call.is_grpc()) {
            let mut given = req.headers().get_all(http::header::AUTHORIZATION).iter();
            let first = given.next();
            let checked = if given.next().is_some() && !self.auth.is_open() {
                // Which one would count is the client's guess: none does.
                Err(ApiError::new(
                    Code::InvalidRequest,
                    "more than one Authorization header: send exactly one",
                ))
            } else {
                self.auth.authenticate(first)
            };
            match checked {
                Ok(Some(tenant)) => {
                    req.extensions_mut().insert(tenant);
                }
                Ok(None) => {}
                Err(e) => return Either::Left(ready(Ok(early(reply(call, e), req)))),
            }
        }
        Either::Right(self.inner.call(req))
    }
}
