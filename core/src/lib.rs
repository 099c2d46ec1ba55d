//! # draftstore-core
//!
//! The domain of DraftStore, with no network IO of its own: what a valid object name and
//! bucket are, where a draft and a confirmed object live, how a draft moves to main
//! ([`confirm()`]), and which drafts a sweep removes ([`sweep()`]). The gateway, the S3 backend and
//! the embedded store all call it.
//!
//! **Not here:** HTTP, S3 wire formats, signing (the gateway and `draftstore-signer`), clocks
//! (time is passed in), configuration.
//!
//! ## Modules
//! - `name` — [`ObjectName`]; `bucket` — [`BucketName`], [`Buckets`]
//! - `constraints` — [`UploadConstraints`] declared at upload, checked at confirm; `limits` —
//!   the S3 limits (metadata, request headers) everything DraftStore writes must fit
//! - `draft` — the lifecycle state machine ([`DraftState`], [`next_step`]): pure
//! - `confirm` — performs confirm's steps against a [`Storage`], [`ConfirmError`],
//!   [`ConfirmOutcome`]; `name_lock` — turns for confirms of one name in this process
//! - `parts` — the multipart rules DraftStore checks itself ([`plan`], [`part_urls`],
//!   [`assemble`], [`check_completed`]): pure; `parts::kept` — per-part checksums the gateway
//!   signed, kept beside an upload for stores whose ListParts does not list them ([`kept_parts`])
//! - `sweep` — [`select_expired`] (pure) and the streaming [`sweep()`] driver
//! - `events` — event types, ids, the reserved prefix, the signed payload, the retry schedule
//! - `storage` — the [`Storage`] trait and its types; `memory` — [`MemoryStorage`] with faults
//! - `multipart` — multipart uploads' types, limits and completion rules ([`check_completion`])
//! - `conformance` (feature `conformance`) — the suite every backend runs
//!
//! ## Example
//! ```
//! use draftstore_core::*;
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let storage = MemoryStorage::new();
//! let buckets = Buckets::new("main", None)?;
//! storage.create_bucket(&buckets.main).await?;
//! storage.create_bucket(&buckets.draft).await?;
//! let name = ObjectName::parse("photos/cat.jpg")?;
//! storage.put_object(&buckets.draft, name.as_str(), b"meow".to_vec(), &PutOptions::default()).await?;
//! let done = confirm(&storage, &buckets, &name, ConfirmOptions::default()).await?;
//! assert_eq!(done.location, "main/photos/cat.jpg");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod bucket;
mod confirm;
mod constraints;
mod draft;
pub mod events;
mod limits;
mod memory;
mod multipart;
mod name;
mod name_lock;
mod parts;
mod storage;
mod sweep;

#[cfg(feature = "conformance")]
pub mod conformance;

pub use bucket::{BucketError, BucketName, Buckets};
pub use confirm::{
    confirm, confirm_with, BeforeCopy, ConfirmError, ConfirmOptions, ConfirmOutcome, Confirmed,
};
pub use constraints::{
    user_metadata, ConstraintError, ConstraintViolation, UploadConstraints, DECLARED_KEY,
    MAX_OBJECT_SIZE,
};
pub use draft::{
    draft_version, is_expired, is_promoted_copy, next_step, promoted_metadata,
    promoted_user_metadata, DraftState, Observed, Policy, Step, DRAFT_VERSION_LEN, SOURCE_ETAG_KEY,
    SOURCE_SIZE_KEY, SOURCE_VERSION_KEY,
};
pub use limits::{
    metadata_bytes, MAX_CONFIRM_METADATA_BYTES, MAX_METADATA_BYTES, MAX_REQUIRED_HEADER_BYTES,
};
pub use memory::{Fault, MemoryStorage};
pub use multipart::{
    check_completion, check_part_number, every_part, multipart_etag, valid_part_number,
    ChecksumAlgorithm, Completed, CompletedPart, CompletionError, MultipartOptions, Part,
    UploadChecksum, MAX_PART_NUMBER, MAX_PART_SIZE, MIN_PART_SIZE,
};
pub use name::{NameError, ObjectName, MAX_KEY_BYTES};
pub use parts::kept::{self as kept_parts, Kept, KEPT_PREFIX};
pub use parts::{
    assemble, check_completed, check_declared, part_count, part_urls, plan, upload_metadata,
    Assembly, PartError, PartPlan, PartToSign, StoredPart, DEFAULT_PART_SIZE, MAX_PART_URLS,
};
pub use storage::*;
pub use sweep::{
    select_expired, sweep, sweep_with, SweepFailure, SweepObserver, SweepOptions, SweepReport,
    DEFAULT_SWEEP_CONCURRENCY, MAX_REPORTED_FAILURES, MAX_SWEEP_CONCURRENCY,
};
