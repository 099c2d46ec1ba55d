//! Admission of object transfers (the embedded store's presigned URLs, `/_store/`): they take
//! no API place, but one of as many transfer slots as there are API places
//! (`DRAFTSTORE_MAX_IN_FLIGHT`), shared fairly twice, like API places ([`Shares`]): by TCP peer
//! address and by presigned URL (its `X-Amz-Signature`, else its path). No single URL and no
//! single peer holds more than `slots / (others holding slots + 2)`, so one URL fetched by a
//! crowd, or one client with many URLs, cannot take every slot. Past its share a transfer is
//! refused at once: 503 with S3's `SlowDown` XML and `Retry-After: 1`.
//!
//! A slot is held until the transfer ends: an upload is read whole before it is answered, and a
//! download's slot goes with its response body ([`Download`]) until the last byte is sent (or
//! the client goes). A failure's answer (S3's XML error, all in memory) gives its slot back at
//! once, and over HTTP/2 is reset at the stall limit like any small whole answer.
//!
//! Over HTTP/2 a download's bytes wait in h2 (for the client's stream window), not in the
//! socket, so the socket's write-stall timer never sees a client that opens no window. Its
//! body therefore arms the stream's progress watch ([`crate::http::watch`]) for the stall limit
//! ([`TransferLayer::watching`]) and marks progress at every frame hyper asks for: hyper asks
//! for the next as soon as it handed the last to h2, and hands one over only while the stream
//! has window and h2 holds less than [`crate::http::server::STREAM_SEND_BUFFER`] of it unsent.
//! A client taking less than one frame (32 KiB, half the store's read) per stall limit has its
//! stream reset (`RST_STREAM(CANCEL)`), its slot freed, and the download logged and counted at
//! its end as 504 `STREAM_IDLE`. A client that keeps taking frames is never cut, however long
//! the download.
//!
//! What a download holds in h2 is bounded per stream, not per connection: h2 takes a frame as
//! soon as the client's window has room, whether or not the socket can write it, so a client
//! that opens wide windows and stops reading its socket makes each of its downloads hold up to
//! [`crate::http::server::STREAM_SEND_BUFFER`] plus a frame in h2 and one frame in hyper; the
//! transfer slots bound the downloads. (Counting downloads in the connection's queue of API
//! answers, [`crate::http::queued`], bounded them per connection, but let one stream whose
//! window was closed hold the queue for every other stream of its connection, and starved
//! downloads sharing a connection into stall resets: a review reset 7 of 16 steady readers.)
//!
//! A download is logged and counted at its end, not when its head goes out (over HTTP/1.1
//! too): one still being sent when the server's drain ends is cut by the server, 503
//! `DRAIN_CUT`, not the client's cancel (499 `STREAM_CANCELLED`, a reset or a closed
//! connection before the end), as every call is (see [`super::observe`]).
//!
//! A transfer shed for want of a slot is logged at INFO (request id, peer) and counted in
//! `draftstore_transfers_shed_total`.

use super::observe::{PacedEnd, Unfinished};
use super::{meta, Req, Res};
use crate::http::response::{full, CONTENT_TYPE};
use crate::http::server::Call;
use crate::http::shares::{Key, Shares, Ticket};
use futures_util::future::Either;
use hyper::body::Body as _;
use pin_project_lite::pin_project;
use std::convert::Infallible;
use std::future::{ready, Future, Ready};
use std::hash::{BuildHasher, Hash, Hasher, RandomState};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready as ready_poll, Context, Poll};
use std::time::Duration;
use tower::{Layer, Service};

/// Shares transfer slots by peer and by URL.
#[derive(Debug, Clone)]
pub struct TransferLayer {
    by_peer: Arc<Shares>,
    by_url: Arc<Shares>,
    /// Keys the URL hash (random per process: nobody can aim at another URL's slots).
    hasher: RandomState,
    /// The stall limit of an HTTP/2 download (zero: never cut).
    stall: Duration,
}

impl TransferLayer {
    /// `slots` transfers at once (at least 1).
    #[must_use]
    pub fn new(slots: usize) -> Self {
        Self {
            by_peer: Shares::new(slots),
            by_url: Shares::new(slots),
            hasher: RandomState::new(),
            stall: Duration::ZERO,
        }
    }

    /// Resets an HTTP/2 download whose client takes less than one frame in `stall` (the stall
    /// limit; zero: never). See the module doc.
    #[must_use]
    pub fn watching(mut self, stall: Duration) -> Self {
        self.stall = stall;
        self
    }
}

impl<S> Layer<S> for TransferLayer {
    type Service = Transfer<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Transfer {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service of [`TransferLayer`].
#[derive(Debug, Clone)]
pub struct Transfer<S> {
    inner: S,
    layer: TransferLayer,
}

impl TransferLayer {
    /// The URL's key: its signature (unique per presigned URL), else its path and query.
    fn url_key(&self, uri: &http::Uri) -> Key {
        let query = uri.query().unwrap_or_default();
        let signature = query
            .split('&')
            .find_map(|pair| pair.strip_prefix("X-Amz-Signature="));
        let mut hasher = self.hasher.build_hasher();
        match signature {
            Some(signature) => signature.hash(&mut hasher),
            None => uri
                .path_and_query()
                .map(http::uri::PathAndQuery::as_str)
                .hash(&mut hasher),
        }
        Key::Url(hasher.finish())
    }

    fn take(&self, req: &Req) -> Option<(Ticket, Ticket)> {
        let peer = meta(req)
            .and_then(|m| m.peer)
            .map_or(Key::Anyone, Key::Peer);
        let by_peer = self.by_peer.place(peer)?;
        let by_url = self.by_url.place(self.url_key(req.uri()))?;
        Some((by_peer, by_url))
    }
}

impl<S> Service<Req> for Transfer<S>
where
    S: Service<Req, Response = Res, Error = Infallible>,
{
    type Response = Res;
    type Error = Infallible;
    type Future = Either<Ready<Result<Res, Infallible>>, Either<S::Future, Slotted<S::Future>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        if !Call::from_request(&req).is_store() {
            return Either::Right(Either::Left(self.inner.call(req)));
        }
        match self.layer.take(&req) {
            Some(slot) => Either::Right(Either::Right(Slotted {
                inner: self.inner.call(req),
                slot: Some(slot),
                stall: self.layer.stall,
            })),
            None => {
                shed(&req);
                Either::Left(ready(Ok(slow_down())))
            }
        }
    }
}

/// Logs (INFO: the client's doing) and counts a transfer refused for want of a slot.
fn shed(req: &Req) {
    crate::metrics::get().transfers_shed.inc();
    let meta = meta(req);
    let peer = meta.and_then(|m| m.peer);
    let id = meta.and_then(|m| m.id.as_ref());
    tracing::info!(
        request_id = id.map(tracing::field::display),
        peer = peer.map(tracing::field::display),
        code = "SlowDown",
        "a transfer on the store's URLs was shed (503 SlowDown): its peer or its URL holds \
         its share of the transfer slots"
    );
}

/// 503 `SlowDown`, as S3 answers a client it wants to back off.
#[must_use]
pub fn slow_down() -> Res {
    s3_error(
        http::StatusCode::SERVICE_UNAVAILABLE,
        "SlowDown",
        "Too many transfers from this client or on this URL at once; retry.",
    )
}

/// An S3-style XML error (`<Error><Code>…`), with `Retry-After: 1` on a 503. `message` is
/// written as is: callers pass fixed text.
#[must_use]
pub fn s3_error(status: http::StatusCode, code: &str, message: &str) -> Res {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    );
    let mut response = http::Response::new(full(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        http::HeaderValue::from_static("application/xml"),
    );
    if status == http::StatusCode::SERVICE_UNAVAILABLE {
        headers.insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from_static("1"),
        );
    }
    response
}

pin_project! {
    /// The transfer, holding its slots; they move into the response body when it comes.
    pub struct Slotted<F> {
        #[pin]
        inner: F,
        slot: Option<(Ticket, Ticket)>,
        stall: Duration,
    }
}

impl<F: Future<Output = Result<Res, Infallible>>> Future for Slotted<F> {
    type Output = Result<Res, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Ok(response) = ready_poll!(this.inner.poll(cx));
        let slot = this.slot.take();
        if response.body().is_end_stream() {
            return Poll::Ready(Ok(response));
        }
        // A failure's answer (S3's small XML error) is all in memory: its slots are given back
        // now, and over HTTP/2 it is watched like any whole answer
        // (`crate::http::watch::answered`).
        if !response.status().is_success() && response.body().whole_len().is_some() {
            return Poll::Ready(Ok(response));
        }
        let mut response = response;
        // Only an HTTP/2 stream task has a watch (this runs in it).
        let watch = crate::http::watch::current();
        if let Some(watch) = &watch {
            if !this.stall.is_zero() {
                watch.arm(*this.stall);
            }
        }
        // Recorded at its end over either protocol: a download cut off after its head is no
        // 200 in the log (HTTP/1.1 too: the client closed, or the drain ended).
        let end = PacedEnd::on(&mut response);
        Poll::Ready(Ok(response.map(|body| {
            crate::http::response::Body::new(Download {
                inner: body,
                _slot: slot,
                watch,
                end,
            })
        })))
    }
}

pin_project! {
    /// A transfer's response body, keeping its slots until it ends or is dropped. Its record
    /// is written at its end (`end`), over either protocol: 200 when the last frame was asked
    /// for, 504 `STREAM_IDLE` when the watch reset it, else 499 `STREAM_CANCELLED` (the client
    /// reset it or left; 503 `DRAIN_CUT` once the server's drain ended, see
    /// [`super::observe`]). Over HTTP/2 (`watch` set, armed for the stall limit) every frame
    /// asked for is progress (see the module doc).
    pub struct Download {
        #[pin]
        inner: crate::http::response::Body,
        _slot: Option<(Ticket, Ticket)>,
        watch: Option<Arc<crate::http::watch::Watch>>,
        end: Option<PacedEnd>,
    }

    impl PinnedDrop for Download {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Some(end) = this.end.take() {
                end.unfinished(if this.watch.as_ref().is_some_and(|w| w.stalled()) {
                    Unfinished::Stalled
                } else {
                    Unfinished::ClientLeft
                });
            }
        }
    }
}

impl hyper::body::Body for Download {
    type Data = bytes::Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<bytes::Bytes>, Infallible>>> {
        let this = self.project();
        let frame = ready_poll!(this.inner.poll_frame(cx));
        match (&frame, this.watch.as_ref()) {
            // Asked for another frame: h2 took the one before (see the module doc).
            (Some(_), Some(watch)) => watch.progress(),
            (None, _) => {
                if let Some(end) = this.end.take() {
                    end.finished();
                }
            }
            (Some(_), None) => {}
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_keyed_by_signature() {
        let layer = TransferLayer::new(4);
        let key = |uri: &str| layer.url_key(&uri.parse().unwrap());
        let a = key("/_store/b/k?X-Amz-Date=1&X-Amz-Signature=abc");
        assert_eq!(a, key("/_store/b/k?X-Amz-Signature=abc&X-Amz-Date=2"));
        assert_ne!(a, key("/_store/b/k?X-Amz-Signature=abd"));
        assert_eq!(key("/_store/b/k"), key("/_store/b/k"));
    }

    #[test]
    fn slow_down_is_s3_xml_with_retry_after() {
        let response = slow_down();
        assert_eq!(response.status(), 503);
        assert_eq!(response.headers()["retry-after"], "1");
        assert_eq!(response.headers()[CONTENT_TYPE], "application/xml");
    }
}
