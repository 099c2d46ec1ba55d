//! Configuration, parsed once from a lookup function (the environment, with command-line flags
//! layered on top). Pure: tests pass a map. A bad value is one line naming the variable, never
//! a silent fall-back to a default; secrets never appear in messages or `Debug`.

mod s3;
mod serve;

pub use s3::S3Config;
pub use serve::{Limits, ServeConfig};

use std::fmt;

/// Looks a variable up; `None` when unset.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// A configuration error: one line naming the variable and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

pub(crate) fn err(message: impl Into<String>) -> ConfigError {
    ConfigError(message.into())
}

/// A whole number in `range`, or `default` when unset.
pub(crate) fn number(
    get: Lookup<'_>,
    name: &str,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<u64, ConfigError> {
    match get(name).filter(|v| !v.trim().is_empty()) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|n| range.contains(n))
            .ok_or_else(|| {
                err(format!(
                    "{name} must be a whole number in {}..={}",
                    range.start(),
                    range.end()
                ))
            }),
    }
}

/// `true`/`false` (also `1`/`0`), or `default` when unset.
pub(crate) fn flag(get: Lookup<'_>, name: &str, default: bool) -> Result<bool, ConfigError> {
    match get(name).as_deref().map(str::trim) {
        None | Some("") => Ok(default),
        Some("true" | "1") => Ok(true),
        Some("false" | "0") => Ok(false),
        Some(_) => Err(err(format!("{name} must be true or false"))),
    }
}
