//! Events: what DraftStore tells other systems (webhooks, Standard Webhooks specification,
//! <https://www.standardwebhooks.com/>), pure: the event types, their ids, the reserved prefix
//! their queue lives under, the payload a signature covers, and the retry schedule. Delivery,
//! signing and the queue's IO live in the gateway.
//!
//! **Ids.** An event's id is derived from what it is about (for `object.confirmed`: the main
//! bucket, the key and the draft's version, [`crate::draft_version`]), so a confirm retried,
//! or run by another replica, writes the same event, every delivery attempt carries the same
//! `webhook-id`, and a new upload confirmed later (even of the same bytes, after a delete or
//! an overwrite) is a new event with a new id (the Standard Webhooks rule: one id per event).

use sha2::{Digest, Sha256};
use std::time::Duration;

/// Keys under this prefix of the draft bucket belong to DraftStore itself (the event queue):
/// no object name may start with it, sweep never treats them as drafts, the embedded store's
/// listing skips them, and no API reaches them.
pub const RESERVED_PREFIX: &str = ".draftstore/";

/// Where queued events live in the draft bucket: `<EVENTS_PREFIX><id>.json`.
pub const EVENTS_PREFIX: &str = ".draftstore/events/";

/// True when `key` is under [`RESERVED_PREFIX`] (or is the bare folder name).
#[must_use]
pub fn is_reserved(key: &str) -> bool {
    key.starts_with(RESERVED_PREFIX) || key == ".draftstore"
}

/// The queue key of event `id`.
#[must_use]
pub fn queue_key(id: &str) -> String {
    format!("{EVENTS_PREFIX}{id}.json")
}

/// The kinds of event DraftStore emits; the wire names are part of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    /// A draft was moved into main (by the confirm whose copy moved it).
    ObjectConfirmed,
    /// Sweep deleted expired drafts (one event per delete batch).
    DraftExpired,
    /// Sweep aborted a stale multipart upload.
    MultipartAborted,
    /// A draft was uploaded (seen on the embedded store only: S3 uploads bypass DraftStore).
    DraftUploaded,
}

impl EventType {
    /// Every type, in catalogue order.
    pub const ALL: [Self; 4] = [
        Self::ObjectConfirmed,
        Self::DraftExpired,
        Self::MultipartAborted,
        Self::DraftUploaded,
    ];

    /// The wire name: `object.confirmed`, `draft.expired`, `multipart.aborted`,
    /// `draft.uploaded`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ObjectConfirmed => "object.confirmed",
            Self::DraftExpired => "draft.expired",
            Self::MultipartAborted => "multipart.aborted",
            Self::DraftUploaded => "draft.uploaded",
        }
    }

    /// The type of a wire name, `None` for an unknown one.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == text)
    }
}

/// A stable event id, `msg_` and 32 hex digits: SHA-256 of the type and the `parts` that make
/// the event unique (each length-prefixed, so no two lists collide), cut to 128 bits.
#[must_use]
pub fn event_id(kind: EventType, parts: &[&str]) -> String {
    let mut hash = Sha256::new();
    for part in std::iter::once(kind.as_str()).chain(parts.iter().copied()) {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part.as_bytes());
    }
    let digest = hash.finalize();
    format!("msg_{}", hex::encode(digest.get(..16).unwrap_or_default()))
}

/// What a Standard Webhooks signature covers: `<id>.<timestamp>.<body>` (timestamp in Unix
/// seconds, body the exact bytes sent).
#[must_use]
pub fn signed_content(id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
    let timestamp = timestamp.to_string();
    let mut out = Vec::with_capacity(id.len() + timestamp.len() + body.len() + 2);
    out.extend_from_slice(id.as_bytes());
    out.push(b'.');
    out.extend_from_slice(timestamp.as_bytes());
    out.push(b'.');
    out.extend_from_slice(body);
    out
}

/// The Standard Webhooks retry schedule: the wait before each attempt after the first
/// (immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h): eight attempts over about 27 h.
pub const DEFAULT_SCHEDULE: [Duration; 8] = [
    Duration::ZERO,
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
];

/// The longest wait a receiver's `Retry-After` may impose.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// The wait before attempt `attempts + 1` after `attempts` failed ones, from `schedule` (entry
/// `attempts`), spread by ±20 % with `jitter` (a uniform draw in `0.0..1.0`), and at least
/// the receiver's `Retry-After` (at most [`MAX_RETRY_AFTER`]). `None` when the schedule is
/// used up: the event is then kept as failed, for `gateway events replay`.
#[must_use]
pub fn next_delay(
    schedule: &[Duration],
    attempts: u32,
    jitter: f64,
    retry_after: Option<Duration>,
) -> Option<Duration> {
    let base = *schedule.get(usize::try_from(attempts).ok()?)?;
    let factor = 0.8 + 0.4 * jitter.clamp(0.0, 1.0);
    let spread = base.mul_f64(factor);
    Some(retry_after.map_or(spread, |r| spread.max(r.min(MAX_RETRY_AFTER))))
}

/// What one delivery attempt's HTTP status means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// 2xx: delivered, the event leaves the queue for this endpoint.
    Delivered,
    /// 410 Gone: the receiver asks never to be called again; the endpoint is disabled.
    Disable,
    /// Anything else (and no answer at all): try again on the schedule.
    Retry,
}

/// The [`Verdict`] of an HTTP status.
#[must_use]
pub const fn verdict(status: u16) -> Verdict {
    match status {
        200..=299 => Verdict::Delivered,
        410 => Verdict::Disable,
        _ => Verdict::Retry,
    }
}

/// Bytes of a checker's reason kept in an error message.
pub const REASON_BUDGET: usize = 256;

/// A reason from outside (a pre-confirm checker's answer) made safe to show and log: trimmed,
/// cut to [`REASON_BUDGET`] bytes on a character boundary (`…` marks a cut), control,
/// line-separator and bidi characters replaced by `?`.
#[must_use]
pub fn sanitize_reason(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(REASON_BUDGET + 3));
    for c in text.trim().chars() {
        let c = if c.is_control()
            || matches!(
                c,
                '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
            ) {
            '?'
        } else {
            c
        };
        if out.len() + c.len_utf8() > REASON_BUDGET {
            out.push('…');
            break;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_distinct() {
        let a = event_id(EventType::ObjectConfirmed, &["main", "a/b", "etag1"]);
        assert_eq!(
            a,
            event_id(EventType::ObjectConfirmed, &["main", "a/b", "etag1"])
        );
        assert!(a.starts_with("msg_") && a.len() == 36, "{a}");
        assert_ne!(
            a,
            event_id(EventType::ObjectConfirmed, &["main", "a/b", "etag2"])
        );
        assert_ne!(
            a,
            event_id(EventType::DraftUploaded, &["main", "a/b", "etag1"])
        );
        assert_ne!(
            event_id(EventType::ObjectConfirmed, &["ab", "c"]),
            event_id(EventType::ObjectConfirmed, &["a", "bc"]),
            "parts are length-prefixed"
        );
    }

    #[test]
    fn reserved_keys() {
        assert!(is_reserved(".draftstore/events/x.json"));
        assert!(is_reserved(".draftstore"));
        assert!(!is_reserved("acme/.draftstore/x"));
        assert!(!is_reserved(".draftstorex"));
        assert_eq!(queue_key("msg_1"), ".draftstore/events/msg_1.json");
    }

    #[test]
    fn types_round_trip() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
        }
        assert_eq!(EventType::parse("object.deleted"), None);
    }

    #[test]
    fn signed_content_is_id_dot_timestamp_dot_body() {
        assert_eq!(
            signed_content("msg_1", 1_614_265_330, b"{}"),
            b"msg_1.1614265330.{}"
        );
    }

    #[test]
    fn schedule_with_jitter_and_retry_after() {
        let s = DEFAULT_SCHEDULE;
        assert_eq!(next_delay(&s, 0, 0.5, None), Some(Duration::ZERO));
        assert_eq!(next_delay(&s, 1, 0.5, None), Some(Duration::from_secs(5)));
        assert_eq!(next_delay(&s, 1, 0.0, None), Some(Duration::from_secs(4)));
        assert_eq!(next_delay(&s, 1, 1.0, None), Some(Duration::from_secs(6)));
        assert_eq!(
            next_delay(&s, 1, 0.5, Some(Duration::from_secs(60))),
            Some(Duration::from_secs(60)),
            "Retry-After longer than the schedule wins"
        );
        assert_eq!(
            next_delay(&s, 1, 0.5, Some(Duration::from_secs(1 << 40))),
            Some(MAX_RETRY_AFTER)
        );
        assert_eq!(
            next_delay(&s, 8, 0.5, None),
            None,
            "eight attempts, then failed"
        );
        assert_eq!(next_delay(&[], 0, 0.5, None), None);
    }

    #[test]
    fn verdicts() {
        assert_eq!(verdict(200), Verdict::Delivered);
        assert_eq!(verdict(204), Verdict::Delivered);
        assert_eq!(verdict(410), Verdict::Disable);
        for s in [301, 400, 404, 429, 500, 503] {
            assert_eq!(verdict(s), Verdict::Retry, "{s}");
        }
    }

    #[test]
    fn reasons_are_cut_and_sanitised() {
        assert_eq!(sanitize_reason("  virus\nfound\u{202E}x "), "virus?found?x");
        let long = "é".repeat(300);
        let cut = sanitize_reason(&long);
        assert!(cut.len() <= REASON_BUDGET + '…'.len_utf8());
        assert!(cut.ends_with('…'));
    }
}
