//! The upload page (issue 16): a small page at `/` that talks to the REST API itself. Drop
//! several files, one progress bar each; a single presigned PUT for small files, a multipart
//! upload (5 MiB parts, a few at once) for large ones that resumes after a page reload when
//! the same file is picked again; previews of drafts (image, video, PDF); a confirm button; the
//! caller's drafts with their expiry; an API-key field when the API answers 401.
//!
//! Plain HTML, CSS and JS embedded in the binary (no build step, no CDN), served by
//! [`layer::UiLayer`] before authentication (the page and its assets are public whatever
//! `DRAFTSTORE_PUBLIC_PATHS` says: they hold no data) under a strict Content-Security-Policy
//! (W3C CSP Level 3): only the page's own scripts and styles, no inline code, `connect-src`
//! limited to the API and the store's URLs, never framed (`frame-ancestors 'none'`).
//!
//! **Not here:** any API logic (the page calls `/api/v1/*` as any client would).

pub mod layer;

use crate::http::response::{empty, full, Body, CONTENT_TYPE};
use crate::store::Presign;
use draftstore_core::{Buckets, ObjectName};
use draftstore_signer::{Expiry, Method};

/// `GET`: the page.
pub const PAGE: &str = "/";
/// Where the page's assets live.
pub const ASSETS: &str = "/ui/";

/// One file the page is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asset {
    /// Its path (`/` or under [`ASSETS`]).
    pub path: &'static str,
    /// Its `Content-Type`.
    pub media_type: &'static str,
    /// Its bytes, embedded at build time.
    pub bytes: &'static [u8],
}

/// Every file of the page.
pub const FILES: [Asset; 4] = [
    Asset {
        path: PAGE,
        media_type: "text/html; charset=utf-8",
        bytes: include_bytes!("assets/index.html"),
    },
    Asset {
        path: "/ui/app.js",
        media_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("assets/app.js"),
    },
    Asset {
        path: "/ui/style.css",
        media_type: "text/css; charset=utf-8",
        bytes: include_bytes!("assets/style.css"),
    },
    Asset {
        path: "/ui/icon.svg",
        media_type: "image/svg+xml",
        bytes: include_bytes!("assets/icon.svg"),
    },
];

/// The file at `path`, if the page has one there.
#[must_use]
pub fn asset(path: &str) -> Option<&'static Asset> {
    FILES.iter().find(|a| a.path == path)
}

/// The page as served: its files and the headers every answer carries.
#[derive(Debug, Clone)]
pub struct Page {
    csp: http::HeaderValue,
}

impl Page {
    /// The page for a server whose presigned URLs point at `store_origin`
    /// (`scheme://host[:port]`, or `None` when they are on the page's own origin or unknown).
    #[must_use]
    pub fn new(store_origin: Option<&str>) -> Self {
        let store = store_origin
            .filter(|o| o.bytes().all(|b| b.is_ascii_graphic()) && !o.contains(';'))
            .map(|o| format!(" {o}"))
            .unwrap_or_default();
        let policy = format!(
            "default-src 'self'; script-src 'self'; style-src 'self'; \
             img-src 'self' blob:{store}; media-src 'self' blob:{store}; frame-src 'self'{store}; \
             connect-src 'self'{store}; object-src 'none'; base-uri 'none'; \
             form-action 'self'{store}; frame-ancestors 'none'"
        );
        let csp = http::HeaderValue::from_str(&policy).unwrap_or_else(|_| {
            http::HeaderValue::from_static("default-src 'self'; frame-ancestors 'none'")
        });
        Self { csp }
    }

    /// The page for `store`: the origin of a URL it presigns into the draft bucket (S3's
    /// endpoint, or the embedded store's `DRAFTSTORE_PUBLIC_URL`), where the page's uploads
    /// and previews go.
    #[must_use]
    pub fn for_store<B: Presign>(store: &B, buckets: &Buckets) -> Self {
        let origin = (|| {
            let key = ObjectName::parse("draftstore-ui-probe").ok()?;
            let now = crate::clock::timestamp_now()?;
            let expiry = Expiry::new(60).ok()?;
            let url = store
                .presign(Method::Get, &buckets.draft, &key, &[], expiry, now)
                .ok()?;
            let uri = http::Uri::try_from(url).ok()?;
            Some(format!("{}://{}", uri.scheme_str()?, uri.authority()?))
        })();
        Self::new(origin.as_deref())
    }

    /// The answer to a `GET` (or, without its body, `HEAD`) of `path`; `None` when the page
    /// has no file there.
    #[must_use]
    pub fn answer(&self, method: &http::Method, path: &str) -> Option<http::Response<Body>> {
        let head = method == http::Method::HEAD;
        if !head && method != http::Method::GET {
            return None;
        }
        let file = asset(path)?;
        let body = if head { empty() } else { full(file.bytes) };
        let mut response = http::Response::new(body);
        let headers = response.headers_mut();
        headers.insert(
            CONTENT_TYPE,
            http::HeaderValue::from_static(file.media_type),
        );
        headers.insert(http::header::CONTENT_LENGTH, file.bytes.len().into());
        headers.insert(http::header::CONTENT_SECURITY_POLICY, self.csp.clone());
        headers.insert(
            http::header::X_CONTENT_TYPE_OPTIONS,
            http::HeaderValue::from_static("nosniff"),
        );
        headers.insert(
            http::header::REFERRER_POLICY,
            http::HeaderValue::from_static("no-referrer"),
        );
        headers.insert(
            http::header::X_FRAME_OPTIONS,
            http::HeaderValue::from_static("DENY"),
        );
        headers.insert(
            http::header::CACHE_CONTROL,
            http::HeaderValue::from_static("no-cache"),
        );
        Some(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_and_its_assets_are_served_with_a_strict_policy() {
        let page = Page::new(Some("http://127.0.0.1:9000"));
        for file in FILES {
            let response = page.answer(&http::Method::GET, file.path).unwrap();
            let csp = response.headers()[http::header::CONTENT_SECURITY_POLICY]
                .to_str()
                .unwrap();
            assert!(csp.starts_with("default-src 'self';"), "{csp}");
            assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
            assert!(
                csp.contains("connect-src 'self' http://127.0.0.1:9000;"),
                "{csp}"
            );
            assert!(!csp.contains("unsafe"), "{csp}");
            assert_eq!(response.headers()["x-content-type-options"], "nosniff");
            assert_eq!(response.headers()["referrer-policy"], "no-referrer");
        }
        assert!(page.answer(&http::Method::POST, PAGE).is_none());
        assert!(page.answer(&http::Method::GET, "/ui/").is_none());
        assert!(page.answer(&http::Method::GET, "/ui/nope.js").is_none());
        let odd = Page::new(Some("http://a; script-src *"));
        let csp = odd.answer(&http::Method::GET, PAGE).unwrap();
        let csp = csp.headers()[http::header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap();
        assert!(!csp.contains("script-src *"), "{csp}");
    }

    /// The page uses no inline script or style (the policy would block them) and loads
    /// nothing from elsewhere.
    #[test]
    fn the_html_has_no_inline_code_and_no_outside_url() {
        let html = std::str::from_utf8(FILES[0].bytes).unwrap();
        assert!(!html.contains("<style"), "no inline style element");
        assert!(!html.contains(" style="), "no style attribute");
        let handler = html.split(" on").skip(1).any(|rest| {
            let word: String = rest.chars().take_while(char::is_ascii_alphabetic).collect();
            !word.is_empty() && rest[word.len()..].starts_with('=')
        });
        assert!(!handler, "no inline event handler");
        for line in html.lines().filter(|l| l.contains("<script")) {
            assert!(line.contains(" src=\"/ui/"), "{line}");
        }
        for file in FILES {
            let text =
                String::from_utf8_lossy(file.bytes).replace("http://www.w3.org/2000/svg", "");
            assert!(
                !text.contains("https://") && !text.contains("http://"),
                "{}",
                file.path
            );
        }
    }
}
