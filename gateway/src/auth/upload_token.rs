//! Upload tokens as credentials ([`crate::api::companion::token`]): the tenant a token names,
//! looked up among the current credentials, so a token never outlives its tenant's keys and
//! always carries the tenant's current limits.

use super::{unauthenticated, Authenticator, Tenant};
use crate::api::companion::UploadTokens;
use crate::api::error::ApiError;
use std::sync::Arc;

impl Authenticator {
    /// Accepts and mints upload tokens with `tokens` (`None`: upload tokens are off).
    #[must_use]
    pub fn with_upload_tokens(mut self, tokens: Option<UploadTokens>) -> Self {
        self.upload_tokens = tokens.map(Arc::new);
        self
    }

    /// The upload tokens' minter, when they are on.
    #[must_use]
    pub fn upload_tokens(&self) -> Option<&Arc<UploadTokens>> {
        self.upload_tokens.as_ref()
    }

    /// The tenant an upload token names, with its current limits (`None` with authentication
    /// off). The token is never quoted or logged.
    ///
    /// # Errors
    /// 401 for a token that is off, malformed, tampered, expired, or whose tenant no longer has
    /// credentials (every API key of it removed), or one minted without a tenant while
    /// authentication is on.
    pub fn authenticate_upload_token(&self, token: &str) -> Result<Option<Tenant>, ApiError> {
        let tokens = self
            .upload_tokens
            .as_ref()
            .ok_or_else(|| unauthenticated("upload tokens are off on this server"))?;
        let now = crate::clock::unix_now().unwrap_or(i64::MAX);
        let named = tokens
            .verify(token, now)
            .map_err(|e| unauthenticated(e.message()))?;
        if self.is_open() {
            return Ok(None);
        }
        let name = named.ok_or_else(|| {
            unauthenticated(
                "the upload token names no tenant: ask POST /api/v1/upload-token with your key",
            )
        })?;
        if self.jwt.is_some() {
            return Tenant::parse(&name)
                .map(Some)
                .map_err(|_| unauthenticated("the upload token names no valid tenant"));
        }
        self.refresh();
        let loaded = self
            .loaded
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        loaded
            .keys
            .iter()
            .find(|(_, tenant)| tenant.as_str() == name)
            .map(|(_, tenant)| Some(tenant.clone()))
            .ok_or_else(|| unauthenticated("the upload token's tenant no longer has an API key"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{AuthConfig, KeySource};
    use sha2::{Digest, Sha256};

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn tokens() -> UploadTokens {
        UploadTokens::new(KEY, 600).unwrap()
    }

    fn now() -> i64 {
        crate::clock::unix_now().unwrap()
    }

    #[test]
    fn a_token_is_its_tenant_with_the_current_limits() {
        let line = format!(
            "acme {} max_size=100",
            hex::encode(Sha256::digest(b"k-acme"))
        );
        let auth = Authenticator::new(AuthConfig::ApiKeys(KeySource::Inline(line)))
            .unwrap()
            .with_upload_tokens(Some(tokens()));
        let (token, _) = tokens().mint(Some("acme"), now());
        let tenant = auth.authenticate_upload_token(&token).unwrap().unwrap();
        assert_eq!(tenant.as_str(), "acme");
        assert_eq!(tenant.policy().max_size, Some(100));
        // A tenant without keys, a token without a tenant: 401.
        for token in [
            tokens().mint(Some("globex"), now()).0,
            tokens().mint(None, now()).0,
        ] {
            let e = auth.authenticate_upload_token(&token).unwrap_err();
            assert_eq!(e.http_status(), 401, "{}", e.message);
        }
        // Tokens off: every token is refused.
        let off = Authenticator::new(AuthConfig::None).unwrap();
        assert_eq!(
            off.authenticate_upload_token(&token)
                .unwrap_err()
                .http_status(),
            401
        );
        // Authentication off: a valid token, no tenant.
        let open = Authenticator::new(AuthConfig::None)
            .unwrap()
            .with_upload_tokens(Some(tokens()));
        assert_eq!(open.authenticate_upload_token(&token).unwrap(), None);
        assert!(open.authenticate_upload_token("forged.token").is_err());
    }
}
