//! Configuration, parsed once from a lookup function (the environment, with command-line flags
//! layered on top). Pure: tests pass a map. A bad value is one line naming the variable, never
//! a silent fall-back to a default; secrets never appear in messages or `Debug`.

mod s3;
mod serve;

pub use s3::{credentials, region, sse, CredentialSource, S3Config, Sse, SSE_HEADER};
pub use serve::{Limits, LocalConfig, ServeConfig, StorageChoice};

use std::fmt;

/// Every environment variable the gateway reads (`DRAFTSTORE_LOG` is the log filter).
pub const VARIABLES: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_REGION",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "BUCKET_NAME",
    "DOWNLOAD_TTL",
    "DRAFTSTORE_API_KEYS",
    "DRAFTSTORE_API_KEYS_FILE",
    "DRAFTSTORE_AUTH",
    "DRAFTSTORE_BIND",
    "DRAFTSTORE_CORS_ORIGINS",
    "DRAFTSTORE_DATA_DIR",
    "DRAFTSTORE_HEADER_TIMEOUT_MS",
    "DRAFTSTORE_JWT_AUDIENCE",
    "DRAFTSTORE_JWT_ISSUER",
    "DRAFTSTORE_JWT_PUBLIC_KEY_FILE",
    "DRAFTSTORE_JWT_SECRET",
    "DRAFTSTORE_JWT_TENANT_CLAIM",
    "DRAFTSTORE_LOCAL_MAX_OBJECT_BYTES",
    "DRAFTSTORE_LOCAL_SECRET",
    "DRAFTSTORE_LOG",
    "DRAFTSTORE_LOG_JSON",
    "DRAFTSTORE_MAX_BODY_BYTES",
    "DRAFTSTORE_MAX_CONCURRENT_STREAMS",
    "DRAFTSTORE_MAX_GRPC_MESSAGE_BYTES",
    "DRAFTSTORE_MAX_IN_FLIGHT",
    "DRAFTSTORE_PUBLIC_PATHS",
    "DRAFTSTORE_PUBLIC_URL",
    "DRAFTSTORE_REQUEST_TIMEOUT_MS",
    "DRAFTSTORE_S3_ADDRESSING",
    "DRAFTSTORE_S3_BACKOFF_MS",
    "DRAFTSTORE_S3_CONDITIONAL_WRITES",
    "DRAFTSTORE_S3_CONNECT_TIMEOUT_MS",
    "DRAFTSTORE_S3_COPY_CONCURRENCY",
    "DRAFTSTORE_S3_MAX_ATTEMPTS",
    "DRAFTSTORE_S3_MAX_BACKOFF_MS",
    "DRAFTSTORE_S3_MULTIPART_THRESHOLD",
    "DRAFTSTORE_S3_PART_SIZE",
    "DRAFTSTORE_S3_PUBLIC_ENDPOINT",
    "DRAFTSTORE_S3_SSE",
    "DRAFTSTORE_S3_SSE_BUCKET_KEY",
    "DRAFTSTORE_S3_SSE_KMS_KEY_ID",
    "DRAFTSTORE_S3_TIMEOUT_MS",
    "DRAFTSTORE_SHUTDOWN_GRACE_MS",
    "DRAFTSTORE_STORAGE",
    "DRAFT_BUCKET",
    "GRPC_PORT",
    "HTTP_PORT",
    "OBJECT_LIFETIME",
    "UPLOAD_TTL",
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
