//! One presigned PUT of a byte range of the file (a [`Source`]: already in memory, or streamed
//! in [`CHUNK`]-byte reads), and the hashes computed over such a range before it is sent.
//!
//! A streamed range is read by one blocking thread per PUT, straight into the buffer that is sent
//! (one `read(2)` per chunk, no copy after it), [`READ_AHEAD`] chunks ahead of the socket: the
//! disk or page cache is read while the previous chunk is sent. (`tokio::fs` would read into
//! its own buffer and copy it out, and hop threads per read.)

use super::api::{describe, Presigned};
use super::progress::Progress;
use super::source::Source;
use base64::Engine as _;
use bytes::Bytes;
use futures_util::StreamExt as _;
use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Bytes read from the file at a time.
pub const CHUNK: usize = 1024 * 1024;

/// Chunks read ahead of the socket, per PUT (so at most `READ_AHEAD + 1` chunks in memory).
pub const READ_AHEAD: usize = 2;

/// Why a PUT failed, and whether a new attempt (on a fresh URL) may succeed.
#[derive(Debug)]
pub struct PutError {
    /// A timeout, a broken connection, 5xx, 408, 429, 403 (an expired URL), S3's
    /// `RequestTimeout`: worth another attempt.
    pub retryable: bool,
    /// One line: the status and the store's error code and message, never the URL.
    pub message: String,
}

/// Backoff before attempt `attempt + 1`: 200 ms doubled per attempt, at most 5 s, full jitter.
#[must_use]
pub fn backoff(attempt: u32) -> Duration {
    let cap = 200u64.saturating_mul(1 << attempt.min(5)).min(5000);
    Duration::from_millis(fastrand::u64(cap / 2..=cap))
}

/// PUTs `source` to `target`, with its required headers and an exact `Content-Length`; returns
/// the ETag the store answered with.
///
/// # Errors
/// [`PutError`] when the file cannot be read or the store refuses or does not answer.
pub async fn put(
    client: &reqwest::Client,
    target: &Presigned,
    source: &Source,
    progress: &Arc<Progress>,
) -> Result<String, PutError> {
    let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let len = source.len();
    let body = match source {
        Source::Memory { .. } => {
            let (progress, sent) = (progress.clone(), sent.clone());
            reqwest::Body::wrap_stream(futures_util::stream::iter(source.chunks()).map(
                move |chunk| {
                    let n = chunk.len() as u64;
                    sent.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                    progress.sent(n);
                    Ok::<_, std::io::Error>(chunk)
                },
            ))
        }
        Source::File {
            path, offset, len, ..
        } => {
            let local = |e: std::io::Error| PutError {
                retryable: false,
                message: format!("{}: {e}", path.display()),
            };
            let (path, offset) = (path.clone(), *offset);
            let opened = tokio::task::spawn_blocking(move || {
                let mut opened = std::fs::File::open(path)?;
                opened.seek(SeekFrom::Start(offset))?;
                Ok::<_, std::io::Error>(opened)
            })
            .await
            .map_err(std::io::Error::other)
            .and_then(|r| r)
            .map_err(local)?;
            reqwest::Body::wrap_stream(stream(opened, *len, progress.clone(), sent.clone()))
        }
    };
    let mut request = client
        .put(&target.url)
        .header(http::header::CONTENT_LENGTH, len)
        .body(body);
    for (name, value) in &target.required_headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let result = match request.send().await {
        Ok(response) => answer(response).await,
        Err(e) => Err(PutError {
            retryable: true,
            message: describe(&e),
        }),
    };
    if result.is_err() {
        progress.unsend(sent.load(std::sync::atomic::Ordering::Relaxed));
    }
    result
}

/// The ETag of a 2xx answer, else the store's S3-style error.
async fn answer(response: reqwest::Response) -> Result<String, PutError> {
    let status = response.status();
    if status.is_success() {
        return response
            .headers()
            .get(http::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| PutError {
                retryable: false,
                message: format!("the store answered {status} without an ETag"),
            });
    }
    let text = response.text().await.unwrap_or_default();
    let code = between(&text, "<Code>", "</Code>").unwrap_or_default();
    let message = between(&text, "<Message>", "</Message>").unwrap_or_default();
    let retryable = status.is_server_error()
        || matches!(status.as_u16(), 403 | 408 | 429)
        || code == "RequestTimeout";
    Err(PutError {
        retryable,
        message: format!("the store answered {status} {code}: {message}"),
    })
}

/// The text between the first `open` and the next `close`, cut at 200 characters.
fn between<'a>(text: &'a str, open: &str, close: &str) -> Option<String> {
    let start = text.find(open)? + open.len();
    let rest: &'a str = text.get(start..)?;
    let end = rest.find(close)?;
    Some(rest.get(..end)?.chars().take(200).collect())
}

/// The range as a stream of chunks read ahead by a blocking thread; an early end of file is an
/// error (the file shrank). Dropping the stream (the PUT ended) stops the thread at its next
/// chunk.
fn stream(
    file: std::fs::File,
    len: u64,
    progress: Arc<Progress>,
    sent: Arc<std::sync::atomic::AtomicU64>,
) -> impl futures_util::Stream<Item = std::io::Result<Bytes>> {
    let (tx, rx) = tokio::sync::mpsc::channel(READ_AHEAD);
    tokio::task::spawn_blocking(move || read_ahead(file, len, &tx));
    futures_util::stream::unfold(rx, move |mut rx| {
        let (progress, sent) = (progress.clone(), sent.clone());
        async move {
            let chunk = rx.recv().await?;
            if let Ok(bytes) = &chunk {
                let n = bytes.len() as u64;
                sent.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                progress.sent(n);
            }
            Some((chunk, rx))
        }
    })
}

/// Reads `len` bytes of `file` (from where it stands) into [`CHUNK`]-byte buffers and sends
/// them; stops at the first error (sent too) or when the receiver is gone.
fn read_ahead(
    mut file: std::fs::File,
    len: u64,
    tx: &tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
) {
    let mut left = len;
    while left > 0 {
        let want = usize::try_from(left).unwrap_or(CHUNK).min(CHUNK);
        let mut buf = vec![0u8; want];
        let chunk = match file.read_exact(&mut buf) {
            Ok(()) => Ok(Bytes::from(buf)),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(shrank()),
            Err(e) => Err(e),
        };
        let failed = chunk.is_err();
        if tx.blocking_send(chunk).is_err() || failed {
            return;
        }
        left -= want as u64;
    }
}

/// The base64 SHA-256 of bytes `offset..offset + len` of `file` (the checksum a part URL
/// signs), read on a blocking thread in [`HASH_CHUNK`]-byte pieces.
///
/// # Errors
/// The file cannot be read, or is shorter than the range.
pub async fn sha256_of(file: PathBuf, offset: u64, len: u64) -> std::io::Result<String> {
    let digest = hash_range::<sha2::Sha256>(file, offset, len).await?;
    Ok(base64::engine::general_purpose::STANDARD.encode(digest))
}

/// The hex MD5 of bytes `offset..offset + len` of `file` (a plain part's ETag), as
/// [`sha256_of`].
///
/// # Errors
/// As [`sha256_of`].
pub async fn md5_of(file: PathBuf, offset: u64, len: u64) -> std::io::Result<String> {
    Ok(hex::encode(
        hash_range::<md5::Md5>(file, offset, len).await?,
    ))
}

/// Bytes hashed per read: large, so the hash runs over long buffers between few `read(2)`s.
pub const HASH_CHUNK: usize = 1024 * 1024;

/// One digest `D` of the range, each byte hashed once (only the digest asked for is computed).
async fn hash_range<D: sha2::Digest + Send + 'static>(
    file: PathBuf,
    offset: u64,
    len: u64,
) -> std::io::Result<Vec<u8>> {
    tokio::task::spawn_blocking(move || {
        let mut opened = std::fs::File::open(&file)?;
        opened.seek(SeekFrom::Start(offset))?;
        let mut reader = opened.take(len);
        let mut digest = D::new();
        let mut buf = vec![0u8; HASH_CHUNK];
        let mut total = 0u64;
        loop {
            let n = reader.read(&mut buf)?;
            let Some(piece) = buf.get(..n).filter(|p| !p.is_empty()) else {
                break;
            };
            digest.update(piece);
            total += n as u64;
        }
        if total != len {
            return Err(shrank());
        }
        Ok(digest.finalize().to_vec())
    })
    .await
    .map_err(std::io::Error::other)?
}

/// The error of a file that ended before the range being sent: it shrank during the upload.
pub(super) fn shrank() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::UnexpectedEof,
        "the file shrank while it was uploaded",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_stays_bounded() {
        for attempt in 0..40 {
            let wait = backoff(attempt);
            assert!(wait <= Duration::from_secs(5), "{attempt}: {wait:?}");
            assert!(wait >= Duration::from_millis(100), "{attempt}: {wait:?}");
        }
    }

    #[test]
    fn store_errors_are_read_from_s3_xml() {
        let text = "<Error><Code>BadDigest</Code><Message>no match</Message></Error>";
        assert_eq!(
            between(text, "<Code>", "</Code>").as_deref(),
            Some("BadDigest")
        );
        assert_eq!(between("<Code>", "<Code>", "</Code>"), None);
    }

    /// The chunks of `stream` over `len` bytes from `offset` of a file holding `content`.
    async fn streamed(content: &[u8], offset: u64, len: u64) -> Vec<std::io::Result<Bytes>> {
        use futures_util::StreamExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, content).unwrap();
        let mut file = std::fs::File::open(&path).unwrap();
        file.seek(SeekFrom::Start(offset)).unwrap();
        let progress = Arc::new(Progress::new(len, 0));
        let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let chunks: Vec<_> = stream(file, len, progress, sent.clone()).collect().await;
        let ok: u64 = chunks.iter().flatten().map(|c| c.len() as u64).sum();
        assert_eq!(sent.load(std::sync::atomic::Ordering::Relaxed), ok);
        chunks
    }

    #[tokio::test]
    async fn the_stream_sends_exactly_the_range_in_chunks() {
        let content: Vec<u8> = (0..2 * CHUNK + 300)
            .map(|i| u8::try_from(i % 251).unwrap())
            .collect();
        let len = (2 * CHUNK + 100) as u64;
        let chunks = streamed(&content, 7, len).await;
        let sizes: Vec<usize> = chunks.iter().map(|c| c.as_ref().unwrap().len()).collect();
        assert_eq!(sizes, [CHUNK, CHUNK, 100]);
        let joined: Vec<u8> = chunks.into_iter().flat_map(|c| c.unwrap()).collect();
        assert_eq!(joined, content[7..7 + 2 * CHUNK + 100]);
        assert!(streamed(&content, 0, 0).await.is_empty());
    }

    #[tokio::test]
    async fn a_file_shorter_than_the_range_ends_the_stream_with_an_error() {
        let content = vec![1u8; CHUNK + 10];
        let chunks = streamed(&content, 0, (CHUNK + 20) as u64).await;
        assert_eq!(chunks.len(), 2, "one whole chunk, then the error");
        assert_eq!(chunks[0].as_ref().unwrap().len(), CHUNK);
        let error = chunks[1].as_ref().unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::UnexpectedEof);
        assert!(error.to_string().contains("shrank"), "{error}");
    }

    #[tokio::test]
    async fn hashes_cover_exactly_the_range() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"xxabcxx").unwrap();
        let sha = sha256_of(path.clone(), 2, 3).await.unwrap();
        assert_eq!(sha, "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=");
        let md5 = md5_of(path.clone(), 2, 3).await.unwrap();
        assert_eq!(md5, "900150983cd24fb0d6963f7d28e17f72");
        assert!(sha256_of(path.clone(), 5, 3).await.is_err());
        assert!(md5_of(path, 5, 3).await.is_err());
    }
}
