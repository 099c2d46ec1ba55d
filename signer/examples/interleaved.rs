//! The signer's speed ratios on a shared, loaded machine: floor, presigned PUT (warm and
//! new-second), PUT with a signed `Content-Type`, and a POST policy, run interleaved in batches of
//! 2000 calls for 300 rounds, keeping each row's fastest batch (preemption only adds time, so the
//! minimum is the figure that load does not move). Inputs are those of `bench/benches/presign.rs`
//! and `presign_post.rs`.
//!
//! The floor is [`Signer::floor`], the benches' own: what any SigV4 presign must hash (SHA-256 of
//! the canonical request and one HMAC-SHA256 of the string to sign, under a signing key derived
//! beforehand); it builds no canonical request, URL or hex, so it is a lower bound, not a
//! competitor.
//!
//! Run: `cargo run --release -p draftstore-signer --features floor --example interleaved`.
//! Targets (issues #15, #16): PUT mean(warm, new-second) / floor ≤ 1.3; POST / PUT ≤ 1.5.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use draftstore_signer::*;
use std::hint::black_box;
use std::time::Instant;

const AK: &str = "AKIAIOSFODNN7EXAMPLE";
const SK: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const BUCKET: &str = "draft-bucket";
const KEY: &str = "uploads/2026/11/photo of cat.jpg";

fn main() {
    let signer = Signer::new(Credentials::new(AK, SK, None).unwrap(), "us-east-1", "s3").unwrap();
    let endpoint = Endpoint::parse("https://s3.amazonaws.com").unwrap();
    let req = Request::new(Method::Put, &endpoint, Addressing::Path, BUCKET, KEY);
    let now = Timestamp::parse_amz("20261127T120000Z").unwrap();
    let expires = Expiry::new(3600).unwrap();
    let floor = signer.floor(&req, expires, now).unwrap();
    let mut put_ct = Request::new(Method::Put, &endpoint, Addressing::Path, BUCKET, KEY);
    put_ct.headers = &[("content-type", "image/jpeg")];
    let policy = PostPolicy {
        bucket: BUCKET,
        key: KEY,
        content_type: Some("image/jpeg"),
        length_range: Some((1, 10 << 20)),
        metadata: &[("owner", "alice")],
    };
    let mut second = 0_i64;
    let names = ["floor", "warm", "new-second", "put-ct", "post"];
    let mut best = [f64::MAX; 5];
    const N: u32 = 2000;
    for _round in 0..300 {
        for (i, best) in best.iter_mut().enumerate() {
            let t = Instant::now();
            for _ in 0..N {
                match i {
                    0 => {
                        black_box(black_box(&floor).hash());
                    }
                    1 => {
                        black_box(
                            signer
                                .presign(black_box(&req), expires, black_box(now))
                                .unwrap(),
                        );
                    }
                    2 => {
                        second = (second + 1) % 3600;
                        let at = Timestamp::from_unix(now.unix() + second).unwrap();
                        black_box(signer.presign(black_box(&req), expires, at).unwrap());
                    }
                    3 => {
                        black_box(
                            signer
                                .presign(black_box(&put_ct), expires, black_box(now))
                                .unwrap(),
                        );
                    }
                    _ => {
                        black_box(
                            signer
                                .presign_post(black_box(&policy), expires, black_box(now))
                                .unwrap(),
                        );
                    }
                }
            }
            let ns = t.elapsed().as_nanos() as f64 / f64::from(N);
            *best = best.min(ns);
        }
    }
    let f = best[0];
    for (n, b) in names.iter().zip(best) {
        println!("{n:12} {b:8.1} ns  /floor {:.3}", b / f);
    }
    println!(
        "PUT mean(warm,new-second)/floor {:.3}",
        (best[1] + best[2]) / 2.0 / f
    );
    println!("POST/PUT(ct) {:.3}", best[4] / best[3]);
}
