//! Signing a presigned POST policy vs a presigned PUT, same run, same inputs: bucket
//! `draft-bucket`, key `uploads/2026/11/photo of cat.jpg`, `Content-Type: image/jpeg`,
//! us-east-1, 3600 s, time 20261127T120000Z, warm signing-key cache. The POST policy also
//! carries a size range and one metadata field. Target: POST ≤ 1.5× PUT; compare the two
//! figures of one run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use draftstore_signer::{
    Addressing, Credentials, Endpoint, Expiry, Method, PostPolicy, Request, Signer, Timestamp,
};
use std::time::Duration;

const AK: &str = "AKIAIOSFODNN7EXAMPLE";
const SK: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const BUCKET: &str = "draft-bucket";
const KEY: &str = "uploads/2026/11/photo of cat.jpg";
const NOW: &str = "20261127T120000Z";

fn benches(c: &mut Criterion) {
    let signer = Signer::new(Credentials::new(AK, SK, None).unwrap(), "us-east-1", "s3").unwrap();
    let endpoint = Endpoint::parse("https://s3.amazonaws.com").unwrap();
    let now = Timestamp::parse_amz(NOW).unwrap();
    let expires = Expiry::new(3600).unwrap();

    let mut put = Request::new(Method::Put, &endpoint, Addressing::Path, BUCKET, KEY);
    put.headers = &[("content-type", "image/jpeg")];
    c.bench_function("presign-post/put-url", |b| {
        b.iter(|| {
            signer
                .presign(black_box(&put), expires, black_box(now))
                .unwrap()
        });
    });

    let policy = PostPolicy {
        bucket: BUCKET,
        key: KEY,
        content_type: Some("image/jpeg"),
        length_range: Some((1, 10 << 20)),
        metadata: &[("owner", "alice")],
    };
    c.bench_function("presign-post/post-policy", |b| {
        b.iter(|| {
            signer
                .presign_post(black_box(&policy), expires, black_box(now))
                .unwrap()
        });
    });
}

criterion_group! {
    name = presign_post;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = benches
}
criterion_main!(presign_post);
