//! The shared rate limiter's settings: `DRAFTSTORE_RATE_LIMIT_REDIS_URL` turns it on; the others
//! tune it. Without the URL each process counts its tenants' rates alone.

use super::{err, name, number_if_set, ConfigError, Lookup};
use crate::auth::ratelimit::{OnError, RedisConfig, MAX_REPLICAS};
use std::time::Duration;

/// Default Redis key prefix: `<prefix><tenant>` holds a tenant's bucket.
pub const DEFAULT_KEY_PREFIX: &str = "draftstore:ratelimit:";

/// The variables that tune the shared limiter: meaningless without its URL.
const TUNING: [&str; 4] = [
    name::DRAFTSTORE_RATE_LIMIT_TIMEOUT_MS,
    name::DRAFTSTORE_RATE_LIMIT_ON_ERROR,
    name::DRAFTSTORE_RATE_LIMIT_KEY_PREFIX,
    name::DRAFTSTORE_RATE_LIMIT_REPLICAS,
];

/// `Some` when `DRAFTSTORE_RATE_LIMIT_REDIS_URL` is set.
///
/// A variable that is set but empty (a Secret or ConfigMap key that resolves to nothing) is
/// refused rather than read as unset: an empty URL would silently mean each process counts
/// alone, an empty `ON_ERROR` would silently mean `allow`, an empty prefix would share keys, an
/// empty timeout or replica count would silently mean the default.
///
/// # Errors
/// A URL that is empty or not `redis://` or `rediss://` (never echoed: it may hold a password),
/// a timeout that is empty or outside 1..=5000 ms, an `ON_ERROR` other than `allow`/`reject`, a
/// prefix that is empty, longer than 128 bytes, holds spaces or control characters, or does not
/// end in `:`; a replica count that is empty or not a whole number in 1..=[`MAX_REPLICAS`];
/// any of these set without the URL (a missing Secret key would silently mean in-process
/// limits).
pub fn redis(get: Lookup<'_>) -> Result<Option<RedisConfig>, ConfigError> {
    // The missing URL first: it is what makes the others meaningless, whatever their values
    // (`ON_ERROR=Reject` without a URL is told the URL is missing, not how to spell reject).
    let Some(url) = get(name::DRAFTSTORE_RATE_LIMIT_REDIS_URL) else {
        // Tuning without a URL: most likely the URL's Secret key is missing, and each process
        // would count alone while the deployment means to share.
        if let Some(set) = TUNING.iter().find(|name| get(name).is_some()) {
            return Err(err(format!(
                "{set} is set but {} is not: without it each process counts tenant rates alone; set the URL (its Secret) or unset the DRAFTSTORE_RATE_LIMIT_* variables",
                name::DRAFTSTORE_RATE_LIMIT_REDIS_URL
            )));
        }
        return Ok(None);
    };
    let timeout = Duration::from_millis(number_if_set(
        get,
        name::DRAFTSTORE_RATE_LIMIT_TIMEOUT_MS,
        20,
        1..=5000,
    )?);
    let on_error = match get(name::DRAFTSTORE_RATE_LIMIT_ON_ERROR)
        .as_deref()
        .map(str::trim)
    {
        None | Some("allow") => OnError::Allow,
        Some("reject") => OnError::Reject,
        Some(_) => {
            return Err(err(format!(
                "{} must be allow or reject (it is set but is neither)",
                name::DRAFTSTORE_RATE_LIMIT_ON_ERROR
            )))
        }
    };
    let replicas = replicas(get)?;
    let key_prefix = get(name::DRAFTSTORE_RATE_LIMIT_KEY_PREFIX)
        .unwrap_or_else(|| DEFAULT_KEY_PREFIX.to_owned());
    check_prefix(&key_prefix)?;
    let url = url.trim().to_owned();
    if url.is_empty() {
        return Err(err(format!(
            "{} is set but empty: give redis://[user:password@]host[:port][/db] (or rediss://), or unset it to count each process's rates alone",
            name::DRAFTSTORE_RATE_LIMIT_REDIS_URL
        )));
    }
    crate::auth::ratelimit::check_url(&url).map_err(err)?;
    Ok(Some(RedisConfig {
        url,
        timeout,
        on_error,
        key_prefix,
        replicas,
    }))
}

/// `DRAFTSTORE_RATE_LIMIT_REPLICAS`: the fewest replicas a replica counting alone shares a
/// tenant's rate with, whatever it counted in Redis (1 when unset). Set but empty is refused,
/// like the other settings: an empty value would silently mean 1, the full rate for a replica
/// started during an outage.
fn replicas(get: Lookup<'_>) -> Result<u32, ConfigError> {
    let replicas = number_if_set(
        get,
        name::DRAFTSTORE_RATE_LIMIT_REPLICAS,
        1,
        1..=u64::from(MAX_REPLICAS),
    )
    .map_err(|e| {
        err(format!(
            "{e}: the replicas to assume until this one has counted them in Redis (the autoscaler's maxReplicas)"
        ))
    })?;
    // Within 1..=MAX_REPLICAS, so a u32.
    Ok(u32::try_from(replicas).unwrap_or(MAX_REPLICAS))
}

/// A prefix ends in `:`, which tenant names (`a-z`, `0-9`, `-`) never hold: so `<prefix><tenant>`
/// names one tenant of one prefix only (`ab` + `-c` and `ab-` + `c` would both be `ab-c`).
fn check_prefix(prefix: &str) -> Result<(), ConfigError> {
    if prefix.is_empty()
        || prefix.len() > 128
        || !prefix.bytes().all(|b| b.is_ascii_graphic())
        || !prefix.ends_with(':')
    {
        return Err(err(format!(
            "{} must be 1..=128 printable ASCII characters without spaces, ending in ':' (as draftstore:ratelimit:), so no two prefixes' keys can meet",
            name::DRAFTSTORE_RATE_LIMIT_KEY_PREFIX
        )));
    }
    Ok(())
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
            (c.timeout, c.on_error, c.key_prefix.as_str(), c.replicas),
            (
                Duration::from_millis(20),
                OnError::Allow,
                DEFAULT_KEY_PREFIX,
                1
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
            ("DRAFTSTORE_RATE_LIMIT_REPLICAS", "12"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(
            (c.timeout, c.on_error, c.key_prefix.as_str(), c.replicas),
            (
                Duration::from_millis(50),
                OnError::Reject,
                "staging:rl:",
                12
            )
        );
    }

    #[test]
    fn tuning_without_a_url_is_refused_not_ignored() {
        for name in TUNING {
            let value = if name.ends_with("ON_ERROR") {
                "reject"
            } else if name.ends_with("PREFIX") {
                "staging:rl:"
            } else if name.ends_with("REPLICAS") {
                "12"
            } else {
                "50"
            };
            let e = parse(&[(name, value)]).unwrap_err().to_string();
            assert!(
                e.contains(name) && e.contains("DRAFTSTORE_RATE_LIMIT_REDIS_URL is not"),
                "{e}"
            );
        }
        // A bad value too: the missing URL is what to fix first.
        for (name, value) in [
            ("DRAFTSTORE_RATE_LIMIT_ON_ERROR", "Reject"),
            ("DRAFTSTORE_RATE_LIMIT_TIMEOUT_MS", "0"),
            ("DRAFTSTORE_RATE_LIMIT_KEY_PREFIX", "ab"),
        ] {
            let e = parse(&[(name, value)]).unwrap_err().to_string();
            assert!(
                e.contains("DRAFTSTORE_RATE_LIMIT_REDIS_URL is not"),
                "{name}={value}: {e}"
            );
        }
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
            ("DRAFTSTORE_RATE_LIMIT_TIMEOUT_MS", ""),
            ("DRAFTSTORE_RATE_LIMIT_ON_ERROR", "ignore"),
            ("DRAFTSTORE_RATE_LIMIT_KEY_PREFIX", "has space"),
            ("DRAFTSTORE_RATE_LIMIT_KEY_PREFIX", ""),
            ("DRAFTSTORE_RATE_LIMIT_KEY_PREFIX", "ab"),
            ("DRAFTSTORE_RATE_LIMIT_KEY_PREFIX", "draftstore:ratelimit"),
            ("DRAFTSTORE_RATE_LIMIT_REDIS_URL", ""),
            ("DRAFTSTORE_RATE_LIMIT_REDIS_URL", "  "),
            ("DRAFTSTORE_RATE_LIMIT_ON_ERROR", ""),
            ("DRAFTSTORE_RATE_LIMIT_REPLICAS", "0"),
            ("DRAFTSTORE_RATE_LIMIT_REPLICAS", "-3"),
            ("DRAFTSTORE_RATE_LIMIT_REPLICAS", "three"),
            ("DRAFTSTORE_RATE_LIMIT_REPLICAS", "1001"),
            ("DRAFTSTORE_RATE_LIMIT_REPLICAS", "99999999999999999999"),
            ("DRAFTSTORE_RATE_LIMIT_REPLICAS", ""),
        ] {
            let mut pairs = vec![(name, value)];
            if name != "DRAFTSTORE_RATE_LIMIT_REDIS_URL" {
                pairs.push(("DRAFTSTORE_RATE_LIMIT_REDIS_URL", "redis://127.0.0.1"));
            }
            let e = parse(&pairs)
                .expect_err(&format!("{name}={value:?} is refused"))
                .to_string();
            assert!(e.contains(name), "{name}={value}: {e}");
            assert!(!e.contains("hunter2"), "{e}");
            assert_eq!(e.lines().count(), 1);
        }
    }

    /// README's table: a rate-limit variable set but empty (or blank) stops the start, each
    /// one of them; `DRAFTSTORE_RATE_LIMIT_TIMEOUT_MS=""` was read as the default 20 ms.
    #[test]
    fn every_variable_set_but_empty_is_refused() {
        for name in TUNING
            .into_iter()
            .chain([name::DRAFTSTORE_RATE_LIMIT_REDIS_URL])
        {
            for empty in ["", "  "] {
                let mut pairs = vec![(name, empty)];
                if name != name::DRAFTSTORE_RATE_LIMIT_REDIS_URL {
                    pairs.push((name::DRAFTSTORE_RATE_LIMIT_REDIS_URL, "redis://127.0.0.1"));
                }
                let e = parse(&pairs)
                    .expect_err(&format!("{name}={empty:?} is refused"))
                    .to_string();
                assert!(e.starts_with(name), "{name}={empty:?}: {e}");
            }
        }
        let e = parse(&[
            (name::DRAFTSTORE_RATE_LIMIT_REDIS_URL, "redis://127.0.0.1"),
            (name::DRAFTSTORE_RATE_LIMIT_TIMEOUT_MS, ""),
        ])
        .unwrap_err()
        .to_string();
        assert!(e.contains("is set but empty"), "{e}");
    }

    /// Every tenant key is `<prefix><tenant>`; with prefixes ending in `:` (which tenant names
    /// never hold) two different (prefix, tenant) pairs never make one key.
    #[test]
    fn keys_of_different_prefixes_never_meet() {
        use crate::auth::Tenant;
        let prefixes = ["a:", "ab:", "a:b:", "ab-:", "draftstore:ratelimit:"];
        let tenants = ["b", "-c", "c", "b-c", "ab", "-"];
        let mut seen = std::collections::HashMap::new();
        for prefix in prefixes {
            assert!(check_prefix(prefix).is_ok(), "{prefix}");
            for tenant in tenants {
                let tenant = Tenant::parse(tenant).unwrap();
                let key = format!("{prefix}{}", tenant.as_str());
                if let Some(other) = seen.insert(key.clone(), (prefix, tenant.as_str().to_owned()))
                {
                    panic!(
                        "{key} is both {other:?} and ({prefix}, {})",
                        tenant.as_str()
                    );
                }
            }
        }
        // The collision the rule prevents: `ab` + `-c` and `ab-` + `c`.
        assert!(check_prefix("ab").is_err() && check_prefix("ab-").is_err());
    }
}
