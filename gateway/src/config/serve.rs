//! `gateway serve`'s settings: the original DraftStore's variables keep their meaning.

use super::{err, flag, number, ConfigError, Lookup, S3Config};
use draftstore_core::Buckets;
use draftstore_signer::Expiry;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Request and connection limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest REST request body (JSON requests are small).
    pub max_body: usize,
    /// Largest gRPC message.
    pub max_grpc_message: usize,
    /// Time for one request, handler included.
    pub request_timeout: Duration,
    /// Time for a client to send its request head.
    pub header_timeout: Duration,
    pub max_concurrent_streams: u32,
    pub max_header_list: u32,
    /// Requests handled at once; more wait up to `request_timeout`, then get 503.
    pub max_in_flight: usize,
}

/// The embedded local store's settings. `Debug` hides the signing secret.
#[derive(Clone, PartialEq, Eq)]
pub struct LocalConfig {
    pub data_dir: PathBuf,
    /// Base of the presigned URLs it hands out (what clients can reach).
    pub public_url: String,
    /// Signing secret; made at first start and kept in the data folder when unset.
    pub secret: Option<String>,
    /// Largest object a presigned PUT may store.
    pub max_object: u64,
}

impl std::fmt::Debug for LocalConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalConfig")
            .field("data_dir", &self.data_dir)
            .field("public_url", &self.public_url)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("max_object", &self.max_object)
            .finish()
    }
}

/// Where objects live.
#[derive(Debug, Clone)]
pub enum StorageChoice {
    S3(Box<S3Config>),
    Local(LocalConfig),
}

/// Variables that mean "use S3": any of them set, without `--storage local`, selects S3, and
/// S3 then needs credentials, static or from the AWS chain (none found is an error at start,
/// never a silent fall-back).
const S3_SIGNALS: [&str; 6] = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "BUCKET_NAME",
];

#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub buckets: Buckets,
    pub bind: IpAddr,
    /// Serves REST and gRPC.
    pub http_port: u16,
    /// Another port serving the same, when set and different.
    pub grpc_port: Option<u16>,
    pub upload_ttl: Expiry,
    pub download_ttl: Expiry,
    /// Seconds a draft lives before `gateway sweep` removes it.
    pub object_lifetime: u64,
    pub storage: StorageChoice,
    pub limits: Limits,
    /// In-flight requests get this long to finish after SIGTERM.
    pub shutdown_grace: Duration,
    pub log_json: bool,
    /// `None` when `DRAFTSTORE_AUTH` is unset: `serve` then allows anyone on the embedded
    /// store and refuses to start against S3.
    pub auth: Option<crate::auth::AuthConfig>,
    /// Origins allowed by CORS (none by default).
    pub cors: crate::cors::Cors,
    /// REST paths reachable without credentials (`DRAFTSTORE_PUBLIC_PATHS`).
    pub public_paths: Vec<String>,
}

impl ServeConfig {
    /// # Errors
    /// A [`ConfigError`] naming the first bad variable.
    pub fn from_lookup(get: Lookup<'_>) -> Result<Self, ConfigError> {
        let var = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        let main = var("BUCKET_NAME").unwrap_or_else(|| "main".into());
        let buckets = Buckets::new(&main, var("DRAFT_BUCKET").as_deref())
            .map_err(|e| err(format!("BUCKET_NAME/DRAFT_BUCKET: {e}")))?;
        let bind = match var("DRAFTSTORE_BIND") {
            None => IpAddr::from([0, 0, 0, 0]),
            Some(v) => v
                .trim()
                .parse()
                .map_err(|_| err("DRAFTSTORE_BIND must be an IP address"))?,
        };
        let port = |name: &str, default: u64| {
            number(get, name, default, 0..=65_535).map(|p| u16::try_from(p).unwrap_or(0))
        };
        let http_port = port("HTTP_PORT", 8080)?;
        let grpc_port = match var("GRPC_PORT") {
            None => None,
            Some(_) => Some(port("GRPC_PORT", 0)?).filter(|p| *p != http_port),
        };
        let ttl = |name: &str| -> Result<Expiry, ConfigError> {
            let secs = number(get, name, 3600, 1..=u64::from(Expiry::MAX_SECS))?;
            Expiry::new(secs).map_err(|e| err(format!("{name}: {e}")))
        };
        let limits = Limits {
            max_body: usize::try_from(number(
                get,
                "DRAFTSTORE_MAX_BODY_BYTES",
                64 * 1024,
                1024..=1024 * 1024,
            )?)
            .unwrap_or(65_536),
            max_grpc_message: usize::try_from(number(
                get,
                "DRAFTSTORE_MAX_GRPC_MESSAGE_BYTES",
                64 * 1024,
                1024..=4 * 1024 * 1024,
            )?)
            .unwrap_or(65_536),
            request_timeout: Duration::from_millis(number(
                get,
                "DRAFTSTORE_REQUEST_TIMEOUT_MS",
                30_000,
                100..=600_000,
            )?),
            header_timeout: Duration::from_millis(number(
                get,
                "DRAFTSTORE_HEADER_TIMEOUT_MS",
                10_000,
                100..=120_000,
            )?),
            max_concurrent_streams: u32::try_from(number(
                get,
                "DRAFTSTORE_MAX_CONCURRENT_STREAMS",
                256,
                1..=10_000,
            )?)
            .unwrap_or(256),
            max_header_list: 16 * 1024,
            max_in_flight: usize::try_from(number(
                get,
                "DRAFTSTORE_MAX_IN_FLIGHT",
                4096,
                1..=1_000_000,
            )?)
            .unwrap_or(4096),
        };
        Ok(Self {
            buckets,
            bind,
            http_port,
            grpc_port,
            upload_ttl: ttl("UPLOAD_TTL")?,
            download_ttl: ttl("DOWNLOAD_TTL")?,
            object_lifetime: number(get, "OBJECT_LIFETIME", 86_400, 1..=10 * 365 * 86_400)?,
            storage: storage(get, http_port)?,
            limits,
            shutdown_grace: Duration::from_millis(number(
                get,
                "DRAFTSTORE_SHUTDOWN_GRACE_MS",
                20_000,
                0..=600_000,
            )?),
            log_json: flag(get, "DRAFTSTORE_LOG_JSON", false)?,
            auth: auth(get)?,
            cors: crate::cors::Cors::new(var("DRAFTSTORE_CORS_ORIGINS").as_deref()),
            public_paths: var("DRAFTSTORE_PUBLIC_PATHS")
                .unwrap_or_else(|| "/health,/ready,/metrics,/openapi.json".into())
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect(),
        })
    }
}

fn auth(get: Lookup<'_>) -> Result<Option<crate::auth::AuthConfig>, ConfigError> {
    use crate::auth::{AuthConfig, KeySource};
    let var = |k: &str| get(k).filter(|v| !v.trim().is_empty());
    match var("DRAFTSTORE_AUTH").as_deref() {
        None => Ok(None),
        Some("none") => Ok(Some(AuthConfig::None)),
        Some("api-keys") => match (var("DRAFTSTORE_API_KEYS_FILE"), var("DRAFTSTORE_API_KEYS")) {
            (Some(file), None) => Ok(Some(AuthConfig::ApiKeys(KeySource::File(PathBuf::from(file))))),
            (None, Some(inline)) => Ok(Some(AuthConfig::ApiKeys(KeySource::Inline(inline)))),
            _ => Err(err("DRAFTSTORE_AUTH=api-keys needs exactly one of DRAFTSTORE_API_KEYS_FILE or DRAFTSTORE_API_KEYS (lines '<tenant> <sha256 hex of the key>')")),
        },
        Some("jwt") => {
            use crate::auth::{JwtConfig, JwtKey};
            let key = match (var("DRAFTSTORE_JWT_SECRET"), var("DRAFTSTORE_JWT_PUBLIC_KEY_FILE")) {
                (Some(secret), None) => JwtKey::Secret(secret),
                (None, Some(file)) => JwtKey::PublicPem(std::fs::read(&file).map_err(|e| err(format!("DRAFTSTORE_JWT_PUBLIC_KEY_FILE: cannot read {file}: {e}")))?),
                _ => return Err(err("DRAFTSTORE_AUTH=jwt needs exactly one of DRAFTSTORE_JWT_SECRET (HMAC) or DRAFTSTORE_JWT_PUBLIC_KEY_FILE (PEM)")),
            };
            let (Some(issuer), Some(audience)) = (var("DRAFTSTORE_JWT_ISSUER"), var("DRAFTSTORE_JWT_AUDIENCE")) else {
                return Err(err("DRAFTSTORE_AUTH=jwt needs DRAFTSTORE_JWT_ISSUER and DRAFTSTORE_JWT_AUDIENCE"));
            };
            let tenant_claim = var("DRAFTSTORE_JWT_TENANT_CLAIM").unwrap_or_else(|| "tenant".into());
            Ok(Some(AuthConfig::Jwt(JwtConfig { key, issuer, audience, tenant_claim })))
        }
        Some(_) => Err(err("DRAFTSTORE_AUTH must be 'none', 'api-keys' or 'jwt'")),
    }
}

fn storage(get: Lookup<'_>, http_port: u16) -> Result<StorageChoice, ConfigError> {
    let var = |k: &str| get(k).filter(|v| !v.trim().is_empty());
    let local = match var("DRAFTSTORE_STORAGE").as_deref() {
        Some("local") => true,
        Some("s3") => false,
        Some(_) => {
            return Err(err(
                "DRAFTSTORE_STORAGE (--storage) must be 'local' or 's3'",
            ))
        }
        None => !S3_SIGNALS.iter().any(|k| var(k).is_some()),
    };
    if !local {
        return S3Config::from_lookup(get).map(|c| StorageChoice::S3(Box::new(c)));
    }
    let port = if http_port == 0 { 8080 } else { http_port };
    Ok(StorageChoice::Local(LocalConfig {
        data_dir: PathBuf::from(
            var("DRAFTSTORE_DATA_DIR").unwrap_or_else(|| "./draftstore-data".into()),
        ),
        public_url: var("DRAFTSTORE_PUBLIC_URL")
            .unwrap_or_else(|| format!("http://127.0.0.1:{port}")),
        secret: var("DRAFTSTORE_LOCAL_SECRET"),
        max_object: number(
            get,
            "DRAFTSTORE_LOCAL_MAX_OBJECT_BYTES",
            5 * 1024 * 1024 * 1024,
            1..=5 * 1024 * 1024 * 1024 * 1024,
        )?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(pairs: &[(&str, &str)]) -> Result<ServeConfig, ConfigError> {
        let mut map: HashMap<String, String> =
            [("AWS_ACCESS_KEY_ID", "AK"), ("AWS_SECRET_ACCESS_KEY", "SK")]
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect();
        map.extend(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        ServeConfig::from_lookup(&|k| map.get(k).cloned())
    }

    #[test]
    fn debug_never_shows_secrets() {
        let config = ServeConfig::from_lookup(&|k| match k {
            "DRAFTSTORE_LOCAL_SECRET" => Some("local-signing-secret".to_owned()),
            "DRAFTSTORE_AUTH" => Some("api-keys".to_owned()),
            "DRAFTSTORE_API_KEYS" => Some(format!("acme {}", "ab".repeat(32))),
            _ => None,
        })
        .unwrap();
        let shown = format!("{config:?}");
        assert!(shown.contains("Inline(<redacted>)"), "{shown}");
        assert!(shown.contains("\"<redacted>\""), "{shown}");
        assert!(!shown.contains("local-signing-secret"), "{shown}");
        assert!(!shown.contains(&"ab".repeat(32)), "{shown}");
    }

    #[test]
    fn storage_is_local_by_default_and_s3_when_configured() {
        let none = ServeConfig::from_lookup(&|_| None).unwrap();
        let StorageChoice::Local(local) = none.storage else {
            panic!("local by default")
        };
        assert_eq!(
            (local.data_dir, local.public_url.as_str()),
            (PathBuf::from("./draftstore-data"), "http://127.0.0.1:8080")
        );
        assert!(
            matches!(parse(&[]).unwrap().storage, StorageChoice::S3(_)),
            "credentials select S3"
        );
        // A bucket without keys is S3 with the AWS credential chain (checked when it starts).
        let chain =
            ServeConfig::from_lookup(&|k| (k == "BUCKET_NAME").then(|| "photos".to_owned()))
                .unwrap();
        let StorageChoice::S3(s3) = chain.storage else {
            panic!("a bucket selects S3")
        };
        assert_eq!(s3.credentials, super::super::CredentialSource::Chain);
        let partial =
            ServeConfig::from_lookup(&|k| (k == "AWS_ACCESS_KEY_ID").then(|| "AK".to_owned()))
                .unwrap_err();
        assert!(
            partial.to_string().contains("AWS_SECRET_ACCESS_KEY"),
            "half a key pair is an error: {partial}"
        );
        let explicit = ServeConfig::from_lookup(&|k| match k {
            "BUCKET_NAME" => Some("photos".to_owned()),
            "DRAFTSTORE_STORAGE" => Some("local".to_owned()),
            _ => None,
        });
        assert!(matches!(explicit.unwrap().storage, StorageChoice::Local(_)));
        assert!(ServeConfig::from_lookup(
            &|k| (k == "DRAFTSTORE_STORAGE").then(|| "disk".to_owned())
        )
        .is_err());
    }

    #[test]
    fn the_originals_defaults() {
        let c = parse(&[]).unwrap();
        assert_eq!(
            (c.buckets.main.as_str(), c.buckets.draft.as_str()),
            ("main", "main-draft")
        );
        assert_eq!((c.http_port, c.grpc_port), (8080, None));
        assert_eq!(
            (
                c.upload_ttl.secs(),
                c.download_ttl.secs(),
                c.object_lifetime
            ),
            (3600, 3600, 86_400)
        );
        let c = parse(&[
            ("BUCKET_NAME", "photos"),
            ("GRPC_PORT", "9090"),
            ("HTTP_PORT", "8081"),
            ("UPLOAD_TTL", "600"),
        ])
        .unwrap();
        assert_eq!(
            (
                c.buckets.draft.as_str(),
                c.http_port,
                c.grpc_port,
                c.upload_ttl.secs()
            ),
            ("photos-draft", 8081, Some(9090), 600)
        );
        assert_eq!(
            parse(&[("GRPC_PORT", "8080")]).unwrap().grpc_port,
            None,
            "the same port serves both"
        );
    }

    #[test]
    fn bad_values_are_one_line_naming_the_variable() {
        for (name, value) in [
            ("BUCKET_NAME", "Bad_Bucket"),
            ("HTTP_PORT", "eighty"),
            ("HTTP_PORT", "70000"),
            ("UPLOAD_TTL", "0"),
            ("DOWNLOAD_TTL", "604801"),
            ("OBJECT_LIFETIME", "-1"),
            ("DRAFTSTORE_MAX_BODY_BYTES", "10485760"),
            ("DRAFTSTORE_LOG_JSON", "yes"),
            ("DRAFTSTORE_BIND", "localhost"),
        ] {
            let e = parse(&[(name, value)]).unwrap_err().to_string();
            let want = if name == "BUCKET_NAME" {
                "BUCKET_NAME"
            } else {
                name
            };
            assert!(e.contains(want), "{name}={value}: {e}");
            assert_eq!(e.lines().count(), 1);
        }
    }
}
