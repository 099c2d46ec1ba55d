//! A file below the multipart threshold: one presigned PUT (`/api/v1/upload-url`), tried again
//! on a fresh URL when it fails in a way another attempt may fix.

use super::api::Api;
use super::progress::Progress;
use super::settings::Settings;
use super::source::{fits_in_memory, Buffers, Source};
use super::transfer::{backoff, put};
use super::{failed, Outcome};
use crate::cmd::exit::Exit;
use std::sync::Arc;

/// Uploads the whole file as one draft.
///
/// # Errors
/// The API's errors (see [`Api`]); exit 1 when the PUT keeps failing or the file cannot be read.
pub async fn upload(api: &Api, settings: &Settings) -> Result<Outcome, Exit> {
    let file = &settings.file;
    let size = settings.size;
    let buffers = fits_in_memory(1, size).then(Buffers::default);
    let source = Source::prepare(file, (0, size), settings.checksum, buffers.as_ref())
        .await
        .map_err(|e| failed(format!("{}: {e}", file.display())))?;
    let progress = Arc::new(Progress::new(size, 0));
    let mut attempt = 0;
    loop {
        let target = api
            .upload_url(
                &settings.object_name,
                settings.content_type.as_deref(),
                size,
                source.sha256(),
            )
            .await?;
        match put(api.client(), &target, &source, &progress).await {
            Ok(etag) => {
                progress.finish();
                return Ok(Outcome {
                    object_name: settings.object_name.clone(),
                    size,
                    etag,
                    method: "single",
                    parts_sent: None,
                    parts_ms: None,
                    complete_ms: None,
                    confirmed: false,
                    final_location: None,
                });
            }
            Err(e) if e.retryable && attempt < settings.retries => {
                progress.note(&format!("upload failed ({}), trying again", e.message));
                attempt += 1;
                tokio::time::sleep(backoff(attempt)).await;
            }
            Err(e) => {
                progress.finish();
                return Err(failed(format!(
                    "upload of {} failed: {}",
                    file.display(),
                    e.message
                )));
            }
        }
    }
}
