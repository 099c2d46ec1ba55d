//! Configuration, parsed once from a lookup function (the environment, with command-line flags
//! layered on top). Pure: tests pass a map. A bad value is one line naming the variable, never
//! a silent fall-back to a default; secrets never appear in messages or `Debug`.

mod events;
mod ratelimit;
mod s3;
mod serve;
mod sweep;

pub use events::{events, Endpoint, EventsConfig, OnError, Preconfirm, Secrets};
pub use ratelimit::DEFAULT_KEY_PREFIX;
pub use s3::{credentials, region, sse, CredentialSource, S3Config, Sse, SSE_HEADER};
pub use serve::{Limits, LocalConfig, ServeConfig, StorageChoice, TlsFiles, UploadTokenSecret};
pub use sweep::SweepConfig;

use std::fmt;

/// The names of the environment variables the gateway reads, shared by the parsers here and the
/// command line's flags (each flag overrides the variable of the same name).
pub mod name {
    /// `AWS_ACCESS_KEY_ID`.
    pub const AWS_ACCESS_KEY_ID: &str = "AWS_ACCESS_KEY_ID";
    /// `AWS_DEFAULT_REGION`.
    pub const AWS_DEFAULT_REGION: &str = "AWS_DEFAULT_REGION";
    /// `AWS_ENDPOINT_URL`.
    pub const AWS_ENDPOINT_URL: &str = "AWS_ENDPOINT_URL";
    /// `AWS_ENDPOINT_URL_S3`.
    pub const AWS_ENDPOINT_URL_S3: &str = "AWS_ENDPOINT_URL_S3";
    /// `AWS_REGION`.
    pub const AWS_REGION: &str = "AWS_REGION";
    /// `AWS_SECRET_ACCESS_KEY`.
    pub const AWS_SECRET_ACCESS_KEY: &str = "AWS_SECRET_ACCESS_KEY";
    /// `AWS_SESSION_TOKEN`.
    pub const AWS_SESSION_TOKEN: &str = "AWS_SESSION_TOKEN";
    /// `BUCKET_NAME`.
    pub const BUCKET_NAME: &str = "BUCKET_NAME";
    /// `DOWNLOAD_TTL`.
    pub const DOWNLOAD_TTL: &str = "DOWNLOAD_TTL";
    /// `DRAFTSTORE_API_KEYS`.
    pub const DRAFTSTORE_API_KEYS: &str = "DRAFTSTORE_API_KEYS";
    /// `DRAFTSTORE_API_KEYS_FILE`.
    pub const DRAFTSTORE_API_KEYS_FILE: &str = "DRAFTSTORE_API_KEYS_FILE";
    /// `DRAFTSTORE_AUTH`.
    pub const DRAFTSTORE_AUTH: &str = "DRAFTSTORE_AUTH";
    /// `DRAFTSTORE_BIND`.
    pub const DRAFTSTORE_BIND: &str = "DRAFTSTORE_BIND";
    /// `DRAFTSTORE_CORS_ORIGINS`.
    pub const DRAFTSTORE_CORS_ORIGINS: &str = "DRAFTSTORE_CORS_ORIGINS";
    /// `DRAFTSTORE_CREATE_BUCKETS`.
    pub const DRAFTSTORE_CREATE_BUCKETS: &str = "DRAFTSTORE_CREATE_BUCKETS";
    /// `DRAFTSTORE_DATA_DIR`.
    pub const DRAFTSTORE_DATA_DIR: &str = "DRAFTSTORE_DATA_DIR";
    /// `DRAFTSTORE_HEADER_TIMEOUT_MS`.
    pub const DRAFTSTORE_HEADER_TIMEOUT_MS: &str = "DRAFTSTORE_HEADER_TIMEOUT_MS";
    /// `DRAFTSTORE_JWT_AUDIENCE`.
    pub const DRAFTSTORE_JWT_AUDIENCE: &str = "DRAFTSTORE_JWT_AUDIENCE";
    /// `DRAFTSTORE_JWT_ISSUER`.
    pub const DRAFTSTORE_JWT_ISSUER: &str = "DRAFTSTORE_JWT_ISSUER";
    /// `DRAFTSTORE_JWT_PUBLIC_KEY_FILE`.
    pub const DRAFTSTORE_JWT_PUBLIC_KEY_FILE: &str = "DRAFTSTORE_JWT_PUBLIC_KEY_FILE";
    /// `DRAFTSTORE_JWT_SECRET`.
    pub const DRAFTSTORE_JWT_SECRET: &str = "DRAFTSTORE_JWT_SECRET";
    /// `DRAFTSTORE_JWT_TENANT_CLAIM`.
    pub const DRAFTSTORE_JWT_TENANT_CLAIM: &str = "DRAFTSTORE_JWT_TENANT_CLAIM";
    /// `DRAFTSTORE_LOCAL_MAX_OBJECT_BYTES`.
    pub const DRAFTSTORE_LOCAL_MAX_OBJECT_BYTES: &str = "DRAFTSTORE_LOCAL_MAX_OBJECT_BYTES";
    /// `DRAFTSTORE_LOCAL_SECRET`.
    pub const DRAFTSTORE_LOCAL_SECRET: &str = "DRAFTSTORE_LOCAL_SECRET";
    /// `DRAFTSTORE_MAX_CONNECTIONS`.
    pub const DRAFTSTORE_MAX_CONNECTIONS: &str = "DRAFTSTORE_MAX_CONNECTIONS";
    /// `DRAFTSTORE_IDLE_TIMEOUT_MS`.
    pub const DRAFTSTORE_IDLE_TIMEOUT_MS: &str = "DRAFTSTORE_IDLE_TIMEOUT_MS";
    /// `DRAFTSTORE_LOG`.
    pub const DRAFTSTORE_LOG: &str = "DRAFTSTORE_LOG";
    /// `DRAFTSTORE_LOG_JSON`.
    pub const DRAFTSTORE_LOG_JSON: &str = "DRAFTSTORE_LOG_JSON";
    /// `DRAFTSTORE_MAX_BODY_BYTES`.
    pub const DRAFTSTORE_MAX_BODY_BYTES: &str = "DRAFTSTORE_MAX_BODY_BYTES";
    /// `DRAFTSTORE_MAX_CONCURRENT_STREAMS`.
    pub const DRAFTSTORE_MAX_CONCURRENT_STREAMS: &str = "DRAFTSTORE_MAX_CONCURRENT_STREAMS";
    /// `DRAFTSTORE_MAX_GRPC_MESSAGE_BYTES`.
    pub const DRAFTSTORE_MAX_GRPC_MESSAGE_BYTES: &str = "DRAFTSTORE_MAX_GRPC_MESSAGE_BYTES";
    /// `DRAFTSTORE_MAX_IN_FLIGHT`.
    pub const DRAFTSTORE_MAX_IN_FLIGHT: &str = "DRAFTSTORE_MAX_IN_FLIGHT";
    /// `DRAFTSTORE_PRECONFIRM_ON_ERROR`.
    pub const DRAFTSTORE_PRECONFIRM_ON_ERROR: &str = "DRAFTSTORE_PRECONFIRM_ON_ERROR";
    /// `DRAFTSTORE_PRECONFIRM_TIMEOUT_MS`.
    pub const DRAFTSTORE_PRECONFIRM_TIMEOUT_MS: &str = "DRAFTSTORE_PRECONFIRM_TIMEOUT_MS";
    /// `DRAFTSTORE_PRECONFIRM_URL`.
    pub const DRAFTSTORE_PRECONFIRM_URL: &str = "DRAFTSTORE_PRECONFIRM_URL";
    /// `DRAFTSTORE_WEBHOOK_POLL_MS`.
    pub const DRAFTSTORE_WEBHOOK_POLL_MS: &str = "DRAFTSTORE_WEBHOOK_POLL_MS";
    /// `DRAFTSTORE_WEBHOOK_RETRY_SCHEDULE_MS`.
    pub const DRAFTSTORE_WEBHOOK_RETRY_SCHEDULE_MS: &str = "DRAFTSTORE_WEBHOOK_RETRY_SCHEDULE_MS";
    /// `DRAFTSTORE_UPLOAD_TOKEN_SECRET`.
    pub const DRAFTSTORE_UPLOAD_TOKEN_SECRET: &str = "DRAFTSTORE_UPLOAD_TOKEN_SECRET";
    /// `DRAFTSTORE_WEBHOOK_SECRET`.
    pub const DRAFTSTORE_WEBHOOK_SECRET: &str = "DRAFTSTORE_WEBHOOK_SECRET";
    /// `DRAFTSTORE_WEBHOOK_URLS`.
    pub const DRAFTSTORE_WEBHOOK_URLS: &str = "DRAFTSTORE_WEBHOOK_URLS";
    /// `DRAFTSTORE_PUBLIC_GRPC_DISCOVERY`.
    pub const DRAFTSTORE_PUBLIC_GRPC_DISCOVERY: &str = "DRAFTSTORE_PUBLIC_GRPC_DISCOVERY";
    /// `DRAFTSTORE_PUBLIC_PATHS`.
    pub const DRAFTSTORE_PUBLIC_PATHS: &str = "DRAFTSTORE_PUBLIC_PATHS";
    /// `DRAFTSTORE_PUBLIC_URL`.
    pub const DRAFTSTORE_PUBLIC_URL: &str = "DRAFTSTORE_PUBLIC_URL";
    /// `DRAFTSTORE_RATE_LIMIT_KEY_PREFIX`.
    pub const DRAFTSTORE_RATE_LIMIT_KEY_PREFIX: &str = "DRAFTSTORE_RATE_LIMIT_KEY_PREFIX";
    /// `DRAFTSTORE_RATE_LIMIT_ON_ERROR`.
    pub const DRAFTSTORE_RATE_LIMIT_ON_ERROR: &str = "DRAFTSTORE_RATE_LIMIT_ON_ERROR";
    /// `DRAFTSTORE_RATE_LIMIT_REPLICAS`.
    pub const DRAFTSTORE_RATE_LIMIT_REPLICAS: &str = "DRAFTSTORE_RATE_LIMIT_REPLICAS";
    /// `DRAFTSTORE_RATE_LIMIT_REDIS_URL`.
    pub const DRAFTSTORE_RATE_LIMIT_REDIS_URL: &str = "DRAFTSTORE_RATE_LIMIT_REDIS_URL";
    /// `DRAFTSTORE_RATE_LIMIT_TIMEOUT_MS`.
    pub const DRAFTSTORE_RATE_LIMIT_TIMEOUT_MS: &str = "DRAFTSTORE_RATE_LIMIT_TIMEOUT_MS";
    /// `DRAFTSTORE_REQUEST_TIMEOUT_MS`.
    pub const DRAFTSTORE_REQUEST_TIMEOUT_MS: &str = "DRAFTSTORE_REQUEST_TIMEOUT_MS";
    /// `DRAFTSTORE_S3_ADDRESSING`.
    pub const DRAFTSTORE_S3_ADDRESSING: &str = "DRAFTSTORE_S3_ADDRESSING";
    /// `DRAFTSTORE_S3_BACKOFF_MS`.
    pub const DRAFTSTORE_S3_BACKOFF_MS: &str = "DRAFTSTORE_S3_BACKOFF_MS";
    /// `DRAFTSTORE_S3_CONDITIONAL_WRITES`.
    pub const DRAFTSTORE_S3_CONDITIONAL_WRITES: &str = "DRAFTSTORE_S3_CONDITIONAL_WRITES";
    /// `DRAFTSTORE_S3_CONNECT_TIMEOUT_MS`.
    pub const DRAFTSTORE_S3_CONNECT_TIMEOUT_MS: &str = "DRAFTSTORE_S3_CONNECT_TIMEOUT_MS";
    /// `DRAFTSTORE_S3_COPY_CONCURRENCY`.
    pub const DRAFTSTORE_S3_COPY_CONCURRENCY: &str = "DRAFTSTORE_S3_COPY_CONCURRENCY";
    /// `DRAFTSTORE_S3_MAX_ATTEMPTS`.
    pub const DRAFTSTORE_S3_MAX_ATTEMPTS: &str = "DRAFTSTORE_S3_MAX_ATTEMPTS";
    /// `DRAFTSTORE_S3_MAX_BACKOFF_MS`.
    pub const DRAFTSTORE_S3_MAX_BACKOFF_MS: &str = "DRAFTSTORE_S3_MAX_BACKOFF_MS";
    /// `DRAFTSTORE_S3_MULTIPART_THRESHOLD`.
    pub const DRAFTSTORE_S3_MULTIPART_THRESHOLD: &str = "DRAFTSTORE_S3_MULTIPART_THRESHOLD";
    /// `DRAFTSTORE_S3_PART_SIZE`.
    pub const DRAFTSTORE_S3_PART_SIZE: &str = "DRAFTSTORE_S3_PART_SIZE";
    /// `DRAFTSTORE_S3_PUBLIC_ENDPOINT`.
    pub const DRAFTSTORE_S3_PUBLIC_ENDPOINT: &str = "DRAFTSTORE_S3_PUBLIC_ENDPOINT";
    /// `DRAFTSTORE_S3_SSE`.
    pub const DRAFTSTORE_S3_SSE: &str = "DRAFTSTORE_S3_SSE";
    /// `DRAFTSTORE_S3_SSE_BUCKET_KEY`.
    pub const DRAFTSTORE_S3_SSE_BUCKET_KEY: &str = "DRAFTSTORE_S3_SSE_BUCKET_KEY";
    /// `DRAFTSTORE_S3_SSE_KMS_KEY_ID`.
    pub const DRAFTSTORE_S3_SSE_KMS_KEY_ID: &str = "DRAFTSTORE_S3_SSE_KMS_KEY_ID";
    /// `DRAFTSTORE_S3_TIMEOUT_MS`.
    pub const DRAFTSTORE_S3_TIMEOUT_MS: &str = "DRAFTSTORE_S3_TIMEOUT_MS";
    /// `DRAFTSTORE_SHUTDOWN_GRACE_MS`.
    pub const DRAFTSTORE_SHUTDOWN_GRACE_MS: &str = "DRAFTSTORE_SHUTDOWN_GRACE_MS";
    /// `DRAFTSTORE_STORAGE`.
    pub const DRAFTSTORE_STORAGE: &str = "DRAFTSTORE_STORAGE";
    /// `DRAFTSTORE_TLS_CERT_FILE`.
    pub const DRAFTSTORE_TLS_CERT_FILE: &str = "DRAFTSTORE_TLS_CERT_FILE";
    /// `DRAFTSTORE_TLS_KEY_FILE`.
    pub const DRAFTSTORE_TLS_KEY_FILE: &str = "DRAFTSTORE_TLS_KEY_FILE";
    /// `DRAFTSTORE_STORE_STALL_TIMEOUT_MS`.
    pub const DRAFTSTORE_STORE_STALL_TIMEOUT_MS: &str = "DRAFTSTORE_STORE_STALL_TIMEOUT_MS";
    /// `DRAFTSTORE_UI`.
    pub const DRAFTSTORE_UI: &str = "DRAFTSTORE_UI";
    /// `DRAFT_BUCKET`.
    pub const DRAFT_BUCKET: &str = "DRAFT_BUCKET";
    /// `GRPC_PORT`.
    pub const GRPC_PORT: &str = "GRPC_PORT";
    /// `HTTP_PORT`.
    pub const HTTP_PORT: &str = "HTTP_PORT";
    /// `OBJECT_LIFETIME`.
    pub const OBJECT_LIFETIME: &str = "OBJECT_LIFETIME";
    /// `UPLOAD_TTL`.
    pub const UPLOAD_TTL: &str = "UPLOAD_TTL";
}

/// Every environment variable the gateway reads (`DRAFTSTORE_LOG` is the log filter).
pub const VARIABLES: &[&str] = &[
    name::AWS_ACCESS_KEY_ID,
    name::AWS_DEFAULT_REGION,
    name::AWS_ENDPOINT_URL,
    name::AWS_ENDPOINT_URL_S3,
    name::AWS_REGION,
    name::AWS_SECRET_ACCESS_KEY,
    name::AWS_SESSION_TOKEN,
    name::BUCKET_NAME,
    name::DOWNLOAD_TTL,
    name::DRAFTSTORE_API_KEYS,
    name::DRAFTSTORE_API_KEYS_FILE,
    name::DRAFTSTORE_AUTH,
    name::DRAFTSTORE_BIND,
    name::DRAFTSTORE_CORS_ORIGINS,
    name::DRAFTSTORE_CREATE_BUCKETS,
    name::DRAFTSTORE_DATA_DIR,
    name::DRAFTSTORE_HEADER_TIMEOUT_MS,
    name::DRAFTSTORE_IDLE_TIMEOUT_MS,
    name::DRAFTSTORE_JWT_AUDIENCE,
    name::DRAFTSTORE_JWT_ISSUER,
    name::DRAFTSTORE_JWT_PUBLIC_KEY_FILE,
    name::DRAFTSTORE_JWT_SECRET,
    name::DRAFTSTORE_JWT_TENANT_CLAIM,
    name::DRAFTSTORE_LOCAL_MAX_OBJECT_BYTES,
    name::DRAFTSTORE_LOCAL_SECRET,
    name::DRAFTSTORE_LOG,
    name::DRAFTSTORE_LOG_JSON,
    name::DRAFTSTORE_MAX_BODY_BYTES,
    name::DRAFTSTORE_MAX_CONNECTIONS,
    name::DRAFTSTORE_MAX_CONCURRENT_STREAMS,
    name::DRAFTSTORE_MAX_GRPC_MESSAGE_BYTES,
    name::DRAFTSTORE_MAX_IN_FLIGHT,
    name::DRAFTSTORE_PRECONFIRM_ON_ERROR,
    name::DRAFTSTORE_PRECONFIRM_TIMEOUT_MS,
    name::DRAFTSTORE_PRECONFIRM_URL,
    name::DRAFTSTORE_PUBLIC_GRPC_DISCOVERY,
    name::DRAFTSTORE_PUBLIC_PATHS,
    name::DRAFTSTORE_PUBLIC_URL,
    name::DRAFTSTORE_RATE_LIMIT_KEY_PREFIX,
    name::DRAFTSTORE_RATE_LIMIT_ON_ERROR,
    name::DRAFTSTORE_RATE_LIMIT_REDIS_URL,
    name::DRAFTSTORE_RATE_LIMIT_REPLICAS,
    name::DRAFTSTORE_RATE_LIMIT_TIMEOUT_MS,
    name::DRAFTSTORE_REQUEST_TIMEOUT_MS,
    name::DRAFTSTORE_S3_ADDRESSING,
    name::DRAFTSTORE_S3_BACKOFF_MS,
    name::DRAFTSTORE_S3_CONDITIONAL_WRITES,
    name::DRAFTSTORE_S3_CONNECT_TIMEOUT_MS,
    name::DRAFTSTORE_S3_COPY_CONCURRENCY,
    name::DRAFTSTORE_S3_MAX_ATTEMPTS,
    name::DRAFTSTORE_S3_MAX_BACKOFF_MS,
    name::DRAFTSTORE_S3_MULTIPART_THRESHOLD,
    name::DRAFTSTORE_S3_PART_SIZE,
    name::DRAFTSTORE_S3_PUBLIC_ENDPOINT,
    name::DRAFTSTORE_S3_SSE,
    name::DRAFTSTORE_S3_SSE_BUCKET_KEY,
    name::DRAFTSTORE_S3_SSE_KMS_KEY_ID,
    name::DRAFTSTORE_S3_TIMEOUT_MS,
    name::DRAFTSTORE_SHUTDOWN_GRACE_MS,
    name::DRAFTSTORE_STORAGE,
    name::DRAFTSTORE_STORE_STALL_TIMEOUT_MS,
    name::DRAFTSTORE_UPLOAD_TOKEN_SECRET,
    name::DRAFTSTORE_WEBHOOK_POLL_MS,
    name::DRAFTSTORE_WEBHOOK_RETRY_SCHEDULE_MS,
    name::DRAFTSTORE_WEBHOOK_SECRET,
    name::DRAFTSTORE_WEBHOOK_URLS,
    name::DRAFTSTORE_TLS_CERT_FILE,
    name::DRAFTSTORE_TLS_KEY_FILE,
    name::DRAFTSTORE_UI,
    name::DRAFT_BUCKET,
    name::GRPC_PORT,
    name::HTTP_PORT,
    name::OBJECT_LIFETIME,
    name::UPLOAD_TTL,
];

/// The variables the Kubernetes manifests must set for S3 storage: the bucket. Credentials are
/// not required: without `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` they come from the AWS
/// credential chain ([`CHAIN_VARIABLES`]).
pub const REQUIRED: &[&str] = &["BUCKET_NAME"];

/// The variables the AWS credential chain reads when no static keys are set (the AWS SDKs'
/// names and order: profiles, web identity, container credentials, IMDSv2). The gateway does
/// not parse them itself; `AWS_ENDPOINT_URL` never steers STS (only `AWS_ENDPOINT_URL_STS`).
pub const CHAIN_VARIABLES: &[&str] = &[
    "AWS_CONFIG_FILE",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_EC2_METADATA_DISABLED",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE",
    "AWS_ENDPOINT_URL_STS",
    "AWS_PROFILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
];

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

/// [`number`], but a variable set to an empty or blank value is refused rather than read as
/// unset: for settings where an empty value (a Secret or ConfigMap key that resolves to
/// nothing) would silently mean the default, and the deployment meant something else.
///
/// # Errors
/// Empty or blank, or not a whole number in `range`: one line naming `name`.
pub(crate) fn number_if_set(
    get: Lookup<'_>,
    name: &str,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<u64, ConfigError> {
    if get(name).is_some_and(|v| v.trim().is_empty()) {
        return Err(err(format!(
            "{name} is set but empty: give a whole number in {}..={}, or unset it for {default}",
            range.start(),
            range.end()
        )));
    }
    number(get, name, default, range)
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::BTreeSet;

    /// The list above is what the parsers really read: record every lookup of a full config.
    #[test]
    fn variables_lists_exactly_what_is_read() {
        let seen = RefCell::new(BTreeSet::new());
        let read_with = |set: &[(&str, &str)]| {
            let lookup = |k: &str| {
                seen.borrow_mut().insert(k.to_owned());
                set.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| (*v).to_owned())
            };
            ServeConfig::from_lookup(&lookup).unwrap();
        };
        // S3.
        read_with(&[
            ("AWS_ACCESS_KEY_ID", "x"),
            ("AWS_SECRET_ACCESS_KEY", "x"),
            ("GRPC_PORT", "9090"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:9000"),
            ("DRAFTSTORE_S3_SSE", "aws:kms"),
            ("DRAFTSTORE_S3_SSE_KMS_KEY_ID", "alias/k"),
            ("DRAFTSTORE_S3_SSE_BUCKET_KEY", "true"),
        ]);
        // The local store's variables, read when no S3 variable is set.
        read_with(&[]);
        // The API key variables, read when DRAFTSTORE_AUTH=api-keys.
        read_with(&[
            ("DRAFTSTORE_AUTH", "api-keys"),
            ("DRAFTSTORE_API_KEYS_FILE", "/keys"),
        ]);
        // The JWT variables.
        read_with(&[
            ("DRAFTSTORE_AUTH", "jwt"),
            ("DRAFTSTORE_JWT_SECRET", "x"),
            ("DRAFTSTORE_JWT_ISSUER", "x"),
            ("DRAFTSTORE_JWT_AUDIENCE", "x"),
        ]);
        let mut read = seen.into_inner();
        read.insert("DRAFTSTORE_LOG".to_owned());
        let listed: BTreeSet<String> = VARIABLES.iter().map(|v| (*v).to_owned()).collect();
        assert_eq!(listed.len(), VARIABLES.len(), "no duplicates");
        assert_eq!(read, listed);
        assert!(REQUIRED.iter().all(|r| listed.contains(*r)));
        assert!(CHAIN_VARIABLES.iter().all(|c| !listed.contains(*c)));
    }
}
