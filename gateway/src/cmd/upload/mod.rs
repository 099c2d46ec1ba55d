//! `gateway upload FILE`: DraftStore's own upload client. It talks to the REST API like any
//! client (`/api/v1/upload-url`, `/api/v1/multipart-upload/*`, `/api/v1/confirm-upload`) and
//! sends the bytes straight to the presigned URLs it is given.
//!
//! Stages, one module each: [`settings`] (flags and environment → what to do, exit 2 or 64),
//! [`api`] (the REST calls and their errors), [`plan`] (single PUT or parts, part ranges),
//! [`source`] (a part's bytes: read into memory once, hashed as they are read, or streamed from
//! the file when that would take too much memory), [`transfer`] (one presigned PUT),
//! [`single`] and [`parts`] (the two ways of uploading), [`state`] (the resume file) and [`progress`] (bar or plain lines).
//!
//! It does not: hold more than [`source::MEMORY`] bytes of parts in memory (larger parts are
//! streamed in 1 MiB chunks, after a separate hashing pass), print
//! the token, or trust a stored part it cannot match (size, and ETag when known).

pub mod api;
pub mod parts;
pub mod plan;
pub mod progress;
pub mod settings;
pub mod single;
pub mod source;
pub mod state;
pub mod transfer;

use crate::cmd::cli::UploadArgs;
use crate::cmd::exit::Exit;
use api::{Api, Confirmed};
use serde::Serialize;

/// Exit status: the upload failed (refused, a part kept failing, a rejected confirm).
pub const EXIT_FAILED: u8 = 1;
/// Exit status: bad flags or no such file.
pub const EXIT_USAGE: u8 = 2;

/// Environment variables read by `gateway upload` only (the client side; `gateway serve`
/// reads none of them).
pub mod name {
    /// The API's base URL, e.g. `http://127.0.0.1:8080`.
    pub const DRAFTSTORE_ENDPOINT: &str = "DRAFTSTORE_ENDPOINT";
    /// The API token, sent as `Authorization: Bearer <token>`.
    pub const DRAFTSTORE_TOKEN: &str = "DRAFTSTORE_TOKEN";
}

/// Every variable `gateway upload` reads.
pub const VARIABLES: &[&str] = &[name::DRAFTSTORE_ENDPOINT, name::DRAFTSTORE_TOKEN];

/// What was uploaded, as printed (`--json`: this object).
#[derive(Debug, Serialize)]
pub struct Outcome {
    /// The object's name as the API reports it.
    pub object_name: String,
    /// Bytes stored.
    pub size: u64,
    /// The stored object's ETag (the main copy's after a confirm).
    pub etag: String,
    /// `single` or `multipart`.
    pub method: &'static str,
    /// Parts sent by this run (multipart only; parts found stored are not counted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parts_sent: Option<u32>,
    /// Milliseconds spent sending parts (multipart only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parts_ms: Option<u64>,
    /// Milliseconds the `complete` call took (multipart only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub complete_ms: Option<u64>,
    /// Whether the draft was confirmed into main.
    pub confirmed: bool,
    /// Where the confirmed object lives.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub final_location: Option<String>,
}

/// A failure that ends the upload with exit 1.
pub(crate) fn failed(message: impl Into<String>) -> Exit {
    Exit {
        code: EXIT_FAILED,
        message: message.into(),
    }
}

/// Runs `gateway upload`, printing the outcome on stdout.
///
/// # Errors
/// Exit 2 for usage, 64 for configuration, 69 when the API is unreachable, 1 when the upload
/// failed; each with one line for stderr.
pub fn run(args: &UploadArgs, env: &dyn Fn(&str) -> Option<String>) -> Result<(), Exit> {
    let settings = settings::Settings::new(args, env)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Exit::unavailable(format!("cannot start the runtime: {e}")))?;
    let outcome = runtime.block_on(upload(&settings))?;
    if args.json {
        let text = serde_json::to_string(&outcome).map_err(|e| failed(e.to_string()))?;
        println!("{text}");
    } else {
        println!(
            "{} {} bytes, etag {}{}",
            outcome.object_name,
            outcome.size,
            outcome.etag,
            if outcome.confirmed {
                ", confirmed"
            } else {
                ", draft (not confirmed)"
            }
        );
    }
    Ok(())
}

/// Uploads, then confirms when asked.
async fn upload(settings: &settings::Settings) -> Result<Outcome, Exit> {
    let api = Api::new(settings)?;
    let mut outcome = match plan::choose(settings.size, settings.multipart_threshold) {
        plan::Mode::Single => single::upload(&api, settings).await?,
        plan::Mode::Multipart => parts::upload(&api, settings).await?,
    };
    if settings.confirm {
        let Confirmed {
            object_name,
            final_location,
            size,
            etag,
        } = api
            .confirm(&settings.object_name, settings.overwrite)
            .await?;
        outcome.object_name = object_name;
        outcome.final_location = Some(final_location);
        outcome.size = size;
        outcome.etag = etag;
        outcome.confirmed = true;
    }
    Ok(outcome)
}
