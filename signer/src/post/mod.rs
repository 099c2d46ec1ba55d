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
use std::fmt;

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
///
/// The fields, in order: the caller's (`Content-Type`, `x-amz-meta-*`), `key`,
/// `x-amz-algorithm`, `x-amz-credential`, `x-amz-date`, `x-amz-security-token` (with temporary
/// credentials), `policy` (base64) and `x-amz-signature` (64 hex digits). They are kept in one
/// buffer (a form is ~18 short strings: allocating each cost more than signing); read them with
/// [`PostForm::fields`] or [`PostForm::field`], or take owned pairs with
/// [`PostForm::into_fields`]. `Debug` shows the security token as `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct PostForm {
    fields: Fields,
    /// When the policy stops being accepted.
    pub expires_at: Timestamp,
}

impl PostForm {
    /// Every field as (name, value), in the order to send them.
    pub fn fields(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + '_ {
        self.fields.iter()
    }

    /// The value of field `name` (exact name).
    #[must_use]
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// The fields as owned (name, value) pairs, in order.
    #[must_use]
    pub fn into_fields(self) -> Vec<(String, String)> {
        self.fields()
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect()
    }
}

impl fmt::Debug for PostForm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fields = self.fields().map(|(n, v)| {
            let v = if n == "x-amz-security-token" {
                "<redacted>"
            } else {
                v
            };
            (n, v)
        });
        f.debug_struct("PostForm")
            .field("fields", &fields.collect::<Vec<_>>())
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// (name, value) pairs in one buffer: `spans[i]` = where field `i`'s name starts, where it
/// ends (and the value starts), and where the value ends.
#[derive(Clone, PartialEq, Eq, Default)]
pub(crate) struct Fields {
    text: String,
    spans: Vec<[usize; 3]>,
}

impl Fields {
    fn with_capacity(bytes: usize, fields: usize) -> Self {
        Self {
            text: String::with_capacity(bytes),
            spans: Vec::with_capacity(fields),
        }
    }

    /// Appends a field; `value` is written by `write`.
    fn push_with(&mut self, name: &str, write: impl FnOnce(&mut String)) {
        self.push_name(self.text.len(), name, write);
    }

    /// Appends a field whose name began at `start` and ends with `name`.
    fn push_name(&mut self, start: usize, name: &str, write: impl FnOnce(&mut String)) {
        self.text.push_str(name);
        let name_end = self.text.len();
        write(&mut self.text);
        self.spans.push([start, name_end, self.text.len()]);
    }

    fn push(&mut self, name: &str, value: &str) {
        self.push_with(name, |text| text.push_str(value));
    }

    /// Appends `x-amz-meta-<name>` = `value`.
    fn push_meta(&mut self, name: &str, value: &str) {
        let start = self.text.len();
        self.text.push_str("x-amz-meta-");
        self.push_name(start, name, |text| text.push_str(value));
    }

    pub(crate) fn len(&self) -> usize {
        self.spans.len()
    }

    pub(crate) fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + '_ {
        self.spans.iter().map(|&[start, name_end, end]| {
            (
                self.text.get(start..name_end).unwrap_or_default(),
                self.text.get(name_end..end).unwrap_or_default(),
            )
        })
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
    /// let fields: Vec<(&str, &str)> = form.fields().collect();
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
            let count = 9 + policy.metadata.len();
            let values: usize = policy.content_type.map_or(0, str::len)
                + policy
                    .metadata
                    .iter()
                    .map(|(n, v)| n.len() + v.len() + 11)
                    .sum::<usize>()
                + policy.key.len()
                + key.credential.len()
                + token.map_or(0, str::len);
            // The fields, then the base64 policy (about twice their size) and the signature.
            let mut fields = Fields::with_capacity(3 * values + 600, count);
            if let Some(ct) = policy.content_type {
                fields.push("Content-Type", ct);
            }
            for (name, value) in policy.metadata {
                fields.push_meta(name, value);
            }
            fields.push("key", policy.key);
            fields.push("x-amz-algorithm", ALGORITHM);
            fields.push("x-amz-credential", &key.credential);
            fields.push("x-amz-date", now.amz_date());
            if let Some(token) = token {
                fields.push("x-amz-security-token", token);
            }
            let document = policy::write_document(policy, expires_at, &fields);
            let mut signature = None;
            fields.push_with("policy", |text| {
                let start = text.len();
                base64::engine::general_purpose::STANDARD.encode_string(&document, text);
                signature = text.get(start..).map(|b64| key.sign_bytes(b64.as_bytes()));
            });
            let signature = signature.unwrap_or_else(|| key.sign_bytes(b""));
            fields.push("x-amz-signature", signature.as_str());
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
