//! API key lines: `<tenant> <sha256 hex of the key> [max_size=N] [types=a,b] [rate=N/SECS]`.
//!
//! The limits belong to the tenant, not the key: every key of a tenant shares one [`Policy`]
//! (one rate bucket), so rotating or adding keys never multiplies a tenant's rate. Each line of
//! a tenant must therefore repeat the same limits; lines that disagree are refused at load,
//! naming both entries, rather than silently picking one.

use super::ratelimit::{Rate, RateSpec, RedisLimiter};
use super::tenant::{Policy, Tenant};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// The longest `rate=N/SECS` period accepted, in seconds: a year. Longer periods are refused at
/// load: they buy nothing, and they overflowed Redis's key expiry, which sent every decision of
/// that tenant to the fallback.
pub const MAX_RATE_PERIOD_SECS: u64 = 366 * 24 * 60 * 60;

/// Key digests with their tenants.
pub(super) type Keys = Vec<([u8; 32], Tenant)>;

/// Parses key lines: `<tenant> <sha256 hex of the key>`, `#` comments, blank lines; entries
/// may also be separated by `;` (one environment variable). Rates are counted in this process.
///
/// # Errors
/// A message naming the first bad line (never echoing a hash).
pub fn parse_keys(text: &str) -> Result<Keys, String> {
    parse_keys_with(text, None)
}

/// [`parse_keys`], with rates counted through `shared` when given.
///
/// # Errors
/// A message naming the first bad line (never echoing a hash), or two lines of one tenant
/// giving different limits.
pub fn parse_keys_with(text: &str, shared: Option<&Arc<RedisLimiter>>) -> Result<Keys, String> {
    let mut keys = Vec::new();
    // Each tenant's one policy, with the entry that gave it.
    let mut policies: HashMap<String, (usize, Arc<Policy>)> = HashMap::new();
    for (n, line) in text.split(['\n', ';']).enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut parts = line.split_whitespace();
        let (Some(tenant), Some(hash)) = (parts.next(), parts.next()) else {
            return Err(format!("key entry {} must be '<tenant> <sha256 hex> [max_size=N] [types=a,b] [rate=N/SECS]'", n + 1));
        };
        // Not `Tenant::parse`'s message: a swapped line would echo the hash (or a raw key).
        let tenant = Tenant::parse(tenant).map_err(|_| {
            format!(
                "key entry {}: the tenant (first field) must be 1..=63 of a-z, 0-9 and '-'",
                n + 1
            )
        })?;
        let policy = parse_policy(parts, n + 1, shared)?;
        let policy = match policies.get(tenant.as_str()) {
            Some((_, first)) if first.same_limits(&policy) => first.clone(),
            Some((entry, _)) => {
                return Err(format!(
                    "key entries {entry} and {} give tenant {} different limits: all keys of a tenant share its limits, so give every line of the tenant the same max_size, types and rate",
                    n + 1,
                    tenant.as_str()
                ))
            }
            None => {
                let policy = Arc::new(policy);
                policies.insert(tenant.as_str().to_owned(), (n + 1, policy.clone()));
                policy
            }
        };
        let tenant = tenant.with_policy(policy);
        let mut digest = [0_u8; 32];
        hex::decode_to_slice(hash, &mut digest).map_err(|_| {
            format!(
                "key entry {} for tenant {}: not 64 hex digits",
                n + 1,
                tenant.as_str()
            )
        })?;
        keys.push((digest, tenant));
    }
    if keys.is_empty() {
        return Err("no API keys configured".into());
    }
    Ok(keys)
}

fn parse_policy<'a>(
    options: impl Iterator<Item = &'a str>,
    entry: usize,
    shared: Option<&Arc<RedisLimiter>>,
) -> Result<Policy, String> {
    let mut policy = Policy::default();
    for option in options {
        let bad = || {
            format!(
                "key entry {entry}: option {option:?} must be max_size=N, types=a,b or rate=N/SECS"
            )
        };
        match option.split_once('=') {
            Some(("max_size", n)) => policy.max_size = Some(n.parse().map_err(|_| bad())?),
            Some(("types", list)) => {
                policy.content_types = Some(
                    list.split(',')
                        .filter(|t| !t.is_empty())
                        .map(str::to_owned)
                        .collect(),
                )
            }
            Some(("rate", spec)) => {
                let (n, secs) = spec.split_once('/').ok_or_else(bad)?;
                let (n, secs): (u32, u64) = (
                    n.parse().map_err(|_| bad())?,
                    secs.parse().map_err(|_| bad())?,
                );
                if n == 0 || secs == 0 {
                    return Err(bad());
                }
                if secs > MAX_RATE_PERIOD_SECS {
                    return Err(format!(
                        "key entry {entry}: rate={spec}: the period is at most {MAX_RATE_PERIOD_SECS} seconds (a year)"
                    ));
                }
                let spec = RateSpec {
                    limit: n,
                    per: Duration::from_secs(secs),
                };
                policy.rate = Some(Rate::new(spec, shared.cloned()));
            }
            _ => return Err(bad()),
        }
    }
    Ok(policy)
}

/// Where the keys come from. `Debug` shows the file, never inline key lines.
#[derive(Clone, PartialEq, Eq)]
pub enum KeySource {
    /// A file of key lines, re-read when it changes.
    File(PathBuf),
    /// Key lines given inline (`;` or newline separated).
    Inline(String),
}

impl std::fmt::Debug for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File(path) => f.debug_tuple("File").field(path).finish(),
            Self::Inline(_) => f.write_str("Inline(<redacted>)"),
        }
    }
}

pub(super) fn load(
    source: &KeySource,
    shared: Option<&Arc<RedisLimiter>>,
) -> Result<(Keys, Option<SystemTime>), String> {
    match source {
        KeySource::Inline(text) => parse_keys_with(text, shared).map(|k| (k, None)),
        KeySource::File(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
            parse_keys_with(&text, shared).map(|k| (k, modified))
        }
    }
}

/// `new` with each tenant whose rate did not change keeping its rate's state from `old`, so a
/// reload of the key file does not refill the tenant's bucket: the whole policy when no limit
/// changed, else (only `max_size` or `types` changed) the new limits with the old rate. Only
/// a changed rate starts a full bucket.
pub(super) fn carry_over(old: &Keys, mut new: Keys) -> Keys {
    // Each tenant's one new policy with its old rate (every key of a tenant shares it).
    let mut kept: HashMap<String, Arc<Policy>> = HashMap::new();
    for (_, tenant) in &mut new {
        let Some((_, before)) = old.iter().find(|(_, t)| t.as_str() == tenant.as_str()) else {
            continue;
        };
        if before.policy().same_limits(tenant.policy()) {
            *tenant = before.clone();
            continue;
        }
        let (Some(rate), Some(now)) = (&before.policy().rate, &tenant.policy().rate) else {
            continue;
        };
        if rate.spec() != now.spec() {
            continue;
        }
        let policy = kept
            .entry(tenant.as_str().to_owned())
            .or_insert_with(|| {
                Arc::new(Policy {
                    max_size: tenant.policy().max_size,
                    content_types: tenant.policy().content_types.clone(),
                    rate: Some(rate.clone()),
                })
            })
            .clone();
        *tenant = tenant.clone().with_policy(policy);
    }
    new
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    fn hash(key: &str) -> String {
        hex::encode(Sha256::digest(key.as_bytes()))
    }

    #[tokio::test]
    async fn all_keys_of_a_tenant_share_its_rate() {
        let keys = parse_keys(&format!(
            "acme {} rate=5/60\nacme {} rate=5/60\nglobex {} rate=5/60",
            hash("a1"),
            hash("a2"),
            hash("g")
        ))
        .unwrap();
        let (first, second, other) = (&keys[0].1, &keys[1].1, &keys[2].1);
        let mut granted = 0;
        for i in 0..12 {
            let key = if i % 2 == 0 { first } else { second };
            granted += usize::from(key.allow_url().await.is_ok());
        }
        assert_eq!(
            granted, 5,
            "alternating keys: the tenant's 5, not 5 per key"
        );
        assert!(
            other.allow_url().await.is_ok(),
            "another tenant is unaffected"
        );
    }

    #[test]
    fn a_rate_period_past_a_year_is_refused_at_load() {
        let year = super::MAX_RATE_PERIOD_SECS;
        assert!(parse_keys(&format!("acme {} rate=5/{year}", hash("1"))).is_ok());
        for period in [year + 1, u64::MAX] {
            let e = parse_keys(&format!("acme {} rate=5/{period}", hash("1"))).unwrap_err();
            assert!(e.contains("key entry 1") && e.contains("at most"), "{e}");
        }
    }

    #[test]
    fn lines_of_one_tenant_with_different_limits_are_refused_naming_both() {
        for (a, b) in [
            ("rate=5/60", "rate=10/60"),
            ("rate=5/60", ""),
            ("max_size=10", "max_size=11"),
            ("types=image/png", "types=image/jpeg"),
        ] {
            let text = format!(
                "acme {} {a}\nglobex {}\nacme {} {b}",
                hash("1"),
                hash("2"),
                hash("3")
            );
            let e = parse_keys(&text).unwrap_err();
            assert!(e.contains("key entries 1 and 3"), "{e}");
            assert!(e.contains("tenant acme"), "{e}");
            assert!(!e.contains(&hash("3")), "{e}");
        }
        // The same limits written in another order are the same limits.
        assert!(parse_keys(&format!(
            "acme {} rate=5/60 max_size=10 types=a/b,c/d\nacme {} types=c/d,a/b max_size=10 rate=5/60",
            hash("1"),
            hash("2")
        ))
        .is_ok());
    }

    #[tokio::test]
    async fn a_reload_keeps_the_buckets_of_tenants_whose_limits_did_not_change() {
        let before = parse_keys(&format!(
            "acme {} rate=2/60\nglobex {} rate=2/60",
            hash("a"),
            hash("g")
        ))
        .unwrap();
        for (_, tenant) in &before {
            tenant.allow_url().await.unwrap();
            tenant.allow_url().await.unwrap();
        }
        let after = carry_over(
            &before,
            parse_keys(&format!(
                "acme {} rate=2/60\nacme {} rate=2/60\nglobex {} rate=3/60",
                hash("a"),
                hash("a-new"),
                hash("g")
            ))
            .unwrap(),
        );
        assert!(
            after[0].1.allow_url().await.is_err(),
            "acme's bucket is still empty"
        );
        assert!(
            after[1].1.allow_url().await.is_err(),
            "and its new key shares it"
        );
        assert!(
            after[2].1.allow_url().await.is_ok(),
            "globex's new rate starts full"
        );
    }

    #[tokio::test]
    async fn a_reload_that_changes_only_max_size_or_types_keeps_the_bucket() {
        let before = parse_keys(&format!(
            "acme {} rate=2/60 max_size=10\nacme {} rate=2/60 max_size=10",
            hash("a"),
            hash("b")
        ))
        .unwrap();
        before[0].1.allow_url().await.unwrap();
        before[1].1.allow_url().await.unwrap();
        assert!(
            before[0].1.allow_url().await.is_err(),
            "acme is out of tokens"
        );
        let after = carry_over(
            &before,
            parse_keys(&format!(
                "acme {} rate=2/60 max_size=20 types=image/png\nacme {} rate=2/60 max_size=20 types=image/png",
                hash("a"),
                hash("b")
            ))
            .unwrap(),
        );
        for (_, tenant) in &after {
            assert_eq!(tenant.policy().max_size, Some(20), "the new limits apply");
            assert_eq!(
                tenant.policy().content_types.as_deref(),
                Some(&["image/png".to_owned()][..])
            );
            assert!(
                tenant.allow_url().await.is_err(),
                "no fresh burst: the bucket is the one before the reload"
            );
        }
        assert!(
            std::ptr::eq(after[0].1.policy(), after[1].1.policy()),
            "both keys still share one policy"
        );
    }
}
