//! `DRAFTSTORE_RATE_LIMIT_REDIS_URL`: checked (at config time, without connecting) and opened
//! as a client, with messages that never hold the URL (it may hold a password).

/// A client for `url`, which must be `redis://` or `rediss://`.
pub(super) fn client(url: &str) -> Result<redis::Client, String> {
    let bad = || {
        "DRAFTSTORE_RATE_LIMIT_REDIS_URL must be redis://[user:password@]host[:port][/db] or rediss://… (TLS)".to_owned()
    };
    if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
        return Err(bad());
    }
    redis::Client::open(url).map_err(|_| bad())
}

/// Checks `url` without connecting.
///
/// # Errors
/// The URL is not `redis://` or `rediss://` (the message never holds it).
pub fn check_url(url: &str) -> Result<(), String> {
    client(url).map(|_| ())
}
