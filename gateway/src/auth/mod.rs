//! Who may call the API. `DRAFTSTORE_AUTH=api-keys`: bearer tokens (REST `Authorization:
//! Bearer …`, gRPC `authorization` metadata) checked against SHA-256 hashes of the keys —
//! the plain keys never sit in configuration — each mapped to a tenant. Keys come from a file
//! (re-read when it changes, so keys rotate without a restart) or from an environment variable
//! (a Kubernetes Secret). `DRAFTSTORE_AUTH=jwt`: bearer JWTs checked with an HMAC secret or a
//! PEM public key, issuer and audience matched, the tenant taken from a claim (`jwt`; JWT tenants
//! have no limits). `none`: anyone, as the original DraftStore. A tenant's limits (size, types,
//! URL rate) live in `tenant`, the key file's format in `keys`; a rate is counted per tenant, in
//! this process or shared through Redis (`ratelimit/`).
//!
//! The comparison is constant-time over every configured key; a failed attempt is logged
//! without the token.

mod jwt;
mod keys;
pub mod ratelimit;
mod tenant;
mod upload_token;

pub use jwt::{JwtConfig, JwtKey};
pub use keys::{parse_keys, parse_keys_with, KeySource};
pub use ratelimit::{Rate, RateSpec, RedisLimiter};
pub use tenant::{Policy, Tenant};

use crate::api::companion::UploadTokens;
use crate::api::error::{ApiError, Code};
use jwt::Jwt;
use keys::{carry_over, load, Keys};
use sha2::{Digest, Sha256};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

/// Who may call (`DRAFTSTORE_AUTH`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthConfig {
    /// Anyone.
    None,
    /// Bearer API keys, checked against their SHA-256 hashes.
    ApiKeys(KeySource),
    /// Bearer JWTs.
    Jwt(JwtConfig),
}

struct Loaded {
    keys: Keys,
    modified: Option<SystemTime>,
    checked: Instant,
}

/// Checks a request's credentials against the configured [`AuthConfig`] and names its tenant.
pub struct Authenticator {
    config: AuthConfig,
    public_paths: Vec<String>,
    /// The gRPC health check and reflection need no credentials.
    public_grpc_discovery: bool,
    loaded: RwLock<Loaded>,
    jwt: Option<Jwt>,
    /// Counts API-key tenants' rates across replicas, when set.
    shared: Option<Arc<RedisLimiter>>,
    /// Mints and checks upload tokens (Companion's routes under `/s3-token/<token>/`), when on.
    upload_tokens: Option<Arc<UploadTokens>>,
}

/// A file is looked at for changes at most this often.
const RELOAD_EVERY: Duration = Duration::from_secs(1);

pub(super) fn unauthenticated(message: &str) -> ApiError {
    ApiError::new(Code::Unauthenticated, message)
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
            AuthConfig::ApiKeys(source) => load(source, None)?,
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
            public_grpc_discovery: true,
            loaded: RwLock::new(Loaded {
                keys,
                modified,
                checked: Instant::now(),
            }),
            jwt,
            shared: None,
            upload_tokens: None,
        })
    }

    /// Counts the API-key tenants' rates through `shared` (Redis) from now on: the keys are
    /// loaded again with rates bound to it.
    ///
    /// # Errors
    /// The keys can no longer be read or parsed.
    pub fn with_shared_limits(mut self, shared: Arc<RedisLimiter>) -> Result<Self, String> {
        if let AuthConfig::ApiKeys(source) = &self.config {
            let (keys, modified) = load(source, Some(&shared))?;
            let loaded = self
                .loaded
                .get_mut()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            loaded.keys = keys;
            loaded.modified = modified;
        }
        self.shared = Some(shared);
        Ok(self)
    }

    /// Whether any tenant can have a rate limit (API keys; JWT tenants have no limits).
    #[must_use]
    pub fn has_limits(&self) -> bool {
        matches!(self.config, AuthConfig::ApiKeys(_))
    }

    /// Whether the gRPC health check and server reflection need no credentials (default
    /// true, `DRAFTSTORE_PUBLIC_GRPC_DISCOVERY`).
    #[must_use]
    pub fn with_public_grpc_discovery(mut self, public: bool) -> Self {
        self.public_grpc_discovery = public;
        self
    }

    /// The REST paths reachable without credentials (default: the probes, metrics, the API
    /// document).
    #[must_use]
    pub fn with_public_paths(mut self, paths: Vec<String>) -> Self {
        self.public_paths = paths;
        self
    }

    /// Reachable without credentials: a public path, or (unless configured otherwise) the
    /// health and reflection RPCs, over every gRPC protocol.
    #[must_use]
    pub fn is_public(&self, path: &str, is_grpc: bool) -> bool {
        if is_grpc {
            return self.public_grpc_discovery
                && crate::api::grpc::Rpc::of(path)
                    .is_some_and(crate::api::grpc::Rpc::is_discovery);
        }
        self.public_paths.iter().any(|p| p == path)
    }

    /// Whether anyone may call (`DRAFTSTORE_AUTH=none`).
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
        match load(source, self.shared.as_ref()) {
            Ok((keys, modified)) => {
                tracing::info!(keys = keys.len(), "API keys reloaded");
                loaded.keys = carry_over(&loaded.keys, keys);
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
            &format!("{} acme", hash("x")),
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

    #[tokio::test]
    async fn limits_parse_and_apply() {
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
                .await
                .unwrap_err()
                .http_status(),
            403
        );
        assert_eq!(
            tenant
                .allow_upload(&c(None, Some("image/png")))
                .await
                .unwrap_err()
                .http_status(),
            403
        );
        assert_eq!(
            tenant
                .allow_upload(&c(Some(10), Some("text/html")))
                .await
                .unwrap_err()
                .http_status(),
            403
        );
        assert!(tenant
            .allow_upload(&c(Some(10), Some("image/png")))
            .await
            .is_ok());
        assert!(tenant.allow_url().await.is_ok());
        let limited = tenant.allow_url().await.unwrap_err();
        assert_eq!(
            (limited.http_status(), limited.code.as_str()),
            (429, "RATE_LIMITED")
        );
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

    /// `nbf` and `exp` get the same leeway, [`jwt::LEEWAY_SECS`], on either side of now.
    #[test]
    fn jwt_not_before_and_expiry_share_one_leeway() {
        let auth = Authenticator::new(AuthConfig::Jwt(JwtConfig {
            key: JwtKey::Secret("jwt-secret".into()),
            issuer: "https://idp".into(),
            audience: "draftstore".into(),
            tenant_claim: "tenant".into(),
        }))
        .unwrap();
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let leeway = jwt::LEEWAY_SECS;
        let check = |exp: u64, nbf: Option<u64>| {
            let mut c = serde_json::json!({"iss": "https://idp", "aud": "draftstore",
                "exp": exp, "tenant": "acme"});
            if let Some(nbf) = nbf {
                c["nbf"] = serde_json::Value::from(nbf);
            }
            let t = token("jwt-secret", &c);
            auth.authenticate(Some(
                &http::HeaderValue::from_str(&format!("Bearer {t}")).unwrap(),
            ))
            .map(|_| ())
            .map_err(|e| (e.http_status(), e.to_string()))
        };
        let later = now + 3600;
        assert_eq!(check(later, None), Ok(()), "nbf is optional");
        assert_eq!(check(later, Some(now - 60)), Ok(()));
        assert_eq!(
            check(later, Some(now + leeway / 2)),
            Ok(()),
            "within the leeway"
        );
        let (status, message) = check(later, Some(now + leeway + 60)).unwrap_err();
        assert_eq!(status, 401);
        assert!(message.contains("not valid yet"), "{message}");
        assert_eq!(check(later, Some(now + 86_400)).unwrap_err().0, 401);
        // The same leeway on the other side, for exp.
        assert_eq!(check(now - leeway / 2, None), Ok(()));
        assert_eq!(check(now - leeway - 60, None).unwrap_err().0, 401);
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
