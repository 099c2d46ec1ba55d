//! The stores behind the `Storage` trait: S3 ([`s3`]) and the embedded local store ([`local`]),
//! and how each presigns URLs ([`backend`]).

pub mod backend;
pub mod local;
pub mod s3;
