//! [`Signer`]: credentials bound to a region and service, with the day's signing key cached.

use crate::signing_key::{DerivedKey, KeyCache, SecondCache};
use crate::{Credentials, Error};
use std::cell::RefCell;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Distinguishes signers in the per-thread key slot.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// The key this thread used last, so the hot path takes no lock and touches no shared
    /// cache line: on a busy many-core server a shared read lock is contended by every request.
    static LAST_KEY: RefCell<Option<(u64, Arc<DerivedKey>, SecondCache)>> = const { RefCell::new(None) };
}

/// Signs requests for one (credentials, region, service). Cheap to share across threads; the
/// signing key is derived once per UTC day and reused.
pub struct Signer {
    pub(crate) credentials: Credentials,
    pub(crate) region: String,
    pub(crate) service: String,
    pub(crate) content_sha256_header: bool,
    id: u64,
    cache: KeyCache,
}

impl Signer {
    /// A signer for `service` (`"s3"` for S3) in `region`.
    ///
    /// # Errors
    /// [`Error::InvalidScope`] when the region or service is empty or holds `/`, white space or
    /// control characters.
    pub fn new(credentials: Credentials, region: &str, service: &str) -> Result<Self, Error> {
        check_scope_part(
            region,
            "region must be non-empty without '/', spaces or controls",
        )?;
        check_scope_part(
            service,
            "service must be non-empty without '/', spaces or controls",
        )?;
        Ok(Self {
            credentials,
            region: region.to_owned(),
            service: service.to_owned(),
            content_sha256_header: service == "s3",
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            cache: KeyCache::default(),
        })
    }

    /// Whether header signing sends and signs `x-amz-content-sha256`. On by default for `s3`,
    /// which requires it; off for other services.
    #[must_use]
    pub fn with_content_sha256_header(mut self, on: bool) -> Self {
        self.content_sha256_header = on;
        self
    }

    /// The credentials this signer signs with.
    #[must_use]
    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// The region of the credential scope, e.g. `us-east-1`.
    #[must_use]
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The service of the credential scope, e.g. `s3`.
    #[must_use]
    pub fn service(&self) -> &str {
        &self.service
    }

    /// Runs `f` with the signing key of `date` and this thread's per-second signing state:
    /// this thread's last key when it matches, else the signer's shared cache (which derives
    /// it once per day).
    pub(crate) fn with_key<R>(
        &self,
        date: &str,
        f: impl FnOnce(&DerivedKey, &mut SecondCache) -> R,
    ) -> R {
        LAST_KEY.with(|slot| {
            if let Ok(mut last) = slot.try_borrow_mut() {
                if let Some((id, key, second)) = last.as_mut() {
                    if *id == self.id && key.date() == date {
                        return f(key, second);
                    }
                }
                let key = self.key_for(date);
                let mut second = SecondCache::default();
                let out = f(&key, &mut second);
                *last = Some((self.id, key, second));
                return out;
            }
            f(&self.key_for(date), &mut SecondCache::default())
        })
    }

    pub(crate) fn key_for(&self, date: &str) -> Arc<DerivedKey> {
        self.cache.get(
            self.credentials.access_key(),
            self.credentials.secret(),
            date,
            &self.region,
            &self.service,
        )
    }
}

pub(crate) fn check_scope_part(part: &str, why: &'static str) -> Result<(), Error> {
    if part.is_empty()
        || part
            .chars()
            .any(|c| c == '/' || c.is_whitespace() || c.is_control())
    {
        return Err(Error::InvalidScope(why));
    }
    Ok(())
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("credentials", &self.credentials)
            .field("region", &self.region)
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}
