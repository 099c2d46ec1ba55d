//! Exact protocol rules, checked once before any API work:
//! - requests are classified once ([`media`], then `Call::of` by path): native gRPC is the
//!   media type `application/grpc` or `application/grpc+proto` (case-insensitive, parameters
//!   allowed); gRPC-Web its four `application/grpc-web…` types; Connect `application/json` or
//!   `application/proto` on a gRPC service path (`/draft.v1.DraftService/…`, health,
//!   reflection); store objects by path; REST the rest. The three gRPC protocols are `POST`
//!   only: another method gets 405 (HTTP/2 for native gRPC is checked by its adapter,
//!   `NEEDS_HTTP2`);
//! - any other `application/grpc…` type gets 415 (never answered as native gRPC);
//! - a gRPC method path is never REST's: another method than `POST` is 405 with `Allow: POST`
//!   (Connect's `GET` form included: it is for side-effect-free methods, and we have none),
//!   another media type or none 415 with `Accept-Post`, both with Connect's error body
//!   ([`connect::refusal`]);
//! - an HTTP/1.1 request needs exactly one `Host` header holding `host[:port]` or nothing
//!   (RFC 9112 §3.2: "a Host header field with an invalid field value" is 400 too), else 400;
//! - past the global cap on concurrent streams ([`super::connection`]), 503 at once (probes
//!   excepted: they are answered at once anyway, and must keep answering).

use super::body::early;
use super::{meta, reply, Failed, Req, Res};
use crate::api::error::{ApiError, Code, Kind};
use crate::api::grpc::{self, connect, web};
use crate::http::response::CONTENT_TYPE;
use crate::http::server::Call;
use futures_util::future::Either;
use std::convert::Infallible;
use std::future::{ready, Ready};
use std::task::{Context, Poll};
use tower::{Layer, Service};

/// What a `content-type` says about the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Media {
    /// `application/grpc` or `application/grpc+proto`: native gRPC.
    Grpc,
    /// `application/grpc-web`, `application/grpc-web+proto`, `application/grpc-web-text`,
    /// `application/grpc-web-text+proto`.
    GrpcWeb(web::Flavor),
    /// `application/json` or `application/proto`: Connect on a service path, else REST.
    Connect(connect::Codec),
    /// Another type starting `application/grpc` (`application/grpc+json`, `application/grpcfoo`).
    OtherGrpc,
    /// Anything else, or none.
    NotGrpc,
}

/// The protocol `headers`' `content-type` names: its media type (before any `;`), trimmed,
/// compared without case.
#[must_use]
pub fn media(headers: &http::HeaderMap) -> Media {
    let Some(value) = headers.get(CONTENT_TYPE) else {
        return Media::NotGrpc;
    };
    let bytes = value.as_bytes();
    let end = bytes.iter().position(|&b| b == b';').unwrap_or(bytes.len());
    let mime = bytes.get(..end).unwrap_or_default().trim_ascii();
    const GRPC: &[u8] = b"application/grpc";
    let starts = mime
        .get(..GRPC.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(GRPC));
    if !starts {
        return connect::Codec::of(mime).map_or(Media::NotGrpc, Media::Connect);
    }
    let rest = mime.get(GRPC.len()..).unwrap_or_default();
    if rest.is_empty() || rest.eq_ignore_ascii_case(b"+proto") {
        Media::Grpc
    } else if let Some(flavor) = web::Flavor::of(rest) {
        Media::GrpcWeb(flavor)
    } else {
        Media::OtherGrpc
    }
}

/// Whether a `Host` value is `uri-host [ ":" port ]` (RFC 9110 §7.2) or empty (RFC 9112 §3.2,
/// a target without authority): an authority with no user info.
fn host_value_is_valid(value: &[u8]) -> bool {
    plain_host(value) || host_value_is_valid_authority(value)
}

/// The common case, checked without a copy: a name or IPv4 address of letters, digits, `.`
/// and `-`, then at most `:` and digits. Every such value is a valid authority with no user
/// info, so [`host_value_is_valid_authority`] would accept it too (parsing it copies it into an
/// `http::uri::Authority`: one allocation per HTTP/1.1 request).
fn plain_host(value: &[u8]) -> bool {
    let (host, port) = match value.iter().position(|&b| b == b':') {
        Some(colon) => (value.get(..colon), value.get(colon + 1..)),
        None => (Some(value), None),
    };
    host.is_some_and(|h| {
        !h.is_empty()
            && h.iter()
                .all(|&b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
    }) && port.is_none_or(|p| p.iter().all(u8::is_ascii_digit))
}

/// [`host_value_is_valid`] by `http`'s authority parser, for any value [`plain_host`] does not
/// take (IPv6 literals, percent-encoding, anything invalid).
fn host_value_is_valid_authority(value: &[u8]) -> bool {
    let Ok(authority) = http::uri::Authority::try_from(value) else {
        return value.is_empty();
    };
    let port = authority
        .as_str()
        .strip_prefix(authority.host())
        .and_then(|rest| rest.strip_prefix(':'));
    !value.contains(&b'@')
        && !authority.host().is_empty()
        && port.is_none_or(|digits| digits.bytes().all(|b| b.is_ascii_digit()))
}

/// The first rule `req` breaks, if any.
fn check(req: &Req, call: Call) -> Result<(), ApiError> {
    // Probes are answered at once and must keep answering under a flood of streams.
    if meta(req).is_some_and(|m| m.over_cap) && !call.is_probe() {
        return Err(ApiError::new(
            Code::Overloaded,
            "too many requests open on all connections, or this address holds its share of them; retry",
        )
        .with_retry_after(1));
    }
    if req.version() == http::Version::HTTP_11 {
        let mut hosts = req.headers().get_all(http::header::HOST).iter();
        let valid = match (hosts.next(), hosts.next()) {
            (Some(host), None) => host_value_is_valid(host.as_bytes()),
            _ => false,
        };
        if !valid {
            return Err(ApiError::new(
                Code::BadHost,
                "an HTTP/1.1 request carries exactly one Host header, `host[:port]` or empty",
            ));
        }
    }
    // A gRPC method path is for the gRPC protocols only (never REST's 404), all `POST` of
    // their own media types. Connect's `GET` form is for methods marked
    // `idempotency_level = NO_SIDE_EFFECTS`; none of ours is, so it is a 405 as well.
    if grpc::is_service_path(req.uri().path()) {
        if req.method() != http::Method::POST {
            return Err(ApiError::new(
                Code::MethodNotAllowed,
                "gRPC, gRPC-Web and Connect calls are POST (Connect's GET form is served for no \
                 method: none is free of side effects)",
            )
            .with_allow("POST"));
        }
        if !call.is_grpc() {
            return Err(not_a_grpc_media_type(req.headers()));
        }
        one_content_type(req.headers(), call)?;
    }
    if call.is_grpc() {
        if req.method() != http::Method::POST {
            return Err(
                ApiError::new(Code::MethodNotAllowed, "gRPC calls are POST").with_allow("POST")
            );
        }
        return refused_at_head(req, call);
    }
    if call.is_store() {
        return Ok(());
    }
    match media(req.headers()) {
        Media::OtherGrpc => Err(ApiError::new(Code::UnsupportedMediaType,
            "gRPC is served as application/grpc or application/grpc+proto, gRPC-Web as application/grpc-web, -web+proto, -web-text or -web-text+proto",
        )),
        Media::Grpc | Media::GrpcWeb(_) | Media::Connect(_) | Media::NotGrpc => Ok(()),
    }
}

/// The 415 for a gRPC method path called with another media type (or none), saying which
/// are served; Connect's streaming types (`application/connect+proto`, `+json`, what
/// `buf curl` sends for server reflection by default) get a sentence of their own.
fn not_a_grpc_media_type(headers: &http::HeaderMap) -> ApiError {
    const CONNECT_STREAM: &[u8] = b"application/connect+";
    let streaming = headers.get(CONTENT_TYPE).is_some_and(|value| {
        value
            .as_bytes()
            .trim_ascii_start()
            .get(..CONNECT_STREAM.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(CONNECT_STREAM))
    });
    let message = if streaming {
        format!(
            "Connect streaming is served as application/connect+proto only (server \
             reflection, over HTTP/2), not application/connect+json; a gRPC method takes \
             {}",
            connect::served_media_types()
        )
    } else {
        format!("a gRPC method takes {}", connect::served_media_types())
    };
    ApiError::new(Code::UnsupportedMediaType, message)
}

/// A call on a gRPC method path carries one `Content-Type` (two, say JSON and proto, leave
/// its protocol and codec ambiguous: 415, as for a type not served, rather than the first
/// winning), and Connect's JSON is UTF-8 (RFC 8259 §8.1): a `charset` other than `utf-8` is
/// 415 too.
fn one_content_type(headers: &http::HeaderMap, call: Call) -> Result<(), ApiError> {
    let mut types = headers.get_all(CONTENT_TYPE).iter();
    let (Some(value), None) = (types.next(), types.next()) else {
        return Err(ApiError::new(
            Code::UnsupportedMediaType,
            format!(
                "a call carries exactly one Content-Type header; a gRPC method takes {}",
                connect::served_media_types()
            ),
        ));
    };
    if !matches!(call, Call::Connect(connect::Codec::Json, _)) {
        return Ok(());
    }
    let charset = value
        .as_bytes()
        .split(|&b| b == b';')
        .skip(1)
        .filter_map(|param| {
            let (name, value) = param.split_at(param.iter().position(|&b| b == b'=')?);
            let value = value.get(1..)?.trim_ascii();
            let value = value
                .strip_prefix(b"\"")
                .and_then(|v| v.strip_suffix(b"\""))
                .unwrap_or(value);
            name.trim_ascii()
                .eq_ignore_ascii_case(b"charset")
                .then_some(value)
        })
        .find(|value| !value.eq_ignore_ascii_case(b"utf-8"));
    match charset {
        None => Ok(()),
        Some(other) => Err(ApiError::new(
            Code::UnsupportedMediaType,
            format!(
                "Connect's JSON is UTF-8: charset {:?} is not served (send charset=utf-8 or none)",
                String::from_utf8_lossy(other.get(..other.len().min(64)).unwrap_or_default())
            ),
        )),
    }
}

/// A gRPC, gRPC-Web or Connect call its path and protocol alone refuse
/// ([`grpc::refused_at_head`]), answered before its body is read.
fn refused_at_head(req: &Req, call: Call) -> Result<(), ApiError> {
    let carrier = match call {
        Call::Grpc(_) => grpc::Carrier::Native,
        Call::GrpcWeb(..) => grpc::Carrier::Web,
        Call::Connect(connect::Codec::Stream, _) => grpc::Carrier::ConnectStream,
        Call::Connect(..) => grpc::Carrier::Connect,
        Call::Rest(_) | Call::Store => return Ok(()),
    };
    grpc::refused_at_head(carrier, call.rpc(), req.uri().path(), req.version()).map_or(Ok(()), Err)
}

/// Refuses requests that break a rule of this module.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProtocolLayer;

impl<S> Layer<S> for ProtocolLayer {
    type Service = Protocol<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Protocol { inner }
    }
}

/// The service of [`ProtocolLayer`].
#[derive(Debug, Clone)]
pub struct Protocol<S> {
    inner: S,
}

impl<S> Service<Req> for Protocol<S>
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
        let call = Call::from_request(&req);
        match check(&req, call) {
            Ok(()) => Either::Right(self.inner.call(req)),
            // Refused on a gRPC method path by method or media type: the HTTP status says it
            // (405, 415), the body in Connect's shape.
            Err(e)
                if grpc::is_service_path(req.uri().path())
                    && matches!(
                        e.kind(),
                        Kind::MethodNotAllowed | Kind::UnsupportedMediaType
                    ) =>
            {
                let mut response = connect::refusal(&e);
                response.extensions_mut().insert(Failed(e));
                Either::Left(ready(Ok(early(response, req))))
            }
            // A method other than POST is refused at the HTTP level (405), as a gRPC status
            // would hide it behind 200.
            Err(e) if e.kind() == Kind::MethodNotAllowed => {
                Either::Left(ready(Ok(early(reply(Call::Rest(None), e), req))))
            }
            Err(e) => Either::Left(ready(Ok(early(reply(call, e), req)))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(content_type: &str) -> Media {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            http::HeaderValue::from_str(content_type).unwrap(),
        );
        media(&headers)
    }

    #[test]
    fn only_the_exact_grpc_media_types_are_native_grpc() {
        assert_eq!(of("application/grpc"), Media::Grpc);
        assert_eq!(of("Application/GRPC+Proto; charset=utf-8"), Media::Grpc);
        assert_eq!(of(" application/grpc ;x=y"), Media::Grpc);
        assert_eq!(
            of("application/grpc-web+proto"),
            Media::GrpcWeb(web::Flavor::WebProto)
        );
        assert_eq!(
            of("application/GRPC-WEB-TEXT"),
            Media::GrpcWeb(web::Flavor::Text)
        );
        assert_eq!(of("application/grpc-web+json"), Media::OtherGrpc);
        assert_eq!(of("application/grpcfoo"), Media::OtherGrpc);
        assert_eq!(of("application/grpc+json"), Media::OtherGrpc);
        assert_eq!(
            of("application/json; charset=utf-8"),
            Media::Connect(connect::Codec::Json)
        );
        assert_eq!(
            of("application/proto"),
            Media::Connect(connect::Codec::Proto)
        );
        assert_eq!(of("text/plain"), Media::NotGrpc);
        assert_eq!(media(&http::HeaderMap::new()), Media::NotGrpc);
    }

    #[test]
    fn host_values_are_host_and_port_or_empty() {
        for good in ["a", "127.0.0.1:8080", "[::1]:80", "example.com", ""] {
            assert!(host_value_is_valid(good.as_bytes()), "{good:?}");
        }
        for bad in ["a b", "u@a", "a:port", "a/b", ":80", "a\\b"] {
            assert!(!host_value_is_valid(bad.as_bytes()), "{bad:?}");
        }
    }

    #[test]
    fn the_plain_host_shortcut_agrees_with_the_authority_parser() {
        let values: &[&[u8]] = &[
            b"127.0.0.1:8080",
            b"localhost",
            b"example.com",
            b"Example.COM:443",
            b"a-b.c:",
            b"-",
            b".",
            b"x:0",
            b"x:99999999",
            b"",
            b":80",
            b"a:1:2",
            b"a:b",
            b"user@host",
            b"[::1]:8080",
            b"[::1]",
            b"h%41st",
            b"a b",
            b"a/b",
            b"a?b",
            b"\xff",
        ];
        for &value in values {
            if plain_host(value) {
                assert!(host_value_is_valid_authority(value), "{value:?}");
            }
        }
        for value in [
            &b"127.0.0.1:8080"[..],
            b"localhost",
            b"a-b.c:",
            b"x:99999999",
        ] {
            assert!(plain_host(value), "{value:?}");
        }
        for value in [
            &b""[..],
            b":80",
            b"a:1:2",
            b"a:b",
            b"user@host",
            b"[::1]",
            b"a b",
        ] {
            assert!(!plain_host(value), "{value:?}");
        }
        assert!(host_value_is_valid(b"[::1]:8080"));
        assert!(host_value_is_valid(b""));
        assert!(!host_value_is_valid(b"user@host"));
        assert!(!host_value_is_valid(b"a:b"));
    }
}
