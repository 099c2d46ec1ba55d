//! `App::upload_url` in a loop, for profilers and quick timing.
#![allow(clippy::unwrap_used)]

use draftstore_core::{Buckets, UploadConstraints};
use draftstore_gateway::api::app::App;
use draftstore_gateway::config::S3Config;
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
    ]
    .into();
    let storage =
        S3Storage::new(S3Config::from_lookup(&|k| env.get(k).map(|v| (*v).to_owned())).unwrap())
            .unwrap();
    let ttl = draftstore_signer::Expiry::new(3600).unwrap();
    let app = App {
        store: std::sync::Arc::new(storage),
        buckets: Buckets::new("main", None).unwrap(),
        upload_ttl: ttl,
        download_ttl: ttl,
    };
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
