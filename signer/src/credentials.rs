//! Access key, secret and optional session token. `Debug` never shows the secret or the token.

use crate::Error;
use std::fmt;

/// AWS-style credentials. Built by [`Credentials::new`], which rejects what would corrupt a
/// credential scope (`/`, white space or control characters in the access key).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    access_key: String,
    secret: String,
    session_token: Option<String>,
}

impl Credentials {
    /// # Errors
    /// [`Error::InvalidCredentials`] when the access key is empty or holds `/`, white space or
    /// control characters, when the secret is empty, or when the session token is empty or holds
    /// control characters.
    pub fn new(
        access_key: impl Into<String>,
        secret: impl Into<String>,
        session_token: Option<String>,
    ) -> Result<Self, Error> {
        let access_key = access_key.into();
        let secret = secret.into();
        if access_key.is_empty()
            || access_key
                .chars()
                .any(|c| c == '/' || c.is_whitespace() || c.is_control())
        {
            return Err(Error::InvalidCredentials(
                "access key must be non-empty without '/', spaces or control characters",
            ));
        }
        if secret.is_empty() {
            return Err(Error::InvalidCredentials("secret key must be non-empty"));
        }
        if session_token
            .as_deref()
            .is_some_and(|t| t.is_empty() || t.chars().any(char::is_control))
        {
            return Err(Error::InvalidCredentials(
                "session token must be non-empty without control characters",
            ));
        }
        Ok(Self {
            access_key,
            secret,
            session_token,
        })
    }

    /// The access key id (not secret: it appears in every signed URL).
    #[must_use]
    pub fn access_key(&self) -> &str {
        &self.access_key
    }

    pub(crate) fn secret(&self) -> &str {
        &self.secret
    }

    /// The session token, if these are temporary credentials.
    #[must_use]
    pub fn session_token(&self) -> Option<&str> {
        self.session_token.as_deref()
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key", &self.access_key)
            .field("secret", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_secret_and_token() {
        let c = Credentials::new("AKID", "very-secret", Some("tok-123".into())).unwrap();
        let shown = format!("{c:?}");
        assert!(shown.contains("AKID"));
        assert!(!shown.contains("very-secret"));
        assert!(!shown.contains("tok-123"));
    }

    #[test]
    fn malformed_credentials_are_rejected_without_echoing_them() {
        for (ak, sk, tok) in [
            ("", "s", None),
            ("a/b", "s", None),
            ("a b", "s", None),
            ("a\n", "s", None),
            ("a", "", None),
            ("a", "s", Some(String::new())),
            ("a", "s", Some("x\ny".to_string())),
        ] {
            let err = Credentials::new(ak, sk, tok).unwrap_err();
            assert!(matches!(err, Error::InvalidCredentials(_)));
        }
        let err = Credentials::new("AK", "", None).unwrap_err().to_string();
        assert!(!err.contains("AK"));
    }
}
