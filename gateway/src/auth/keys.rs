//! API key lines: `<tenant> <sha256 hex of the key> [max_size=N] [types=a,b] [rate=N/SECS]`.

use super::tenant::{Policy, Rate, Tenant};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Key digests with their tenants.
pub(super) type Keys = Vec<([u8; 32], Tenant)>;

/// Parses key lines: `<tenant> <sha256 hex of the key>`, `#` comments, blank lines; entries
/// may also be separated by `;` (one environment variable).
///
/// # Errors
/// A message naming the first bad line (never echoing a hash).
pub fn parse_keys(text: &str) -> Result<Keys, String> {
    let mut keys = Vec::new();
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
        let tenant = Tenant::parse(tenant)
            .map_err(|_| {
                format!(
                    "key entry {}: the tenant (first field) must be 1..=63 of a-z, 0-9 and '-'",
                    n + 1
                )
            })?
            .with_policy(Arc::new(parse_policy(parts, n + 1)?));
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
                policy.rate = Some(Rate::new(n, Duration::from_secs(secs)));
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

pub(super) fn load(source: &KeySource) -> Result<(Keys, Option<SystemTime>), String> {
    match source {
        KeySource::Inline(text) => parse_keys(text).map(|k| (k, None)),
        KeySource::File(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
            parse_keys(&text).map(|k| (k, modified))
        }
    }
}
