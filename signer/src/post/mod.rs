//! Presigned POST (browser-based uploads): a SigV4-signed POST policy and the form fields a
//! client sends with the file, and the server-side check of such a form for the embedded store.
//!
//! Follows Amazon S3's "Browser-based uploads using POST (AWS Signature Version 4)": the policy
//! is a JSON document `{"expiration": ISO-8601, "conditions": [...]}`, sent base64-encoded in
//! the `policy` field; the string to sign is that base64 text, and `x-amz-signature` is its hex
//! HMAC-SHA256 under the day's signing key. The policy is written byte for byte as botocore's
//! `generate_presigned_post` writes it.

mod json;
mod policy;
mod verify;

pub use policy::{Condition, Policy};
pub use verify::{PostError, PostVerifier, VerifiedPost};

use crate::string_to_sign::ALGORITHM;
use crate::{Error, Expiry, Signer, Timestamp};
use base64::Engine as _;

/// What a presigned POST allows: one exact key in one bucket, optionally an exact
/// `Content-Type`, exact `x-amz-meta-*` values and a size range.
#[derive(Debug, Clone, Copy)]
pub struct PostPolicy<'a> {
    /// The bucket the form uploads to (a `{"bucket": ...}` condition); must not be empty.
    pub bucket: &'a str,
    /// The object key the form must name (a `{"key": ...}` condition).
    pub key: &'a str,
    /// The exact `Content-Type` the form must carry, if any.
    pub content_type: Option<&'a str>,
    /// `content-length-range`: the file's size in bytes must lie in `min..=max`.
    pub length_range: Option<(u64, u64)>,
    /// User metadata as (name without `x-amz-meta-`, value); names are lowercase tokens.
    pub metadata: &'a [(&'a str, &'a str)],
}

impl<'a> PostPolicy<'a> {
    /// A policy for exactly `bucket`/`key`, with no other condition.
    #[must_use]
    pub const fn new(bucket: &'a str, key: &'a str) -> Self {
        Self {
            bucket,
            key,
            content_type: None,
            length_range: None,
            metadata: &[],
        }
    }
}

/// A signed POST form: every field to send, in order, before the `file` part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostForm {
    /// (name, value): the caller's fields (`Content-Type`, `x-amz-meta-*`), `key`,
    /// `x-amz-algorithm`, `x-amz-credential`, `x-amz-date`, `x-amz-security-token` (with
    /// temporary credentials), `policy` (base64) and `x-amz-signature` (64 hex digits).
    pub fields: Vec<(String, String)>,
    /// When the policy stops being accepted.
    pub expires_at: Timestamp,
}

impl PostForm {
    /// The value of field `name` (exact name).
    #[must_use]
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

impl Signer {
    /// Signs a POST policy allowing `policy`'s upload from `now` for `expires`.
    ///
    /// # Errors
    /// [`Error::InvalidBucket`] for an empty bucket; [`Error::InvalidHeaderName`] for a
    /// metadata name that is not a lowercase token; [`Error::InvalidHeaderValue`] for a
    /// content type or metadata value with control characters; [`Error::InvalidLengthRange`]
    /// for `min > max`; [`Error::InvalidExpiry`] for an expiry past year 9999. Never panics.
    ///
    /// # Example
    /// ```
    /// use draftstore_signer::*;
    /// let creds = Credentials::new("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", None)?;
    /// let signer = Signer::new(creds, "us-east-1", "s3")?;
    /// let now = Timestamp::parse_amz("20261130T120000Z")?;
    /// let policy = PostPolicy { length_range: Some((1, 1 << 20)), ..PostPolicy::new("drafts", "t/a.png") };
    /// let form = signer.presign_post(&policy, Expiry::new(600)?, now)?;
    /// assert_eq!(form.field("key"), Some("t/a.png"));
    ///
    /// // The embedded store's side: the fields as received, then the file's size.
    /// let fields: Vec<(&str, &str)> = form.fields.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    /// let verifier = PostVerifier::new("us-east-1", "s3", 900)?;
    /// let ok = verifier.verify("drafts", &fields, now, |_| Some("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")).unwrap();
    /// assert_eq!(ok.check_size(2 << 20).unwrap_err().s3_code(), "EntityTooLarge");
    /// # Ok::<(), draftstore_signer::Error>(())
    /// ```
    pub fn presign_post(
        &self,
        policy: &PostPolicy<'_>,
        expires: Expiry,
        now: Timestamp,
    ) -> Result<PostForm, Error> {
        check(policy)?;
        let expires_at = now
            .checked_add(u64::from(expires.secs()))
            .ok_or(Error::InvalidExpiry(u64::from(expires.secs())))?;
        let token = self.credentials.session_token();
        self.with_key(now.date_stamp(), |key, _| {
            let mut fields = Vec::with_capacity(9 + policy.metadata.len());
            if let Some(ct) = policy.content_type {
                fields.push(("Content-Type".to_owned(), ct.to_owned()));
            }
            for (name, value) in policy.metadata {
                fields.push((format!("x-amz-meta-{name}"), (*value).to_owned()));
            }
            fields.push(("key".to_owned(), policy.key.to_owned()));
            fields.push(("x-amz-algorithm".to_owned(), ALGORITHM.to_owned()));
            fields.push(("x-amz-credential".to_owned(), key.credential.clone()));
            fields.push(("x-amz-date".to_owned(), now.amz_date().to_owned()));
            if let Some(token) = token {
                fields.push(("x-amz-security-token".to_owned(), token.to_owned()));
            }
            let document = policy::write_document(policy, expires_at, &fields);
            let mut encoded = String::with_capacity(document.len().div_ceil(3) * 4);
            base64::engine::general_purpose::STANDARD.encode_string(&document, &mut encoded);
            let signature = key.sign_bytes(encoded.as_bytes());
            fields.push(("policy".to_owned(), encoded));
            fields.push(("x-amz-signature".to_owned(), signature.as_str().to_owned()));
            Ok(PostForm { fields, expires_at })
        })
    }
}

fn check(policy: &PostPolicy<'_>) -> Result<(), Error> {
    if policy.bucket.is_empty() {
        return Err(Error::InvalidBucket);
    }
    let bad_value = |v: &str| v.chars().any(char::is_control);
    if policy.content_type.is_some_and(bad_value) {
        return Err(Error::InvalidHeaderValue("Content-Type".into()));
    }
    for (name, value) in policy.metadata {
        let token = !name.is_empty()
            && name.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
            });
        if !token {
            return Err(Error::InvalidHeaderName(format!("x-amz-meta-{name}")));
        }
        if bad_value(value) {
            return Err(Error::InvalidHeaderValue(format!("x-amz-meta-{name}")));
        }
    }
    if let Some((min, max)) = policy.length_range {
        if min > max {
            return Err(Error::InvalidLengthRange { min, max });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
