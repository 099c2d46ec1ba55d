//! Integration tests of the public signer API: a differential test against `aws-sigv4`,
//! presign→verify round trips and mutations, and a real S3 server (SeaweedFS).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod differential;
mod real_s3;
mod real_s3_post;
mod roundtrip;
