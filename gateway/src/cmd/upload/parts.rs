//! A file at or above the threshold: a multipart upload. It is resumed from the state file, or
//! found again through `list` + `parts`, or created; parts the store holds already (same size,
//! and the same ETag when one is known: the state's, or the MD5 of the local bytes when the
//! store's ETag is one) are not sent again. The others go `--parallel` at a time, each on a
//! fresh part URL per attempt, the state file rewritten after each; then `complete`.

use super::api::{Api, StoredPart};
use super::plan::Layout;
use super::progress::Progress;
use super::settings::Settings;
use super::source::{fits_in_memory, Buffers, Source};
use super::state::{self, State};
use super::transfer::{backoff, md5_of as md5_of_range, put};
use super::{failed, Outcome};
use crate::cmd::exit::Exit;
use futures_util::{stream, TryStreamExt as _};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

/// Where the upload stands: its id, layout, and the state file kept up to date.
struct Upload<'a> {
    api: &'a Api,
    settings: &'a Settings,
    layout: Layout,
    state: Mutex<State>,
    /// `None` once the state file could not be written (said once).
    state_file: Mutex<Option<std::path::PathBuf>>,
    sent: AtomicU32,
    progress: Arc<Progress>,
    /// Part buffers, when `parallel` parts fit in [`super::source::MEMORY`]: each part is then
    /// read once, hashed as it is read, and sent from memory.
    buffers: Option<Buffers>,
}

/// Uploads the file in parts and completes the upload (the draft then exists).
///
/// # Errors
/// The API's errors (see [`Api`]); exit 1 when a part keeps failing (the state file is kept).
pub async fn upload(api: &Api, settings: &Settings) -> Result<Outcome, Exit> {
    let (mut state, layout) = find_or_create(api, settings).await?;
    let stored = api.parts(&settings.object_name, &state.upload_id).await?;
    let (done, todo) = sort_out(settings, &layout, &stored, &state.parts).await?;
    let already: u64 = done
        .keys()
        .filter_map(|n| layout.range(*n))
        .map(|(_, len)| len)
        .sum();
    state.parts = done;
    let upload = Upload {
        api,
        settings,
        layout,
        state: Mutex::new(state),
        state_file: Mutex::new(Some(settings.state_file.clone())),
        sent: AtomicU32::new(0),
        progress: Arc::new(Progress::new(settings.size, already)),
        buffers: fits_in_memory(settings.parallel, layout.part_size).then(Buffers::default),
    };
    upload.save();
    let started = std::time::Instant::now();
    let result = stream::iter(todo.into_iter().map(Ok))
        .try_for_each_concurrent(settings.parallel, |n| upload.part(n))
        .await;
    upload.progress.finish();
    result?;
    let parts_ms = millis(started.elapsed());
    let (upload_id, parts) = match upload.state.lock() {
        Ok(s) => (s.upload_id.clone(), s.parts.clone()),
        Err(_) => return Err(failed("a part upload panicked")),
    };
    let started = std::time::Instant::now();
    let completed = api
        .complete(&settings.object_name, &upload_id, &parts)
        .await?;
    let complete_ms = millis(started.elapsed());
    state::remove(&settings.state_file);
    Ok(Outcome {
        object_name: completed.object_name,
        size: completed.size,
        etag: completed.etag,
        method: "multipart",
        parts_sent: Some(upload.sent.load(Ordering::Relaxed)),
        parts_ms: Some(parts_ms),
        complete_ms: Some(complete_ms),
        confirmed: false,
        final_location: None,
    })
}

fn millis(elapsed: std::time::Duration) -> u64 {
    u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
}

/// The state to continue from: the state file's when it matches, else the newest upload of
/// this name the API lists whose parts fit the file, else a new upload.
async fn find_or_create(api: &Api, settings: &Settings) -> Result<(State, Layout), Exit> {
    let endpoint = settings.endpoint.as_str();
    let modified = state::nanos(settings.modified);
    let fresh = |upload_id: String, part_size: u64| State {
        version: 1,
        endpoint: endpoint.to_owned(),
        object_name: settings.object_name.clone(),
        upload_id,
        file_size: settings.size,
        file_modified_ns: modified,
        part_size,
        parts: BTreeMap::new(),
    };
    let note = |line: String| eprintln!("gateway upload: {line}");
    match state::load(&settings.state_file) {
        Ok(Some(saved))
            if saved.matches(endpoint, &settings.object_name, settings.size, modified) =>
        {
            if let Some(layout) = Layout::new(settings.size, saved.part_size) {
                note(format!("resuming upload {}", saved.upload_id));
                return Ok((saved, layout));
            }
        }
        Ok(Some(_)) => note(format!(
            "{} is for another file or upload; starting afresh",
            settings.state_file.display()
        )),
        Ok(None) => {}
        Err(line) => note(format!("{line}; starting afresh")),
    }
    let mut listed = api.list(&settings.object_name).await?;
    listed.sort_by(|a, b| b.initiated.cmp(&a.initiated));
    if let Some(newest) = listed.first() {
        let parts = api.parts(&newest.object_name, &newest.upload_id).await?;
        let part_size = parts.iter().map(|p| p.size).max().unwrap_or(0);
        let layout = Layout::new(settings.size, part_size).filter(|l| {
            settings.part_size.is_none_or(|asked| asked == part_size) && fits(l, &parts)
        });
        if let Some(layout) = layout {
            note(format!(
                "resuming upload {} found through the API",
                newest.upload_id
            ));
            return Ok((fresh(newest.upload_id.clone(), part_size), layout));
        }
    }
    let created = api
        .create(
            &settings.object_name,
            settings.content_type.as_deref(),
            settings.size,
            settings.part_size,
            settings.checksum,
        )
        .await?;
    let layout = Layout::new(settings.size, created.part_size).ok_or_else(|| {
        failed(format!(
            "the server chose a part size of {} bytes, outside S3's limits for {} bytes",
            created.part_size, settings.size
        ))
    })?;
    Ok((fresh(created.upload_id, created.part_size), layout))
}

/// Whether every listed part has the size its number has in `layout`.
fn fits(layout: &Layout, parts: &[StoredPart]) -> bool {
    !parts.is_empty()
        && parts.iter().all(|p| {
            layout
                .range(p.part_number)
                .is_some_and(|(_, len)| len == p.size)
        })
}

/// Splits the parts into those stored already (number → ETag) and those to send.
async fn sort_out(
    settings: &Settings,
    layout: &Layout,
    stored: &[StoredPart],
    known: &BTreeMap<u32, String>,
) -> Result<(BTreeMap<u32, String>, Vec<u32>), Exit> {
    let mut done = BTreeMap::new();
    for part in stored {
        let Some((offset, len)) = layout.range(part.part_number) else {
            continue;
        };
        if part.size != len {
            continue;
        }
        let same = match known.get(&part.part_number) {
            Some(etag) => same_etag(etag, &part.etag),
            None => match md5_of(&part.etag) {
                Some(theirs) => {
                    let ours = md5_of_range(settings.file.clone(), offset, len)
                        .await
                        .map_err(|e| failed(format!("{}: {e}", settings.file.display())))?;
                    ours == theirs
                }
                None => true,
            },
        };
        if same {
            done.insert(part.part_number, part.etag.clone());
        }
    }
    let todo = (1..=layout.count())
        .filter(|n| !done.contains_key(n))
        .collect();
    Ok((done, todo))
}

/// Whether two ETags name the same bytes: S3 quotes them in headers, a JSON API may not.
fn same_etag(a: &str, b: &str) -> bool {
    a.trim_matches('"')
        .eq_ignore_ascii_case(b.trim_matches('"'))
}

/// The MD5 in a plain (not multipart, not encrypted with KMS) ETag, lowercase hex.
fn md5_of(etag: &str) -> Option<String> {
    let hex = etag.trim_matches('"');
    (hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| hex.to_ascii_lowercase())
}

impl Upload<'_> {
    /// Sends part `number`, tried again on a fresh URL while that may help; records its ETag.
    async fn part(&self, number: u32) -> Result<(), Exit> {
        let Some((offset, len)) = self.layout.range(number) else {
            return Err(failed(format!("part {number} is outside the file")));
        };
        let file = &self.settings.file;
        let buffers = self.buffers.as_ref();
        let source = Source::prepare(file, (offset, len), self.settings.checksum, buffers)
            .await
            .map_err(|e| failed(format!("{}: {e}", file.display())))?;
        let sent = self.send(number, &source).await;
        if let Some(buffers) = buffers {
            source.recycle(buffers);
        }
        sent
    }

    /// PUTs part `number` from `source`, each attempt on a fresh URL.
    async fn send(&self, number: u32, source: &Source) -> Result<(), Exit> {
        let (name, upload_id) = (&self.settings.object_name, self.upload_id());
        let mut attempt = 0;
        loop {
            let target = self
                .api
                .part_url(name, &upload_id, number, source.sha256())
                .await?;
            match put(self.api.client(), &target, source, &self.progress).await {
                Ok(etag) => {
                    self.sent.fetch_add(1, Ordering::Relaxed);
                    self.record(number, etag);
                    return Ok(());
                }
                Err(e) if e.retryable && attempt < self.settings.retries => {
                    attempt += 1;
                    self.progress.note(&format!(
                        "part {number} failed ({}); attempt {} of {}",
                        e.message,
                        attempt + 1,
                        self.settings.retries + 1
                    ));
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Err(e) => {
                    return Err(failed(format!(
                        "part {number} failed: {}; run the same command again to resume",
                        e.message
                    )))
                }
            }
        }
    }

    fn upload_id(&self) -> String {
        self.state
            .lock()
            .map(|s| s.upload_id.clone())
            .unwrap_or_default()
    }

    /// Records a stored part and rewrites the state file.
    fn record(&self, number: u32, etag: String) {
        let done = match self.state.lock() {
            Ok(mut state) => {
                state.parts.insert(number, etag);
                state.parts.len()
            }
            Err(_) => return,
        };
        self.save();
        self.progress.part_done(number, self.layout.count(), done);
    }

    /// Writes the state file; the first failure is said once, then the state lives only in the
    /// API (`list` + `parts`).
    fn save(&self) {
        let Ok(mut path) = self.state_file.lock() else {
            return;
        };
        let Some(target) = path.as_ref() else {
            return;
        };
        let result = match self.state.lock() {
            Ok(state) => state::save(target, &state),
            Err(_) => return,
        };
        if let Err(e) = result {
            self.progress.note(&format!(
                "gateway upload: cannot write {} ({e}); an interrupted upload will be found \
                 through the API instead",
                target.display()
            ));
            *path = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_match_with_or_without_quotes() {
        assert!(same_etag("\"ab12\"", "ab12"));
        assert!(same_etag("AB12", "\"ab12\""));
        assert!(!same_etag("\"ab12\"", "\"ab13\""));
    }

    #[test]
    fn only_plain_etags_are_md5s() {
        assert_eq!(
            md5_of("\"900150983CD24FB0D6963F7D28E17F72\"").as_deref(),
            Some("900150983cd24fb0d6963f7d28e17f72")
        );
        assert_eq!(md5_of("\"900150983cd24fb0d6963f7d28e17f72-3\""), None);
        assert_eq!(md5_of("abc"), None);
    }

    #[test]
    fn listed_parts_fit_a_layout_only_with_their_sizes() {
        let mib = 1024 * 1024;
        let layout = Layout::new(20 * mib + 1, 5 * mib).unwrap();
        let part = |n, size| StoredPart {
            part_number: n,
            etag: "e".into(),
            size,
        };
        assert!(fits(&layout, &[part(1, 5 * mib), part(5, 1)]));
        assert!(!fits(&layout, &[part(1, 5 * mib), part(5, 2)]));
        assert!(!fits(&layout, &[part(6, 1)]));
        assert!(!fits(&layout, &[]));
    }
}
