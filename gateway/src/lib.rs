//! # draftstore-gateway
//!
//! DraftStore's one binary, `gateway`, and what it is made of: configuration ([`config`]), the
//! S3 backend ([`s3`]), the API ([`app`]) served as REST ([`rest`]) and gRPC ([`grpc`]) on one
//! port by one hyper server ([`server`], its tower layers in [`layer`], with [`socket`],
//! [`deadline`], [`body`] and [`json`] for what every request pays), the embedded store
//! ([`local`]), and the subcommands
//! ([`presign`], [`serve`], [`sweep`]).
//!
//! **Not here:** the domain rules (`draftstore-core`), signing (`draftstore-signer`), the
//! message types (`draftstore-proto`).
#![forbid(unsafe_code)]

pub mod app;
pub mod auth;
pub mod backend;
pub mod body;
pub mod cli;
pub mod clock;
pub mod config;
pub mod cors;
pub mod deadline;
pub mod error;
pub mod exit;
pub mod grpc;
pub mod json;
pub mod layer;
pub mod local;
pub mod metrics;
pub mod presign;
pub mod response;
pub mod rest;
pub mod s3;
pub mod serve;
pub mod server;
pub mod socket;
pub mod sweep;
