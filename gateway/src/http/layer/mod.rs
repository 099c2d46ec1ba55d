//! The request path's cross-cutting rules, each a tower layer in its own file, generic over the
//! service it wraps, with no `Box` per request. [`crate::http::server::stack`] composes them once,
//! outermost first: [`request_id`], [`observe`] (metrics and the log line), [`cors`],
//! [`protocol`] (exact routing rules), [`transfer`] (the embedded store's transfer slots, by
//! peer and by presigned URL, and the stall watch of HTTP/2 downloads), [`body`] (API bodies
//! read whole, shared by peer, before any
//! place is taken), [`admission`] by peer, [`auth`], [`admission`] by tenant, [`timeout`],
//! then the router. [`connection`] wraps the stack per connection (peer address, activity for
//! the idle timer and for dropping a closing connection with nothing left, the global stream
//! cap, the socket's count of bytes written); [`unsent`] bounds the bytes of big answers
//! (HTTP/1.1 and HTTP/2) not yet taken, for [`admission`]; [`escape`] makes request text safe
//! for the log, and [`log_budget`] keeps client faults from driving its volume.

pub mod admission;
pub mod auth;
pub mod body;
pub mod connection;
pub mod cors;
pub mod escape;
pub mod log_budget;
pub mod observe;
pub mod protocol;
pub mod request_id;
pub mod timeout;
pub mod transfer;
pub mod unsent;

use crate::api::error::ApiError;
use crate::api::{grpc, legacy, rest};
use crate::http::body::Collected;
use crate::http::response::{Body, RequestId};
use crate::http::server::Call;
use std::net::IpAddr;

/// A request as hyper hands it over.
pub type Req = http::Request<hyper::body::Incoming>;
/// A response of either protocol.
pub type Res = http::Response<Body>;

/// What the layers learn about a request, kept in its extensions as ONE value: each
/// `Extensions::insert` allocates a box for its value (and the first one the map), and four
/// facts inserted apart cost five allocations, a rehash and as many frees per request.
/// [`connection`] puts it in with the peer; later layers fill in the rest through [`meta_mut`].
#[derive(Clone, Default)]
pub struct Meta {
    /// The TCP peer of the connection ([`connection`]); `None` for a request that came another
    /// way (counted as [`crate::http::shares::Key::Anyone`]).
    pub peer: Option<IpAddr>,
    /// It arrived past the global cap on open requests ([`connection`]).
    pub over_cap: bool,
    /// Its id ([`request_id`]).
    pub id: Option<RequestId>,
    /// What it asks for, classified once ([`observe`]).
    pub call: Option<Call>,
    /// Its API body, read whole ([`body`]); taken by the router.
    pub body: Option<Collected>,
    /// Over HTTP/1.1, the bytes its connection's socket has written ([`connection`]), which
    /// pace its answer if big ([`admission`]); taken by the admission stage that paces.
    pub written: Option<std::sync::Arc<crate::http::socket::Written>>,
    /// When the client's deadline passes (`grpc-timeout`, `Connect-Timeout-Ms`), counted from
    /// the request's arrival ([`body`]): the body's reading and the call's work share it.
    pub deadline: Option<tokio::time::Instant>,
}

/// `req`'s [`Meta`], if a layer put it there.
#[must_use]
pub fn meta<T>(req: &http::Request<T>) -> Option<&Meta> {
    req.extensions().get::<Meta>()
}

/// `req`'s [`Meta`], put there empty when missing.
pub fn meta_mut<T>(req: &mut http::Request<T>) -> &mut Meta {
    req.extensions_mut().get_or_insert_default::<Meta>()
}

/// The error a response was made from, kept in its extensions for [`observe`] (the log line,
/// the gRPC status of the metrics).
#[derive(Debug, Clone)]
pub struct Failed(pub ApiError);

/// `e` encoded for `call`'s protocol (REST's JSON error body, gRPC's trailers-only form,
/// gRPC-Web's trailers frame, Connect's JSON error, or S3-style XML on the embedded store's URLs),
/// the error kept in the response's extensions.
#[must_use]
pub fn reply(call: Call, e: ApiError) -> Res {
    let mut response = match call {
        Call::Grpc(_) => grpc::status::error(&e),
        Call::GrpcWeb(flavor, _) => grpc::web::error(flavor, &e),
        // Connect's streaming form answers errors with 200 and an end-of-stream envelope.
        Call::Connect(grpc::connect::Codec::Stream, _) => grpc::connect::stream::error(&e),
        Call::Connect(..) => grpc::connect::error(&e),
        Call::Store => store_error(&e),
        // The original DraftStore's routes answer errors in its shape.
        Call::Rest(Some(rest::Route::Legacy(route))) => legacy::error_response(&e, route),
        // Companion's routes answer errors in Companion's shape.
        Call::Rest(Some(rest::Route::Companion(_))) => {
            crate::api::companion::rest::error_response(&e)
        }
        Call::Rest(_) => rest::error_response(&e),
    };
    response.extensions_mut().insert(Failed(e));
    response
}

/// `e` as S3 would answer an object request: its status with the S3 code closest to it
/// (`SlowDown` for a shed request) and a fixed message.
fn store_error(e: &ApiError) -> Res {
    let status = http::StatusCode::from_u16(e.http_status())
        .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    let (code, message) = match status.as_u16() {
        503 => ("SlowDown", "Too many requests at once; retry."),
        405 => ("MethodNotAllowed", "The method is not allowed."),
        400..=499 => (
            "InvalidRequest",
            "The request is not valid HTTP for this store.",
        ),
        _ => ("InternalError", "The store failed; see the gateway's log."),
    };
    let mut response = transfer::s3_error(status, code, message);
    if let Some(seconds) = e.retry_after {
        if let Ok(value) = http::HeaderValue::from_str(&seconds.to_string()) {
            response
                .headers_mut()
                .insert(http::header::RETRY_AFTER, value);
        }
    }
    response
}
