//! Presigns in a loop, for profilers: `valgrind --tool=callgrind target/release/examples/presign_loop`.
#![allow(clippy::unwrap_used)]

use draftstore_signer::{
    Addressing, Credentials, Endpoint, Expiry, Method, Request, Signer, Timestamp,
};

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let signer = Signer::new(
        Credentials::new("AKIAIOSFODNN7EXAMPLE", "secret", None).unwrap(),
        "us-east-1",
        "s3",
    )
    .unwrap();
    let endpoint = Endpoint::parse("https://s3.amazonaws.com").unwrap();
    let req = Request::new(
        Method::Get,
        &endpoint,
        Addressing::Path,
        "draft-bucket",
        "uploads/2026/11/photo of cat.jpg",
    );
    let now = Timestamp::parse_amz("20261127T120000Z").unwrap();
    let expires = Expiry::new(3600).unwrap();
    let mut total = 0;
    for _ in 0..n {
        total += std::hint::black_box(signer.presign(&req, expires, now).unwrap()).len();
    }
    println!("{total}");
}
