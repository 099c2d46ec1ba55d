//! Presigning the UploadPart URLs of one `part-urls` call: 1000 parts (`PUT
//! …?partNumber=N&uploadId=…`, same key, one signer, one timestamp) with
//! `Signer::presign_parts`, against the floor for the same 1000 URLs (`Signer::floor` per URL:
//! SHA-256 of its canonical request + one HMAC-SHA256 of its string to sign with a precomputed
//! key) and
//! against 1000 single `Signer::presign` calls. Target: batch ≤ 1.5× floor; compare the figures
//! of one run (each row is the time for all 1000 URLs).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use draftstore_signer::{
    Addressing, Credentials, Endpoint, Expiry, Floor, Method, Part, Request, Signer, Timestamp,
};
use std::time::Duration;

const AK: &str = "AKIAIOSFODNN7EXAMPLE";
const SK: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const BUCKET: &str = "draft-bucket";
const KEY: &str = "uploads/2026/11/holiday video.mp4";
const UPLOAD_ID: &str = "VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA";
const NOW: &str = "20261127T120000Z";
const PARTS: u32 = 1000;

fn benches(c: &mut Criterion) {
    let signer = Signer::new(Credentials::new(AK, SK, None).unwrap(), "us-east-1", "s3").unwrap();
    let endpoint = Endpoint::parse("https://s3.amazonaws.com").unwrap();
    let req = Request::new(Method::Put, &endpoint, Addressing::Path, BUCKET, KEY);
    let now = Timestamp::parse_amz(NOW).unwrap();
    let expires = Expiry::new(3600).unwrap();
    let parts: Vec<Part<'_>> = (1..=PARTS).map(Part::new).collect();

    // The floor's inputs: each URL's canonical request and string to sign, made beforehand.
    let numbers: Vec<String> = (1..=PARTS).map(|n| n.to_string()).collect();
    let floors: Vec<Floor> = numbers
        .iter()
        .map(|n| {
            let query = [("partNumber", n.as_str()), ("uploadId", UPLOAD_ID)];
            let single = Request {
                query: &query,
                ..req
            };
            signer.floor(&single, expires, now).unwrap()
        })
        .collect();
    c.bench_function("presign-parts/1000/floor", |b| {
        b.iter(|| {
            black_box(&floors)
                .iter()
                .map(Floor::hash)
                .collect::<Vec<_>>()
        });
    });
    c.bench_function("presign-parts/1000/draftstore-batch", |b| {
        b.iter(|| {
            signer
                .presign_parts(black_box(&req), UPLOAD_ID, black_box(&parts), expires, now)
                .unwrap()
        });
    });
    c.bench_function("presign-parts/1000/draftstore-single-calls", |b| {
        b.iter(|| {
            numbers
                .iter()
                .map(|n| {
                    let query = [("partNumber", n.as_str()), ("uploadId", UPLOAD_ID)];
                    let single = Request {
                        query: &query,
                        ..req
                    };
                    signer.presign(black_box(&single), expires, now).unwrap()
                })
                .collect::<Vec<_>>()
        });
    });
}

criterion_group! {
    name = presign_parts;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = benches
}
criterion_main!(presign_parts);
