//! The `gateway` binary and its parts driven as a user would: the presign CLI, and the S3
//! backend against a real signature-checking server (SeaweedFS), with a fault proxy.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod auth;
mod credentials;
mod grpc_api;
mod harness;
mod hostile;
mod local_store;
mod manifests;
mod presign_cli;
mod proxy;
mod rest_api;
mod s3;
mod s3_faults;
mod serve_cli;
mod sse;
mod stub;
mod sweep_cli;
