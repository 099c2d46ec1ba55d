//! `App::upload_url` of the server `gateway serve` builds, in a loop, for profilers and quick
//! timing.
#![allow(clippy::unwrap_used)]

use draftstore_core::UploadConstraints;
use draftstore_gateway::auth::{AuthConfig, Authenticator};
use draftstore_gateway::config::{ServeConfig, StorageChoice};
use draftstore_gateway::http::server::Server;
use draftstore_gateway::store::s3::S3Storage;
use std::collections::HashMap;

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200_000);
    let env: HashMap<&str, &str> = [
        ("AWS_ACCESS_KEY_ID", "AK"),
        ("AWS_SECRET_ACCESS_KEY", "SK"),
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
        ("DRAFTSTORE_AUTH", "none"),
    ]
    .into();
    let config = ServeConfig::from_lookup(&|k| env.get(k).map(|v| (*v).to_owned())).unwrap();
    let StorageChoice::S3(s3) = &config.storage else {
        unreachable!("S3 settings select S3")
    };
    let storage = S3Storage::new((**s3).clone()).unwrap();
    // The server `gateway serve` builds; only its API is driven here.
    let server = Server::new(
        std::sync::Arc::new(storage),
        None,
        &config,
        Authenticator::new(AuthConfig::None).unwrap(),
    );
    let app = &server.app;
    let none = UploadConstraints::default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    let mut total = 0;
    runtime.block_on(async {
        for _ in 0..n {
            total += std::hint::black_box(
                app.upload_url(None, "uploads/2026/11/photo of cat.jpg", &none)
                    .await
                    .unwrap(),
            )
            .url
            .len();
        }
    });
    println!(
        "{:.0} ns per upload_url ({total})",
        started.elapsed().as_nanos() as f64 / n as f64
    );
}
