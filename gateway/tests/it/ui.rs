//! Issue 16: the upload page at `/`, served by the gateway from the binary: public whatever
//! `DRAFTSTORE_PUBLIC_PATHS` says, under a strict Content-Security-Policy naming the store's
//! origin, and absent with `DRAFTSTORE_UI=false`. (The page itself is driven in Chromium by
//! scripts/browser-test.)

use crate::harness::{http1, start_local};
use sha2::{Digest, Sha256};

#[tokio::test]
async fn the_page_is_public_with_a_strict_policy_even_when_auth_is_on() {
    let hash = hex::encode(Sha256::digest(b"k"));
    let keys = format!("acme {hash}");
    let server = start_local(&[
        ("DRAFTSTORE_AUTH", "api-keys"),
        ("DRAFTSTORE_API_KEYS", &keys),
        ("DRAFTSTORE_PUBLIC_PATHS", "/health"),
    ])
    .await;
    let client = http1();
    let page = client.get(server.url("/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let headers = page.headers().clone();
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    let csp = headers["content-security-policy"].to_str().unwrap();
    let store = format!("http://{}", server.addr);
    for directive in [
        "default-src 'self'".to_owned(),
        "script-src 'self'".to_owned(),
        "style-src 'self'".to_owned(),
        format!("connect-src 'self' {store}"),
        "frame-ancestors 'none'".to_owned(),
    ] {
        assert!(
            csp.split("; ").any(|d| d == directive),
            "{directive} in {csp}"
        );
    }
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    let html = page.text().await.unwrap();
    assert!(html.contains("<script src=\"/ui/app.js\""), "{html}");
    for (path, media) in [
        ("/ui/app.js", "text/javascript; charset=utf-8"),
        ("/ui/style.css", "text/css; charset=utf-8"),
        ("/ui/icon.svg", "image/svg+xml"),
    ] {
        let asset = client.get(server.url(path)).send().await.unwrap();
        assert_eq!(asset.status(), 200, "{path}");
        assert_eq!(asset.headers()["content-type"], media, "{path}");
        assert!(!asset.bytes().await.unwrap().is_empty());
    }
    let head = client.head(server.url("/")).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(
        head.headers()["content-length"].to_str().unwrap(),
        html.len().to_string()
    );
    // The API behind it still needs a key; unknown files under /ui/ are no route.
    let api = client
        .post(server.url("/api/v1/list-drafts"))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 401);
    let missing = client.get(server.url("/ui/nope.js")).send().await.unwrap();
    assert_eq!(
        missing.status(),
        401,
        "not the page's: authenticated like any path"
    );
    let post = client.post(server.url("/")).send().await.unwrap();
    assert_eq!(post.status(), 401, "only GET and HEAD are the page's");
    server.stop().await;
}

#[tokio::test]
async fn without_the_page_slash_is_no_route() {
    let server = start_local(&[("DRAFTSTORE_UI", "false")]).await;
    let reply = http1().get(server.url("/")).send().await.unwrap();
    assert_eq!(reply.status(), 404);
    let body: serde_json::Value = reply.json().await.unwrap();
    assert_eq!(body["error"]["code"], "NO_SUCH_ROUTE");
    let asset = http1().get(server.url("/ui/app.js")).send().await.unwrap();
    assert_eq!(asset.status(), 404);
    server.stop().await;
}
