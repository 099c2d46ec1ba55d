//! CORS for browser clients: only the configured origins (`DRAFTSTORE_CORS_ORIGINS`, exact
//! matches; `*` only when configured so), preflights answered before authentication (browsers
//! send no credentials there), and the headers a browser needs exposed (`ETag` after a PUT to a
//! presigned URL, `x-request-id`); `DELETE` is allowed for Uppy's abort of a multipart upload
//! (Companion's `DELETE /s3/multipart/{uploadId}`). Calls on gRPC service paths (gRPC-Web, Connect) also allow
//! the headers their browser clients send (`x-grpc-web`, `x-user-agent`, `grpc-timeout`,
//! `connect-protocol-version`, `connect-timeout-ms`) and expose `grpc-status`, `grpc-message`.

use crate::http::response::{empty, Body};
use http::{header, HeaderMap, HeaderValue, Method, Response, StatusCode};

/// The CORS policy: the allowed origins (exact, or `*`), answered preflights and the headers
/// added to responses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Cors {
    origins: Vec<String>,
    any: bool,
}

const ALLOW_METHODS: &str = "GET, HEAD, POST, PUT, DELETE, OPTIONS";
const ALLOW_HEADERS: &str =
    "authorization, content-type, x-request-id, x-amz-checksum-sha256, x-amz-meta-*";
const EXPOSE_HEADERS: &str = "etag, x-request-id";
const GRPC_ALLOW_HEADERS: &str = "authorization, content-type, x-request-id, x-grpc-web, \
    x-user-agent, grpc-timeout, connect-protocol-version, connect-timeout-ms";
const GRPC_EXPOSE_HEADERS: &str =
    "x-request-id, grpc-status, grpc-message, grpc-status-details-bin";

impl Cors {
    /// From a comma-separated list of origins (`https://app.example.com`), or `*`.
    #[must_use]
    pub fn new(list: Option<&str>) -> Self {
        let origins: Vec<String> = list
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .map(|o| o.trim_end_matches('/').to_owned())
            .collect();
        Self {
            any: origins.iter().any(|o| o == "*"),
            origins,
        }
    }

    fn allowed<'h>(&self, headers: &'h HeaderMap) -> Option<&'h HeaderValue> {
        self.allows(headers.get(header::ORIGIN))
    }

    fn allows<'h>(&self, origin: Option<&'h HeaderValue>) -> Option<&'h HeaderValue> {
        let origin = origin?;
        let text = origin.to_str().ok()?;
        (self.any || self.origins.iter().any(|o| o == text)).then_some(origin)
    }

    /// The answer to a preflight (`OPTIONS` with `Access-Control-Request-Method`), if this is one;
    /// `grpc`: for a gRPC service path (gRPC-Web, Connect).
    #[must_use]
    pub fn preflight(
        &self,
        method: &Method,
        headers: &HeaderMap,
        grpc: bool,
    ) -> Option<Response<Body>> {
        if method != Method::OPTIONS || !headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
        {
            return None;
        }
        let mut response = Response::new(empty());
        let Some(origin) = self.allowed(headers) else {
            *response.status_mut() = StatusCode::FORBIDDEN;
            return Some(response);
        };
        *response.status_mut() = StatusCode::NO_CONTENT;
        let h = response.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(ALLOW_METHODS),
        );
        let requested = headers.get(header::ACCESS_CONTROL_REQUEST_HEADERS).cloned();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            requested.unwrap_or_else(|| {
                HeaderValue::from_static(if grpc {
                    GRPC_ALLOW_HEADERS
                } else {
                    ALLOW_HEADERS
                })
            }),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
        Some(response)
    }

    /// Adds the CORS headers to a response for an allowed `origin` (the request's `Origin`);
    /// `grpc`: the answer of a gRPC-Web or Connect call.
    pub fn decorate(
        &self,
        origin: Option<&HeaderValue>,
        response: &mut Response<Body>,
        grpc: bool,
    ) {
        let Some(origin) = self.allows(origin) else {
            return;
        };
        let h = response.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(if grpc {
                GRPC_EXPOSE_HEADERS
            } else {
                EXPOSE_HEADERS
            }),
        );
        h.append(header::VARY, HeaderValue::from_static("Origin"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    http::HeaderName::from_static(k),
                    HeaderValue::from_static(v),
                )
            })
            .collect()
    }

    #[test]
    fn only_configured_origins_are_allowed() {
        let cors = Cors::new(Some("https://app.example.com, https://admin.example.com/"));
        let pre = headers(&[
            ("origin", "https://app.example.com"),
            ("access-control-request-method", "PUT"),
        ]);
        let ok = cors.preflight(&Method::OPTIONS, &pre, false).unwrap();
        assert_eq!(ok.status(), 204);
        assert_eq!(
            ok.headers()["access-control-allow-origin"],
            "https://app.example.com"
        );
        let evil = headers(&[
            ("origin", "https://evil.example"),
            ("access-control-request-method", "PUT"),
        ]);
        let no = cors.preflight(&Method::OPTIONS, &evil, false).unwrap();
        assert_eq!(no.status(), 403);
        assert!(!no.headers().contains_key("access-control-allow-origin"));
        assert!(
            cors.preflight(&Method::GET, &pre, false).is_none(),
            "not a preflight"
        );
        let mut response = Response::new(empty());
        cors.decorate(
            Some(&HeaderValue::from_static("https://admin.example.com")),
            &mut response,
            false,
        );
        assert_eq!(
            response.headers()["access-control-expose-headers"],
            "etag, x-request-id"
        );
    }

    #[test]
    fn nothing_is_allowed_by_default() {
        let cors = Cors::new(None);
        let mut response = Response::new(empty());
        cors.decorate(
            Some(&HeaderValue::from_static("https://app.example.com")),
            &mut response,
            false,
        );
        assert!(!response
            .headers()
            .contains_key("access-control-allow-origin"));
        assert!(
            Cors::new(Some("*"))
                .allowed(&headers(&[("origin", "https://x")]))
                .is_some(),
            "* when configured"
        );
    }
}
