//! Receiving an upload's body (a PUT or an UploadPart) into a scratch file. The connection's
//! task only takes frames off the socket and watches the stall timeout and the size limit; the
//! bytes go, as hyper handed them (no copy), through a short bounded queue to one blocking
//! writer that hashes each byte once (MD5 for the ETag, and the declared checksum, in the same
//! pass over the same buffer) and writes it with plain `write(2)` calls, then fsyncs. So hashing
//! and disk writes never stall the runtime's workers, and the socket is read while the previous
//! frames are hashed and written. Memory per upload is bounded by [`QUEUE`] frames (hyper's
//! HTTP/1.1 frames are at most its read buffer, ~400 KiB; HTTP/2's at most 16 KiB).

use super::{too_large, Digests, Failure};
use crate::store::local::files::Scratch;
use crate::store::local::LocalStorage;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use std::io::Write;

/// Frames waiting for the writer at most.
const QUEUE: usize = 2;

impl LocalStorage {
    /// Receives the body into a scratch file, fsynced: its size; `digests` are updated with every
    /// byte. Cut when no byte comes for the stall timeout (a transfer that keeps moving is never
    /// cut) or past `limit` bytes; a failure leaves no file.
    pub(super) async fn receive(
        &self,
        mut body: Incoming,
        digests: &mut Digests,
        limit: u64,
    ) -> Result<(Scratch, u64), Failure> {
        let (tmp, file) = Scratch::create(&self.root).map_err(|e| Failure::io("create", &e))?;
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(QUEUE);
        let mut hashing = std::mem::replace(digests, Digests::none());
        // An empty chunk means "all sent: fsync"; the queue closing without it means the
        // upload failed (the file is then removed with `tmp`).
        let writer = tokio::task::spawn_blocking(move || {
            let mut file = file;
            while let Some(chunk) = rx.blocking_recv() {
                if chunk.is_empty() {
                    return file.sync_data().map(|()| (hashing, true));
                }
                hashing.update(&chunk);
                file.write_all(&chunk)?;
            }
            Ok((hashing, false))
        });
        let sent = self.pump(&mut body, &tx, limit).await;
        let end = match sent {
            Ok(_) => tx.send(Bytes::new()).await.is_ok(),
            Err(_) => false,
        };
        drop(tx);
        let written = writer
            .await
            .map_err(|e| Failure::io("write", &std::io::Error::other(e)))?;
        let size = sent?;
        match written {
            Ok((done, true)) if end => {
                *digests = done;
                Ok((tmp, size))
            }
            Ok(_) => Err(Failure::io(
                "write",
                &std::io::Error::other("the writer stopped early"),
            )),
            Err(e) => Err(Failure::io("write", &e)),
        }
    }

    /// Moves the body's data frames to the writer: their total size. A writer that stopped (a
    /// write failed) ends the pump early with `Ok`; the caller learns why from the writer.
    async fn pump(
        &self,
        body: &mut Incoming,
        tx: &tokio::sync::mpsc::Sender<Bytes>,
        limit: u64,
    ) -> Result<u64, Failure> {
        let mut size = 0_u64;
        loop {
            let frame = match tokio::time::timeout(self.stall_timeout, body.frame()).await {
                Err(_) => {
                    return Err(Failure::new(
                        400,
                        "RequestTimeout",
                        format!(
                            "No data arrived for {} ms; the upload was cut and nothing was stored.",
                            self.stall_timeout.as_millis()
                        ),
                    ))
                }
                Ok(None) => return Ok(size),
                Ok(Some(Err(e))) => {
                    return Err(Failure::new(
                        400,
                        "IncompleteBody",
                        "The upload ended early; nothing was stored.",
                    )
                    .because(e.to_string()))
                }
                Ok(Some(Ok(frame))) => frame,
            };
            let Ok(data) = frame.into_data() else {
                continue;
            };
            if data.is_empty() {
                continue;
            }
            size += data.len() as u64;
            if size > limit {
                return Err(too_large());
            }
            if tx.send(data).await.is_err() {
                return Ok(size);
            }
        }
    }
}
