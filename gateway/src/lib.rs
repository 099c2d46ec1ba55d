//! # draftstore-gateway
//!
//! DraftStore's one binary, `gateway`, and the pieces it is made of: configuration
//! ([`config`]) and the S3 backend ([`s3`]). The server (`serve`), the embedded store and the
//! sweep job arrive with their issues.
//!
//! **Not here:** the domain rules (`draftstore-core`) and signing (`draftstore-signer`).
#![forbid(unsafe_code)]

pub mod config;
pub mod s3;
