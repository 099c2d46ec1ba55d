//! The AWS SDKs' credential chain, from `aws-config`'s providers, feeding our own signer.
//!
//! Order and variables as the AWS SDKs document them (static keys are handled before this,
//! by the configuration): the shared `config`/`credentials` files with `AWS_PROFILE`
//! (`AWS_CONFIG_FILE`, `AWS_SHARED_CREDENTIALS_FILE`), web identity (IRSA:
//! `AWS_WEB_IDENTITY_TOKEN_FILE`, `AWS_ROLE_ARN`, STS at `AWS_ENDPOINT_URL_STS` or AWS's own),
//! container credentials (EKS Pod Identity, ECS: `AWS_CONTAINER_CREDENTIALS_FULL_URI` or
//! `_RELATIVE_URI`, `AWS_CONTAINER_AUTHORIZATION_TOKEN[_FILE]`), then IMDSv2
//! (`AWS_EC2_METADATA_SERVICE_ENDPOINT`, `AWS_EC2_METADATA_DISABLED`).
//!
//! The providers' HTTP client is `aws-smithy-http-client` on rustls with ring, the same TLS
//! stack and crypto provider as the gateway's own S3 client.

use aws_config::provider_config::ProviderConfig;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
use draftstore_signer::Credentials;
use std::fmt;
use std::time::{Duration, Instant, UNIX_EPOCH};

/// Credentials the chain found.
pub struct Fetched {
    /// The key pair and session token (hidden by `Debug`).
    pub credentials: Credentials,
    /// Unix seconds after which S3 refuses them; `None` for keys that do not expire.
    pub expires_at: Option<i64>,
    /// Which provider gave them (`profile`, `web identity`, `container`, `IMDSv2`).
    pub source: &'static str,
}

/// No credentials: one line naming every provider tried and why each gave none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainError(pub String);

impl fmt::Display for ChainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ChainError {}

/// The providers, in the SDKs' order, ready to ask.
pub struct Chain {
    providers: Vec<(&'static str, SharedCredentialsProvider)>,
}

impl fmt::Debug for Chain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.providers.iter().map(|(n, _)| *n).collect();
        f.debug_struct("Chain").field("providers", &names).finish()
    }
}

impl Chain {
    /// The chain for `region` (STS's regional endpoint). Reads its variables from the process
    /// environment each time it is asked.
    #[must_use]
    pub fn new(region: &str) -> Self {
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(Provider::Rustls(CryptoMode::Ring))
            .build_https();
        let conf = ProviderConfig::empty()
            .with_http_client(http)
            .with_region(Some(aws_config::Region::new(region.to_owned())));
        let profile = aws_config::profile::ProfileFileCredentialsProvider::builder()
            .configure(&conf)
            .build();
        let web_identity =
            aws_config::web_identity_token::WebIdentityTokenCredentialsProvider::builder()
                .configure(&conf)
                .build();
        let container = aws_config::ecs::EcsCredentialsProvider::builder()
            .configure(&conf)
            .build();
        let imds = aws_config::imds::credentials::ImdsCredentialsProvider::builder()
            .configure(&conf)
            .build();
        Self {
            providers: vec![
                ("profile", SharedCredentialsProvider::new(profile)),
                ("web identity", SharedCredentialsProvider::new(web_identity)),
                ("container", SharedCredentialsProvider::new(container)),
                ("IMDSv2", SharedCredentialsProvider::new(imds)),
            ],
        }
    }

    /// A chain of the given providers, in order (tests).
    #[cfg(test)]
    pub(crate) fn of(providers: Vec<(&'static str, SharedCredentialsProvider)>) -> Self {
        Self { providers }
    }

    /// Asks each provider in turn until one has credentials, giving up after `budget`.
    ///
    /// # Errors
    /// No provider had credentials, one failed (its answer ends the chain, as in the SDKs),
    /// or the budget ran out: the message names what was tried.
    pub async fn fetch(&self, budget: Duration) -> Result<Fetched, ChainError> {
        let deadline = Instant::now() + budget;
        let mut tried = Vec::new();
        for (name, provider) in &self.providers {
            let left = deadline.saturating_duration_since(Instant::now());
            let answer = tokio::time::timeout(left, provider.provide_credentials()).await;
            match answer {
                Ok(Ok(found)) => return convert(name, &found),
                Ok(Err(e @ CredentialsError::CredentialsNotLoaded(_))) => {
                    tried.push(format!("{name} ({})", causes(&e)));
                }
                Ok(Err(e)) => {
                    tried.push(format!("{name} failed: {}", causes(&e)));
                    return Err(no_credentials(&tried));
                }
                Err(_) => {
                    tried.push(format!(
                        "{name} (no answer within {} ms)",
                        budget.as_millis()
                    ));
                    return Err(no_credentials(&tried));
                }
            }
        }
        Err(no_credentials(&tried))
    }
}

fn no_credentials(tried: &[String]) -> ChainError {
    ChainError(format!(
        "no AWS credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY unset; tried {}",
        tried.join(", ")
    ))
}

fn convert(
    source: &'static str,
    found: &aws_credential_types::Credentials,
) -> Result<Fetched, ChainError> {
    // An empty token is no token (the container and IMDS formats require the field).
    let token = found.session_token().filter(|t| !t.is_empty());
    let credentials = Credentials::new(
        found.access_key_id(),
        found.secret_access_key(),
        token.map(str::to_owned),
    )
    .map_err(|e| ChainError(format!("{source} gave unusable credentials: {e}")))?;
    let expires_at = found
        .expiry()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    Ok(Fetched {
        credentials,
        expires_at,
        source,
    })
}

/// An error and its causes on one line.
fn causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        let part = cause.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        next = cause.source();
    }
    text.replace(['\n', '\r'], " ")
}

/// Keeps `AWS_ENDPOINT_URL` (the object store's endpoint, already read into the S3
/// configuration) from steering the chain's STS calls: the AWS SDKs would send
/// AssumeRoleWithWebIdentity there. STS follows `AWS_ENDPOINT_URL_STS` or AWS's default.
/// Call before any thread starts (it edits the process environment).
pub fn keep_sts_off_the_s3_endpoint() {
    std::env::remove_var("AWS_ENDPOINT_URL");
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    #[test]
    fn an_empty_token_is_none_and_the_expiry_is_unix_seconds() {
        let at = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let found = aws_credential_types::Credentials::new(
            "AK",
            "secret",
            Some(String::new()),
            Some(at),
            "test",
        );
        let fetched = convert("container", &found).unwrap();
        assert_eq!(fetched.credentials.session_token(), None);
        assert_eq!(fetched.expires_at, Some(1_800_000_000));
        let with_token = aws_credential_types::Credentials::new(
            "AK",
            "secret",
            Some("tok".into()),
            None,
            "test",
        );
        let fetched = convert("profile", &with_token).unwrap();
        assert_eq!(
            (fetched.credentials.session_token(), fetched.expires_at),
            (Some("tok"), None)
        );
        let bad = aws_credential_types::Credentials::new(
            "A K",
            "secret",
            None,
            Some(SystemTime::now()),
            "test",
        );
        let e = convert("IMDSv2", &bad).err().unwrap();
        assert!(e.0.starts_with("IMDSv2 gave unusable credentials"), "{e}");
        assert!(!e.0.contains("secret"));
    }

    #[test]
    fn causes_are_one_line_without_repeats() {
        let inner = std::io::Error::other("connection refused\nby peer");
        let outer = CredentialsError::provider_error(inner);
        let text = causes(&outer);
        assert_eq!(
            text,
            "an error occurred while loading credentials: connection refused by peer"
        );
    }
}
