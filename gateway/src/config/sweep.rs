//! `gateway sweep`'s settings: only what a sweep uses (storage, buckets, lifetime, log format).
//! It shares a ConfigMap with `serve` but never parses the server's ports, limits or
//! authentication, so a serving-only setting (or a JWT key file mounted only in the Deployment)
//! cannot stop the CronJob.

use super::name;
use super::serve::{buckets, object_lifetime, storage};
use super::{flag, ConfigError, Lookup, StorageChoice};
use draftstore_core::Buckets;

/// What one sweep needs.
#[derive(Debug, Clone)]
pub struct SweepConfig {
    /// The draft bucket is swept; main is never touched.
    pub buckets: Buckets,
    /// Seconds a draft lives (`OBJECT_LIFETIME`): older ones are deleted.
    pub object_lifetime: u64,
    /// Where the drafts live, chosen as `serve` chooses.
    pub storage: StorageChoice,
    /// JSON log lines (`DRAFTSTORE_LOG_JSON`).
    pub log_json: bool,
    /// Webhooks: sweep emits `draft.expired` and `multipart.aborted`, and delivers what is
    /// left in the queue.
    pub events: super::EventsConfig,
}

impl SweepConfig {
    /// Reads `BUCKET_NAME`, `DRAFT_BUCKET`, `OBJECT_LIFETIME`, `DRAFTSTORE_LOG_JSON` and the
    /// storage variables (S3's, or the embedded store's data folder and secret) from `get`.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first bad variable.
    pub fn from_lookup(get: Lookup<'_>) -> Result<Self, ConfigError> {
        Ok(Self {
            buckets: buckets(get)?,
            object_lifetime: object_lifetime(get)?,
            // The port only makes the local store's URL base, which a sweep never hands out.
            storage: storage(get, 0, false)?,
            log_json: flag(get, name::DRAFTSTORE_LOG_JSON, false)?,
            events: super::events(get)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_no_serving_or_auth_setting() {
        let read = std::cell::RefCell::new(Vec::new());
        // Every variable but the sweep's own is set to garbage.
        let config = SweepConfig::from_lookup(&|k| {
            read.borrow_mut().push(k.to_owned());
            // Webhooks are the sweep's too (draft.expired, delivering what is left): unset.
            if k.starts_with("DRAFTSTORE_WEBHOOK_") || k.starts_with("DRAFTSTORE_PRECONFIRM_") {
                return None;
            }
            Some(
                match k {
                    "OBJECT_LIFETIME" => "60",
                    "BUCKET_NAME" => "photos",
                    "DRAFT_BUCKET" => "photos-draft",
                    "DRAFTSTORE_STORAGE" => "local",
                    "DRAFTSTORE_LOG_JSON" => "true",
                    "DRAFTSTORE_LOCAL_MAX_OBJECT_BYTES" => "1024",
                    // The embedded store's own settings, shared with serve.
                    "DRAFTSTORE_PUBLIC_URL" => "http://127.0.0.1:8080",
                    "DRAFTSTORE_STORE_STALL_TIMEOUT_MS" => "1000",
                    _ => "not a valid value for anything",
                }
                .to_owned(),
            )
        })
        .unwrap();
        assert_eq!(config.buckets.draft.as_str(), "photos-draft");
        assert!(config.log_json);
        let read = read.into_inner();
        for serving in [
            "HTTP_PORT",
            "DRAFTSTORE_MAX_IN_FLIGHT",
            "DRAFTSTORE_AUTH",
            "DRAFTSTORE_JWT_PUBLIC_KEY_FILE",
            "DRAFTSTORE_CORS_ORIGINS",
        ] {
            assert!(!read.iter().any(|k| k == serving), "{serving} read");
        }
    }

    #[test]
    fn buckets_and_lifetime_as_serve_reads_them() {
        let config = SweepConfig::from_lookup(&|k| match k {
            "OBJECT_LIFETIME" => Some("60".to_owned()),
            "BUCKET_NAME" => Some("photos".to_owned()),
            _ => None,
        });
        // BUCKET_NAME selects S3; without static keys its credentials come from the AWS chain.
        let config = config.unwrap();
        assert_eq!(config.buckets.main.as_str(), "photos");
        assert_eq!(config.object_lifetime, 60);
        assert!(matches!(
            config.storage,
            StorageChoice::S3(ref s3) if s3.credentials == crate::config::CredentialSource::Chain
        ));
        let config = SweepConfig::from_lookup(&|k| match k {
            "OBJECT_LIFETIME" => Some("60".to_owned()),
            "DRAFT_BUCKET" => Some("drafts".to_owned()),
            _ => None,
        })
        .unwrap();
        assert_eq!(
            (config.buckets.draft.as_str(), config.object_lifetime),
            ("drafts", 60)
        );
        assert!(matches!(config.storage, StorageChoice::Local(_)));
    }
}
