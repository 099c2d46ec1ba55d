//! Tenants and what each may do: size and type limits, a token bucket for minting URLs.

use crate::api::error::{ApiError, Code};
use draftstore_core::ObjectName;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A tenant: `[a-z0-9-]{1,63}`. Its objects live under `<tenant>/` in both buckets.
#[derive(Debug, Clone)]
pub struct Tenant(ObjectName, Arc<Policy>);

impl PartialEq for Tenant {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl Eq for Tenant {}

/// What a tenant may do beyond the API's own rules (all optional).
#[derive(Debug, Default)]
pub struct Policy {
    /// Uploads must declare `content_length`, at most this.
    pub max_size: Option<u64>,
    /// Uploads must declare one of these content types.
    pub content_types: Option<Vec<String>>,
    /// URLs minted: at most `burst` at once, refilled at `burst` per `per`.
    pub rate: Option<Rate>,
}

/// A token bucket.
#[derive(Debug)]
pub struct Rate {
    burst: f64,
    per: Duration,
    /// (tokens, last refill)
    state: std::sync::Mutex<(f64, Instant)>,
}

impl Rate {
    /// At most `burst` URLs per `per`, refilled continuously.
    #[must_use]
    pub fn new(burst: u32, per: Duration) -> Self {
        Self {
            burst: f64::from(burst),
            per,
            state: std::sync::Mutex::new((f64::from(burst), Instant::now())),
        }
    }

    /// Takes one token; `Err(seconds until one is back)` when none is left.
    ///
    /// # Errors
    /// The wait, in whole seconds, when the bucket is empty.
    pub fn take(&self) -> Result<(), u64> {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        let refill =
            now.duration_since(state.1).as_secs_f64() / self.per.as_secs_f64() * self.burst;
        state.0 = (state.0 + refill).min(self.burst);
        state.1 = now;
        if state.0 >= 1.0 {
            state.0 -= 1.0;
            Ok(())
        } else {
            let wait =
                Duration::from_secs_f64((1.0 - state.0) / self.burst * self.per.as_secs_f64());
            Err(wait.as_secs().max(1))
        }
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
    pub fn allow_upload(
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
            if !constraints
                .content_type
                .as_ref()
                .is_some_and(|t| types.contains(t))
            {
                return Err(ApiError::new(
                    Code::TenantLimit,
                    format!(
                        "uploads of this tenant must declare content_type, one of: {}",
                        types.join(", ")
                    ),
                ));
            }
        }
        self.allow_url()
    }

    /// Takes a token for minting a URL.
    ///
    /// # Errors
    /// 429 when out of tokens.
    pub fn allow_url(&self) -> Result<(), ApiError> {
        match self.policy().rate.as_ref().map(Rate::take) {
            Some(Err(wait)) => Err(ApiError::new(
                Code::RateLimited,
                format!("too many URLs for this tenant; retry in {wait} s"),
            )
            .with_retry_after(wait)),
            _ => Ok(()),
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
