//! JWT checking: signature (HMAC secret or PEM public key), issuer, audience, expiry (`exp`,
//! required), not-before (`nbf`, when present; RFC 7519 §4.1.5), both with [`LEEWAY_SECS`], and
//! the tenant claim.

use super::tenant::Tenant;
use super::unauthenticated;
use crate::api::error::{ApiError, Code};

/// How JWTs are checked. `Debug` hides the key.
#[derive(Clone, PartialEq, Eq)]
pub struct JwtConfig {
    /// An HMAC secret (HS256), or a PEM public key (RS256, ES256, EdDSA).
    pub key: JwtKey,
    /// The `iss` a token must carry.
    pub issuer: String,
    /// The `aud` a token must carry.
    pub audience: String,
    /// The claim naming the tenant.
    pub tenant_claim: String,
}

/// How tokens are checked. `Debug` never shows a secret.
#[derive(Clone, PartialEq, Eq)]
pub enum JwtKey {
    /// An HMAC secret (HS256).
    Secret(String),
    /// A PEM public key (RS256, ES256 or EdDSA).
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

/// Seconds of clock skew allowed on `exp` and on `nbf`.
pub const LEEWAY_SECS: u64 = 30;

pub(super) struct Jwt {
    key: jsonwebtoken::DecodingKey,
    validation: jsonwebtoken::Validation,
    tenant_claim: String,
}

impl Jwt {
    pub(super) fn new(config: &JwtConfig) -> Result<Self, String> {
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
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        Ok(Self {
            key,
            validation,
            tenant_claim: config.tenant_claim.clone(),
        })
    }

    pub(super) fn tenant(&self, token: &str) -> Result<Tenant, ApiError> {
        use jsonwebtoken::errors::ErrorKind;
        let data = jsonwebtoken::decode::<serde_json::Value>(token, &self.key, &self.validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => unauthenticated("the token has expired"),
                ErrorKind::ImmatureSignature => {
                    unauthenticated("the token is not valid yet (its nbf is in the future)")
                }
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
                    Code::NoTenant,
                    format!(
                        "the token names no valid tenant in its {:?} claim",
                        self.tenant_claim
                    ),
                )
            })
    }
}
