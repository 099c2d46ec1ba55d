//! # draftstore-signer
//!
//! AWS Signature Version 4 for S3, written for DraftStore: presigned URLs for clients, header
//! signing for the gateway's own S3 calls, and verification of presigned requests for the
//! embedded store.
//!
//! **Sans-IO.** No clock (every call takes a [`Timestamp`]), no network, no environment. Inputs
//! are plain structs; outputs are strings. Depends only on `hmac`, `sha2`, `hex` and `base64`
//! (for POST policies).
//!
//! **Digests from the libraries.** Every SHA-256 (FIPS 180-4) is `sha2::Sha256` and every
//! HMAC-SHA256 (RFC 2104) is `hmac::Hmac<Sha256>`; this crate writes only SigV4 itself. Speed
//! comes from doing less, not from our own hashing: the day's signing key is derived once and
//! kept as a keyed `Hmac` state, the HMAC state after the string to sign's fixed prefix is
//! cloned within a second, and a batch of part URLs resumes a cloned `Sha256` at the end of
//! the canonical request's shared head. (A SHA-256/HMAC of our own over `sha2`'s block function
//! was measured no faster, so it was dropped.)
//!
//! **S3 rules.** Object keys are URI-encoded once with `/` kept and are never normalized (`//`,
//! `.`, `..` and a leading `/` are part of the key); default ports are not part of the signed
//! host; header values are trimmed and inner white space folded; presigned URLs use
//! `UNSIGNED-PAYLOAD`.
//!
//! **Not here:** SigV4A (ECDSA), chunked (`aws-chunked`) payload signing, STS
//! token validation (a session token is signed but not checked by [`Verifier`]).
//!
//! ## Modules (one per stage)
//! - `encode` — URI encoding; `time` — [`Timestamp`]; `endpoint` — [`Endpoint`], [`Addressing`]
//! - `canonical` — stage 1, the canonical request; `string_to_sign` — stage 2;
//!   `signing_key` — stages 3–4, key derivation, its per-day cache and the signature
//! - `presign` — [`Signer::presign`]; `parts` — [`Signer::presign_parts`], a batch of
//!   UploadPart URLs sharing one key, timestamp and hashed canonical head; `authorization` — [`Signer::sign_headers`];
//!   `verify` — [`Verifier`]
//! - `post` — presigned POST: [`Signer::presign_post`] signs a [`PostPolicy`] into a
//!   [`PostForm`]; [`PostVerifier`] checks a received form (`post/json` is the policy's small
//!   strict JSON reader and writer, `post/policy` the document)
//! - `floor` (feature `floor`, for benchmarks) — [`Signer::floor`]: the least a presign must
//!   hash (SHA-256 of the canonical request, one HMAC of the string to sign), the benches' baseline
//!
//! ## Example
//! ```
//! use draftstore_signer::*;
//! let creds = Credentials::new("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", None)?;
//! let signer = Signer::new(creds, "us-east-1", "s3")?;
//! let endpoint = Endpoint::parse("https://s3.amazonaws.com")?;
//! let req = Request::new(Method::Get, &endpoint, Addressing::VirtualHost, "examplebucket", "test.txt");
//! let now = Timestamp::parse_amz("20130524T000000Z")?;
//! let url = signer.presign(&req, Expiry::new(86_400)?, now)?;
//! assert!(url.ends_with("X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"));
//! # Ok::<(), draftstore_signer::Error>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod authorization;
mod canonical;
mod credentials;
mod encode;
mod endpoint;
mod error;
mod explained;
#[cfg(feature = "floor")]
mod floor;
mod parts;
mod post;
mod presign;
mod request;
mod signer;
mod signing_key;
mod string_to_sign;
mod time;
mod verify;

#[cfg(test)]
mod vectors;

pub use authorization::SignedRequest;
pub use credentials::Credentials;
pub use endpoint::{Addressing, Endpoint, Scheme};
pub use error::Error;
pub use explained::Explained;
#[cfg(feature = "floor")]
pub use floor::Floor;
pub use parts::{Part, PartUrls, MAX_PART_NUMBER};
pub use post::{Condition, Policy, PostError, PostForm, PostPolicy, PostVerifier, VerifiedPost};
pub use presign::Expiry;
pub use request::{Method, Payload, Request, EMPTY_SHA256};
pub use signer::Signer;
pub use time::Timestamp;
pub use verify::{ReceivedRequest, Verified, Verifier, VerifyError};

/// An object key URI-encoded the way S3 signs it (once, `/` kept): what `x-amz-copy-source`
/// needs after `/bucket/`.
#[must_use]
pub fn encode_key(key: &str) -> String {
    encode::encode(key, true).into_owned()
}
