//! What the shared limiter says while Redis makes no decision (down, slow, or refusing the
//! script): one WARN at most once a minute
//! (however often Redis falls and comes back: the throttle holds across recoveries), the
//! recovery once at INFO after each WARN, and what each failure was, in words an operator can
//! act on (refused credentials, no answer within the bound, a failed TLS handshake), never with
//! the URL or its password.

use super::redis::KEY_ERROR;
use super::OnError;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Failures are logged at most this often.
pub(super) const LOG_EVERY: Duration = Duration::from_secs(60);

/// The log throttle of one limiter.
#[derive(Debug, Default)]
pub(super) struct Outage(Mutex<State>);

#[derive(Debug, Default)]
struct State {
    /// When the last WARN was written (`None`: never).
    warned_at: Option<Instant>,
    /// Failures since that WARN.
    unlogged: u64,
    /// A WARN was written and its recovery not yet.
    recovery_due: bool,
    /// When the last WARN about a Redis too slow to recover was written (`None`: never).
    slow_warned_at: Option<Instant>,
}

impl Outage {
    /// Records a failure; writes a WARN when none was written in the last [`LOG_EVERY`].
    pub(super) fn failed(&self, why: &str, on_error: OnError) {
        let mut state = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        state.unlogged += 1;
        if state.warned_at.is_some_and(|at| at.elapsed() < LOG_EVERY) {
            return;
        }
        let fallback = fallback(on_error);
        tracing::warn!(
            failures = state.unlogged,
            error = why,
            "rate limits: Redis makes no decision; {fallback} until it does (logged at most once a minute)"
        );
        state.warned_at = Some(Instant::now());
        state.unlogged = 0;
        state.recovery_due = true;
    }

    /// Records that a probe, while Redis was failing, was answered but slower than a decision's
    /// bound: still no recovery. One WARN at most every [`LOG_EVERY`], saying how slow.
    pub(super) fn slow(&self, why: &str, on_error: OnError) {
        let mut state = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if state
            .slow_warned_at
            .is_some_and(|at| at.elapsed() < LOG_EVERY)
        {
            return;
        }
        tracing::warn!(
            error = why,
            "rate limits: Redis answers, but slower than a decision may wait: {}; still degraded until it answers within the bound (logged at most once a minute)",
            fallback(on_error)
        );
        state.slow_warned_at = Some(Instant::now());
        state.recovery_due = true;
    }

    /// Records that Redis decides again (a script ran, not merely an answer); writes one INFO
    /// when a WARN said it did not.
    pub(super) fn recovered(&self) {
        let mut state = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if std::mem::take(&mut state.recovery_due) {
            tracing::info!("rate limits: Redis decides again; counting is shared again");
        }
    }
}

/// What requests get while Redis makes no decision.
fn fallback(on_error: OnError) -> &'static str {
    match on_error {
        OnError::Allow => "each replica counts alone",
        OnError::Reject => "URLs are refused",
    }
}

/// A probe answered in `took`, over `bound` (`DRAFTSTORE_RATE_LIMIT_TIMEOUT_MS`): `took` in
/// ms to the µs, since whole ms truncated "20.4 ms" to "answered in 20 ms, over the 20 ms bound".
pub(super) fn slow(took: Duration, bound: Duration) -> String {
    format!(
        "answered in {}.{:03} ms, over the {} ms bound (DRAFTSTORE_RATE_LIMIT_TIMEOUT_MS)",
        took.as_millis(),
        took.as_micros() % 1000,
        bound.as_millis()
    )
}

/// Redis's own text of an error after its code (`NOPERM this user has no permissions to access
/// one of the keys used as arguments`), at most [`DETAIL_CHARS`] characters, control characters
/// as spaces: it names what was refused (no password: an `AUTH` refusal is described before
/// this is asked), so an ACL refusal or a script error is recognisable in the WARN.
fn detail(e: &redis::RedisError) -> String {
    e.detail()
        .unwrap_or_default()
        .chars()
        .take(DETAIL_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_owned()
}

/// The most characters of Redis's error text a WARN carries.
const DETAIL_CHARS: usize = 200;

/// How the connection stands when a failure is described.
#[derive(Debug, Clone, Copy)]
pub(super) struct Link {
    /// The bound the failure is measured against.
    pub(super) timeout: Duration,
    /// The URL is `rediss://`.
    pub(super) tls: bool,
    /// Redis has never answered this process (a failure may be the connection's set-up).
    pub(super) never_answered: bool,
}

/// What went wrong, in words: never the URL (it may hold a password).
pub(super) fn describe(e: &redis::RedisError, link: Link) -> String {
    use redis::ErrorKind;
    let code = e.code().unwrap_or_default();
    if e.kind() == ErrorKind::AuthenticationFailed || matches!(code, "WRONGPASS" | "NOAUTH") {
        return format!(
            "Redis refused the credentials of DRAFTSTORE_RATE_LIMIT_REDIS_URL ({}): check its user and password",
            if code.is_empty() { "AUTH failed" } else { code }
        );
    }
    if e.is_timeout() {
        return timed_out(link);
    }
    if e.is_connection_refusal() {
        return "connection refused: nothing listens at the host and port of DRAFTSTORE_RATE_LIMIT_REDIS_URL".to_owned();
    }
    if e.kind() == ErrorKind::Io {
        // An I/O error's text is the socket's or the TLS library's, never the URL's.
        return if link.tls && link.never_answered {
            format!("TLS handshake failed (rediss://; does that port speak TLS?): {e}")
        } else if e.is_connection_dropped() {
            format!("connection lost: {e}")
        } else {
            format!("connection failed: {e}")
        };
    }
    // A server's error code (`ERR`, `NOSCRIPT`, `NOPERM`…) with Redis's own text (bounded; the
    // script's arguments are numbers and ids, never a secret), or the library's category.
    match (e.code(), detail(e)) {
        (Some(code), text) if text.is_empty() => {
            format!("Redis answered an error: {code} ({})", e.category())
        }
        (Some(code), text) => format!("Redis answered an error: {code} {text}"),
        (None, text) if text.is_empty() => format!("Redis failed: {}", e.category()),
        (None, text) => format!("Redis failed: {} ({text})", e.category()),
    }
}

/// The message of a decision or probe with no answer within the bound. Over TLS to a server
/// that never answered, a plaintext port waits for a command that a TLS greeting never ends:
/// the handshake is what did not complete.
pub(super) fn timed_out(link: Link) -> String {
    let ms = link.timeout.as_millis();
    if link.tls && link.never_answered {
        format!("TLS handshake failed: no TLS answer within {ms} ms (rediss://; does that port speak TLS?)")
    } else {
        format!("timed out: no answer within {ms} ms")
    }
}

/// One WARN at most every [`LOG_EVERY`] for one kind of event that is not an outage (a damaged
/// key repaired, one tenant's decision failing), with how many came since the last line.
#[derive(Debug, Default)]
pub(super) struct Throttle(Mutex<(Option<Instant>, u64)>);

impl Throttle {
    /// Counts one event: `Some(events since the last line, this one included)` when a line is
    /// due, `None` while the last is younger than [`LOG_EVERY`].
    pub(super) fn due(&self) -> Option<u64> {
        let mut state = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        state.1 += 1;
        if state.0.is_some_and(|at| at.elapsed() < LOG_EVERY) {
            return None;
        }
        let events = state.1;
        *state = (Some(Instant::now()), 0);
        Some(events)
    }
}

/// Whether `e` is one key's failure rather than the link's: `WRONGTYPE` (a key of another type
/// than a script expects, Redis's own code), or [`KEY_ERROR`] (a runtime error in the decision
/// script's step, coded by the script itself: Redis's wording of a script error is not read,
/// it differs between versions). Such an error is that tenant's decision failing, not Redis
/// failing for every tenant.
pub(super) fn per_key(e: &redis::RedisError) -> bool {
    matches!(e.code(), Some(code) if code == "WRONGTYPE" || code == KEY_ERROR)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_keys_errors_are_told_from_the_links() {
        // What the server answers, parsed as the connection parses it.
        let answered = |resp: &str| {
            redis::parse_redis_value(resp.as_bytes())
                .unwrap()
                .extract_error()
                .unwrap_err()
        };
        let wrongtype = answered(
            "-WRONGTYPE Operation against a key holding the wrong kind of value script: 1f0e, on @user_script:17.\r\n",
        );
        assert!(per_key(&wrongtype), "{wrongtype:?}");
        let runtime = answered(&format!(
            "-{KEY_ERROR} user_script:32: attempt to perform arithmetic on upvalue 'limit' (a nil value)\r\n"
        ));
        assert!(per_key(&runtime), "{runtime:?}");
        // A script error the script did not code is not told by Redis's wording (7's
        // `user_script`): it is Redis's.
        let untold =
            answered("-ERR user_script:12: attempt to compare nil with number script: 1f0e\r\n");
        assert!(!per_key(&untold), "{untold:?}");
        let oom = answered("-OOM command not allowed when used memory > 'maxmemory'.\r\n");
        assert!(!per_key(&oom), "a full Redis fails every tenant");
        let err = answered("-ERR max number of clients reached\r\n");
        assert!(!per_key(&err), "{err:?}");
        let io = redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut));
        assert!(!per_key(&io));
    }

    #[test]
    fn a_servers_error_is_described_with_its_own_text() {
        let answered = |resp: &str| {
            redis::parse_redis_value(resp.as_bytes())
                .unwrap()
                .extract_error()
                .unwrap_err()
        };
        let link = Link {
            timeout: Duration::from_millis(20),
            tls: false,
            never_answered: false,
        };
        let noperm = answered(
            "-NOPERM this user has no permissions to access one of the keys used as arguments\r\n",
        );
        let told = describe(&noperm, link);
        assert!(
            told.contains("NOPERM this user has no permissions to access one of the keys"),
            "{told}"
        );
        let runtime =
            answered("-ERR user_script:12: attempt to compare nil with number script: 1f0e\r\n");
        let told = describe(&runtime, link);
        assert!(
            told.contains("ERR user_script:12: attempt to compare nil"),
            "{told}"
        );
        let long = answered(&format!("-ERR {}\r\n", "x".repeat(5000)));
        assert!(describe(&long, link).len() < 400, "bounded");
    }

    #[test]
    fn a_slow_answer_is_told_to_the_microsecond() {
        let told = slow(Duration::from_micros(20_412), Duration::from_millis(20));
        assert!(
            told.starts_with("answered in 20.412 ms, over the 20 ms bound"),
            "{told}"
        );
    }

    #[test]
    fn a_throttle_writes_once_a_minute_with_the_count() {
        let throttle = Throttle::default();
        assert_eq!(throttle.due(), Some(1));
        assert_eq!(throttle.due(), None);
        assert_eq!(throttle.due(), None);
        let at = Instant::now()
            .checked_sub(LOG_EVERY)
            .unwrap_or_else(Instant::now);
        throttle.0.lock().unwrap().0 = Some(at);
        assert_eq!(throttle.due(), Some(3), "the two held back and this one");
    }
}
