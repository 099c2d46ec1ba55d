//! The credentials the S3 signer uses: static keys as given, or the AWS chain's temporary
//! credentials, cached and refreshed in the background before they expire.
//!
//! Signing reads the cached signer without waiting (one atomic load). Only when the cached
//! credentials have expired does an S3 call wait for a refresh (one at a time, the others
//! wait for its result). A failed refresh is retried with backoff (1 s doubling to 60 s),
//! logged once per run of failures, and counted in
//! `draftstore_credential_refreshes_total{outcome="error"}`; S3 calls, and so `/ready`, fail
//! only once no valid credentials remain. URLs are never signed to outlive their
//! credentials: see [`CredentialCache::url_deadline`].

use super::chain::{Chain, ChainError, Fetched};
use arc_swap::ArcSwap;
use draftstore_core::StorageError;
use draftstore_signer::{Credentials, Signer};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// Seconds before the credentials' expiry at which a presigned URL must have expired (clock
/// skew between S3 and us, and the client's own delay).
pub const URL_MARGIN_SECS: i64 = 15;
/// An S3 call is not signed with credentials expiring in less than this (seconds).
const CALL_MARGIN_SECS: i64 = 5;
/// Refresh at most this long before expiry (seconds), and at least a third of the lifetime.
const MAX_LEAD_SECS: i64 = 300;
/// Time for one fetch through the chain in the background.
const FETCH_BUDGET: Duration = Duration::from_secs(10);
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// The credentials in use, as a ready signer.
pub struct Current {
    /// Signs with these credentials (presigned URLs and the gateway's own S3 calls).
    pub signer: Signer,
    /// Unix seconds; `None` for static keys.
    pub expires_at: Option<i64>,
    /// Unix seconds when they were fetched.
    pub fetched_at: i64,
}

impl Current {
    /// When to fetch new ones: a third of their lifetime before expiry, at most five minutes
    /// before it. `None` when they never expire.
    #[must_use]
    pub fn refresh_at(&self) -> Option<i64> {
        let expires = self.expires_at?;
        let lead = ((expires - self.fetched_at) / 3).clamp(0, MAX_LEAD_SECS);
        Some(expires - lead)
    }

    fn usable_at(&self, now: i64) -> bool {
        self.expires_at.is_none_or(|e| e - CALL_MARGIN_SECS > now)
    }
}

/// Shared by the S3 client (header signing) and presigning.
pub struct CredentialCache {
    current: ArcSwap<Current>,
    region: String,
    /// `None` for static keys.
    chain: Option<Chain>,
    /// One refresh at a time; holds the last failure and when it happened, so callers that
    /// waited for a fetch that failed share its answer instead of fetching again.
    refreshing: tokio::sync::Mutex<Option<(Instant, ChainError)>>,
    /// Failed refreshes in a row (for logging once per run).
    failures: std::sync::atomic::AtomicU32,
}

impl std::fmt::Debug for CredentialCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let current = self.current.load();
        f.debug_struct("CredentialCache")
            .field("access_key", &current.signer.credentials().access_key())
            .field("expires_at", &current.expires_at)
            .field("chain", &self.chain)
            .finish_non_exhaustive()
    }
}

fn signer(credentials: Credentials, region: &str) -> Result<Signer, String> {
    Signer::new(credentials, region, "s3").map_err(|e| format!("AWS_REGION: {e}"))
}

fn now() -> i64 {
    crate::clock::unix_now().unwrap_or(0)
}

impl CredentialCache {
    /// Static keys, never refreshed.
    ///
    /// # Errors
    /// A region the signer refuses.
    pub fn fixed(credentials: Credentials, region: &str) -> Result<Self, String> {
        Ok(Self::with(
            Current {
                signer: signer(credentials, region)?,
                expires_at: None,
                fetched_at: now(),
            },
            region,
            None,
        ))
    }

    fn with(current: Current, region: &str, chain: Option<Chain>) -> Self {
        Self {
            current: ArcSwap::from_pointee(current),
            region: region.to_owned(),
            chain,
            refreshing: tokio::sync::Mutex::new(None),
            failures: std::sync::atomic::AtomicU32::new(0),
        }
    }

    /// Fetches credentials through `chain` (within `budget`) and keeps them fresh with a
    /// background task on the current tokio runtime, which ends when the cache is dropped.
    ///
    /// # Errors
    /// The chain found nothing (the message names what it tried), or a bad region.
    pub async fn from_chain(
        chain: Chain,
        region: &str,
        budget: Duration,
    ) -> Result<Arc<Self>, ChainError> {
        let fetched = chain.fetch(budget).await?;
        let current = Self::current_from(fetched, region).map_err(ChainError)?;
        let cache = Arc::new(Self::with(current, region, Some(chain)));
        record_expiry(cache.current.load().expires_at);
        tokio::spawn(refresh_loop(Arc::downgrade(&cache)));
        Ok(cache)
    }

    /// The fetched credentials as a signer, refused when they are already expired (or expire
    /// within [`CALL_MARGIN_SECS`]): a provider answering with stale credentials is a failed
    /// fetch (at start: no credentials, exit 64; on refresh: counted as an error), never keys
    /// that S3 would refuse with `ExpiredToken`.
    fn current_from(fetched: Fetched, region: &str) -> Result<Current, String> {
        let current = Current {
            signer: signer(fetched.credentials.clone(), region)?,
            expires_at: fetched.expires_at,
            fetched_at: now(),
        };
        if !current.usable_at(current.fetched_at) {
            return Err(format!(
                "the {} credentials are already expired (Expiration {:?}, Unix seconds)",
                fetched.source, fetched.expires_at
            ));
        }
        tracing::info!(
            source = fetched.source,
            access_key = fetched.credentials.access_key(),
            expires_at = ?fetched.expires_at,
            "AWS credentials loaded"
        );
        Ok(current)
    }

    /// The credentials in use, without waiting (they may have expired: see
    /// [`CredentialCache::url_deadline`]).
    pub fn current(&self) -> arc_swap::Guard<Arc<Current>> {
        self.current.load()
    }

    /// Unix seconds after which a URL signed now must not be valid: the credentials' expiry
    /// minus [`URL_MARGIN_SECS`]. `None` for credentials that do not expire.
    #[must_use]
    pub fn url_deadline(&self) -> Option<i64> {
        self.current
            .load()
            .expires_at
            .map(|e| e.saturating_sub(URL_MARGIN_SECS))
    }

    /// Credentials valid for an S3 call made now: the cached ones, or, when they have expired,
    /// new ones fetched now.
    ///
    /// # Errors
    /// [`StorageError::Unavailable`] when they have expired and none can be fetched.
    pub async fn for_call(&self) -> Result<Arc<Current>, StorageError> {
        let current = self.current.load_full();
        if current.usable_at(now()) {
            return Ok(current);
        }
        match self.refresh().await {
            Ok(()) => Ok(self.current.load_full()),
            Err(e) => Err(StorageError::Unavailable {
                reason: format!("the AWS credentials expired and could not be refreshed: {e}"),
            }),
        }
    }

    /// Fetches new credentials unless another caller just did (then shares its outcome).
    async fn refresh(&self) -> Result<(), ChainError> {
        let Some(chain) = &self.chain else {
            return Ok(());
        };
        let asked = Instant::now();
        let mut last_failure = self.refreshing.lock().await;
        if let Some((at, e)) = &*last_failure {
            if *at >= asked {
                return Err(e.clone()); // failed while we waited
            }
        }
        let due = self.current.load().refresh_at();
        if due.is_some_and(|d| d > now()) {
            return Ok(()); // refreshed while we waited
        }
        let result = chain
            .fetch(FETCH_BUDGET)
            .await
            .and_then(|f| Self::current_from(f, &self.region).map_err(ChainError));
        let metrics = crate::metrics::get();
        let outcome = if result.is_ok() { "ok" } else { "error" };
        metrics
            .credential_refreshes
            .get_or_create(&crate::metrics::OutcomeLabels { outcome })
            .inc();
        let failures = &self.failures;
        match result {
            Ok(current) => {
                *last_failure = None;
                record_expiry(current.expires_at);
                self.current.store(Arc::new(current));
                if failures.swap(0, std::sync::atomic::Ordering::Relaxed) > 0 {
                    tracing::info!("AWS credentials refreshed again after failures");
                }
                Ok(())
            }
            Err(e) => {
                *last_failure = Some((Instant::now(), e.clone()));
                let before = failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let expires_at = self.current.load().expires_at;
                if before == 0 {
                    tracing::warn!(error = %e, ?expires_at, "cannot refresh the AWS credentials; retrying with backoff");
                } else {
                    tracing::debug!(error = %e, attempt = before + 1, "AWS credential refresh failed again");
                }
                Err(e)
            }
        }
    }
}

fn record_expiry(expires_at: Option<i64>) {
    crate::metrics::get()
        .credentials_expiry
        .set(expires_at.unwrap_or(0));
}

/// Sleeps until the credentials are due, refreshes them; on failure backs off and retries.
async fn refresh_loop(cache: Weak<CredentialCache>) {
    let mut backoff = FIRST_BACKOFF;
    loop {
        let wait = {
            let Some(cache) = cache.upgrade() else { return };
            let Some(due) = cache.current.load().refresh_at() else {
                return;
            };
            u64::try_from(due - now()).unwrap_or(0)
        };
        tokio::time::sleep(Duration::from_secs(wait)).await;
        let Some(strong) = cache.upgrade() else {
            return;
        };
        let renewed = strong.refresh().await.is_ok()
            && strong
                .current
                .load()
                .refresh_at()
                .is_none_or(|due| due > now());
        drop(strong);
        if renewed {
            backoff = FIRST_BACKOFF;
        } else {
            // Failed, or the source handed back credentials already due (not rotated yet).
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn current(fetched_at: i64, expires_at: Option<i64>) -> Current {
        Current {
            signer: signer(Credentials::new("AK", "secret", None).unwrap(), "us-east-1").unwrap(),
            expires_at,
            fetched_at,
        }
    }

    #[test]
    fn refresh_comes_a_third_of_the_lifetime_early_at_most_five_minutes() {
        assert_eq!(current(0, None).refresh_at(), None);
        assert_eq!(current(1000, Some(1090)).refresh_at(), Some(1060));
        assert_eq!(current(0, Some(3600)).refresh_at(), Some(3300));
        assert_eq!(current(100, Some(50)).refresh_at(), Some(50));
    }

    #[test]
    fn credentials_already_expired_are_a_failed_fetch() {
        let fetched = |expires_at| Fetched {
            credentials: Credentials::new("AK", "secret", Some("token".to_owned())).unwrap(),
            expires_at,
            source: "container",
        };
        let past = now() - 60;
        let Err(refused) = CredentialCache::current_from(fetched(Some(past)), "us-east-1") else {
            panic!("expired credentials were taken")
        };
        assert!(refused.contains("already expired"), "{refused}");
        assert!(
            !refused.contains("secret") && !refused.contains("token"),
            "{refused}"
        );
        let soon = now() + CALL_MARGIN_SECS;
        assert!(CredentialCache::current_from(fetched(Some(soon)), "us-east-1").is_err());
        assert!(CredentialCache::current_from(fetched(Some(now() + 90)), "us-east-1").is_ok());
        assert!(CredentialCache::current_from(fetched(None), "us-east-1").is_ok());
    }

    #[test]
    fn calls_never_sign_with_credentials_about_to_expire() {
        assert!(current(0, None).usable_at(i64::MAX - 1));
        assert!(current(0, Some(100)).usable_at(90));
        assert!(!current(0, Some(100)).usable_at(96));
    }

    /// A provider that fails after a pause, counting its calls.
    #[derive(Debug)]
    struct Failing(std::sync::Arc<std::sync::atomic::AtomicU32>);

    impl aws_credential_types::provider::ProvideCredentials for Failing {
        fn provide_credentials<'a>(
            &'a self,
        ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            aws_credential_types::provider::future::ProvideCredentials::new(async move {
                self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(200)).await;
                Err(
                    aws_credential_types::provider::error::CredentialsError::provider_error(
                        "endpoint down",
                    ),
                )
            })
        }
    }

    #[tokio::test]
    async fn callers_waiting_on_a_failed_refresh_share_its_error_and_expired_is_unavailable() {
        let calls = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let chain = Chain::of(vec![(
            "container",
            aws_credential_types::provider::SharedCredentialsProvider::new(Failing(calls.clone())),
        )]);
        let cache = CredentialCache::with(current(0, Some(now() - 1)), "us-east-1", Some(chain));
        let results = futures_util::future::join_all((0..5).map(|_| cache.for_call())).await;
        for result in results {
            let Err(StorageError::Unavailable { reason }) = result else {
                panic!("expired credentials and a failing refresh must be unavailable");
            };
            assert!(reason.contains("container failed"), "{reason}");
        }
        assert_eq!(
            calls.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "one fetch for all"
        );
        // A later caller asks again.
        assert!(cache.for_call().await.is_err());
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[test]
    fn static_keys_have_no_deadline_and_debug_hides_the_secret() {
        let cache =
            CredentialCache::fixed(Credentials::new("AK", "s3cr3t", None).unwrap(), "eu-west-1")
                .unwrap();
        assert_eq!(cache.url_deadline(), None);
        assert!(!format!("{cache:?}").contains("s3cr3t"));
        assert!(CredentialCache::fixed(Credentials::new("AK", "x", None).unwrap(), "a b").is_err());
    }
}
