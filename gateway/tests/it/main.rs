//! The `gateway` binary and its parts driven as a user would: the presign CLI, and the S3
//! backend against a real signature-checking server (SeaweedFS), with a fault proxy.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod presign_cli;
mod proxy;
mod s3;
mod s3_faults;
