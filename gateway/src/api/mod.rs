//! The API: the protocol-free operations ([`app`]), their one error type and its mapping to HTTP
//! and gRPC ([`error`]), the catalogue of error codes ([`code`]), and the two thin adapters that
//! serve them, REST ([`rest`], with its OpenAPI document; [`legacy`]: the original DraftStore's
//! routes and reply shapes) and gRPC ([`grpc`]); multipart uploads ([`multipart`]) in their own
//! module; the caller's drafts listed ([`drafts`]); Companion's S3 protocol for Uppy and upload
//! tokens ([`companion`]).

pub mod app;
pub mod code;
pub mod companion;
pub mod drafts;
pub mod error;
pub mod form;
pub mod grpc;
pub mod legacy;
pub mod multipart;
pub mod rest;
