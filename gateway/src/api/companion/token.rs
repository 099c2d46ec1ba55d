//! Upload tokens: short-lived credentials carried in a URL path, for clients that cannot send
//! an `Authorization` header. Uppy 6's Companion client (`@uppy/aws-s3` 6.x,
//! `src/s3-client/CompanionS3.ts`) calls `fetch(companionEndpoint + "/s3" + path)` with no
//! header of ours, so a browser page first asks `POST /api/v1/upload-token` (with its bearer
//! key) and then points Uppy at `<base>/s3-token/<token>`.
//!
//! A token is `<payload>.<mac>`, both unpadded base64url (RFC 4648 §5), so it is one safe path
//! segment: `payload` is `v1.<expires, Unix seconds>.<tenant>` (the tenant empty when
//! authentication is off), `mac` is HMAC-SHA256 (RFC 2104) of `draftstore-upload-token\n` and
//! the payload under the server's key. Nothing is stored: any replica holding the same key
//! (`DRAFTSTORE_UPLOAD_TOKEN_SECRET`) accepts any other's tokens. A token names its tenant,
//! never its limits: they are the tenant's current ones when the token is used, and a tenant
//! whose keys were all removed can no longer use its tokens.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Bytes of key material a configured secret must have at least.
pub const MIN_SECRET_BYTES: usize = 32;

/// The version tag leading every payload.
const VERSION: &str = "v1";

/// What the MAC covers before the payload, so a MAC made with this key for anything else
/// cannot pass as a token.
const DOMAIN: &[u8] = b"draftstore-upload-token\n";

/// Longest token accepted (a tenant is at most 63 bytes, so real tokens are under 200).
const MAX_TOKEN_BYTES: usize = 512;

/// Why a token is refused. The message never quotes the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// Not of the token's form, or its MAC does not match (tampered, or another key's).
    Invalid,
    /// Past its expiry.
    Expired,
}

impl TokenError {
    /// A message for the caller.
    #[must_use]
    pub fn message(self) -> &'static str {
        match self {
            Self::Invalid => "the upload token is not valid: ask POST /api/v1/upload-token for one",
            Self::Expired => {
                "the upload token has expired: ask POST /api/v1/upload-token for a new one"
            }
        }
    }
}

/// Mints and checks upload tokens with one HMAC key. `Debug` hides the key.
#[derive(Clone)]
pub struct UploadTokens {
    /// HMAC-SHA256 keyed once; cloned for each token.
    keyed: HmacSha256,
    /// Seconds a token lives (`UPLOAD_TTL`).
    pub ttl: u64,
    /// Base URL `companion_endpoint` starts with (`DRAFTSTORE_PUBLIC_URL` on the embedded
    /// store); `None`: the request's own scheme and host.
    pub base: Option<String>,
    /// The server speaks TLS (the scheme of a base taken from the request).
    pub https: bool,
}

impl std::fmt::Debug for UploadTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UploadTokens")
            .field("key", &"<redacted>")
            .field("ttl", &self.ttl)
            .field("base", &self.base)
            .field("https", &self.https)
            .finish()
    }
}

impl UploadTokens {
    /// Tokens signed with `key` (the configured secret's bytes, or random bytes made at start),
    /// living `ttl` seconds.
    ///
    /// # Errors
    /// An empty key.
    pub fn new(key: &[u8], ttl: u64) -> Result<Self, String> {
        if key.is_empty() {
            return Err("the upload token key is empty".to_owned());
        }
        let keyed = HmacSha256::new_from_slice(key).map_err(|e| e.to_string())?;
        Ok(Self {
            keyed,
            ttl,
            base: None,
            https: false,
        })
    }

    /// Tokens signed with a random key of this process only (the embedded store, where one
    /// process owns the data folder).
    ///
    /// # Errors
    /// The system's random source fails.
    pub fn random(ttl: u64) -> Result<Self, String> {
        let mut key = [0_u8; 32];
        getrandom::getrandom(&mut key)
            .map_err(|e| format!("no random bytes for the upload token key: {e}"))?;
        Self::new(&key, ttl)
    }

    fn mac(&self, payload: &[u8]) -> HmacSha256 {
        let mut mac = self.keyed.clone();
        mac.update(DOMAIN);
        mac.update(payload);
        mac
    }

    /// A token for `tenant` (`None`: authentication is off) minted at `now` (Unix seconds):
    /// the token and its expiry (Unix seconds).
    #[must_use]
    pub fn mint(&self, tenant: Option<&str>, now: i64) -> (String, i64) {
        let expires = now.saturating_add(i64::try_from(self.ttl).unwrap_or(i64::MAX));
        let payload = format!("{VERSION}.{expires}.{}", tenant.unwrap_or(""));
        let tag = self.mac(payload.as_bytes()).finalize().into_bytes();
        let token = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(payload.as_bytes()),
            URL_SAFE_NO_PAD.encode(tag)
        );
        (token, expires)
    }

    /// The tenant a valid, unexpired `token` names (`None`: minted with authentication off).
    /// The MAC is compared in constant time, before anything in the payload is trusted.
    ///
    /// # Errors
    /// [`TokenError::Invalid`] for anything not minted with this key; [`TokenError::Expired`]
    /// once `now` (Unix seconds) is past its expiry.
    pub fn verify(&self, token: &str, now: i64) -> Result<Option<String>, TokenError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::Invalid);
        }
        let (payload, tag) = token.split_once('.').ok_or(TokenError::Invalid)?;
        let payload = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| TokenError::Invalid)?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| TokenError::Invalid)?;
        self.mac(&payload)
            .verify_slice(&tag)
            .map_err(|_| TokenError::Invalid)?;
        let payload = std::str::from_utf8(&payload).map_err(|_| TokenError::Invalid)?;
        let mut fields = payload.splitn(3, '.');
        let (Some(VERSION), Some(expires), Some(tenant)) =
            (fields.next(), fields.next(), fields.next())
        else {
            return Err(TokenError::Invalid);
        };
        let expires: i64 = expires.parse().map_err(|_| TokenError::Invalid)?;
        if now > expires {
            return Err(TokenError::Expired);
        }
        Ok((!tenant.is_empty()).then(|| tenant.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn a_token_names_its_tenant_until_it_expires() {
        let tokens = UploadTokens::new(KEY, 600).unwrap();
        let (token, expires) = tokens.mint(Some("acme"), 1_000);
        assert_eq!(expires, 1_600);
        assert!(token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)));
        assert_eq!(tokens.verify(&token, 1_000), Ok(Some("acme".to_owned())));
        assert_eq!(tokens.verify(&token, 1_600), Ok(Some("acme".to_owned())));
        assert_eq!(tokens.verify(&token, 1_601), Err(TokenError::Expired));
        let (open, _) = tokens.mint(None, 1_000);
        assert_eq!(tokens.verify(&open, 1_000), Ok(None));
    }

    #[test]
    fn tampered_or_foreign_tokens_are_invalid() {
        let tokens = UploadTokens::new(KEY, 600).unwrap();
        let (token, _) = tokens.mint(Some("acme"), 1_000);
        let other = UploadTokens::new(b"another key, also thirty-two bytes", 600).unwrap();
        assert_eq!(other.verify(&token, 1_000), Err(TokenError::Invalid));
        // Another tenant or a later expiry in the payload, the same MAC.
        let (payload, tag) = token.split_once('.').unwrap();
        for forged in ["v1.1600.globex", "v1.99999999999.acme"] {
            let forged = format!("{}.{tag}", URL_SAFE_NO_PAD.encode(forged));
            assert_eq!(tokens.verify(&forged, 1_000), Err(TokenError::Invalid));
        }
        // Every single-character change is refused.
        for at in 0..token.len() {
            let mut bytes = token.clone().into_bytes();
            bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
            let changed = String::from_utf8(bytes).unwrap();
            if changed != token {
                assert!(tokens.verify(&changed, 1_000).is_err(), "{at}");
            }
        }
        for bad in ["", ".", "abc", &format!("{payload}."), &"a".repeat(600)] {
            assert_eq!(tokens.verify(bad, 1_000), Err(TokenError::Invalid), "{bad}");
        }
        assert!(!format!("{tokens:?}").contains("0123456789"));
    }
}
