//! The API: the protocol-free operations ([`app`]), their one error type and its mapping to HTTP
//! and gRPC ([`error`]), the catalogue of error codes ([`code`]), and the two thin adapters that
//! serve them, REST ([`rest`], with its OpenAPI document; [`legacy`]: the original DraftStore's
//! routes and reply shapes; [`json_error`]: JSON decoding errors in our words) and gRPC ([`grpc`]); multipart uploads ([`multipart`]), presigned
//! POST forms ([`form`]), the caller's drafts listed ([`drafts`]; [`prefix`]: the one check of a
//! listing's prefix) and Companion's S3 protocol for
//! Uppy with upload tokens ([`companion`]) in their own modules.

pub mod app;
pub mod code;
pub mod companion;
pub mod drafts;
pub mod error;
pub mod form;
pub mod grpc;
pub mod json_error;
pub mod legacy;
pub mod multipart;
pub mod prefix;
pub mod rest;
