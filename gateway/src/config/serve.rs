//! `gateway serve`'s settings: the original DraftStore's variables keep their meaning.

use super::name;
use super::{err, flag, number, ConfigError, Lookup, S3Config};
use draftstore_core::Buckets;
use draftstore_signer::Expiry;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// HTTP/2 streams one connection may open at once when `DRAFTSTORE_MAX_CONCURRENT_STREAMS` is
/// unset: RFC 9113 §6.5.2's recommended floor ("no smaller than 100"), what grpc-go's and
/// nginx's clients expect. Each open stream holds hyper's and h2's per-stream state (a task,
/// the request's header map, slots in the connection's stream and frame queues: about 2 KiB
/// under a `/health` flood), so memory under a flood grows with connections × this.
pub const DEFAULT_MAX_CONCURRENT_STREAMS: u32 = 100;

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
    /// HTTP/2 streams one connection may open at once.
    pub max_concurrent_streams: u32,
    /// Largest request head, in bytes (HTTP/2 header list).
    pub max_header_list: u32,
    /// API requests handled at once, shared fairly between peers and between tenants; past
    /// a caller's share, 503 at once. Requests open on all connections are capped at twice it.
    pub max_in_flight: usize,
    /// Connections open at once (`DRAFTSTORE_MAX_CONNECTIONS`); `None`: three quarters of the
    /// open-file limit, see [`crate::server::default_max_connections`].
    pub max_connections: Option<usize>,
    /// A connection with no request for this long (and, over HTTP/2, no stream open) is closed
    /// (HTTP/2: GOAWAY). Also the stall limit: an answer, or an HTTP/2 store download, its
    /// client takes too little of for this long is cut (see `crate::http::socket`,
    /// `crate::http::watch`).
    pub idle_timeout: Duration,
}

/// The embedded local store's settings. `Debug` hides the signing secret.
#[derive(Clone, PartialEq, Eq)]
pub struct LocalConfig {
    /// The folder holding the objects, the secret and the lock.
    pub data_dir: PathBuf,
    /// Base of the presigned URLs it hands out (what clients can reach).
    pub public_url: String,
    /// Signing secret; made at first start and kept in the data folder when unset.
    pub secret: Option<String>,
    /// Largest object a presigned PUT may store.
    pub max_object: u64,
    /// An upload to a presigned URL that sends no byte for this long is cut
    /// (`DRAFTSTORE_STORE_STALL_TIMEOUT_MS`, default 20 s).
    pub stall_timeout: std::time::Duration,
}

impl std::fmt::Debug for LocalConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalConfig")
            .field("data_dir", &self.data_dir)
            .field("public_url", &self.public_url)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("max_object", &self.max_object)
            .field("stall_timeout", &self.stall_timeout)
            .finish()
    }
}

/// The PEM files of the TLS certificate chain and its private key
/// (`DRAFTSTORE_TLS_CERT_FILE` / `DRAFTSTORE_TLS_KEY_FILE`, both or neither). Only the paths:
/// the files are read by [`crate::http::tls`], at start and again whenever they change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, leaf first (PEM `CERTIFICATE` blocks).
    pub cert: PathBuf,
    /// The leaf's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Where objects live.
#[derive(Debug, Clone)]
pub enum StorageChoice {
    /// An S3 server.
    S3(Box<S3Config>),
    /// The embedded local store.
    Local(LocalConfig),
}

/// Variables that mean "use S3": any of them set, without `--storage local`, selects S3, and
/// S3 then needs credentials, static or from the AWS chain (none found is an error at start,
/// never a silent fall-back).
const S3_SIGNALS: [&str; 6] = [
    name::AWS_ACCESS_KEY_ID,
    name::AWS_SECRET_ACCESS_KEY,
    name::AWS_SESSION_TOKEN,
    name::AWS_ENDPOINT_URL,
    name::AWS_ENDPOINT_URL_S3,
    name::BUCKET_NAME,
];

/// `gateway serve`'s settings, parsed once from the environment and the flags.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// The main bucket and its draft bucket.
    pub buckets: Buckets,
    /// The address to listen on.
    pub bind: IpAddr,
    /// Serves REST and gRPC.
    pub http_port: u16,
    /// Another port serving the same, when set and different.
    pub grpc_port: Option<u16>,
    /// How long an upload URL is valid.
    pub upload_ttl: Expiry,
    /// How long a download URL is valid.
    pub download_ttl: Expiry,
    /// Seconds a draft lives before `gateway sweep` removes it.
    pub object_lifetime: u64,
    /// Where objects live.
    pub storage: StorageChoice,
    /// What chose [`ServeConfig::storage`], for errors about it: `DRAFTSTORE_STORAGE`, the
    /// first S3 variable set (e.g. `BUCKET_NAME`), or `None` (the embedded store by default).
    pub storage_chosen_by: Option<&'static str>,
    /// Request and connection limits.
    pub limits: Limits,
    /// In-flight requests get this long to finish after SIGTERM.
    pub shutdown_grace: Duration,
    /// JSON log lines.
    pub log_json: bool,
    /// `None` when `DRAFTSTORE_AUTH` is unset: `serve` then allows anyone on the embedded
    /// store and refuses to start against S3.
    pub auth: Option<crate::auth::AuthConfig>,
    /// Origins allowed by CORS (none by default).
    pub cors: crate::http::cors::Cors,
    /// REST paths reachable without credentials (`DRAFTSTORE_PUBLIC_PATHS`).
    pub public_paths: Vec<String>,
    /// `serve` creates missing buckets at start (`DRAFTSTORE_CREATE_BUCKETS`, default true).
    pub create_buckets: bool,
    /// `serve` serves the upload page at `/` (`DRAFTSTORE_UI`; default true on the embedded
    /// store, false against S3).
    pub ui: bool,
    /// The gRPC health check and server reflection need no credentials, over every gRPC
    /// protocol (`DRAFTSTORE_PUBLIC_GRPC_DISCOVERY`, default true; false: they need them).
    pub public_grpc_discovery: bool,
    /// Tenant rates counted in Redis, shared by every replica (`DRAFTSTORE_RATE_LIMIT_*`);
    /// `None`: each process counts alone.
    pub rate_limit_redis: Option<crate::auth::ratelimit::RedisConfig>,
    /// Webhooks and the pre-confirm check (`DRAFTSTORE_WEBHOOK_*`, `DRAFTSTORE_PRECONFIRM_*`).
    pub events: super::EventsConfig,
    /// TLS on every port (`DRAFTSTORE_TLS_CERT_FILE` / `DRAFTSTORE_TLS_KEY_FILE`); `None`:
    /// plaintext (HTTP/1.1 and h2c).
    pub tls: Option<TlsFiles>,
    /// The key of upload tokens (`DRAFTSTORE_UPLOAD_TOKEN_SECRET`), shared by every replica;
    /// `None`: a random key of this process on the embedded store, no tokens against S3.
    pub upload_token_secret: Option<UploadTokenSecret>,
}

/// `DRAFTSTORE_UPLOAD_TOKEN_SECRET`: at least 32 bytes, the HMAC-SHA256 key of upload tokens
/// (see [`crate::api::companion::token`]). `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct UploadTokenSecret(String);

impl UploadTokenSecret {
    /// The key bytes.
    #[must_use]
    pub fn bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl std::fmt::Debug for UploadTokenSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UploadTokenSecret(<redacted>)")
    }
}

/// `DRAFTSTORE_UPLOAD_TOKEN_SECRET`, when set: at least 32 bytes (e.g. `head -c 32
/// /dev/urandom | base64`); the message never quotes it.
fn upload_token_secret(get: Lookup<'_>) -> Result<Option<UploadTokenSecret>, ConfigError> {
    let Some(secret) = get(name::DRAFTSTORE_UPLOAD_TOKEN_SECRET).filter(|v| !v.trim().is_empty())
    else {
        return Ok(None);
    };
    let min = crate::api::companion::token::MIN_SECRET_BYTES;
    if secret.trim().len() < min {
        return Err(err(format!(
            "{} must be at least {min} bytes (e.g. `head -c 32 /dev/urandom | base64`)",
            name::DRAFTSTORE_UPLOAD_TOKEN_SECRET
        )));
    }
    Ok(Some(UploadTokenSecret(secret.trim().to_owned())))
}

impl ServeConfig {
    /// # Errors
    /// A [`ConfigError`] naming the first bad variable.
    pub fn from_lookup(get: Lookup<'_>) -> Result<Self, ConfigError> {
        let var = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        let buckets = buckets(get)?;
        let bind = match var(name::DRAFTSTORE_BIND) {
            None => IpAddr::from([0, 0, 0, 0]),
            Some(v) => v
                .trim()
                .parse()
                .map_err(|_| err("DRAFTSTORE_BIND must be an IP address"))?,
        };
        let port = |name: &str, default: u64| {
            number(get, name, default, 0..=65_535).map(|p| u16::try_from(p).unwrap_or(0))
        };
        let http_port = port(name::HTTP_PORT, 8080)?;
        let grpc_port = match var(name::GRPC_PORT) {
            None => None,
            Some(_) => Some(port(name::GRPC_PORT, 0)?).filter(|p| *p != http_port),
        };
        let ttl = |name: &str| -> Result<Expiry, ConfigError> {
            let secs = number(get, name, 3600, 1..=u64::from(Expiry::MAX_SECS))?;
            Expiry::new(secs).map_err(|e| err(format!("{name}: {e}")))
        };
        let limits = Limits {
            max_body: usize::try_from(number(
                get,
                name::DRAFTSTORE_MAX_BODY_BYTES,
                64 * 1024,
                1024..=1024 * 1024,
            )?)
            .unwrap_or(65_536),
            max_grpc_message: usize::try_from(number(
                get,
                name::DRAFTSTORE_MAX_GRPC_MESSAGE_BYTES,
                64 * 1024,
                1024..=4 * 1024 * 1024,
            )?)
            .unwrap_or(65_536),
            request_timeout: Duration::from_millis(number(
                get,
                name::DRAFTSTORE_REQUEST_TIMEOUT_MS,
                30_000,
                100..=600_000,
            )?),
            header_timeout: Duration::from_millis(number(
                get,
                name::DRAFTSTORE_HEADER_TIMEOUT_MS,
                10_000,
                100..=120_000,
            )?),
            max_concurrent_streams: u32::try_from(number(
                get,
                name::DRAFTSTORE_MAX_CONCURRENT_STREAMS,
                DEFAULT_MAX_CONCURRENT_STREAMS.into(),
                1..=10_000,
            )?)
            .unwrap_or(DEFAULT_MAX_CONCURRENT_STREAMS),
            max_header_list: 16 * 1024,
            max_in_flight: usize::try_from(number(
                get,
                name::DRAFTSTORE_MAX_IN_FLIGHT,
                4096,
                1..=1_000_000,
            )?)
            .unwrap_or(4096),
            max_connections: match var("DRAFTSTORE_MAX_CONNECTIONS") {
                None => None,
                Some(_) => Some(
                    usize::try_from(number(get, "DRAFTSTORE_MAX_CONNECTIONS", 0, 1..=1 << 20)?)
                        .unwrap_or(1 << 16),
                ),
            },
            idle_timeout: Duration::from_millis(number(
                get,
                "DRAFTSTORE_IDLE_TIMEOUT_MS",
                60_000,
                100..=3_600_000,
            )?),
        };
        let tls = tls(get)?;
        let storage = storage(get, http_port, tls.is_some())?;
        let storage_chosen_by = storage_chosen_by(get);
        if let StorageChoice::S3(s3) = &storage {
            dotted_buckets_over_tls(s3, &buckets)?;
        }
        let ui = flag(
            get,
            name::DRAFTSTORE_UI,
            matches!(storage, StorageChoice::Local(_)),
        )?;
        Self {
            buckets,
            bind,
            ui,
            http_port,
            grpc_port,
            upload_ttl: ttl(name::UPLOAD_TTL)?,
            download_ttl: ttl(name::DOWNLOAD_TTL)?,
            object_lifetime: object_lifetime(get)?,
            storage,
            storage_chosen_by,
            limits,
            shutdown_grace: Duration::from_millis(number(
                get,
                name::DRAFTSTORE_SHUTDOWN_GRACE_MS,
                20_000,
                0..=600_000,
            )?),
            log_json: flag(get, name::DRAFTSTORE_LOG_JSON, false)?,
            create_buckets: flag(get, name::DRAFTSTORE_CREATE_BUCKETS, true)?,
            public_grpc_discovery: flag(get, name::DRAFTSTORE_PUBLIC_GRPC_DISCOVERY, true)?,
            auth: auth(get)?,
            cors: cors(get)?,
            public_paths: var(name::DRAFTSTORE_PUBLIC_PATHS)
                .unwrap_or_else(|| "/health,/ready,/metrics,/openapi.json".into())
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect(),
            rate_limit_redis: super::ratelimit::redis(get)?,
            events: super::events(get)?,
            tls,
            upload_token_secret: upload_token_secret(get)?,
        }
        .checked()
    }

    /// A pre-confirm check that may outlast the request timeout would never decide: the
    /// confirm would always end in 504 `TIMEOUT`, and `DRAFTSTORE_PRECONFIRM_ON_ERROR=allow`
    /// would never allow.
    fn checked(self) -> Result<Self, ConfigError> {
        if let Some(check) = &self.events.preconfirm {
            if check.timeout >= self.limits.request_timeout {
                return Err(err(format!(
                    "{} ({} ms) must be below {} ({} ms): a confirm waits for the check within its request",
                    name::DRAFTSTORE_PRECONFIRM_TIMEOUT_MS,
                    check.timeout.as_millis(),
                    name::DRAFTSTORE_REQUEST_TIMEOUT_MS,
                    self.limits.request_timeout.as_millis()
                )));
            }
        }
        Ok(self)
    }
}

/// `BUCKET_NAME` (default `main`) and `DRAFT_BUCKET` (default `<main>-draft`).
pub(super) fn buckets(get: Lookup<'_>) -> Result<Buckets, ConfigError> {
    let var = |k: &str| get(k).filter(|v| !v.trim().is_empty());
    let main = var(name::BUCKET_NAME).unwrap_or_else(|| "main".into());
    if var(name::DRAFT_BUCKET).is_some_and(|d| d.trim() == main.trim()) {
        return Err(err(format!(
            "DRAFT_BUCKET must differ from BUCKET_NAME (both are {main:?}): a sweep would delete confirmed objects"
        )));
    }
    Buckets::new(&main, var(name::DRAFT_BUCKET).as_deref())
        .map_err(|e| err(format!("BUCKET_NAME/DRAFT_BUCKET: {e}")))
}

/// `OBJECT_LIFETIME`: seconds a draft lives, 1 s to 10 years, default one day.
pub(super) fn object_lifetime(get: Lookup<'_>) -> Result<u64, ConfigError> {
    number(get, name::OBJECT_LIFETIME, 86_400, 1..=10 * 365 * 86_400)
}

/// Virtual-hosted HTTPS puts the bucket in the TLS host name, and a certificate's wildcard
/// covers one label only (`*.s3.amazonaws.com`): a bucket name with a dot can never be reached.
fn dotted_buckets_over_tls(s3: &S3Config, buckets: &Buckets) -> Result<(), ConfigError> {
    use draftstore_signer::{Addressing, Scheme};
    if s3.addressing != Addressing::VirtualHost {
        return Ok(());
    }
    let tls = [&s3.endpoint, &s3.public_endpoint]
        .iter()
        .any(|e| e.scheme() == Scheme::Https);
    for (name, bucket) in [
        ("BUCKET_NAME", &buckets.main),
        ("DRAFT_BUCKET", &buckets.draft),
    ] {
        if tls && bucket.as_str().contains('.') {
            return Err(err(format!(
                "{name} {bucket:?} holds a '.', which virtual-hosted HTTPS cannot reach (no certificate matches it): rename the bucket or set DRAFTSTORE_S3_ADDRESSING=path"
            )));
        }
    }
    Ok(())
}

/// `DRAFTSTORE_CORS_ORIGINS`: `*` or origins as browsers send them (`scheme://host[:port]`);
/// anything else could never match an `Origin` header.
fn cors(get: Lookup<'_>) -> Result<crate::http::cors::Cors, ConfigError> {
    let list = get("DRAFTSTORE_CORS_ORIGINS").filter(|v| !v.trim().is_empty());
    for origin in list.iter().flat_map(|l| l.split(',')).map(str::trim) {
        if origin.is_empty() || origin == "*" {
            continue;
        }
        draftstore_signer::Endpoint::parse(origin).map_err(|e| {
            err(format!(
                "DRAFTSTORE_CORS_ORIGINS: {origin:?} is not an origin such as https://app.example.com ({e})"
            ))
        })?;
    }
    Ok(crate::http::cors::Cors::new(list.as_deref()))
}

/// The variables of each way to authenticate: setting them for a way not chosen in
/// `DRAFTSTORE_AUTH` would leave the gateway open while its operator believes it is not.
const AUTH_VARIABLES: [(&str, &[&str]); 2] = [
    (
        "api-keys",
        &["DRAFTSTORE_API_KEYS", "DRAFTSTORE_API_KEYS_FILE"],
    ),
    (
        "jwt",
        &[
            "DRAFTSTORE_JWT_SECRET",
            "DRAFTSTORE_JWT_PUBLIC_KEY_FILE",
            "DRAFTSTORE_JWT_ISSUER",
            "DRAFTSTORE_JWT_AUDIENCE",
            "DRAFTSTORE_JWT_TENANT_CLAIM",
        ],
    ),
];

fn auth(get: Lookup<'_>) -> Result<Option<crate::auth::AuthConfig>, ConfigError> {
    use crate::auth::{AuthConfig, KeySource};
    let var = |k: &str| get(k).filter(|v| !v.trim().is_empty());
    let chosen = var("DRAFTSTORE_AUTH");
    for (mode, names) in AUTH_VARIABLES {
        if chosen.as_deref() == Some(mode) {
            continue;
        }
        if let Some(name) = names.iter().find(|n| var(n).is_some()) {
            return Err(err(format!(
                "{name} is set but DRAFTSTORE_AUTH is {}: set DRAFTSTORE_AUTH={mode}, or unset {name}",
                chosen.as_deref().map_or("unset".to_owned(), |c| format!("'{c}'"))
            )));
        }
    }
    match var("DRAFTSTORE_AUTH").as_deref() {
        None => Ok(None),
        Some("none") => Ok(Some(AuthConfig::None)),
        Some("api-keys") => match (var(name::DRAFTSTORE_API_KEYS_FILE), var(name::DRAFTSTORE_API_KEYS)) {
            (Some(file), None) => Ok(Some(AuthConfig::ApiKeys(KeySource::File(PathBuf::from(file))))),
            (None, Some(inline)) => Ok(Some(AuthConfig::ApiKeys(KeySource::Inline(inline)))),
            _ => Err(err("DRAFTSTORE_AUTH=api-keys needs exactly one of DRAFTSTORE_API_KEYS_FILE or DRAFTSTORE_API_KEYS (lines '<tenant> <sha256 hex of the key>')")),
        },
        Some("jwt") => {
            use crate::auth::{JwtConfig, JwtKey};
            let key = match (var(name::DRAFTSTORE_JWT_SECRET), var(name::DRAFTSTORE_JWT_PUBLIC_KEY_FILE)) {
                (Some(secret), None) => JwtKey::Secret(secret),
                (None, Some(file)) => JwtKey::PublicPem(std::fs::read(&file).map_err(|e| err(format!("DRAFTSTORE_JWT_PUBLIC_KEY_FILE: cannot read {file}: {e}")))?),
                _ => return Err(err("DRAFTSTORE_AUTH=jwt needs exactly one of DRAFTSTORE_JWT_SECRET (HMAC) or DRAFTSTORE_JWT_PUBLIC_KEY_FILE (PEM)")),
            };
            let (Some(issuer), Some(audience)) = (var(name::DRAFTSTORE_JWT_ISSUER), var(name::DRAFTSTORE_JWT_AUDIENCE)) else {
                return Err(err("DRAFTSTORE_AUTH=jwt needs DRAFTSTORE_JWT_ISSUER and DRAFTSTORE_JWT_AUDIENCE"));
            };
            let tenant_claim = var(name::DRAFTSTORE_JWT_TENANT_CLAIM).unwrap_or_else(|| "tenant".into());
            Ok(Some(AuthConfig::Jwt(JwtConfig { key, issuer, audience, tenant_claim })))
        }
        Some(_) => Err(err("DRAFTSTORE_AUTH must be 'none', 'api-keys' or 'jwt'")),
    }
}

/// `DRAFTSTORE_TLS_CERT_FILE` and `DRAFTSTORE_TLS_KEY_FILE`: both or neither.
fn tls(get: Lookup<'_>) -> Result<Option<TlsFiles>, ConfigError> {
    let var = |k: &str| get(k).filter(|v| !v.trim().is_empty());
    match (
        var(name::DRAFTSTORE_TLS_CERT_FILE),
        var(name::DRAFTSTORE_TLS_KEY_FILE),
    ) {
        (None, None) => Ok(None),
        (Some(cert), Some(key)) => Ok(Some(TlsFiles {
            cert: PathBuf::from(cert),
            key: PathBuf::from(key),
        })),
        (Some(_), None) => Err(err(
            "DRAFTSTORE_TLS_CERT_FILE is set without DRAFTSTORE_TLS_KEY_FILE: TLS needs both PEM files",
        )),
        (None, Some(_)) => Err(err(
            "DRAFTSTORE_TLS_KEY_FILE is set without DRAFTSTORE_TLS_CERT_FILE: TLS needs both PEM files",
        )),
    }
}

/// The variable that chose the store: `DRAFTSTORE_STORAGE` when set, else the first of
/// `S3_SIGNALS` set, else `None`.
fn storage_chosen_by(get: Lookup<'_>) -> Option<&'static str> {
    std::iter::once(name::DRAFTSTORE_STORAGE)
        .chain(S3_SIGNALS)
        .find(|k| get(k).is_some_and(|v| !v.trim().is_empty()))
}

/// S3 or the embedded store (see `S3_SIGNALS`); `http_port` and `tls` make the local store's
/// default public URL (`https://` with TLS, where a plain `http://` one cannot be reached).
pub(super) fn storage(
    get: Lookup<'_>,
    http_port: u16,
    tls: bool,
) -> Result<StorageChoice, ConfigError> {
    let var = |k: &str| get(k).filter(|v| !v.trim().is_empty());
    let local = match var(name::DRAFTSTORE_STORAGE).as_deref() {
        Some("local") => true,
        Some("s3") => false,
        Some(_) => {
            return Err(err(
                "DRAFTSTORE_STORAGE (--storage) must be 'local' or 's3'",
            ))
        }
        None => storage_chosen_by(get).is_none(),
    };
    if !local {
        return S3Config::from_lookup(get).map(|c| StorageChoice::S3(Box::new(c)));
    }
    let port = if http_port == 0 { 8080 } else { http_port };
    let scheme = if tls { "https" } else { "http" };
    let public_url =
        var("DRAFTSTORE_PUBLIC_URL").unwrap_or_else(|| format!("{scheme}://127.0.0.1:{port}"));
    let endpoint = draftstore_signer::Endpoint::parse(&public_url).map_err(|e| {
        err(format!(
            "DRAFTSTORE_PUBLIC_URL must be http(s)://host[:port] that clients can reach: {e}"
        ))
    })?;
    if tls && endpoint.scheme() != draftstore_signer::Scheme::Https {
        return Err(err(format!(
            "DRAFTSTORE_PUBLIC_URL {public_url:?} is http:// but the port serves TLS (DRAFTSTORE_TLS_CERT_FILE): presigned URLs would point at a plaintext port; use https://"
        )));
    }
    Ok(StorageChoice::Local(LocalConfig {
        data_dir: PathBuf::from(
            var(name::DRAFTSTORE_DATA_DIR).unwrap_or_else(|| "./draftstore-data".into()),
        ),
        public_url,
        secret: var(name::DRAFTSTORE_LOCAL_SECRET),
        max_object: number(
            get,
            name::DRAFTSTORE_LOCAL_MAX_OBJECT_BYTES,
            5 * 1024 * 1024 * 1024,
            1..=5 * 1024 * 1024 * 1024 * 1024,
        )?,
        stall_timeout: Duration::from_millis(number(
            get,
            "DRAFTSTORE_STORE_STALL_TIMEOUT_MS",
            20_000,
            100..=3_600_000,
        )?),
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
        assert_eq!(chain.storage_chosen_by, Some("BUCKET_NAME"));
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

    /// The upload page is on by default on the embedded store only; `DRAFTSTORE_UI` decides.
    #[test]
    fn the_upload_page_is_on_with_the_embedded_store_only() {
        assert!(
            ServeConfig::from_lookup(&|_| None).unwrap().ui,
            "embedded store"
        );
        assert!(!parse(&[]).unwrap().ui, "S3");
        assert!(parse(&[("DRAFTSTORE_UI", "true")]).unwrap().ui);
        let off = ServeConfig::from_lookup(&|k| (k == "DRAFTSTORE_UI").then(|| "false".into()));
        assert!(!off.unwrap().ui);
        let bad = parse(&[("DRAFTSTORE_UI", "yes")]).unwrap_err();
        assert!(bad.to_string().contains("DRAFTSTORE_UI"), "{bad}");
    }

    #[test]
    fn the_originals_defaults() {
        let c = parse(&[]).unwrap();
        assert_eq!(
            (c.buckets.main.as_str(), c.buckets.draft.as_str()),
            ("main", "main-draft")
        );
        assert_eq!((c.http_port, c.grpc_port), (8080, None));
        assert!(c.create_buckets, "a fresh install creates its buckets");
        assert!(
            !parse(&[("DRAFTSTORE_CREATE_BUCKETS", "false")])
                .unwrap()
                .create_buckets
        );
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

    /// Settings each valid alone that cannot work together: refused at start, naming the
    /// variable, instead of a gateway that starts and fails every call.
    #[test]
    fn combinations_that_cannot_work_are_refused() {
        /// The settings, the variable the message names, and another word it holds.
        type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str);
        let cases: &[Case<'_>] = &[
            // The example from the report: a signer that can never sign after start.
            (
                &[
                    ("AWS_ENDPOINT_URL", "http://127.0.0.1:9000"),
                    ("DRAFTSTORE_S3_ADDRESSING", "virtual"),
                ],
                "AWS_ENDPOINT_URL",
                "DRAFTSTORE_S3_ADDRESSING",
            ),
            (
                &[
                    ("AWS_ENDPOINT_URL_S3", "http://[::1]:9000"),
                    ("DRAFTSTORE_S3_ADDRESSING", "virtual"),
                ],
                "AWS_ENDPOINT_URL_S3",
                "DRAFTSTORE_S3_ADDRESSING",
            ),
            (
                &[
                    ("AWS_ENDPOINT_URL", "http://localhost:9000"),
                    ("DRAFTSTORE_S3_ADDRESSING", "virtual"),
                ],
                "AWS_ENDPOINT_URL",
                "localhost",
            ),
            // AWS (virtual by default) with clients sent to an IP.
            (
                &[("DRAFTSTORE_S3_PUBLIC_ENDPOINT", "http://10.0.0.7:9000")],
                "DRAFTSTORE_S3_PUBLIC_ENDPOINT",
                "DRAFTSTORE_S3_ADDRESSING",
            ),
            // Virtual-hosted HTTPS cannot reach a bucket name with a dot.
            (
                &[("BUCKET_NAME", "photos.example")],
                "BUCKET_NAME",
                "DRAFTSTORE_S3_ADDRESSING=path",
            ),
            (
                &[("DRAFT_BUCKET", "drafts.example")],
                "DRAFT_BUCKET",
                "DRAFTSTORE_S3_ADDRESSING=path",
            ),
            // One bucket for both: a sweep would delete confirmed objects.
            (
                &[("BUCKET_NAME", "photos"), ("DRAFT_BUCKET", "photos")],
                "DRAFT_BUCKET",
                "BUCKET_NAME",
            ),
            // TTLs beyond what a SigV4 presigned URL may carry.
            (&[("UPLOAD_TTL", "604801")], "UPLOAD_TTL", "604800"),
            (&[("DOWNLOAD_TTL", "9999999")], "DOWNLOAD_TTL", "604800"),
            (
                &[
                    ("DRAFTSTORE_S3_BACKOFF_MS", "1000"),
                    ("DRAFTSTORE_S3_MAX_BACKOFF_MS", "500"),
                ],
                "DRAFTSTORE_S3_MAX_BACKOFF_MS",
                "DRAFTSTORE_S3_BACKOFF_MS",
            ),
            // Credentials for a way of authenticating that is not chosen: open by mistake.
            (
                &[("DRAFTSTORE_API_KEYS", "acme 00")],
                "DRAFTSTORE_API_KEYS",
                "DRAFTSTORE_AUTH=api-keys",
            ),
            (
                &[
                    ("DRAFTSTORE_AUTH", "none"),
                    ("DRAFTSTORE_API_KEYS_FILE", "/keys"),
                ],
                "DRAFTSTORE_API_KEYS_FILE",
                "DRAFTSTORE_AUTH=api-keys",
            ),
            (
                &[
                    ("DRAFTSTORE_AUTH", "api-keys"),
                    ("DRAFTSTORE_API_KEYS", "acme 00"),
                    ("DRAFTSTORE_JWT_SECRET", "x"),
                ],
                "DRAFTSTORE_JWT_SECRET",
                "DRAFTSTORE_AUTH=jwt",
            ),
            // A pre-confirm check that outlasts the request: every confirm would be a 504.
            (
                &[
                    ("DRAFTSTORE_PRECONFIRM_URL", "http://127.0.0.1:9/check"),
                    (
                        "DRAFTSTORE_WEBHOOK_SECRET",
                        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                    ),
                    ("DRAFTSTORE_PRECONFIRM_TIMEOUT_MS", "10000"),
                    ("DRAFTSTORE_REQUEST_TIMEOUT_MS", "3000"),
                ],
                "DRAFTSTORE_PRECONFIRM_TIMEOUT_MS",
                "DRAFTSTORE_REQUEST_TIMEOUT_MS",
            ),
            // CORS origins that no browser could send.
            (
                &[("DRAFTSTORE_CORS_ORIGINS", "https://app.example.com/upload")],
                "DRAFTSTORE_CORS_ORIGINS",
                "https://app.example.com/upload",
            ),
            (
                &[("DRAFTSTORE_CORS_ORIGINS", "app.example.com")],
                "DRAFTSTORE_CORS_ORIGINS",
                "app.example.com",
            ),
        ];
        for (pairs, name, also) in cases {
            let e = parse(pairs).unwrap_err().to_string();
            assert!(e.contains(name) && e.contains(also), "{pairs:?}: {e}");
            assert_eq!(e.lines().count(), 1, "{e}");
            assert!(!e.contains("SK"), "no secret in {e}");
        }
        // The embedded store's public URL is where clients are sent: it must be one.
        for bad in ["ftp://files.example", "files.example:8080", "http://a/b"] {
            let e = ServeConfig::from_lookup(&|k| {
                (k == "DRAFTSTORE_PUBLIC_URL").then(|| bad.to_owned())
            })
            .unwrap_err()
            .to_string();
            assert!(e.starts_with("DRAFTSTORE_PUBLIC_URL"), "{bad}: {e}");
        }
        // What still works: the same variables in combinations that can.
        for ok in [
            &[
                ("AWS_ENDPOINT_URL", "http://127.0.0.1:9000"),
                ("DRAFTSTORE_S3_ADDRESSING", "path"),
                ("BUCKET_NAME", "photos.example"),
            ][..],
            &[
                ("AWS_ENDPOINT_URL", "https://s3.example.com"),
                ("DRAFTSTORE_S3_ADDRESSING", "virtual"),
            ],
            &[
                ("AWS_ENDPOINT_URL", "http://s3.example.com"),
                ("DRAFTSTORE_S3_ADDRESSING", "virtual"),
                ("BUCKET_NAME", "photos.example"),
            ],
            &[("DRAFTSTORE_CORS_ORIGINS", "https://app.example.com, *")],
            &[("GRPC_PORT", "8080"), ("HTTP_PORT", "8080")],
        ] {
            assert!(parse(ok).is_ok(), "{ok:?}: {:?}", parse(ok).err());
        }
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
            ("DRAFTSTORE_CREATE_BUCKETS", "no"),
            ("DRAFTSTORE_BIND", "localhost"),
            ("DRAFTSTORE_MAX_CONNECTIONS", "0"),
            ("DRAFTSTORE_IDLE_TIMEOUT_MS", "soon"),
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

    #[test]
    fn tls_needs_both_files_and_makes_the_store_urls_https() {
        let get = |pairs: &'static [(&'static str, &'static str)]| {
            ServeConfig::from_lookup(&move |k| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| (*v).to_owned())
            })
        };
        let both = get(&[
            ("DRAFTSTORE_TLS_CERT_FILE", "/tls/tls.crt"),
            ("DRAFTSTORE_TLS_KEY_FILE", "/tls/tls.key"),
            ("HTTP_PORT", "8443"),
        ])
        .unwrap();
        assert_eq!(
            both.tls,
            Some(TlsFiles {
                cert: PathBuf::from("/tls/tls.crt"),
                key: PathBuf::from("/tls/tls.key"),
            })
        );
        let StorageChoice::Local(local) = both.storage else {
            panic!("local")
        };
        assert_eq!(local.public_url, "https://127.0.0.1:8443");
        assert_eq!(get(&[]).unwrap().tls, None);
        for (pairs, want) in [
            (
                &[("DRAFTSTORE_TLS_CERT_FILE", "/c")][..],
                "DRAFTSTORE_TLS_CERT_FILE is set without DRAFTSTORE_TLS_KEY_FILE",
            ),
            (
                &[("DRAFTSTORE_TLS_KEY_FILE", "/k")][..],
                "DRAFTSTORE_TLS_KEY_FILE is set without DRAFTSTORE_TLS_CERT_FILE",
            ),
            (
                &[
                    ("DRAFTSTORE_TLS_CERT_FILE", "/c"),
                    ("DRAFTSTORE_TLS_KEY_FILE", "/k"),
                    ("DRAFTSTORE_PUBLIC_URL", "http://files.example"),
                ][..],
                "DRAFTSTORE_PUBLIC_URL",
            ),
        ] {
            let e = get(pairs).unwrap_err().to_string();
            assert!(e.starts_with(want), "{e}");
        }
    }
}
