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
    /// Uploads must declare one of these content types.
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
                Some(t) if types.contains(t) => None,
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
