//! The request path's cross-cutting rules, each a tower layer in its own file, generic over the
//! service it wraps, with no `Box` per request. [`crate::http::server::stack`] composes them once,
//! outermost first: [`request_id`], [`observe`] (metrics and the log line), [`cors`],
//! [`protocol`] (exact routing rules), [`admission`] by peer, [`auth`], [`admission`] by
//! tenant, [`timeout`], then the router. [`connection`] wraps the stack per connection (peer
//! address, activity for the idle timer, the global stream cap); [`escape`] makes request text
//! safe for the log.

pub mod admission;
pub mod auth;
pub mod connection;
pub mod cors;
pub mod escape;
pub mod observe;
pub mod protocol;
pub mod request_id;
pub mod timeout;

use crate::api::error::ApiError;
use crate::api::{grpc, legacy, rest};
use crate::http::response::Body;
use crate::http::server::Call;

/// A request as hyper hands it over.
pub type Req = http::Request<hyper::body::Incoming>;
/// A response of either protocol.
pub type Res = http::Response<Body>;

/// The error a response was made from, kept in its extensions for [`observe`] (the log line,
/// the gRPC status of the metrics).
#[derive(Debug, Clone)]
pub struct Failed(pub ApiError);

/// `e` encoded for `call`'s protocol (JSON error body, or gRPC status in trailers-only form),
/// the error kept in the response's extensions.
#[must_use]
pub fn reply(call: Call, e: ApiError) -> Res {
    let mut response = match call {
        Call::Grpc(_) => grpc::status::error(e.grpc_code(), &e.message),
        // The original DraftStore's routes answer errors in its shape.
        Call::Rest(Some(rest::Route::Legacy(route))) => legacy::error_response(&e, route),
        Call::Rest(_) | Call::Store => rest::error_response(&e),
    };
    response.extensions_mut().insert(Failed(e));
    response
}
