//! Reading a request body whole, with a size limit checked as it arrives.

use crate::api::error::{ApiError, Code};
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use std::future::Future;
use std::time::Duration;

/// The whole body, or `None` once it passes `max` bytes. `check` sees the bytes received so
/// far after each frame, before the limit is applied, and may refuse them early. A body that came in one frame (the usual
/// small request) is kept as it is, without copying.
///
/// # Errors
/// `BODY_UNREADABLE` when the connection fails; what `check` returns.
pub async fn read_limited(
    mut body: Incoming,
    max: usize,
    mut check: impl FnMut(&[u8]) -> Result<(), ApiError>,
) -> Result<Option<Bytes>, ApiError> {
    let mut first: Option<Bytes> = None;
    let mut joined: Option<BytesMut> = None;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| {
            ApiError::new(Code::BodyUnreadable, "the request body could not be read")
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let so_far: &[u8] = match (&mut joined, first.take()) {
            (None, None) => first.insert(data),
            (None, Some(earlier)) => {
                let mut buf = BytesMut::with_capacity(earlier.len() + data.len());
                buf.extend_from_slice(&earlier);
                buf.extend_from_slice(&data);
                joined.insert(buf)
            }
            (Some(buf), _) => {
                buf.extend_from_slice(&data);
                buf
            }
        };
        check(so_far)?;
        if so_far.len() > max {
            return Ok(None);
        }
    }
    Ok(Some(
        joined.map(BytesMut::freeze).or(first).unwrap_or_default(),
    ))
}

/// `reading` (a body read), cut off after `limit` of waiting: a body trickling in must not
/// keep its request (and the place it holds) for the whole request timeout. Arms no timer when
/// the body is already there.
///
/// # Errors
/// `BODY_TIMEOUT` (408, gRPC `DEADLINE_EXCEEDED`) after `limit`; what `reading` returns.
pub async fn within_body_timeout<T>(
    limit: Duration,
    reading: impl Future<Output = Result<T, ApiError>>,
) -> Result<T, ApiError> {
    crate::http::deadline::within(limit, reading)
        .await
        .map_err(|_| {
            ApiError::new(
                Code::BodyTimeout,
                format!(
                    "the request body did not arrive within {} ms",
                    limit.as_millis()
                ),
            )
        })?
}
