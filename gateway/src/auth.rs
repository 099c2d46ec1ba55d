//! Who may call the API. `DRAFTSTORE_AUTH=api-keys`: bearer tokens (REST `Authorization:
//! Bearer …`, gRPC `authorization` metadata) checked against SHA-256 hashes of the keys —
//! the plain keys never sit in configuration — each mapped to a tenant. Keys come from a file
//! (re-read when it changes, so keys rotate without a restart) or from an environment variable
//! (a Kubernetes Secret). `none`: anyone, as the original DraftStore.
//!
//! The comparison is constant-time over every configured key; a failed attempt is logged
//! without the token.

use crate::error::{ApiError, Kind};
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

/// A tenant: `[a-z0-9-]{1,63}`. Its objects live under `<tenant>/` in both buckets.
#[derive(Debug, Clone)]
pub struct Tenant(String, Arc<Policy>);

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
        if ok {
            Ok(Self(name.to_owned(), Arc::new(Policy::default())))
        } else {
            Err(format!(
                "tenant {name:?} must be 1..=63 of a-z, 0-9 and '-'"
            ))
        }
    }

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
                        Kind::Forbidden,
                        "TENANT_LIMIT",
                        format!("uploads of this tenant are at most {max} bytes; {n} declared"),
                    ))
                }
                None => {
                    return Err(ApiError::new(
                        Kind::Forbidden,
                        "TENANT_LIMIT",
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
                    Kind::Forbidden,
                    "TENANT_LIMIT",
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
                Kind::TooManyRequests,
                "RATE_LIMITED",
                format!("too many URLs for this tenant; retry in {wait} s"),
            )),
            _ => Ok(()),
        }
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key prefix of this tenant's objects.
    #[must_use]
    pub fn prefix(&self) -> String {
        format!("{}/", self.0)
    }
}

/// Parses key lines: `<tenant> <sha256 hex of the key>`, `#` comments, blank lines; entries
/// may also be separated by `;` (one environment variable).
///
/// # Errors
/// A message naming the first bad line (never echoing a hash).
pub fn parse_keys(text: &str) -> Result<Keys, String> {
    let mut keys = Vec::new();
    for (n, line) in text.split(['\n', ';']).enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut parts = line.split_whitespace();
        let (Some(tenant), Some(hash)) = (parts.next(), parts.next()) else {
            return Err(format!("key entry {} must be '<tenant> <sha256 hex> [max_size=N] [types=a,b] [rate=N/SECS]'", n + 1));
        };
        let mut tenant = Tenant::parse(tenant)?;
        tenant.1 = Arc::new(parse_policy(parts, n + 1)?);
        let mut digest = [0_u8; 32];
        hex::decode_to_slice(hash, &mut digest).map_err(|_| {
            format!(
                "key entry {} for tenant {}: not 64 hex digits",
                n + 1,
                tenant.as_str()
            )
        })?;
        keys.push((digest, tenant));
    }
    if keys.is_empty() {
        return Err("no API keys configured".into());
    }
    Ok(keys)
}

fn parse_policy<'a>(
    options: impl Iterator<Item = &'a str>,
    entry: usize,
) -> Result<Policy, String> {
    let mut policy = Policy::default();
    for option in options {
        let bad = || {
            format!(
                "key entry {entry}: option {option:?} must be max_size=N, types=a,b or rate=N/SECS"
            )
        };
        match option.split_once('=') {
            Some(("max_size", n)) => policy.max_size = Some(n.parse().map_err(|_| bad())?),
            Some(("types", list)) => {
                policy.content_types = Some(
                    list.split(',')
                        .filter(|t| !t.is_empty())
                        .map(str::to_owned)
                        .collect(),
                )
            }
            Some(("rate", spec)) => {
                let (n, secs) = spec.split_once('/').ok_or_else(bad)?;
                let (n, secs): (u32, u64) = (
                    n.parse().map_err(|_| bad())?,
                    secs.parse().map_err(|_| bad())?,
                );
                if n == 0 || secs == 0 {
                    return Err(bad());
                }
                policy.rate = Some(Rate::new(n, Duration::from_secs(secs)));
            }
            _ => return Err(bad()),
        }
    }
    Ok(policy)
}

/// Where the keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    File(PathBuf),
    Inline(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthConfig {
    None,
    ApiKeys(KeySource),
    Jwt(JwtConfig),
}

/// How JWTs are checked. `Debug` hides the key.
#[derive(Clone, PartialEq, Eq)]
pub struct JwtConfig {
    /// An HMAC secret (HS256), or a PEM public key (RS256, ES256, EdDSA).
    pub key: JwtKey,
    pub issuer: String,
    pub audience: String,
    /// The claim naming the tenant.
    pub tenant_claim: String,
}

#[derive(Clone, PartialEq, Eq)]
pub enum JwtKey {
    Secret(String),
    PublicPem(Vec<u8>),
}

impl std::fmt::Debug for JwtConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let key = match self.key {
            JwtKey::Secret(_) => "<HMAC secret>",
            JwtKey::PublicPem(_) => "<public key>",
        };
        f.debug_struct("JwtConfig")
            .field("key", &key)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("tenant_claim", &self.tenant_claim)
            .finish()
    }
}

struct Jwt {
    key: jsonwebtoken::DecodingKey,
    validation: jsonwebtoken::Validation,
    tenant_claim: String,
}

impl Jwt {
    fn new(config: &JwtConfig) -> Result<Self, String> {
        use jsonwebtoken::{Algorithm, DecodingKey, Validation};
        let (key, algorithms) = match &config.key {
            JwtKey::Secret(secret) => (
                DecodingKey::from_secret(secret.as_bytes()),
                vec![Algorithm::HS256],
            ),
            JwtKey::PublicPem(pem) => {
                if let Ok(k) = DecodingKey::from_rsa_pem(pem) {
                    (k, vec![Algorithm::RS256])
                } else if let Ok(k) = DecodingKey::from_ec_pem(pem) {
                    (k, vec![Algorithm::ES256])
                } else {
                    (
                        DecodingKey::from_ed_pem(pem).map_err(|_| {
                            "the JWT public key is not an RSA, EC or Ed25519 PEM".to_owned()
                        })?,
                        vec![Algorithm::EdDSA],
                    )
                }
            }
        };
        let mut validation =
            Validation::new(algorithms.first().copied().unwrap_or(Algorithm::HS256));
        validation.algorithms = algorithms;
        validation.set_issuer(&[config.issuer.as_str()]);
        validation.set_audience(&[config.audience.as_str()]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.leeway = 30;
        Ok(Self {
            key,
            validation,
            tenant_claim: config.tenant_claim.clone(),
        })
    }

    fn tenant(&self, token: &str) -> Result<Tenant, ApiError> {
        use jsonwebtoken::errors::ErrorKind;
        let data = jsonwebtoken::decode::<serde_json::Value>(token, &self.key, &self.validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => unauthenticated("the token has expired"),
                ErrorKind::InvalidIssuer | ErrorKind::InvalidAudience => {
                    unauthenticated("the token is for another issuer or audience")
                }
                _ => unauthenticated("invalid token"),
            })?;
        data.claims
            .get(&self.tenant_claim)
            .and_then(serde_json::Value::as_str)
            .and_then(|t| Tenant::parse(t).ok())
            .ok_or_else(|| {
                ApiError::new(
                    Kind::Forbidden,
                    "NO_TENANT",
                    format!(
                        "the token names no valid tenant in its {:?} claim",
                        self.tenant_claim
                    ),
                )
            })
    }
}

struct Loaded {
    keys: Keys,
    modified: Option<SystemTime>,
    checked: Instant,
}

pub struct Authenticator {
    config: AuthConfig,
    public_paths: Vec<String>,
    loaded: RwLock<Loaded>,
    jwt: Option<Jwt>,
}

/// A file is looked at for changes at most this often.
const RELOAD_EVERY: Duration = Duration::from_secs(1);

/// Key digests with their tenants.
type Keys = Vec<([u8; 32], Tenant)>;

fn load(source: &KeySource) -> Result<(Keys, Option<SystemTime>), String> {
    match source {
        KeySource::Inline(text) => parse_keys(text).map(|k| (k, None)),
        KeySource::File(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
            parse_keys(&text).map(|k| (k, modified))
        }
    }
}

fn unauthenticated(message: &str) -> ApiError {
    ApiError::new(Kind::Unauthenticated, "UNAUTHENTICATED", message)
}

/// Constant-time equality of two digests.
fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0_u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Authenticator {
    /// # Errors
    /// The keys cannot be read or parsed.
    pub fn new(config: AuthConfig) -> Result<Self, String> {
        let (keys, modified) = match &config {
            AuthConfig::None | AuthConfig::Jwt(_) => (Vec::new(), None),
            AuthConfig::ApiKeys(source) => load(source)?,
        };
        let jwt = match &config {
            AuthConfig::Jwt(j) => Some(Jwt::new(j)?),
            _ => None,
        };
        let public_paths = ["/health", "/ready", "/metrics", "/openapi.json"]
            .map(String::from)
            .to_vec();
        Ok(Self {
            config,
            public_paths,
            loaded: RwLock::new(Loaded {
                keys,
                modified,
                checked: Instant::now(),
            }),
            jwt,
        })
    }

    /// The REST paths reachable without credentials (default: the probes, metrics, the API
    /// document).
    #[must_use]
    pub fn with_public_paths(mut self, paths: Vec<String>) -> Self {
        self.public_paths = paths;
        self
    }

    /// Reachable without credentials: a public path, the health RPC, and the local store's
    /// presigned URLs (which carry their own signature).
    #[must_use]
    pub fn is_public(&self, path: &str, is_grpc: bool) -> bool {
        if is_grpc {
            return path == draftstore_proto::grpc::health::v1::CHECK_PATH;
        }
        self.public_paths.iter().any(|p| p == path) || path.starts_with(crate::local::PREFIX)
    }

    #[must_use]
    pub fn is_open(&self) -> bool {
        self.config == AuthConfig::None
    }

    /// Re-reads the key file when it changed (at most once a second). A file that no longer
    /// parses keeps the previous keys and is logged.
    fn refresh(&self) {
        let AuthConfig::ApiKeys(source @ KeySource::File(path)) = &self.config else {
            return;
        };
        {
            let loaded = self
                .loaded
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if loaded.checked.elapsed() < RELOAD_EVERY {
                return;
            }
        }
        let mut loaded = self
            .loaded
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        loaded.checked = Instant::now();
        let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        if modified == loaded.modified {
            return;
        }
        match load(source) {
            Ok((keys, modified)) => {
                tracing::info!(keys = keys.len(), "API keys reloaded");
                loaded.keys = keys;
                loaded.modified = modified;
            }
            Err(e) => {
                tracing::error!(error = %e, "API key file changed but cannot be used; keeping the previous keys")
            }
        }
    }

    /// The caller's tenant (`None` when authentication is off).
    ///
    /// # Errors
    /// 401 / UNAUTHENTICATED for a missing, malformed or unknown token.
    pub fn authenticate(
        &self,
        authorization: Option<&http::HeaderValue>,
    ) -> Result<Option<Tenant>, ApiError> {
        if self.is_open() {
            return Ok(None);
        }
        self.refresh();
        let header =
            authorization.ok_or_else(|| unauthenticated("missing Authorization: Bearer <key>"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| unauthenticated("the Authorization header must be 'Bearer <key>'"))?;
        if let Some(jwt) = &self.jwt {
            return jwt.tenant(token).map(Some);
        }
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let loaded = self
            .loaded
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Look at every key, whatever matches, so timing says nothing about which did.
        let mut found = None;
        for (hash, tenant) in &loaded.keys {
            if same(hash, &digest) && found.is_none() {
                found = Some(tenant.clone());
            }
        }
        found
            .map(Some)
            .ok_or_else(|| unauthenticated("unknown API key"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(key: &str) -> String {
        hex::encode(Sha256::digest(key.as_bytes()))
    }

    #[test]
    fn keys_parse_and_authenticate_to_tenants() {
        let text = format!(
            "# tenants\nacme {}\n\nglobex {}",
            hash("k-acme"),
            hash("k-globex")
        );
        let auth = Authenticator::new(AuthConfig::ApiKeys(KeySource::Inline(text))).unwrap();
        let bearer = |k: &str| http::HeaderValue::from_str(&format!("Bearer {k}")).unwrap();
        assert_eq!(
            auth.authenticate(Some(&bearer("k-acme")))
                .unwrap()
                .unwrap()
                .as_str(),
            "acme"
        );
        assert_eq!(
            auth.authenticate(Some(&bearer("k-globex")))
                .unwrap()
                .unwrap()
                .as_str(),
            "globex"
        );
        for bad in [
            None,
            Some(bearer("nope")),
            Some(http::HeaderValue::from_static("Basic a2V5")),
            Some(http::HeaderValue::from_static("Bearer ")),
        ] {
            let e = auth.authenticate(bad.as_ref()).unwrap_err();
            assert_eq!(e.http_status(), 401);
            assert!(!e.message.contains("nope"));
        }
    }

    #[test]
    fn bad_key_lists_are_refused_without_echoing_hashes() {
        for bad in [
            "",
            "acme",
            "acme abc",
            "Acme 00",
            &format!("acme {} extra", hash("x")),
        ] {
            let e = parse_keys(bad).unwrap_err();
            assert!(!e.contains(&hash("x")), "{e}");
        }
        assert_eq!(
            parse_keys(&format!("a {};b {}", hash("1"), hash("2")))
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn limits_parse_and_apply() {
        let keys = parse_keys(&format!(
            "acme {} max_size=100 types=image/png,image/jpeg rate=2/60",
            hash("k")
        ))
        .unwrap();
        let tenant = &keys[0].1;
        let c = |len: Option<u64>, ct: Option<&str>| draftstore_core::UploadConstraints {
            content_length: len,
            content_type: ct.map(String::from),
            ..Default::default()
        };
        assert_eq!(
            tenant
                .allow_upload(&c(Some(200), Some("image/png")))
                .unwrap_err()
                .http_status(),
            403
        );
        assert_eq!(
            tenant
                .allow_upload(&c(None, Some("image/png")))
                .unwrap_err()
                .http_status(),
            403
        );
        assert_eq!(
            tenant
                .allow_upload(&c(Some(10), Some("text/html")))
                .unwrap_err()
                .http_status(),
            403
        );
        assert!(tenant.allow_upload(&c(Some(10), Some("image/png"))).is_ok());
        assert!(tenant.allow_url().is_ok());
        let limited = tenant.allow_url().unwrap_err();
        assert_eq!((limited.http_status(), limited.code), (429, "RATE_LIMITED"));
    }

    fn token(secret: &str, claims: &serde_json::Value) -> String {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            claims,
            &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    }

    #[test]
    fn jwts_are_checked_for_signature_issuer_audience_expiry_and_tenant() {
        let config = JwtConfig {
            key: JwtKey::Secret("jwt-secret".into()),
            issuer: "https://idp".into(),
            audience: "draftstore".into(),
            tenant_claim: "tenant".into(),
        };
        assert!(!format!("{config:?}").contains("jwt-secret"));
        let auth = Authenticator::new(AuthConfig::Jwt(config)).unwrap();
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let claims = |iss: &str, aud: &str, exp: u64, tenant: Option<&str>| {
            let mut c = serde_json::json!({"iss": iss, "aud": aud, "exp": exp});
            if let Some(t) = tenant {
                c["tenant"] = serde_json::Value::from(t);
            }
            c
        };
        let check = |t: String| {
            auth.authenticate(Some(
                &http::HeaderValue::from_str(&format!("Bearer {t}")).unwrap(),
            ))
        };
        let good = token(
            "jwt-secret",
            &claims("https://idp", "draftstore", now + 600, Some("acme")),
        );
        assert_eq!(check(good).unwrap().unwrap().as_str(), "acme");
        for (t, status) in [
            (
                token(
                    "jwt-secret",
                    &claims("https://idp", "draftstore", now - 600, Some("acme")),
                ),
                401,
            ),
            (
                token(
                    "jwt-secret",
                    &claims("https://evil", "draftstore", now + 600, Some("acme")),
                ),
                401,
            ),
            (
                token(
                    "jwt-secret",
                    &claims("https://idp", "other", now + 600, Some("acme")),
                ),
                401,
            ),
            (
                token(
                    "not-the-secret",
                    &claims("https://idp", "draftstore", now + 600, Some("acme")),
                ),
                401,
            ),
            (
                token(
                    "jwt-secret",
                    &claims("https://idp", "draftstore", now + 600, None),
                ),
                403,
            ),
            (
                token(
                    "jwt-secret",
                    &claims("https://idp", "draftstore", now + 600, Some("../Acme")),
                ),
                403,
            ),
            ("not.a.jwt".to_owned(), 401),
        ] {
            assert_eq!(check(t).unwrap_err().http_status(), status);
        }
    }

    #[test]
    fn a_changed_key_file_is_reloaded() {
        let dir = std::env::temp_dir().join(format!("draftstore-keys-{}", fastrand::u64(..)));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("keys");
        std::fs::write(&file, format!("acme {}", hash("old"))).unwrap();
        let auth = Authenticator::new(AuthConfig::ApiKeys(KeySource::File(file.clone()))).unwrap();
        let bearer = |k: &str| http::HeaderValue::from_str(&format!("Bearer {k}")).unwrap();
        assert!(auth.authenticate(Some(&bearer("old"))).is_ok());
        std::thread::sleep(Duration::from_millis(1100));
        std::fs::write(&file, format!("acme {}", hash("new"))).unwrap();
        let later = SystemTime::now() + Duration::from_secs(2);
        let _ = std::fs::File::options()
            .write(true)
            .open(&file)
            .and_then(|f| f.set_modified(later));
        assert!(
            auth.authenticate(Some(&bearer("new"))).is_ok(),
            "new key works without a restart"
        );
        assert!(
            auth.authenticate(Some(&bearer("old"))).is_err(),
            "old key is gone"
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
