//! How the gateway reaches S3: the AWS tools' variables plus `DRAFTSTORE_S3_*`.

use super::{err, flag, number, ConfigError, Lookup};
use draftstore_signer::{Addressing, Credentials, Endpoint};
use std::fmt;
use std::time::Duration;

/// Where the S3 credentials come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CredentialSource {
    /// `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`): used as given,
    /// never refreshed. `Debug` hides the secret and the token.
    Static(Credentials),
    /// The AWS SDKs' chain (profiles, web identity, container credentials, IMDSv2), fetched at
    /// start and refreshed before they expire (see `s3::credentials`).
    Chain,
}

/// Server-side encryption the gateway asks S3 for on every object it writes or has written
/// (presigned PUTs, copies into main, multipart creates).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sse {
    /// `x-amz-server-side-encryption: AES256` (SSE-S3).
    Aes256,
    /// `x-amz-server-side-encryption: aws:kms` (SSE-KMS), with the key (else the account's
    /// default `aws/s3` key) and the bucket-key setting (else the bucket's default).
    Kms {
        /// `DRAFTSTORE_S3_SSE_KMS_KEY_ID`: key id, ARN or alias; `None` for `aws/s3`.
        key_id: Option<String>,
        /// `DRAFTSTORE_S3_SSE_BUCKET_KEY`; `None` for the bucket's default.
        bucket_key: Option<bool>,
    },
}

impl Sse {
    /// The request headers, lowercase names, sorted by name.
    #[must_use]
    pub fn headers(&self) -> Vec<(String, String)> {
        match self {
            Self::Aes256 => vec![(SSE_HEADER.into(), "AES256".into())],
            Self::Kms { key_id, bucket_key } => {
                let mut out = vec![(SSE_HEADER.into(), "aws:kms".into())];
                if let Some(id) = key_id {
                    out.push((format!("{SSE_HEADER}-aws-kms-key-id"), id.clone()));
                }
                if let Some(on) = bucket_key {
                    out.push((format!("{SSE_HEADER}-bucket-key-enabled"), on.to_string()));
                }
                out.sort();
                out
            }
        }
    }
}

/// The S3 header naming the server-side encryption.
pub const SSE_HEADER: &str = "x-amz-server-side-encryption";

/// How the gateway reaches S3.
#[derive(Clone)]
pub struct S3Config {
    /// The region of the signing scope.
    pub region: String,
    /// Where the access key and secret come from: static (hidden by `Debug`) or the AWS chain.
    pub credentials: CredentialSource,
    /// Encryption at rest asked of S3, or `None` for the bucket's default.
    pub sse: Option<Sse>,
    /// Where the gateway sends its own requests.
    pub endpoint: Endpoint,
    /// Where clients are sent by presigned URLs (another address when they reach S3 elsewhere).
    pub public_endpoint: Endpoint,
    /// Path-style or virtual-hosted bucket addressing.
    pub addressing: Addressing,
    /// Time for one HTTP attempt, headers and body.
    pub request_timeout: Duration,
    /// Time to open a connection.
    pub connect_timeout: Duration,
    /// Attempts of one idempotent call (1 = no retry).
    pub max_attempts: u32,
    /// First backoff; doubles per attempt, with full jitter, capped at `max_backoff`.
    pub base_backoff: Duration,
    /// The longest backoff between attempts.
    pub max_backoff: Duration,
    /// Objects larger than this are copied in parts (S3 copies at most 5 GiB in one call).
    pub multipart_threshold: u64,
    /// Bytes per part of a multipart copy.
    pub part_size: u64,
    /// Parts copied at once.
    pub copy_concurrency: usize,
    /// The store enforces `If-None-Match`/`If-Match` on copies and ETags in batch deletes.
    pub conditional_writes: bool,
}

impl fmt::Debug for S3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Config")
            .field("region", &self.region)
            .field("credentials", &self.credentials)
            .field("endpoint", &self.endpoint.authority())
            .field("public_endpoint", &self.public_endpoint.authority())
            .field("addressing", &self.addressing)
            .field("sse", &self.sse)
            .finish_non_exhaustive()
    }
}

const GIB: u64 = 1024 * 1024 * 1024;
const MIB: u64 = 1024 * 1024;

/// `AWS_REGION` (else `AWS_DEFAULT_REGION`, else `us-east-1`), as the AWS tools read it.
///
/// # Errors
/// A value that cannot be a region name.
pub fn region(get: Lookup<'_>) -> Result<String, ConfigError> {
    let var = |k: &str| get(k).filter(|v| !v.trim().is_empty());
    let region = var("AWS_REGION")
        .or_else(|| var("AWS_DEFAULT_REGION"))
        .unwrap_or_else(|| "us-east-1".into());
    if region
        .chars()
        .any(|c| c == '/' || c.is_whitespace() || c.is_control())
    {
        return Err(err("AWS_REGION must be a region name such as us-east-1"));
    }
    Ok(region)
}

/// Static keys when `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` are both set (with
/// `AWS_SESSION_TOKEN` when set); the AWS credential chain when neither is.
///
/// # Errors
/// Only one of the two keys set, or a malformed key (the message never holds a value).
pub fn credentials(get: Lookup<'_>) -> Result<CredentialSource, ConfigError> {
    let var = |k: &str| get(k).filter(|v| !v.trim().is_empty());
    match (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
        (Some(access_key), Some(secret)) => {
            Credentials::new(access_key, secret, var("AWS_SESSION_TOKEN"))
                .map(CredentialSource::Static)
                .map_err(|e| err(format!("AWS credentials: {e}")))
        }
        (None, None) => Ok(CredentialSource::Chain),
        _ => Err(err(
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must both be set, or neither (to use the role, profile or instance credentials)",
        )),
    }
}

/// `DRAFTSTORE_S3_SSE` (`AES256` or `aws:kms`), `DRAFTSTORE_S3_SSE_KMS_KEY_ID` and
/// `DRAFTSTORE_S3_SSE_BUCKET_KEY` (`true|false`), the last two with `aws:kms` only.
///
/// # Errors
/// An unknown mode; a KMS setting without `aws:kms`; a key id with spaces or controls.
pub fn sse(get: Lookup<'_>) -> Result<Option<Sse>, ConfigError> {
    let var = |k: &str| get(k).filter(|v| !v.trim().is_empty());
    let key_id = var("DRAFTSTORE_S3_SSE_KMS_KEY_ID").map(|v| v.trim().to_owned());
    let bucket_key = match var("DRAFTSTORE_S3_SSE_BUCKET_KEY") {
        None => None,
        Some(_) => Some(flag(get, "DRAFTSTORE_S3_SSE_BUCKET_KEY", false)?),
    };
    if key_id
        .as_deref()
        .is_some_and(|k| k.chars().any(|c| c.is_whitespace() || c.is_control()))
    {
        return Err(err(
            "DRAFTSTORE_S3_SSE_KMS_KEY_ID must be a KMS key id, ARN or alias without spaces",
        ));
    }
    match var("DRAFTSTORE_S3_SSE").as_deref().map(str::trim) {
        Some("aws:kms") => Ok(Some(Sse::Kms { key_id, bucket_key })),
        mode @ (None | Some("AES256")) => {
            if key_id.is_some() || bucket_key.is_some() {
                return Err(err(
                    "DRAFTSTORE_S3_SSE_KMS_KEY_ID and DRAFTSTORE_S3_SSE_BUCKET_KEY need DRAFTSTORE_S3_SSE=aws:kms",
                ));
            }
            Ok(mode.map(|_| Sse::Aes256))
        }
        Some(_) => Err(err("DRAFTSTORE_S3_SSE must be AES256 or aws:kms")),
    }
}

impl S3Config {
    /// Reads the S3 settings. Without `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` the
    /// credentials come from the AWS credential chain when the storage starts.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first bad or missing variable.
    pub fn from_lookup(get: Lookup<'_>) -> Result<Self, ConfigError> {
        let var = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        let region = region(get)?;
        let credentials = credentials(get)?;
        let sse = sse(get)?;
        let custom = var("AWS_ENDPOINT_URL_S3")
            .map(|v| ("AWS_ENDPOINT_URL_S3", v))
            .or_else(|| var("AWS_ENDPOINT_URL").map(|v| ("AWS_ENDPOINT_URL", v)));
        let endpoint = match &custom {
            Some((name, url)) => Endpoint::parse(url).map_err(|e| err(format!("{name}: {e}")))?,
            None => Endpoint::parse(&format!("https://s3.{region}.amazonaws.com"))
                .map_err(|e| err(format!("AWS_REGION: {e}")))?,
        };
        let public_endpoint = match var("DRAFTSTORE_S3_PUBLIC_ENDPOINT") {
            Some(url) => Endpoint::parse(&url)
                .map_err(|e| err(format!("DRAFTSTORE_S3_PUBLIC_ENDPOINT: {e}")))?,
            None => endpoint.clone(),
        };
        let addressing = match var("DRAFTSTORE_S3_ADDRESSING").as_deref() {
            None if custom.is_some() => Addressing::Path,
            None => Addressing::VirtualHost,
            Some("path") => Addressing::Path,
            Some("virtual") => Addressing::VirtualHost,
            Some(_) => return Err(err("DRAFTSTORE_S3_ADDRESSING must be 'path' or 'virtual'")),
        };
        if addressing == Addressing::VirtualHost {
            // `bucket.<host>` must be a DNS name: refused here, not on every call after start.
            let public =
                var("DRAFTSTORE_S3_PUBLIC_ENDPOINT").map(|_| "DRAFTSTORE_S3_PUBLIC_ENDPOINT");
            let endpoint_name = custom.as_ref().map_or("AWS_REGION", |(name, _)| *name);
            for (name, e) in [
                (endpoint_name, &endpoint),
                (public.unwrap_or(endpoint_name), &public_endpoint),
            ] {
                if !can_carry_bucket_subdomain(e) {
                    return Err(err(format!(
                        "DRAFTSTORE_S3_ADDRESSING=virtual needs a DNS endpoint host, but {name} is {}: set DRAFTSTORE_S3_ADDRESSING=path",
                        e.host()
                    )));
                }
            }
        }
        let number = |name: &str, default: u64, range: std::ops::RangeInclusive<u64>| {
            number(get, name, default, range)
        };
        let part_size = number("DRAFTSTORE_S3_PART_SIZE", 256 * MIB, 5 * MIB..=5 * GIB)?;
        let conditional_writes = match var("DRAFTSTORE_S3_CONDITIONAL_WRITES").as_deref() {
            None | Some("true") => true,
            Some("false") => false,
            Some(_) => {
                return Err(err(
                    "DRAFTSTORE_S3_CONDITIONAL_WRITES must be 'true' or 'false'",
                ))
            }
        };
        let base_backoff = number("DRAFTSTORE_S3_BACKOFF_MS", 100, 1..=10_000)?;
        let max_backoff = number("DRAFTSTORE_S3_MAX_BACKOFF_MS", 5_000, 1..=60_000)?;
        if max_backoff < base_backoff {
            return Err(err(format!(
                "DRAFTSTORE_S3_MAX_BACKOFF_MS ({max_backoff}) must be at least DRAFTSTORE_S3_BACKOFF_MS ({base_backoff})"
            )));
        }
        Ok(Self {
            region,
            credentials,
            sse,
            endpoint,
            public_endpoint,
            addressing,
            request_timeout: Duration::from_millis(number(
                "DRAFTSTORE_S3_TIMEOUT_MS",
                30_000,
                100..=3_600_000,
            )?),
            connect_timeout: Duration::from_millis(number(
                "DRAFTSTORE_S3_CONNECT_TIMEOUT_MS",
                3_000,
                50..=60_000,
            )?),
            max_attempts: u32::try_from(number("DRAFTSTORE_S3_MAX_ATTEMPTS", 4, 1..=10)?)
                .unwrap_or(4),
            base_backoff: Duration::from_millis(base_backoff),
            max_backoff: Duration::from_millis(max_backoff),
            multipart_threshold: number(
                "DRAFTSTORE_S3_MULTIPART_THRESHOLD",
                5 * GIB,
                5 * MIB..=5 * GIB,
            )?,
            part_size,
            copy_concurrency: usize::try_from(number("DRAFTSTORE_S3_COPY_CONCURRENCY", 8, 1..=64)?)
                .unwrap_or(8),
            conditional_writes,
        })
    }

    /// # Errors
    /// As [`S3Config::from_lookup`].
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(&|k| std::env::var(k).ok())
    }
}

/// True when `bucket.<host>` can be a DNS name: not an IP address, not `localhost`.
fn can_carry_bucket_subdomain(endpoint: &Endpoint) -> bool {
    !endpoint.is_ip() && !endpoint.host().eq_ignore_ascii_case("localhost")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(pairs: &[(&str, &str)]) -> Result<S3Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        S3Config::from_lookup(&|k| map.get(k).cloned())
    }

    const CREDS: [(&str, &str); 2] = [
        ("AWS_ACCESS_KEY_ID", "AK"),
        ("AWS_SECRET_ACCESS_KEY", "very-secret"),
    ];

    #[test]
    fn aws_defaults_and_custom_endpoints() {
        let aws = parse(&CREDS).unwrap();
        assert_eq!(aws.endpoint.authority(), "s3.us-east-1.amazonaws.com");
        assert_eq!(aws.addressing, Addressing::VirtualHost);
        let mut pairs = CREDS.to_vec();
        pairs.extend([
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:9000"),
            ("AWS_REGION", "eu-west-1"),
        ]);
        let minio = parse(&pairs).unwrap();
        assert_eq!(
            (minio.endpoint.authority(), minio.addressing),
            ("127.0.0.1:9000", Addressing::Path)
        );
        pairs.push(("AWS_ENDPOINT_URL_S3", "http://10.0.0.1:8333"));
        pairs.push(("DRAFTSTORE_S3_PUBLIC_ENDPOINT", "https://files.example.com"));
        let both = parse(&pairs).unwrap();
        assert_eq!(
            both.endpoint.authority(),
            "10.0.0.1:8333",
            "the S3-specific variable wins"
        );
        assert_eq!(both.public_endpoint.authority(), "files.example.com");
    }

    #[test]
    fn bad_values_name_the_variable_and_hide_secrets() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("AWS_ACCESS_KEY_ID", "AK")], "AWS_SECRET_ACCESS_KEY"),
            (
                &[("AWS_SECRET_ACCESS_KEY", "very-secret")],
                "AWS_ACCESS_KEY_ID",
            ),
            (&[("DRAFTSTORE_S3_SSE", "aes256")], "DRAFTSTORE_S3_SSE"),
            (
                &[("DRAFTSTORE_S3_SSE_KMS_KEY_ID", "alias/x")],
                "DRAFTSTORE_S3_SSE=aws:kms",
            ),
            (
                &[
                    ("DRAFTSTORE_S3_SSE", "aws:kms"),
                    ("DRAFTSTORE_S3_SSE_BUCKET_KEY", "yes"),
                ],
                "DRAFTSTORE_S3_SSE_BUCKET_KEY",
            ),
            (
                &[
                    ("DRAFTSTORE_S3_SSE", "aws:kms"),
                    ("DRAFTSTORE_S3_SSE_KMS_KEY_ID", "alias/a b"),
                ],
                "DRAFTSTORE_S3_SSE_KMS_KEY_ID",
            ),
            (
                &[("AWS_ENDPOINT_URL", "localhost:9000")],
                "AWS_ENDPOINT_URL",
            ),
            (
                &[("DRAFTSTORE_S3_ADDRESSING", "dns")],
                "DRAFTSTORE_S3_ADDRESSING",
            ),
            (
                &[("DRAFTSTORE_S3_TIMEOUT_MS", "fast")],
                "DRAFTSTORE_S3_TIMEOUT_MS",
            ),
            (
                &[("DRAFTSTORE_S3_PART_SIZE", "1024")],
                "DRAFTSTORE_S3_PART_SIZE",
            ),
            (
                &[("DRAFTSTORE_S3_MAX_ATTEMPTS", "0")],
                "DRAFTSTORE_S3_MAX_ATTEMPTS",
            ),
            (
                &[("DRAFTSTORE_S3_CONDITIONAL_WRITES", "maybe")],
                "DRAFTSTORE_S3_CONDITIONAL_WRITES",
            ),
            (&[("AWS_REGION", "us east")], "AWS_REGION"),
        ];
        for (extra, name) in cases {
            let mut pairs = if name.starts_with("AWS_ACCESS") || name.starts_with("AWS_SECRET") {
                vec![]
            } else {
                CREDS.to_vec()
            };
            pairs.extend_from_slice(extra);
            let e = parse(&pairs).unwrap_err().to_string();
            assert!(e.contains(name), "{name}: {e}");
            assert!(!e.contains("very-secret"));
            assert_eq!(e.lines().count(), 1);
        }
        let debug = format!("{:?}", parse(&CREDS).unwrap());
        assert!(!debug.contains("very-secret"), "{debug}");
    }

    #[test]
    fn no_keys_means_the_credential_chain_and_static_keys_stay_static() {
        let chain = parse(&[("BUCKET_NAME", "photos")]).unwrap();
        assert_eq!(chain.credentials, CredentialSource::Chain);
        let mut pairs = CREDS.to_vec();
        pairs.push(("AWS_SESSION_TOKEN", "tok"));
        let CredentialSource::Static(keys) = parse(&pairs).unwrap().credentials else {
            panic!("static keys expected");
        };
        assert_eq!(
            (keys.access_key(), keys.session_token()),
            ("AK", Some("tok"))
        );
    }

    #[test]
    fn sse_settings_become_the_s3_headers() {
        let headers = |pairs: &[(&str, &str)]| {
            parse(pairs)
                .unwrap()
                .sse
                .map(|s| s.headers())
                .unwrap_or_default()
        };
        assert!(headers(&[]).is_empty());
        assert_eq!(
            headers(&[("DRAFTSTORE_S3_SSE", "AES256")]),
            vec![(SSE_HEADER.to_owned(), "AES256".to_owned())]
        );
        assert_eq!(
            headers(&[
                ("DRAFTSTORE_S3_SSE", "aws:kms"),
                ("DRAFTSTORE_S3_SSE_KMS_KEY_ID", "alias/uploads"),
                ("DRAFTSTORE_S3_SSE_BUCKET_KEY", "true"),
            ]),
            vec![
                (SSE_HEADER.to_owned(), "aws:kms".to_owned()),
                (
                    "x-amz-server-side-encryption-aws-kms-key-id".to_owned(),
                    "alias/uploads".to_owned()
                ),
                (
                    "x-amz-server-side-encryption-bucket-key-enabled".to_owned(),
                    "true".to_owned()
                ),
            ]
        );
    }
}
