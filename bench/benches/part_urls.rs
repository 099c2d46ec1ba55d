//! One `part-urls` call signing 1000 part URLs (the API method REST and gRPC call, on the
//! embedded store: the upload looked up once, then 1000 UploadPart presigns) against the
//! signer's floor per URL: SHA-256 of one part URL's canonical request plus one HMAC-SHA256 of
//! its string to sign with a precomputed key. Both report elements per second (1000 per call,
//! one per floor), so the ratio of their throughputs is the cost per URL against the floor;
//! compare within one run (issue 15 asks ≤ 1.5×).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use draftstore_core::{Storage, UploadConstraints};
use draftstore_gateway::api::app::App;
use draftstore_gateway::config::{ServeConfig, StorageChoice};
use draftstore_gateway::store::local::LocalStorage;
use draftstore_signer::{
    Addressing, Credentials, Endpoint, Expiry, Method, Request, Signer, Timestamp,
};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

const NAME: &str = "uploads/2026/11/video of cat.mp4";
const URLS: u64 = 1000;

/// The app on a fresh embedded store, and an upload of [`NAME`] in it.
fn app(runtime: &tokio::runtime::Runtime, dir: &std::path::Path) -> (App<LocalStorage>, String) {
    let data_dir = dir.display().to_string();
    let pairs = [
        ("DRAFTSTORE_STORAGE", "local"),
        ("DRAFTSTORE_DATA_DIR", data_dir.as_str()),
        ("DRAFTSTORE_PUBLIC_URL", "http://127.0.0.1:8080"),
    ];
    let lookup = |k: &str| {
        pairs
            .iter()
            .find(|(name, _)| *name == k)
            .map(|(_, v)| (*v).to_owned())
    };
    let config = ServeConfig::from_lookup(&lookup).unwrap();
    let StorageChoice::Local(local) = &config.storage else {
        panic!("the embedded store")
    };
    let store = Arc::new(LocalStorage::open(local).unwrap());
    let app = App {
        store,
        buckets: config.buckets.clone(),
        upload_ttl: config.upload_ttl,
        download_ttl: config.download_ttl,
        object_lifetime: config.object_lifetime,
        events: None,
        cors_origins: Vec::new(),
    };
    let id = runtime.block_on(async {
        app.store.create_bucket(&app.buckets.draft).await.unwrap();
        app.create_multipart(None, NAME, &UploadConstraints::default(), None, false)
            .await
            .unwrap()
            .upload_id
    });
    (app, id)
}

fn part_urls(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let dir =
        std::env::temp_dir().join(format!("draftstore-bench-part-urls-{}", std::process::id()));
    let (app, id) = app(&runtime, &dir);
    let numbers: Vec<u64> = (1..=URLS).collect();
    let none = BTreeMap::new();
    let mut group = c.benchmark_group("part-urls");
    group.throughput(Throughput::Elements(URLS));
    group.bench_function("1000-in-one-call", |b| {
        b.iter(|| {
            runtime
                .block_on(app.part_urls(None, NAME, &id, black_box(&numbers), &none))
                .unwrap()
        });
    });

    // The floor for one part URL of the same shape.
    let signer = Signer::new(
        Credentials::new(
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            None,
        )
        .unwrap(),
        "us-east-1",
        "s3",
    )
    .unwrap();
    let endpoint = Endpoint::parse("http://127.0.0.1:8080").unwrap();
    let key = format!("{}/{NAME}", app.buckets.draft);
    let mut request = Request::new(Method::Put, &endpoint, Addressing::Path, "_store", &key);
    let query = [("partNumber", "517"), ("uploadId", id.as_str())];
    request.query = &query;
    let now = Timestamp::parse_amz("20261127T120000Z").unwrap();
    let explained = signer
        .presign_explained(&request, Expiry::new(3600).unwrap(), now)
        .unwrap();
    let creq = explained.canonical_request.into_bytes();
    let sts = explained.string_to_sign.into_bytes();
    let signing_key = Sha256::digest(b"a precomputed signing key");
    group.throughput(Throughput::Elements(1));
    group.bench_function("floor-per-url", |b| {
        b.iter(|| {
            let hash = Sha256::digest(black_box(&creq));
            let mut mac = Hmac::<Sha256>::new_from_slice(black_box(&signing_key)).unwrap();
            mac.update(black_box(&sts));
            (hash, mac.finalize().into_bytes())
        });
    });
    group.finish();
    drop(app);
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3));
    targets = part_urls
}
criterion_main!(benches);
