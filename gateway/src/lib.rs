//! # draftstore-gateway
//!
//! DraftStore's one binary, `gateway`, and what it is made of, one folder per role:
//!
//! - [`cmd`]: the subcommands `serve`, `sweep` and `presign`, their flags and exit statuses.
//! - [`config`]: settings read from the environment (and flags), parsed once.
//! - [`http`]: the one hyper listener serving REST and gRPC on one port, and what every request
//!   pays (socket, deadlines, bounded bodies, CORS).
//! - [`api`]: the protocol-free API, its error type, and its REST and gRPC adapters.
//! - [`events`]: the pre-confirm check and webhooks delivered at least once.
//! - [`auth`]: who may call: API keys, JWTs, tenants and their limits.
//! - [`store`]: the S3 store and the embedded local store, and how each presigns URLs.
//! - [`ui`]: the upload page at `/` (HTML, CSS and JS embedded in the binary).
//! - [`metrics`]: the Prometheus registry.
//! - [`clock`]: the wall clock, read in one place.
//!
//! **Not here:** the domain rules (`draftstore-core`), signing (`draftstore-signer`), the
//! message types (`draftstore-proto`).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod api;
pub mod auth;
pub mod clock;
pub mod cmd;
pub mod config;
pub mod events;
pub mod http;
pub mod metrics;
pub mod store;
pub mod ui;
