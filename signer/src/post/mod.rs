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

pub(crate) use policy::day_conditions;
pub use policy::{Condition, Policy};
pub use verify::{PostError, PostVerifier, VerifiedPost};

use crate::encode::Hex32;
use crate::signing_key::HmacSha256;
use crate::string_to_sign::ALGORITHM;
use crate::{Error, Expiry, Signer, Timestamp};
use base64::Engine as _;
use hmac::Mac as _;
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
        self.text.push_str(META_PREFIX);
        self.push_name(start, name, |text| text.push_str(value));
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
        self.with_key(now.date_stamp(), |key, second| {
            // The policy document first, in this thread's scratch buffer (no allocation): its
            // length gives the base64's, so the one buffer of fields is allocated at its exact
            // size.
            let mut document = std::mem::take(&mut second.scratch);
            document.clear();
            policy::write_document(&mut document, policy, expires_at, key, now, token);
            let fixed: [(&str, &str); 4] = [
                ("key", policy.key),
                ("x-amz-algorithm", ALGORITHM),
                ("x-amz-credential", &key.credential),
                ("x-amz-date", now.amz_date()),
            ];
            let pair_len = |(n, v): &(&str, &str)| n.len() + v.len();
            let bytes = policy
                .content_type
                .map_or(0, |ct| pair_len(&("Content-Type", ct)))
                + policy
                    .metadata
                    .iter()
                    .map(|meta| META_PREFIX.len() + pair_len(meta))
                    .sum::<usize>()
                + fixed.iter().map(pair_len).sum::<usize>()
                + token.map_or(0, |t| pair_len(&(TOKEN_FIELD, t)))
                + "policy".len()
                + base64_len(document.len())
                + "x-amz-signature".len()
                + 64;
            let count = policy.content_type.map_or(0, |_| 1)
                + policy.metadata.len()
                + fixed.len()
                + usize::from(token.is_some())
                + 2;
            let mut fields = Fields::with_capacity(bytes, count);
            if let Some(ct) = policy.content_type {
                fields.push("Content-Type", ct);
            }
            for (name, value) in policy.metadata {
                fields.push_meta(name, value);
            }
            for (name, value) in fixed {
                fields.push(name, value);
            }
            if let Some(token) = token {
                fields.push(TOKEN_FIELD, token);
            }
            let mut mac = key.mac.clone();
            fields.push_with("policy", |text| encode_and_sign(&document, text, &mut mac));
            second.scratch = document;
            let signature = Hex32::new(&mac.finalize().into_bytes());
            fields.push("x-amz-signature", signature.as_str());
            Ok(PostForm { fields, expires_at })
        })
    }
}

/// The prefix of a metadata field's name.
const META_PREFIX: &str = "x-amz-meta-";

/// The session token's field.
const TOKEN_FIELD: &str = "x-amz-security-token";

/// Length of the padded standard base64 of `n` bytes: 4 characters per 3 bytes, rounded up.
const fn base64_len(n: usize) -> usize {
    n.div_ceil(3) * 4
}

/// Appends the padded standard base64 of `document` (RFC 4648 §4) to `out` and feeds the
/// same text to `mac` (the POST string to sign is the base64 policy), a chunk at a time
/// while it is still in cache: no second pass over the output.
fn encode_and_sign(document: &str, out: &mut String, mac: &mut HmacSha256) {
    // 768 input bytes (a multiple of 3, so only the last chunk pads) → 1024 characters.
    const CHUNK: usize = 768;
    let mut buf = [0_u8; CHUNK / 3 * 4];
    for chunk in document.as_bytes().chunks(CHUNK) {
        // `buf` holds the base64 of any chunk, so this never fails.
        let written = base64::engine::general_purpose::STANDARD
            .encode_slice(chunk, &mut buf)
            .unwrap_or_default();
        let text = buf.get(..written).unwrap_or_default();
        mac.update(text);
        // Base64 is ASCII.
        out.push_str(std::str::from_utf8(text).unwrap_or_default());
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
