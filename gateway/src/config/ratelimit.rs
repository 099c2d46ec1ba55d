//! The shared rate limiter's settings: `DRAFTSTORE_RATE_LIMIT_REDIS_URL` turns it on; the others
//! tune it. Without the URL each process counts its tenants' rates alone.

use super::{err, number, ConfigError, Lookup};
use crate::auth::ratelimit::{OnError, RedisConfig};
use std::time::Duration;

/// Default Redis key prefix: `<prefix><tenant>` holds a tenant's bucket.
pub const DEFAULT_KEY_PREFIX: &str = "draftstore:ratelimit:";

/// `Some` when `DRAFTSTORE_RATE_LIMIT_REDIS_URL` is set.
///
/// # Errors
/// A URL that is not `redis://` or `rediss://` (never echoed: it may hold a password), a timeout
/// outside 1..=5000 ms, an `ON_ERROR` other than `allow`/`reject`, a prefix of more than 128
/// bytes or with spaces or control characters.
pub fn redis(get: Lookup<'_>) -> Result<Option<RedisConfig>, ConfigError> {
    let var = |k: &str| get(k).filter(|v| !v.trim().is_empty());
    let timeout = Duration::from_millis(number(
        get,
        "DRAFTSTORE_RATE_LIMIT_TIMEOUT_MS",
        20,
        1..=5000,
    )?);
    let on_error = match var("DRAFTSTORE_RATE_LIMIT_ON_ERROR")
        .as_deref()
        .map(str::trim)
    {
        None | Some("allow") => OnError::Allow,
        Some("reject") => OnError::Reject,
        Some(_) => {
            return Err(err(
                "DRAFTSTORE_RATE_LIMIT_ON_ERROR must be allow or reject",
            ))
        }
    };
    let key_prefix =
        get("DRAFTSTORE_RATE_LIMIT_KEY_PREFIX").unwrap_or_else(|| DEFAULT_KEY_PREFIX.to_owned());
    if key_prefix.len() > 128 || !key_prefix.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(err(
            "DRAFTSTORE_RATE_LIMIT_KEY_PREFIX must be at most 128 printable ASCII characters without spaces",
        ));
    }
    let Some(url) = var("DRAFTSTORE_RATE_LIMIT_REDIS_URL") else {
        return Ok(None);
    };
    let url = url.trim().to_owned();
    crate::auth::ratelimit::check_url(&url).map_err(err)?;
    Ok(Some(RedisConfig {
        url,
        timeout,
        on_error,
        key_prefix,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<Option<RedisConfig>, ConfigError> {
        redis(&|k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn off_without_a_url_and_defaults_with_one() {
        assert_eq!(parse(&[]).unwrap(), None);
        let c = parse(&[(
            "DRAFTSTORE_RATE_LIMIT_REDIS_URL",
            "redis://:hunter2@127.0.0.1:6379/2",
        )])
        .unwrap()
        .unwrap();
        assert_eq!(
            (c.timeout, c.on_error, c.key_prefix.as_str()),
            (
                Duration::from_millis(20),
                OnError::Allow,
                DEFAULT_KEY_PREFIX
            )
        );
        assert!(!format!("{c:?}").contains("hunter2"));
        let c = parse(&[
            (
                "DRAFTSTORE_RATE_LIMIT_REDIS_URL",
                "rediss://redis.example:6380",
            ),
            ("DRAFTSTORE_RATE_LIMIT_TIMEOUT_MS", "50"),
            ("DRAFTSTORE_RATE_LIMIT_ON_ERROR", "reject"),
            ("DRAFTSTORE_RATE_LIMIT_KEY_PREFIX", "staging:rl:"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(
            (c.timeout, c.on_error, c.key_prefix.as_str()),
            (Duration::from_millis(50), OnError::Reject, "staging:rl:")
        );
    }

    #[test]
    fn bad_values_name_the_variable_and_never_echo_the_url() {
        for (name, value) in [
            (
                "DRAFTSTORE_RATE_LIMIT_REDIS_URL",
                "http://:hunter2@127.0.0.1",
            ),
            ("DRAFTSTORE_RATE_LIMIT_REDIS_URL", "redis://:hunter2@[::1"),
            (
                "DRAFTSTORE_RATE_LIMIT_REDIS_URL",
                "unix:///tmp/hunter2.sock",
            ),
            ("DRAFTSTORE_RATE_LIMIT_TIMEOUT_MS", "0"),
            ("DRAFTSTORE_RATE_LIMIT_TIMEOUT_MS", "20ms"),
            ("DRAFTSTORE_RATE_LIMIT_ON_ERROR", "ignore"),
            ("DRAFTSTORE_RATE_LIMIT_KEY_PREFIX", "has space"),
        ] {
            let mut pairs = vec![(name, value)];
            if name != "DRAFTSTORE_RATE_LIMIT_REDIS_URL" {
                pairs.push(("DRAFTSTORE_RATE_LIMIT_REDIS_URL", "redis://127.0.0.1"));
            }
            let e = parse(&pairs).unwrap_err().to_string();
            assert!(e.contains(name), "{name}={value}: {e}");
            assert!(!e.contains("hunter2"), "{e}");
            assert_eq!(e.lines().count(), 1);
        }
    }
}
