//! The fixed-rate baseline of `bench/load.sh`: an axum 0.8 JSON route shaped like upload-url
//! (decode `{"object_name"}`, answer the same fields), with no signing on purpose: the gateway
//! signs and should still cost no more. The URL is a fixed string of BYTES bytes, as long as
//! the gateway's.
//! Usage: `axum-json PORT [BYTES]`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Deserialize)]
struct UploadUrl {
    object_name: String,
}

#[derive(Serialize)]
struct Presigned {
    upload_url: String,
    object_name: String,
    expires_at: &'static str,
    method: &'static str,
    required_headers: BTreeMap<String, String>,
}

#[tokio::main]
async fn main() {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(8091);
    let size: usize = std::env::args()
        .nth(2)
        .and_then(|p| p.parse().ok())
        .unwrap_or(300);
    let url: Arc<str> =
        format!("http://127.0.0.1:9/{}", "x".repeat(size.saturating_sub(19))).into();
    let app = Router::new().route(
        "/api/v1/upload-url",
        post(move |Json(body): Json<UploadUrl>| {
            let url = url.clone();
            async move {
                Json(Presigned {
                    upload_url: url.to_string(),
                    object_name: body.object_name,
                    expires_at: "2026-11-30T13:00:00Z",
                    method: "PUT",
                    required_headers: BTreeMap::new(),
                })
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    axum::serve(listener, app).await.unwrap();
}
