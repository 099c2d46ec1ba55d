//! Tenants and what each may do: size and type limits, a token bucket for minting URLs.

use super::ratelimit::{retry_after, Rate, Refusal};
use crate::api::error::{ApiError, Code};
use draftstore_core::ObjectName;
use std::sync::Arc;

/// A tenant: `[a-z0-9-]{1,63}`. Its objects live under `<tenant>/` in both buckets.
#[derive(Debug, Clone)]
pub struct Tenant(ObjectName, Arc<Policy>);

impl PartialEq for Tenant {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl Eq for Tenant {}

/// What a tenant may do beyond the API's own rules (all optional). Every key of a tenant
/// shares its tenant's one `Policy`, and so one rate.
#[derive(Debug, Default)]
pub struct Policy {
    /// Uploads must declare `content_length`, at most this.
    pub max_size: Option<u64>,
    /// Uploads must declare one of these content types, compared as media types (see
    /// [`allows_type`]: `TEXT/Plain` is `text/plain`).
    pub content_types: Option<Vec<String>>,
    /// URLs minted: at most `limit` at once, refilled at `limit` per `per`.
    pub rate: Option<Rate>,
}

impl Policy {
    /// The same limits (size, types in any order, rate spec), whatever the rate's state.
    #[must_use]
    pub fn same_limits(&self, other: &Self) -> bool {
        let types = |p: &Self| {
            p.content_types.clone().map(|mut t| {
                t.sort();
                t
            })
        };
        self.max_size == other.max_size
            && types(self) == types(other)
            && self.rate.as_ref().map(Rate::spec) == other.rate.as_ref().map(Rate::spec)
    }
}

/// Whether `declared` is one of `allowed`, compared as media types (RFC 9110 §8.3.1, by the
/// `mime` crate's parser): type, subtype and parameter names are case-insensitive, and so is
/// the value of `charset` (RFC 2046 §4.1.2); other parameter values, the parameters' order,
/// and text that is not a media type compare byte for byte. Only the tenant's policy compares
/// this way: the `Content-Type` signed into an upload stays as declared, and the store wants
/// it byte for byte (SigV4).
#[must_use]
pub fn allows_type(allowed: &[String], declared: &str) -> bool {
    if allowed.iter().any(|a| a == declared) {
        return true;
    }
    let Ok(declared) = declared.parse::<mime::Mime>() else {
        return false;
    };
    allowed
        .iter()
        .any(|a| a.parse::<mime::Mime>().is_ok_and(|a| a == declared))
}

impl Tenant {
    /// # Errors
    /// A message when the name is not 1..=63 of `a-z`, `0-9`, `-`.
    pub fn parse(name: &str) -> Result<Self, String> {
        let ok = (1..=63).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        // Those characters always make a one-segment object name: the folder of its objects.
        match ObjectName::parse(name) {
            Ok(folder) if ok => Ok(Self(folder, Arc::new(Policy::default()))),
            _ => Err(format!(
                "tenant {name:?} must be 1..=63 of a-z, 0-9 and '-'"
            )),
        }
    }

    /// This tenant with `policy`'s limits.
    #[must_use]
    pub fn with_policy(self, policy: Arc<Policy>) -> Self {
        Self(self.0, policy)
    }

    /// The tenant's limits.
    #[must_use]
    pub fn policy(&self) -> &Policy {
        &self.1
    }

    /// Checks an upload against this tenant's limits and takes a token.
    ///
    /// # Errors
    /// 403 for a size or type outside the limits, 429 when out of tokens.
    pub async fn allow_upload(
        &self,
        constraints: &draftstore_core::UploadConstraints,
    ) -> Result<(), ApiError> {
        let policy = self.policy();
        if let Some(max) = policy.max_size {
            match constraints.content_length {
                Some(n) if n <= max => {}
                Some(n) => {
                    return Err(ApiError::new(
                        Code::TenantLimit,
                        format!("uploads of this tenant are at most {max} bytes; {n} declared"),
                    ))
                }
                None => {
                    return Err(ApiError::new(
                        Code::TenantLimit,
                        format!(
                            "uploads of this tenant must declare content_length (at most {max})"
                        ),
                    ))
                }
            }
        }
        if let Some(types) = &policy.content_types {
            let message = match &constraints.content_type {
                Some(t) if allows_type(types, t) => None,
                Some(t) => Some(format!(
                    "content_type {t:?} is not allowed for this tenant; allowed: {}",
                    types.join(", ")
                )),
                None => Some(format!(
                    "uploads of this tenant must declare content_type, one of: {}",
                    types.join(", ")
                )),
            };
            if let Some(message) = message {
                return Err(ApiError::new(Code::TenantLimit, message));
            }
        }
        self.allow_url().await
    }

    /// Takes a token of the tenant's bucket for minting a URL (in Redis when shared).
    ///
    /// # Errors
    /// 429 / `RATE_LIMITED` with `Retry-After` when out of tokens; 429 /
    /// `RATE_LIMIT_UNAVAILABLE` when Redis does not answer and the fallback is `reject`.
    pub async fn allow_url(&self) -> Result<(), ApiError> {
        let Some(rate) = &self.policy().rate else {
            return Ok(());
        };
        match rate.take(self.as_str()).await {
            Ok(()) => Ok(()),
            Err(Refusal::Limited(wait)) => {
                let wait = retry_after(wait);
                Err(ApiError::new(
                    Code::RateLimited,
                    format!("too many URLs for this tenant; retry in {wait} s"),
                )
                .with_retry_after(wait))
            }
            Err(Refusal::Unavailable) => Err(ApiError::new(
                Code::RateLimitUnavailable,
                "the shared rate limiter is unavailable; retry shortly",
            )
            .with_retry_after(1)),
        }
    }

    /// The tenant's name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The folder this tenant's objects live in, in both buckets.
    #[must_use]
    pub fn folder(&self) -> &ObjectName {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::allows_type;

    #[test]
    fn types_compare_as_media_types() {
        let allowed = [
            "text/plain".to_owned(),
            "image/svg+xml; profile=Tiny".to_owned(),
        ];
        for ok in [
            "text/plain",
            "TEXT/PLAIN",
            "Text/Plain",
            "image/SVG+XML; Profile=Tiny",
            "image/svg+xml;profile=Tiny",
        ] {
            assert!(allows_type(&allowed, ok), "{ok}");
        }
        // A parameter's value is compared as written; other types and non-types are refused.
        for refused in [
            "image/svg+xml; profile=tiny",
            "text/plain; charset=utf-8",
            "text/html",
            "text",
            "",
            "text/plain\u{0}",
        ] {
            assert!(!allows_type(&allowed, refused), "{refused}");
        }
        let charset = ["text/plain; charset=utf-8".to_owned()];
        assert!(
            allows_type(&charset, "text/plain; Charset=UTF-8"),
            "RFC 9110 §8.3.1's example"
        );
        assert!(allows_type(&charset, "TEXT/plain;charset=\"utf-8\""));
        // What is not a media type only matches itself.
        assert!(allows_type(&["custom".to_owned()], "custom"));
        assert!(!allows_type(&["custom".to_owned()], "CUSTOM"));
    }
}
