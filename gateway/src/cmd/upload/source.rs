//! What one PUT sends: a byte range of the file, either read into memory once beforehand
//! (hashed as it is read, then sent from the same buffers, on every attempt) or, when that
//! would take too much memory, read as it is sent (after a separate hashing pass when a
//! checksum is needed).
//!
//! Reading once matters because the upload is CPU-bound when client and store share a machine:
//! a second `read(2)` of every byte is a second copy out of the page cache.

use super::transfer::{sha256_of, CHUNK};
use base64::Engine as _;
use bytes::Bytes;
use sha2::Digest as _;
use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Bytes of parts held in memory at once, at most, over all parts in flight: a part is read
/// into memory when `parallel × part size` fits (the default 4 × 8 MiB does).
pub const MEMORY: u64 = 256 * 1024 * 1024;

/// Bytes hashed at a time, right after they were read (still in the CPU's cache).
const HASH_STEP: usize = 256 * 1024;

/// A range of the file ready to be sent, and its SHA-256 when one was asked for.
#[derive(Debug)]
pub enum Source {
    /// Read into memory once; sent in [`CHUNK`]-byte slices of it (no copy).
    Memory {
        /// The range's bytes.
        bytes: Bytes,
        /// The base64 SHA-256 of the range.
        sha256: Option<String>,
    },
    /// Read from the file as it is sent.
    File {
        /// The file.
        path: PathBuf,
        /// Where the range starts, in bytes.
        offset: u64,
        /// The range's length, in bytes.
        len: u64,
        /// The base64 SHA-256 of the range.
        sha256: Option<String>,
    },
}

impl Source {
    /// Bytes `offset..offset + len` of `file`, read into a buffer of `buffers` when one is
    /// given, else read as they are sent; with their base64 SHA-256 when `sha256`.
    ///
    /// # Errors
    /// The file cannot be read, or is shorter than the range ("the file shrank").
    pub async fn prepare(
        file: &Path,
        (offset, len): (u64, u64),
        sha256: bool,
        buffers: Option<&Buffers>,
    ) -> std::io::Result<Self> {
        if let Some(buffers) = buffers {
            let path = file.to_owned();
            let buf = buffers.take();
            let (buf, sha256) =
                tokio::task::spawn_blocking(move || load(&path, (offset, len), sha256, buf))
                    .await
                    .map_err(std::io::Error::other)??;
            return Ok(Self::Memory {
                bytes: Bytes::from(buf),
                sha256,
            });
        }
        let sha256 = if sha256 {
            Some(sha256_of(file.to_owned(), offset, len).await?)
        } else {
            None
        };
        Ok(Self::File {
            path: file.to_owned(),
            offset,
            len,
            sha256,
        })
    }

    /// The bytes in [`CHUNK`]-byte slices (each a reference to the buffer, not a copy); empty
    /// for a range read from the file.
    #[must_use]
    pub fn chunks(&self) -> Vec<Bytes> {
        let Self::Memory { bytes, .. } = self else {
            return Vec::new();
        };
        (0..bytes.len())
            .step_by(CHUNK)
            .map(|start| bytes.slice(start..bytes.len().min(start + CHUNK)))
            .collect()
    }

    /// Gives the buffer back to `buffers` for the next part, when nothing else holds it.
    pub fn recycle(self, buffers: &Buffers) {
        if let Self::Memory { bytes, .. } = self {
            if let Ok(unique) = bytes.try_into_mut() {
                buffers.give(Vec::from(unique));
            }
        }
    }

    /// The range's length, in bytes.
    #[must_use]
    pub fn len(&self) -> u64 {
        match self {
            Self::Memory { bytes, .. } => bytes.len() as u64,
            Self::File { len, .. } => *len,
        }
    }

    /// Whether the range is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The base64 SHA-256, when one was asked for.
    #[must_use]
    pub fn sha256(&self) -> Option<&str> {
        match self {
            Self::Memory { sha256, .. } | Self::File { sha256, .. } => sha256.as_deref(),
        }
    }
}

/// Whether `parallel` parts of `part_size` bytes may be held in memory at once.
#[must_use]
pub fn fits_in_memory(parallel: usize, part_size: u64) -> bool {
    u64::try_from(parallel)
        .ok()
        .and_then(|p| p.checked_mul(part_size))
        .is_some_and(|total| total <= MEMORY)
}

/// Buffers of parts sent before, kept for the next parts: a reused buffer needs neither
/// zeroing nor the kernel's page faults, which cost the client as much as a read of the file.
/// It holds at most as many buffers as parts were in memory at once.
#[derive(Debug, Default)]
pub struct Buffers(Mutex<Vec<Vec<u8>>>);

impl Buffers {
    fn take(&self) -> Vec<u8> {
        self.0
            .lock()
            .ok()
            .and_then(|mut kept| kept.pop())
            .unwrap_or_default()
    }

    fn give(&self, buf: Vec<u8>) {
        if let Ok(mut kept) = self.0.lock() {
            kept.push(buf);
        }
    }
}

/// Reads the range into `buf` (resized to it: only bytes it never had are zeroed), hashing
/// each [`HASH_STEP`] right after its `read(2)`.
fn load(
    file: &Path,
    (offset, len): (u64, u64),
    sha256: bool,
    mut buf: Vec<u8>,
) -> std::io::Result<(Vec<u8>, Option<String>)> {
    let mut opened = std::fs::File::open(file)?;
    opened.seek(SeekFrom::Start(offset))?;
    let len = usize::try_from(len).map_err(std::io::Error::other)?;
    buf.resize(len, 0);
    let mut digest = sha256.then(sha2::Sha256::new);
    for piece in buf.chunks_mut(HASH_STEP) {
        opened.read_exact(piece).map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => super::transfer::shrank(),
            _ => e,
        })?;
        if let Some(d) = &mut digest {
            d.update(&*piece);
        }
    }
    let sha256 = digest.map(|d| base64::engine::general_purpose::STANDARD.encode(d.finalize()));
    Ok((buf, sha256))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_with(content: &[u8]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, content).unwrap();
        (dir, path)
    }

    #[tokio::test]
    async fn memory_and_file_give_the_same_range_and_hash() {
        let content: Vec<u8> = (0..2 * CHUNK + 300)
            .map(|i| u8::try_from(i % 251).unwrap())
            .collect();
        let (_dir, path) = file_with(&content);
        let range = (7, (2 * CHUNK + 100) as u64);
        let buffers = Buffers::default();
        let memory = Source::prepare(&path, range, true, Some(&buffers))
            .await
            .unwrap();
        let file = Source::prepare(&path, range, true, None).await.unwrap();
        assert_eq!(memory.sha256(), file.sha256());
        assert!(memory.sha256().is_some());
        assert_eq!(memory.len(), range.1);
        assert!(file.chunks().is_empty());
        let chunks = memory.chunks();
        let sizes: Vec<usize> = chunks.iter().map(Bytes::len).collect();
        assert_eq!(sizes, [CHUNK, CHUNK, 100]);
        let joined: Vec<u8> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
        assert_eq!(joined, content[7..7 + 2 * CHUNK + 100]);
        drop(chunks);
        let Source::Memory { bytes, .. } = &memory else {
            panic!("not in memory")
        };
        let address = bytes.as_ptr();
        memory.recycle(&buffers);
        // The next part reuses the same buffer, shorter now, and holds its own bytes.
        let next = Source::prepare(&path, (1, 5), false, Some(&buffers))
            .await
            .unwrap();
        assert_eq!(next.sha256(), None);
        let Source::Memory { bytes, .. } = &next else {
            panic!("not in memory")
        };
        assert_eq!(bytes.as_ptr(), address);
        assert_eq!(bytes.as_ref(), &content[1..6]);
    }

    #[tokio::test]
    async fn a_buffer_still_sent_is_not_reused() {
        let (_dir, path) = file_with(b"abcdef");
        let buffers = Buffers::default();
        let first = Source::prepare(&path, (0, 6), false, Some(&buffers))
            .await
            .unwrap();
        let in_flight = first.chunks();
        first.recycle(&buffers);
        let second = Source::prepare(&path, (1, 2), false, Some(&buffers))
            .await
            .unwrap();
        assert_eq!(in_flight[0].as_ref(), b"abcdef");
        assert_eq!(second.chunks()[0].as_ref(), b"bc");
    }

    #[tokio::test]
    async fn a_known_hash_and_a_short_file() {
        let (_dir, path) = file_with(b"xxabcxx");
        let buffers = Buffers::default();
        let abc = Source::prepare(&path, (2, 3), true, Some(&buffers))
            .await
            .unwrap();
        assert_eq!(
            abc.sha256(),
            Some("ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=")
        );
        let short = Source::prepare(&path, (5, 3), true, Some(&buffers))
            .await
            .unwrap_err();
        assert_eq!(short.kind(), std::io::ErrorKind::UnexpectedEof);
        assert!(short.to_string().contains("shrank"), "{short}");
        let empty = Source::prepare(&path, (0, 0), true, Some(&buffers))
            .await
            .unwrap();
        assert!(empty.is_empty());
        assert!(empty.chunks().is_empty());
    }

    #[test]
    fn memory_is_bounded() {
        let mib = 1024 * 1024;
        assert!(fits_in_memory(4, 8 * mib));
        assert!(fits_in_memory(64, 4 * mib));
        assert!(!fits_in_memory(64, 8 * mib));
        assert!(!fits_in_memory(1, 5 * 1024 * mib));
    }
}
